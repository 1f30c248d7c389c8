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
    Overton's cumulative histogram subtraction (Overton 1988): % of one sample
    brighter than another (classically a stained tube against its isotype).
ks_statistic, ks_test
    Two-sample Kolmogorov–Smirnov D (and p).
probability_binning, pb_test
    Normalised chi-square and T(χ) of Roederer et al. (2001); the test and
    effect size of Baggerly (2001).
earth_movers_distance
    1-D Wasserstein distance, in units of the marker scale.
shift_metrics
    All of the above for one baseline/follow-up pair, on isotype-referenced values.

``_events`` holds the cleaning of both sides, ``_distances`` the CDF and histogram
metrics, ``_binning`` probability binning; this package re-exports them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._binning import pb_test, probability_binning
from ._distances import (
    _cdf_gaps,
    _emd,
    _ks_d,
    _excess_p,
    _ks_p,
    earth_movers_distance,
    ks_statistic,
    ks_test,
    overton_pct_positive,
)
from ._events import MIN_EVENTS, _pair, _spread_ties

__all__ = [
    "MIN_EVENTS",
    "SHIFT_METRICS",
    "overton_pct_positive",
    "ks_statistic",
    "ks_test",
    "probability_binning",
    "pb_test",
    "earth_movers_distance",
    "shift_metrics",
    "isotype_referenced",
]

SHIFT_METRICS = (
    "overton_pct_pos_baseline", "overton_pct_pos_followup", "delta_overton_pct_pos", "isotype_shift",
    "cum_excess_pct", "cum_excess_p", "ks_d", "ks_p", "pb_chi2_excess", "pb_tx", "pb_p", "pb_bins", "emd",
    "cum_excess_pct_raw", "ks_d_raw", "pb_tx_raw", "emd_raw",
)
"""Keys of :func:`shift_metrics`, in order."""

DRIFT_PROTECTED = frozenset(SHIFT_METRICS[:13]) - {"isotype_shift", "pb_bins"}
"""Shift metrics computed on isotype-referenced values (or each tube against its own isotype)."""


def shift_metrics(
    baseline: ArrayLike,
    followup: ArrayLike,
    *,
    baseline_isotype: ArrayLike | None = None,
    followup_isotype: ArrayLike | None = None,
    threshold: float | None = None,
) -> dict[str, float]:
    """Every shift metric of one marker between baseline and follow-up.

    An acquisition session's drift (laser power, PMT gain, staining day) moves a stained
    tube and the isotype tube acquired with it alike. So the follow-up values are first put
    on the baseline session's scale by the isotypes (:func:`isotype_referenced`: each
    follow-up value is moved by the difference of the two isotypes' quantiles at its level,
    a quantile normalisation of the follow-up isotype onto the baseline isotype applied to
    the follow-up stained tube). ``isotype_shift`` is that difference at the median. The
    distances between
    timepoints (``cum_excess_pct``, ``ks_d``, ``pb_*``, ``emd``) are computed on these
    referenced values; the ``*_raw`` ones compare the two stained tubes as acquired, and
    move with drift. ``overton_pct_pos_*`` is the classic Overton % positive of each
    stained tube against its own timepoint's isotype. Tied values (binned data) are first
    spread evenly over their channel (:func:`~cytokit.shift._events._spread_ties`), so that
    a shift by a fraction of a channel does not measure the lattice.

    Parameters
    ----------
    baseline, followup
        Marker values of the baseline and follow-up stained tubes.
    baseline_isotype, followup_isotype
        The same marker's values in each timepoint's isotype tube (same population and
        scale). Without both, every isotype-referenced metric is NaN.
    threshold
        Optional positivity cut on the baseline's scale, passed to
        :func:`overton_pct_positive` for ``cum_excess_pct`` (only the excess at or above it
        counts).

    Returns
    -------
    dict
        Keys exactly :data:`SHIFT_METRICS` (float; ``pb_bins`` a whole number):
        ``overton_pct_pos_baseline``/``_followup`` and their difference; ``isotype_shift``;
        ``cum_excess_pct`` (:func:`overton_pct_positive` of follow-up over baseline, 256
        channels) and its one-sided ``cum_excess_p``; ``ks_d`` and its two-sided ``ks_p`` (both
        at the effective count of the two stained and the two isotype tubes); ``pb_chi2_excess``, ``pb_tx``,
        ``pb_p`` and ``pb_bins`` (:func:`pb_test`); ``emd``; and the raw
        ``cum_excess_pct_raw``, ``ks_d_raw``, ``pb_tx_raw``, ``emd_raw``. All NaN when
        either stained tube has fewer than :data:`MIN_EVENTS` finite events.

    Examples
    --------
    >>> drift = 0.5                                   # the follow-up session reads 0.5 brighter
    >>> iso, stained = [0.0, 0.25, 0.5, 0.75], [0.25, 1.0, 1.5, 2.0]
    >>> m = shift_metrics(stained, [v + drift for v in stained], baseline_isotype=iso,
    ...                   followup_isotype=[v + drift for v in iso])
    >>> round(m["isotype_shift"], 3), round(m["ks_d"], 3), round(m["ks_d_raw"], 3)
    (0.5, 0.0, 0.25)
    """
    pair = _pair(baseline, followup)
    if pair is None:
        return dict.fromkeys(SHIFT_METRICS, float("nan"))
    base, follow = (_spread_ties(side) for side in pair)
    out = dict.fromkeys(SHIFT_METRICS, float("nan"))
    isotypes = None if baseline_isotype is None or followup_isotype is None else _pair(
        baseline_isotype, followup_isotype)
    if isotypes is not None:
        iso_base, iso_follow = (_spread_ties(side) for side in isotypes)
        shift = float(np.median(iso_follow) - np.median(iso_base))
        out["overton_pct_pos_baseline"] = overton_pct_positive(iso_base, base)
        out["overton_pct_pos_followup"] = overton_pct_positive(iso_follow, follow)
        out["delta_overton_pct_pos"] = out["overton_pct_pos_followup"] - out["overton_pct_pos_baseline"]
        out["isotype_shift"] = shift
        out.update(_distances(base, isotype_referenced(follow, iso_follow, iso_base), threshold,
                              isotype_sizes=(iso_base.size, iso_follow.size)))
    raw = _distances(base, follow, threshold, p_value=False)
    out.update({f"{name}_raw": raw[name] for name in ("cum_excess_pct", "ks_d", "pb_tx", "emd")})
    return out


