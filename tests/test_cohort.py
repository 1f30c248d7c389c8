"""Tests of cytokit.cohort: the median's CI, BH q-values and the cohort summary."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cytokit.errors import CytokitError, PairingError
from cytokit.cohort import (
    DEFAULT_METRICS,
    SUMMARY_COLUMNS,
    benjamini_hochberg,
    cohort_summary,
    median_ci,
)

# --- median_ci ----------------------------------------------------------------


def test_median_ci_is_the_order_statistics_the_binomial_names():
    # n = 6: only the extremes reach 95 % (1 - 2/64); n = 20: the 6th lowest and highest (1 - 2 P(B <= 5))
    assert median_ci([3.0, 1.0, 6.0, 2.0, 5.0, 4.0]) == (1.0, 6.0, pytest.approx(1 - 2 / 64))
    low, high, level = median_ci(np.arange(20.0))
    assert (low, high) == (5.0, 14.0) and level == pytest.approx(1 - 2 * stats.binom.cdf(5, 20, 0.5))
    assert level >= 0.95 and 1 - 2 * stats.binom.cdf(6, 20, 0.5) < 0.95  # the narrowest that reaches it
    assert median_ci(np.arange(20.0), confidence=0.5)[1] - median_ci(np.arange(20.0), confidence=0.5)[0] < 9


@pytest.mark.parametrize("n", [6, 8, 15])
def test_median_ci_covers_the_median_at_least_as_often_as_it_says(n):
    # the percentile bootstrap it replaced covered 87-94.5 % at n = 6-8
    rng = np.random.default_rng(n)
    intervals = [median_ci(rng.standard_exponential(n) - np.log(2.0)) for _ in range(4000)]  # median 0
    covered = np.mean([low <= 0.0 <= high for low, high, _ in intervals])
    level = intervals[0][2]
    assert covered == pytest.approx(level, abs=0.012) and level >= 0.95


@pytest.mark.parametrize("values", [[], [1.0], [1.0, 2.0, 3.0, 4.0, 5.0], [np.nan] * 7])
def test_median_ci_needs_six_values_for_95_percent(values):
    assert all(math.isnan(v) for v in median_ci(values))


def test_median_ci_drops_nan_and_rejects_a_bad_confidence():
    values = [1.0, 5.0, 2.0, 8.0, 3.0, 9.0]
    assert median_ci(values + [np.nan]) == median_ci(values)
    with pytest.raises(ValueError, match="confidence"):
        median_ci(values, confidence=1.5)


# --- benjamini_hochberg ----------------------------------------------------------------


def test_bh_matches_scipy():
    p = np.random.default_rng(11).uniform(size=50) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))


def test_bh_hand_computed():
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.04, 0.03, 0.5]), [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_bh_keeps_nan_out_of_m():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.5])
    q = benjamini_hochberg(p)
    assert np.isnan(q[[1, 4]]).all()
    finite = ~np.isnan(p)
    np.testing.assert_allclose(q[finite], stats.false_discovery_control(p[finite]))


def test_bh_edge_cases():
    assert benjamini_hochberg([]).shape == (0,)
    assert np.isnan(benjamini_hochberg([np.nan, np.nan])).all()
    assert benjamini_hochberg([1.0, 1.0]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.2, 1.2])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), max_size=30))
def test_bh_properties(pvalues):
    p = np.array(pvalues, dtype=float)
    q = benjamini_hochberg(p)
    assert np.array_equal(np.isnan(q), np.isnan(p))
    tested = ~np.isnan(p)
    p, q = p[tested], q[tested]
    assert np.all(q >= p - 1e-12) and np.all(q <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= -1e-12)  # monotone in p
    if p.size:
        np.testing.assert_allclose(q, stats.false_discovery_control(p))


# --- cohort_summary ------------------------------------------------------------------------


def _paired_table() -> pd.DataFrame:
    """Six patients, two markers, hand-made changes."""
    lag3 = {
        "delta_pct_pos": [5.0, 2.0, 0.5, -0.5, -4.0, 1.0],  # tol 1: up 2, down 1, within 3
        "log2_rmfi_ratio": [0.3, 0.2, 0.15, 0.05, -0.2, np.nan],  # tol 0.1: up 3, down 1, within 1
        "delta_rmfi": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "ks_d": [0.1, 0.2, 0.0, 0.3, 0.05, 0.15],
        "ks_p": [1e-4, 1e-5, 0.9, 1e-9, 0.2, 0.01],  # alpha 0.001: 3 up
        "emd": [0.4, np.nan, np.nan, np.nan, np.nan, np.nan],
    }
    tnf = {
        "delta_pct_pos": [10.0, 12.0, 8.0, 9.0, 11.0, 7.0],
        "log2_rmfi_ratio": [1.0, 1.1, 0.9, 1.2, 0.8, 1.0],
        "delta_rmfi": [0.5, 0.4, 0.6, 0.5, 0.7, 0.3],
        "ks_d": [0.5, 0.6, 0.4, 0.5, 0.7, 0.6],
        "ks_p": [0.0] * 6,
        "emd": [1.0, 1.2, 0.8, 0.9, 1.1, 1.0],
    }
    frames = []
    for marker, columns in (("LAG3", lag3), ("TNFa", tnf)):
        frame = pd.DataFrame(columns)
        frame.insert(0, "population", "CD19+")
        frame.insert(0, "marker", marker)
        frame.insert(0, "patient", [f"P{i}" for i in range(1, 7)])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def summary() -> pd.DataFrame:
    return cohort_summary(_paired_table())


def _row(summary: pd.DataFrame, marker: str, metric: str) -> pd.Series:
    rows = summary[(summary["marker"] == marker) & (summary["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_summary_shape_and_columns(summary):
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    # 2 markers x 5 present metrics; the absent ones are skipped
    assert len(summary) == 10
    expected = [metric for metric in DEFAULT_METRICS if metric in _paired_table().columns]
    assert summary["metric"].tolist()[:5] == expected
    assert (summary["population"] == "CD19+").all()
    for column in ("n_pairs", "n_up", "n_down", "n_unchanged"):
        assert pd.api.types.is_integer_dtype(summary[column])


def test_summary_counts_up_and_down_with_default_tolerances(summary):
    row = _row(summary, "LAG3", "delta_pct_pos")
    assert (row.n_pairs, row.n_up, row.n_down, row.n_unchanged, row.tolerance) == (6, 2, 1, 3, 1.0)
    assert row.median_delta == pytest.approx(0.75)
    assert row.mean_delta == pytest.approx(4.0 / 6)
    row = _row(summary, "LAG3", "log2_rmfi_ratio")  # one NaN patient left out
    assert (row.n_pairs, row.n_up, row.n_down, row.n_unchanged, row.tolerance) == (5, 3, 1, 1, 0.1)
    assert row.median_delta == pytest.approx(0.15)
    row = _row(summary, "TNFa", "delta_rmfi")
    assert (row.n_up, row.n_down, row.n_unchanged, row.tolerance) == (6, 0, 0, 0.1)
    row = _row(summary, "LAG3", "ks_d")  # distance: patients whose own KS test rejects at 0.001
    assert (row.n_up, row.n_down, row.n_unchanged) == (3, 0, 3) and math.isnan(row.tolerance)
    assert row.test == "binomial: patients with p < 0.001"  # calibrated at the four tubes' effective count
    assert row.p_value == pytest.approx(stats.binom.sf(2, 6, 0.001))
    assert pd.isna(_row(summary, "LAG3", "emd").n_up)  # no null, no count


def test_summary_tests_and_ci(summary):
    tnf = _row(summary, "TNFa", "delta_pct_pos")
    changes = np.array([10.0, 12.0, 8.0, 9.0, 11.0, 7.0])
    assert tnf.p_value == pytest.approx(stats.wilcoxon(changes, method="exact").pvalue)
    assert tnf.test == "wilcoxon exact" and tnf.p_min == pytest.approx(2 / 2**6)
    assert (tnf.ci_low, tnf.ci_high, tnf.ci_level) == median_ci(changes) == (7.0, 12.0, 1 - 2 / 64)
    assert tnf.ci_low <= tnf.median_delta <= tnf.ci_high


def test_summary_distance_without_a_null_has_no_p_value(summary):
    rows = summary[summary["metric"] == "emd"]
    assert rows[["p_value", "q_bh"]].isna().all().all() and (rows["test"] == "none").all()
    assert rows["median_delta"].notna().all()  # the distance itself is summarised


def test_summary_flags_rows_that_cannot_reach_significance():
    paired = pd.DataFrame({"patient": list("ABCDE"), "marker": "M", "population": "P",
                           "delta_pct_pos": [5.0, 6.0, 7.0, 8.0, 9.0]})
    row = cohort_summary(paired).iloc[0]
    assert row.p_min == pytest.approx(0.0625) and row.p_value >= 0.05  # n = 5: never < 0.05


def test_summary_all_zero_changes_do_not_raise(summary):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor warn
        table = cohort_summary(_paired_table(), metrics=["delta_rmfi"])
    row = _row(table, "LAG3", "delta_rmfi")
    assert row.p_value == 1.0
    assert (row.n_up, row.n_down, row.n_unchanged) == (0, 0, 6)


def test_summary_single_pair_gives_nan_statistics(summary):
    row = _row(summary, "LAG3", "emd")
    assert row.n_pairs == 1
    assert row.median_delta == pytest.approx(0.4)
    assert all(math.isnan(row[c]) for c in ("ci_low", "ci_high", "p_value", "q_bh"))


def test_summary_q_values_are_bh_within_the_signed_changes_and_within_the_distances(summary):
    """One family of both let the distances' binomial rows (near-certain discoveries: event-level tests
    reject any difference) lower the endpoints' q."""
    from cytokit.cohort import DISTANCE_METRICS

    tested = summary["p_value"].notna()
    assert set(summary.loc[tested, "metric"]) == {"delta_pct_pos", "log2_rmfi_ratio", "delta_rmfi", "ks_d"}
    for family in (summary["metric"].isin(DISTANCE_METRICS), ~summary["metric"].isin(DISTANCE_METRICS)):
        rows = summary[family & tested]
        np.testing.assert_allclose(rows["q_bh"], stats.false_discovery_control(rows["p_value"]))
    assert summary.loc[~tested, "q_bh"].isna().all()


