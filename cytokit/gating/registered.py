"""A person's gate moved onto each file with its data: :class:`RegisteredGate`.

The gate is a region drawn (or learned, :func:`cytokit.learn_template`) on reference
files, a range on one dimension or a polygon on two, together with the reference files'
density of the parent population on each dimension. Fitting a new file's parent events
aligns the file's density on each dimension with the reference density (the shift, within
``max_shift`` of the grid's span, that maximises their correlation) and moves the range or
the vertices by it: an instrument's gain drift, or a stain a little brighter, moves the
person's gate with the cells. The correlation at the best shift is the gate's
``confidence_`` in the file (1: the same density shape as the reference files; per dimension,
the lowest counts); below ``min_confidence`` the gate is kept and flagged doubtful, since a
density unlike the training files' is where a learned gate may not hold. ``max_shift: 0``
keeps the region where it was drawn and only measures the confidence.

Static equivalent: a :class:`~cytokit.gating.gates.RangeGate` or a
:class:`~cytokit.gating.gates.PolygonGate` (exported to Gating-ML like the others).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(1, 0.2, 500), rng.normal(3, 0.2, 500)]
>>> ref = np.histogram(x, bins=32, range=(0, 4))[0]
>>> gate = RegisteredGate(["cd4"], limits=[2.0, None], grid=[[0, 4]], density=[ref.tolist()])
>>> gate = gate.fit(pd.DataFrame({"cd4": x + 0.3}))      # the whole file 0.3 brighter
>>> round(float(gate.shift_[0]), 1), round(gate.limits_[0], 1), gate.confidence_ > 0.9
(0.3, 2.3, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .fitted import FittedGate, _FitFailure, _is_number, _need
from .gates import Gate, PolygonGate, RangeGate

_SHIFT_STEP = 0.25  # bins between the shifts tried


def smoothed_density(values: np.ndarray, lo: float, hi: float, n_bins: int) -> np.ndarray:
    """Histogram of ``values`` on ``n_bins`` bins over ``[lo, hi]``, smoothed (Gaussian, 1 bin), summing to 1."""
    counts = np.histogram(values, bins=n_bins, range=(lo, hi))[0].astype(float)
    kernel = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    smooth = np.convolve(counts, kernel / kernel.sum(), mode="same")
    total = smooth.sum()
    return smooth / total if total > 0 else smooth


def anchor(reference: np.ndarray) -> float:
    """The bin (fractional) of the reference density's median: the fixed point of a stretch."""
    cdf = np.cumsum(reference) / reference.sum()
    return float(np.interp(0.5, cdf, np.arange(len(reference)) + 0.5))


def best_warp(reference: np.ndarray, density: np.ndarray, max_bins: float,
              max_scale: float = 1.0) -> tuple[float, float, float]:
    """``(scale, shift in bins, correlation)``: the file's ``density`` read at
    ``anchor + scale × (bin − anchor) + shift`` matches ``reference`` best (ties: the smallest move)."""
    index = np.arange(len(reference), dtype=float)
    centre = anchor(reference)
    shifts = np.arange(-max_bins, max_bins + 1e-9, _SHIFT_STEP) if max_bins > 0 else np.zeros(1)
    scales = np.geomspace(1 / max_scale, max_scale, 13) if max_scale > 1 else np.ones(1)
    ref = reference - reference.mean()
    # every (scale, shift) at once: where each reference bin falls in the file
    where = centre + scales[:, None, None] * (index - centre) + shifts[None, :, None]
    moved = np.interp(where.ravel(), index, density, left=0.0, right=0.0).reshape(where.shape)
    moved = moved - moved.mean(axis=2, keepdims=True)
    norm = np.sqrt((moved ** 2).sum(axis=2) * (ref ** 2).sum())
    corr = np.where(norm > 0, moved @ ref / np.where(norm > 0, norm, 1.0), 0.0)
    penalty = 1e-9 * (np.abs(shifts)[None, :] + np.abs(np.log(scales))[:, None])
    i, k = np.unravel_index(int(np.argmax(corr - penalty)), corr.shape)
    return float(scales[i]), float(shifts[k]), float(corr[i, k])


def warp(x, lo: float, hi: float, n_bins: int, centre: float, scale: float, shift: float) -> np.ndarray:
    """Reference-frame values ``x`` (scale units) in a file warped by ``(scale, shift)`` bins."""
    width = (hi - lo) / n_bins
    c = lo + centre * width
    return c + scale * (np.asarray(x, dtype=float) - c) + shift * width


def unwarp(x, lo: float, hi: float, n_bins: int, centre: float, scale: float, shift: float) -> np.ndarray:
    """The inverse of :func:`warp`: a file's values in the reference frame."""
    width = (hi - lo) / n_bins
    c = lo + centre * width
    return c + (np.asarray(x, dtype=float) - c - shift * width) / scale


