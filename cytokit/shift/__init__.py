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

``_events`` holds the cleaning of both sides, ``_distances`` the CDF and histogram
metrics, ``_binning`` probability binning; this package re-exports them.
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from ._binning import probability_binning
from ._distances import (
    _cdf_gaps,
    _emd,
    _ks_d,
    earth_movers_distance,
    ks_statistic,
    ks_test,
    overton_pct_positive,
)
from ._events import MIN_EVENTS, _pair

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

SHIFT_METRICS = ("overton_pct_pos", "ks_d", "pb_chi2", "pb_tx", "emd")
"""Keys of :func:`shift_metrics`, in order."""


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
