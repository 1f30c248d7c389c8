"""Issue 19.1 and 19.3 end to end: a simulated cohort with four timepoints and a response column through
``cytokit run --compare ... --group-by response`` and ``Experiment(compare=..., group_by=...)``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cytokit import Experiment, read_sample_sheet
from cytokit.cli import main
from cytokit.errors import MetadataError

from .test_docs import documented

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "gating_templates" / "cll_cd19_7aad.yaml"
TIMEPOINTS = ("C1D1", "C1D8", "C2D1", "C2D8")
PATIENTS = 6  # three responders, three non-responders


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """The sample sheet of a 4-timepoint cohort with a response column (48 files of 1,500 events)."""
    out = tmp_path_factory.mktemp("four_timepoints")
    assert main(["simulate", str(out), "--patients", str(PATIENTS), "--events", "1500", "--seed", "5",
                 "--timepoints", ",".join(TIMEPOINTS), "--response", "--nonresponder-share", "0.5"]) == 0
    return out / "samples.csv"


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    code = main(["run", str(cohort.parent), "--samples", str(cohort), "--template", str(TEMPLATE), "--out", str(out),
                 "--compare", "C1D1:C1D8", "--compare", "C2D1:C2D8", "--group-by", "response", "--workers", "2",
                 "--quiet"])
    assert code == 0
    return out


def table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv", keep_default_na=False, na_values=[""])


def test_the_sheet_has_four_timepoints_and_a_response_per_patient(cohort):
    sheet = pd.read_csv(cohort)
    assert list(sheet.columns) == ["file", "patient", "timepoint", "stain", "response"]
    assert len(sheet) == PATIENTS * len(TIMEPOINTS) * 2
    assert sheet.groupby("patient")["response"].nunique().eq(1).all()
    assert sheet.drop_duplicates("patient")["response"].value_counts().to_dict() == {"responder": 3,
                                                                                     "non-responder": 3}


def test_every_tube_is_analysed_and_paired_rows_come_per_comparison(run):
    samples = table(run, "samples")
    assert (samples["status"] == "ok").all(), samples[samples["status"] != "ok"]
    assert "response" in samples.columns  # the sheet's extra column follows cytokit's
    paired = table(run, "paired")
    assert list(paired.columns) == documented()["paired"]
    counts = paired.groupby(["baseline", "followup"]).size().to_dict()
    assert counts == {("C1D1", "C1D8"): PATIENTS * 2, ("C2D1", "C2D8"): PATIENTS * 2}  # × LAG3, TNFa
    markers = table(run, "markers")
    assert set(markers["timepoint"]) == set(TIMEPOINTS)


def test_the_cohort_summarises_each_comparison(run):
    cohort = table(run, "cohort")
    assert list(cohort.columns[:4]) == ["marker", "population", "baseline", "followup"]
    assert list(cohort.columns[4:]) == documented()["cohort"][2:]
    lag3 = cohort[(cohort["marker"] == "LAG3") & (cohort["metric"] == "delta_pct_pos")]
    assert list(zip(lag3["baseline"], lag3["followup"])) == [("C1D1", "C1D8"), ("C2D1", "C2D8")]
    assert (lag3["n_pairs"] == PATIENTS).all()
    # two BH families over every comparison: the signed changes' rows, and the distances'
    from cytokit.cohort import DISTANCE_METRICS, benjamini_hochberg

    for family in (cohort["metric"].isin(DISTANCE_METRICS), ~cohort["metric"].isin(DISTANCE_METRICS)):
        rows = cohort[family]
        assert rows["q_bh"].to_numpy() == pytest.approx(benjamini_hochberg(rows["p_value"].to_numpy(float)),
                                                        nan_ok=True)


def test_the_groups_table_compares_responders_with_non_responders(run):
    groups = table(run, "groups")
    assert list(groups.columns) == documented()["groups"]
    assert len(groups) == 2 * 2 * 8  # markers × comparisons × metrics, one pair of groups
    assert set(groups["group_a"]) == {"non-responder"} and set(groups["group_b"]) == {"responder"}
    assert (groups[["n_a", "n_b"]] == 3).all().all()
    change = groups[groups["metric"] == "delta_pct_pos"]
    assert len(change) == 4
    # responders' LAG3 and TNF-a rise at every later timepoint, non-responders' stay within a few points:
    # the groups separate completely, which an exact Mann-Whitney test of 3 against 3 gives as p = 2/20
    assert (change["median_diff"] > 3).all(), change
    assert change[["ci_low", "ci_high"]].isna().all().all()  # groups of 3: no CI (a bootstrap's excluded 0 at p 0.1)
    assert (change["test"] == "mann-whitney U exact").all()
    assert change["p_value"].tolist() == pytest.approx([0.1] * 4)
    assert change["p_min"].tolist() == pytest.approx([0.1] * 4)
    assert (change["u_statistic"] == 0).all()  # every non-responder below every responder
    from cytokit.cohort import benjamini_hochberg

    assert groups["q_bh"].to_numpy() == pytest.approx(benjamini_hochberg(groups["p_value"].to_numpy(float)),
                                                     nan_ok=True)


def test_the_report_and_plots_show_each_comparison_every_timepoint_and_the_groups(run):
    plots = {p.name for p in (run / "plots").iterdir()}
    for marker in ("LAG3", "TNFa"):
        assert f"longitudinal_{marker}.png" in plots
        assert {f"paired_{marker}_C1D1_C1D8.png", f"paired_{marker}_C2D1_C2D8.svg"} <= plots
    assert "paired_LAG3.png" not in plots
    html = (run / "report.html").read_text()
    assert "comparisons (baseline → follow-up): C1D1 → C1D8, C2D1 → C2D8" in html
    assert "<h3>Every timepoint</h3>" in html and "C1D1, C1D8, C2D1, C2D8" in html
    assert "Groups of patients: response" in html and "mann-whitney U exact" in html
    assert html.count('alt="% positive of') == 2 and html.count('alt="paired plot of') == 4


def test_the_longitudinal_figure_draws_each_patient_across_the_timepoints_in_order(cohort):
    from cytokit.plots import plot_longitudinal

    res = Experiment.from_folder(cohort.parent, template=TEMPLATE, samples=cohort,
                                 compare=[("C2D1", "C2D8"), "C1D1:C1D8"]).run()
    # in time order, not the comparisons' (which drew C2D1, C2D8, C1D1, C1D8 on the axis)
    assert res.timepoints == list(TIMEPOINTS)
    fig = plot_longitudinal(res.markers, "LAG3", timepoints=list(TIMEPOINTS),
                            groups={f"CLL00{i}": "a" if i % 2 else "b" for i in range(1, 7)})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(TIMEPOINTS)
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 4]
    assert len(lines) == PATIENTS + 2  # one per patient, one median per group
    stained = res.markers[(res.markers["marker"] == "LAG3") & (res.markers["stain"] == "stained")]
    first = stained[stained["patient"] == "CLL001"].set_index("timepoint")["pct_pos"]
    assert list(lines[0].get_ydata()) == pytest.approx([first[tp] for tp in TIMEPOINTS])


def test_a_timepoint_no_comparison_uses_is_gated_reported_and_said_to_be_left_out(cohort):
    res = Experiment.from_folder(cohort.parent, template=TEMPLATE, samples=cohort,
                                 compare=["C1D1:C1D8", "C1D1:C2D8"], group_by="response").run()
    samples = res.samples.set_index("file")
    unused = samples[samples["timepoint"] == "C2D1"]
    assert len(unused) == 2 * PATIENTS and (unused["status"] == "unpaired").all()
    assert unused["error"].str.contains("timepoint C2D1 is in no comparison (C1D1:C1D8, C1D1:C2D8); analysed but left out",
                                        regex=False).all()
    assert (samples.loc[samples["timepoint"] != "C2D1", "status"] == "ok").all()
    assert set(unused.index) <= set(res.populations["file"]) and set(unused.index) <= set(res.markers["file"])
    assert set(zip(res.paired["baseline"], res.paired["followup"])) == {("C1D1", "C1D8"), ("C1D1", "C2D8")}
    assert res.timepoints == ["C1D1", "C1D8", "C2D1", "C2D8"]  # time order: the unused C2D1 where it falls
    assert set(zip(res.groups["baseline"], res.groups["followup"])) == {("C1D1", "C1D8"), ("C1D1", "C2D8")}
    # each tube against its own timepoint's isotype, whichever comparison it is in
    markers = res.markers.set_index(["file", "marker"])
    later = res.paired[res.paired["followup"] == "C2D8"]
    assert len(later) == 2 * PATIENTS
    for row in later.itertuples():
        tube = markers.loc[(f"{row.patient}_C2D8_stained.fcs", row.marker)]
        assert tube["threshold_source"].endswith(f"{row.patient}_C2D8_isotype.fcs")
        assert row.rmfi_followup == pytest.approx(tube["rmfi"])
        assert row.pct_pos_baseline == pytest.approx(markers.loc[(f"{row.patient}_C1D1_stained.fcs", row.marker),
                                                                 "pct_pos"])


def test_a_patient_lacking_a_timepoint_is_unpaired_only_where_it_is_needed(cohort):
    sheet = read_sample_sheet(cohort)
    sheet = sheet[~((sheet["patient"] == "CLL002") & (sheet["timepoint"] == "C2D8"))]
    exp = Experiment(sheet, TEMPLATE, compare=["C1D1:C1D8", "C2D1:C2D8"])
    rows = exp.samples[exp.samples["patient"] == "CLL002"].set_index("file")
    assert (rows.loc[rows["timepoint"].isin(["C1D1", "C1D8"]), "status"] == "ok").all()
    c2d1 = rows[rows["timepoint"] == "C2D1"]
    assert (c2d1["status"] == "unpaired").all()
    assert c2d1["error"].str.startswith("patient CLL002 has no usable C2D8 tube pair").all()


def test_a_patient_in_two_groups_is_an_error_naming_the_patient(cohort, tmp_path, capsys):
    sheet = pd.read_csv(cohort)
    sheet.loc[(sheet["patient"] == "CLL004") & (sheet["timepoint"] == "C2D8"), "response"] = "responder?"
    edited = cohort.parent / "two_groups.csv"
    sheet.to_csv(edited, index=False)
    with pytest.raises(MetadataError, match=r"patient CLL004 has more than one response .*'responder\?'"):
        Experiment.from_folder(cohort.parent, template=TEMPLATE, samples=edited, compare=["C1D1:C1D8"],
                               group_by="response")
    out = tmp_path / "out"
    code = main(["run", str(cohort.parent), "--samples", str(edited), "--template", str(TEMPLATE), "--out", str(out),
                 "--group-by", "response", "--quiet"])
    assert code == 2 and "patient CLL004 has more than one response" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(MetadataError, match="no such column .*has file, patient, timepoint, stain, response"):
        Experiment.from_folder(cohort.parent, template=TEMPLATE, samples=cohort, group_by="arm")


@pytest.mark.parametrize("compare, message", [
    (["C1D1-C1D8"], "give two timepoints as BASELINE:FOLLOWUP"),
    (["C1D1:C1D8", "c1d1:C1D8"], "named more than once"),
    (["C1D1:c1d1"], "same timepoint"),
    ([], "no comparison given"),
])
def test_bad_comparisons_are_refused(cohort, compare, message):
    with pytest.raises(MetadataError, match=message):
        Experiment.from_folder(cohort.parent, template=TEMPLATE, samples=cohort, compare=compare)


def test_compare_and_baseline_together_is_a_usage_error(cohort, tmp_path, capsys):
    code = main(["run", str(cohort.parent), "--samples", str(cohort), "--template", str(TEMPLATE),
                 "--out", str(tmp_path / "out"), "--compare", "C1D1:C1D8", "--baseline", "C1D1", "--quiet"])
    assert code == 2 and "not both" in capsys.readouterr().err


def test_a_rerun_with_other_comparisons_does_not_reuse_the_cached_pairs(run, cohort, capsys, tmp_path):
    """The cache key holds the comparisons: the same folder run again with other comparisons pairs
    only those, and writes no groups table (the previous run's is removed)."""
    import shutil

    out = shutil.copytree(run, tmp_path / "out")
    code = main(["run", str(cohort.parent), "--samples", str(cohort), "--template", str(TEMPLATE), "--out", str(out),
                 "--compare", "C1D8:C2D8", "--compare", "C1D1:C3D1", "--no-plots", "--quiet"])
    assert code == 2  # a timepoint no file has: a typo, refused before any analysis
    assert capsys.readouterr().err == ("cytokit run: error: comparison C1D1:C3D1: no file has timepoint C3D1 (the "
                                       "files' timepoints: C1D1, C1D8, C2D1, C2D8)\n")
    code = main(["run", str(cohort.parent), "--samples", str(cohort), "--template", str(TEMPLATE), "--out", str(out),
                 "--compare", "C1D8:C2D8", "--no-plots", "--quiet"])
    assert code == 0
    paired = table(out, "paired")
    assert set(zip(paired["baseline"], paired["followup"])) == {("C1D8", "C2D8")}
    assert len(paired) == PATIENTS * 2
    assert not (out / "groups.csv").exists() and not (out / "groups.parquet").exists()
    samples = table(out, "samples").set_index("file")
    assert (samples.loc[samples["timepoint"].isin(["C1D8", "C2D8"]), "status"] == "ok").all()
    c1d1 = samples[samples["timepoint"] == "C1D1"]
    assert (c1d1["status"] == "unpaired").all() and c1d1["error"].str.startswith("timepoint C1D1 is neither").all()