def test_summary_tolerance_options():
    table = _paired_table()
    everywhere = cohort_summary(table, metrics=["delta_pct_pos", "ks_d"], tolerance=0.25)
    assert (everywhere.loc[everywhere["metric"] == "delta_pct_pos", "tolerance"] == 0.25).all()
    row = _row(everywhere, "LAG3", "delta_pct_pos")
    assert (row.n_up, row.n_down, row.n_unchanged) == (4, 2, 0)
    per_metric = cohort_summary(table, metrics=["delta_pct_pos"], tolerance={"delta_rmfi": 0.12})
    assert _row(per_metric, "LAG3", "delta_pct_pos").tolerance == 1.0  # default kept
    with pytest.raises(ValueError, match="non-negative"):
        cohort_summary(table, tolerance=-1.0)


def test_summary_is_reproducible():
    table = _paired_table()
    pd.testing.assert_frame_equal(cohort_summary(table), cohort_summary(table))


def test_summary_groups_by_population_and_keeps_nan_keys():
    table = _paired_table()
    table.loc[table["patient"].isin(["P1", "P2", "P3"]), "population"] = "CD19+CD5+"
    table.loc[0, "population"] = np.nan
    summary = cohort_summary(table, metrics=["delta_pct_pos"])
    assert len(summary) == 5  # LAG3: NaN, CD19+CD5+, CD19+; TNFa: CD19+CD5+, CD19+
    assert summary["n_pairs"].sum() == 12


