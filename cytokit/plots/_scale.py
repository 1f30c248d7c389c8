"""Axes in the units a cytometrist reads: events stay on the transformed (gating) scale, and the
ticks are put where the transform puts scale values, labelled with those values.

Logicle, hyperlog, asinh and log axes get decades (``0``, ``10²``, ``10³``, ``10⁴`` … and, below zero,
``−10²`` …) with minor ticks at 2..9 × each decade, as FlowJo and FlowKit draw them; linear axes
get round scale values (``0``, ``50K``, ``100K`` …). A decade too close to a labelled one (the
logicle's linear region squeezes the low decades together) keeps its tick without a label.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..transforms import Transform

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_DECADES = {"logicle", "hyperlog", "asinh", "log"}
#: labelled ticks closer than this fraction of the axis are thinned (larger decades win)
_MIN_GAP = 0.085
#: a decade narrower than this fraction of the axis gets no minor ticks
_MINOR_DECADE = 0.06


def transform_of(spec) -> Transform | None:
    """A Transform from ``{"kind": ..., params}`` (what the pipeline keeps of each tube's scale), or
    None when there is none or it cannot be made."""
    from ..transforms import make_transform

    if not isinstance(spec, dict) or "kind" not in spec:
        return None
    try:
        return make_transform(spec["kind"], **{k: float(v) for k, v in spec.items() if k != "kind"})
    except (TypeError, ValueError, KeyError):
        return None


def _decade_label(value: float) -> str:
    if value == 0:
        return "0"
    exponent = round(math.log10(abs(value)))
    return ("−" if value < 0 else "") + "10" + str(exponent).translate(_SUPERSCRIPT)


def _multiple_label(value: float) -> str:
    exponent = math.floor(math.log10(abs(value)))
    digit = round(abs(value) / 10.0 ** exponent)
    return ("−" if value < 0 else "") + f"{digit}×10" + str(exponent).translate(_SUPERSCRIPT)


def _linear_label(value: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _inside(where: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.isfinite(where) & (where >= low) & (where <= high)


def _decade_ticks(transform, low: float, high: float) -> tuple[list, list, list]:
    """(major positions, their labels, minor positions) of a decade axis over [low, high]."""
    kind = transform.kind
    with np.errstate(all="ignore"):
        ends = np.asarray(transform.inverse(np.array([low, high], dtype=np.float64)), dtype=np.float64)
    ends = ends[np.isfinite(ends)]
    biggest = float(np.max(np.abs(ends))) if len(ends) else float(getattr(transform, "t", 1e5))
    exponents = np.arange(-3 if kind == "log" else 0, max(1, math.ceil(math.log10(max(biggest, 1.0))) + 1) + 1)
    signs = np.array([1.0] if kind == "log" else [1.0, -1.0])
    # rows: (sign, decade); columns: 1..9 × the decade; one call of the transform for all of them
    grid = signs[:, None, None] * np.arange(1, 10)[None, None, :] * 10.0 ** exponents[None, :, None]
    zero = np.array([] if kind == "log" else [0.0])
    with np.errstate(all="ignore"):
        where = np.asarray(transform.apply(np.concatenate([zero, grid.ravel()])), dtype=np.float64)
    where_zero, where_grid = where[:len(zero)], where[len(zero):].reshape(grid.shape)
    span = (high - low) or 1.0
    values = np.concatenate([zero, grid[:, :, 0].ravel()])
    at = np.concatenate([where_zero, where_grid[:, :, 0].ravel()])
    keep = _inside(at, low, high)
    values, at = values[keep], at[keep]
    # 0 first, then the larger decades: the low ones crowd the linear region of logicle and asinh
    order = sorted(range(len(values)), key=lambda i: (values[i] != 0, -abs(values[i]), values[i] < 0))
    kept: list[int] = []
    for i in order:
        if all(abs(at[i] - at[j]) >= _MIN_GAP * span for j in kept):
            kept.append(i)
    majors = [(float(at[i]), _decade_label(float(values[i]))) for i in kept]
    minors = [float(at[i]) for i in range(len(values)) if i not in kept]
    width = np.abs(np.diff(where_grid[:, :, 0], axis=1))  # each decade's width on the axis
    wide = np.zeros(where_grid.shape[:2], dtype=bool)
    wide[:, :-1] = np.nan_to_num(width, nan=0.0) >= _MINOR_DECADE * span
    inner = where_grid[:, :, 1:][wide]
    minors.extend(float(m) for m in inner[_inside(inner, low, high)])
    if len(majors) < 2:  # a narrow axis (SSC of one population): also label 2 and 5 × its decades
        for column in (1, 4):
            for value, position in zip(grid[:, :, column].ravel(), where_grid[:, :, column].ravel()):
                if _inside(np.array([position]), low, high)[0] and all(
                        abs(position - m) >= _MIN_GAP * span for m, _ in majors):
                    majors.append((float(position), _multiple_label(float(value))))
    if not majors:  # narrower than from one 1, 2 or 5 × a decade to the next (a Guava's HLog): values
        return _linear_ticks(transform, low, high)
    majors.sort()
    return [m for m, _ in majors], [label for _, label in majors], sorted(minors)


def _linear_ticks(transform, low: float, high: float) -> tuple[list, list, list]:
    from matplotlib.ticker import MaxNLocator

    ends = np.sort(np.asarray(transform.inverse(np.array([low, high], dtype=np.float64)), dtype=np.float64))
    values = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(*ends)
    where = np.asarray(transform.apply(values), dtype=np.float64)
    keep = _inside(where, low, high)
    return [float(w) for w in where[keep]], [_linear_label(float(v)) for v in values[keep]], []


@functools.lru_cache(maxsize=256)
def _ticks(transform, low: float, high: float) -> tuple[tuple, tuple, tuple]:
    """:func:`_decade_ticks` or :func:`_linear_ticks`, kept: a run's panels share a few scales and
    limits (transforms compare by their parameters)."""
    ticks = (_decade_ticks if transform.kind in _DECADES else _linear_ticks)(transform, low, high)
    return tuple(tuple(part) for part in ticks)


def scale_axis(ax, which: str, transform) -> bool:
    """Label ``ax``'s ``which`` (``"x"`` or ``"y"``) axis, drawn in ``transform``'s units, with scale
    values over its current limits. Returns False (the axis is left as it is) for no transform or
    one without decades or a linear scale (a ratio).

    Minor ticks are one line collection along the axis, not matplotlib ticks: a figure has a few
    hundred of them, and a matplotlib tick (three lines and two texts) costs half a millisecond."""
    kind = getattr(transform, "kind", None)
    if kind not in _DECADES and kind != "linear":
        return False
    limits = ax.get_xlim() if which == "x" else ax.get_ylim()
    low, high = sorted(limits)
    try:
        majors, labels, minors = _ticks(transform, low, high)
    except (ValueError, OverflowError, FloatingPointError):
        return False
    if not majors:
        return False
    if getattr(ax, "raster", False):
        ax.ticks(which, majors, labels)
        ax.minor_ticks(which, minors)
        return True
    (ax.xaxis if which == "x" else ax.yaxis).set_ticks(majors, labels)
    (ax.set_xlim if which == "x" else ax.set_ylim)(*limits)
    if minors:
        _minor_marks(ax, which, minors)
    return True


def _minor_marks(ax, which: str, positions: list) -> None:
    """Short outward marks at ``positions`` along the bottom or left spine, 2 points long: one line
    broken by NaNs (a line collection cost three times as much to make)."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    box = ax.get_position()
    inches = (box.height * ax.figure.get_figheight()) if which == "x" else (box.width * ax.figure.get_figwidth())
    length = 2.0 / 72 / inches  # in axes fraction
    along = np.repeat(np.asarray(positions, dtype=np.float64), 3)
    across = np.tile([0.0, -length, np.nan], len(positions))
    if which == "x":
        x, y, transform = along, across, blended_transform_factory(ax.transData, ax.transAxes)
    else:
        x, y, transform = across, along, blended_transform_factory(ax.transAxes, ax.transData)
    ax.add_artist(Line2D(x, y, transform=transform, color="black", linewidth=0.6, solid_capstyle="butt",
                         clip_on=False))
