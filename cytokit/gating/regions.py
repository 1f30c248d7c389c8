"""Fitted regions in two or more dimensions: a gate that learns an ellipse or a polygon.

- :class:`ClusterGate`: a Gaussian-mixture component's confidence ellipse (lymphocytes on FSC/SSC);
- :class:`SingletGate`: the wedge of typical height/area ratios (singlets on area vs height);
- :class:`ContourGate`: the density contour around a peak (cells on FSC/SSC as a person draws
  them: the outline of the main cloud, whatever its shape).

Each is a :class:`~cytokit.gating.fitted.FittedGate` (see there for the contract and soft
failure); the static equivalents are an :class:`~cytokit.gating.gates.EllipseGate` and a
:class:`~cytokit.gating.gates.PolygonGate`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._sorted import median
from .fitted import FittedGate, _FitFailure, _is_number, _need
from .gates import EllipseGate, PolygonGate


#: the most mixture components a ClusterGate fits (a few describe lymphocytes, debris and the rest;
#: 10**9 would ask scikit-learn for a billion covariance matrices)
MAX_COMPONENTS = 50


class ClusterGate(FittedGate):
    """Gaussian-mixture cluster as an ellipse (e.g. lymphocytes on FSC/SSC).

    Fits scikit-learn's ``GaussianMixture(n_components, random_state)`` (the same EM,
    :mod:`cytokit.gating._mixture`) on at most
    ``max_fit_events`` events (a seeded random subsample), selects one component and
    gates its ``confidence`` region: the ellipse with squared Mahalanobis radius
    ``chi2.ppf(confidence, len(dims))``.

    10,000 fitted events by default: on simulated 100,000-event files the lymphocyte gate
    moved by a median 0.14 (worst 0.43) points of its parent against a 20,000-event fit,
    as much as another seed of the 20,000-event fit moves it (0.10, worst 0.45), in half
    the time; 5,000 moved one file by 6 points.

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
        max_fit_events: int = 10_000,
        random_state: int = 0,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dims = tuple(dims)
        self.n_components, self.select, self.location, self.by = n_components, select, location, by
        self.confidence, self.max_fit_events, self.random_state = confidence, max_fit_events, random_state
        self.min_events, self.strict = min_events, strict

    def _check_params(self) -> None:
        _need(len(self.dims) >= 2, "dims", list(self.dims), "two or more channels (the gate is an ellipse)")
        _need(isinstance(self.random_state, int) and not isinstance(self.random_state, bool)
              and 0 <= self.random_state < 2**32, "random_state", self.random_state, "a whole number from 0 to 2**32 - 1")
        _need(isinstance(self.n_components, int) and 1 <= self.n_components <= MAX_COMPONENTS, "n_components",
              self.n_components, f"a whole number from 1 to {MAX_COMPONENTS}")
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

        from ._mixture import fit_mixture

        if len(values) < max(self.min_events, self.n_components * (len(self.dims) + 1)):
            raise _FitFailure(f"too few events ({len(values)}) for {self.n_components} mixture components")
        rng = np.random.default_rng(self.random_state)
        if len(values) > self.max_fit_events:
            values = values[rng.choice(len(values), self.max_fit_events, replace=False)]
        weights, means, covariances, note = fit_mixture(values, self.n_components, self.random_state)
        if note:  # duplicate events (a saturated, binned or constant channel): kept, but said so
            self.warning_ = f"the events hold fewer distinct points than {self.n_components} mixture components: {note}"
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
        self.covariance_ = covariances[k].copy()
        self.distance_square_ = float(chi2.ppf(self.confidence, df=len(self.dims)))

    def _static(self) -> EllipseGate:
        return EllipseGate(self.dims, self.mean_, self.covariance_, self.distance_square_)


