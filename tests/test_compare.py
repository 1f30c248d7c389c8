"""cytokit.compare: cytokit's populations against a manual gating (npz folder, FlowJo .wsp, Gating-ML)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cytokit
from cytokit.agreement import COLUMNS, agreement, pair_populations, plot_f1, score_file, summarise
from cytokit.manual import Gating, read_manual
from cytokit.plots import figure_png

REAL_GATED = Path(os.environ.get("CYTOKIT_REAL_GATED", Path(__file__).parents[1].parent / "shared" / "real_gated"))
REAL_REASON = f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)"

# Hi: CH1 > 4.5 -> events 5..9; Hi/Top: CH1 > 7.5 -> events 8, 9
TEMPLATE = """
channels:
  a: {pnn: [CH1]}
  b: {pnn: [CH2]}
compensation: none
populations:
  - {name: Hi, parent: root, gate: {type: range, dim: a, min: 4.5}}
  - {name: Top, parent: Hi, gate: {type: range, dim: a, min: 7.5}}
"""


def mask(n: int, events) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(events)] = True
    return out


@pytest.fixture
def study(tmp_path):
    """Two 10-event files, a template and a manual folder: hi = events 3..9, hi/top = {3, 8}."""
    fcs = tmp_path / "fcs"
    fcs.mkdir()
    for name in ("s1", "s2"):
        cytokit.write_fcs(fcs / f"{name}.fcs", pd.DataFrame({"CH1": np.arange(10.0), "CH2": np.ones(10)}))
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in ("s1", "s2"):
        np.savez(manual / f"{name}.npz", **{"hi": mask(10, range(3, 10)), "hi/top": mask(10, [3, 8]),
                                             "hi/Other  Cells": mask(10, [4])})
    return fcs, template, manual


def test_agreement_edge_cases():
    empty, some = np.zeros(4, bool), mask(4, [1, 2])
    assert agreement(empty, empty) == (1.0, 1.0, 1.0)  # both empty: agree
    p, r, f = agreement(empty, some)
    assert math.isnan(p) and r == 0.0 and f == 0.0
    p, r, f = agreement(some, empty)
    assert p == 0.0 and math.isnan(r) and f == 0.0
    assert agreement(mask(4, [0, 1, 2]), mask(4, [1, 2, 3])) == (2 / 3, 2 / 3, 2 / 3)


def test_known_memberships_give_known_scores(study):
    fcs, template, manual = study
    table = cytokit.compare(fcs, template, manual)
    assert list(table.columns) == COLUMNS
    paired = table[table.status == "paired"].set_index(["file", "population"])
    hi = paired.loc[("s1.fcs", "Hi")]
    assert hi.manual == "hi" and (hi.n_cytokit, hi.n_manual) == (5, 7)
    assert hi.precision == 1.0 and hi.recall == pytest.approx(5 / 7) and hi.f1 == pytest.approx(10 / 12)
    assert hi.f1_parent == hi.f1  # a top population's parent is every event
    assert hi.pct_parent_cytokit == 50.0 and hi.pct_parent_manual == 70.0
    assert hi.delta_pct_parent == pytest.approx(-20.0) and hi.count_rel_error == pytest.approx(-2 / 7)
    top = paired.loc[("s2.fcs", "Hi/Top")]
    assert top.manual == "hi/top" and top.f1 == 0.5  # {8, 9} against {3, 8}
    assert top.precision == 0.5 and top.recall == 0.5
    assert top.f1_parent == pytest.approx(2 / 3)  # within Hi ∩ hi = 5..9: {8, 9} against {8}
    assert top.pct_parent_cytokit == 40.0 and top.pct_parent_manual == pytest.approx(200 / 7)
    # the manual population nobody pairs with is listed, not dropped
    other = table[(table.status == "unpaired") & (table.file == "s1.fcs")]
    assert list(other.manual) == ["hi/Other  Cells"] and other.n_manual.iloc[0] == 1
    assert "no cytokit population" in other.note.iloc[0]


def test_mapping_and_unpaired(study, tmp_path):
    fcs, template, manual = study
    for name in ("s1", "s2"):
        np.savez(manual / f"{name}.npz", **{"High": mask(10, range(5, 10)), "High/top": mask(10, [8, 9])})
    table = cytokit.compare(fcs / "s1.fcs", template, manual)
    rows = table.set_index(["population", "manual"])
    assert rows.loc[("Hi", ""), "status"] == "unpaired"
    assert "no manual population named 'Hi'" in rows.loc[("Hi", ""), "note"]
    assert rows.loc[("", "High"), "status"] == "unpaired"
    # Top pairs by name with High/top although its parent did not pair
    assert rows.loc[("Hi/Top", "High/top"), "f1"] == 1.0
    csv = tmp_path / "map.csv"
    csv.write_text("cytokit,manual\nHi,High\n")
    table = cytokit.compare([fcs / "s1.fcs"], template, manual, mapping=csv)
    assert (table.status == "paired").all() and len(table) == 2
    for raw in (b"\xef\xbb\xbfcytokit;Manual\r\nHi;High\r\n", "cytokit\tmanual\nHi\tHigh\n".encode("utf-16")):
        csv.write_bytes(raw)  # Excel's "CSV UTF-8" (a byte-order mark; ';' in many locales), "Unicode text"
        assert (cytokit.compare([fcs / "s1.fcs"], template, manual, mapping=csv).status == "paired").all()
    assert table.f1.tolist() == [1.0, 1.0] and table.f1_parent.tolist() == [1.0, 1.0]
    table = cytokit.compare(fcs / "s1.fcs", template, manual, mapping={"Hi": "Nowhere"})
    assert "mapped to 'Nowhere'" in table.set_index("population").loc["Hi", "note"]


def test_a_templates_manual_key_pairs_a_renamed_population_by_its_parent(study):
    """A template's ``manual:`` (what learn writes for a name it made unique) pairs with the manual
    population of that name whose parent pairs with the population's parent; --map overrides it."""
    fcs, template, manual = study
    template.write_text(TEMPLATE + "  - {name: Mid, parent: Hi, gate: {type: range, dim: a, min: 5.5}}\n"
                        "  - {name: Top (Mid), parent: Mid, manual: top, gate: {type: range, dim: a, min: 8.5}}\n")
    np.savez(manual / "s1.npz", **{"hi": mask(10, range(5, 10)), "hi/top": mask(10, [8, 9]),
                                   "hi/mid": mask(10, range(6, 10)), "hi/mid/top": mask(10, [9])})
    rows = cytokit.compare(fcs / "s1.fcs", template, manual).set_index("population")
    assert rows.loc["Hi/Mid/Top (Mid)", "manual"] == "hi/mid/top" and rows.loc["Hi/Mid/Top (Mid)", "f1"] == 1.0
    assert rows.loc["Hi/Top", "manual"] == "hi/top" and (rows.status == "paired").all()
    rows = cytokit.compare(fcs / "s1.fcs", template, manual, mapping={"Top (Mid)": "hi/top"}).set_index("population")
    assert rows.loc["Hi/Mid/Top (Mid)", "manual"] == "hi/top"


