"""Panel sheets (cytokit/panel.py): channel → marker for files without ``$PnS``, and role resolution through them."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cytokit
from cytokit.errors import ChannelNotFoundError, MetadataError, TemplateError
from cytokit.gating.template import parse_template
from cytokit.panel import read_panel

REPO = Path(__file__).resolve().parents[1]
REAL_GATED = Path(os.environ.get("CYTOKIT_REAL_GATED", REPO.parent / "shared" / "real_gated"))
REAL_REASON = f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)"

TEMPLATE = """\
channels:
  fsc: {pnn: [FSC-A]}
  cd19: {marker: CD19}
  cd5: {marker: CD5}
populations:
  - name: Cells
    parent: root
    gate: {type: range, dim: fsc, min: 10}
  - name: CD19+
    parent: Cells
    gate: {type: range, dim: cd19, min: 100}
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _fcs(path: Path, markers: dict[str, str] | None = None) -> Path:
    """A small file with detectors FSC-A, FL1-A, FL2-A, FL3-A (no $PnS unless ``markers``)."""
    rng = np.random.default_rng(0)
    events = pd.DataFrame({"FSC-A": rng.uniform(0, 1000, 200), "FL1-A": rng.uniform(0, 1000, 200),
                           "FL2-A": rng.uniform(0, 1000, 200), "FL3-A": rng.uniform(0, 1000, 200)})
    return cytokit.write_fcs(path, events, markers=markers)


# ----------------------------------------------------------------------------- reading


def test_read_panel_ignores_empty_markers_and_keeps_lines(tmp_path):
    panel = read_panel(_write(tmp_path / "panel.csv", "channel,marker\nFSC-A,\nFL1-A,CD19\n FL2-A , CD5 \n"))
    assert panel.markers_for("x.fcs") == {"FL1-A": "CD19", "FL2-A": "CD5"}
    assert [r.line for r in panel.rows] == [3, 4]


@pytest.mark.parametrize("text, message", [
    ("channel,antigen\nFL1-A,CD19\n", "line 1: .*missing marker.*; rename antigen → marker$"),
    ("pnn,marker\nFL1-A,CD19\n", "line 1: .*missing channel.*; rename pnn → channel$"),
    ("fluorochrome,marker\nPE,CD19\n", "line 1: .*missing channel \\(found: fluorochrome, marker\\)$"),
    ("channel,marker\nFL1-A,CD19\nFL1-A,CD20\n", "line 3: channel 'FL1-A' is marker 'CD19' on line 2"),
    ("channel,marker,file\nFL1-A,CD19,*_PB_*\nFL1-A,CD20,*_PB_*\n", "line 3: channel 'FL1-A' for files"),
    ("channel,marker\n,CD19\n", "line 2: marker 'CD19' has no channel"),
])
def test_read_panel_errors_name_the_sheet_and_line(tmp_path, text, message):
    sheet = _write(tmp_path / "panel.csv", text)
    with pytest.raises(MetadataError, match=f"{sheet.name}, {message}"):
        read_panel(sheet)


def test_a_channel_repeated_with_the_same_marker_is_fine(tmp_path):
    panel = read_panel(_write(tmp_path / "panel.csv", "channel,marker\nFL1-A,CD19\nFL1-A,CD19\n"))
    assert len(panel.rows) == 1


def test_missing_sheet_is_a_metadata_error(tmp_path):
    with pytest.raises(MetadataError, match="nope.csv: cannot read the panel sheet"):
        read_panel(tmp_path / "nope.csv")


def test_file_patterns_pick_rows_and_override_every_file_rows(tmp_path):
    panel = read_panel(_write(tmp_path / "panel.csv", """\
        channel,marker,file
        FL1-A,CD19,
        FL2-A,CD5,*_BM_*.fcs
        FL2-A,CD20,*_PB_*.fcs
        FL1-A,CD22,P1_PB_C1.fcs
        """))
    assert panel.markers_for("P1_BM_C1.fcs") == {"FL1-A": "CD19", "FL2-A": "CD5"}
    assert panel.markers_for("P1_PB_C1.fcs") == {"FL1-A": "CD22", "FL2-A": "CD20"}
    assert panel.markers_for("other.fcs") == {"FL1-A": "CD19"}
    assert panel.markers_for(None) == {"FL1-A": "CD19"}


def test_two_matching_patterns_with_different_markers_are_an_error(tmp_path):
    panel = read_panel(_write(tmp_path / "panel.csv", "channel,marker,file\nFL2-A,CD5,*_BM_*\nFL2-A,CD20,P1_*\n"))
    assert panel.markers_for("P2_BM_1.fcs") == {"FL2-A": "CD5"}
    with pytest.raises(MetadataError, match=r"lines 2 and 3: .*both match P1_BM_1.fcs"):
        panel.markers_for("P1_BM_1.fcs")


