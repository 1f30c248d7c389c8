"""The cohort figure: baseline → follow-up per patient for one marker, with the cohort statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._style import COLOURS, _figure, _fmt, _literal, _no_data, _p

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: ``metric`` of :func:`plot_paired` → (column stem in ``paired``, ``cohort.metric``, axis label)
METRICS = {
    "pct_pos": ("pct_pos", "delta_pct_pos", "% positive"),
    "mfi": ("mfi", "log2_rmfi_ratio", "median MFI"),
    "rmfi": ("rmfi", "delta_rmfi", "rMFI (stained / isotype median)"),
}


def plot_paired(paired: pd.DataFrame, marker: str, *, cohort: pd.DataFrame | None = None,
                metric: str = "pct_pos", baseline: str = "C2D1", followup: str = "C2D8") -> Figure:
    """Baseline → follow-up per patient for one marker, one line per patient.

    Parameters
    ----------
    paired
        The ``paired`` table of :class:`~cytokit.experiment.Results`.
    marker
        A marker name (``"LAG3"``).
    cohort
        The ``cohort`` table: its row for this marker and metric gives n, median
        change, bootstrap CI and the Wilcoxon p shown in the title.
    metric
        One of :data:`METRICS`: ``pct_pos``, ``mfi`` or ``rmfi``.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, not {metric!r}")
    stem, cohort_metric, label = METRICS[metric]
    rows = paired[paired["marker"] == marker] if len(paired) else paired
    fig = _figure(3.6, 3.4, left=0.55, right=0.1, top=0.62, bottom=0.35)
    ax = fig.add_subplot()
    if rows.empty:
        _no_data(ax, f"no paired patients for {marker}")
    else:
        before = rows[f"{stem}_baseline"].to_numpy(float)
        after = rows[f"{stem}_followup"].to_numpy(float)
        for patient, b, a in zip(rows["patient"], before, after):
            colour = COLOURS["followup"] if a > b else COLOURS["baseline"] if a < b else "#555"
            ax.plot([0, 1], [b, a], "-o", color=colour, alpha=0.75, markersize=4, linewidth=1.2)
            if len(rows) <= 12:
                ax.annotate(_literal(patient), (1, a), xytext=(4, 0), textcoords="offset points", fontsize=6,
                            va="center", color="#444")
        if np.isfinite(before).any() and np.isfinite(after).any():  # nanmedian warns on all-NaN
            ax.plot([0, 1], [np.nanmedian(before), np.nanmedian(after)], "-", color="black", linewidth=2.5,
                    label="median")
            ax.legend(loc="best", fontsize=7, frameon=False)
    ax.set_xticks([0, 1], [_literal(baseline), _literal(followup)])
    ax.set_xlim(-0.3, 1.45)
    ax.set_ylabel(label)
    row = None
    if cohort is not None and len(cohort):
        hit = cohort[(cohort["marker"] == marker) & (cohort["metric"] == cohort_metric)]
        row = hit.iloc[0] if len(hit) else None
    title = f"{_literal(marker)}: {label}"
    if row is not None:
        title += (f"\nn={int(row['n_pairs'])}, median Δ={_fmt(row['median_delta'])} "
                  f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]\n{_test_label(row['test'])} p={_p(row['p_value'])}")
    ax.set_title(title, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _test_label(test: str) -> str:
    """``wilcoxon exact`` → ``Wilcoxon``: the test's name, as a figure title shows it."""
    name = str(test).split(":")[0].split()[0] if str(test).strip() else "test"
    return _literal(name.capitalize())
