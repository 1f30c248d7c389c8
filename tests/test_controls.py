"""Control tubes of any kind (isotype, FMO, unstimulated, unstained) and the sheet's ``control_file``:
the matching (fast, no gating), a demo cohort with FMO and unstimulated sheets, and the real
Activation set through ``cytokit run`` against ``cytokit compare --controls`` (marked ``corpus``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytokit.controls import control_kind
from cytokit.experiment import Experiment
from cytokit.metadata import check_samples, read_sample_sheet

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "gating_templates" / "cll_cd19_7aad.yaml"
DEMO = REPO / "sample_fcs" / "modern"
REAL_GATED = Path(os.environ.get("CYTOKIT_REAL_GATED", REPO.parent / "shared" / "real_gated"))
ACTIVATION = REAL_GATED / "activation"


@pytest.mark.parametrize("label, kind", [
    ("isotype", "isotype"), ("IgG1", "isotype"), ("Isotype control", "isotype"), ("FMO", "fmo"),
    ("FMO-LAG3", "fmo"), ("fmo_cd69", "fmo"), ("Unstim", "unstimulated"), ("unstimulated", "unstimulated"),
    ("no stim", "unstimulated"), ("Unstained", "unstained"), ("unlabelled", "unstained"),
    ("stained", None), ("stimulated", None), ("restain", None), ("FMOX LAG3", "fmo"), ("CD69 stim", None),
    # a kind's word inside a longer label, and no other kind's (a new lab's names)
    ("isotype PE", "isotype"), ("IgG1-PE", "isotype"), ("mIgG1", "isotype"), ("Isotype (IgG1)", "isotype"),
    ("LAG3 ISO", "isotype"), ("LAG3 FMO", "fmo"), ("LAG3 unstim", "unstimulated"), ("positive control", None),
    ("isotype-unstained", None), ("isolated", None), ("Isotypes", "isotype"), ("iso controls", "isotype"),
    ("LAG3 isotypes", "isotype"),
])
def test_stain_labels_name_their_control_kind(label, kind):
    assert control_kind(label) == kind


def _demo(patients=("CLL001", "CLL002"), **stain) -> pd.DataFrame:
    """The demo's sheet for ``patients``, its isotype tubes relabelled ``stain["isotype"]``."""
    sheet = pd.read_csv(DEMO / "samples.csv", dtype=str)
    sheet = sheet[sheet["patient"].isin(patients)].reset_index(drop=True)
    sheet["stain"] = sheet["stain"].replace(stain)
    sheet["path"] = [str(DEMO / f) for f in sheet["file"]]
    return sheet


def test_the_default_rule_reports_whom_each_control_serves():
    out = check_samples(_demo()).set_index("file")
    assert (out["status"] == "ok").all()
    assert out.at["CLL001_C2D1_stained.fcs", "control_file"] == "CLL001_C2D1_isotype.fcs"
    assert out.at["CLL001_C2D1_isotype.fcs", "control_of"] == "CLL001_C2D1_stained.fcs"
    assert out.at["CLL001_C2D1_isotype.fcs", "control_file"] == ""


def test_a_control_file_column_may_cross_timepoints():
    sheet = _demo(isotype="Unstim")
    sheet["control_file"] = ""
    sheet.loc[sheet["stain"] == "stained", "control_file"] = sheet["patient"] + "_C2D1_isotype.fcs"
    out = check_samples(sheet).set_index("file")
    assert out.at["CLL001_C2D8_stained.fcs", "control_file"] == "CLL001_C2D1_isotype.fcs"
    assert out.at["CLL001_C2D1_isotype.fcs", "stain"] == "unstimulated"
    assert out.at["CLL001_C2D1_isotype.fcs", "control_of"] == "CLL001_C2D1_stained.fcs; CLL001_C2D8_stained.fcs"
    # the C2D8 control serves nobody now: analysed, but said so
    assert out.at["CLL001_C2D8_isotype.fcs", "status"] == "unpaired"
    assert "without a stained tube" in out.at["CLL001_C2D8_isotype.fcs", "error"]
    assert out.loc[out["stain"] == "stained", "status"].eq("ok").all()