def test_a_flowjo_gate_name_holding_a_slash_pairs_by_that_name():
    """FlowJo quadrants named 'CD4+/CD8-' read as the path CD4+ > CD8- (nothing paired, and --map could
    not name them): a '/' in a gate's name is U+2215 in its path, and a --map value naming it still pairs."""
    from cytokit.manual import SLASH

    n = 4
    manual = Gating({"T": mask(n, [0, 1, 2]), f"T/CD4+{SLASH}CD8-": mask(n, [0])}, n_events=n)
    auto = Gating({"T": mask(n, [0, 1, 2]), "T/CD4 single": mask(n, [0])}, n_events=n)
    pairs, left_auto, _ = pair_populations(auto, manual, {"CD4 single": "CD4+/CD8-"})
    assert ("T/CD4 single", f"T/CD4+{SLASH}CD8-") in pairs and not left_auto


def test_a_population_whose_gate_was_skipped_is_not_scored():
    """A B-cell gate skipped (no CD19 channel) holds its parent's events: scored against the person's
    population it gave 36,948 events at F1 0.496, in the summary's median."""
    n = 6
    auto = Gating({"B": mask(n, range(6)), "T": mask(n, [0, 1])}, n_events=n,
                  flags={"B": "skipped: the file has no channel for role(s) cd19"})
    manual = Gating({"B": mask(n, [4]), "T": mask(n, [0, 1])}, n_events=n)
    rows = {r["population"]: r for r in score_file("f.fcs", auto, manual)}
    assert rows["B"]["status"] == "skipped" and np.isnan(rows["B"]["f1"]) and rows["B"]["n_manual"] == 1
    assert "not scored" in rows["B"]["note"] and rows["T"]["f1"] == 1.0
    assert list(summarise(pd.DataFrame(list(rows.values()), columns=COLUMNS))["population"]) == ["T"]


