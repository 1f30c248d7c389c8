"""The gating figure: each gate of a gated sample drawn on its parent population."""

from __future__ import annotations

import textwrap

from typing import TYPE_CHECKING

import numpy as np

from .._sorted import quantiles
from ._raster import density
from ._scale import scale_axis
from ._style import (COLOURS, _fmt, _grid_limits, _literal, _no_data, _panels, _steps, _title, _vline,
                     _vspan)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..gating.result import GatingResult


def plot_gates(result: GatingResult, *, title: str | None = None, max_events: int = 20000,
               raster: bool = False) -> Figure:
    """Each gate of a gated sample on its parent population.

    Two-dimensional gates are drawn on a density of the parent's events (a 2-D histogram coloured
    by log count); a
    one-dimensional (threshold) gate on a density of its channel against SSC (against the
    parent gate's other channel, or FSC, when it gates SSC itself), with the threshold line and
    the channel's histogram above. Axes are labelled in scale values (decades on logicle, asinh
    and log axes). Panel titles give the population's count and % of parent; skipped and failed
    gates are said so in red. All names (file, populations, channels, ``$PnS``) are drawn literally.

    Parameters
    ----------
    result
        A :class:`~cytokit.gating.result.GatingResult` (``Template.apply``).
    title
        Figure title (default: the sample's path).
    max_events
        Parent events drawn at most (a random subsample).
    raster
        Draw on a :class:`~cytokit.plots._canvas.Canvas` (its ``png()``: the PNG the pipeline
        writes, drawn without matplotlib in a fraction of the time), not a matplotlib figure.
    """
    template = result.template
    paths = [p for p in template.paths if p in result.membership]
    by_dim: dict[str, str] = {}  # the first role on each dimension names its axis
    for role in result.channels:
        by_dim.setdefault(result.dimension(role), role)
    pns = dict(zip(result.sample.channels.pnn, result.sample.channels.pns))
    n_cols = min(4, max(1, len(paths)))
    n_rows = int(np.ceil(len(paths) / n_cols)) or 1
    fig, axes = _panels(3.1 * n_cols, 3.1 * n_rows + 0.55, n_rows, n_cols, raster=raster, labelsize=7,
                        left=0.6,
                        right=0.1, top=1.05, bottom=0.5, wspace=0.33, hspace=0.75)
    axes = axes.ravel()
    fig.suptitle(_literal(title if title is not None else str(result.sample.path or "sample")), fontsize=9)
    for ax in axes[len(paths):]:
        ax.set_axis_off()
    total = len(result.scale)
    # one draw per event for all panels (a panel keeps an event where its draw < max_events / parent):
    # one array, not one per panel, and a population's drawn events are among its parent's
    draws = np.random.default_rng(0).random(total, dtype=np.float32)

    def label(dim: str) -> str:
        role, pnn = by_dim.get(dim, ""), result.channel_of(dim)
        stain = pns.get(pnn, "")
        stain = "" if stain.strip().casefold() == str(pnn).strip().casefold() else stain  # $PnS copying $PnN
        return _literal(f"{role or dim} [{pnn}{', ' + stain if stain else ''}]")

    for ax, path in zip(axes, paths):
        parent = result.parents.get(path, "root")
        parent_mask = np.ones(total, dtype=bool) if parent == "root" else result.membership[parent]
        count = int(np.count_nonzero(result.membership[path]))
        n_parent = int(np.count_nonzero(parent_mask))
        pct = 100.0 * count / n_parent if n_parent else float("nan")
        name = path.split("/")[-1]
        _title(ax, _literal(f"{name} ⊂ {parent.split('/')[-1]}") + f"\n{count:,} events ({_fmt(pct)}% of parent)")
        flag = result.flags.get(path, "")
        gate = result.gates.get(path)
        if gate is None:
            _no_data(ax, flag or "no gate")
            continue
        if hasattr(gate, "operands"):  # a boolean gate combines populations: nothing to scatter
            _no_data(ax, flag or f"boolean gate: {getattr(gate, 'op', '')} of {', '.join(gate.operands)}")
            continue
        dims = list(gate.dims)
        if len(dims) == 1:
            partner = _partner(result, parent, dims[0])
            dims += [partner] if partner else []
        if n_parent > max_events:  # about max_events of them, in file order (not a sorted choice)
            index = np.flatnonzero(parent_mask & (draws < max_events / n_parent))
        else:
            index = np.flatnonzero(parent_mask)
        frame = {d: result.transformed(d, index) for d in dims}
        static = None
        if not flag.startswith("gate failed"):
            try:
                static = gate.to_static() if hasattr(gate, "to_static") else gate
            except Exception as exc:  # noqa: BLE001 - a figure must not fail on one odd gate
                flag = flag or f"cannot draw gate: {exc}"
        if len(dims) >= 2:
            x, y = np.asarray(frame[dims[0]], float), np.asarray(frame[dims[1]], float)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.any():
                _limits(ax, x[ok], y[ok], _bounds(static, dims[0]) if len(gate.dims) == 1 else ())
                density(ax, x[ok], y[ok], ax.get_xlim(), ax.get_ylim())
            ax.set_xlabel(label(dims[0]), fontsize=7)
            ax.set_ylabel(label(dims[1]), fontsize=7)
            if static is not None and len(gate.dims) >= 2:
                _draw_2d(ax, static, dims[0], dims[1])
            if len(gate.dims) == 1:
                if static is not None:
                    _draw_1d(ax, static, dims[0])
                if ok.any():
                    _marginal(ax, x[ok], static, dims[0])
            for which, dim in (("x", dims[0]), ("y", dims[1])):
                scale_axis(ax, which, result.transforms.get(dim))
        elif len(dims) == 1:
            x = np.asarray(frame[dims[0]], float)
            x = x[np.isfinite(x)]
            if len(x):
                counts, edges = np.histogram(x, bins=100)
                _steps(ax, counts, edges, fill=True, color="#4c72b0", alpha=0.8, linewidth=0)
                ax.set_xlim(edges[0], edges[-1])
                ax.set_ylim(0, 1.05 * counts.max())
            ax.set_xlabel(label(dims[0]), fontsize=7)
            ax.set_yticks([])
            if static is not None:
                _draw_1d(ax, static, dims[0])
            scale_axis(ax, "x", result.transforms.get(dims[0]))
        if flag:
            # in lines that fit the panel (matplotlib's wrap=True wraps at the figure's edge), at most three
            lines = textwrap.wrap(flag, 50, max_lines=3, placeholder=" …")
            ax.text(0.02, 0.02, _literal("\n".join(lines)), transform=ax.transAxes, fontsize=7, color="#b00000",
                    va="bottom",
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#b00000", "pad": 2})
    return fig


def _partner(result: GatingResult, parent: str, dim: str) -> str | None:
    """The channel a 1-D gate on ``dim`` is drawn against: SSC, else the parent gate's other
    channel, else FSC (None when the file has none of them)."""
    parent_gate = result.gates.get(parent)
    parent_dims = list(getattr(parent_gate, "dims", ())) if not hasattr(parent_gate, "operands") else []
    ssc, fsc = (result.dimension(r) if r in result.channels else None for r in ("ssc", "fsc"))
    candidates = [ssc, *parent_dims, fsc]
    for candidate in candidates:
        if candidate and candidate != dim and result.channel_of(candidate) in result.scale.columns:
            return candidate
    return None


def _bounds(gate, dim: str) -> tuple:
    bounds = getattr(gate, "bounds", {}).get(dim) if gate is not None else None
    return tuple(b for b in (bounds or ()) if b is not None and np.isfinite(b))


def _marginal(ax, x: np.ndarray, gate, dim: str) -> None:
    """The histogram of the gated channel in a strip above the density panel, on its x-axis (drawn in
    the panel's own axes, above it: an inset axes cost as much as the panel)."""
    xlim = ax.get_xlim()
    counts, edges = np.histogram(x, bins=90, range=xlim)
    heights = 1.0 + _STRIP * counts / (max(1, counts.max()) * 1.05)  # axes fraction, above the panel
    _steps(ax, heights, edges, above=True, fill=True, facecolor="#4c72b0", alpha=0.8, linewidth=0)
    for value in _bounds(gate, dim):
        if xlim[0] <= value <= xlim[1]:
            _vline(ax, value, ymin=1.0, ymax=1.0 + _STRIP, color=COLOURS["gate"], linewidth=1.4, clip_on=False)
    height = ax.get_position().height * ax.figure.get_figheight() * _STRIP * 72  # the strip, in points
    _title(ax, ax.get_title(), pad=height + 3)


#: height of the histogram strip above a 1-D gate's density, as a fraction of the panel
_STRIP = 0.2


def _limits(ax, x: np.ndarray, y: np.ndarray, x_marks: tuple = ()) -> None:
    """Axis limits on the bulk of the data, so a gate's far corners do not shrink the cells, out to a
    grid (:func:`_grid_limits`); the x-axis also shows ``x_marks`` (a threshold) when they lie within the data."""
    for values, setter, marks in ((x, ax.set_xlim, x_marks), (y, ax.set_ylim, ())):
        low, high = quantiles(values, [0.001, 0.999])
        inside = [m for m in marks if values.min() <= m <= values.max()]
        setter(*_grid_limits(min([low, *inside]), max([high, *inside]), 0.04))


def _draw_1d(ax, gate, dim: str) -> None:
    bounds = getattr(gate, "bounds", {}).get(dim)
    if not bounds:
        return
    lo, hi = bounds
    xmin, xmax = ax.get_xlim()
    for value in (lo, hi):
        if value is not None:
            _vline(ax, value, color=COLOURS["gate"], linewidth=1.8)
    _vspan(ax, lo if lo is not None else xmin, hi if hi is not None else xmax, color=COLOURS["gate"], alpha=0.12)


def _draw_2d(ax, gate, xdim: str, ydim: str) -> None:
    def outline(x, y) -> None:  # added as an artist: ax.plot updated the data limits and autoscaled
        if getattr(ax, "raster", False):
            return ax.line(x, y, color=COLOURS["gate"], linewidth=1.8)
        from matplotlib.lines import Line2D

        ax.add_artist(Line2D(x, y, color=COLOURS["gate"], linewidth=1.8))

    kind = type(gate).__name__
    if kind == "EllipseGate":
        dims = list(gate.dims)
        i, j = dims.index(xdim), dims.index(ydim)
        mean = np.asarray(gate.mean, float)[[i, j]]
        cov = np.asarray(gate.covariance, float)[np.ix_([i, j], [i, j])]
        theta = np.linspace(0, 2 * np.pi, 200)
        circle = np.stack([np.cos(theta), np.sin(theta)])
        points = mean[:, None] + np.linalg.cholesky(cov) @ circle * np.sqrt(gate.distance_square)
        outline(points[0], points[1])
    elif kind == "PolygonGate":
        dims = list(gate.dims)
        vertices = np.asarray(gate.vertices, float)[:, [dims.index(xdim), dims.index(ydim)]]
        closed = np.vstack([vertices, vertices[:1]])
        outline(closed[:, 0], closed[:, 1])
    elif hasattr(gate, "bounds"):
        xmin, xmax = ax.get_xlim()
        ymin, ymax = ax.get_ylim()
        (x0, x1), (y0, y1) = gate.bounds.get(xdim, (None, None)), gate.bounds.get(ydim, (None, None))
        x0, x1 = x0 if x0 is not None else xmin, x1 if x1 is not None else xmax
        y0, y1 = y0 if y0 is not None else ymin, y1 if y1 is not None else ymax
        outline([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0])
