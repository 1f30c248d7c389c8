"""Shift metrics read off the two distributions' CDFs or histograms: Overton % positive, KS D (and p), EMD."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._sorted import ascending
from ._events import _pair


def _cdf_gaps(base: np.ndarray, follow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled sorted values and ``|F_base - F_follow|`` at each of them (right-continuous ECDFs).

    The one sort that KS D and the earth mover's distance share: both are read off
    these two arrays, exactly as ``scipy.stats.ks_2samp`` and ``wasserstein_distance``
    compute them, without sorting the same events twice per metric.
    """
    base, follow = ascending(base), ascending(follow)
    both = np.concatenate([base, follow])
    order = np.argsort(both, kind="stable")  # two sorted runs: merged in one pass
    pooled = both[order]
    # F at each value counts every event at or below it: the counts at the end of its run of ties
    in_base = np.cumsum(order < base.size)
    in_follow = np.arange(1, pooled.size + 1) - in_base
    ends = np.flatnonzero(np.append(pooled[1:] != pooled[:-1], True))
    if ends.size < pooled.size:  # tied values (else every event ends its own run)
        at = np.repeat(ends, np.diff(np.append(-1, ends)))
        in_base, in_follow = in_base[at], in_follow[at]
    gaps = np.abs(in_base / base.size - in_follow / follow.size)
    return pooled, gaps


def _ks_d(pooled: np.ndarray, gaps: np.ndarray) -> float:
    return float(gaps.max())


def _effective_n(*sizes: int) -> float:
    """``1 / sum(1 / n)``: the two-sample KS effective count, and with isotype referencing the
    four samples' (each isotype's quantiles carry their own sampling error into the referenced
    values: with the two stained tubes' counts alone the referenced KS test rejected 2.8 % of
    unchanged pairs at alpha 0.001; see docs/validation.md)."""
    return 1.0 / sum(1.0 / n for n in sizes)


KS_TAIL = 1e-4
"""Below this p (far below :data:`cytokit.cohort.PATIENT_ALPHA`) :func:`_ks_p` is the Kolmogorov
limit with Stephens' correction rather than the exact distribution."""


def _ks_p(d: float, *sizes: int) -> float:
    """Two-sided p of KS D at the samples' effective count (``scipy.stats.ks_2samp``'s
    asymptotic p for two samples: ``kstwo.sf(D, n)``).

    In the far tail, where the asymptotic series ``Q((√n + 0.12 + 0.11/√n) D)`` (Stephens 1970)
    is below :data:`KS_TAIL`, that is the p: ``kstwo.sf`` computes the exact tail by a matrix
    power that took 16–28 ms at n = 20,000 and 180–320 ms at n = 200,000 per call (0.3 ms
    elsewhere). Over n = 1,000–200,000 the two differ there by at most 3.5 % of p for p above
    1e-6, 6.4 % above 1e-16 and 11 % down to 1e-30; further out only the order of magnitude holds
    (5e-57 exact, 1e-56 here, in the calibur demo). No call at any usual level changes.

    With tied values (binned data) the test is conservative: ties can only lower D.
    """
    from scipy import stats

    n = max(1.0, np.round(_effective_n(*sizes)))
    root = np.sqrt(n)
    tail = float(stats.kstwobign.sf((root + 0.12 + 0.11 / root) * d))
    if tail < KS_TAIL:
        return tail
    return float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))


def _excess_p(excess_pct: float, *sizes: int) -> float:
    """One-sided p of the cumulative excess (a one-sided KS D+, in %): Smirnov's
    ``exp(-2 n D+²)`` at the samples' effective count."""
    if not np.isfinite(excess_pct):
        return float("nan")
    return float(min(1.0, np.exp(-2.0 * _effective_n(*sizes) * (excess_pct / 100.0) ** 2)))


def _emd(pooled: np.ndarray, gaps: np.ndarray) -> float:
    return float(np.sum(gaps[:-1] * np.diff(pooled)))