def test_name_pairing_normalises_and_disambiguates_by_parent():
    n = 4
    auto = Gating({"A": mask(n, [0, 1]), "A/CD4  t": mask(n, [0])}, n_events=n)
    manual = Gating({"a": mask(n, [0, 1]), "a/cd4 T": mask(n, [0]), "b": mask(n, [2]), "b/CD4 t": mask(n, [2])},
                    n_events=n)
    pairs, left_auto, left_manual = pair_populations(auto, manual)
    assert pairs == [("A", "a"), ("A/CD4  t", "a/cd4 T")]
    assert not left_auto and set(left_manual) == {"b", "b/CD4 t"}
    lone = Gating({"CD4 T": mask(n, [0])}, n_events=n)
    _, left_auto, _ = pair_populations(lone, manual)
    assert "ambiguous" in left_auto["CD4 T"] and "a/cd4 T" in left_auto["CD4 T"]


def test_a_manual_population_two_trees_pair_with_keeps_the_one_whose_parent_pairs():
    """A template learned from two hierarchies (FlowAtlas: T cells at the top in one panel, under non-B
    in another) has both trees; a file of the first pairs its manual T cells and CD4 once each."""
    n = 4
    manual = Gating({"T cells": mask(n, [0, 1]), "T cells/CD4": mask(n, [0])}, n_events=n)
    for order in (["non-B", "non-B/T cells (non-B)", "non-B/T cells (non-B)/CD4 (T cells)", "T cells",
                   "T cells/CD4"], ["T cells", "T cells/CD4", "non-B", "non-B/T cells (non-B)",
                                    "non-B/T cells (non-B)/CD4 (T cells)"]):
        auto = Gating({p: mask(n, [0]) for p in order}, n_events=n)
        mapping = {"T cells (non-B)": "T cells", "CD4 (T cells)": "CD4"}  # the template's manual: keys
        pairs, left_auto, _ = pair_populations(auto, manual, mapping)
        assert sorted(pairs) == [("T cells", "T cells"), ("T cells/CD4", "T cells/CD4")]
        assert left_auto["non-B/T cells (non-B)"] == "'T cells' pairs with 'T cells', whose parent pairs with its parent"
    # a manual population whose parent pairs with nothing (the person's non-Tfh, which cytokit has not):
    # both trees' Th1 were kept, counting it twice; the tree whose paired ancestor is nearer keeps it
    manual = Gating({"T": mask(n, [0, 1]), "T/M": mask(n, [0, 1]), "T/M/non-Tfh": mask(n, [0]),
                     "T/M/non-Tfh/Th1": mask(n, [0])}, n_events=n)
    for order in (["B", "B/T (B)", "B/T (B)/M (T)", "B/T (B)/M (T)/Th1 (M)", "T", "T/M", "T/M/Th1"],
                  ["T", "T/M", "T/M/Th1", "B", "B/T (B)", "B/T (B)/M (T)", "B/T (B)/M (T)/Th1 (M)"]):
        auto = Gating({p: mask(n, [0]) for p in order}, n_events=n)
        pairs, left_auto, left_manual = pair_populations(auto, manual, {"T (B)": "T", "M (T)": "M", "Th1 (M)": "Th1"})
        assert sorted(pairs) == [("T", "T"), ("T/M", "T/M"), ("T/M/Th1", "T/M/non-Tfh/Th1")]
        assert set(left_auto) == {"B", "B/T (B)", "B/T (B)/M (T)", "B/T (B)/M (T)/Th1 (M)"}
        assert set(left_manual) == {"T/M/non-Tfh"}