# ----------------------------------------------------------------------------- labelling and roles


def test_label_takes_precedence_over_pns_and_keeps_other_channels(tmp_path):
    panel = read_panel(_write(tmp_path / "panel.csv", "channel,marker\nFL1-A,CD19\nFL9-A,CD3\n"))
    sample = cytokit.read_fcs(_fcs(tmp_path / "a.fcs", markers={"FL1-A": "wrong", "FL2-A": "CD5"}))
    labelled = panel.label(sample)
    assert labelled.markers == {"FL1-A": "CD19", "FL2-A": "CD5"}
    assert sample.markers == {"FL1-A": "wrong", "FL2-A": "CD5"}  # the original is untouched
    assert labelled.events is sample.events


def test_a_sheet_names_channels_in_any_case_and_spacing_separated_by_semicolons(tmp_path):
    """As sample sheets and templates (pnn: [fsc-a] matches FSC-A): ' fl1-a ' is FL1-A, ';' a separator."""
    panel = read_panel(_write(tmp_path / "panel.csv", "channel;marker\n fl1-a ;CD19\nfl2-A;CD5\n"))
    labelled = panel.label(cytokit.read_fcs(_fcs(tmp_path / "a.fcs", markers={"FL1-A": "", "FL2-A": ""})))
    assert labelled.markers == {"FL1-A": "CD19", "FL2-A": "CD5"}


def test_marker_roles_resolve_through_the_template_panel_key(tmp_path):
    _write(tmp_path / "panel.csv", "channel,marker\nFL1-A,CD19\nFL3-A,CD5\n")
    template_path = _write(tmp_path / "t.yaml", TEMPLATE + "panel: panel.csv\n")
    template = cytokit.load_template(template_path)
    sample = cytokit.read_fcs(_fcs(tmp_path / "a.fcs"))
    assert template.resolve_channels(sample) == {"fsc": "FSC-A", "cd19": "FL1-A", "cd5": "FL3-A"}
    result = template.apply(sample)
    assert result.sample.markers == {"FL1-A": "CD19", "FL3-A": "CD5"}  # figures and outputs see the sheet


def test_panel_option_overrides_the_template_key(tmp_path):
    _write(tmp_path / "panel.csv", "channel,marker\nFL1-A,CD19\nFL3-A,CD5\n")
    _write(tmp_path / "other.csv", "channel,marker\nFL2-A,CD19\nFL1-A,CD5\n")
    template_path = _write(tmp_path / "t.yaml", TEMPLATE + "panel: panel.csv\n")
    template = cytokit.load_template(template_path, panel=tmp_path / "other.csv")
    sample = cytokit.read_fcs(_fcs(tmp_path / "a.fcs"))
    assert template.resolve_channels(sample) == {"fsc": "FSC-A", "cd19": "FL2-A", "cd5": "FL1-A"}


def test_template_panel_key_must_name_an_existing_sheet(tmp_path):
    template_path = _write(tmp_path / "t.yaml", TEMPLATE + "panel: missing.csv\n")
    with pytest.raises(TemplateError, match=r"t.yaml, line \d+, key panel: the panel sheet .*missing.csv"):
        cytokit.load_template(template_path)


def test_role_error_says_when_no_sheet_row_applies_to_the_file(tmp_path):
    _write(tmp_path / "panel.csv", "channel,marker,file\nFL1-A,CD19,*_BM_*\nFL3-A,CD5,*_BM_*\n")
    template = cytokit.load_template(_write(tmp_path / "t.yaml", TEMPLATE), panel=tmp_path / "panel.csv")
    assert template.resolve_channels(cytokit.read_fcs(_fcs(tmp_path / "P1_BM_1.fcs")))["cd19"] == "FL1-A"
    with pytest.raises(ChannelNotFoundError, match=r"P1_PB_1.fcs.*panel sheet .*panel.csv has no row for P1_PB_1.fcs"
                                                   r" \(its file patterns: \*_BM_\*\)"):
        template.resolve_channels(cytokit.read_fcs(_fcs(tmp_path / "P1_PB_1.fcs")))


def test_role_error_says_when_the_sheets_channels_are_not_in_the_file(tmp_path):
    _write(tmp_path / "panel.csv", "channel,marker\nBL1-A,CD19\nBL3-A,CD5\n")
    template = cytokit.load_template(_write(tmp_path / "t.yaml", TEMPLATE), panel=tmp_path / "panel.csv")
    with pytest.raises(ChannelNotFoundError, match=r"none of the channels panel sheet .* \(BL1-A, BL3-A\)"):
        template.resolve_channels(cytokit.read_fcs(_fcs(tmp_path / "a.fcs")))


