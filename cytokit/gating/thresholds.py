"""Fitted one-dimensional thresholds: a gate that learns ``threshold_`` and keeps one side.

- :class:`QuantileGate`: the ``q`` quantile of the fitted events;
- :class:`FixedThresholdGate`: a cut at a given value (a valley's fallback, a quadrant's fixed cut);
- :class:`ControlThresholdGate`: a quantile of a control tube's population, applied to the stained tube;
- :class:`DensityValleyGate`: the density minimum between the two main peaks (openCyto ``mindensity``);
- :class:`TailGate`: the shoulder of the main peak (openCyto ``tailgate``);

and in :mod:`cytokit.gating.mixture`, :class:`~cytokit.gating.mixture.MixtureThresholdGate`.

Each is a :class:`~cytokit.gating.fitted.FittedGate` (see there for the contract and soft
failure) whose static equivalent is a :class:`~cytokit.gating.gates.RangeGate`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = np.concatenate([rng.normal(1, 0.3, 5000), rng.normal(3, 0.3, 5000)])
>>> gate = DensityValleyGate("CD19").fit(pd.DataFrame({"CD19": x}))
>>> bool(1.7 < gate.threshold_ < 2.3), gate.to_static().min == gate.threshold_
(True, True)
>>> DensityValleyGate("CD19").fit(pd.DataFrame({"CD19": x[:3]})).failed_
'too few events to fit: 3 finite events in CD19, min_events=50'
"""

from __future__ import annotations

import numpy as np

from ._density import cut_sensitivity, dense_cut, estimate_density, significant_peaks, uncounted_peak
from .fitted import FittedGate, _FitFailure, _is_number, _need, cut_gate
from .gates import RangeGate


#: a pooled valley or tail cut is flagged on a file where a 2 % move of it moves more than this share
#: of the smaller side's events (a quadrant's ``max_sensitivity`` default)
FILE_MAX_SENSITIVITY = 0.2


class _NoValley(_FitFailure):
    """No density valley between two peaks: what a valley's ``fallback`` stands in for."""


def _check_side(side: str) -> str:
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    return side


class _ThresholdGate(FittedGate):
    """A one-dimensional fitted gate that learns ``threshold_`` and keeps one side of it."""

    dim: str
    side: str

    @property
    def dims(self) -> tuple[str, ...]:
        return (self.dim,)

    def _check_params(self) -> None:
        _check_side(self.side)

    def _static(self) -> RangeGate:
        if _check_side(self.side) == "above":
            return RangeGate(self.dim, min=self.threshold_)
        return RangeGate(self.dim, max=self.threshold_)


class QuantileGate(_ThresholdGate):
    """Threshold at the ``q`` quantile of the fitted events.

    ``side="above"`` keeps ``x >= threshold_`` (a fraction ``1 - q`` of the fitted
    events), ``side="below"`` keeps ``x < threshold_``.
    """

    def __init__(
        self, dim: str, *, q: float, side: str = "above", min_events: int = 50, strict: bool = False
    ) -> None:
        self.dim, self.q, self.side, self.min_events, self.strict = dim, q, side, min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.q) and 0.0 <= self.q <= 1.0, "q", self.q, "between 0 and 1")

    def _fit(self, values: np.ndarray) -> None:
        self.threshold_ = float(np.quantile(values[:, 0], self.q))


class FixedThresholdGate(_ThresholdGate):
    """A cut at ``at`` whatever the events: what a learned valley falls back on where a file has
    none (the training files' cut, as a person copies a gate), or one fixed cut of a quadrant."""

    def __init__(self, dim: str, *, at: float, side: str = "above", min_events: int = 50,
                 strict: bool = False) -> None:
        self.dim, self.at, self.side, self.min_events, self.strict = dim, at, side, min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.at) and np.isfinite(self.at), "at", self.at, "a finite number")

    def _fit(self, values: np.ndarray) -> None:
        self.threshold_ = float(self.at)