def test_event_count_mismatch_names_the_file(study):
    fcs, template, manual = study
    np.savez(manual / "s2.npz", hi=np.ones(9, bool))
    with pytest.raises(cytokit.MetadataError, match=r"s2\.fcs.*9 events.*'hi'.*has 10"):
        cytokit.compare(fcs, template, manual)
    table = cytokit.compare(fcs, template, manual, strict=False)
    error = table[table.status == "error"]
    assert list(error.file) == ["s2.fcs"] and "9 events" in error.note.iloc[0]
    assert (table[table.file == "s1.fcs"].status != "error").all()
    (manual / "s1.npz").unlink()
    with pytest.raises(cytokit.MetadataError, match=r"s1\.fcs: no manual gating"):
        cytokit.compare(fcs, template, manual)
    with pytest.raises(cytokit.MetadataError, match="wsp or a Gating-ML"):
        cytokit.compare(fcs, template, manual / "nope.txt")


@pytest.mark.parametrize("bad, match", [
    (lambda path: path.write_text("not an archive"), r"s2\.npz: not an \.npz archive"),
    (lambda path: np.savez(path, hi=np.linspace(0, 1, 10)), r"holds float64 values for population 'hi'"),
    (lambda path: np.savez(path, hi=np.arange(10)), r"holds int64 values for population 'hi'"),
    (lambda path: np.savez(path, hi=np.array(True)), r"an array of shape \(\) for population 'hi'"),
])
def test_a_membership_file_that_is_not_one_is_named(study, bad, match):
    """Not a zip (np.load then tries a pickle and says so), or not true / false per event."""
    fcs, template, manual = study
    bad(manual / "s2.npz")
    with pytest.raises(cytokit.MetadataError, match=r"s2\.fcs.*" + match):
        cytokit.compare(fcs, template, manual)
    np.savez(manual / "s2.npz", hi=mask(10, range(3, 10)).astype(np.uint8))  # 1 / 0 is a membership too
    assert len(cytokit.compare(fcs, template, manual)) > 0


@pytest.mark.parametrize("populations, tsv, match", [
    ({"hi": mask(10, [3, 4]), "hi/top": mask(10, [3, 8])}, None, r"'hi/top' has 1 events outside its parent 'hi'"),
    ({"hi/top": mask(10, [3, 8])}, None, r"'hi/top' has the parent 'hi', which it does not hold"),
    ({"hi": mask(10, [3, 4]), "top": mask(10, [3])}, "population\tparent\nhi\ttop\ntop\thi\n",
     r"'hi' is its own ancestor"),
    ({}, None, "holds no populations"),
])
def test_a_manual_hierarchy_that_is_not_one_is_named(study, populations, tsv, match):
    """A population outside its parent, a parent it lacks or a cycle would give a % of parent on
    the wrong events (above 100 %): refused, naming the file."""
    fcs, template, manual = study
    for name in ("s1", "s2"):
        np.savez(manual / f"{name}.npz", **populations)
    if tsv:
        (manual / "populations.tsv").write_text(tsv)
    with pytest.raises(cytokit.MetadataError, match=r"s1\.fcs: the manual gating .*" + match):
        cytokit.compare(fcs, template, manual)


def test_files_of_one_name_and_mapping_typos_are_refused(study, tmp_path):
    fcs, template, manual = study
    other = tmp_path / "other"
    other.mkdir()
    (other / "s1.fcs").write_bytes((fcs / "s2.fcs").read_bytes())
    with pytest.raises(cytokit.MetadataError, match=r"different names .*: s1\.fcs more than once"):
        cytokit.compare([fcs / "s1.fcs", other / "s1.fcs"], template, manual)
    with pytest.raises(cytokit.MetadataError, match="'Hj' is no population of the template"):
        cytokit.compare(fcs, template, manual, mapping={"Hj": "hi"})
    with pytest.raises(cytokit.MetadataError, match="both names"):
        cytokit.compare(fcs, template, manual, mapping={"Hi": None})
    twice = tmp_path / "map.csv"
    twice.write_text("cytokit,manual\nHi,hi\nHi,top\n")
    with pytest.raises(cytokit.MetadataError, match="map.csv: the population mapping names a cytokit population twice"):
        cytokit.compare(fcs, template, manual, mapping=twice)
    assert (cytokit.compare(fcs, template, manual, mapping={"hi/top": "hi/top"}).status == "paired").any()


