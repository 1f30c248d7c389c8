"""Fitted gates placed by the shape of a peak rather than by a density minimum.

- :class:`PeakFootGate`: the far foot of the kept peak, "valley, then peak + k robust SDs"
  (live cells: everything not clearly dead);
- :class:`ShoulderGate`: where the density flattens after the negative peak (flowDensity-like;
  a small positive cloud with no valley of its own, such as Foxp3+ Treg);
- :class:`ValleyQuadrantGate`: one quadrant of two fitted density valleys (CD4+CD8−, ...), so each
  quadrant is a population of its own without helper populations.

Each is a :class:`~cytokit.gating.fitted.FittedGate`; the static equivalents are a
:class:`~cytokit.gating.gates.RangeGate`, a :class:`~cytokit.gating.gates.RectangleGate`, or
(:class:`PeakFootGate` on the mean of two channels) a half-plane :class:`PolygonGate`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(0.3, 0.03, 8000), rng.normal(0.7, 0.03, 2000)]
>>> gate = PeakFootGate("dye", side="below", k=5).fit(pd.DataFrame({"dye": x}))
>>> bool(0.42 < gate.threshold_ < 0.5)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._density import SENSITIVITY_SHIFT, estimate_density, quadrant_sensitivity
from .fitted import FittedGate, _FitFailure, _is_number, _need, cut_gate
from .gates import PolygonGate, RangeGate, RectangleGate
from .thresholds import DensityValleyGate, _check_side, _ThresholdGate

_FAR = 1e6  # half-plane polygons reach this far (every transformed scale lies well inside)


def _valley(values: np.ndarray, *, min_peak_height: float, select: str, adjust: float) -> DensityValleyGate:
    return DensityValleyGate("x", min_peak_height=min_peak_height, select=select, adjust=adjust,
                             min_valley_depth=0.0).fit(pd.DataFrame({"x": values}))


def _mode(values: np.ndarray, adjust: float) -> float:
    curve = estimate_density(values, adjust=adjust)
    return float(curve.grid[int(np.argmax(curve.density))])


class PeakFootGate(FittedGate):
    """Keep one peak up to its far foot: valley, then the kept peak's mode + ``k`` robust SDs.

    People draw "not clearly dead" (or "not clearly positive") at the foot of the *other*
    population, not at the density minimum. The gate finds the density valley
    (:class:`DensityValleyGate` with ``min_peak_height`` and ``select``), takes the events on
    the kept side (``side="below"`` keeps the low peak), their density mode, and the RMS
    distance to the mode of the kept peak's outer half (away from the valley, unaffected by
    the other population); the threshold is ``mode ± k × sd`` but never beyond the other
    peak's mode. With no valley (one population) the whole sample is the kept peak and
    ``warning_`` says so. ``dim`` may be a list of channels: the gate then works on their
    mean (the diagonal of a two-detector dye such as Hoechst 405/430), static form a
    half-plane polygon. A valley shallower than ``min_valley_depth`` sets ``warning_``.

    Learned: ``threshold_``, ``valley_``, ``mode_``, ``sd_``, ``valley_depth_``.
    """

    def __init__(
        self,
        dim: str | Sequence[str],
        *,
        side: str = "below",
        k: float = 5.0,
        min_peak_height: float = 0.01,
        select: str = "prominence",
        min_valley_depth: float = 0.3,
        adjust: float = 1.0,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.side, self.k, self.min_peak_height, self.select = dim, side, k, min_peak_height, select
        self.min_valley_depth, self.adjust, self.min_events, self.strict = min_valley_depth, adjust, min_events, strict

    @property
    def dims(self) -> tuple[str, ...]:
        return (self.dim,) if isinstance(self.dim, str) else tuple(self.dim)

    def _check_params(self) -> None:
        _check_side(self.side)
        _need(1 <= len(self.dims) <= 2, "dim", self.dim, "a channel or a list of two")
        _need(_is_number(self.k) and self.k > 0, "k", self.k, "a number > 0")
        _need(_is_number(self.min_peak_height) and 0 <= self.min_peak_height < 1, "min_peak_height",
              self.min_peak_height, "at least 0 and below 1")
        _need(_is_number(self.min_valley_depth) and 0 <= self.min_valley_depth <= 1, "min_valley_depth",
              self.min_valley_depth, "between 0 and 1")
        _need(_is_number(self.adjust) and self.adjust > 0, "adjust", self.adjust, "a number > 0")
        DensityValleyGate("x", select=self.select).check_params()

    def _fit(self, values: np.ndarray) -> None:
        x = values.mean(axis=1)
        valley = _valley(x, min_peak_height=self.min_peak_height, select=self.select, adjust=self.adjust)
        below = self.side == "below"
        if valley.failed_:
            kept, other = x, (np.inf if below else -np.inf)
            self.valley_, self.valley_depth_ = np.nan, 0.0
            self.warning_ = f"no density valley in {' + '.join(self.dims)}: the foot of its only peak"
        else:
            self.valley_, self.valley_depth_ = valley.threshold_, valley.valley_depth_
            kept = x[x < valley.threshold_] if below else x[x >= valley.threshold_]
            other = max(valley.peaks_) if below else min(valley.peaks_)
            if self.valley_depth_ < self.min_valley_depth:
                self.warning_ = (f"weak separation in {' + '.join(self.dims)}: the valley at {self.valley_:.4g} "
                                 f"is only {100 * self.valley_depth_:.0f}% below the lower peak")
        if len(kept) < self.min_events:
            raise _FitFailure(f"too few events ({len(kept)}) in the kept peak")
        mode = _mode(kept, self.adjust)
        outer = kept[kept <= mode] if below else kept[kept >= mode]
        self.mode_, self.sd_ = mode, float(np.sqrt(np.mean((outer - mode) ** 2)))
        threshold = mode + self.k * self.sd_ if below else mode - self.k * self.sd_
        self.threshold_ = float(min(threshold, other) if below else max(threshold, other))

    def _static(self):
        if len(self.dims) == 1:
            return RangeGate(self.dims[0], max=self.threshold_) if self.side == "below" else \
                RangeGate(self.dims[0], min=self.threshold_)
        s, f = 2.0 * self.threshold_, _FAR if self.side == "above" else -_FAR  # x + y vs 2 t
        return PolygonGate(self.dims, np.array([[f, f], [f, s - f], [s - f, f]]))


class ShoulderGate(_ThresholdGate):
    """Threshold where the density flattens after the negative peak (like flowDensity's ``upper``).

    Walking from the highest peak towards ``side``, the density first falls ever more
    steeply, then its slope relaxes; the threshold is the first point past the steepest
    descent where the slope is down to ``tol`` × the steepest (the end of the negative
    peak's shoulder). For a small positive cloud that sits on the negative peak's flank
    with no valley (Foxp3+ Treg among CD4 T cells). Learned: ``threshold_``, ``peak_``.
    """

    def __init__(
        self,
        dim: str,
        *,
        side: str = "above",
        tol: float = 0.05,
        adjust: float = 1.0,
        n_bins: int = 512,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.side, self.tol, self.adjust, self.n_bins = dim, side, tol, adjust, n_bins
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.tol) and 0 < self.tol < 1, "tol", self.tol, "between 0 and 1 (exclusive)")
        _need(_is_number(self.adjust) and self.adjust > 0, "adjust", self.adjust, "a number > 0")
        _need(isinstance(self.n_bins, int) and 16 <= self.n_bins <= 65536, "n_bins", self.n_bins,
              "a whole number from 16 to 65536")

    def _fit(self, values: np.ndarray) -> None:
        curve = estimate_density(values[:, 0], adjust=self.adjust, n_bins=self.n_bins)
        grid, density = curve.grid, curve.density
        if self.side == "below":
            grid, density = -grid[::-1], density[::-1]
        peak = int(np.argmax(density))
        slope = np.gradient(density, grid)
        steep = peak + int(np.argmin(slope[peak:]))
        if not slope[steep] < 0:
            raise _FitFailure(f"the density of {self.dim} does not fall {self.side} its peak")
        flat = np.flatnonzero(slope[steep:] > self.tol * slope[steep])
        j = steep + (int(flat[0]) if len(flat) else len(grid) - 1 - steep)
        sign = -1.0 if self.side == "below" else 1.0
        self.threshold_, self.peak_ = float(sign * grid[j]), float(sign * grid[peak])


class ValleyQuadrantGate(FittedGate):
    """One quadrant of two fitted density valleys: ``quadrant="+-"`` is high in ``dims[0]``,
    low in ``dims[1]`` (CD4+ CD8− on ``[cd4, cd8]``).

    Each dimension's threshold is a :class:`DensityValleyGate` (``min_peak_height``,
    ``select``, ``adjust``) fitted on the parent's events, so populations that name the same
    ``dims`` and parameters with different ``quadrant`` get the same two cuts and together
    tile the parent. Static form: a :class:`RectangleGate` (``x >= t`` is "+"). When a
    dimension has no valley, ``no_valley="fail"`` (default) fails softly; ``"negative"``
    takes that dimension's events as one negative population (its cut above every event,
    as a person drawing a fixed quadrant on a file without positives would) and sets
    ``warning_``. ``warning_`` also when a valley is shallower than ``min_valley_depth``.
    ``sequential="above"`` (or ``"below"``) fits ``dims[1]``'s valley only on the events
    above (below) ``dims[0]``'s cut, as openCyto's ``quadGate.seq``: where the second marker
    separates within one side of the first (CCR7 among CD45RA+ cells: naive against EMRA)
    and not over all of it. ``thresholds`` gives a dimension another 1-D cut in place of its
    valley: ``[{type: mixture_threshold, n_components: 3}, null]`` (``null``: the valley), of
    types ``density_valley``, ``tail``, ``shoulder``, ``quantile``, ``mixture_threshold`` or
    ``peak_foot``, with their own parameters (not ``dim``); their warnings are the gate's.
    ``sensitivity_`` (:func:`~cytokit.gating._density.quadrant_sensitivity`) is the share of the
    quadrant's events that a 2 % move of the cuts changes; above ``max_sensitivity`` ``warning_``
    says the corner is ill-determined (deep valleys can still leave a small corner in a smear).
    Learned: ``thresholds_``, ``valley_depths_`` (NaN for a cut that is not a valley; a
    ``density_valley`` cut's depth, checked against ``min_valley_depth`` as the gate's own valleys
    are), ``sensitivity_``, ``lasting_`` (the notes on a dimension cut without a valley: all
    negative, or at a fallback; a pooled fit says them on every file).
    """

    def __init__(
        self,
        dims: Sequence[str],
        *,
        quadrant: str,
        min_peak_height: float = 0.01,
        select: str = "prominence",
        min_valley_depth: float = 0.5,
        adjust: float = 1.0,
        no_valley: str = "fail",
        sequential: str = "none",
        thresholds: Sequence[dict | None] | None = None,
        max_sensitivity: float = 0.2,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dims = tuple(dims)
        self.no_valley, self.sequential, self.thresholds = no_valley, sequential, thresholds
        self.max_sensitivity = max_sensitivity
        self.quadrant, self.min_peak_height, self.select = quadrant, min_peak_height, select
        self.min_valley_depth, self.adjust, self.min_events, self.strict = min_valley_depth, adjust, min_events, strict

    dims: tuple[str, ...] = ()

    def _check_params(self) -> None:
        _need(len(self.dims) == 2, "dims", self.dims, "two channels")
        _need(self.quadrant in ("++", "+-", "-+", "--"), "quadrant", self.quadrant, "'++', '+-', '-+' or '--'")
        _need(_is_number(self.min_valley_depth) and 0 <= self.min_valley_depth <= 1, "min_valley_depth",
              self.min_valley_depth, "between 0 and 1")
        _need(self.no_valley in ("fail", "negative"), "no_valley", self.no_valley, "'fail' or 'negative'")
        _need(_is_number(self.max_sensitivity) and self.max_sensitivity >= 0, "max_sensitivity",
              self.max_sensitivity, "a number >= 0")
        _need(self.sequential in ("none", "above", "below"), "sequential", self.sequential,
              "'none', 'above' or 'below'")
        DensityValleyGate("x", select=self.select, min_peak_height=self.min_peak_height,
                          adjust=self.adjust).check_params()
        _need(self.thresholds is None or (isinstance(self.thresholds, (list, tuple)) and len(self.thresholds) == 2),
              "thresholds", self.thresholds, "a list of two cuts (a gate mapping or null each)")
        for i in range(2):
            self._cut_gate(i)

    def _cut_gate(self, i: int, dim: str = "x") -> FittedGate | None:
        """The 1-D gate ``thresholds[i]`` names, on ``dim``, or None for the valley."""
        spec = None if self.thresholds is None else self.thresholds[i]
        return None if spec is None else cut_gate(spec, dim, f"thresholds[{i}]")

    def _fit(self, values: np.ndarray) -> None:
        cuts, depths, notes = [], [], []
        self.lasting_ = []  # a dimension cut without a valley (all negative, or a fallback): said on every file
        for i, dim in enumerate(self.dims):
            column = values[:, i]
            if i == 1 and self.sequential != "none":
                side = values[:, 0] >= cuts[0] if self.sequential == "above" else values[:, 0] < cuts[0]
                if np.count_nonzero(side) < self.min_events:
                    raise _FitFailure(f"too few events {self.sequential} the {self.dims[0]} cut to fit {dim}: "
                                      f"{np.count_nonzero(side)}, min_events={self.min_events}")
                column = column[side]
            cut = self._cut_gate(i, dim)
            if cut is not None:
                cut.fit(pd.DataFrame({dim: column}))
                if cut.failed_:
                    raise _FitFailure(cut.failed_)
                cuts.append(cut.threshold_)
                depth = float(getattr(cut, "valley_depth_", np.nan))  # a density_valley cut is a valley too
                depths.append(depth)
                if cut.warning_:
                    notes.append(cut.warning_)
                    if depth == 0.0:
                        self.lasting_.append(cut.warning_)
                elif depth < self.min_valley_depth:
                    notes.append(f"weak separation in {dim} ({100 * depth:.0f}% deep, "
                                 f"min_valley_depth {self.min_valley_depth:g})")
                continue
            valley = _valley(column, min_peak_height=self.min_peak_height, select=self.select,
                             adjust=self.adjust)
            if valley.failed_ and self.no_valley == "fail":
                raise _FitFailure(valley.failed_.replace(" in x ", f" in {dim} "))
            if valley.failed_:
                top, bottom = float(values[:, i].max()), float(values[:, i].min())
                cuts.append(top + max(top - bottom, 1.0))
                depths.append(0.0)
                notes.append(f"no density valley in {dim}: all its events taken as negative")
                self.lasting_.append(notes[-1])
                continue
            cuts.append(valley.threshold_)
            depths.append(valley.valley_depth_)
            if valley.valley_depth_ < self.min_valley_depth:
                notes.append(f"weak separation in {dim} ({100 * valley.valley_depth_:.0f}% deep, "
                             f"min_valley_depth {self.min_valley_depth:g})")
        self.thresholds_, self.valley_depths_ = tuple(cuts), tuple(depths)
        self.sensitivity_ = quadrant_sensitivity(values, self.thresholds_, self.quadrant)
        notes.append(self._ill_determined())
        notes = [n for n in notes if n]
        if notes:
            self.warning_ = "; ".join(notes)

    def file_warning(self, events: pd.DataFrame) -> str | None:
        """On one file's ``events``, the quadrant's sensitivity there (set as ``sensitivity_``)
        against ``max_sensitivity``: a pooled fit's weak valley is the same for every file, where
        its cuts fall in a file's events is not. A dimension the pooled fit found no valley in (all
        negative, or cut at its fallback) is said on every file too."""
        values = self._file_values(events)
        if values is None:
            return self.warning_
        self.sensitivity_ = quadrant_sensitivity(values, self.thresholds_, self.quadrant)
        lasting = [f"{note} (fitted on {getattr(self, 'n_pooled_files_', 1)} files pooled)" for note in self.lasting_]
        return "; ".join(filter(None, [*lasting, self._on_this_file(self._ill_determined())])) or None

    def _ill_determined(self) -> str | None:
        if self.sensitivity_ <= self.max_sensitivity:
            return None
        return (f"the {self.quadrant} quadrant of {' x '.join(self.dims)} is ill-determined: moving "
                f"the cuts by {SENSITIVITY_SHIFT:.0%} of the span changes {self.sensitivity_:.0%} of its "
                f"events (max_sensitivity {self.max_sensitivity:g})")

    def _static(self) -> RectangleGate:
        return RectangleGate({dim: (t, None) if sign == "+" else (None, t)
                              for dim, t, sign in zip(self.dims, self.thresholds_, self.quadrant)})


__all__ = ["PeakFootGate", "ShoulderGate", "ValleyQuadrantGate"]