#: a singlet gate keeping less than this share of its parent is doubtful (doublets are a minority)
MIN_SINGLETS = 0.5


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
        self._fit_band(values, self.k, self.k, refit=False)

    def _fit_band(self, values: np.ndarray, k_low: float, k_high: float, *, refit: bool) -> None:
        """Learn the wedge ``ratio_ - k_low sd <= height / area <= ratio_ + k_high sd``; with ``refit``
        the median and MAD are estimated again on the events within 3 robust SDs of the first fit."""
        area, height = values[:, 0], values[:, 1]
        positive = area > 0
        if positive.sum() < self.min_events:
            raise _FitFailure(
                f"too few events with {self.area} > 0: {int(positive.sum())}, min_events={self.min_events}"
            )
        ratio = height[positive] / area[positive]
        centre = median(ratio)  # np.median's, to the bit
        spread = 1.4826 * median(np.abs(ratio - centre))
        if refit and spread > 0:
            inner = ratio[np.abs(ratio - centre) < 3 * spread]
            centre = median(inner)
            spread = 1.4826 * median(np.abs(inner - centre))
        if not spread > 0:
            raise _FitFailure(f"{self.height}/{self.area} ratio has no spread (MAD = 0)")
        area_max = 2.0 * float(area.max())
        low, high = centre - k_low * spread, centre + k_high * spread
        self.ratio_, self.ratio_sd_ = centre, spread
        self.vertices_ = np.array([[0.0, 0.0], [area_max, low * area_max], [area_max, high * area_max]])
        kept = float(np.mean((ratio >= low) & (ratio <= high))) * positive.mean()
        if kept < MIN_SINGLETS:  # a dead area channel (a Cytek's FSCA, 98 % zeros) kept 2 %, unflagged
            self.warning_ = (f"keeps {kept:.0%} of the events it was fitted on ({1 - positive.mean():.0%} with "
                             f"{self.area} <= 0): singlets are most events; is {self.area} the pulse area and "
                             f"{self.height} its height?")
        elif low <= centre / 2:  # a doublet, twice the area at the same height, is inside the band
            self.warning_ = (f"{self.height}/{self.area} ratio spreads so widely (median {centre:.3g}, robust SD "
                             f"{spread:.3g}) that the band keeps doublets (ratio {centre / 2:.3g}, twice the area): is "
                             f"{self.area} the pulse area, with no baseline offset?")

    def _static(self) -> PolygonGate:
        return PolygonGate(self.dims, self.vertices_)