QUANTILE_KNOTS = np.linspace(0.02, 0.98, 5)
"""Isotype quantile levels at which :func:`isotype_referenced` matches the two sessions."""


def isotype_referenced(values: ArrayLike, isotype: ArrayLike, reference_isotype: ArrayLike) -> np.ndarray:
    """``values`` of a tube moved from its session's scale to the reference session's.

    ``isotype`` was acquired with ``values`` and ``reference_isotype`` with the tube to be
    compared to. A value at the level of ``isotype``'s quantile ``p`` is moved by
    ``Q_reference(p) − Q_isotype(p)`` (linear between the :data:`QUANTILE_KNOTS`; beyond the
    outer knots by the outer knots' difference, so events brighter than the isotype, on the
    log decades where a gain change is a translation, move as its bright end does). A drift
    that moves the two tubes of a session alike by any increasing map is removed within the
    isotype's range: a translation (a gain change on log decades) and the compression near
    zero of a logicle scale alike, which a single shift by the median cannot do.

    Examples
    --------
    >>> isotype_referenced([1.0, 5.0], isotype=[0.5, 1.5, 2.5], reference_isotype=[0.0, 1.0, 2.0]).tolist()
    [0.5, 4.5]
    """
    x = np.asarray(values, dtype=float)
    q_own = np.quantile(np.asarray(isotype, dtype=float), QUANTILE_KNOTS)
    q_ref = np.quantile(np.asarray(reference_isotype, dtype=float), QUANTILE_KNOTS)
    keep = np.concatenate([[True], np.diff(q_own) > 0])  # tied quantiles: one knot
    q_own, q_ref = q_own[keep], q_ref[keep]
    if q_own.size < 2:
        return x - (q_own[0] - q_ref[0])
    return x - np.interp(x, q_own, q_own - q_ref)


def _distances(base: np.ndarray, follow: np.ndarray, threshold: float | None, *, p_value: bool = True,
               isotype_sizes: tuple[int, int] = ()) -> dict[str, float]:
    """The distances between two samples and the p-values of KS and the cumulative excess at the
    effective count of the stained tubes and, when the follow-up was referenced, the isotypes;
    ``p_value=False`` skips them (the raw metrics report none)."""
    pb = pb_test(base, follow)
    gaps = _cdf_gaps(base, follow)
    d = _ks_d(*gaps)
    sizes = (base.size, follow.size, *isotype_sizes)
    excess = overton_pct_positive(base, follow, threshold=threshold)
    return {
        "cum_excess_pct": excess, "cum_excess_p": _excess_p(excess, *sizes) if p_value else float("nan"),
        "ks_d": d, "ks_p": _ks_p(d, *sizes) if p_value else float("nan"),
        "pb_chi2_excess": pb["chi2_excess"], "pb_tx": pb["tx"], "pb_p": pb["p"], "pb_bins": pb["bins"],
        "emd": _emd(*gaps),
    }
