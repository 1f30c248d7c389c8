"""What every figure shares: the colours, a figure with fixed margins (new or reused), literal text, the
"no data" panel, number formats."""

from __future__ import annotations

import threading
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


_KEPT = threading.local()  # figures kept for reuse, per thread (Dask workers may run tasks in threads)


def _panels(width: float, height: float, n_rows: int, n_cols: int, *, reuse: bool = False,
            labelsize: float | None = None, **margins: float) -> tuple[Figure, np.ndarray]:
    """A :func:`_figure` with an ``n_rows`` × ``n_cols`` grid of axes (a 2-D array), tick labels of
    ``labelsize`` points (set once, before the ticks are made: an emptied figure keeps them).

    ``reuse`` hands out the figure of this layout kept for the calling thread, emptied, instead of a
    new one: creating the axes and their ticks was a third of building a gating figure. Only for a
    figure turned into bytes before the next call of the same layout (which redraws it). Emptied,
    it draws the same pixels as a new one (a test compares the PNG bytes).
    """
    key = (width, height, n_rows, n_cols, labelsize, tuple(sorted(margins.items())))
    kept = getattr(_KEPT, "figures", None)
    if kept is None:
        kept = _KEPT.figures = {}
    if reuse and key in kept:
        fig, axes = kept[key]
        _empty(fig, axes)
        return fig, axes
    fig = _figure(width, height, **margins)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    if labelsize is not None:
        for ax in axes.ravel():
            ax.tick_params(labelsize=labelsize)
    if reuse:
        kept[key] = (fig, axes)
        fig._cytokit_kept = True  # figure_png redraws it pasting the axes' unchanged texts (_blit)
    return fig, axes


def _empty(fig: Figure, axes: np.ndarray) -> None:
    """Every axes of ``fig`` as a new one: no artists, no title or labels, default ticks and limits."""
    from matplotlib.transforms import Bbox

    if fig._suptitle is not None:
        fig._suptitle.remove()
        fig._suptitle = None
    for ax in axes.ravel():
        for artist in [*ax.images, *ax.lines, *ax.patches, *ax.collections, *ax.texts]:
            artist.remove()
        if ax.legend_ is not None:
            ax.legend_.remove()
        ax.set_axis_on()
        ax.set_title("")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_xscale("linear")  # the default locators and formatters
        ax.set_yscale("linear")
        ax.dataLim.set_points(Bbox.null().get_points())
        ax.ignore_existing_data_limits = True
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_autoscale_on(True)


def _title(ax, text: str, **style) -> None:
    """``text`` as ``ax``'s title, 8 pt, at the top of the axes. Its height is given (``y=1``, where
    matplotlib would put it: no axis of these panels has ticks or a label on top), so drawing does
    not measure every tick label of the axes to find what is above it (7 ms a panel)."""
    ax.set_title(text, **{"fontsize": 8, "y": 1.0, **style})


def _vline(ax, x: float, *, ymin: float = 0.0, ymax: float = 1.0, **style) -> None:
    """``ax.axvline(x, ymin, ymax, **style)`` without its bookkeeping of data limits and autoscaling
    (the panels set their limits; a line cost ~1 ms that way)."""
    from matplotlib.lines import Line2D

    ax.add_artist(Line2D([x, x], [ymin, ymax], transform=ax.get_xaxis_transform(which="grid"), **style))


def _hline(ax, y: float, **style) -> None:
    """``ax.axhline(y, **style)``, as :func:`_vline`."""
    from matplotlib.lines import Line2D

    ax.add_artist(Line2D([0.0, 1.0], [y, y], transform=ax.get_yaxis_transform(which="grid"), **style))


def _vspan(ax, x0: float, x1: float, **style) -> None:
    """``ax.axvspan(x0, x1, **style)``, as :func:`_vline`."""
    from matplotlib.patches import Rectangle

    ax.add_artist(Rectangle((x0, 0.0), x1 - x0, 1.0, transform=ax.get_xaxis_transform(which="grid"), **style))


def _grid_limits(low: float, high: float, pad: float) -> tuple[float, float]:
    """``low``..``high`` widened by ``pad`` of its span and out to a grid of about 25 steps of it
    (1, 2, 2.5 or 5 × a power of ten): the files of a run get the same few limits, so their axes'
    tick labels are drawn once (:mod:`._blit`), the bulk of the events still filling the panel."""
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
