"""Tests of cytokit.shift: known answers, edge cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cytokit.shift import (
    MIN_EVENTS,
    SHIFT_METRICS,
    earth_movers_distance,
    ks_statistic,
    ks_test,
    overton_pct_positive,
    probability_binning,
    shift_metrics,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


# --- identical distributions -------------------------------------------------


def test_same_events_give_zero_for_every_metric(rng):
    events, iso = rng.normal(2.0, 0.5, 3000), rng.normal(1.0, 0.5, 3000)
    metrics = shift_metrics(events, events.copy(), baseline_isotype=iso, followup_isotype=iso.copy())
    assert list(metrics) == list(SHIFT_METRICS)
    distances = ["cum_excess_pct", "ks_d", "pb_tx", "emd", "cum_excess_pct_raw", "ks_d_raw", "pb_tx_raw", "emd_raw",
                 "isotype_shift", "delta_overton_pct_pos"]
    assert {name: metrics[name] for name in distances} == dict.fromkeys(distances, 0.0)
    assert metrics["ks_p"] == 1.0 and metrics["pb_p"] == 1.0 and metrics["pb_chi2_excess"] < 0


def test_independent_draws_of_one_distribution_are_close(rng):
    baseline = rng.normal(0.0, 1.0, 20_000)
    followup = rng.normal(0.0, 1.0, 20_000)
    assert ks_statistic(baseline, followup) < 0.02
    assert earth_movers_distance(baseline, followup) < 0.03
    assert overton_pct_positive(baseline, followup, bins=32) < 3.0
    _, tx = probability_binning(baseline, followup)
    assert tx < 4.0  # the conventional p < 0.01 cut


# --- shifted normals: analytical answers --------------------------------------


@pytest.mark.parametrize("shift", [0.25, 1.0, 2.5])
def test_emd_of_an_exact_shift_is_the_shift(rng, shift):
    baseline = rng.normal(0.0, 1.0, 5000)
    assert earth_movers_distance(baseline, baseline + shift) == pytest.approx(shift, abs=1e-9)
    assert earth_movers_distance(baseline, baseline - shift) == pytest.approx(shift, abs=1e-9)


@pytest.mark.parametrize("shift", [0.5, 1.0, 2.0])
def test_ks_and_overton_of_shifted_normals_match_theory(rng, shift):
    # for N(0,1) vs N(d,1) the sup-CDF distance (KS D, and its one-sided
    # binned form, Overton's cumulative subtraction) is 2 Phi(d/2) - 1
    expected = 2.0 * stats.norm.cdf(shift / 2.0) - 1.0
    baseline = rng.normal(0.0, 1.0, 50_000)
    followup = rng.normal(shift, 1.0, 50_000)
    assert ks_statistic(baseline, followup) == pytest.approx(expected, abs=0.015)
    assert overton_pct_positive(baseline, followup, bins=64) == pytest.approx(100 * expected, abs=3.0)
    assert earth_movers_distance(baseline, followup) == pytest.approx(shift, abs=0.03)


def test_ks_test_matches_scipy(rng):
    baseline = rng.normal(0.0, 1.0, 300)
    followup = rng.normal(0.3, 1.0, 400)
    expected = stats.ks_2samp(baseline, followup)
    assert ks_test(baseline, followup) == pytest.approx((expected.statistic, expected.pvalue))


def test_disjoint_samples_are_completely_different():
    baseline = np.arange(100.0)
    followup = np.arange(1000.0, 1100.0)
    assert ks_statistic(baseline, followup) == 1.0
    assert overton_pct_positive(baseline, followup) == 100.0
    chi2, _ = probability_binning(baseline, followup, n_bins=4)
    # all follow-up events in the top bin: 3 bins of (1/4)^2/(1/4) + (1/4 - 1)^2/(5/4)
    assert chi2 == pytest.approx(3 * 0.25 + 0.75**2 / 1.25)


# --- Overton ------------------------------------------------------------------


def test_overton_hand_computed():
    # channels [0, 1) and [1, 2]: baseline 3/4, 1/4; follow-up 1/4, 3/4 -> 50 % excess
    assert overton_pct_positive([0, 0, 0, 2], [0, 2, 2, 2], bins=2) == pytest.approx(50.0)
    # a follow-up that only got dimmer has no positive excess (the old sum over channels said 75)
    assert overton_pct_positive([0, 2, 2, 2], [0, 0, 0, 0], bins=2) == 0.0
    # cumulative from the bright end: 1/3 moved up two channels, 1/3 down one -> 1/3 positive
    assert overton_pct_positive([1, 1, 1], [0, 1, 2], bins=3) == pytest.approx(100 / 3)


@pytest.mark.parametrize("n", [100, 300, 1000])
def test_overton_of_two_small_draws_of_one_distribution_is_near_zero(n):
    # per-channel excess summed over 256 channels gave 70 %, 42 % and 25 % here
    values = [overton_pct_positive(*np.random.default_rng(seed).normal(0.4, 0.1, (2, n)))
              for seed in range(20)]
    assert np.median(values) < 100 * 1.5 / np.sqrt(n)  # one-sided KS: median about 0.83 / sqrt(n)
    assert max(values) < 100 * 3.0 / np.sqrt(n)


def test_overton_threshold_counts_only_excess_above_the_cut():
    baseline = [0.0] * 50 + [10.0] * 50
    followup = [5.0] * 50 + [10.0] * 50  # dim events brightened but stay below 8
    assert overton_pct_positive(baseline, followup, bins=10) == pytest.approx(50.0)
    assert overton_pct_positive(baseline, followup, bins=10, threshold=8.0) == pytest.approx(0.0)
    followup_bright = [9.0] * 50 + [10.0] * 50
    assert overton_pct_positive(baseline, followup_bright, bins=10, threshold=8.0) == pytest.approx(50.0)


def test_overton_range_excluding_everything_is_nan():
    assert math.isnan(overton_pct_positive([1.0, 2.0], [1.0, 2.0], range=(10.0, 20.0)))


def test_overton_rejects_bad_options():
    with pytest.raises(ValueError, match="bins"):
        overton_pct_positive([1, 2], [1, 2], bins=0)
    with pytest.raises(ValueError, match="range"):
        overton_pct_positive([1, 2], [1, 2], range=(3.0, 3.0))


def test_constant_samples_do_not_fail():
    assert overton_pct_positive([1.0] * 5, [1.0] * 5) == 0.0
    assert overton_pct_positive([1.0] * 5, [2.0] * 5) == 100.0


# --- probability binning --------------------------------------------------------


def test_probability_binning_hand_computed():
    # baseline 0..99 split at its median 49.5; follow-up 75 % below, 25 % above
    baseline = np.arange(100.0)
    followup = np.array([10.0] * 75 + [90.0] * 25)
    chi2, tx = probability_binning(baseline, followup, n_bins=2)
    expected_chi2 = 0.25**2 / 1.25 + 0.25**2 / 0.75
    assert chi2 == pytest.approx(expected_chi2)
    assert tx == pytest.approx((expected_chi2 - 2 / 100) / (math.sqrt(2) / 100))
    chi2_b, t_b = probability_binning(baseline, followup, n_bins=2, method="baggerly")
    assert chi2_b == pytest.approx(expected_chi2)
    assert t_b == pytest.approx((100 * expected_chi2 - 1) / math.sqrt(2))


def test_probability_binning_bins_are_baseline_quantiles():
    baseline = np.arange(1000.0)
    # follow-up exactly equal to the baseline: every bin equal, chi2 zero
    chi2, tx = probability_binning(baseline, baseline[::-1], n_bins=10)
    assert chi2 == 0.0 and tx == 0.0


def test_probability_binning_same_proportions_with_unequal_counts():
    baseline = np.arange(1000.0)
    followup = np.arange(0.0, 1000.0, 10.0)  # 100 events, 10 in each baseline decile
    chi2, tx = probability_binning(baseline, followup, n_bins=10)
    assert chi2 == pytest.approx(0.0, abs=1e-12)
    assert tx == 0.0


def test_probability_binning_t_scales_by_the_smaller_sample():
    baseline = np.arange(1000.0)  # quintile edges 199.8, 399.6, 599.4, 799.2
    followup = np.array([50.0] * 40 + [300.0] * 15 + [500.0] * 15 + [700.0] * 15 + [900.0] * 15)
    chi2, tx = probability_binning(baseline, followup, n_bins=5)
    expected_chi2 = 0.2**2 / 0.6 + 4 * 0.05**2 / 0.35
    assert chi2 == pytest.approx(expected_chi2)
    # min(Nc, Nt) = 100 follow-up events
    assert tx == pytest.approx((expected_chi2 - 5 / 100) / (math.sqrt(5) / 100))
    n_eff = 2 * 1000 * 100 / 1100
    _, t_b = probability_binning(baseline, followup, n_bins=5, method="baggerly")
    assert t_b == pytest.approx((n_eff * expected_chi2 - 4) / math.sqrt(8))


def test_probability_binning_default_bins_follow_smaller_sample(rng):
    baseline = rng.normal(size=5000)
    followup = rng.normal(size=200)
    # 200 // 10 = 20 bins; explicit n_bins=20 gives the same answer
    assert probability_binning(baseline, followup) == probability_binning(baseline, followup, n_bins=20)
    big = rng.normal(size=100_000)
    shifted = big + 0.05
    # 10_000 bins would be asked for; the default is capped at 256
    assert probability_binning(big, shifted) == probability_binning(big, shifted, n_bins=256)
    assert probability_binning(big, shifted) != probability_binning(big, shifted, n_bins=128)


def test_baggerly_t_is_a_null_z_score(rng):
    draws = rng.normal(size=(300, 2, 1000))
    t_values = np.array([probability_binning(a, b, n_bins=20, method="baggerly")[1] for a, b in draws])
    assert abs(t_values.mean()) < 0.25
    assert 0.8 < t_values.std() < 1.25


def test_probability_binning_detects_a_shift(rng):
    baseline = rng.normal(0.0, 1.0, 5000)
    _, small = probability_binning(baseline, rng.normal(0.1, 1.0, 5000))
    _, large = probability_binning(baseline, rng.normal(1.0, 1.0, 5000))
    assert large > 4.0
    assert large > small


def test_probability_binning_with_tied_baseline_merges_bins():
    baseline = np.array([0.0] * 90 + list(range(1, 11)))  # 90 % piled on the floor
    chi2, tx = probability_binning(baseline, baseline, n_bins=10)
    assert chi2 == 0.0 and tx == 0.0
    # the floor and the rest are two bins; a follow-up that left the floor differs
    followup = np.array([0.0] * 10 + [5.0] * 90)
    chi2, _ = probability_binning(baseline, followup, n_bins=10)
    assert chi2 == pytest.approx(0.8**2 / 1.0 + 0.8**2 / 1.0)
    # a constant baseline cannot be binned
    assert all(math.isnan(v) for v in probability_binning([3.0] * 50, [3.0, 4.0] * 25))


def test_probability_binning_rejects_bad_options():
    with pytest.raises(ValueError, match="method"):
        probability_binning([1, 2, 3], [1, 2, 3], method="flowjo")
    with pytest.raises(ValueError, match="n_bins"):
        probability_binning([1, 2, 3], [1, 2, 3], n_bins=1)
    with pytest.raises(ValueError, match="min_per_bin"):
        probability_binning([1, 2, 3], [1, 2, 3], min_per_bin=0)


# --- input handling -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "followup"),
    [([], []), ([1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [np.nan, 2.0]), ([np.nan] * 5, [1.0, 2.0])],
)
def test_too_few_events_give_nan_never_an_error(baseline, followup):
    assert MIN_EVENTS == 2
    metrics = shift_metrics(baseline, followup, threshold=1.0)
    assert list(metrics) == list(SHIFT_METRICS)
    assert all(math.isnan(value) for value in metrics.values())
    assert math.isnan(overton_pct_positive(baseline, followup))
    assert math.isnan(ks_statistic(baseline, followup))
    assert all(math.isnan(v) for v in ks_test(baseline, followup))
    assert all(math.isnan(v) for v in probability_binning(baseline, followup))
    assert math.isnan(earth_movers_distance(baseline, followup))


def test_nan_and_inf_are_dropped(rng):
    baseline = rng.normal(size=500)
    followup = rng.normal(0.5, 1.0, 500)
    dirty_base = np.concatenate([baseline, [np.nan, np.inf]])
    dirty_follow = np.concatenate([[np.nan], followup, [-np.inf]])
    assert shift_metrics(dirty_base, dirty_follow, baseline_isotype=dirty_base, followup_isotype=dirty_follow) \
        == shift_metrics(baseline, followup, baseline_isotype=baseline, followup_isotype=followup)


def test_two_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match="1-D"):
        ks_statistic(np.zeros((3, 2)), np.zeros(3))


def test_shift_metrics_matches_the_single_functions(rng):
    baseline = rng.normal(size=800)
    followup = rng.normal(0.4, 1.2, 600)
    # without isotypes only the raw distances exist (values without ties are used as given)
    _, tx = probability_binning(baseline, followup)
    metrics = shift_metrics(baseline, followup, threshold=0.5)
    assert {k: metrics[k] for k in ("cum_excess_pct_raw", "ks_d_raw", "pb_tx_raw", "emd_raw")} == {
        "cum_excess_pct_raw": overton_pct_positive(baseline, followup, threshold=0.5),
        "ks_d_raw": ks_statistic(baseline, followup),
        "pb_tx_raw": tx,
        "emd_raw": earth_movers_distance(baseline, followup),
    }
    assert all(math.isnan(v) for k, v in metrics.items() if not k.endswith("_raw"))


# --- properties -------------------------------------------------------------------------

_values = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=0, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(_values, _values)
def test_emd_is_symmetric_and_non_negative(a, b):
    forward = earth_movers_distance(a, b)
    backward = earth_movers_distance(b, a)
    if len(a) < MIN_EVENTS or len(b) < MIN_EVENTS:
        assert math.isnan(forward) and math.isnan(backward)
    else:
        assert forward >= 0.0
        assert forward == pytest.approx(backward, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(_values, _values)
def test_metric_ranges(a, b):
    metrics = shift_metrics(a, b, baseline_isotype=a, followup_isotype=b)
    if len(a) < MIN_EVENTS or len(b) < MIN_EVENTS:
        assert all(math.isnan(value) for value in metrics.values())
        return
    assert 0.0 <= metrics["ks_d"] <= 1.0 and 0.0 <= metrics["ks_p"] <= 1.0
    assert 0.0 <= metrics["cum_excess_pct"] <= 100.0
    assert metrics["emd"] >= 0.0
    if len(set(a)) > 2:  # fewer distinct baseline values may not split into 2 bins
        assert 0.0 <= metrics["pb_p"] <= 1.0
        assert metrics["pb_tx_raw"] >= 0.0
    elif len(set(a)) == 1:
        assert math.isnan(metrics["pb_p"]) and math.isnan(metrics["pb_tx_raw"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=-50, max_value=50, allow_nan=False), min_size=2, max_size=40))
def test_a_sample_against_itself_is_no_shift(a):
    metrics = shift_metrics(a, list(reversed(a)), baseline_isotype=a, followup_isotype=a)
    assert metrics["ks_d"] == 0.0 and metrics["ks_d_raw"] == 0.0
    assert metrics["cum_excess_pct"] == 0.0
    assert metrics["emd"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_ks_d_and_emd_equal_scipy(seed):
    # shift/_distances.py reads D and the EMD off one shared sort; scipy computes each on its own.
    from scipy import stats

    rng = np.random.default_rng(seed)
    baseline = np.round(rng.normal(0, 1, 3_000 + seed), 2)  # rounded: ties across samples
    followup = np.round(rng.normal(0.2 * seed, 1 + 0.1 * seed, 2_500), 2)
    assert ks_statistic(baseline, followup) == pytest.approx(stats.ks_2samp(baseline, followup).statistic, abs=1e-12)
    assert earth_movers_distance(baseline, followup) == pytest.approx(
        stats.wasserstein_distance(baseline, followup), rel=1e-12)


def test_probability_binning_splits_a_tied_pile_at_the_bottom():
    # the median is the minimum (a pile of -1s): bins closed on the right keep the pile apart
    chi2, tx = probability_binning([0.0, 1.0, -1.0, -1.0, -1.0], [0.0, 0.0])
    assert chi2 == pytest.approx(((3 / 5) ** 2 / (3 / 5)) + ((2 / 5 - 1) ** 2 / (2 / 5 + 1)))
    assert np.isfinite(tx)


# --- issue 17: drift, ties, the test of probability binning ----------------------------


def test_session_drift_moves_only_the_raw_distances(rng):
    """A gain drift of the follow-up session moves stained and isotype tube alike."""
    iso_b, iso_f = rng.normal(0.2, 0.05, 6000), rng.normal(0.2, 0.05, 6000) + 0.03
    st_b = np.concatenate([rng.normal(0.2, 0.05, 5100), rng.normal(0.5, 0.05, 900)])
    st_f = np.concatenate([rng.normal(0.2, 0.05, 5100), rng.normal(0.5, 0.05, 900)]) + 0.03
    m = shift_metrics(st_b, st_f, baseline_isotype=iso_b, followup_isotype=iso_f)
    assert m["isotype_shift"] == pytest.approx(0.03, abs=0.005)
    assert m["ks_p"] > 0.001 and m["pb_p"] > 0.001 and m["pb_tx"] < 4
    assert m["ks_d_raw"] > 0.15 and m["pb_tx_raw"] > 4


def test_ties_of_binned_data_do_not_read_as_a_shift(rng):
    """1024-channel data shifted by a fraction of a channel: the lattice is not a difference."""
    channel = 1 / 256
    draw = lambda n, shift: np.round((rng.normal(0.3, 0.05, n) + shift) / channel) * channel  # noqa: E731
    m = shift_metrics(draw(6000, 0), draw(6000, 0.0117), baseline_isotype=draw(6000, 0),
                      followup_isotype=draw(6000, 0.0117))
    assert m["pb_p"] > 0.001 and m["ks_p"] > 0.001


def test_pb_test_p_is_uniform_ish_under_the_null_and_bins_are_reported():
    from cytokit.shift import pb_test

    ps = [pb_test(*np.random.default_rng(seed).normal(size=(2, 3000)))["p"] for seed in range(200)]
    assert 0.0 <= np.mean(np.array(ps) < 0.05) <= 0.12
    assert pb_test(range(100), range(100), n_bins=4)["bins"] == 4


@pytest.mark.parametrize("tied", [False, True])
def test_cdf_gaps_and_runs_equal_their_sorting_definitions(tied):
    """The one-pass ECDF gaps and tie runs (issue 20) give exactly what searchsorted and np.unique give."""
    from cytokit.shift._distances import _cdf_gaps
    from cytokit.shift._events import _runs

    rng = np.random.default_rng(3)
    base, follow = rng.normal(0, 1, 5_000), rng.normal(0.2, 1.1, 3_000)[::-1]  # follow unsorted
    if tied:
        base, follow = np.round(base * 8) / 8, np.round(follow * 8) / 8
    pooled, gaps = _cdf_gaps(base, follow)
    b, f = np.sort(base), np.sort(follow)
    np.testing.assert_array_equal(pooled, np.sort(np.concatenate([b, f])))
    np.testing.assert_array_equal(gaps, np.abs(np.searchsorted(b, pooled, side="right") / b.size
                                               - np.searchsorted(f, pooled, side="right") / f.size))
    for got, want in zip(_runs(b), np.unique(b, return_index=True, return_counts=True)):
        np.testing.assert_array_equal(got, want)


def test_ks_p_is_scipys_exact_p_above_the_tail_and_close_below():
    """``_ks_p`` is ``kstwo.sf`` wherever p >= KS_TAIL, and Stephens' limit below it, within the
    tolerance its docstring states."""
    from cytokit.shift._distances import KS_TAIL, _ks_p

    for n in (1_000, 20_000, 200_000):
        for d in np.linspace(0.001, 0.08, 60):
            exact = stats.kstwo.sf(d, n)
            ours = _ks_p(d, 2 * n, 2 * n)  # effective count 1 / (1/2n + 1/2n) = n
            if ours >= KS_TAIL:
                assert ours == exact
            elif exact > 1e-16:
                assert ours == pytest.approx(exact, rel=0.065)