def test_summary_without_metric_columns_is_empty():
    table = _paired_table()[["patient", "marker", "population"]]
    summary = cohort_summary(table)
    assert summary.empty and list(summary.columns) == list(SUMMARY_COLUMNS)


def test_summary_names_a_metric_or_grouping_column_it_does_not_have():
    table = _paired_table()
    with pytest.raises(PairingError, match=r"none of the metrics 'bogus' is a column of the paired table"):
        cohort_summary(table, metrics=["bogus"])
    with pytest.raises(PairingError, match=r"cannot group the paired table by 'arm': it has no such column"):
        cohort_summary(table, by=["arm"])


def test_summary_coerces_non_numeric_entries_to_missing():
    table = _paired_table()
    table["delta_pct_pos"] = table["delta_pct_pos"].astype(object)
    table.loc[0, "delta_pct_pos"] = "n/a"
    row = _row(cohort_summary(table, metrics=["delta_pct_pos"]), "LAG3", "delta_pct_pos")
    assert row.n_pairs == 5


def test_summary_rejects_a_table_without_keys():
    with pytest.raises(PairingError, match="population"):
        cohort_summary(_paired_table().drop(columns="population"))


def test_summary_rejects_a_patient_counted_twice():
    table = _paired_table()
    table = pd.concat([table, table.iloc[[0]]], ignore_index=True)
    with pytest.raises(PairingError, match="more than once") as caught:
        cohort_summary(table)
    assert isinstance(caught.value, CytokitError)