CONTROL_TEMPLATE = """
channels:
  a: {pnn: [CH1]}
  b: {pnn: [CH2]}
compensation: none
populations:
  - {name: Cells, parent: root, gate: {type: range, dim: a, min: 0}}
  - {name: Pos, parent: Cells, gate: {type: control_threshold, dim: b, quantile: 0.9, side: above}}
"""


def test_failed_gate_flag_and_controls(tmp_path):
    rng = np.random.default_rng(1)
    fcs, manual = tmp_path / "fcs", tmp_path / "manual"
    manual.mkdir()
    fcs.mkdir()
    for name, shift in (("ctrl", 0.0), ("stim", 3.0)):
        b = np.concatenate([rng.normal(0, 1, 300), rng.normal(shift, 1, 100)])
        cytokit.write_fcs(fcs / f"{name}.fcs", pd.DataFrame({"CH1": np.ones(400), "CH2": b}))
        np.savez(manual / f"{name}.npz", Cells=np.ones(400, bool), **{"Cells/Pos": b > 1.5})
    template = tmp_path / "t.yaml"
    template.write_text(CONTROL_TEMPLATE)
    table = cytokit.compare(fcs / "stim.fcs", template, manual)
    pos = table.set_index("population").loc["Cells/Pos"]
    assert pos.flag.startswith("gate failed: needs the matched control") and pos.n_cytokit == 0
    assert pos.f1 == 0.0 and pos.recall == 0.0
    design = tmp_path / "design.csv"
    design.write_text("file,role,control_file\nctrl.fcs,unstimulated,\nstim.fcs,stimulated,ctrl.fcs\n")
    table = cytokit.compare(fcs, template, manual, controls=design)
    assert (table.flag == "").all() and (table.status == "paired").all()
    rows = table.set_index(["file", "population"])
    # the control's own gate is fitted on itself: about 10 % positive; the stimulated tube's on the control
    assert 8 <= rows.loc[("ctrl.fcs", "Cells/Pos"), "pct_parent_cytokit"] <= 12
    assert rows.loc[("stim.fcs", "Cells/Pos"), "pct_parent_cytokit"] > 25
    assert rows.loc[("stim.fcs", "Cells/Pos"), "f1"] > 0.7
    design.write_text("file,control\nstim.fcs,ctrl.fcs\n")
    with pytest.raises(cytokit.MetadataError, match="design.csv: the controls sheet needs the columns file,control_file"):
        cytokit.compare(fcs, template, manual, controls=design)
    with pytest.raises(cytokit.MetadataError, match="stim.fcs is named as its own control"):
        cytokit.compare(fcs, template, manual, controls={"stim.fcs": str(fcs / "stim.fcs")})
    with pytest.raises(cytokit.MetadataError, match="stim.fcs's control ctrl.fcs has a control of its own"):
        cytokit.compare(fcs, template, manual, controls={"stim.fcs": "ctrl.fcs", "ctrl.fcs": "stim.fcs"})
    # a sheet naming more tubes than are compared is fine; one naming none of them is the wrong sheet
    more = cytokit.compare(fcs, template, manual, controls={"stim.fcs": "ctrl.fcs", "other.fcs": "ctrl.fcs"})
    assert more.equals(table)
    with pytest.raises(cytokit.MetadataError, match=r"controls: none of the 2 tubes they name \(Stim_1.fcs, "
                                                    r"Unstim_1.fcs\) is among the files \(ctrl.fcs, stim.fcs\)"):
        cytokit.compare(fcs, template, manual, controls={"Stim_1.fcs": "Unstim_1.fcs"})
    with pytest.raises(cytokit.MetadataError, match="a manual gating is a folder"):
        cytokit.compare(fcs, template, None)


