"""Probability binning (Roederer et al. 2001, Baggerly 2001): chi-square and T(χ) on baseline quantiles."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ._events import _pair

_PB_MIN_PER_BIN = 10
_PB_MAX_BINS = 256


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

