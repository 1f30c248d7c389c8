"""FlowJo 10's ``biex`` scale, through FlowKit's ``WSPBiexTransform`` (its lookup table onto 0..4096).

FlowJo does not evaluate its biexponential analytically: it interpolates a 4097-point table.
FlowKit implements that table; cytokit reuses it rather than restating it, builds one transform
per parameter set (the table costs milliseconds) and imports FlowKit only when a template uses biex.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=32)
def to_flowkit(t: float, width: float, positive: float, negative: float):
    """The equivalent ``flowkit.transforms.WSPBiexTransform`` (one per parameter set)."""
    from flowkit import transforms

    return transforms.WSPBiexTransform(negative=negative, width=width, positive=positive, max_value=t)


def biex(values, t: float, width: float, positive: float, negative: float) -> np.ndarray:
    """Data values to FlowJo biex channels (0..4096); NaN stays NaN."""
    return np.asarray(to_flowkit(t, width, positive, negative).apply(np.asarray(values, dtype=np.float64)))


def biex_inverse(values, t: float, width: float, positive: float, negative: float) -> np.ndarray:
    """FlowJo biex channels back to data values (clamped to the table's range)."""
    return np.asarray(to_flowkit(t, width, positive, negative).inverse(np.asarray(values, dtype=np.float64)))


def check(t: float, width: float, positive: float, negative: float) -> None:
    """Raise ``ValueError`` unless the parameters make a FlowJo biex table (NaN fails too)."""
    if not (t > 0 and width < 0 and positive > 0 and negative >= 0):
        raise ValueError(f"biex transform parameters t={t:g}, width={width:g}, positive={positive:g}, "
                         f"negative={negative:g} are invalid: FlowJo's biex needs t > 0, width < 0 (a width "
                         "basis such as -10), positive > 0 and negative >= 0")