@pytest.mark.parametrize("named, message", [
    ("nowhere.fcs", "names nowhere.fcs, which is not in the sample sheet"),
    ("CLL001_C2D1_stained.fcs", "whose stain 'stained' names no control kind"),
    ("CLL001_C2D8_stained.fcs", "itself"),
    ("CLL002_C2D8_isotype.fcs", "a tube of patient CLL002"),
])
def test_a_control_file_that_cannot_serve_is_an_error_naming_the_sheet(tmp_path, named, message):
    sheet = _demo().drop(columns="path")
    sheet["control_file"] = ""
    sheet.loc[sheet["file"] == "CLL001_C2D8_stained.fcs", "control_file"] = named
    for name in sheet["file"]:
        (tmp_path / name).symlink_to(DEMO / name)
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    out = check_samples(read_sample_sheet(tmp_path / "sheet.csv")).set_index("file")
    bad = out.loc["CLL001_C2D8_stained.fcs"]
    assert bad["status"] == "error" and message in bad["error"] and str(tmp_path / "sheet.csv") in bad["error"]
    assert out.loc[out["patient"] == "CLL002", "status"].eq("ok").all()  # the other patient goes on


def test_two_controls_where_one_is_needed_and_a_control_given_a_control():
    sheet = _demo(patients=("CLL001", "CLL002", "CLL003"))
    sheet.loc[sheet["file"] == "CLL002_C2D1_isotype.fcs", "patient"] = "CLL001"  # a second CLL001 C2D1 control
    sheet.loc[sheet["file"] == "CLL002_C2D1_isotype.fcs", "stain"] = "unstained"
    sheet["control_file"] = ""
    sheet.loc[sheet["file"] == "CLL003_C2D1_isotype.fcs", "control_file"] = "CLL003_C2D8_isotype.fcs"
    out = check_samples(sheet).set_index("file")
    two = out.loc["CLL001_C2D1_stained.fcs"]
    assert two["status"] == "error"
    assert "has 2 control tubes (CLL001_C2D1_isotype.fcs (isotype), CLL002_C2D1_isotype.fcs (unstained))" \
        in two["error"] and "control_file" in two["error"]
    assert out.at["CLL003_C2D1_isotype.fcs", "status"] == "error"
    assert "a control tube takes none" in out.at["CLL003_C2D1_isotype.fcs", "error"]
    assert out.at["CLL001_C2D8_stained.fcs", "status"] == "unpaired"  # analysed; its C2D1 partner is not
    assert out.at["CLL001_C2D8_stained.fcs", "control_file"] == "CLL001_C2D8_isotype.fcs"


@pytest.fixture(scope="module")
def isotype_run():
    return Experiment(_demo(), TEMPLATE).run()


def test_fmo_controls_give_the_isotype_figures_and_say_what_they_are(isotype_run):
    sheet = _demo(isotype="FMO")
    sheet["control_file"] = [f.replace("stained", "isotype") if s == "stained" else ""
                             for f, s in zip(sheet["file"], sheet["stain"])]
    fmo = Experiment(sheet, TEMPLATE).run()
    assert set(fmo.samples["stain"]) == {"fmo", "stained"}
    stained = fmo.markers[fmo.markers["stain"] == "stained"].reset_index(drop=True)
    before = isotype_run.markers[isotype_run.markers["stain"] == "stained"].reset_index(drop=True)
    for column in ("pct_pos", "threshold", "isotype_median", "rmfi"):
        np.testing.assert_array_equal(stained[column], before[column])
    assert stained["threshold_source"].str.fullmatch(r"0\.99 quantile of fmo CLL00\d_C2D\d_isotype\.fcs").all()
    metrics = ["delta_pct_pos", "log2_rmfi_ratio", "isotype_shift", "ks_d", "emd", "pb_tx"]
    np.testing.assert_allclose(fmo.paired[metrics].to_numpy(float), isotype_run.paired[metrics].to_numpy(float))


