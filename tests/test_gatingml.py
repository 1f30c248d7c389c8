"""Tests for cytokit.gating.gatingml*: the Gating-ML 2.0 compliance set and round trips through FlowKit."""

from __future__ import annotations

import csv
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytokit.errors import ChannelNotFoundError, GateError
from cytokit.gating.boolean import BooleanGate
from cytokit.gating.gates import EllipseGate, PolygonGate, QuadrantGate, RangeGate, RectangleGate
from cytokit.gating.gatingml import GateSet, apply_gatingml, read_gatingml, write_gatingml
from cytokit.gating.gatingml_nodes import GateDimension, GateNode, gatingml_id
from cytokit.gating.gatingml_write import _flowkit_path
from cytokit.gating.regions import ClusterGate, SingletGate
from cytokit.gating.thresholds import DensityValleyGate
from cytokit.sample import Sample
from cytokit.transforms import make_transform

CORPUS = Path(os.environ.get("CYTOKIT_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "fcs_corpus"))
GATE_REF = CORPUS / "flowkit" / "gate_ref"
INVALID_GML = "gml_range_gate_attr_testing.xml"
needs_corpus = pytest.mark.skipif(
    not GATE_REF.is_dir(), reason="shared FCS corpus not found at ../shared/fcs_corpus"
)


def _index_rows() -> list[dict[str, str]]:
    if not GATE_REF.is_dir():  # one placeholder, skipped by needs_corpus with the stated reason
        return [
            {
                "gml_file": "absent.xml",
                "gate_id": "absent",
                "results_file": "",
                "n_events": "0",
                "n_inside": "0",
            }
        ]
    with open(GATE_REF / "INDEX.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def data1() -> Sample:
    """data1.fcs (FCS 2.0, FACSCalibur): gain division and log decoding by cytokit's reader."""
    from cytokit.fcs import read_fcs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file has a keyword without a value
        return read_fcs(GATE_REF / "data1.fcs")


# ---- the compliance set --------------------------------------------------------------------------------
@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize("row", _index_rows(), ids=lambda r: f"{Path(r['gml_file']).stem}:{r['gate_id']}")
def test_gating_ml_compliance(data1, row):
    truth = np.loadtxt(GATE_REF / row["results_file"], dtype=int).astype(bool)
    assert len(truth) == int(row["n_events"]) == data1.n_events
    membership = apply_gatingml(data1, GATE_REF / row["gml_file"])[row["gate_id"]].to_numpy()
    assert membership.sum() == int(row["n_inside"])
    np.testing.assert_array_equal(membership, truth)


@pytest.mark.corpus
@needs_corpus
def test_compliance_index_covers_every_truth_file():
    listed = {Path(r["results_file"]).name for r in _index_rows()}
    assert len(listed) == 51
    assert listed == {p.name for p in (GATE_REF / "truth").glob("Results_*.txt")}


@pytest.mark.corpus
@needs_corpus
def test_schema_invalid_file_is_rejected():
    """FlowKit validates against the Gating-ML 2.0 schema; this file wraps its gate in <sample>."""
    with pytest.raises(GateError, match=r"not a readable Gating-ML 2.0 file: .* \(the Gating-ML 2.0 schema, line \d+: "):
        read_gatingml(GATE_REF / "gml" / INVALID_GML)


@pytest.mark.corpus
@needs_corpus
def test_a_gate_id_that_is_no_xml_name_is_named_with_its_line(tmp_path):
    """FlowKit's own export of a gate named 'CD3+ T cells' fails its schema: the error said only 'neither
    GatingML 2.0 compliant nor a FlowJo workspace'."""
    text = (GATE_REF / "gml" / "gml_rect1_gate.xml").read_text()
    gate_id = re.search(r'gating:id="([^"]+)"', text).group(1)
    (tmp_path / "bad.xml").write_text(text.replace(f'"{gate_id}"', '"CD3+ T cells"'))
    with pytest.raises(GateError, match=r"schema, line \d+: .*'CD3\+ T cells' is not a valid value"):
        read_gatingml(tmp_path / "bad.xml")


@pytest.mark.corpus
@needs_corpus
def test_all_gates_in_one_file_match_their_truth(data1):
    memberships = apply_gatingml(data1, GATE_REF / "gml" / "gml_all_gates.xml")
    checked = 0
    for population in memberships:
        truth_file = GATE_REF / "truth" / f"Results_{population}.txt"
        if truth_file.exists():
            np.testing.assert_array_equal(
                memberships[population].to_numpy(),
                np.loadtxt(truth_file, dtype=int).astype(bool),
                err_msg=population,
            )
            checked += 1
    assert checked >= 40


@pytest.mark.corpus
@needs_corpus
def test_compliance_files_round_trip_through_export(data1, tmp_path):
    """Every compliance file, re-exported by cytokit, gives the same memberships."""
    for gml in sorted((GATE_REF / "gml").glob("*.xml")):
        if gml.name == INVALID_GML:
            continue
        gates = read_gatingml(gml)
        again = read_gatingml(write_gatingml(gates, tmp_path / gml.name))
        pd.testing.assert_frame_equal(
            again.evaluate(data1), gates.evaluate(data1), obj=gml.name, check_like=True
        )


# ---- round trip on synthetic data, no corpus needed ------------------------------------------------------
DETECTORS = ["FL1-A", "FL2-A", "FL3-A"]
SPILL = pd.DataFrame(
    [[1.0, 0.15, 0.02], [0.05, 1.0, 0.2], [0.0, 0.04, 1.0]], index=DETECTORS, columns=DETECTORS
)
LOGICLE = make_transform("logicle", t=262_144, w=0.5, m=4.5, a=0)


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    """Uncompensated scale values: lymphocytes, debris, doublets; CD19 (FL1), 7AAD (FL3), LAG3 (FL2)."""
    rng = np.random.default_rng(11)
    n = 6_000
    lymph = rng.random(n) < 0.7
    fsc_h = np.where(lymph, rng.normal(60_000, 6_000, n), rng.normal(20_000, 6_000, n))
    ssc = np.where(lymph, rng.normal(20_000, 3_000, n), rng.normal(10_000, 4_000, n))
    doublet = rng.random(n) < 0.08
    fsc_a = fsc_h * rng.normal(1.1, 0.03, n) * np.where(doublet, 1.8, 1.0)
    true = np.column_stack(
        [
            np.where(rng.random(n) < 0.4, rng.lognormal(8.5, 0.4, n), rng.normal(100, 150, n)),  # CD19
            np.where(rng.random(n) < 0.3, rng.lognormal(7.5, 0.5, n), rng.normal(50, 100, n)),  # LAG3
            np.where(rng.random(n) < 0.1, rng.lognormal(9.0, 0.3, n), rng.normal(30, 80, n)),  # 7AAD
        ]
    )
    observed = true @ SPILL.to_numpy()
    events = pd.DataFrame(
        {
            "FSC-A": fsc_a,
            "FSC-H": fsc_h,
            "SSC-A": ssc,
            **dict(zip(DETECTORS, observed.T)),
            "Time": np.linspace(0, 100, n),
        }
    )
    return events.astype(np.float32).astype(np.float64)  # FlowKit keeps events as float32


def study_gates(events: pd.DataFrame) -> GateSet:
    """The study's hierarchy, with fitted gates, as the template engine would build it."""
    from cytokit.compensation import compensate
    from cytokit.transforms import transform_events

    prepared = transform_events(compensate(events, SPILL), {d: LOGICLE for d in DETECTORS})
    lymph = ClusterGate(["FSC-A", "SSC-A"], n_components=2, confidence=0.95).fit(prepared)
    in_lymph = lymph.contains(prepared)
    singlets = SingletGate("FSC-A", "FSC-H").fit(prepared[in_lymph])
    cd19 = DensityValleyGate("FL1-A").fit(prepared)
    assert lymph.failed_ is None and singlets.failed_ is None and cd19.failed_ is None
    return GateSet.build(
        [
            ("Lymphocytes", lymph, None),
            ("Singlets", singlets, "Lymphocytes"),
            ("Viable", RangeGate("FL3-A", max=0.55), "Singlets"),
            ("CD19pos", cd19, "Viable"),
            (
                "LAG3",
                QuadrantGate(
                    {"FL1-A": cd19.threshold_, "FL2-A": 0.45},
                    {
                        "CD19pos_LAG3pos": {"FL1-A": (cd19.threshold_, None), "FL2-A": (0.45, None)},
                        "CD19pos_LAG3neg": {"FL1-A": (cd19.threshold_, None), "FL2-A": (None, 0.45)},
                        "CD19neg": {"FL1-A": (None, cd19.threshold_)},
                    },
                ),
                "Viable",
            ),
            ("Box", RectangleGate({"FSC-A": (30_000, 90_000), "FL2-A": (0.2, None)}), "CD19pos_LAG3pos"),
            ("Tri", PolygonGate(["FL1-A", "FL2-A"], [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]), None),
            ("Oval", EllipseGate(["FL1-A", "FL3-A"], [0.5, 0.3], [[0.02, 0.005], [0.005, 0.01]], 4.0), None),
            ("NotDeadOrTri", BooleanGate("or", ["Tri", "Viable"], complement=["Tri"]), "Lymphocytes"),
        ],
        transforms={d: LOGICLE for d in DETECTORS},
        compensation=SPILL,
    )


def test_build_records_transforms_and_compensation(synthetic):
    gates = study_gates(synthetic)
    assert list(gates.transforms) == ["logicle_262144_0.5_4.5_0"]
    assert list(gates.compensations) == ["Spill"]
    viable = gates.node("Viable")
    assert viable.dimension("FL3-A") == GateDimension("FL3-A", "Spill", "logicle_262144_0.5_4.5_0")
    assert gates.node("Lymphocytes").dimension("FSC-A") == GateDimension("FSC-A", "uncompensated", None)
    assert gates.path("Box") == "Lymphocytes/Singlets/Viable/CD19pos_LAG3pos/Box"
    assert gates.populations.index("Singlets") < gates.populations.index("Box")


def test_evaluation_applies_parents(synthetic):
    gates = study_gates(synthetic)
    memberships = gates.evaluate(synthetic)
    assert memberships.dtypes.eq(bool).all() and len(memberships) == len(synthetic)
    for child, parent in [("Singlets", "Lymphocytes"), ("CD19pos", "Viable"), ("Box", "CD19pos_LAG3pos")]:
        assert not (memberships[child] & ~memberships[parent]).any()
    counts = memberships.sum()
    assert counts["Lymphocytes"] > counts["Singlets"] > counts["Viable"] > counts["CD19pos"] > 0
    assert counts["CD19pos_LAG3pos"] + counts["CD19pos_LAG3neg"] == counts["CD19pos"]


def test_export_is_read_back_by_flowkit_with_the_same_counts(synthetic, tmp_path):
    import flowkit

    gates = study_gates(synthetic)
    ours = gates.evaluate(synthetic)
    path = write_gatingml(gates, tmp_path / "study.xml")
    strategy = flowkit.parse_gating_xml(str(path))
    results = strategy.gate_sample(flowkit.Sample(synthetic, sample_id="synthetic"))
    for population in gates.populations:
        theirs = results.get_gate_membership(population, gate_path=_flowkit_path(gates, population)[:-1])
        np.testing.assert_array_equal(ours[population].to_numpy(), theirs, err_msg=population)
        if not isinstance(
            gates.node(population).gate, QuadrantGate
        ):  # FlowKit's report paths quadrants differently
            path = _flowkit_path(gates, population)[:-1]
            assert ours[population].sum() == results.get_gate_count(population, gate_path=path)


def test_export_is_read_back_by_cytokit_with_the_same_memberships(synthetic, tmp_path):
    gates = study_gates(synthetic)
    again = read_gatingml(write_gatingml(gates, tmp_path / "study.xml"))
    pd.testing.assert_frame_equal(again.evaluate(synthetic), gates.evaluate(synthetic), check_like=True)
    assert again.node("Box").parent == "CD19pos_LAG3pos"


def test_quadrant_locations_survive_negative_and_zero_dividers(tmp_path):
    events = pd.DataFrame({"x": [-5.0, -0.5, 0.5, 5.0], "y": [-3.0, 3.0, -3.0, 3.0]})
    gates = GateSet.build(
        [
            (
                "Q",
                QuadrantGate(
                    {"x": [-1.0, 0.0], "y": -2.0},
                    {
                        "low": {"x": (None, -1.0)},
                        "mid_high": {"x": (-1.0, 0.0), "y": (-2.0, None)},
                        "top": {"x": (0.0, None), "y": (-2.0, None)},
                    },
                ),
                None,
            )
        ]
    )
    again = read_gatingml(write_gatingml(gates, tmp_path / "q.xml"))
    pd.testing.assert_frame_equal(again.evaluate(events), gates.evaluate(events))
    assert gates.evaluate(events).sum().to_dict() == {"low": 1, "mid_high": 1, "top": 1}


def test_fcs_compensation_reference_uses_the_sample_spillover():
    spill = SPILL.iloc[:2, :2]
    true = pd.DataFrame({"FL1-A": [100.0, 4000.0], "FL2-A": [1000.0, 100.0]})
    observed = pd.DataFrame(true.to_numpy() @ spill.to_numpy(), columns=["FL1-A", "FL2-A"])
    gate = RangeGate("FL2-A", min=500)
    node = GateNode("FL2hi", gate, None, {"FL2-A": GateDimension("FL2-A", "FCS")})
    with_spill = Sample.from_dataframe(observed, spillover=spill)
    assert GateSet([node]).evaluate(with_spill)["FL2hi"].tolist() == [True, False]
    assert GateSet([node]).evaluate(observed)["FL2hi"].tolist() == [True, True]  # no spillover: uncompensated


def test_marker_names_resolve_like_flowkit():
    sample = Sample.from_dataframe(pd.DataFrame({"FL1-H": [1.0, 10.0]}), markers={"FL1-H": "CD19 FITC"})
    node = GateNode("CD19hi", RangeGate("CD19 FITC", min=5), None)
    assert GateSet([node]).evaluate(sample)["CD19hi"].tolist() == [False, True]
    with pytest.raises(ChannelNotFoundError, match="CD20"):
        GateSet([GateNode("x", RangeGate("CD20", min=5), None)]).evaluate(sample)


@pytest.mark.parametrize(
    "nodes, match",
    [
        ([GateNode("a", RangeGate("x", min=0), "nope")], "no gate defines"),
        ([GateNode("a", RangeGate("x", min=0)), GateNode("a", RangeGate("x", max=0))], "used twice"),
        ([GateNode("a", RangeGate("x", min=0), None, {"x": GateDimension("x", "M")})], "compensation 'M'"),
        (
            [GateNode("a", RangeGate("x", min=0), None, {"x": GateDimension("x", transform="T")})],
            "transform 'T'",
        ),
        ([GateNode("a", BooleanGate("not", ["b"])), GateNode("b", BooleanGate("not", ["a"]))], "cycle"),
        ([GateNode("q", QuadrantGate({"x": 0.0})), GateNode("c", RangeGate("x", min=0), "q")], "quadrants"),
    ],
)
def test_invalid_gate_sets_are_rejected(nodes, match):
    with pytest.raises(GateError, match=match):
        GateSet(nodes)


def test_failed_fitted_gate_cannot_be_exported():
    gate = DensityValleyGate("x").fit(pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(GateError, match="fitting failed"):
        GateSet.build([("X", gate, None)])


def test_unreadable_file_is_a_gate_error(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<not-gating-ml")
    with pytest.raises(GateError, match="broken.xml"):
        read_gatingml(path)


def test_invalid_ids_are_refused_with_a_suggestion(tmp_path):
    gates = GateSet.build([("CD19+", RangeGate("FL1-A", min=1), None)])
    with pytest.raises(GateError, match="'CD19\\+' -> 'CD19pos'"):
        gates.write(tmp_path / "bad.xml")
    assert not (tmp_path / "bad.xml").exists()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("CD19+", "CD19pos"),
        ("7AAD-", "_7AADneg"),
        ("CD19+ LAG3-", "CD19pos_LAG3neg"),
        ("Lymphocytes", "Lymphocytes"),
        ("FSC-A/SSC-A", "FSC-A_SSC-A"),
    ],
)
def test_gatingml_id(name, expected):
    assert gatingml_id(name) == expected


def test_quadrant_gates_on_the_same_channels_export_unique_divider_ids(tmp_path):
    events = pd.DataFrame({"x": [-1.0, 1.0], "y": [1.0, -1.0]})
    gates = GateSet.build(
        [
            (
                "Q1",
                QuadrantGate({"x": 0.0, "y": 0.0}, {"Q1a": {"x": (0.0, None)}, "Q1b": {"x": (None, 0.0)}}),
                None,
            ),
            (
                "Q2",
                QuadrantGate({"x": 0.5, "y": 0.0}, {"Q2a": {"y": (0.0, None)}, "Q2b": {"y": (None, 0.0)}}),
                "Q1a",
            ),
        ]
    )
    again = read_gatingml(gates.write(tmp_path / "qq.xml"))
    pd.testing.assert_frame_equal(again.evaluate(events), gates.evaluate(events), check_like=True)


def test_two_populations_of_one_gatingml_id_are_named_on_export():
    from cytokit.gating.template import parse_template

    template = parse_template(
        "channels: {x: {pnn: [X]}, y: {pnn: [Y]}}\ntransforms: {default: {kind: linear, t: 10}}\npopulations:\n"
        "  - {name: 'CD19+ cells', parent: root, gate: {type: range, dim: x, min: 1}}\n"
        "  - {name: 'CD19+_cells', parent: root, gate: {type: range, dim: y, min: 1}}\n", source="t.yaml")
    result = template.apply(Sample.from_dataframe(pd.DataFrame({"X": np.arange(10.0), "Y": np.arange(10.0)})))
    with pytest.raises(GateError, match=r"populations CD19\+ cells and CD19\+_cells both become the Gating-ML id "
                                        r"'CD19pos_cells'"):
        result.to_gateset()


def test_a_failed_gate_is_left_out_of_the_export_with_what_rests_on_it(tmp_path):
    """`cytokit gate --export-gatingml` on a file where one gate fails writes the others (it wrote
    nothing); the failed population, its children and a boolean gate of it are left out, and said."""
    import flowkit as fk

    from cytokit.gating.template import parse_template

    template = parse_template(
        "channels: {x: {pnn: [X]}, y: {pnn: [Y]}}\ntransforms: {default: {kind: linear, t: 10}}\npopulations:\n"
        "  - {name: Low x, parent: root, gate: {type: range, dim: x, max: 5}}\n"
        "  - {name: Y valley, parent: root, gate: {type: density_valley, dim: y, side: above}}\n"
        "  - {name: Under it, parent: Y valley, gate: {type: range, dim: x, min: 1}}\n"
        "  - {name: Not it, parent: root, gate: {type: boolean, op: not, operands: [Y valley]}}\n", source="t.yaml")
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"X": rng.uniform(0, 10, 2000), "Y": rng.normal(5, 1, 2000)})  # one peak: no valley
    result = template.apply(Sample.from_dataframe(data))
    assert result.unexportable() == ["Y valley", "Y valley/Under it", "Not it"]
    with pytest.raises(GateError, match="population Y valley cannot be exported: no density valley"):
        result.to_gateset()
    path = result.to_gateset(failed="leave out").write(tmp_path / "gates.xml")
    assert [gate_id for gate_id, _ in fk.parse_gating_xml(str(path)).get_gate_ids()] == ["Low_x"]