def test_summary_counts_flagged_pairs_among_those_with_a_value():
    paired = pd.DataFrame({
        "patient": ["P1", "P2", "P3"], "marker": "LAG3", "population": "CD19+",
        "delta_pct_pos": [5.0, np.nan, -3.0], "log2_rmfi_ratio": [0.2, 0.1, 0.3],
        "flag": ["", "C2D8: Viable: gate doubtful: weak separation", "C2D1: no control events in the population"]})
    summary = cohort_summary(paired).set_index("metric")
    assert summary.loc["delta_pct_pos", ["n_pairs", "n_flagged"]].tolist() == [2, 1]
    assert summary.loc["log2_rmfi_ratio", ["n_pairs", "n_flagged"]].tolist() == [3, 2]
    assert "n_flagged" not in cohort_summary(paired.drop(columns="flag")).columns


def test_wilcoxon_is_exact_with_ties_and_ranks_zero_changes():
    """Tied changes (binned data) took the normal approximation at any n: [1, 2, 2, 3, 4] gave p 0.042
    under its own p_min 0.0625. Zero changes were dropped: 13 of 14 patients tested, p 3x smaller."""
    from cytokit.cohort import _wilcoxon

    test, p, p_min = _wilcoxon(np.array([1.0, 2.0, 2.0, 3.0, 4.0]))
    assert test == "wilcoxon exact" and p == pytest.approx(0.0625) and p >= p_min
    exact = stats.permutation_test((np.array([0.116787, 0.116787, 0.2, 0.3, -0.05, 0.4]),),
                                   lambda d: stats.rankdata(np.abs(d))[d > 0].sum(), permutation_type="samples",
                                   n_resamples=np.inf)
    assert _wilcoxon(np.array([0.116787, 0.116787, 0.2, 0.3, -0.05, 0.4]))[1] == pytest.approx(exact.pvalue)
    import itertools

    changes = np.array([0.0, 0.0, 1.5, 2.0, 3.0, -1.0, 4.0, 5.0])
    test, p, _ = _wilcoxon(changes)
    assert test == "wilcoxon exact (2 zero changes ranked, Pratt)"
    ranks = stats.rankdata(np.abs(changes))[changes != 0]  # the zeros take the lowest ranks, in no sum
    sums = np.array([ranks[np.array(s, bool)].sum() for s in itertools.product([0, 1], repeat=ranks.size)])
    observed = stats.rankdata(np.abs(changes))[changes > 0].sum()
    assert p == pytest.approx(min(1.0, 2 * min((sums <= observed).mean(), (sums >= observed).mean())))


def test_no_confidence_interval_from_fewer_than_six_pairs():
    """With 2 patients the bootstrap 'CI' was the range of their two values (coverage 51 %; 76 % at 3, 89 % at
    4); with 5, even their range covers the median only 94 % of the time."""
    from cytokit.cohort import MIN_CI_PAIRS

    for n in (2, 4, 5, 6):
        paired = pd.DataFrame({"patient": [f"P{i}" for i in range(n)], "marker": "LAG3", "population": "CD19+",
                               "delta_pct_pos": np.linspace(1.0, 9.0, n)})
        row = cohort_summary(paired).iloc[0]
        assert np.isnan(row.ci_low) == (n < MIN_CI_PAIRS) and row.median_delta == 5.0


def test_a_marker_without_a_control_is_summarised_by_its_raw_changes():
    """positivity none: every isotype-based metric is NaN; the stained tubes' own changes are summarised."""
    table = _paired_table()
    cd38 = table[table["marker"] == "TNFa"].copy()
    cd38["marker"] = "CD38"
    cd38[["delta_pct_pos", "log2_rmfi_ratio", "delta_rmfi", "ks_d", "ks_p", "emd"]] = np.nan
    cd38["log2_mfi_ratio_raw"] = [-1.0, -0.5, -2.0, -1.5, 0.2, -1.0]
    table["log2_mfi_ratio_raw"] = 9.0  # markers with a control keep the default metrics
    summary = cohort_summary(pd.concat([table, cd38], ignore_index=True))
    assert summary.loc[summary["marker"] == "CD38", "metric"].tolist() == ["log2_mfi_ratio_raw"]
    row = _row(summary, "CD38", "log2_mfi_ratio_raw")
    assert (row.n_pairs, row.n_down) == (6, 5)
    assert row.median_delta == pytest.approx(-1.0)
    assert "log2_mfi_ratio_raw" not in set(summary.loc[summary["marker"] == "LAG3", "metric"])
    # metrics named by the caller are summarised as asked, with no fallback
    asked = cohort_summary(pd.concat([table, cd38], ignore_index=True), metrics=["delta_pct_pos"])
    assert set(asked["metric"]) == {"delta_pct_pos"}
