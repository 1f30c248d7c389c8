"""Probability binning (Roederer et al. 2001, Baggerly 2001): chi-square and T(χ) on baseline quantiles."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .._sorted import ascending, sorted_quantiles
from ._events import _pair, _runs

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
    Bin edges are placed half-way between two distinct baseline values (the one at or below
    each quantile and the next), so a pile of tied values (the 1024 channels of a
    FACSCalibur, events on a scale's floor) is never split between bins, and which bin an
    event falls in does not depend on how ties are broken: the result is deterministic and
    the same for any order of the events. The price is that bins hold unequal numbers of
    baseline events when values are tied (on FACSCalibur data 13 to 58 where 23 were
    meant); ``B`` is the number of bins actually used. The chi-square test
    (:func:`pb_test`) does not need equal bins, only populated ones. A baseline that
    cannot be split into two bins (all values equal) gives ``(nan, nan)``.

    Roederer's ``sqrt(B) / min(N)`` is about ``sqrt(2)`` times too small for the null SD of
    the chi-square (Baggerly 2001: ``N_eff χ²`` is χ² with ``B − 1`` degrees of freedom,
    whose SD is ``sqrt(2 (B − 1))``), so Roederer's T is about ``sqrt(2)`` × a z-score:
    T ≥ 4 is z ≥ 2.8 (p ≈ 0.002), and like any test statistic T grows with the events and
    bins for one and the same difference. Use :func:`pb_test` for the p-value and an
    effect size that does not grow with the events.

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

    counted = _pb_counts(base, follow, n_bins)
    if counted is None:
        # a (nearly) constant baseline cannot be split; one bin carries no information
        return float("nan"), float("nan")
    chi2, n_used = counted
    if method == "roederer":
        tx = max(0.0, (chi2 - n_used / n_min) / (np.sqrt(n_used) / n_min))
    else:
        n_eff = 2.0 * n_base * n_follow / (n_base + n_follow)
        tx = (n_eff * chi2 - (n_used - 1)) / np.sqrt(2.0 * (n_used - 1))
    return chi2, float(tx)



def _pb_counts(base: np.ndarray, follow: np.ndarray, n_bins: int) -> tuple[float, int] | None:
    """Normalised chi-square and bins used, edges half-way between distinct baseline values."""
    ordered = ascending(base)
    distinct = _runs(ordered)[0]  # np.unique(base), without sorting sorted values again
    quantiles = sorted_quantiles(ordered, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    above = np.unique(np.searchsorted(distinct, quantiles, side="right"))
    above = above[(above > 0) & (above < distinct.size)]
    # every edge lies strictly between two distinct baseline values: no bin is empty of baseline
    edges = (distinct[above - 1] + distinct[above]) / 2.0
    if edges.size == 0:
        return None
    base_p = np.bincount(np.searchsorted(edges, base, side="right"), minlength=edges.size + 1) / base.size
    follow_p = np.bincount(np.searchsorted(edges, follow, side="right"), minlength=edges.size + 1) / follow.size
    total = base_p + follow_p
    return float(np.sum((base_p - follow_p) ** 2 / total)), int(edges.size + 1)


def pb_test(
    baseline: ArrayLike,
    followup: ArrayLike,
    *,
    n_bins: int | None = None,
    min_per_bin: int = _PB_MIN_PER_BIN,
) -> dict[str, float]:
    """Probability binning as a per-patient test, with an effect size that does not grow with events.

    Bins as :func:`probability_binning`. Returns

    ``chi2``
        the normalised chi-square (0 to 2);
    ``chi2_excess``
        ``chi2 − (B − 1) / N_eff`` with ``N_eff = 2 N_c N_t / (N_c + N_t)``: the chi-square
        minus its expectation for two samples of one distribution. It estimates the binned
        chi-square divergence of the two distributions, near 0 under the null whatever the
        events, and, unlike T(χ), does not grow with the events for one difference;
    ``tx``
        Roederer's T(χ) (see :func:`probability_binning` on its SD);
    ``z``, ``p``
        Baggerly's z-score and the p-value ``P(χ²_{B−1} ≥ N_eff χ²)``;
    ``bins``
        ``B``, the bins used.

    All NaN when either side has too few events or the baseline cannot be split.

    Examples
    --------
    >>> result = pb_test(range(100), range(100), n_bins=4)
    >>> result["chi2"], result["p"], result["bins"]
    (0.0, 1.0, 4.0)
    """
    from scipy import stats

    keys = ("chi2", "chi2_excess", "tx", "z", "p", "bins")
    pair = _pair(baseline, followup)
    if pair is None:
        return dict.fromkeys(keys, float("nan"))
    base, follow = pair
    n_min = min(base.size, follow.size)
    counted = _pb_counts(base, follow, n_bins if n_bins is not None else _pb_default_bins(n_min, min_per_bin))
    if counted is None:
        return dict.fromkeys(keys, float("nan"))
    chi2, n_used = counted
    n_eff = 2.0 * base.size * follow.size / (base.size + follow.size)
    df = n_used - 1
    return {
        "chi2": chi2,
        "chi2_excess": chi2 - df / n_eff,
        "tx": max(0.0, (chi2 - n_used / n_min) / (np.sqrt(n_used) / n_min)),
        "z": float((n_eff * chi2 - df) / np.sqrt(2.0 * df)),
        "p": float(stats.chi2.sf(n_eff * chi2, df)),
        "bins": float(n_used),
    }
