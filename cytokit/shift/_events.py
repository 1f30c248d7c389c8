"""The marker values each metric compares: finite, 1-D, and at least :data:`MIN_EVENTS` per side."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

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