def test_one_unstimulated_control_for_both_timepoints_and_controls_of_two_kinds(isotype_run):
    sheet = _demo(isotype="unstimulated")
    sheet["control_file"] = [p + "_C2D1_isotype.fcs" if s == "stained" else ""
                             for p, s in zip(sheet["patient"], sheet["stain"])]
    sheet = sheet[~sheet["file"].str.endswith("C2D8_isotype.fcs")]
    res = Experiment(sheet, TEMPLATE).run()
    stained = res.markers[res.markers["stain"] == "stained"]
    for (_, marker), rows in stained.groupby(["patient", "marker"]):
        assert rows["threshold"].nunique() == 1  # both timepoints against the one C2D1 control
    # the baseline keeps its own control's threshold, so its % positive is the isotype run's
    base = isotype_run.markers[(isotype_run.markers["timepoint"] == "C2D1")
                               & (isotype_run.markers["stain"] == "stained")].set_index(["file", "marker"])
    now = stained[stained["timepoint"] == "C2D1"].set_index(["file", "marker"])
    np.testing.assert_array_equal(now.loc[base.index, "pct_pos"], base["pct_pos"])
    assert len(res.paired) == 4 and (res.paired["isotype_shift"] == 0).all()  # one control: no session shift
    assert res.paired["ks_d"].notna().all()

    mixed = _demo()
    mixed.loc[mixed["file"].str.endswith("C2D8_isotype.fcs"), "stain"] = "unstained"
    res = Experiment(mixed, TEMPLATE).run()
    assert len(res.paired) == 4 and res.paired["ks_d"].isna().all() and res.paired["isotype_shift"].isna().all()
    assert res.paired["flag"].str.contains(r"controls of two kinds \(isotype at C2D1, unstained at C2D8\)").all()
    assert res.paired["delta_pct_pos"].notna().all()  # each tube against its own control still


SHEET = REPO / "gating_templates" / "examples" / "activation_samples.csv"


def test_the_activation_sheet_is_its_design():
    """The committed sheet is ``design.csv`` as a sample sheet: a patient per treatment, a timepoint
    per ovalbumin dose, the role as the stain, and the design's own ``control_file``."""
    sheet = pd.read_csv(SHEET, dtype=str, keep_default_na=False)
    assert list(sheet.columns) == ["file", "patient", "timepoint", "stain", "control_file"]
    assert {control_kind(s) for s in sheet["stain"]} == {"unstimulated", "unstained", None}
    if (ACTIVATION / "design.csv").exists():
        design = pd.read_csv(ACTIVATION / "design.csv", dtype=str, keep_default_na=False)
        assert sheet["file"].tolist() == design["file"].tolist()
        assert sheet["stain"].tolist() == design["role"].tolist()
        assert sheet["control_file"].tolist() == design["control_file"].tolist()


@pytest.mark.corpus
def test_activation_runs_with_its_unstimulated_controls_as_compare_does(tmp_path):
    if not (REAL_GATED / "README.md").exists():
        pytest.skip(f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)")
    import cytokit
    from cytokit.cli import main

    template = REPO / "gating_templates" / "examples" / "activation.yaml"
    out = tmp_path / "out"
    assert main(["run", str(ACTIVATION / "fcs"), "--samples", str(SHEET),
                 "--template", str(template), "--out", str(out), "--no-plots", "--workers", "1", "--quiet"]) == 0
    samples = pd.read_csv(out / "samples.csv", dtype=str, keep_default_na=False).set_index("file")
    design = pd.read_csv(ACTIVATION / "design.csv", dtype=str, keep_default_na=False).set_index("file")
    assert (samples["status"] != "error").all() and "isotype" not in set(samples["stain"])
    stimulated = design.index[design["role"] == "stimulated"]
    assert samples.loc[stimulated, "control_file"].tolist() == design.loc[stimulated, "control_file"].tolist()
    assert samples.at["Activation_1.fcs", "control_of"] == "Activation_3.fcs; Activation_5.fcs; Activation_7.fcs"

    reference = cytokit.compare(ACTIVATION / "fcs", template, ACTIVATION / "manual",
                                controls=ACTIVATION / "design.csv")
    reference = reference[reference["population"].str.contains("CD69+", regex=False)]
    populations = pd.read_csv(out / "populations.csv").set_index(["file", "population"])
    ours = populations.loc[list(zip(reference["file"], reference["population"]))]
    stim = reference["file"].isin(stimulated).to_numpy()
    assert stim.sum() == 24
    np.testing.assert_array_equal(ours["count"].to_numpy()[stim], reference["n_cytokit"].to_numpy()[stim])
    np.testing.assert_allclose(ours["pct_parent"].to_numpy()[stim], reference["pct_parent_cytokit"].to_numpy()[stim])
    # and the person's: within issue 15's CD69+ goal at the median
    delta = np.abs(ours["pct_parent"].to_numpy()[stim] - reference["pct_parent_manual"].to_numpy()[stim])
    assert np.median(delta) < 2