def test_without_a_panel_marker_roles_fail_on_files_without_pns(tmp_path):
    template = parse_template(TEMPLATE)
    with pytest.raises(ChannelNotFoundError, match="role 'cd19' needs marker 'CD19'"):
        template.resolve_channels(cytokit.read_fcs(_fcs(tmp_path / "a.fcs")))


# ----------------------------------------------------------------------------- real data


@pytest.mark.corpus
def test_activation_panel_resolves_marker_roles_to_the_example_templates_detectors():
    folder = REAL_GATED / "activation"
    if not (folder / "panel.csv").exists():
        pytest.skip(REAL_REASON)
    example = cytokit.load_template(REPO / "gating_templates" / "examples" / "activation.yaml")
    markers = {"dead405": "Hoechst-405", "dead430": "Hoechst-430", "va2": "Va2", "cd11c": "CD11c",
               "cd4": "CD4", "cd8": "CD8", "cd69": "CD69"}
    lines = ["channels:"] + [f"  {role}: {{pnn: [{spec.pnn[0]}]}}" for role, spec in example.roles.items()
                             if role not in markers]
    lines += [f"  {role}: {{marker: {marker}}}" for role, marker in markers.items()]
    lines += ["populations:", "  - {name: all, parent: root, gate: {type: range, dim: fsc, min: -1.0e+300}}"]
    by_marker = parse_template("\n".join(lines) + "\n")
    by_marker.panel = read_panel(folder / "panel.csv")
    files = sorted((folder / "fcs").glob("*.fcs"))
    assert files
    for path in files:
        sample = cytokit.read_fcs(path)
        assert not any(sample.channels.pns), f"{path.name} has $PnS; the test is about files without"
        assert by_marker.resolve_channels(sample) == example.resolve_channels(sample), path.name


# ----------------------------------------------------------------------------- the API and the CLI

CLL_TEMPLATE = REPO / "gating_templates" / "cll_cd19_7aad.yaml"
CLL_PANEL = """\
channel,marker,file
FITC-A,CD19,
PerCP-Cy5-5-A,7AAD,
PE-A,LAG3,*_stained.fcs
APC-A,TNFa,*_stained.fcs
"""


@pytest.fixture
def unlabelled(tmp_path):
    """CLL001's four demo tubes written again without $PnS, and the panel sheet that names their markers."""
    folder = tmp_path / "fcs"
    folder.mkdir()
    for path in sorted((REPO / "sample_fcs" / "modern").glob("CLL001_*.fcs")):
        sample = cytokit.read_fcs(path)
        sample.channels = sample.channels.assign(pns="")
        cytokit.write_fcs(folder / path.name, sample)
    return folder, _write(tmp_path / "panel.csv", CLL_PANEL)


def test_experiment_with_a_panel_gives_the_results_of_the_labelled_files(unlabelled):
    folder, sheet = unlabelled
    with pytest.raises(ChannelNotFoundError):  # the files alone do not say which detector is CD19
        cytokit.load_template(CLL_TEMPLATE).resolve_channels(cytokit.read_fcs(folder / "CLL001_C2D1_stained.fcs"))
    labelled = cytokit.Experiment.from_folder(REPO / "sample_fcs" / "modern", template=CLL_TEMPLATE)
    labelled.samples = labelled.samples[labelled.samples["patient"] == "CLL001"]
    expected = labelled.run()
    result = cytokit.Experiment.from_folder(folder, template=CLL_TEMPLATE, panel=sheet).run()
    assert (result.samples["status"] == "ok").all(), result.samples[["file", "error"]]
    assert result.panel_path == str(sheet.resolve())
    columns = ["file", "marker", "n_events", "median", "pct_pos"]
    pd.testing.assert_frame_equal(result.markers[columns].reset_index(drop=True),
                                  expected.markers[columns].reset_index(drop=True))
    channels = {role: (pnn, pns) for role, pnn, pns in result.gating["CLL001_C2D1_stained.fcs"]["channels"]}
    assert channels["cd19"] == ("FITC-A", "CD19")  # the report shows the sheet's marker
    assert channels["lag3"] == ("PE-A", "LAG3")


