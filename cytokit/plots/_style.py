"""What every figure shares: the colours, a figure with fixed margins, literal text, the "no data" panel,
number formats."""

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
    ax.text(0.5, 0.5, _literal(text), ha="center", va="center", transform=ax.transAxes, fontsize=8, color="#a00",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