class ControlThresholdGate(_ThresholdGate):
    """Threshold learned on a control sample, e.g. the isotype tube's gated population.

    ``fit(control_events)`` sets ``threshold_`` to the ``quantile`` of the control;
    ``contains(stained_events)`` then applies it to the stained tube. With the default
    ``quantile=0.99, side="above"`` about 1 % of the control is called positive.
    ``smooth=True`` takes the quantile of the control's kernel density estimate instead of
    its events: steadier when the control has few events beyond the quantile (q 0.995 of
    2,000 control cells is the 10th largest). Where a tube has no matched control,
    ``fit(own_events, without_control=True)`` fails, or with a ``fallback`` (a 1-D cut, as a
    valley's: a learned template's is the training files' cut) cuts by it, with a warning.
    """

    def __init__(
        self,
        dim: str,
        *,
        quantile: float = 0.99,
        side: str = "above",
        smooth: bool = False,
        fallback: dict | None = None,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.quantile, self.side, self.smooth = dim, quantile, side, smooth
        self.fallback, self.min_events, self.strict = fallback, min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.quantile) and 0.0 <= self.quantile <= 1.0, "quantile", self.quantile,
              "between 0 and 1")
        _need(isinstance(self.smooth, bool), "smooth", self.smooth, "true or false")
        _check_fallback(self)

    def _fit(self, values: np.ndarray, without_control: bool = False) -> None:
        if without_control:
            if self.fallback is None:
                raise _FitFailure("needs the matched control tube, and none was given")
            self.threshold_, self.warning_ = _cut_by_fallback(self, values, "no matched control tube")
            return
        if not self.smooth:
            self.threshold_ = float(np.quantile(values[:, 0], self.quantile))
            return
        grid, cdf = smoothed_cdf(values[:, 0])
        self.threshold_ = float(np.interp(self.quantile, cdf, grid))


def smoothed_cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(grid, cumulative share)`` of ``values``' density estimate: what ``smooth: true`` reads a
    control's quantile on (and :mod:`cytokit.learn._control` the quantile of a person's cut)."""
    curve = estimate_density(values, n_bins=2048)
    cdf = np.cumsum(curve.density)
    return curve.grid, cdf / cdf[-1]


def _check_fallback(gate) -> None:
    """A ``fallback`` is None or a 1-D cut mapping keeping the gate's side."""
    if gate.fallback is not None:
        _need(isinstance(gate.fallback, dict) and gate.fallback.get("side", gate.side) == gate.side, "fallback",
              gate.fallback, "a gate mapping keeping the gate's side")
        cut_gate(gate.fallback, gate.dim, "fallback", side=gate.side)


def _cut_by_fallback(gate, values: np.ndarray, why: str) -> tuple[float, str]:
    """``(cut, warning)`` of ``gate.fallback`` fitted on ``values``, saying ``why``; ``_FitFailure``
    (with ``why``) when the fallback fails too."""
    import pandas as pd

    kind = gate.fallback["type"]
    cut = cut_gate(gate.fallback, gate.dim, "fallback", side=gate.side).fit(pd.DataFrame({gate.dim: values[:, 0]}))
    if cut.failed_:
        raise _FitFailure(f"{why}; the fallback {kind} failed too: {cut.failed_}")
    threshold = float(cut.threshold_)
    return threshold, f"{why}: the fallback {kind} cut at {threshold:.4g}" + (f" ({cut.warning_})" if cut.warning_ else "")