class RegisteredGate(FittedGate):
    """A reference region (range or polygon) moved onto each file by aligning densities.

    Parameters
    ----------
    dims
        One or two channels.
    limits
        One dimension: ``[min, max]`` of the region on the reference files (``None``: open).
    vertices
        Two dimensions: the polygon's ``[x, y]`` vertices on the reference files.
    grid
        Per dimension ``[lo, hi]``: where ``density`` is given.
    density
        Per dimension, the reference files' density of the parent population on the grid's
        equal bins (any non-negative numbers; only their shape counts).
    max_shift
        The largest move, as a fraction of the grid's span (0: never moved).
    min_confidence
        Below this correlation between the file's aligned density and the reference, the
        gate is flagged doubtful.

    Learned: ``shift_`` (per dimension, in scale units), ``confidence_`` (the lowest
    correlation), ``confidences_`` (per dimension), and ``limits_`` or ``vertices_``.
    """

    dims: tuple[str, ...] = ()

    def __init__(
        self,
        dims: Sequence[str],
        *,
        grid: Sequence[Sequence[float]],
        density: Sequence[Sequence[float]],
        limits: Sequence[float | None] | None = None,
        vertices: Sequence[Sequence[float]] | None = None,
        max_shift: float = 0.1,
        max_scale: float = 1.0,
        min_confidence: float = 0.5,
        min_events: int = 20,
        strict: bool = False,
    ) -> None:
        self.dims = tuple([dims] if isinstance(dims, str) else dims)
        self.grid, self.density, self.limits, self.vertices = grid, density, limits, vertices
        self.max_shift, self.max_scale, self.min_confidence = max_shift, max_scale, min_confidence
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        n = len(self.dims)
        _need(n in (1, 2), "dims", self.dims, "one or two channels")
        _need(isinstance(self.grid, Sequence) and len(self.grid) == n
              and all(len(g) == 2 and all(map(_is_number, g)) and g[0] < g[1] for g in self.grid),
              "grid", self.grid, f"{n} [lo, hi] pair(s) with lo < hi, one per dimension")
        _need(isinstance(self.density, Sequence) and len(self.density) == n
              and all(len(d) >= 8 and all(_is_number(v) and v >= 0 for v in d) and sum(d) > 0 for d in self.density),
              "density", "…", f"{n} list(s) of at least 8 non-negative numbers, not all 0")
        if n == 1:
            ok = (self.limits is not None and len(self.limits) == 2 and self.vertices is None
                  and all(v is None or _is_number(v) for v in self.limits)
                  and any(v is not None for v in self.limits)
                  and (None in self.limits or self.limits[0] < self.limits[1]))
            _need(ok, "limits", self.limits, "[min, max] (one may be null) for a gate on one dimension, "
                  "without vertices")
        else:
            ok = (self.vertices is not None and self.limits is None and len(self.vertices) >= 3
                  and all(len(v) == 2 and all(map(_is_number, v)) for v in self.vertices))
            _need(ok, "vertices", self.vertices, "at least 3 [x, y] vertices for a gate on two dimensions, "
                  "without limits")
        _need(_is_number(self.max_shift) and 0 <= self.max_shift <= 0.5, "max_shift", self.max_shift,
              "between 0 and 0.5")
        _need(_is_number(self.max_scale) and 1 <= self.max_scale <= 3, "max_scale", self.max_scale,
              "between 1 and 3")
        _need(_is_number(self.min_confidence) and 0 <= self.min_confidence <= 1, "min_confidence",
              self.min_confidence, "between 0 and 1")

    def _fit(self, values: np.ndarray) -> None:
        maps, confidences = [], []
        for i, ((lo, hi), reference) in enumerate(zip(self.grid, self.density)):
            reference = np.asarray(reference, dtype=float)
            n_bins = len(reference)
            density = smoothed_density(values[:, i], lo, hi, n_bins)
            if density.sum() == 0:
                raise _FitFailure(f"no events within the reference range {lo:g}..{hi:g} of {self.dims[i]}")
            scale, bins, corr = best_warp(reference / reference.sum(), density, self.max_shift * n_bins,
                                          self.max_scale)
            maps.append((lo, hi, n_bins, anchor(reference), scale, bins))
            confidences.append(max(corr, 0.0))
        self.scale_ = np.asarray([m[4] for m in maps])
        self.shift_ = np.asarray([m[5] * (m[1] - m[0]) / m[2] for m in maps])
        self.confidences_ = dict(zip(self.dims, confidences))
        self.confidence_ = float(min(confidences))
        if len(self.dims) == 1:
            self.limits_ = [None if v is None else float(warp(v, *maps[0])) for v in self.limits]
        else:
            vertices = np.asarray(self.vertices, dtype=float)
            self.vertices_ = np.column_stack([warp(vertices[:, i], *maps[i]) for i in range(2)])
        if self.confidence_ < self.min_confidence:
            worst = min(self.confidences_, key=self.confidences_.get)
            self.warning_ = (f"learned gate confidence {self.confidence_:.2f} < {self.min_confidence:g}: the "
                             f"density on {worst} is unlike the training files'")

    def _static(self) -> Gate:
        if len(self.dims) == 1:
            return RangeGate(self.dims[0], *self.limits_)
        return PolygonGate(self.dims, self.vertices_)


__all__ = ["RegisteredGate", "anchor", "best_warp", "smoothed_density", "unwarp", "warp"]
