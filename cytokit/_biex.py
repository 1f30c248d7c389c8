"""FlowJo 10's ``biex`` scale: a lookup table onto FlowJo's 0..4096 channel range.

FlowJo does not evaluate its biexponential analytically: it builds a 4097-point table
(ported to R by cytolib from TreeStar's Java, and to Python by FlowKit as
``flowkit.transforms.WSPBiexTransform``) and interpolates linearly between its points,
clamping outside the table. This module is FlowKit's code (FlowKit 1.3, BSD licence)
restated with the same arithmetic in the same order, so the table is the same floats,
and the interpolation is ``scipy.interpolate.interp1d(kind="linear", bounds_error=False,
fill_value=(min, max))``, which for float64 tables is ``numpy.interp`` clamped at the
table's ends. ``tests/test_transforms.py`` checks bit-for-bit equality with FlowKit.
Kept apart from FlowKit because importing FlowKit costs seconds in every worker process.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: FlowJo's table size: 4096 channels (the output range), 4097 points.
CHANNEL_RANGE = 4096


def _log_root(b: float, w: float) -> float:
    """FlowKit's ``_log_root``: the negative range's root by bisection and Newton steps."""
    x_lo = 0
    x_hi = b
    d = (x_lo + x_hi) / 2
    dx = abs(int(x_lo - x_hi))
    dx_last = dx
    fb = -2 * np.log(b) + w * b
    f = 2.0 * np.log(d) + w * b + fb
    df = 2 / d + w
    if w == 0:
        return b
    for _ in range(100):
        if (((d - x_hi) * df - f) - ((d - x_lo) * df - f)) > 0 or abs(2 * f) > abs(dx_last * df):
            dx = (x_hi - x_lo) / 2
            d = x_lo + dx
            if d == x_lo:
                return d
        else:
            dx = f / df
            t = d
            d -= dx
            if d == t:
                return d
        if abs(dx) < 1.0e-12:
            return d
        dx_last = dx
        f = 2 * np.log(d) + w * d + fb
        df = 2 / d + w
        if f < 0:
            x_lo = d
        else:
            x_hi = d
    return d


@lru_cache(maxsize=32)
def biex_table(t: float, width: float, positive: float, negative: float) -> tuple[np.ndarray, np.ndarray]:
    """FlowKit's ``generate_biex_lut``: (data values, channel values), both ascending.

    ``t`` top of scale (``max_value``), ``width`` FlowJo's width basis (negative),
    ``positive`` decades, ``negative`` extra negative decades. Cached: treat as read-only.
    """
    channel_range = CHANNEL_RANGE
    ln10 = np.log(10.0)
    decades = positive
    width = np.log10(-width)
    decades = decades - (width / 2)
    extra = max(negative, 0)
    extra = extra + (width / 2)
    zero_point = int((extra * channel_range) / (extra + decades))
    zero_point = int(np.min([zero_point, channel_range / 2]))
    if zero_point > 0:
        decades = extra * channel_range / zero_point
    width = width / (2 * decades)
    minimum = t / np.exp(ln10 * decades)
    positive_range = ln10 * decades
    negative_range = _log_root(positive_range, width)
    n_points = channel_range + 1
    step = (n_points - 1) / (n_points - 1)
    values = np.arange(n_points)
    pos = np.exp(values / float(n_points) * positive_range)
    neg = np.exp(values / float(n_points) * -negative_range)
    values = values * step
    s = np.exp((positive_range + negative_range) * (width + extra / decades))
    neg *= s
    s = pos[zero_point] - neg[zero_point]
    pos[zero_point:n_points] = pos[zero_point:n_points] - neg[zero_point:n_points]
    pos[zero_point:n_points] = minimum * (pos[zero_point:n_points] - s)
    neg_range = np.arange(zero_point)
    pos[neg_range] = -pos[2 * zero_point - neg_range]
    # interp1d sorts its x (a stable sort); the table is ascending already, this keeps the promise
    order = np.argsort(pos, kind="mergesort")
    data, channels = pos[order], values[order].astype(np.float64)
    data.flags.writeable = channels.flags.writeable = False
    return data, channels


def _interpolate(values, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return np.interp(array, xp, fp, left=float(np.min(fp)), right=float(np.max(fp)))


def biex(values, t: float, width: float, positive: float, negative: float) -> np.ndarray:
    """Data values to FlowJo biex channels (0..4096); NaN stays NaN."""
    data, channels = biex_table(t, width, positive, negative)
    return _interpolate(values, data, channels)


def biex_inverse(values, t: float, width: float, positive: float, negative: float) -> np.ndarray:
    """FlowJo biex channels back to data values (clamped to the table's range)."""
    data, channels = biex_table(t, width, positive, negative)
    return _interpolate(values, channels, data)


def check(t: float, width: float, positive: float, negative: float) -> None:
    """Raise ``ValueError`` unless the parameters make a FlowJo biex table (NaN fails too)."""
    if not (t > 0 and width < 0 and positive > 0 and negative >= 0):
        raise ValueError(f"biex transform parameters t={t:g}, width={width:g}, positive={positive:g}, "
                         f"negative={negative:g} are invalid: FlowJo's biex needs t > 0, width < 0 (a width "
                         "basis such as -10), positive > 0 and negative >= 0")


def to_flowkit(t: float, width: float, positive: float, negative: float):
    """The equivalent ``flowkit.transforms.WSPBiexTransform``."""
    from flowkit import transforms

    return transforms.WSPBiexTransform(negative=negative, width=width, positive=positive, max_value=t)