class _DensityGate(_ThresholdGate):
    """Shared KDE parameters of :class:`DensityValleyGate` and :class:`TailGate`."""

    search_range: tuple[float | None, float | None] | None
    bandwidth: float | str
    adjust: float
    n_bins: int

    def _check_params(self) -> None:
        super()._check_params()
        _need(self.bandwidth == "silverman" or (_is_number(self.bandwidth) and self.bandwidth > 0), "bandwidth",
              self.bandwidth, "'silverman' or a number > 0")
        _need(_is_number(self.adjust) and self.adjust > 0, "adjust", self.adjust, "a number > 0")
        _need(isinstance(self.n_bins, int) and 16 <= self.n_bins <= 65536, "n_bins", self.n_bins,
              "a whole number from 16 to 65536")
        bounds = self.search_range
        _need(bounds is None or (len(bounds) == 2 and all(b is None or _is_number(b) for b in bounds)
                                 and (None in bounds or bounds[0] < bounds[1])),
              "search_range", bounds, "[low, high] with low < high (either may be null)")

    def _density(self, values: np.ndarray):
        curve = estimate_density(
            values[:, 0],
            bandwidth=self.bandwidth,
            adjust=self.adjust,
            n_bins=self.n_bins,
            include=self.search_range,
        )
        lo, hi = self._range()
        in_range = (curve.grid >= lo) & (curve.grid <= hi)
        return curve, in_range

    def file_warning(self, events) -> str | None:
        """On one file's ``events``: whether the cut falls where they are dense
        (:func:`~cytokit.gating._density.cut_sensitivity` above :data:`FILE_MAX_SENSITIVITY`, set
        as ``sensitivity_``), not the pooled fit's own valley depth, the same for every file."""
        values = self._file_values(events)
        if values is None:
            return self.warning_
        self.sensitivity_ = cut_sensitivity(values[:, 0], self.threshold_)
        return self._on_this_file(dense_cut(self.dim, self.threshold_, self.sensitivity_, FILE_MAX_SENSITIVITY))

    def _range(self) -> tuple[float, float]:
        lo, hi = self.search_range if self.search_range is not None else (None, None)
        return (-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))

    def _range_text(self) -> str:
        lo, hi = self._range()
        return f"[{lo:g}, {hi:g}]"


