"""Data-driven gates: scikit-learn style estimators that learn a static gate from events.

Contract (tested once for every class in ``tests/test_gates.py``):

- parameters only in ``__init__`` and stored unchanged under the same names;
- ``fit(events) -> self`` learns from a DataFrame of events (this sample's parent
  population, or the matched isotype control's, as the caller decides);
- learned values live in attributes ending in ``_`` (``threshold_``, ``mean_``,
  ``vertices_`` ...), plus ``failed_`` (``None`` or the reason), ``warning_`` (``None``,
  or why a gate that did fit deserves a look) and ``n_fit_events_``;
- ``check_params()`` raises ``ValueError`` naming a bad parameter (``fit`` calls it; a
  template calls it when it is loaded, so a typo fails before any file is read);
- ``contains(events)`` after fitting; ``to_static()`` returns the equivalent static
  gate (so the result can be exported to Gating-ML and audited elsewhere).

**Soft failure.** When a gate cannot be fitted (fewer than ``min_events`` events, no
density valley, ...) ``fit`` does not raise: it sets ``failed_`` to a reason string
and ``contains`` returns all-False, so downstream counts are 0 and percentages NaN
with that reason as a flag. Pass ``strict=True`` to raise :class:`~cytokit.GateError`
instead. Using a gate before ``fit`` always raises :class:`~cytokit.GateError`.

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

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import GateError
from ._density import estimate_density, significant_peaks
from .gates import EllipseGate, Gate, PolygonGate, RangeGate, event_columns


class _FitFailure(Exception):
    """Raised inside ``_fit`` to fail softly with a reason."""


def _check_side(side: str) -> str:
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    return side


def _need(valid: bool, name: str, value, what: str) -> None:
    if not valid:
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _is_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value))


class FittedGate(ABC):
    """Base class of data-driven gates (see the module docstring for the contract)."""

    min_events: int
    strict: bool

    # ---- scikit-learn estimator plumbing -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, object]:
        """Constructor parameters, as in scikit-learn."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> FittedGate:
        """Set constructor parameters (clears nothing: call :meth:`fit` again)."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; parameters are {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if defaults.get(k, inspect.Parameter.empty) is inspect.Parameter.empty or defaults[k] != v
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    def check_params(self) -> None:
        """Raise ``ValueError`` naming the first parameter out of its range."""
        _need(isinstance(self.min_events, int) and self.min_events >= 1, "min_events", self.min_events,
              "a whole number >= 1")
        self._check_params()

    def _check_params(self) -> None:
        """Each class's own parameter checks (see :func:`_need`)."""

    # ---- the gate -------------------------------------------------------------------------
    @property
    @abstractmethod
    def dims(self) -> tuple[str, ...]:
        """The event columns this gate reads."""

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run (successfully or not)."""
        return "failed_" in self.__dict__

    def fit(self, events: pd.DataFrame, **fit_params) -> FittedGate:
        """Learn the gate from ``events``; returns ``self``.

        Rows with a non-finite value in any of :attr:`dims` are ignored. On failure
        ``failed_`` holds the reason (or :class:`GateError` is raised when ``strict``).

        Raises
        ------
        ChannelNotFoundError
            When a dimension is not a column of ``events`` (always, even when not strict).
        GateError
            When ``strict`` and the gate cannot be fitted.
        """
        self.check_params()
        for name in [k for k in self.__dict__ if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)
        values = event_columns(events, self.dims, what=type(self).__name__)
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            values = values[finite]
        self.n_fit_events_ = len(values)
        self.failed_: str | None = None
        self.warning_: str | None = None
        try:
            if len(values) < self.min_events:
                raise _FitFailure(
                    f"too few events to fit: {len(values)} finite events in "
                    f"{', '.join(self.dims)}, min_events={self.min_events}"
                )
            self._fit(values, **fit_params)
        except _FitFailure as failure:
            self.failed_ = str(failure)
            if self.strict:
                raise GateError(f"{self!r} could not be fitted: {failure}") from None
        return self

    @abstractmethod
    def _fit(self, values: np.ndarray, **fit_params) -> None:
        """Set learned attributes from finite ``values`` (events × dims) or raise ``_FitFailure``."""

    @abstractmethod
    def _static(self) -> Gate:
        """The static gate from the learned attributes (fit succeeded)."""

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise GateError(f"{type(self).__name__} is not fitted yet; call fit(events) before using it")

    def to_static(self) -> Gate:
        """The equivalent static gate.

        Raises
        ------
        GateError
            When not fitted, or when fitting failed (the message gives the reason).
        """
        self._check_fitted()
        if self.failed_ is not None:
            raise GateError(f"{self!r} has no static equivalent because fitting failed: {self.failed_}")
        return self._static()

    def contains(self, events: pd.DataFrame) -> np.ndarray:
        """Membership of each event; all-False when fitting failed."""
        self._check_fitted()
        if self.failed_ is not None:
            event_columns(events, self.dims, what=type(self).__name__)
            return np.zeros(len(events), dtype=bool)
        return self._static().contains(events)

    def predict(self, events: pd.DataFrame) -> np.ndarray:
        """Alias of :meth:`contains`."""
        return self.contains(events)


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


class ControlThresholdGate(_ThresholdGate):
    """Threshold learned on a control sample, e.g. the isotype tube's gated population.

    ``fit(control_events)`` sets ``threshold_`` to the ``quantile`` of the control;
    ``contains(stained_events)`` then applies it to the stained tube. With the default
    ``quantile=0.99, side="above"`` about 1 % of the control is called positive.
    """

    def __init__(
        self,
        dim: str,
        *,
        quantile: float = 0.99,
        side: str = "above",
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.quantile, self.side = dim, quantile, side
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.quantile) and 0.0 <= self.quantile <= 1.0, "quantile", self.quantile,
              "between 0 and 1")

    def _fit(self, values: np.ndarray) -> None:
        self.threshold_ = float(np.quantile(values[:, 0], self.quantile))


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
        _need(isinstance(self.n_bins, int) and self.n_bins >= 16, "n_bins", self.n_bins, "a whole number >= 16")
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
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.search_range, self.side = dim, search_range, side
        self.bandwidth, self.adjust, self.n_bins = bandwidth, adjust, n_bins
        self.min_peak_height, self.min_valley_depth = min_peak_height, min_valley_depth
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(_is_number(self.min_peak_height) and 0 <= self.min_peak_height < 1, "min_peak_height",
              self.min_peak_height, "at least 0 and below 1")
        _need(_is_number(self.min_valley_depth) and 0 <= self.min_valley_depth <= 1, "min_valley_depth",
              self.min_valley_depth, "between 0 and 1")

    def _fit(self, values: np.ndarray) -> None:
        curve, in_range = self._density(values)
        density = curve.density
        peaks = significant_peaks(curve, min_height=self.min_peak_height)
        below = np.cumsum(density) / density.sum()  # share of the events at or below each grid point
        best = None  # (score, valley, left peak, right peak, depth)
        for left, right in zip(peaks[:-1], peaks[1:]):
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
            if best is None or score > best[0]:
                best = (score, low, int(left), int(right), depth)
        if best is None:
            raise _FitFailure(
                f"no density valley found in {self.dim} in {self._range_text()}: "
                f"{len(peaks)} density peak(s) at {np.round(curve.grid[peaks], 4).tolist()}"
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


class ClusterGate(FittedGate):
    """Gaussian-mixture cluster as an ellipse (e.g. lymphocytes on FSC/SSC).

    Fits ``sklearn.mixture.GaussianMixture(n_components, random_state)`` on at most
    ``max_fit_events`` events (a seeded random subsample), selects one component and
    gates its ``confidence`` region: the ellipse with squared Mahalanobis radius
    ``chi2.ppf(confidence, len(dims))``.

    Parameters
    ----------
    select
        ``"largest"`` (highest weight), ``"nearest"`` (mean closest to ``location``),
        ``"lowest"``/``"highest"`` (lowest/highest mean in dimension ``by``, default the
        last dimension, i.e. SSC for ``["FSC-A", "SSC-A"]``).

    Learned: ``mean_``, ``covariance_``, ``distance_square_``, ``component_``,
    ``weights_``, ``means_`` (all components).
    """

    dims: tuple[str, ...] = ()  # a parameter here, not a derived property

    def __init__(
        self,
        dims: Sequence[str],
        *,
        n_components: int = 3,
        select: str = "largest",
        location: Sequence[float] | None = None,
        by: str | None = None,
        confidence: float = 0.95,
        max_fit_events: int = 20_000,
        random_state: int = 0,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dims = tuple(dims)
        self.n_components, self.select, self.location, self.by = n_components, select, location, by
        self.confidence, self.max_fit_events, self.random_state = confidence, max_fit_events, random_state
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        _need(isinstance(self.n_components, int) and self.n_components >= 1, "n_components", self.n_components,
              "a whole number >= 1")
        _need(self.select in ("largest", "nearest", "lowest", "highest"), "select", self.select,
              "'largest', 'nearest', 'lowest' or 'highest'")
        _need(self.select != "nearest" or (self.location is not None and len(self.location) == len(self.dims)),
              "location", self.location, f"{len(self.dims)} numbers when select is 'nearest'")
        _need(self.by is None or self.by in self.dims, "by", self.by, f"one of the dims {list(self.dims)}")
        _need(_is_number(self.confidence) and 0 < self.confidence < 1, "confidence", self.confidence,
              "between 0 and 1 (exclusive), e.g. 0.95")
        _need(isinstance(self.max_fit_events, int) and self.max_fit_events >= 1, "max_fit_events",
              self.max_fit_events, "a whole number >= 1")

    def _fit(self, values: np.ndarray) -> None:
        from scipy.stats import chi2
        from sklearn.mixture import GaussianMixture

        if len(values) < max(self.min_events, self.n_components * (len(self.dims) + 1)):
            raise _FitFailure(f"too few events ({len(values)}) for {self.n_components} mixture components")
        rng = np.random.default_rng(self.random_state)
        if len(values) > self.max_fit_events:
            values = values[rng.choice(len(values), self.max_fit_events, replace=False)]
        mixture = GaussianMixture(
            n_components=self.n_components, covariance_type="full", random_state=self.random_state, n_init=1
        ).fit(values)
        means, weights = mixture.means_, mixture.weights_
        if self.select == "largest":
            k = int(np.argmax(weights))
        elif self.select == "nearest":
            k = int(np.argmin(np.linalg.norm(means - np.asarray(self.location, dtype=float), axis=1)))
        else:
            by = self.by if self.by is not None else self.dims[-1]
            column = means[:, self.dims.index(by)]
            k = int(np.argmin(column) if self.select == "lowest" else np.argmax(column))
        self.component_ = k
        self.weights_ = weights.copy()
        self.means_ = means.copy()
        self.mean_ = means[k].copy()
        self.covariance_ = mixture.covariances_[k].copy()
        self.distance_square_ = float(chi2.ppf(self.confidence, df=len(self.dims)))

    def _static(self) -> EllipseGate:
        return EllipseGate(self.dims, self.mean_, self.covariance_, self.distance_square_)


class SingletGate(FittedGate):
    """Singlets on area vs height: events whose height/area ratio is typical.

    Doublets have a larger area for their height, so a lower ratio. The gate fits
    the median ratio ``ratio_`` and its robust SD ``ratio_sd_`` (1.4826 × MAD) on the
    events with ``area > 0`` and keeps events within ``k`` robust SDs: the wedge
    ``(ratio_ - k sd) area <= height <= (ratio_ + k sd) area`` between area 0 and
    ``area_max`` (twice the largest fitted area). Learned as the triangle
    ``vertices_`` in (area, height), i.e. a static :class:`PolygonGate`.
    """

    def __init__(
        self, area: str, height: str, *, k: float = 3.0, min_events: int = 50, strict: bool = False
    ) -> None:
        self.area, self.height, self.k, self.min_events, self.strict = area, height, k, min_events, strict

    @property
    def dims(self) -> tuple[str, ...]:
        return (self.area, self.height)

    def _check_params(self) -> None:
        _need(_is_number(self.k) and self.k > 0, "k", self.k, "a number > 0")

    def _fit(self, values: np.ndarray) -> None:
        area, height = values[:, 0], values[:, 1]
        positive = area > 0
        if positive.sum() < self.min_events:
            raise _FitFailure(
                f"too few events with {self.area} > 0: {int(positive.sum())}, min_events={self.min_events}"
            )
        ratio = height[positive] / area[positive]
        centre = float(np.median(ratio))
        spread = 1.4826 * float(np.median(np.abs(ratio - centre)))
        if not spread > 0:
            raise _FitFailure(f"{self.height}/{self.area} ratio has no spread (MAD = 0)")
        area_max = 2.0 * float(area.max())
        low, high = centre - self.k * spread, centre + self.k * spread
        self.ratio_, self.ratio_sd_ = centre, spread
        self.vertices_ = np.array([[0.0, 0.0], [area_max, low * area_max], [area_max, high * area_max]])

    def _static(self) -> PolygonGate:
        return PolygonGate(self.dims, self.vertices_)


__all__ = [
    "FittedGate",
    "QuantileGate",
    "ControlThresholdGate",
    "DensityValleyGate",
    "TailGate",
    "ClusterGate",
    "SingletGate",
]
