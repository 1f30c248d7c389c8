"""Distribution shift of one marker between a baseline and a follow-up sample.

Every function takes the marker values of the gated events of two files, the
*baseline* (control, e.g. C2D1) and the *follow-up* (test, e.g. C2D8), as 1-D
array-likes on whatever scale the caller chose (normally the transformed
logicle/asinh scale, so that distances are comparable between channels).
Non-finite values (NaN, ±inf) are dropped first.  When either side has fewer
than :data:`MIN_EVENTS` events every metric is NaN: a comparison of a sample
with (nearly) nothing is undefined, and a cohort run must not stop for one
sparse file.

Metrics
-------
overton_pct_positive
    % of the follow-up brighter than the baseline: cumulative histogram
    subtraction (Overton 1988).
ks_statistic, ks_test
    Two-sample Kolmogorov–Smirnov D (and p).
probability_binning
    Normalised chi-square and T(χ) of Roederer et al. (2001).
earth_movers_distance
    1-D Wasserstein distance, in units of the marker scale.
shift_metrics
    All of the above in one dict.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MIN_EVENTS",
    "SHIFT_METRICS",
    "overton_pct_positive",
    "ks_statistic",
    "ks_test",
    "probability_binning",
    "earth_movers_distance",
    "shift_metrics",
]

MIN_EVENTS = 2
"""Fewest finite events on each side for a metric to be computed (else NaN)."""

SHIFT_METRICS = ("overton_pct_pos", "ks_d", "pb_chi2", "pb_tx", "emd")
"""Keys of :func:`shift_metrics`, in order."""

_PB_MIN_PER_BIN = 10
_PB_MAX_BINS = 256


def _events(values: ArrayLike, name: str) -> np.ndarray:
    """Return the finite values of a 1-D array-like as float64."""
    array = np.asarray(values, dtype=float)
    if array.ndim > 1:
        raise ValueError(
            f"{name} must be 1-D marker values of one channel, got shape {array.shape}; "
            "pass one column of the events matrix"
        )
    array = array.ravel()
    return array[np.isfinite(array)]


def _pair(baseline: ArrayLike, followup: ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
    """Clean both samples; None when either is too small to compare."""
    base = _events(baseline, "baseline")
    follow = _events(followup, "followup")
    if base.size < MIN_EVENTS or follow.size < MIN_EVENTS:
        return None
    return base, follow


def _cdf_gaps(base: np.ndarray, follow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled sorted values and ``|F_base - F_follow|`` at each of them (right-continuous ECDFs).

    The one sort that KS D and the earth mover's distance share: both are read off
    these two arrays, exactly as ``scipy.stats.ks_2samp`` and ``wasserstein_distance``
    compute them, without sorting the same events twice per metric.
    """
    base, follow = np.sort(base), np.sort(follow)
    pooled = np.sort(np.concatenate([base, follow]), kind="mergesort")
    gaps = np.abs(np.searchsorted(base, pooled, side="right") / base.size
                  - np.searchsorted(follow, pooled, side="right") / follow.size)
    return pooled, gaps


def _ks_d(pooled: np.ndarray, gaps: np.ndarray) -> float:
    return float(gaps.max())


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


