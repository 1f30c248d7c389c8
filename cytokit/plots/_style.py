"""What every figure shares: the colours, a figure with fixed margins (or a raster canvas), literal text, the
"no data" panel, number formats."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

COLOURS = {"isotype": "#8c8c8c", "baseline": "#1f77b4", "followup": "#d62728", "gate": "#ff7f0e"}


def _figure(width: float, height: float, *, left: float = 0.6, right: float = 0.15, top: float = 0.6,
            bottom: float = 0.5, wspace: float = 0.3, hspace: float = 0.5) -> Figure:
    """A figure with fixed margins in inches (constrained layout costs more than drawing)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, wspace=wspace, hspace=hspace)
    return fig


def _panels(width: float, height: float, n_rows: int, n_cols: int, *, raster: bool = False,
            labelsize: float | None = None, **margins: float) -> tuple[Figure, np.ndarray]:
    """A :func:`_figure` with an ``n_rows`` × ``n_cols`` grid of axes (a 2-D array), tick labels of
    ``labelsize`` points; ``raster``: a :class:`~._canvas.Canvas` and its panels instead (what the
    pipeline draws: no matplotlib figure)."""
    if raster:
        from ._canvas import Canvas

        canvas = Canvas(width, height, n_rows, n_cols, labelsize=labelsize, **margins)
        return canvas, canvas.axes
    fig = _figure(width, height, **margins)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    if labelsize is not None:
        for ax in axes.ravel():
            ax.tick_params(labelsize=labelsize)
    return fig, axes


def _title(ax, text: str, **style) -> None:
    """``text`` as ``ax``'s title, 8 pt, at the top of the axes. Its height is given (``y=1``, where
    matplotlib would put it: no axis of these panels has ticks or a label on top), so drawing does
    not measure every tick label of the axes to find what is above it (7 ms a panel)."""
    ax.set_title(text, **{"fontsize": 8, "y": 1.0, **style})


def _vline(ax, x: float, *, ymin: float = 0.0, ymax: float = 1.0, **style) -> None:
    """``ax.axvline(x, ymin, ymax, **style)`` without its bookkeeping of data limits and autoscaling
    (the panels set their limits; a line cost ~1 ms that way)."""
    if getattr(ax, "raster", False):
        return ax.line([x, x], [ymin, ymax], coords="xaxis", **style)
    from matplotlib.lines import Line2D

    ax.add_artist(Line2D([x, x], [ymin, ymax], transform=ax.get_xaxis_transform(which="grid"), **style))


def _hline(ax, y: float, **style) -> None:
    """``ax.axhline(y, **style)``, as :func:`_vline`."""
    if getattr(ax, "raster", False):
        return ax.line([0.0, 1.0], [y, y], coords="yaxis", **style)
    from matplotlib.lines import Line2D

    ax.add_artist(Line2D([0.0, 1.0], [y, y], transform=ax.get_yaxis_transform(which="grid"), **style))


def _vspan(ax, x0: float, x1: float, **style) -> None:
    """``ax.axvspan(x0, x1, **style)``, as :func:`_vline`."""
    if getattr(ax, "raster", False):
        return ax.span(x0, x1, **style)
    from matplotlib.patches import Rectangle

    ax.add_artist(Rectangle((x0, 0.0), x1 - x0, 1.0, transform=ax.get_xaxis_transform(which="grid"), **style))


def _steps(ax, counts: np.ndarray, edges: np.ndarray, *, above: bool = False, label: str = "", **style) -> None:
    """A step histogram added as an artist (``ax.stairs`` walked the outline to update the data
    limits, which the panels set); ``above``: in axes fractions above the panel, on its x data (a
    strip), not clipped. ``style``: ``StepPatch``'s (``fill``, ``color``, ``alpha``, ``linewidth``,
    ``linestyle``, ``hatch``, ``facecolor``)."""
    baseline = 1.0 if above else 0.0
    if getattr(ax, "raster", False):
        colour = style.pop("facecolor", None) or style.pop("color", "#4c72b0")
        return ax.steps(counts, edges, baseline=baseline, color=colour, label=label,
                        coords="xaxis" if above else "data", clip_on=not above,
                        **{k: v for k, v in style.items() if v is not None})
    from matplotlib.patches import StepPatch

    extra = {}
    if above:
        from matplotlib.transforms import blended_transform_factory

        extra = {"clip_on": False, "transform": blended_transform_factory(ax.transData, ax.transAxes)}
    ax.add_artist(StepPatch(counts, edges, baseline=baseline, label=label or None, **style, **extra))


def _grid_limits(low: float, high: float, pad: float) -> tuple[float, float]:
    """``low``..``high`` widened by ``pad`` of its span and out to a grid of about 25 steps of it
    (1, 2, 2.5 or 5 × a power of ten): the files of a run get the same few limits, so their axes'
    tick labels are the same (their ticks computed once), the bulk of the events still filling the panel."""
    span = (high - low) or 1.0
    exponent = 10.0 ** np.floor(np.log10(span / 25))
    step = next(m * exponent for m in (1, 2, 2.5, 5, 10) if m * exponent >= span / 25)
    return (float(np.floor((low - pad * span) / step) * step), float(np.ceil((high + pad * span) / step) * step))


def _fmt(value, digits: int = 3) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if not np.isfinite(value) else f"{value:.{digits}g}"


def _p(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(value):
        return "–"
    return f"{value:.2g}" if value >= 0.001 else "<0.001"


def _literal(text) -> str:
    """``text`` drawn as it is: every ``$`` escaped, so matplotlib's mathtext never parses user text
    (a ``$PnS`` of ``7AAD $x_{$`` raised in the worker and lost the file's figure; an even number of
    ``$`` was silently drawn as maths). A ``\\$`` of the text stays ``\\$`` on the figure."""
    return str(text).replace("$", r"\$")


def _no_data(ax, text: str) -> None:
    """``text`` in the middle of an empty panel, in lines that fit it (matplotlib's ``wrap`` wraps at the
    figure's edge: a long message ran over the next panel)."""
    import textwrap

    ax.text(0.5, 0.5, _literal("\n".join(textwrap.wrap(str(text), 40))), ha="center", va="center",
            transform=ax.transAxes, fontsize=8, color="#a00")
    ax.set_xticks([])
    ax.set_yticks([])
