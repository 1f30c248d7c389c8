"""The cohort figures: baseline → follow-up per patient for one marker and comparison, with the cohort
statistics, and each patient's line across every timepoint (:func:`plot_longitudinal`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cohort import DEFAULT_TOLERANCES
from ..controls import is_control
from ._style import COLOURS, _figure, _fmt, _literal, _no_data, _p

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: ``metric`` of :func:`plot_paired` → (column stem in ``paired``, ``cohort.metric``, axis label)
METRICS = {
    "pct_pos": ("pct_pos", "delta_pct_pos", "% positive"),
    "mfi": ("mfi", "log2_rmfi_ratio", "median MFI"),
    "rmfi": ("rmfi", "delta_rmfi", "rMFI (stained / isotype median)"),
}


GROUP_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
"""Marker shapes of the groups, as :data:`GROUP_COLOURS`: groups told apart in greyscale too."""

GROUP_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
"""Colours of the groups of patients (``--group-by``), in the groups' sorted order."""


def group_colours(groups: dict[str, str]) -> dict[str, str]:
    """group → its colour (:data:`GROUP_COLOURS`, in sorted order, repeating past eight groups)."""
    names = sorted(set(groups.values()), key=str)
    return {name: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, name in enumerate(names)}


def plot_paired(paired: pd.DataFrame, marker: str, *, cohort: pd.DataFrame | None = None,
                metric: str = "pct_pos", baseline: str = "C2D1", followup: str = "C2D8",
                groups: dict[str, str] | None = None, group_table: pd.DataFrame | None = None) -> Figure:
    """Baseline → follow-up per patient for one marker, one line per patient (dashed where the pair is
    flagged in ``paired``), and a black line joining the two timepoints' medians (the title's median Δ
    is the median of the patients' changes).

    Parameters
    ----------
    paired
        The ``paired`` table of :class:`~cytokit.experiment.Results`.
    marker
        A marker name (``"LAG3"``).
    cohort
        The ``cohort`` table: its row for this marker and metric gives n, median
        change, its exact 95 % CI and the Wilcoxon p shown in the title.
    metric
        One of :data:`METRICS`: ``pct_pos``, ``mfi`` or ``rmfi``.
    baseline, followup
        The comparison drawn: its rows of ``paired`` and of ``cohort`` (where they name one).
    groups
        patient → group (``--group-by``): lines coloured by group (else red up, blue down).
    group_table
        The ``groups`` table: its Mann–Whitney p of this marker and metric goes in the title.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, not {metric!r}")
    stem, cohort_metric, label = METRICS[metric]
    rows = _of_comparison(paired[paired["marker"] == marker] if len(paired) else paired, baseline, followup)
    colours = group_colours(groups) if groups else {}
    fig = _figure(3.6, 3.4, left=0.55, right=0.1, top=0.62, bottom=0.35)
    ax = fig.add_subplot()
    if rows.empty:
        _no_data(ax, f"no paired patients for {marker}")
    else:
        before = rows[f"{stem}_baseline"].to_numpy(float)
        after = rows[f"{stem}_followup"].to_numpy(float)
        flagged = (rows["flag"].fillna("").astype(str) != "").to_numpy() if "flag" in rows else np.zeros(len(rows), bool)
        shapes = {name: GROUP_MARKERS[i % len(GROUP_MARKERS)] for i, name in enumerate(colours)}
        # up / down as cohort.csv counts them: beyond the change metric's tolerance (% positive: 1 point)
        tolerance = DEFAULT_TOLERANCES.get(cohort_metric, 0.0) if stem == "pct_pos" else 0.0
        kinds: dict[tuple, list] = {}  # (style, colour, shape) → its patients' (b, a): one line each
        for patient, b, a, doubtful in zip(rows["patient"], before, after, flagged):
            # colour and shape both say up / down (or the group): the figure survives greyscale printing
            colour, shape = ((COLOURS["followup"], "^") if a > b + tolerance else
                             (COLOURS["baseline"], "v") if a < b - tolerance else ("#555", "o"))
            if groups:
                group = groups.get(str(patient))
                colour, shape = colours.get(group, "#555"), shapes.get(group, "o")
            # a pair whose tube is flagged (a doubtful gate, no control ...) is dashed: counted, but to check
            kinds.setdefault(("--" if doubtful else "-", colour, shape), []).append((b, a))
        for (style, colour, shape), pairs in kinds.items():
            # the patients of a kind as one line broken by NaN: one artist, not one per patient (a
            # 250-patient figure took 160 ms, most of it the legend's search for a place among 250 lines)
            y = np.column_stack([np.asarray(pairs, float), np.full(len(pairs), np.nan)]).ravel()
            ax.plot(np.tile([0.0, 1.0, np.nan], len(pairs)), y, style, marker=shape, color=colour, alpha=0.75,
                    markersize=4, linewidth=1.2)
        if len(rows) <= 12:
            _label_ends(ax, [_literal(p) for p in rows["patient"]], after)
        if np.isfinite(before).any() and np.isfinite(after).any():  # nanmedian warns on all-NaN
            ax.plot([0, 1], [np.nanmedian(before), np.nanmedian(after)], "-", color="black", linewidth=2.5,
                    label="median of each timepoint")
            from matplotlib.lines import Line2D

            def key(label: str, colour: str, shape: str = "", style: str = "-") -> Line2D:  # a legend entry only
                return Line2D([], [], linestyle=style, marker=shape or None, color=colour, markersize=4, label=label)

            handles = [*ax.get_lines()[-1:]]
            handles += [key(_literal(name), colour, shapes[name]) for name, colour in colours.items()]
            if not groups:
                beyond = f" > {tolerance:g} point{'s' * (tolerance != 1)}" if tolerance else ""
                handles += [key(f"up{beyond}", COLOURS["followup"], "^"), key(f"down{beyond}", COLOURS["baseline"], "v")]
                if (np.abs(after - before) <= tolerance).any():
                    handles.append(key("unchanged", "#555", "o"))
            if flagged.any():
                handles.append(key("flagged pair (paired.csv)", "#555", style="--"))
            ax.legend(handles=handles, loc="best", fontsize=7, frameon=False)
    ax.set_xticks([0, 1], [_literal(baseline), _literal(followup)])
    ax.set_xlim(-0.3, 1.45)
    population = str(rows["population"].iloc[0]).split("/")[-1] if len(rows) and "population" in rows else ""
    ax.set_ylabel(f"{label} of {_literal(population)}" if population else label)
    row = None
    if cohort is not None and len(cohort):
        of_marker = cohort[cohort["marker"] == marker]
        if metric == "mfi" and not (of_marker["metric"] == cohort_metric).any():  # no control: the raw MFI ratio
            cohort_metric = "log2_mfi_ratio_raw"
        hit = _of_comparison(of_marker[of_marker["metric"] == cohort_metric], baseline, followup)
        row = hit.iloc[0] if len(hit) else None
    title = f"{_literal(marker)}: {label}"
    if row is not None:
        change = {"log2_rmfi_ratio": "median log2 rMFI ratio",  # not the axis's units
                  "log2_mfi_ratio_raw": "median log2 MFI ratio"}.get(cohort_metric, "median Δ")
        units = " points" if cohort_metric in ("delta_pct_pos", "delta_overton_pct_pos") else ""
        ci = (f" (95% CI {_fmt(row['ci_low'])} to {_fmt(row['ci_high'])})" if pd.notna(row.get("ci_low"))
              else " (no CI: n < 6)")
        title += (f"\nn={int(row['n_pairs'])}, {change}={_fmt(row['median_delta'])}{units}{ci}"
                  f"\n{_test_label(row['test'])} p={_p(row['p_value'])}")
    if group_table is not None and len(group_table):
        hit = _of_comparison(group_table[(group_table["marker"] == marker)
                                         & (group_table["metric"] == cohort_metric)], baseline, followup)
        if len(hit) == 1:  # two groups: their test (more groups: the groups table)
            g = hit.iloc[0]
            title += f"; groups: Mann–Whitney p={_p(g['p_value'])}"
    ax.set_title(title, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _label_ends(ax, names: list[str], y: np.ndarray) -> None:
    """Each name right of its line's end at x = 1, moved apart to at least a label's height (a patient
    whose value is another's to a point had its name printed over the other's)."""
    y = np.asarray(y, dtype=float)
    ok = np.flatnonzero(np.isfinite(y))
    if not len(ok):
        return
    low, high = ax.get_ylim()
    gap = 0.045 * (high - low)  # 6 pt text on a panel of about 2.4 inches
    order = ok[np.argsort(y[ok], kind="stable")]
    placed = y[order].copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    placed -= max(0.0, placed[-1] - (high - gap / 2))  # pushed above the top: the whole column down
    for i, at in zip(order, placed):
        ax.annotate(names[i], (1, y[i]), xytext=(1.04, at), textcoords="data", fontsize=6, va="center",
                    color="#444", annotation_clip=False)


def _of_comparison(table: pd.DataFrame, baseline: str, followup: str) -> pd.DataFrame:
    """The rows of one comparison in a table of several (``baseline`` and ``followup`` columns); a table
    of one comparison, or without those columns, is returned whole."""
    if {"baseline", "followup"} <= set(table.columns) and len(table.drop_duplicates(["baseline", "followup"])) > 1:
        return table[(table["baseline"] == baseline) & (table["followup"] == followup)]
    return table


def plot_longitudinal(markers: pd.DataFrame, marker: str, *, timepoints: list[str],
                      groups: dict[str, str] | None = None, ok_files=None) -> Figure:
    """Each patient's % positive of one marker across every timepoint, one line per patient (the median
    MFI for a marker without a control, which has no % positive).

    Parameters
    ----------
    markers
        The ``markers`` table (its stained tubes' rows of ``marker`` are drawn).
    timepoints
        The x axis, in order; tubes at other timepoints are not drawn.
    groups
        patient → group: lines coloured by group (else grey), with each group's median.
    ok_files
        Files to draw (default: all); e.g. those not failed.
    """
    rows = markers[(markers["marker"] == marker) & ~markers["stain"].map(is_control)] if len(markers) else markers
    # a marker without a control (positivity none) has no % positive: its median MFI
    value, label = (("pct_pos", "% positive") if not len(rows) or rows["pct_pos"].notna().any()
                    else ("median", "median MFI"))
    if ok_files is not None and len(rows):
        rows = rows[rows["file"].isin(set(ok_files))]
    if len(rows):
        rows = rows[rows["timepoint"].isin(timepoints)]
    position = {tp: i for i, tp in enumerate(timepoints)}
    colours = group_colours(groups) if groups else {}
    fig = _figure(1.4 + 0.75 * max(2, len(timepoints)), 3.4, left=0.55, right=0.1, top=0.45, bottom=0.35)
    ax = fig.add_subplot()
    if rows.empty:
        _no_data(ax, f"no stained tubes of {marker}")
    else:
        many = rows["stain"].nunique() > 1
        for (patient, stain), line in rows.groupby(["patient", "stain"], sort=True):
            line = line.sort_values("timepoint", key=lambda tp: tp.map(position))
            x = line["timepoint"].map(position).to_numpy(float)
            colour = colours.get(groups.get(str(patient)), "#555") if groups else "#555"
            ax.plot(x, line[value].to_numpy(float), "-o", color=colour, alpha=0.6, markersize=3.5, linewidth=1)
            if rows["patient"].nunique() <= 12:
                ax.annotate(_literal(f"{patient} {stain}" if many else patient), (x[-1], line[value].iloc[-1]),
                            xytext=(4, 0), textcoords="offset points", fontsize=6, va="center", color="#444")
        by_group = {None: rows} if not groups else {
            name: rows[rows["patient"].astype(str).map(groups) == name] for name in colours}
        for name, part in by_group.items():
            medians = part.groupby("timepoint")[value].median()
            order = [tp for tp in timepoints if tp in medians.index]
            if order:
                ax.plot([position[tp] for tp in order], medians[order].to_numpy(float), "-",
                        color=colours.get(name, "black"), linewidth=2.5,
                        label="median" if name is None else f"{_literal(name)} median")
        ax.legend(loc="best", fontsize=7, frameon=False)
    ax.set_xticks(range(len(timepoints)), [_literal(tp) for tp in timepoints])
    ax.set_xlim(-0.3, len(timepoints) - 0.55)
    ax.set_ylabel(label)
    ax.set_title(f"{_literal(marker)}: {label} at every timepoint", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _test_label(test: str) -> str:
    """``wilcoxon exact`` → ``Wilcoxon``: the test's name, as a figure title shows it."""
    name = str(test).split(":")[0].split()[0] if str(test).strip() else "test"
    return _literal(name.capitalize())
