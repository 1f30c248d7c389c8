"""FlowJo workspace import (cytokit.gating.flowjo), checked against FlowKit's own gating."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cytokit
from cytokit.errors import TemplateError
from cytokit.gating.flowjo import template_from_flowjo
from cytokit.gating.load import load_template

REAL_GATED = Path(os.environ.get("CYTOKIT_REAL_GATED", Path(__file__).parents[1].parent / "shared" / "real_gated"))
FLOWATLAS = REAL_GATED / "flowatlas"
CORPUS = Path(os.environ.get("CYTOKIT_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "fcs_corpus"))
FLOWKIT = CORPUS / "flowkit"
_needs_corpus = pytest.mark.skipif(not FLOWKIT.is_dir(), reason=f"shared FCS corpus not found at {CORPUS}")


def corpus(test):
    """Reads the shared corpus: marked ``corpus`` and skipped, with the reason, when it is absent."""
    return pytest.mark.corpus(_needs_corpus(test))

#: workspaces whose FCS file is in the corpus: (workspace, FCS file)
WITH_DATA = [
    ("simple_diamond_example/simple_diamond_example_quad_gate.wsp", "simple_diamond_example/test_data_diamond_01.fcs"),
    ("simple_diamond_example/test_data_diamond_asinh_rect.wsp", "simple_diamond_example/test_data_diamond_01.fcs"),
    ("simple_diamond_example/test_data_diamond_asinh_rect2.wsp", "simple_diamond_example/test_data_diamond_01.fcs"),
    ("simple_diamond_example/test_data_diamond_biex_rect.wsp", "simple_diamond_example/test_data_diamond_01.fcs"),
    ("simple_line_example/simple_poly_and_rect_v2_poly50.wsp", "simple_line_example/data_set_simple_line_100.fcs"),
    ("simple_line_example/single_ellipse_51_events.wsp", "simple_line_example/data_set_simple_line_100.fcs"),
]


def flowkit_counts(wsp: Path, fcs: Path) -> dict[str, int]:
    import flowkit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = flowkit.Workspace(str(wsp), fcs_samples=str(fcs))
        sample_id = workspace.get_sample_ids()[0]
        workspace.analyze_samples(sample_id=sample_id, use_mp=False)
    report = workspace.get_gating_results(sample_id).report
    return {name: int(count) for name, count in zip(report.gate_name, report["count"])}


@corpus
@pytest.mark.parametrize(("wsp", "fcs"), WITH_DATA, ids=[w for w, _ in WITH_DATA])
def test_imported_workspace_reproduces_flowkit_counts(wsp, fcs):
    template = template_from_flowjo(FLOWKIT / wsp)
    result = template.apply(cytokit.read_fcs(FLOWKIT / fcs))
    counts = dict(zip(result.counts().population, result.counts()["count"]))
    expected = flowkit_counts(FLOWKIT / wsp, FLOWKIT / fcs)
    assert counts == expected
    assert any(c > 0 for c in counts.values())


@corpus
def test_transforms_and_gates_are_carried_over():
    template = template_from_flowjo(FLOWKIT / "simple_diamond_example/test_data_diamond_asinh_rect2.wsp")
    assert template.transforms["channel_B"] == {"kind": "asinh", "t": 262144.0, "m": 1.3, "a": 0.0}
    assert template.roles["channel_A"].pnn == ("channel_A",)
    assert template.compensation == "none"
    (population,) = template.populations
    assert population.gate["type"] == "rectangle" and set(population.gate["bounds"]) == {"channel_A", "channel_B"}


@corpus
def test_load_template_dispatches_wsp():
    template = load_template(FLOWKIT / "simple_line_example/single_ellipse_51_events.wsp")
    assert template.paths == ["ellipse1"]
    assert template.populations[0].gate["type"] == "polygon"


@corpus
def test_tree_with_repeated_names_compensation_and_booleans():
    # the 8-colour FCS files are not in the corpus: check the imported structure only
    template = template_from_flowjo(FLOWKIT / "8_color_data_set/8_color_ICS_boolean_gate_testing.wsp")
    assert template.compensation == "file"
    assert template.transforms["CD3 APC-H7 FLR-A"]["kind"] == "logicle"
    names = [p.name for p in template.populations]
    assert len(names) == len(set(names))
    assert "CD4+ CD107a+" in names and "CD8+ CD107a+" in names
    booleans = {p.name: p.gate for p in template.populations if p.gate["type"] == "boolean"}
    assert booleans["CD107a+ & IFNg+"] == {"type": "boolean", "op": "and",
                                            "operands": ["CD4+ CD107a+", "CD4+ IFNg+"]}
    assert template.path_of("CD4+ CD107a+") == "Time/Singlets/aAmine-/CD3+/CD4+/CD4+ CD107a+"


def ics_like_file(tmp_path: Path, wsp: Path, name: str = "101_DEN084Y5_15_E01_008_clean.fcs", n: int = 6000,
                  seed: int = 0) -> Path:
    """A file named as one of ``wsp``'s samples, with its channels and its acquisition-defined
    $SPILLOVER (read off the workspace's keywords): cells, debris and doublets on scatter, and on
    every fluorescence channel a negative and a positive population, so every gate has events."""
    import re

    from cytokit.fcs import write_fcs

    text = wsp.read_text()
    spill = re.search(r'name="\$SPILLOVER"\s+value="([^"]*)"', text).group(1).split(",")
    k = int(spill[0])
    detectors, matrix = spill[1:1 + k], np.array(spill[1 + k:], float).reshape(k, k)
    rng = np.random.default_rng(seed)
    fsc = np.where(rng.random(n) < 0.15, rng.gamma(2, 8000, n), rng.normal(75000, 12000, n))
    ssc = np.exp(rng.normal(np.log(25000), 0.35, n))
    area = fsc * np.where(rng.random(n) < 0.05, 1.8, 1.0)
    true = np.where(rng.random((n, k)) < 0.4, np.exp(rng.normal(np.log(5000), 0.4, (n, k))), rng.normal(0, 150, (n, k)))
    columns = {"FSC-A": area, "FSC-H": fsc * 0.85, "FSC-W": area / (fsc * 0.85) * 65536, "SSC-A": ssc,
               "SSC-H": ssc * 0.9, "SSC-W": np.full(n, 65536 / 0.9), **dict(zip(detectors, (true @ matrix).T)),
               "Time": np.sort(rng.uniform(0, 70, n))}
    events = pd.DataFrame(columns).clip(upper=262143).astype(np.float32)
    return write_fcs(tmp_path / name, events, datatype="F", bits=32, ranges={c: 262144 for c in columns},
                     spillover=pd.DataFrame(matrix, index=detectors, columns=detectors))


@corpus
def test_a_workspace_compared_with_itself_pairs_its_renamed_gates(tmp_path):
    """8_color_ICS repeats CD107a+, IFNg+, IL2+ and TNFa+ under CD4+ and CD8+; imported, they are named
    'CD4+ CD107a+' and so on, and compare left all 8 unpaired (48 rows). Each carries the gate's own name
    as its ``manual`` key: every population pairs, and counts what FlowKit counts."""
    wsp = FLOWKIT / "8_color_data_set" / "8_color_ICS.wsp"
    fcs = ics_like_file(tmp_path, wsp)
    template = template_from_flowjo(wsp)
    assert {p.manual for p in template.populations if p.name == "CD8+ TNFa+"} == {"TNFa+"}
    table = cytokit.compare([fcs], template, wsp)
    assert len(table) == len(template.populations) == 14 and (table.status == "paired").all()
    assert (table.f1 == 1.0).all() and table.n_manual.min() > 50


@corpus
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"group": "nope"}, "no sample group 'nope'"),
    ({"sample_id": "missing.fcs"}, "no sample 'missing.fcs'"),
])
def test_unknown_group_or_sample(kwargs, match):
    with pytest.raises(TemplateError, match=match):
        template_from_flowjo(FLOWKIT / "simple_line_example/single_ellipse_51_events.wsp", **kwargs)


@corpus
def test_flowjo_biex_is_carried_over():
    template = template_from_flowjo(FLOWKIT / "simple_diamond_example/test_data_diamond_biex_rect.wsp")
    assert {spec["kind"] for spec in template.transforms.values()} == {"biex"}


def test_missing_workspace(tmp_path):
    with pytest.raises(TemplateError, match="no such file"):
        template_from_flowjo(tmp_path / "absent.wsp")


def test_gatingml_file_is_a_template_of_static_gates(tmp_path):
    """A Gating-ML file written by cytokit (fitted gates made static) reopens as a template."""
    import cytokit
    from cytokit.gating.load import load_template

    repo = Path(__file__).resolve().parents[1]
    template = load_template(repo / "gating_templates" / "cll_cd19_7aad.yaml")
    sample = cytokit.read_fcs(repo / "sample_fcs" / "calibur" / "CLL001_C2D1_stained.fcs")
    fitted = template.apply(sample, is_control=True)
    xml = fitted.to_gateset().write(tmp_path / "fitted.xml")
    static = load_template(xml)
    again = static.apply(sample)
    expected = fitted.counts()
    expected = expected[expected["population"] != "Lymphocytes/Singlets"]  # skipped in FCS 2.0: not exported
    assert again.counts()["count"].tolist() == expected["count"].tolist()


def test_gatingml_with_a_spectrum_matrix_reopens_with_that_matrix(tmp_path):
    """A modern file's export carries its spillover as a Gating-ML spectrum matrix; the template
    imported from it compensates with that matrix and gates the same events."""
    repo = Path(__file__).resolve().parents[1]
    sample = cytokit.read_fcs(repo / "sample_fcs" / "modern" / "CLL003_C2D8_stained.fcs")
    fitted = load_template(repo / "gating_templates" / "cll_cd19_7aad.yaml").apply(sample, is_control=True)
    static = load_template(fitted.to_gateset().write(tmp_path / "fitted.xml"))
    assert sorted(static.compensation["detectors"]) == sorted(sample.spillover.columns)
    again = static.apply(sample)
    assert again.compensation == "template matrix"
    assert again.counts()["count"].tolist() == fitted.counts()["count"].tolist()


def test_inline_matrix_in_yaml_equals_the_files_own(tmp_path):
    from cytokit.gating.template import parse_template

    repo = Path(__file__).resolve().parents[1]
    sample = cytokit.read_fcs(repo / "sample_fcs" / "modern" / "CLL003_C2D8_stained.fcs")
    shipped = (repo / "gating_templates" / "cll_cd19_7aad.yaml").read_text()
    spill = sample.spillover
    inline = "compensation: {detectors: [%s], matrix: %s}" % (", ".join(spill.columns), spill.to_numpy().tolist())
    template = parse_template(shipped.replace("compensation: file", inline))
    a, b = template.apply(sample, is_control=True), load_template(repo / "gating_templates" / "cll_cd19_7aad.yaml")
    assert a.counts()["count"].tolist() == b.apply(sample, is_control=True).counts()["count"].tolist()
    with pytest.raises(TemplateError, match="key compensation: matrix is 2 × 2 but there are 3"):
        parse_template(shipped.replace("compensation: file", "compensation: {detectors: [A, B, C], "
                                                             "matrix: [[1, 0], [0, 1]]}"))


def test_populations_follow_their_parents_and_boolean_operands():
    from cytokit.gating.flowjo import _in_dependency_order

    pops = [{"name": "R", "parent": "root", "gate": {}},
            {"name": "AND", "parent": "R", "gate": {"type": "boolean", "operands": ["R", "E"]}},
            {"name": "E", "parent": "root", "gate": {}},
            {"name": "child", "parent": "AND", "gate": {}}]
    assert [p["name"] for p in _in_dependency_order(pops)] == ["R", "E", "AND", "child"]


@corpus
def test_every_gatingml_compliance_file_imports_or_is_refused_by_name():
    results = {}
    for xml in sorted((FLOWKIT / "gate_ref" / "gml").glob("*.xml")):
        try:
            load_template(xml)
            results[xml.name] = "ok"
        except TemplateError as exc:  # anything else escaping is a bug
            assert str(exc).startswith(str(xml))
            results[xml.name] = str(exc)
    assert results["gml_parent_poly1_boolean_and2_gate.xml"] == "ok"  # a boolean listed before its operand
    assert "RatioDimension" in results["gml_ratio_range1_gate.xml"]
    assert sum(v == "ok" for v in results.values()) >= 38


@pytest.fixture(scope="module")
def flowatlas():
    """FlowKit's gating of the FlowAtlas workspace (14 files, three panels, biex throughout):
    (workspace path, {FCS file: (FlowKit sample id, {template population name: FlowKit count})})."""
    if not (REAL_GATED / "README.md").exists():
        pytest.skip(f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)")
    import flowkit

    from cytokit.gating.flowjo import _unique_names

    wsp, files = FLOWATLAS / "workspace.wsp", sorted((FLOWATLAS / "fcs").glob("*.fcs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = flowkit.Workspace(str(wsp), fcs_samples=[str(f) for f in files])
    by_file = {}
    for sample_id in workspace.get_sample_ids():
        workspace.analyze_samples(sample_id=sample_id, use_mp=False)
        gate_ids = workspace.get_gate_ids(sample_id)
        names = _unique_names(gate_ids)  # the template's population names
        counts = {names[(name, path)]: int(workspace.get_gate_membership(sample_id, name, gate_path=path).sum())
                  for name, path in gate_ids}
        by_file[Path(workspace.get_sample(sample_id).current_filename).name] = (sample_id, counts)
    assert sorted(by_file) == [f.name for f in files] and len(files) == 14
    return wsp, by_file


def _counts(template, fcs: Path) -> dict[str, int]:
    table = template.apply(cytokit.read_fcs(fcs)).counts()
    by_path = dict(zip(table.population, table["count"]))
    return {p.name: int(by_path[template.path_of(p.name)]) for p in template.populations}


@pytest.mark.corpus
def test_flowatlas_each_files_own_gates_reproduce_flowkit(flowatlas):
    """Every file x population: the template of the file's own FlowJo sample counts what FlowKit counts
    (327 of 327 on FlowAtlas). The gates are sample-specific, hence one template per file."""
    wsp, by_file = flowatlas
    compared = 0
    for file, (sample_id, expected) in by_file.items():
        template = load_template(wsp, sample=sample_id)
        assert _counts(template, FLOWATLAS / "fcs" / file) == expected, file
        assert any(expected.values())
        compared += len(expected)
    assert compared == 327


@pytest.mark.corpus
def test_flowatlas_default_template_is_the_first_samples_tree(flowatlas):
    """``load_template(wsp)`` is the first sample's tree: it reproduces FlowKit on every file whose
    FlowJo gates are that tree (here only the first sample's file; the others have their own gates)."""
    wsp, by_file = flowatlas
    with pytest.warns(UserWarning, match=r"the template is sample '390C_BM_027.fcs''s gate tree, applied to every "
                      r"file \(the workspace has 33 samples"):  # said: a run applied it to all, silently
        default = load_template(wsp)
    first = template_from_flowjo(wsp, sample_id="390C_BM_027.fcs")
    assert default.populations == first.populations and default.transforms == first.transforms
    assert {spec["kind"] for spec in default.transforms.values()} == {"biex"}
    same = []
    for file, (sample_id, expected) in by_file.items():
        own = template_from_flowjo(wsp, sample_id=sample_id)
        if own.populations == default.populations and own.transforms == default.transforms:
            same.append(file)
            assert _counts(default, FLOWATLAS / "fcs" / file) == expected, file
    assert same == ["390C_BM_027.fcs"]


def test_sample_is_only_for_workspaces(tmp_path):
    (tmp_path / "t.yaml").write_text("channels: {}\n")
    with pytest.raises(TemplateError, match="sample= picks a sample of a FlowJo workspace"):
        load_template(tmp_path / "t.yaml", sample="x.fcs")


@corpus
def test_biex_gates_are_refused_by_the_gating_ml_writer(tmp_path):
    wsp = FLOWKIT / "simple_diamond_example/test_data_diamond_biex_rect.wsp"
    fcs = FLOWKIT / "simple_diamond_example/test_data_diamond_01.fcs"
    gates = template_from_flowjo(wsp).apply(cytokit.read_fcs(fcs)).to_gateset()
    with pytest.raises(cytokit.errors.GateError, match="biex transform .* has no Gating-ML 2.0 form"):
        gates.write(tmp_path / "out.xml")


@_needs_corpus
@pytest.mark.parametrize("wsp, n_members", [("simple_poly_and_rect_v2_poly50.wsp", 50), ("single_ellipse_51_events.wsp", 51)])
def test_the_persons_drawn_gate_is_read_in_channel_values(wsp, n_members):
    """A FlowJo workspace's polygon (an ellipse arrives as one) read as the manual gating's ``drawn``
    region, in channel values: it holds exactly FlowKit's members (learn uses it as a candidate)."""
    from matplotlib.path import Path as Polygon

    from cytokit.manual import read_manual

    fcs = FLOWKIT / "simple_line_example" / "data_set_simple_line_100.fcs"
    sample = cytokit.read_fcs(fcs)
    gating = read_manual(FLOWKIT / "simple_line_example" / wsp, [fcs]).gating(fcs, sample)
    (path, member), = [(p, m) for p, m in gating.membership.items() if "vertices" in gating.drawn.get(p, {})]
    assert gating.dims[path] == ("channel_A", "channel_B") and int(member.sum()) == n_members
    events = sample.events[["channel_A", "channel_B"]].to_numpy(dtype=float)
    inside = Polygon(gating.drawn[path]["vertices"]).contains_points(events)
    assert (inside == member).all()


@_needs_corpus
@pytest.mark.parametrize("wsp", ["simple_diamond_example_quad_gate.wsp", "test_data_diamond_asinh_rect.wsp",
                                 "test_data_diamond_biex_rect.wsp"])
def test_learned_from_a_workspace_the_persons_gates_count_what_flowkit_counts(wsp):
    """cytokit learn on one file of a workspace takes the person's rectangles (FlowJo's quadrants
    arrive as rectangles) as drawn, through the workspace's asinh or biex and back onto the learned
    logicle scale: on the file, every population counts exactly what FlowKit counts."""
    fcs = FLOWKIT / "simple_diamond_example" / "test_data_diamond_01.fcs"
    learned = cytokit.learn_template(FLOWKIT / "simple_diamond_example" / wsp, [fcs], leave_one_out=False)
    assert learned.text.count("the person's own gate as drawn on test_data_diamond_01.fcs") == len(learned.populations)
    table = cytokit.compare([fcs], learned.template, FLOWKIT / "simple_diamond_example" / wsp,
                            mapping=learned.mapping or None)
    assert len(table) == len(learned.populations) and (table.n_cytokit == table.n_manual).all()
    assert (table.n_manual > 1000).all()


@_needs_corpus
@pytest.mark.filterwarnings("ignore:.*has no value; read as empty")  # data1.fcs's empty TEXT keyword
@pytest.mark.parametrize("gml", ["gml_rect1_gate.xml", "gml_poly1_gate.xml", "gml_transform_asinh_range1_gate.xml"])
def test_learned_from_gatingml_the_persons_gates_count_what_they_count(gml):
    """cytokit learn with a Gating-ML manual gating (the compliance set's data1.fcs) takes the
    gate as drawn (a rectangle, a polygon, an asinh range), mapped onto the learned scale: it
    counts exactly what the Gating-ML gate counts."""
    fcs, source = FLOWKIT / "gate_ref" / "data1.fcs", FLOWKIT / "gate_ref" / "gml" / gml
    learned = cytokit.learn_template(source, [fcs], leave_one_out=False)
    assert "the person's own gate as drawn on data1.fcs" in learned.text
    table = cytokit.compare([fcs], learned.template, source, mapping=learned.mapping or None)
    assert len(table) == 1 and table.n_cytokit.iloc[0] == table.n_manual.iloc[0] > 200


@_needs_corpus
@pytest.mark.filterwarnings("ignore:.*has no value; read as empty")
def test_a_gate_on_a_matrix_fluorochrome_is_learned_as_if_its_dimensions_were_unknown():
    """Gating-ML's Rectangle4 is drawn on FSC-H and the matrix's 'FITC' (not a channel of the file):
    learn does not take FSC-H alone for the person's dimensions, it screens as for .npz memberships
    (F1 0.283 on FSC-H alone; 0.941 screened)."""
    fcs, source = FLOWKIT / "gate_ref" / "data1.fcs", FLOWKIT / "gate_ref" / "gml" / "gml_matrix_rect4_gate.xml"
    learned = cytokit.learn_template(source, [fcs], leave_one_out=False)
    table = cytokit.compare([fcs], learned.template, source, mapping=learned.mapping or None)
    assert learned.populations.dims.iloc[0] != "fsc_height" and table.f1.iloc[0] > 0.9


@_needs_corpus
@pytest.mark.filterwarnings("ignore:.*has no value; read as empty")
def test_a_learned_template_gates_its_training_file_as_learn_scored_it():
    """data1.fcs holds an old instrument's discrete values. The learned template, written to 6
    digits, reads the file on the bins its densities were counted on: its moved range (one
    training file) counts on the file what Gating-ML counts (with the densities' grid
    rounded only when written, the same gate moved a quarter bin on its own file: 2,412 of 2,509)."""
    fcs, source = FLOWKIT / "gate_ref" / "data1.fcs", FLOWKIT / "gate_ref" / "gml" / "gml_transform_logicle_range4_gate.xml"
    learned = cytokit.learn_template(source, [fcs], leave_one_out=False)
    assert learned.populations.registered.all()
    table = cytokit.compare([fcs], learned.template, source, mapping=learned.mapping or None)
    assert len(table) == 1 and table.n_manual.iloc[0] > 1000
    assert table.f1.iloc[0] > 0.999  # one event on the range's edge may go either way (2,510 of 2,509)


@corpus
def test_a_file_that_is_no_sample_of_the_workspace_is_told_the_samples_it_has():
    """FlowKit lists only the samples it loaded: the error named none where the workspace has many."""
    from cytokit.manual import read_manual

    fcs = FLOWKIT / "simple_diamond_example" / "test_data_diamond_01.fcs"
    source = read_manual(FLOWKIT / "8_color_data_set" / "8_color_ICS.wsp", [fcs])
    with pytest.raises(cytokit.MetadataError, match=r"test_data_diamond_01\.fcs: not a sample of the workspace .*"
                       r"\(its files here: none; its samples: 101_DEN084Y5_15_E03_009_clean\.fcs, "):
        source.gating(fcs, cytokit.read_fcs(fcs))


@corpus
def test_each_file_finds_its_sample_by_name_fil_or_dataset_uri(tmp_path):
    """A sample renamed in FlowJo (its DataSet uri still names the file), and a file renamed on disk
    (its $FIL still names the sample), are each found on their own: matching was one mode for all files,
    so one file's failure depended on which others came with it."""
    from cytokit.manual import read_manual

    folder = FLOWKIT / "simple_diamond_example"
    original = folder / "test_data_diamond_01.fcs"
    text = (folder / "simple_diamond_example_quad_gate.wsp").read_text()
    renamed_sample = tmp_path / "renamed_sample.wsp"
    renamed_sample.write_text(text.replace('SampleNode name="test_data_diamond_01.fcs"',
                                           'SampleNode name="Donor 1, tube 3"'))
    source = read_manual(renamed_sample, [original])
    gating = source.gating(original, cytokit.read_fcs(original))
    expected = read_manual(folder / "simple_diamond_example_quad_gate.wsp", [original]).gating(
        original, cytokit.read_fcs(original))
    assert gating.membership.keys() == expected.membership.keys()
    assert all(np.array_equal(gating.membership[k], expected.membership[k]) for k in gating.membership)


@pytest.mark.corpus
def test_a_file_renamed_on_disk_finds_its_sample_by_fil_beside_one_that_did_not_move(tmp_path):
    from cytokit.manual import read_manual

    if not (REAL_GATED / "README.md").exists():
        pytest.skip(f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)")
    flowatlas = FLOWATLAS

    moved = tmp_path / "donor390" / "BM (reanalysis).fcs"  # renamed: its $FIL still names the sample
    moved.parent.mkdir()
    moved.write_bytes((flowatlas / "fcs" / "390C_BM_027.fcs").read_bytes())
    source = read_manual(flowatlas / "workspace.wsp", [moved, flowatlas / "fcs" / "390C_Lung_029.fcs"])
    assert set(source.ids) == {"BM (reanalysis).fcs", "390C_Lung_029.fcs"}
    assert len(set(source.ids.values())) == 2
