"""The marker values each metric compares: finite, 1-D, and at least :data:`MIN_EVENTS` per side."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._sorted import ascending

MIN_EVENTS = 2
"""Fewest finite events on each side for a metric to be computed (else NaN)."""


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


def _spread_ties(values: np.ndarray) -> np.ndarray:
    """Sorted ``values`` with each pile of ``k`` tied values spread evenly over its channel.

    Binned data (a FACSCalibur's 1024 channels) put many events on one value. Shifting such a
    sample by a fraction of a channel (the isotype referencing) would move whole piles across
    the other sample's piles and bin edges, and the distances would measure the lattice, not
    the distributions. So the ``j``-th of ``k`` events on value ``v`` is put at
    ``v + h (2 (j + ½) / k − 1)``, ``h`` half the distance to the nearer neighbouring distinct
    value: a deterministic, order-independent de-quantisation (no random jitter) that keeps
    every event inside its channel, the pile's mean at ``v``, and untied values where they are.
    """
    ordered = ascending(values)
    distinct, first, counts = _runs(ordered)
    if distinct.size == ordered.size or distinct.size < 2:
        return ordered
    gaps = np.diff(distinct)
    below = np.concatenate([[gaps[0]], gaps])
    above = np.concatenate([gaps, [gaps[-1]]])
    half = np.minimum(below, above) / 2.0
    rank = np.arange(ordered.size) - np.repeat(first, counts)
    k = np.repeat(counts, counts)
    return ordered + np.repeat(half, counts) * (2.0 * (rank + 0.5) / k - 1.0)


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(ordered, return_index=True, return_counts=True)`` of a sorted, finite array in
    one pass (``np.unique`` sorts it again)."""
    if ordered.size == 0:
        return ordered, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    starts = np.empty(ordered.size, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    return ordered[first], first, np.diff(np.append(first, ordered.size))
