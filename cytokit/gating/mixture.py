"""A threshold where a one-dimensional Gaussian mixture's top (or bottom) component takes over
(openCyto ``gate_flowclust_1d``): a positive cloud on the flank of the negative one, with no
valley between them. The EM is :func:`cytokit.gating._mixture.fit_mixture_1d`.
"""

from __future__ import annotations

import numpy as np

from ._density import cut_sensitivity, dense_cut
from ._mixture import _gaussians, fit_mixture_1d
from .fitted import _FitFailure, _is_number, _need
from .thresholds import _ThresholdGate


class MixtureThresholdGate(_ThresholdGate):
    """Threshold where the top component of a one-dimensional Gaussian mixture takes over
    (openCyto ``gate_flowclust_1d``'s posterior boundary).

    ``n_components`` Gaussians are fitted by EM to a histogram of the events (``n_bins``
    bins; deterministic, and run to convergence whatever the number of events); with
    ``side="above"`` the kept component is the one of highest mean (``"below"``: lowest), and
    the threshold is the first point past the next component's mean where the kept
    component's posterior probability reaches ``posterior`` (0.5: the two equally likely,
    openCyto's boundary). For a positive population on the flank of the negative one with no
    density valley (CD11c+ dendritic cells among live splenocytes): a valley finds nothing
    there, and a tail cut does not move with the cloud. Ashman's D between the split component
    and the next is ``separation_``; below ``min_separation`` ``warning_`` says the two overlap.
    ``sensitivity_`` is :func:`~cytokit.gating._density.cut_sensitivity` at the cut; above
    ``max_sensitivity`` ``warning_`` says the cut lies where the events are dense (components can
    separate where the data have no valley). ``split`` chooses the component whose boundary is the cut
    independently of the side kept: ``"top"`` (the highest against the one below it),
    ``"bottom"`` (the lowest against the one above it: openCyto's ``neg_cluster = 1``, the
    negative cluster against all others), ``"auto"`` (``top`` for ``side="above"``, ``bottom``
    for ``"below"``). Learned: ``threshold_``, ``means_``, ``sds_``, ``weights_`` (components by
    increasing mean), ``separation_``, ``sensitivity_``.
    """

    def __init__(
        self,
        dim: str,
        *,
        side: str = "above",
        n_components: int = 2,
        posterior: float = 0.5,
        min_separation: float = 2.0,
        max_sensitivity: float = 0.1,
        split: str = "auto",
        n_bins: int = 1024,
        min_events: int = 50,
        strict: bool = False,
    ) -> None:
        self.dim, self.side, self.n_components, self.posterior = dim, side, n_components, posterior
        self.min_separation, self.max_sensitivity, self.split = min_separation, max_sensitivity, split
        self.n_bins, self.min_events, self.strict = n_bins, min_events, strict

    def _check_params(self) -> None:
        super()._check_params()
        _need(isinstance(self.n_components, int) and 2 <= self.n_components <= 10, "n_components",
              self.n_components, "a whole number from 2 to 10")
        _need(_is_number(self.posterior) and 0 < self.posterior < 1, "posterior", self.posterior,
              "between 0 and 1 (exclusive)")
        for name in ("min_separation", "max_sensitivity"):
            value = getattr(self, name)
            _need(_is_number(value) and value >= 0, name, value, "a number >= 0")
        _need(isinstance(self.n_bins, int) and 16 <= self.n_bins <= 65536, "n_bins", self.n_bins,
              "a whole number from 16 to 65536")
        _need(self.split in ("auto", "top", "bottom"), "split", self.split, "'auto', 'top' or 'bottom'")

    def _fit(self, values: np.ndarray) -> None:
        x = values[:, 0]
        if np.ptp(x) == 0:
            raise _FitFailure(f"every event has the same {self.dim}: nothing to separate")
        weights, means, sds = fit_mixture_1d(x, self.n_components, self.n_bins)
        self.weights_, self.means_, self.sds_ = tuple(map(float, weights)), tuple(map(float, means)), \
            tuple(map(float, sds))
        top = self.split == "top" or (self.split == "auto" and self.side == "above")
        kept, other = (-1, -2) if top else (0, 1)
        # from the next component's mean outwards, past the kept one's (a wide one may take over beyond it)
        end = np.quantile(x, 1 - 1e-4) if top else np.quantile(x, 1e-4)
        grid = np.linspace(means[other], max(end, means[kept]) if top else min(end, means[kept]), 2049)
        density = _gaussians(grid, weights, means, sds)
        share = density[:, kept] / density.sum(axis=1)
        over = np.flatnonzero(share >= self.posterior)
        if not len(over):
            raise _FitFailure(f"the mixture's {'top' if top else 'bottom'} component of {self.dim} never reaches "
                              f"posterior {self.posterior:g} {'above' if top else 'below'} the next one's mean")
        self.threshold_ = float(grid[over[0]])
        self.separation_ = float(np.sqrt(2) * abs(means[kept] - means[other]) / np.hypot(sds[kept], sds[other]))
        self.sensitivity_ = cut_sensitivity(x, self.threshold_)
        notes = [f"weak separation in {self.dim}: the mixture's {'top' if top else 'bottom'} component "
                 f"and the next overlap (Ashman's D {self.separation_:.2f}, "
                 f"min_separation {self.min_separation:g})"] if self.separation_ < self.min_separation else []
        notes.append(dense_cut(self.dim, self.threshold_, self.sensitivity_, self.max_sensitivity))
        self.warning_ = "; ".join(n for n in notes if n) or None


__all__ = ["MixtureThresholdGate"]