def _pb_default_bins(n_min: int, min_per_bin: int) -> int:
    return int(np.clip(n_min // min_per_bin, 2, _PB_MAX_BINS))


def probability_binning(
    baseline: ArrayLike,
    followup: ArrayLike,
    *,
    n_bins: int | None = None,
    min_per_bin: int = _PB_MIN_PER_BIN,
    method: Literal["roederer", "baggerly"] = "roederer",
) -> tuple[float, float]:
    """Probability-binning chi-square and T(χ) of follow-up against baseline.

    The baseline (control) is cut at its quantiles into ``B`` bins holding equal
    numbers of baseline events; the follow-up is counted in the same bins.  With
    ``c_i``, ``t_i`` the proportions of the baseline and follow-up events in bin
    ``i`` and ``N_c``, ``N_t`` the event counts, the normalised chi-square is

    .. math:: \\chi^2 = \\sum_i \\frac{(c_i - t_i)^2}{c_i + t_i}
              \\qquad (0 \\le \\chi^2 \\le 2)

    and, for ``method="roederer"`` (the metric FlowJo reports),

    .. math:: T(\\chi) = \\max\\left(0,\\;
              \\frac{\\chi^2 - B / \\min(N_c, N_t)}{\\sqrt{B} / \\min(N_c, N_t)}\\right)

    i.e. the chi-square expected for two samples of one distribution,
    ``B / min(N)``, subtracted and divided by its standard deviation, estimated
    by Roederer et al. as ``sqrt(B) / min(N)``.  T(χ) ≈ 0 means indistinguishable;
    T(χ) ≥ 4 is conventionally read as different with p < 0.01.

    ``method="baggerly"`` gives instead Baggerly's exact null scaling (the
    statistic of flowStats' ``calcPBChiSquare``): under the null
    ``N_eff χ²`` with ``N_eff = 2 N_c N_t / (N_c + N_t)`` is χ² with ``B − 1``
    degrees of freedom, so

    .. math:: T = \\frac{N_{eff} \\chi^2 - (B - 1)}{\\sqrt{2 (B - 1)}}

    a z-score (not clipped at 0) whose null mean is 0 and standard deviation 1.

    Parameters
    ----------
    baseline
        Marker values of the baseline (control) sample; it defines the bins.
    followup
        Marker values of the follow-up (test) sample.
    n_bins
        Number of bins ``B``.  Default ``min(N_c, N_t) // min_per_bin``, kept
        within [2, 256], so every bin expects at least ``min_per_bin`` events of
        the smaller sample (the chi-square approximation needs populated bins)
        while a 1-D histogram is never split finer than 256 channels.
    min_per_bin
        Expected events per bin of the smaller sample used for the default
        ``n_bins``.
    method
        ``"roederer"`` (default) or ``"baggerly"``, see above.

    Returns
    -------
    tuple of float
        ``(chi2, T)``; ``(nan, nan)`` when either sample has fewer than
        :data:`MIN_EVENTS` events.

    Notes
    -----
    Tied baseline values (e.g. events piled on a scale's floor) can make
    quantile edges coincide or leave a bin without baseline events; such bins
    are merged with a neighbour, so ``B`` is the number of bins actually used
    (each holding baseline events, not necessarily equally many).  A baseline
    that cannot be split into two bins (all values equal) gives ``(nan, nan)``.

    References
    ----------
    Roederer M, Treister A, Moore W, Herzenberg LA. Probability binning
    comparison: a metric for quantitating univariate distribution differences.
    Cytometry 45:37–46 (2001); and Roederer M, Moore W, Treister A, Hardy RR,
    Herzenberg LA. ... multivariate distribution differences. Cytometry 45:47–55
    (2001).  Baggerly KA. Probability binning and testing agreement between
    multivariate immunofluorescence histograms: extending the chi-squared test.
    Cytometry 45:141–150 (2001).

    Examples
    --------
    >>> chi2, tx = probability_binning(range(100), [10] * 75 + [90] * 25, n_bins=2)
    >>> round(chi2, 4), round(tx, 2)
    (0.1333, 8.01)
    """
    if method not in ("roederer", "baggerly"):
        raise ValueError(f"method must be 'roederer' or 'baggerly', got {method!r}")
    if min_per_bin < 1:
        raise ValueError(f"min_per_bin must be a positive integer, got {min_per_bin}")
    if n_bins is not None and n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    pair = _pair(baseline, followup)
    if pair is None:
        return float("nan"), float("nan")
    base, follow = pair
    n_base, n_follow = base.size, follow.size
    n_min = min(n_base, n_follow)
    if n_bins is None:
        n_bins = _pb_default_bins(n_min, min_per_bin)

    inner_edges = np.unique(np.quantile(base, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    n_edges = inner_edges.size
    # Bins [e_i, e_i+1); but when a pile of tied values sits on an edge at the bottom of
    # the baseline, (e_i, e_i+1] keeps that pile apart from the rest: use whichever
    # leaves more bins holding baseline events.
    side = "right"
    base_counts = np.bincount(np.searchsorted(inner_edges, base, side=side), minlength=n_edges + 1)
    closed_right = np.bincount(np.searchsorted(inner_edges, base, side="left"), minlength=n_edges + 1)
    if np.count_nonzero(closed_right) > np.count_nonzero(base_counts):
        side, base_counts = "left", closed_right
    follow_counts = np.bincount(np.searchsorted(inner_edges, follow, side=side), minlength=n_edges + 1)
    # Ties can leave a bin without baseline events; fold it into its left
    # neighbour (the first ones into the right) so every bin is a real control bin.
    merged = np.maximum(np.cumsum(base_counts > 0) - 1, 0)
    base_counts = np.bincount(merged, weights=base_counts)
    follow_counts = np.bincount(merged, weights=follow_counts)
    n_used = base_counts.size
    if n_used < 2:
        # a (nearly) constant baseline cannot be split; one bin carries no information
        return float("nan"), float("nan")
    base_p = base_counts / n_base
    follow_p = follow_counts / n_follow
    total = base_p + follow_p
    filled = total > 0
    chi2 = float(np.sum((base_p[filled] - follow_p[filled]) ** 2 / total[filled]))

    if method == "roederer":
        tx = max(0.0, (chi2 - n_used / n_min) / (np.sqrt(n_used) / n_min))
    else:
        n_eff = 2.0 * n_base * n_follow / (n_base + n_follow)
        tx = (n_eff * chi2 - (n_used - 1)) / np.sqrt(2.0 * (n_used - 1))
    return chi2, float(tx)


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


def shift_metrics(
    baseline: ArrayLike,
    followup: ArrayLike,
    *,
    threshold: float | None = None,
) -> dict[str, float]:
    """Every shift metric of one marker between baseline and follow-up.

    Parameters
    ----------
    baseline
        Marker values of the baseline (control) sample.
    followup
        Marker values of the follow-up sample.
    threshold
        Optional positivity cut on the same scale, passed to
        :func:`overton_pct_positive` (only the excess at or above it counts as
        positive).  The other metrics compare whole distributions and ignore it.

    Returns
    -------
    dict
        Keys exactly :data:`SHIFT_METRICS`:

        ``overton_pct_pos``
            :func:`overton_pct_positive` with its defaults (256 channels).
        ``ks_d``
            :func:`ks_statistic`.
        ``pb_chi2``, ``pb_tx``
            :func:`probability_binning` with its defaults (Roederer's T(χ)).
        ``emd``
            :func:`earth_movers_distance`.

        All NaN, never an exception, when either side has fewer than
        :data:`MIN_EVENTS` finite events.

    Examples
    --------
    >>> metrics = shift_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    >>> {name: round(value, 3) for name, value in metrics.items()}
    {'overton_pct_pos': 0.0, 'ks_d': 0.0, 'pb_chi2': 0.0, 'pb_tx': 0.0, 'emd': 0.0}
    """
    pair = _pair(baseline, followup)
    if pair is None:
        return dict.fromkeys(SHIFT_METRICS, float("nan"))
    base, follow = pair
    chi2, tx = probability_binning(base, follow)
    gaps = _cdf_gaps(base, follow)
    return {
        "overton_pct_pos": overton_pct_positive(base, follow, threshold=threshold),
        "ks_d": _ks_d(*gaps),
        "pb_chi2": chi2,
        "pb_tx": tx,
        "emd": _emd(*gaps),
    }
