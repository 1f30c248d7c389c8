"""Tests of cytokit.groups (groups of patients compared) and metadata.patient_groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cytokit.errors import MetadataError
from cytokit.groups import GROUP_COLUMNS, group_summary, median_difference_ci
from cytokit.metadata import patient_groups


def paired(values: dict[str, float], **extra) -> pd.DataFrame:
    return pd.DataFrame({"patient": list(values), "marker": "LAG3", "population": "CD19+",
                         "delta_pct_pos": list(values.values()), **extra})


def test_two_groups_give_one_row_with_scipys_mann_whitney_and_the_median_difference():
    values = {"P1": 10.0, "P2": 12.0, "P3": 7.0, "P4": 0.5, "P5": -0.2, "P6": 8.0, "P7": 1.0, "P8": 0.0}
    groups = {"P1": "R", "P2": "R", "P3": "R", "P6": "R", "P4": "NR", "P5": "NR", "P7": "NR", "P8": "NR"}
    table = group_summary(paired(values), groups, n_boot=500)
    assert list(table.columns) == ["marker", "population", *GROUP_COLUMNS]
    row = table.iloc[0]
    r, nr = [10.0, 12.0, 7.0, 8.0], [0.5, -0.2, 1.0, 0.0]
    assert (row.group_a, row.group_b, row.n_a, row.n_b) == ("NR", "R", 4, 4)
    assert row.median_diff == pytest.approx(np.median(r) - np.median(nr))
    expected = stats.mannwhitneyu(nr, r, alternative="two-sided", method="exact")
    assert (row.u_statistic, row.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert row.test == "mann-whitney U exact" and row.p_min == pytest.approx(2 / 70)
    assert row.ci_low <= row.median_diff <= row.ci_high and row.ci_low > 0
    values.pop("P8")  # a group of 3: no CI (the bootstrap covered 0.89-0.90 of the time)
    assert group_summary(paired(values), groups).iloc[0][["ci_low", "ci_high"]].isna().all()


def test_ties_are_exact_and_missing_values_and_ungrouped_patients_are_left_out():
    """A tie gave the normal approximation (3 against 3 with a tie: p 0.077, under the smallest exact p,
    0.1); the p is now the permutation p conditional on the ties."""
    values = {"P1": 1.0, "P2": 1.0, "P3": 2.0, "P4": np.nan, "P5": 3.0, "P6": 100.0}
    groups = {"P1": "a", "P2": "b", "P3": "a", "P4": "b", "P5": "b"}  # P6 in no group
    row = group_summary(paired(values), groups).iloc[0]
    assert (row.n_a, row.n_b) == (2, 2)
    assert row.test == "mann-whitney U exact"
    expected = stats.permutation_test(([1.0, 2.0], [1.0, 3.0]), lambda x, y: stats.mannwhitneyu(x, y).statistic,
                                      permutation_type="independent", n_resamples=np.inf)
    assert row.p_value == pytest.approx(expected.pvalue) and row.p_value >= row.p_min
    tied = group_summary(paired({f"P{i}": v for i, v in enumerate([1.0, 2.0, 3.0, 3.0, 4.0, 5.0])}),
                         {f"P{i}": "ab"[i >= 3] for i in range(6)}).iloc[0]
    assert tied.p_value >= tied.p_min == pytest.approx(0.1)


def test_three_groups_give_every_pair_and_bh_over_all_rows_and_metrics():
    rng = np.random.default_rng(1)
    patients = [f"P{i}" for i in range(12)]
    table = paired(dict(zip(patients, rng.normal(size=12))), log2_rmfi_ratio=rng.normal(size=12))
    groups = {p: "abc"[i % 3] for i, p in enumerate(patients)}
    out = group_summary(table, groups, n_boot=200)
    assert list(zip(out["metric"], out["group_a"], out["group_b"])) == [
        (m, a, b) for m in ("delta_pct_pos", "log2_rmfi_ratio") for a, b in (("a", "b"), ("a", "c"), ("b", "c"))]
    from cytokit.cohort import benjamini_hochberg

    assert out["q_bh"].to_numpy() == pytest.approx(benjamini_hochberg(out["p_value"].to_numpy()))


def test_a_group_without_values_gives_no_test():
    row = group_summary(paired({"P1": 1.0, "P2": np.nan}), {"P1": "a", "P2": "b"}).iloc[0]
    assert (row.n_a, row.n_b) == (1, 0) and np.isnan(row.p_value) and np.isnan(row.q_bh)
    assert np.isnan(row.ci_low) and np.isnan(row.median_b)


def test_the_median_difference_ci_is_reproducible_and_covers_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(3, 1, 40)
    low, high = median_difference_ci(a, b, seed=4)
    assert (low, high) == median_difference_ci(a, b, seed=4)
    assert low < 3 < high and high - low < 2
    assert np.isnan(median_difference_ci([1.0], [2.0, 3.0])[0])


def sheet(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"file": f"{i}.fcs", "patient": p, "timepoint": "C2D1", "stain": "stained", "response": r}
                         for i, (p, r) in enumerate(rows)])


def test_patient_groups_reads_one_value_per_patient_case_and_spaces_aside():
    groups = patient_groups(sheet([("P1", "Responder"), ("P1", " responder "), ("P2", "non-responder"),
                                   ("P2", ""), ("P3", ""), ("P4", "NA"), ("P5", "#N/A"), ("P6", "n/a")]), "response")
    assert groups == {"P1": "Responder", "P2": "non-responder"}  # R's and Excel's NA are no group


@pytest.mark.parametrize("rows, column, message", [
    ([("P1", "R"), ("P1", "NR"), ("P2", "R")], "response", "patient P1 has more than one response in the sample sheet \\('R', 'NR'\\)"),
    ([("P1", "R"), ("P2", "R")], "response", "fewer than two groups \\(R\\)"),
    ([("P1", "R"), ("P2", "NR")], "arm", "no such column \\(has file, patient, timepoint, stain, response\\)"),
    ([("P1", "R"), ("P2", "NR")], "stain", "one of cytokit's own columns"),
])
def test_patient_groups_refuses_what_cannot_be_compared(rows, column, message):
    with pytest.raises(MetadataError, match=message):
        patient_groups(sheet(rows), column)


def test_an_unknown_group_column_lists_the_sheets_own_columns():
    """check_samples adds an empty control_file column to a sheet without one: not the sheet's to name
    (nor, filled in, cytokit's own to group by)."""
    for control in ("", "c.fcs"):
        with pytest.raises(MetadataError, match=r"no such column \(has file, patient, timepoint, stain, response\)$"):
            patient_groups(sheet([("P1", "R"), ("P2", "NR")]).assign(control_file=control), "arm")


def test_a_group_column_is_named_in_any_case():
    """Headers may be in any case (README): --group-by response on a column Response was refused."""
    table = sheet([("P1", "R"), ("P2", "NR")]).rename(columns={"response": "Response"})
    assert patient_groups(table, "response") == patient_groups(table, "RESPONSE") == {"P1": "R", "P2": "NR"}
    with pytest.raises(MetadataError, match="one of cytokit's own columns"):
        patient_groups(table, "Control_File")