def test_compare_takes_a_panel(unlabelled, tmp_path):
    folder, sheet = unlabelled
    manual = tmp_path / "manual"
    manual.mkdir()
    template = cytokit.load_template(CLL_TEMPLATE, panel=sheet)
    stained = folder / "CLL001_C2D1_stained.fcs"
    result = template.apply(cytokit.read_fcs(stained), is_control=True)
    np.savez(manual / "CLL001_C2D1_stained.npz", Lymphocytes=result.membership["Lymphocytes"])
    table = cytokit.compare([stained], CLL_TEMPLATE, manual, panel=sheet)
    row = table[table["population"] == "Lymphocytes"].iloc[0]
    assert row["status"] == "paired" and row["f1"] == 1.0
    failed = cytokit.compare([stained], CLL_TEMPLATE, manual, strict=False)
    assert (failed["status"] == "error").all()
    assert "needs marker 'CD19'" in failed["note"].iloc[0]


@pytest.mark.parametrize("command", [["run", "FCS", "--template", "t.yaml", "--out", "o"],
                                     ["compare", "FCS", "--template", "t.yaml", "--manual", "m", "--out", "o"],
                                     ["learn", "m", "--files", "a.fcs", "--out", "t.yaml"],
                                     ["gate", "a.fcs", "--template", "t.yaml"]])
def test_cli_commands_take_panel(command):
    from cytokit.cli import build_parser

    assert build_parser().parse_args([*command, "--panel", "panel.csv"]).panel == "panel.csv"
    assert build_parser().parse_args(command).panel is None


def test_cli_gate_with_panel_resolves_marker_roles(unlabelled, capsys):
    from cytokit.cli import main

    folder, sheet = unlabelled
    args = ["gate", str(folder / "CLL001_C2D1_stained.fcs"), "--template", str(CLL_TEMPLATE)]
    assert main(args) == 1
    assert "needs marker 'CD19'" in capsys.readouterr().err
    assert main([*args, "--panel", str(sheet)]) == 0
    assert "CD19+" in capsys.readouterr().out


def test_cli_panel_errors_are_usage_errors(unlabelled, tmp_path, capsys):
    from cytokit.cli import main

    folder, _ = unlabelled
    bad = _write(tmp_path / "bad.csv", "channel,antigen\nFITC-A,CD19\n")
    code = main(["run", str(folder), "--template", str(CLL_TEMPLATE), "--panel", str(bad),
                 "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    assert "bad.csv, line 1: a panel sheet needs the columns channel,marker" in capsys.readouterr().err


def test_learn_with_a_panel_learns_marker_roles_and_writes_the_panel_key(tmp_path):
    from tests.test_learn import synthetic_file

    source = tmp_path / "source"
    (source / "fcs").mkdir(parents=True)
    for name, gain, share, seed in [("a", 1.0, 0.5, 0), ("b", 3.0, 0.3, 1)]:
        synthetic_file(source, name, gain=gain, share=share, seed=seed)
    fcs = tmp_path / "fcs"
    fcs.mkdir()
    for path in sorted((source / "fcs").glob("*.fcs")):
        sample = cytokit.read_fcs(path)
        sample.channels = sample.channels.assign(pns="")
        cytokit.write_fcs(fcs / path.name, sample)
    sheet = _write(tmp_path / "panel.csv", "channel,marker\nCD4-A,CD4\nCD8-A,CD8\n")
    out = tmp_path / "templates" / "learned.yaml"
    out.parent.mkdir()
    learned = cytokit.learn_template(source / "manual", [fcs / "a.fcs", fcs / "b.fcs"], out=out, panel=sheet)
    assert learned.template.roles["cd4"].marker == "CD4"
    assert 'panel: "../panel.csv"' in out.read_text()
    reopened = cytokit.load_template(out)
    assert reopened.panel is not None and reopened.panel.source == str(out.parent / "../panel.csv")
    assert reopened.resolve_channels(cytokit.read_fcs(fcs / "a.fcs"))["cd4"] == "CD4-A"
    loo = learned.leave_one_out
    assert set(loo["file"]) == {"a.fcs", "b.fcs"} and (loo["status"] != "error").all()


def test_the_cache_key_changes_with_the_panel_sheet(tmp_path):
    from cytokit.cache import template_sha256

    sheet = _write(tmp_path / "panel.csv", "channel,marker\nFL1-A,CD19\nFL3-A,CD5\n")
    template_path = _write(tmp_path / "t.yaml", TEMPLATE + "panel: panel.csv\n")
    before = template_sha256(template_path)
    assert template_sha256(template_path) == before
    _write(sheet, "channel,marker\nFL1-A,CD5\nFL3-A,CD19\n")  # the template is unchanged; its markers are not
    after = template_sha256(template_path)
    assert after != before
    other = _write(tmp_path / "other.csv", "channel,marker\nFL2-A,CD19\nFL3-A,CD5\n")
    assert template_sha256(template_path, other) not in (before, after)