class DensityValleyGate(_DensityGate):
    """Threshold at the density minimum between the two main peaks (openCyto ``mindensity``).

    The density is a binned Gaussian KDE (``n_bins`` bins, Silverman bandwidth
    times ``adjust``, or a fixed ``bandwidth`` in data units). Peaks count when their
    height and prominence reach ``min_peak_height`` × the highest peak. Between each
    pair of neighbouring peaks the valley is the lowest density, restricted to
    ``search_range`` when given. The chosen valley has the largest product of its depth
    (below) cubed and the share of events on its smaller side, so neither a dip inside
    one population nor the gap before a few outliers wins over the valley between two
    populations. Learned: ``threshold_``,
    ``peaks_`` (the two peak locations) and ``valley_depth_``, how far the valley
    falls below the lower peak (1: to zero density, 0: no dip at all). With fewer
    than two peaks it fails softly with ``failed_ = "no density valley found ..."``.

    When the chosen valley is shallower than ``min_valley_depth`` it is kept and
    ``warning_`` set: a failed or missing stain leaves one broad peak whose bumps a KDE
    can split (the simulated all-dead 7AAD tubes gave depths of 0.01-0.39, well-stained
    ones 0.88-1 at 10,000 events, down to 0.47 at 300).

    ``fallback`` is a 1-D cut fitted where no valley is found, or only one shallower than
    ``min_valley_depth`` (a dip inside the negative peak of a tissue without B cells, 2 % deep,
    where a learned template's fallback is the training files' cut; kept, with its warning,
    where the fallback fails), flowDensity's rule for a
    population too small for a peak of its own (B cells at 1-3 % of tissue lymphocytes: the
    negative peak's upper foot, ``{type: shoulder}``): a gate mapping without ``dim`` of type
    ``tail``, ``shoulder``, ``quantile``, ``mixture_threshold``, ``peak_foot``, ``threshold`` or
    ``density_valley``, keeping this gate's ``side``. Its threshold becomes ``threshold_``,
    ``valley_depth_`` is 0, ``peaks_`` NaN, and ``warning_`` names the fallback and why it ran;
    when the fallback fails too, the gate fails with both reasons.

    ``select="prominence"`` chooses differently, for a small population with a peak of its
    own (a few % of B cells, debris at the FSC origin): the valley is the density minimum
    between the *highest* peak and the other peak with the largest prominence ×
    (share of events on that peak's side of the valley)^0.5, even across smaller peaks in
    between. With ``min_peak_height=0.01`` a peak 1 % as prominent as the main one counts.
    On the real manually gated sets (docs/validation.md) what found the debris valley on
    FSC-A and the few-% B-cell valley was ``min_peak_height=0.01``-``0.05``; there both
    ``select`` choices gave the same cuts (two peaks only). ``"depth"`` is the default.
    """

    def __init__(
        self,
        dim: str,
        *,
        search_range: tuple[float | None, float | None] | None = None,
        side: str = "above",
        bandwidth: float | str = "silverman",
        adjust: float = 1.0,
        n_bins: int = 1024,
        min_peak_height: float = 0.05,
        min_valley_depth: float = 0.5,
        select: str = "depth",
        fallback: dict | None = None,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.search_range, self.side, self.fallback = dim, search_range, side, fallback
        self.bandwidth, self.adjust, self.n_bins = bandwidth, adjust, n_bins
        self.min_peak_height, self.min_valley_depth = min_peak_height, min_valley_depth
        self.select, self.min_events, self.strict = select, min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.min_peak_height) and 0 <= self.min_peak_height < 1, "min_peak_height",
              self.min_peak_height, "at least 0 and below 1")
        _need(_is_number(self.min_valley_depth) and 0 <= self.min_valley_depth <= 1, "min_valley_depth",
              self.min_valley_depth, "between 0 and 1")
        _need(self.select in ("depth", "prominence"), "select", self.select, "'depth' or 'prominence'")
        _check_fallback(self)

    def _fit(self, values: np.ndarray) -> None:
        try:
            self._fit_valley(values)
        except _NoValley as failure:
            if self.fallback is None:
                raise
            failed = self._fall_back(values, str(failure))
            if failed:
                raise _FitFailure(failed) from None
            return
        if self.fallback is not None and self.valley_depth_ < self.min_valley_depth:
            # a valley this shallow is not trusted where a fallback is given; kept if the fallback fails
            self._fall_back(values, f"only a weak valley in {self.dim} (at {self.threshold_:.4g}, "
                                    f"{100 * self.valley_depth_:.0f}% below the lower peak; min_valley_depth "
                                    f"{self.min_valley_depth:g})")

    def _fall_back(self, values: np.ndarray, why: str) -> str | None:
        """Cut by the fallback instead, saying ``why``; the reason when the fallback fails too."""
        try:
            threshold, warning = _cut_by_fallback(self, values, why)
        except _FitFailure as failure:
            return str(failure)
        self.threshold_, self.peaks_, self.valley_depth_, self.warning_ = threshold, (np.nan, np.nan), 0.0, warning
        return None

    def _fit_valley(self, values: np.ndarray) -> None:
        curve, in_range = self._density(values)
        density = curve.density
        peaks = significant_peaks(curve, min_height=self.min_peak_height)
        below = np.cumsum(density) / density.sum()  # share of the events at or below each grid point
        best = None  # (score, valley, left peak, right peak, depth)
        pairs = zip(peaks[:-1], peaks[1:]) if self.select == "depth" else _main_pairs(density, peaks)
        for left, right, *extra in pairs:
            idx = np.arange(left, right + 1)
            idx = idx[in_range[idx]]
            if not len(idx):
                continue
            low = int(idx[np.argmin(density[idx])])
            depth = max(0.0, float(1.0 - density[low] / min(density[left], density[right])))
            # A valley that parts two populations is deep *and* has many events on its smaller side:
            # a dip inside one peak has the events but little depth, a gap before a few outliers the
            # depth but few events. Depth counts cubed: a dip 27 % deep inside the live peak must lose
            # to a live/dead valley with 3 % dead cells, a valley 45 % deep between two populations
            # must beat the gap before 1 % of events at saturation (depth^a x share holds both for
            # 2.1 < a < 4.6).
            score = depth**3 * min(below[low], 1.0 - below[low])
            if extra:  # select="prominence": the other peak's prominence x (its side's share)^0.5
                other_share = below[low] if extra[1] < extra[0] else 1.0 - below[low]
                score = extra[2] * other_share**0.5
            if best is None or score > best[0]:
                best = (score, low, int(left), int(right), depth)
        if best is None:
            smaller = uncounted_peak(curve, min_height=self.min_peak_height)
            raise _NoValley(
                f"no density valley found in {self.dim} in {self._range_text()}: "
                f"{len(peaks)} density peak(s) at {np.round(curve.grid[peaks], 4).tolist()}"
                + (f" (one more at {smaller[0]:.4g}, {smaller[1]:.2g} of the highest's height and {smaller[2]:.2g} "
                   f"of it in prominence, is not counted: min_peak_height {self.min_peak_height:g} applies to both)"
                   if smaller else "")
            )
        _, low, left, right, self.valley_depth_ = best
        self.threshold_ = float(curve.grid[low])
        self.peaks_ = (float(curve.grid[left]), float(curve.grid[right]))
        if self.valley_depth_ < self.min_valley_depth:
            self.warning_ = (
                f"weak separation in {self.dim}: the valley at {self.threshold_:.4g} is only "
                f"{100 * self.valley_depth_:.0f}% below the lower peak (min_valley_depth "
                f"{self.min_valley_depth:g}); one broad peak, as a failed stain gives, can be split anywhere"
            )


