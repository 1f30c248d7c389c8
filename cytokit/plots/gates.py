"""The gating figure: each gate of a gated sample drawn on its parent population."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._style import COLOURS, _figure, _fmt, _literal, _no_data

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..gating.result import GatingResult


def plot_gates(result: GatingResult, *, title: str | None = None, max_events: int = 20000) -> Figure:
    """Each gate of a gated sample on its parent population.

    Two-dimensional gates are drawn on a hexbin density of the parent's events,
    one-dimensional (threshold) gates on a histogram. Panel titles give the
    population's count and % of parent; skipped and failed gates are said so in red.

    Parameters
    ----------
    result
        A :class:`~cytokit.gating.result.GatingResult` (``Template.apply``).
    title
        Figure title (default: the sample's path).
    max_events
        Parent events drawn at most (a random subsample).
    """
    template = result.template
    paths = [p for p in template.paths if p in result.membership]
    by_pnn: dict[str, str] = {}
    for role, pnn in result.channels.items():
        by_pnn.setdefault(pnn, role)
    pns = dict(zip(result.sample.channels.pnn, result.sample.channels.pns))
    n_cols = min(4, max(1, len(paths)))
    n_rows = int(np.ceil(len(paths) / n_cols)) or 1
    fig = _figure(3.1 * n_cols, 2.9 * n_rows + 0.3, left=0.55, right=0.1, top=0.75, bottom=0.5, wspace=0.3,
                  hspace=0.6)
    fig.suptitle(_literal(title if title is not None else str(result.sample.path or "sample")), fontsize=9)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes[len(paths):]:
        ax.set_axis_off()
    total = len(result.scale)
    rng = np.random.default_rng(0)
    for ax, path in zip(axes, paths):
        parent = result.parents.get(path, "root")
        parent_mask = np.ones(total, dtype=bool) if parent == "root" else result.membership[parent]
        count = int(result.membership[path].sum())
        n_parent = int(parent_mask.sum())
        pct = 100.0 * count / n_parent if n_parent else float("nan")
        name = path.split("/")[-1]
        ax.set_title(_literal(f"{name} ⊂ {parent.split('/')[-1]}") + f"\n{count:,} events ({_fmt(pct)}% of parent)",
                     fontsize=8)
        flag = result.flags.get(path, "")
        gate = result.gates.get(path)
        if gate is None:
            _no_data(ax, flag or "no gate")
            continue
        if hasattr(gate, "operands"):  # a boolean gate combines populations: nothing to scatter
            _no_data(ax, flag or f"boolean gate: {getattr(gate, 'op', '')} of {', '.join(gate.operands)}")
            continue
        dims = list(gate.dims)
        index = np.flatnonzero(parent_mask)
        if len(index) > max_events:
            index = np.sort(rng.choice(index, max_events, replace=False))
        frame = pd.DataFrame({d: result.transformed(d, index) for d in dims})

        def label(dim: str) -> str:
            role = by_pnn.get(dim, "")
            stain = pns.get(dim, "")
            return _literal(f"{role or dim} [{dim}{', ' + stain if stain else ''}]")

        static = None
        if not flag.startswith("gate failed"):
            try:
                static = gate.to_static() if hasattr(gate, "to_static") else gate
            except Exception as exc:  # noqa: BLE001 - a figure must not fail on one odd gate
                flag = flag or f"cannot draw gate: {exc}"
        if len(dims) >= 2:
            x, y = frame[dims[0]].to_numpy(), frame[dims[1]].to_numpy()
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum():
                ax.hexbin(x[ok], y[ok], gridsize=60, bins="log", mincnt=1, cmap="viridis", linewidths=0)
            ax.set_xlabel(label(dims[0]), fontsize=7)
            ax.set_ylabel(label(dims[1]), fontsize=7)
            if ok.sum():
                _limits(ax, x[ok], y[ok])
            if static is not None:
                _draw_2d(ax, static, dims[0], dims[1])
        elif len(dims) == 1:
            x = frame[dims[0]].to_numpy()
            x = x[np.isfinite(x)]
            if len(x):
                ax.hist(x, bins=100, color="#4c72b0", alpha=0.8, histtype="stepfilled")
            ax.set_xlabel(label(dims[0]), fontsize=7)
            ax.set_yticks([])
            if static is not None:
                _draw_1d(ax, static, dims[0])
        ax.tick_params(labelsize=7)
        if flag:
            ax.text(0.02, 0.02, _literal(flag[:120]), transform=ax.transAxes, fontsize=7, color="#b00000",
                    va="bottom", wrap=True, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#b00000", "pad": 2})
    return fig


def _limits(ax, x: np.ndarray, y: np.ndarray) -> None:
    """Axis limits on the bulk of the data, so a gate's far corners do not shrink the cells."""
    for values, setter in ((x, ax.set_xlim), (y, ax.set_ylim)):
        low, high = np.quantile(values, [0.001, 0.999])
        pad = 0.08 * (high - low) or 0.05
        setter(low - pad, high + pad)


def _draw_1d(ax, gate, dim: str) -> None:
    bounds = getattr(gate, "bounds", {}).get(dim)
    if not bounds:
        return
    lo, hi = bounds
    xmin, xmax = ax.get_xlim()
    for value in (lo, hi):
        if value is not None:
            ax.axvline(value, color=COLOURS["gate"], linewidth=1.8)
    ax.axvspan(lo if lo is not None else xmin, hi if hi is not None else xmax, color=COLOURS["gate"], alpha=0.12)
    ax.set_xlim(xmin, xmax)


def _draw_2d(ax, gate, xdim: str, ydim: str) -> None:
    kind = type(gate).__name__
    style = {"color": COLOURS["gate"], "linewidth": 1.8}
    if kind == "EllipseGate":
        dims = list(gate.dims)
        i, j = dims.index(xdim), dims.index(ydim)
        mean = np.asarray(gate.mean, float)[[i, j]]
        cov = np.asarray(gate.covariance, float)[np.ix_([i, j], [i, j])]
        theta = np.linspace(0, 2 * np.pi, 200)
        circle = np.stack([np.cos(theta), np.sin(theta)])
        points = mean[:, None] + np.linalg.cholesky(cov) @ circle * np.sqrt(gate.distance_square)
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        ax.plot(points[0], points[1], **style)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    elif kind == "PolygonGate":
        dims = list(gate.dims)
        vertices = np.asarray(gate.vertices, float)[:, [dims.index(xdim), dims.index(ydim)]]
        closed = np.vstack([vertices, vertices[:1]])
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        ax.plot(closed[:, 0], closed[:, 1], **style)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    elif hasattr(gate, "bounds"):
        xmin, xmax = ax.get_xlim()
        ymin, ymax = ax.get_ylim()
        (x0, x1), (y0, y1) = gate.bounds.get(xdim, (None, None)), gate.bounds.get(ydim, (None, None))
        x0, x1 = x0 if x0 is not None else xmin, x1 if x1 is not None else xmax
        y0, y1 = y0 if y0 is not None else ymin, y1 if y1 is not None else ymax
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], **style)
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