def overton_pct_positive(
    baseline: ArrayLike,
    followup: ArrayLike,
    *,
    bins: int = 256,
    range: tuple[float, float] | None = None,
    threshold: float | None = None,
) -> float:
    """Percentage of the follow-up distribution that is positive relative to baseline.

    Overton's cumulative histogram subtraction: both samples are histogrammed on
    the same channels and each is normalised to unit area (so the event counts of
    the two files do not matter).  Summing from the brightest channel down, the
    fraction of the follow-up at or above channel *i* minus that of the baseline
    is the follow-up's excess over channel *i*; % positive is its largest value:

    .. math:: \\%pos = 100 \\max_i \\max(0,\\; S^F_i - S^B_i),
              \\quad S_i = \\sum_{j \\ge i} n_j / \\sum_j n_j

    This is the one-sided Kolmogorov–Smirnov distance on binned data: near 0 for
    two draws of one distribution (about ``100 * sqrt(1/n)`` for ``n`` events per
    side), 0 when the follow-up is only dimmer, 100 when every follow-up event is
    brighter than every baseline event.

    Parameters
    ----------
    baseline
        Marker values of the baseline (control) sample.
    followup
        Marker values of the follow-up (test) sample.
    bins
        Number of equal-width channels.
    range
        (low, high) of the channels; default the joint minimum and maximum of
        both samples.  Events outside the range are ignored.
    threshold
        Optional positivity cut (e.g. isotype-derived) on the same scale.  When
        given it is made a channel edge and only the excess over channels at or
        above it counts, so a gain of dim, still-negative events does not count
        as positive.

    Returns
    -------
    float
        % positive in [0, 100]; NaN when either sample has fewer than
        :data:`MIN_EVENTS` events or no event inside ``range``.

    References
    ----------
    Overton WR. Modified histogram subtraction technique for analysis of flow
    cytometry data. Cytometry 9:619–626 (1988).

    Examples
    --------
    >>> overton_pct_positive([0, 0, 1, 1], [1, 1, 1, 1], bins=2)
    50.0
    """
    if bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    pair = _pair(baseline, followup)
    if pair is None:
        return float("nan")
    base, follow = pair
    if range is None:
        low = min(base.min(), follow.min())
        high = max(base.max(), follow.max())
    else:
        low, high = (float(edge) for edge in range)
        if not low < high:
            raise ValueError(f"range must be (low, high) with low < high, got {range}")
    if low == high:
        # every event sits on one value: a single channel holds both samples
        edges = np.array([low - 0.5, high + 0.5])
    else:
        edges = np.linspace(low, high, bins + 1)
    if threshold is not None and edges[0] < threshold < edges[-1]:
        # bin widths do not enter a count difference, so an extra edge is harmless
        edges = np.unique(np.append(edges, threshold))
    base_counts, _ = np.histogram(base, bins=edges)
    follow_counts, _ = np.histogram(follow, bins=edges)
    if base_counts.sum() == 0 or follow_counts.sum() == 0:
        return float("nan")
    def above(counts: np.ndarray) -> np.ndarray:  # fraction at or above each channel
        return np.cumsum(counts[::-1])[::-1] / counts.sum()

    excess = above(follow_counts) - above(base_counts)
    if threshold is not None:
        excess = excess[edges[:-1] >= threshold]
    pct = 100.0 * float(excess.max(initial=0.0))
    return float(np.clip(pct, 0.0, 100.0))


def ks_test(baseline: ArrayLike, followup: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov test of baseline against follow-up.

    Parameters
    ----------
    baseline
        Marker values of the baseline sample.
    followup
        Marker values of the follow-up sample.

    Returns
    -------
    tuple of float
        ``(D, p)``: the largest vertical distance between the two empirical CDFs,
        in [0, 1], and the two-sided p-value of :func:`scipy.stats.ks_2samp`.
        With tens of thousands of events p is almost always tiny; D is the
        useful effect size.  ``(nan, nan)`` for too few events.

    Examples
    --------
    >>> ks_test([1, 2, 3], [1, 2, 3])[0]
    0.0
    """
    from scipy import stats

    pair = _pair(baseline, followup)
    if pair is None:
        return float("nan"), float("nan")
    result = stats.ks_2samp(*pair)
    return float(result.statistic), float(result.pvalue)


def ks_statistic(baseline: ArrayLike, followup: ArrayLike) -> float:
    """Two-sample Kolmogorov–Smirnov D between baseline and follow-up.

    Parameters
    ----------
    baseline
        Marker values of the baseline sample.
    followup
        Marker values of the follow-up sample.

    Returns
    -------
    float
        D in [0, 1]; NaN for too few events.  See :func:`ks_test` for the p-value.

    Examples
    --------
    >>> ks_statistic([0, 1, 2, 3], [10, 11, 12, 13])
    1.0
    """
    pair = _pair(baseline, followup)
    if pair is None:
        return float("nan")
    return _ks_d(*_cdf_gaps(*pair))  # scipy.stats.ks_2samp's D (tests check they agree)


def earth_movers_distance(baseline: ArrayLike, followup: ArrayLike) -> float:
    """Earth mover's (1-D Wasserstein-1) distance between baseline and follow-up.

    The area between the two empirical CDFs, i.e. how far, on average, mass must
    move along the marker axis.  It is in the units of the values given, so pass
    transformed values to compare markers; a pure shift of every event by ``d``
    gives exactly ``d``.

    Parameters
    ----------
    baseline
        Marker values of the baseline sample.
    followup
        Marker values of the follow-up sample.

    Returns
    -------
    float
        Distance ≥ 0 (symmetric in its arguments); NaN for too few events.

    Examples
    --------
    >>> earth_movers_distance([0.0, 1.0, 2.0], [0.5, 1.5, 2.5])
    0.5
    """
    pair = _pair(baseline, followup)
    if pair is None:
        return float("nan")
    return _emd(*_cdf_gaps(*pair))  # scipy.stats.wasserstein_distance (tests check they agree)