def _main_pairs(density: np.ndarray, peaks: np.ndarray):
    """``(left, right, main, other, prominence)`` for the highest peak paired with each other peak."""
    from scipy.signal import peak_prominences

    if len(peaks) < 2:
        return []
    prominence = peak_prominences(np.concatenate([[0.0], density, [0.0]]), peaks + 1)[0]
    main = int(peaks[np.argmax(density[peaks])])
    return [(min(main, int(p)), max(main, int(p)), main, int(p), float(pm))
            for p, pm in zip(peaks, prominence) if p != main]


class TailGate(_DensityGate):
    """Threshold at the shoulder of the main peak, like openCyto ``tailgate``.

    The main peak is the highest density (within ``search_range`` when given).
    Walking away from it towards ``side`` (``"above"``: to larger values), the
    threshold is the first place where the density falls below ``fraction`` × the
    peak height (linearly interpolated between grid points). ``fraction=0.01`` puts
    it about 3 SD above the mean of a Gaussian negative population. Learned:
    ``threshold_`` and ``peak_``.
    """

    def __init__(
        self,
        dim: str,
        *,
        side: str = "above",
        fraction: float = 0.01,
        search_range: tuple[float | None, float | None] | None = None,
        bandwidth: float | str = "silverman",
        adjust: float = 1.0,
        n_bins: int = 1024,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.side, self.fraction, self.search_range = dim, side, fraction, search_range
        self.bandwidth, self.adjust, self.n_bins = bandwidth, adjust, n_bins
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.fraction) and 0.0 < self.fraction < 1.0, "fraction", self.fraction,
              "between 0 and 1 (exclusive)")

    def _fit(self, values: np.ndarray) -> None:
        curve, in_range = self._density(values)
        if not in_range.any():
            raise _FitFailure(f"search range {self._range_text()} of {self.dim} holds no density grid point")
        idx = np.flatnonzero(in_range)
        peak = int(idx[np.argmax(curve.density[idx])])
        level = self.fraction * curve.density[peak]
        step = 1 if self.side == "above" else -1
        path = np.arange(peak, len(curve.grid) if step == 1 else -1, step)
        below = np.flatnonzero(curve.density[path] < level)
        if len(below) == 0:
            raise _FitFailure(
                f"density of {self.dim} never falls below {self.fraction:g} × the peak "
                f"{self.side} the peak at {curve.grid[peak]:.4g}"
            )
        j = path[below[0]]
        i = j - step  # last point still above the level
        d_i, d_j = curve.density[i], curve.density[j]
        t = (d_i - level) / (d_i - d_j) if d_i != d_j else 0.0
        self.threshold_ = float(curve.grid[i] + t * (curve.grid[j] - curve.grid[i]))
        self.peak_ = float(curve.grid[peak])


__all__ = [
    "FixedThresholdGate",
    "QuantileGate",
    "ControlThresholdGate",
    "DensityValleyGate",
    "TailGate",
]