@pytest.mark.corpus
def test_activation_marker_rows_name_the_unstimulated_control(tmp_path):
    if not (REAL_GATED / "README.md").exists():
        pytest.skip(f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)")
    text = (REPO / "gating_templates" / "examples" / "activation.yaml").read_text()
    template = tmp_path / "activation_cd69.yaml"
    template.write_text(text + "\nmarkers:\n  - {name: CD69, channel: cd69, population: CD4 T Cells,\n"
                               "     positivity: {method: control_quantile, quantile: 0.995}}\n")
    sheet = read_sample_sheet(SHEET, folder=ACTIVATION / "fcs")
    sheet = sheet[sheet["patient"] == "Stim-A"]
    res = Experiment(sheet, template).run()
    markers = res.markers.set_index("file")
    assert markers.at["Activation_1.fcs", "threshold_source"] == "0.995 quantile of own events"
    for name in ("Activation_3.fcs", "Activation_5.fcs", "Activation_7.fcs"):
        assert markers.at[name, "threshold_source"] == "0.995 quantile of unstimulated Activation_1.fcs"
        assert markers.at[name, "threshold"] == markers.at["Activation_1.fcs", "threshold"]
        assert markers.at[name, "isotype_median"] == markers.at["Activation_1.fcs", "median"]
        path = "On scale/Cells/Single Cells/Live Cells/T Cells/CD4 T Cells/CD69+ CD4 T Cells"
        assert res.fitted[name][path] == res.fitted["Activation_1.fcs"][path]  # the gate fitted on the control
    assert markers.loc["Activation_7.fcs", "pct_pos"] > 2 * markers.loc["Activation_3.fcs", "pct_pos"]


@pytest.mark.corpus
def test_a_comparison_from_a_timepoint_of_control_tubes_says_so(tmp_path, capsys):
    """--compare ova0:ova0.5 where ova0 holds the unstimulated controls: 'no patient could be paired'
    did not say why."""
    if not (REAL_GATED / "README.md").exists():
        pytest.skip(f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)")
    from cytokit.cli import main

    sheet = pd.read_csv(SHEET, dtype=str, keep_default_na=False)
    fcs = tmp_path / "fcs"
    fcs.mkdir()
    for name in sheet["file"][sheet["patient"] == "Stim-A"]:
        (fcs / name).symlink_to(ACTIVATION / "fcs" / name)
    sheet[sheet["patient"] == "Stim-A"].to_csv(tmp_path / "samples.csv", index=False)
    template = tmp_path / "activation_cd69.yaml"
    template.write_text((REPO / "gating_templates" / "examples" / "activation.yaml").read_text()
                        + "\nmarkers:\n  - {name: CD69, channel: cd69, population: CD4 T Cells}\n")
    assert main(["run", str(fcs), "--samples", str(tmp_path / "samples.csv"), "--template", str(template),
                 "--out", str(tmp_path / "out"), "--no-plots", "--workers", "1", "--quiet",
                 "--compare", "ova0:ova0.5"]) == 0
    err = capsys.readouterr().err
    assert "no patient could be paired" in err and "ova0 holds only control tubes" in err
