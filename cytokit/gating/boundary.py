"""Fitted gates that bound the usable events: :class:`BoundaryGate` (drop off-scale events)
and :class:`RatioSingletGate` (singlets as a band of height/area ratios).

Each is a :class:`~cytokit.gating.fitted.FittedGate` (see there for the contract and soft
failure); the static equivalents are a :class:`~cytokit.gating.gates.RectangleGate` and a
:class:`~cytokit.gating.gates.PolygonGate`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> x = np.r_[np.linspace(0.1, 0.8, 990), np.full(10, 1.0)]   # 10 saturated events at the top
>>> gate = BoundaryGate(["FSC-A"]).fit(pd.DataFrame({"FSC-A": x}))
>>> int(gate.contains(pd.DataFrame({"FSC-A": x})).sum())
990
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .fitted import FittedGate, _FitFailure, _is_number, _need
from .gates import RectangleGate
from .regions import SingletGate


class BoundaryGate(FittedGate):
    """Drop off-scale events: those at the top of each channel's range (and optionally at the bottom).

    A detector that saturates records its largest value, so off-scale events pile up at the
    maximum; people leave them out of the first scatter gate (they are not measured). The
    gate learns each dimension's observed maximum ``max_`` (and minimum ``min_``) and keeps
    events below ``max_ - margin × (max_ - min_)``; with ``lower=True`` also at or above
    ``min_ + margin × (max_ - min_)`` (a floor pile of events clipped at zero). With
    ``margin=0.001`` on a linear scale of the channel's range that drops the events within
    0.1 % of the top. When no event is saturated it drops only the few largest.

    Learned: ``min_``, ``max_`` (per dim), ``bounds_`` ``{dim: (low or None, high)}`` and
    ``dropped_fraction_``.
    """

    dims: tuple[str, ...] = ()

    def __init__(
        self,
        dims: Sequence[str],
        *,
        margin: float = 0.001,
        lower: bool = False,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dims = tuple([dims] if isinstance(dims, str) else dims)
        self.margin, self.lower, self.min_events, self.strict = margin, lower, min_events, strict

    def _check_params(self) -> None:
        _need(len(self.dims) >= 1, "dims", self.dims, "one or more channels")
        _need(_is_number(self.margin) and 0 <= self.margin < 0.5, "margin", self.margin, "at least 0 and below 0.5")
        _need(isinstance(self.lower, bool), "lower", self.lower, "true or false")

    def _fit(self, values: np.ndarray) -> None:
        lo, hi = values.min(axis=0), values.max(axis=0)
        span = hi - lo
        self.min_, self.max_ = lo.astype(float), hi.astype(float)
        self.bounds_ = {
            dim: ((float(lo[i] + self.margin * span[i]) if self.lower else None), float(hi[i] - self.margin * span[i]))
            for i, dim in enumerate(self.dims)
        }
        if not (span > 0).all():
            raise _FitFailure(f"no spread in {', '.join(d for d, s in zip(self.dims, span) if s <= 0)}")
        keep = np.ones(len(values), dtype=bool)
        for i, (low, high) in enumerate(self.bounds_.values()):
            keep &= (values[:, i] < high) & (low is None or values[:, i] >= low)
        self.dropped_fraction_ = float(1.0 - keep.mean())

    def _static(self) -> RectangleGate:
        return RectangleGate(self.bounds_)


class RatioSingletGate(SingletGate):
    """Singlets as a band of height/area ratios, asymmetric and robust.

    Doublets have a larger area for their height (a lower ratio); people draw a wide band
    around the diagonal of area vs height. The gate fits the median ratio ``ratio_`` and
    its robust SD ``ratio_sd_`` (1.4826 × MAD) on the events with ``area > 0``, re-estimated
    once on the events within 3 robust SDs (``refit``), and keeps
    ``ratio_ - k_low × sd <= height / area <= ratio_ + k_high × sd``: the wedge between area
    0 and twice the largest fitted area (a static :class:`PolygonGate`, ``vertices_``).
    ``k_low=k_high=3, refit=False`` is :class:`~cytokit.gating.regions.SingletGate`; on the
    real activation set (docs/validation.md) ``k_low=5, k_high=8`` matched the person's band.
    """

    def __init__(
        self,
        area: str,
        height: str,
        *,
        k_low: float = 5.0,
        k_high: float = 8.0,
        refit: bool = True,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.area, self.height, self.k_low, self.k_high, self.refit = area, height, k_low, k_high, refit
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        _need(_is_number(self.k_low) and self.k_low > 0, "k_low", self.k_low, "a number > 0")
        _need(_is_number(self.k_high) and self.k_high > 0, "k_high", self.k_high, "a number > 0")
        _need(isinstance(self.refit, bool), "refit", self.refit, "true or false")

    def _fit(self, values: np.ndarray) -> None:
        self._fit_band(values, self.k_low, self.k_high, refit=self.refit)


__all__ = ["BoundaryGate", "RatioSingletGate"]
