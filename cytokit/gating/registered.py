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
>>> inside, outside = (np.histogram(v, bins=32, range=(0, 4))[0].tolist() for v in (x[x > 2], x[x <= 2]))
>>> gate = RegisteredGate(["cd4"], limits=[2.0, None], grid=[[0, 4]], inside=[inside], outside=[outside])
>>> gate = gate.fit(pd.DataFrame({"cd4": x + 0.3}))      # the whole file 0.3 brighter
>>> round(float(gate.shift_[0]), 1), round(gate.limits_[0], 1), gate.confidence_ > 0.9
(0.3, 2.3, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._density import SENSITIVITY_SHIFT
from .fitted import FittedGate, _FitFailure, _is_number, _need
from .gates import Gate, PolygonGate, RangeGate

_SHIFT_STEP = 0.25  # bins between the shifts tried
#: what a move costs against the fit (R²): per unit of |log stretch| and per grid span of shift, so a
#: larger move must explain the file clearly better (two components fit many moves nearly as well)
_MOVE_COST = 0.1
#: a move may take the gate's share of its parent at most this many times beyond both the training
#: files' share and that of the gate where drawn (:meth:`RegisteredGate._unmoved_if_astray`)
ASTRAY = 3.0


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


def _fit_components(moved: np.ndarray, components: np.ndarray) -> np.ndarray:
    """R² of the best non-negative combination of ``components`` (K × bins, K = 1 or 2) for each
    row of ``moved`` (… × bins); the total sum of squares is about the row's mean."""
    gram = components @ components.T
    rhs = moved @ components.T  # … × K
    total = ((moved - moved.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    sq = (moved ** 2).sum(axis=-1)
    # one component k alone: a = rhs_k / gram_kk, RSS = |v|² − rhs_k² / gram_kk
    single = np.stack([sq - np.clip(rhs[..., k], 0, None) ** 2 / gram[k, k] for k in range(len(gram))], axis=-1)
    rss = single.min(axis=-1)
    if len(gram) == 2:
        det = gram[0, 0] * gram[1, 1] - gram[0, 1] ** 2
        if det > 1e-12 * gram[0, 0] * gram[1, 1]:
            a = (rhs[..., 0] * gram[1, 1] - rhs[..., 1] * gram[0, 1]) / det
            b = (rhs[..., 1] * gram[0, 0] - rhs[..., 0] * gram[0, 1]) / det
            both = sq - (a * rhs[..., 0] + b * rhs[..., 1])
            rss = np.where((a >= 0) & (b >= 0), np.minimum(both, rss), rss)
    return np.where(total > 0, 1.0 - rss / np.where(total > 0, total, 1.0), 0.0)


def best_warp(reference: np.ndarray, density: np.ndarray, max_bins: float,
              max_scale: float = 1.0) -> tuple[float, float, float]:
    """``(scale, shift in bins, fit)``: the file's ``density`` read at
    ``anchor + scale × (bin − anchor) + shift`` is best explained (R², ``fit``) by the
    ``reference`` densities (one per row: the events inside and outside a gate) in any
    non-negative proportion, so that a population more or less frequent in the file than in
    the reference does not pull the alignment, times the share of the file's density that the
    move keeps on the reference grid, less :data:`_MOVE_COST` per unit of |log scale| and per
    grid span of shift (the returned ``fit`` is without it)."""
    components = np.atleast_2d(np.asarray(reference, dtype=float))
    components = components[components.sum(axis=1) > 0]
    components = components / components.sum(axis=1, keepdims=True)
    n_bins = components.shape[1]
    index = np.arange(n_bins, dtype=float)
    centre = anchor(components.sum(axis=0))
    shifts = np.arange(-max_bins, max_bins + 1e-9, _SHIFT_STEP) if max_bins > 0 else np.zeros(1)
    scales = np.geomspace(1 / max_scale, max_scale, 13) if max_scale > 1 else np.ones(1)
    # every (scale, shift) at once: where each reference bin falls in the file
    where = centre + scales[:, None, None] * (index - centre) + shifts[None, :, None]
    moved = np.interp(where.ravel(), index, density, left=0.0, right=0.0).reshape(where.shape)
    # the file's events that the move puts outside the reference grid are not explained either
    captured = np.clip(moved.sum(axis=2) * scales[:, None] / max(density.sum(), 1e-300), 0.0, 1.0)
    fit = _fit_components(moved, components) * captured
    penalty = _MOVE_COST * (np.abs(shifts)[None, :] / n_bins + np.abs(np.log(scales))[:, None])
    i, k = np.unravel_index(int(np.argmax(fit - penalty)), fit.shape)
    return float(scales[i]), float(shifts[k]), float(fit[i, k])


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


def _densities(name: str, value, n: int) -> str | None:
    """Why ``value`` is not ``n`` lists of at least 8 non-negative numbers of one length (None: it is)."""
    if not (isinstance(value, Sequence) and len(value) == n and all(isinstance(d, Sequence) for d in value)):
        return f"{n} list(s), one per dimension"
    if not all(len(d) >= 8 and all(_is_number(v) and v >= 0 for v in d) for d in value):
        return "lists of at least 8 non-negative numbers"
    return None


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
        Per dimension ``[lo, hi]``: where the densities are given (equal bins).
    inside, outside
        Per dimension, the reference files' density of the parent's events inside and outside
        the region on the grid's bins (non-negative numbers: their shapes, and the ratio of their
        sums as the reference files' share of the parent inside the region). A file's density is
        explained as the two in any proportion, moved; a move that takes the region's share of the
        file's parent more than :data:`ASTRAY` times beyond both the reference share and that of
        the region where drawn is undone and flagged.
    max_shift
        The largest move, as a fraction of the grid's span (0: never moved).
    max_scale
        The largest stretch (or shrink, 1 / ``max_scale``) about the reference median (1: none).
    still_on
        Per dimension, the channels (``$PnN``) on which the region is not moved, only measured:
        a region learned from one file moves only on files that carry the marker on another
        detector (another panel), :func:`cytokit.learn_template`.
    min_confidence
        Below this fit (R²) of the file's aligned density by the reference densities, the gate
        is flagged doubtful.
    max_sensitivity
        None (default): not checked. Else the gate is flagged doubtful where moving its edges by 2 %
        of the span changes more than this share of its events (``sensitivity_``): where the person
        adjusts the gate from file to file, an edge in dense events is where the next file's
        adjustment decides. :func:`cytokit.learn_template` sets 0.2 where the person's gates differed
        between the training files.

    Learned: ``scale_`` and ``shift_`` (per dimension, shift in scale units), ``confidence_``
    (the lowest fit), ``confidences_`` (per dimension), ``sensitivity_`` (NaN when not checked),
    and ``limits_`` or ``vertices_``.
    """

    dims: tuple[str, ...] = ()

    def __init__(
        self,
        dims: Sequence[str],
        *,
        grid: Sequence[Sequence[float]],
        inside: Sequence[Sequence[float]],
        outside: Sequence[Sequence[float]],
        limits: Sequence[float | None] | None = None,
        vertices: Sequence[Sequence[float]] | None = None,
        max_shift: float = 0.1,
        max_scale: float = 1.0,
        still_on: Sequence[Sequence[str]] | None = None,
        min_confidence: float = 0.5,
        max_sensitivity: float | None = None,
        min_events: int = 20,
        strict: bool = False,
    ) -> None:
        self.dims = tuple([dims] if isinstance(dims, str) else dims)
        self.grid, self.inside, self.outside = grid, inside, outside
        self.limits, self.vertices = limits, vertices
        self.max_shift, self.max_scale, self.min_confidence = max_shift, max_scale, min_confidence
        self.max_sensitivity = max_sensitivity
        self.still_on = still_on
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        n = len(self.dims)
        _need(n in (1, 2), "dims", self.dims, "one or two channels")
        _need(isinstance(self.grid, Sequence) and len(self.grid) == n
              and all(len(g) == 2 and all(map(_is_number, g)) and g[0] < g[1] for g in self.grid),
              "grid", self.grid, f"{n} [lo, hi] pair(s) with lo < hi, one per dimension")
        for name in ("inside", "outside"):
            why = _densities(name, getattr(self, name), n)
            _need(why is None, name, "…", why or "")
        _need(all(len(a) == len(b) and sum(a) + sum(b) > 0 for a, b in zip(self.inside, self.outside)),
              "outside", "…", "as long as inside on each dimension, and the two not all 0")
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
        _need(self.still_on is None or (isinstance(self.still_on, Sequence) and len(self.still_on) == n and all(
            isinstance(d, Sequence) and not isinstance(d, str) and all(isinstance(c, str) for c in d)
            for d in self.still_on)), "still_on", self.still_on, f"{n} list(s) of channel names, one per dimension")
        _need(_is_number(self.min_confidence) and 0 <= self.min_confidence <= 1, "min_confidence",
              self.min_confidence, "between 0 and 1")
        _need(self.max_sensitivity is None or (_is_number(self.max_sensitivity) and self.max_sensitivity >= 0),
              "max_sensitivity", self.max_sensitivity, "a number >= 0, or null (not checked)")

    def _fit(self, values: np.ndarray) -> None:
        maps, confidences = [], []
        for i, (lo, hi) in enumerate(self.grid):
            reference = np.asarray([self.inside[i], self.outside[i]], dtype=float)
            n_bins = reference.shape[1]
            density = smoothed_density(values[:, i], lo, hi, n_bins)
            if density.sum() == 0:
                raise _FitFailure(f"no events within the reference range {lo:g}..{hi:g} of {self.dims[i]}")
            still = self.still_on is not None and self.dims[i] in self.still_on[i]  # the reference's own detector
            scale, bins, fit = best_warp(reference, density, 0 if still else self.max_shift * n_bins,
                                         1.0 if still else self.max_scale)
            centre = anchor((reference / reference.sum(axis=1, keepdims=True).clip(1e-300)).sum(axis=0))
            maps.append((lo, hi, n_bins, centre, scale, bins))
            confidences.append(max(fit, 0.0))
        self.scale_ = np.asarray([m[4] for m in maps])
        self.shift_ = np.asarray([m[5] * (m[1] - m[0]) / m[2] for m in maps])
        self.confidences_ = dict(zip(self.dims, confidences))
        self.confidence_ = float(min(confidences))
        if len(self.dims) == 1:
            self.limits_ = [None if v is None else float(warp(v, *maps[0])) for v in self.limits]
        else:
            vertices = np.asarray(self.vertices, dtype=float)
            self.vertices_ = np.column_stack([warp(vertices[:, i], *maps[i]) for i in range(2)])
        notes = [] if self.confidence_ >= self.min_confidence else [
            f"learned gate confidence {self.confidence_:.2f} < {self.min_confidence:g}: the density on "
            f"{min(self.confidences_, key=self.confidences_.get)} is unlike the training files'"]
        unmoved = self._unmoved_if_astray(values)
        if unmoved:
            notes.append(unmoved)
        self.sensitivity_ = self._sensitivity(values) if self.max_sensitivity is not None else float("nan")
        if self.max_sensitivity is not None and self.sensitivity_ > self.max_sensitivity:
            notes.append(f"the region's edges lie where the events are dense: moving them by {SENSITIVITY_SHIFT:.0%} "
                         f"of the span changes {self.sensitivity_:.0%} of its events (max_sensitivity "
                         f"{self.max_sensitivity:g})")
        if notes:
            self.warning_ = "; ".join(notes)

    def _sensitivity(self, values: np.ndarray) -> float:
        """The events whose membership changes when the region's edges move out, or in, by
        :data:`~cytokit.gating._density.SENSITIVITY_SHIFT` of the span of each dimension (a range's
        finite limits; a polygon's vertices away from, or towards, its centre), as a share of the
        region's events. On FlowAtlas, of the registered gates learned from two files: above 0.2 in
        67 of 86 held-out rows within-parent F1 below 0.9, and in 10 of 109 rows at 0.95 or above."""
        import pandas as pd

        frame = pd.DataFrame(values, columns=list(self.dims))
        lo, hi = np.quantile(values, [0.005, 0.995], axis=0)
        shift = SENSITIVITY_SHIFT * (hi - lo)
        base = np.asarray(self._static().contains(frame), dtype=bool)
        flips = np.zeros(len(values), dtype=bool)
        for sign in (-1.0, 1.0):
            if len(self.dims) == 1:
                a, b = self.limits_
                moved = RangeGate(self.dims[0], None if a is None else a - sign * shift[0],
                                  None if b is None else b + sign * shift[0])
            else:
                centre = self.vertices_.mean(axis=0)
                moved = PolygonGate(self.dims, self.vertices_ + sign * np.sign(self.vertices_ - centre) * shift)
            flips |= np.asarray(moved.contains(frame), dtype=bool) != base
        return int(np.count_nonzero(flips)) / max(int(np.count_nonzero(base)), 1)

    def _unmoved_if_astray(self, values: np.ndarray) -> str | None:
        """Undo a move that takes the gate's share of the file's parent events more than
        :data:`ASTRAY` times beyond both the reference share (the ratio of the ``inside`` and
        ``outside`` sums) and the share of the gate where drawn; say so (None: the move stands).
        Aligning 1-D densities can drag a region drawn in a sparse corner into a dense cloud
        (FlowAtlas CD4+CD8+ from three training files: 16,883 events of a blood sample's T cells
        against the person's 136), while a drift the move corrects brings the share back."""
        inside, outside = float(np.sum(self.inside[0])), float(np.sum(self.outside[0]))
        if inside == 0 or outside == 0 or not (np.any(self.shift_) or np.any(self.scale_ != 1)):
            return None
        import pandas as pd

        moved_gate, drawn = self._static(), (RangeGate(self.dims[0], *self.limits) if len(self.dims) == 1
                                              else PolygonGate(self.dims, self.vertices))

        frame = pd.DataFrame(values, columns=list(self.dims))

        def share(gate) -> float:
            return (np.count_nonzero(gate.contains(frame)) + 0.5) / (len(values) + 1)

        reference, moved, still = inside / (inside + outside), share(moved_gate), share(drawn)
        if min(still, reference) / ASTRAY <= moved <= max(still, reference) * ASTRAY:
            return None
        self.scale_, self.shift_ = np.ones(len(self.dims)), np.zeros(len(self.dims))
        if len(self.dims) == 1:
            self.limits_ = list(self.limits)
        else:
            self.vertices_ = np.asarray(self.vertices, dtype=float)
        return (f"not moved: aligning the densities took the gate's share of its parent to {100 * moved:.1f} % "
                f"(training files {100 * reference:.1f} %, where drawn {100 * still:.1f} %)")

    def _static(self) -> Gate:
        if len(self.dims) == 1:
            return RangeGate(self.dims[0], *self.limits_)
        return PolygonGate(self.dims, self.vertices_)


__all__ = ["RegisteredGate", "anchor", "best_warp", "smoothed_density", "unwarp", "warp"]