class ContourGate(FittedGate):
    """The region where the 2-D density stays above ``level`` × a peak's density, around that peak.

    The events' 2-D histogram on ``n_bins`` × ``n_bins`` bins (over each dimension's 0.1–99.9 %
    quantiles, padded by 10 %) is smoothed with a Gaussian of Silverman's bandwidth per
    dimension × ``adjust``. Each peak (a local maximum at least ``min_peak_height`` of the
    highest) has a region: the innermost contour line at ``level`` × its density that encloses
    it. The gate is the region of the peak ``select`` names: ``"largest"`` (the region holding
    the most events: the main cloud, not a dense speck of debris), ``"highest"`` (the highest
    peak) or ``"nearest"`` (the peak nearest ``location``). It follows the cloud's real shape,
    bent or skewed, where an ellipse cannot (flowDensity's and openCyto's contour gates do the
    same in R). Learned: ``vertices_``, ``peak_``, ``fraction_`` (of the fitted events inside),
    ``n_peaks_``.
    """

    dims: tuple[str, ...] = ()

    def __init__(self, dims: Sequence[str], *, level: float = 0.05, select: str = "largest",
                 location: Sequence[float] | None = None, min_peak_height: float = 0.05, n_bins: int = 128,
                 adjust: float = 1.0, min_events: int = 50, strict: bool = False) -> None:
        self.dims = tuple(dims)
        self.level, self.select, self.location, self.n_bins, self.adjust = level, select, location, n_bins, adjust
        self.min_peak_height, self.min_events, self.strict = min_peak_height, min_events, strict

    def _check_params(self) -> None:
        _need(len(self.dims) == 2, "dims", self.dims, "two channels")
        _need(_is_number(self.level) and 0 < self.level < 1, "level", self.level, "between 0 and 1 (exclusive)")
        _need(self.select in ("largest", "highest", "nearest"), "select", self.select,
              "'largest', 'highest' or 'nearest'")
        _need(self.select != "nearest" or (self.location is not None and len(self.location) == 2),
              "location", self.location, "two numbers when select is 'nearest'")
        _need(_is_number(self.min_peak_height) and 0 < self.min_peak_height <= 1, "min_peak_height",
              self.min_peak_height, "between 0 (exclusive) and 1")
        _need(isinstance(self.n_bins, int) and 16 <= self.n_bins <= 1024, "n_bins", self.n_bins,
              "a whole number from 16 to 1024")
        _need(_is_number(self.adjust) and self.adjust > 0, "adjust", self.adjust, "a number > 0")

    def _fit(self, values: np.ndarray) -> None:
        import contourpy
        from matplotlib.path import Path
        from scipy.ndimage import gaussian_filter, maximum_filter

        from ._density import silverman_bandwidth

        edges, sigmas = [], []
        for column in values.T:
            lo, hi = np.quantile(column, [0.001, 0.999])
            pad = 0.1 * (hi - lo) if hi > lo else 1.0
            edges.append(np.linspace(lo - pad, hi + pad, self.n_bins + 1))
            step = edges[-1][1] - edges[-1][0]
            sigmas.append(max(silverman_bandwidth(column) * self.adjust / step, 1.0))
        counts, _, _ = np.histogram2d(values[:, 0], values[:, 1], bins=edges)
        density = gaussian_filter(counts, sigmas, mode="constant")
        centres = [(e[:-1] + e[1:]) / 2 for e in edges]
        peaks = np.argwhere((density == maximum_filter(density, size=3))
                            & (density >= self.min_peak_height * density.max()) & (density > 0))
        if self.select == "highest":
            peaks = peaks[[int(np.argmax(density[peaks[:, 0], peaks[:, 1]]))]]
        elif self.select == "nearest":
            where = np.column_stack([centres[0][peaks[:, 0]], centres[1][peaks[:, 1]]])
            peaks = peaks[[int(np.argmin(np.linalg.norm(where - np.asarray(self.location, float), axis=1)))]]
        step = [c[1] - c[0] for c in centres]  # zero-padded grid: every contour line closes inside it
        xs = np.r_[centres[0][0] - step[0], centres[0], centres[0][-1] + step[0]]
        ys = np.r_[centres[1][0] - step[1], centres[1], centres[1][-1] + step[1]]
        generator = contourpy.contour_generator(xs, ys, np.pad(density, 1).T, line_type="Separate")
        cells = np.column_stack([np.repeat(centres[0], len(centres[1])), np.tile(centres[1], len(centres[0]))])
        best = None
        for i, j in peaks:
            peak = np.array([centres[0][i], centres[1][j]])
            around = [line for line in generator.lines(self.level * density[i, j])
                      if len(line) >= 4 and Path(line).contains_point(peak)]
            if not around:
                continue
            line = min(around, key=lambda v: abs(_area(v)))
            held = float(counts.ravel()[Path(line).contains_points(cells)].sum())
            if best is None or held > best[0]:
                best = (held, line, peak)
        if best is None:
            raise _FitFailure(f"no density contour at level {self.level:g} encloses a peak")
        _, vertices, peak = best
        if len(vertices) > 257:  # a drawn gate's detail, not the grid's
            vertices = vertices[np.linspace(0, len(vertices) - 1, 257).round().astype(int)]
        self.vertices_ = np.asarray(vertices[:-1] if np.allclose(vertices[0], vertices[-1]) else vertices, float)
        self.peak_, self.n_peaks_ = peak, len(peaks)
        self.fraction_ = float(np.mean(self._static().contains(pd.DataFrame(values, columns=list(self.dims)))))

    def _static(self) -> PolygonGate:
        return PolygonGate(self.dims, self.vertices_)


def _area(line: np.ndarray) -> float:
    """The signed area of a closed polyline (shoelace)."""
    x, y = line[:, 0], line[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


__all__ = ["ClusterGate", "ContourGate", "SingletGate"]