def test_gatingml_manual_source(study, tmp_path):
    from cytokit.gating.gates import RangeGate
    from cytokit.gating.gatingml import GateSet

    fcs, template, _ = study
    xml = GateSet.build([("Hi", RangeGate("CH1", min=4.5), None),
                         ("Top", RangeGate("CH1", min=7.5), "Hi")]).write(tmp_path / "gates.xml")
    table = cytokit.compare(fcs, template, xml)
    assert len(table) == 4 and (table.status == "paired").all()
    assert table.manual.tolist() == ["Hi", "Hi/Top"] * 2 and (table.f1 == 1.0).all()


def test_summary_and_figure(study):
    fcs, template, manual = study
    np.savez(manual / "s2.npz", hi=mask(10, range(5, 10)), **{"hi/top": mask(10, [8, 9])})
    table = cytokit.compare(fcs, template, manual)
    summary = summarise(table).set_index("population")
    assert summary.loc["Hi", "n_files"] == 2 and summary.loc["Hi", "f1_worst"] == pytest.approx(10 / 12)
    assert summary.loc["Hi", "f1_median"] == pytest.approx((1 + 10 / 12) / 2)
    assert summary.loc["Hi", "worst_file"] == "s1.fcs"
    assert summary.loc["Hi/Top", "f1_parent_worst"] == pytest.approx(2 / 3)
    fig = plot_f1(table)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0.50", "0.83", "1.00", "1.00"]
    # long population paths on three files: the figure is sized to its labels (the heat map kept)
    long = table.assign(population="T cells/CD4/non-Treg/CD4 | Memory/non-Tfh/Th17-Th22/CD4 | Th22 (Th17-Th22)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_f1(pd.concat([long, long.assign(file="s3.fcs")]))
        figure_png(fig)
    assert fig.axes[0].get_position().width > 0.1


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cytokit.cli", "compare", *map(str, args)], capture_output=True, check=False,
                          text=True, timeout=120)


def test_cli_outputs_and_exit_codes(study, tmp_path):
    fcs, template, manual = study
    out = tmp_path / "out"
    proc = cli(fcs, "--template", template, "--manual", manual, "--out", out)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "compare.csv")
    assert list(table.columns) == COLUMNS and len(table) == 6
    assert set(pd.read_csv(out / "compare_summary.csv").population) == {"Hi", "Hi/Top"}
    assert (out / "compare_f1.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*.tmp"))
    np.savez(manual / "s2.npz", hi=np.ones(7, bool))
    proc = cli(fcs / "s1.fcs", fcs / "s2.fcs", "--template", template, "--manual", manual, "--out", out)
    assert proc.returncode == 1 and "failed: s2.fcs" in proc.stderr
    assert "error" in set(pd.read_csv(out / "compare.csv").status)
    proc = cli(fcs, "--template", template, "--manual", tmp_path / "nothing.wsp", "--out", out)
    assert proc.returncode == 2 and "no such FlowJo workspace" in proc.stderr
    proc = cli(fcs, "--template", tmp_path / "none.yaml", "--manual", manual, "--out", out)
    assert proc.returncode == 2 and "none.yaml" in proc.stderr
    bad_map = tmp_path / "map.csv"
    bad_map.write_text("a,b\nx,y\n")
    proc = cli(fcs, "--template", template, "--manual", manual, "--map", bad_map, "--out", out)
    assert proc.returncode == 2 and "cytokit,manual" in proc.stderr
    assert cli(fcs, "--template", template, "--out", out).returncode == 2  # --manual missing
    typo = tmp_path / "typo.csv"  # a manual name no file has: compared (unpaired), and said once
    typo.write_text("cytokit,manual\nHi/Top,hi/topp\n")
    proc = cli(fcs / "s1.fcs", "--template", template, "--manual", manual, "--map", typo, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert ("cytokit compare: warning: --map: Hi/Top is mapped to 'hi/topp', which no file's manual gating has "
            "(a misspelt name?)") in proc.stderr


@pytest.fixture(scope="module")
def real_gated() -> Path:
    if not (REAL_GATED / "README.md").exists():
        pytest.skip(REAL_REASON)
    return REAL_GATED


@pytest.mark.corpus
def test_flowjo_workspace_and_npz_readers_agree(real_gated):
    """Self-consistency of two readers: FlowKit's gating of the workspace is what the npz files hold."""
    root = real_gated / "flowatlas"
    files = sorted((root / "fcs").glob("*.fcs"))
    workspace, npz = read_manual(root / "workspace.wsp", files), read_manual(root / "manual")
    rows = []
    for path in files:
        sample = cytokit.read_fcs(path)
        from_wsp = workspace.gating(path, sample)
        rows += score_file(path.name, from_wsp, npz.gating(path, sample), {p: p for p in from_wsp.membership})
    table = pd.DataFrame(rows)
    assert table.file.nunique() == len(files) == 14
    assert (table.status == "paired").all() and len(table) > 14 * 10
    assert (table.f1 == 1.0).all() and (table.f1_parent == 1.0).all()
    assert (table.n_cytokit == table.n_manual).all()


ACTIVATION_TEMPLATE = """
channels:
  fsc: {pnn: [FSC-A]}
  fsc_h: {pnn: [FSC-H]}
  ssc: {pnn: [SSC-A]}
compensation: none
transforms:
  default: {kind: linear, t: auto}
populations:
  - name: Cells
    parent: root
    gate: {type: cluster, dims: [fsc, ssc], n_components: 3, select: largest, confidence: 0.99}
  - name: Single Cells
    parent: Cells
    gate: {type: singlet, area: fsc, height: fsc_h}
"""


@pytest.mark.corpus
def test_activation_set_against_its_manual_gating(real_gated, tmp_path):
    root = real_gated / "activation"
    template = tmp_path / "activation.yaml"
    template.write_text(ACTIVATION_TEMPLATE)
    table = cytokit.compare(root / "fcs", template, root / "manual", controls=root / "design.csv")
    paired = table[table.status == "paired"]
    assert table.file.nunique() == 17 and not (table.status == "error").any()
    assert len(paired) == 17 * 2 and set(paired.manual) == {"Cells", "Cells/Single Cells"}
    assert set(table[table.status == "unpaired"].population) == {""}  # only manual populations are left
    for column in ("precision", "recall", "f1", "f1_parent"):
        assert paired[column].between(0, 1).all(), column
    assert (paired.n_manual > 20_000).all() and (paired.n_cytokit > 0).all()
    summary = summarise(table)
    assert list(summary.population) == ["Cells", "Cells/Single Cells"] and (summary.n_files == 17).all()


def test_cytokits_own_gatingml_export_pairs_with_its_template(tmp_path):
    """The export writes names as ids ('CD19+' as CD19pos, 'Single Cells' as Single_Cells): compared
    with the template it came from, 1 population paired and 18 were left unpaired."""
    repo = Path(__file__).resolve().parents[1]
    fcs = repo / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs"
    template = cytokit.load_template(repo / "gating_templates" / "cll_cd19_7aad.yaml")
    xml = template.apply(cytokit.read_fcs(fcs), is_control=True).to_gateset().write(tmp_path / "gates.xml")
    table = cytokit.compare([fcs], template, xml)
    assert (table.status == "paired").all() and len(table) == len(template.populations)
    assert dict(zip(table.population, table.manual))["Lymphocytes/Singlets/Viable/CD19+"].endswith("CD19pos")


def test_a_lone_isotype_tube_in_compare_names_the_way_to_gate_it(tmp_path):
    """Without --controls every isotype tube of the demo failed on its marker roles, with no hint."""
    import shutil

    from cytokit import compare

    folder = tmp_path / "fcs"
    folder.mkdir()
    demo = Path(__file__).resolve().parents[1] / "sample_fcs" / "modern"
    for name in ("CLL001_C2D1_isotype.fcs", "CLL001_C2D1_stained.fcs"):
        shutil.copy(demo / name, folder / name)
    manual = tmp_path / "manual"
    manual.mkdir()
    template = Path(__file__).resolve().parents[1] / "gating_templates" / "cll_cd19_7aad.yaml"
    from cytokit.errors import ChannelNotFoundError

    with pytest.raises(ChannelNotFoundError, match="needs marker 'LAG3'.*name it as its stained tube's control_file"):
        compare(folder, template, manual)
