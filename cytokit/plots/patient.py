"""The patient panel: the quantified population's gate dimension (CD19) × marker dot plots of the control,
baseline and follow-up tubes, and histograms."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._sorted import quantiles
from ..controls import is_control
from ._raster import dots
from ._scale import scale_axis, transform_of
from ._style import (COLOURS, _fmt, _grid_limits, _hline, _literal, _no_data, _panels, _steps, _title,
                     _vline)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ._results import ResultsLike


def _records(frame: pd.DataFrame) -> list[dict]:
    """``frame.to_dict("records")`` (Python scalars, NaN as NaN) through one object array: pandas' own
    reads the frame column by column, 1 ms for a patient's few rows of the markers table."""
    columns = list(frame.columns)
    return [dict(zip(columns, row)) for row in frame.to_numpy(dtype=object).tolist()]


def _tubes(samples: pd.DataFrame, patient: str, baseline: str, followup: str) -> list[tuple[str, str | None]]:
    """(label, file) for the patient's control (the baseline tube's, else its timepoint's or the
    follow-up's), baseline and follow-up stained tubes, and the follow-up tube's own control where it
    is another (its histogram is drawn too); controls labelled by their kind and timepoint."""
    # one filter, then the patient's few rows as records (a pandas mask per lookup cost 1 ms a panel)
    rows = _records(samples[samples["patient"] == patient])

    def pick(timepoint: str, isotype: bool) -> str | None:
        return next((r["file"] for r in rows if r["timepoint"] == timepoint and is_control(r["stain"]) == isotype),
                    None)

    def control_of(stained: str | None, timepoint: str) -> str | None:
        named = next((r.get("control_file") for r in rows if r["file"] == stained), None)
        return named if named else pick(timepoint, True)

    def label(control: str | None, otherwise: str) -> str:
        row = next((r for r in rows if r["file"] == control), None)
        return f"{row['stain']} {row['timepoint']}" if row is not None else otherwise

    base, follow = pick(baseline, False), pick(followup, False)
    iso = control_of(base, baseline) or pick(followup, True)
    follow_iso = control_of(follow, followup)
    tubes = [(label(iso, "control"), iso), (f"{baseline} stained", base), (f"{followup} stained", follow)]
    if follow_iso and follow_iso != iso:
        tubes.append((label(follow_iso, ""), follow_iso))
    return tubes


def _transformed_threshold(markers: list[dict], values: dict, file: str, marker: str, quantile: float) -> float:
    """The positivity threshold of ``file`` on the transformed axis (its control's quantile: the tube
    its ``threshold_source`` names, which may be another timepoint's, else its timepoint's control).
    ``markers``: the patient's rows of the markers table, as records (pandas filters cost more than
    the lookups)."""
    row = next((r for r in markers if r["file"] == file and r["marker"] == marker), None)
    if row is None or not np.isfinite(float(row.get("threshold", np.nan))):  # positivity none, or no control
        return float("nan")
    iso = [r for r in markers if r["patient"] == row["patient"] and is_control(r["stain"]) and r["marker"] == marker]
    named = [r["file"] for r in iso if str(row["threshold_source"]).endswith(f" {r['file']}")]
    iso = [r for r in iso if r["timepoint"] == row["timepoint"]]
    source = named[0] if named else iso[0]["file"] if iso else file
    control = values.get((source, marker))
    if control is None or not len(control):
        return float("nan")
    finite = control[np.isfinite(control)]
    return float(quantiles(finite, [quantile])[0]) if len(finite) else float("nan")


def has_panel(results: ResultsLike, patient: str) -> bool:
    """Whether ``patient`` has a panel to draw: a quantified marker on a stained tube at a compared
    timepoint (not a template without ``markers:``, nor a study without timepoints)."""
    return str(patient) in panel_patients(results)


def panel_patients(results: ResultsLike) -> set[str]:
    """The patients (as text) :func:`has_panel` is true of, found in one pass over the markers table
    (asked patient by patient, a 250-patient report read its 2,000 rows 500 times)."""
    markers = results.markers
    if not len(markers):
        return set()
    compared = {tp for pair in results.comparisons for tp in pair}
    mine = markers[~markers["stain"].map(is_control) & markers["timepoint"].astype(str).isin(compared)]
    return set(mine["patient"].astype(str))


def plot_patient(results: ResultsLike, patient: str, *, quantiles: dict[str, float] | None = None,
                 raster: bool = False) -> Figure:
    """The study panel of one patient: the quantified population's gate dimension (CD19 of CD19+)
    against each marker, and marker histograms.

    Columns: the control tube, the baseline and follow-up stained tubes (the population's parent,
    e.g. viable cells, the population in colour) with the positivity threshold and the % positive of
    the population above it; last column: control, baseline and follow-up histograms of the
    marker's population. One row per marker; the template's first marker's population sets the axes.

    Parameters
    ----------
    results
        :class:`~cytokit.experiment.Results` of an experiment.
    patient
        A patient ID of ``results.samples``.
    quantiles
        Positivity quantile per marker (default: read from the template, else 0.99).
    raster
        Draw on a raster canvas, not a matplotlib figure (see :func:`plot_gates`).
    """
    baseline, followup = results.baseline, results.followup
    known = set(results.samples["patient"])
    if patient not in known and str(patient) in known:  # patient IDs are text: 2 is "2"
        patient = str(patient)
    if patient not in known:
        raise KeyError(f"patient {patient!r} is not in the results; patients: "
                       f"{sorted(results.samples['patient'].unique())}")
    marker_names = list(dict.fromkeys(results.markers["marker"])) if len(results.markers) else []
    layout = panel_layout(results.template_path)
    quantiles = quantiles or {}
    tubes = _tubes(results.samples, patient, baseline, followup)
    status = dict(zip(results.samples["file"], results.samples["status"]))
    errors = dict(zip(results.samples["file"], results.samples["error"]))
    n_rows = max(1, len(marker_names))
    patient_markers = _records(results.markers[results.markers["patient"] == patient] if len(results.markers)
                               else results.markers)
    pct_pos = {}  # (file, marker) → % positive, of the first row (as the table is read); the tubes are the patient's
    tube_files = {f for _, f in tubes if f}
    for row in patient_markers:
        if row["file"] in tube_files:
            pct_pos.setdefault((row["file"], row["marker"]), row["pct_pos"])
    # each tube's threshold is drawn on its dot plot and on the histograms: looked up once
    thresholds = functools.lru_cache(maxsize=None)(
        lambda file, marker, q: _transformed_threshold(patient_markers, results.values, file, marker, q))
    fig, axes = _panels(13.0, 3.0 * n_rows + 0.4, n_rows, 4, raster=raster, labelsize=7, left=0.55, right=0.1,
                        top=0.75, bottom=0.45, wspace=0.25, hspace=0.55)
    files = [f for _, f in tubes if f]
    if len({layout.row(m).x_role for m in marker_names}) > 1:  # CD4 T and CD8 T cells: each on its own axis
        what = f"markers on {_literal(layout.parent)}, each against its population's gate dimension"
    else:
        x_role = layout.row(marker_names[0]).x_role if marker_names else "cd19"
        what = f"{_literal(_axis_name(results, files, x_role, layout.x_marker))} × marker on {_literal(layout.parent)}"
    fig.suptitle(f"Patient {_literal(patient)}: {what}; histograms on {_literal(layout.population)}", fontsize=11)
    if not marker_names:
        _no_data(axes[0][0], "no marker results")
    for i, marker in enumerate(marker_names):
        row = layout.row(marker)
        role, x_role, q = row.role, row.x_role, quantiles.get(marker, row.quantile)
        x_name = _axis_name(results, files, x_role, row.x_marker)
        frames = {file: _row_events(results.plot_events.get(file), row) for _, file in tubes[:3] if file}
        frames = {f: v for f, v in frames.items() if v is not None and role in v and x_role in v}
        histograms = [results.values.get((file, marker)) for _, file in tubes if file]
        xlim = _shared_limits([v[x_role] for v in frames.values()])
        ylim = _shared_limits([v[role] for v in frames.values()]
                              + [h for h in histograms if h is not None])
        scales = _scales(results, [file for _, file in tubes[:3] if file])
        for j, (label, file) in enumerate(tubes[:3]):
            ax = axes[i][j]
            _title(ax, _literal(f"{label}" + (f"\n{file}" if file else "")))
            if file is None:
                _no_data(ax, f"no {label} tube")
                continue
            frame = frames.get(file)
            if frame is None:
                _no_data(ax, f"not analysed: {errors.get(file) or status.get(file, 'missing')}"[:160])
                continue
            inside, x, y = frame["__in__"], frame[x_role], frame[role]
            colour = [COLOURS["isotype"], COLOURS["baseline"], COLOURS["followup"]][j]
            dots(ax, [(x[~inside], y[~inside], "#c8c8c8", 1.0, 1),
                      (x[inside], y[inside], colour if j else "#505050", 0.3, 2)], xlim, ylim)
            threshold = thresholds(file, marker, q)
            x_cut = _x_threshold(results, file, row)
            if np.isfinite(threshold):
                _hline(ax, threshold, color="black", linewidth=0.9, linestyle="--")
            if np.isfinite(x_cut):
                _vline(ax, x_cut, color="#555", linewidth=0.8, linestyle=":")
            if (file, marker) in pct_pos:
                ax.text(0.97, 0.97, f"{_fmt(pct_pos[file, marker])}% pos\nof {_literal(row.population)}", ha="right", va="top",
                        transform=ax.transAxes, fontsize=8, fontweight="bold",
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5})
            ax.set_xlabel(_literal(_role_label(results, file, x_role, x_name)), fontsize=8)
            ax.set_ylabel(_literal(_with_channel(patient_markers, file, marker)), fontsize=8)
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            scale_axis(ax, "x", scales.get(x_role))
            scale_axis(ax, "y", scales.get(role))
        _histograms(axes[i][3], results, tubes, marker, q, ylim, scales.get(role), thresholds,
                    row.population, legend=i == 0)
    return fig


def _row_events(frame: pd.DataFrame | None, row: PanelRow) -> dict | None:
    """The events of ``row``'s population's parent (``of:PATH``) as arrays by column, with ``__in__``: in
    the population; None where the file has none of them."""
    if frame is None or frame.empty or f"of:{row.path}" not in frame:
        return None
    mask = frame[f"of:{row.path}"].to_numpy(bool)
    if not mask.any():
        return None
    events = {column: frame[column].to_numpy()[mask] for column in (row.role, row.x_role) if column in frame}
    events["__in__"] = frame[f"in:{row.path}"].to_numpy(bool)[mask]
    return events


def _with_channel(markers: list[dict], file: str, marker: str) -> str:
    """``LAG3 [FL2-H]``: the marker and the channel the tube measured it on (its markers row)."""
    channel = next((r.get("channel") for r in markers if r["file"] == file and r["marker"] == marker), "")
    return f"{marker} [{channel}]" if channel and str(channel) != marker else marker


def _role_label(results: ResultsLike, file: str, role: str, name: str) -> str:
    """``CD19 [FL1-H]``: the role's channel in the file (its gating summary), where known."""
    channels = ((getattr(results, "gating", None) or {}).get(file) or {}).get("channels") or []
    pnn = next((c[1] for c in channels if c[0] == role), "")
    return f"{name} [{pnn}]" if pnn else name


def _axis_name(results: ResultsLike, files: list, role: str, otherwise: str) -> str:
    """The x axis's marker: its channel's ``$PnS`` in the first of ``files`` that names one, else ``otherwise``."""
    gating = getattr(results, "gating", None) or {}
    for file in files:
        pns = next((c[2] for c in (gating.get(file) or {}).get("channels") or [] if c[0] == role and len(c) > 2), "")
        if pns:
            return str(pns)
    return otherwise


def _shared_limits(arrays: list) -> tuple[float, float]:
    """One range for the panels of a marker (isotype, baseline, follow-up): the bulk of all their
    events, so the three tubes are read on the same axes; out to a grid (:func:`_grid_limits`)."""
    finite = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=np.float64) for x in arrays) if len(a)]
    finite = [a for a in finite if len(a)]
    if not finite:
        return (0.0, 1.0)
    bulk = [quantiles(a, [0.001, 0.999]) for a in finite]
    low, high = min(float(b[0]) for b in bulk), max(float(b[1]) for b in bulk)
    return _grid_limits(low, high, 0.03)


def _scales(results: ResultsLike, files: list) -> dict:
    """role → the Transform the patient's figure values are on (the pipeline keeps each tube's in
    ``results.gating[file]["scales"]``; a patient's tubes share one scale per role)."""
    out: dict = {}
    gating = getattr(results, "gating", None) or {}
    for file in files:
        for role, spec in ((gating.get(file) or {}).get("scales") or {}).items():
            if role not in out:
                transform = transform_of(spec)
                if transform is not None:
                    out[role] = transform
    return out


def _histograms(ax, results: ResultsLike, tubes: list, marker: str, q: float, xlim: tuple, scale,
                thresholds, population: str, legend: bool = True) -> None:
    """The marker's histograms of the patient's tubes; ``legend``: name the tubes (in the first row: every
    row draws the same tubes alike)."""
    # filled: the controls (the follow-up's own, where it is another, hatched); lines: the stained tubes,
    # the follow-up's dashed (told apart in greyscale); thresholds dotted
    styles = [(COLOURS["isotype"], True, "-", ""), (COLOURS["baseline"], False, "-", ""),
              (COLOURS["followup"], False, "--", ""), (COLOURS["isotype"], False, "-", "////")]
    arrays = [results.values.get((file, marker)) if file else None for _, file in tubes]
    finite = [a[np.isfinite(a)] for a in arrays if a is not None and len(a)]
    if not finite:
        _no_data(ax, _literal(f"no {marker} values on {population}"))
        return
    bins = np.linspace(*xlim, 80)
    top = 0.0
    for j, ((label, file), values, (colour, filled, style, hatch)) in enumerate(zip(tubes, arrays, styles)):
        if values is None or not len(values):
            continue
        counts, _ = np.histogram(values, bins=bins, density=True)
        top = max(top, float(np.nanmax(counts, initial=0.0)))
        _steps(ax, counts, bins, fill=filled, color=colour, alpha=0.45 if filled else 1.0, linewidth=1.3,
               linestyle=style, hatch=hatch or None, label=_literal(label))
        if j in (1, 2):  # a stained tube: the threshold its control gives
            threshold = thresholds(file, marker, q)
            if np.isfinite(threshold):
                _vline(ax, threshold, color=colour, linestyle=":", linewidth=1.1)
    _title(ax, f"{_literal(marker)} on {_literal(population)} (dotted: thresholds)")
    ax.set_xlabel(_literal(marker), fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.set_xlim(*xlim)
    ax.set_ylim(0.0, 1.05 * top or 1.0)
    scale_axis(ax, "x", scale)
    ax.set_yticks([])
    if legend:
        ax.legend(fontsize=6, frameon=False, loc="upper right")


@dataclass(frozen=True)
class PanelRow:
    """One marker's row of the panel, from the template: the marker's role, its population (name, path,
    parent) and that population's own gate dimension on x (cd19 of CD19+), and the positivity quantile."""

    role: str
    population: str = "CD19+"
    path: str = ""
    parent: str = "Viable"
    x_role: str = "cd19"
    x_marker: str = "CD19"
    dims: tuple = ()  # the population's gate dimensions (a quadrant's cut on x is the one of x_role)
    quantile: float = 0.99


@dataclass(frozen=True)
class PanelLayout:
    """The panel's rows by marker name (:class:`PanelRow`), and how the figure and captions name them."""

    rows: dict = field(default_factory=dict)

    def row(self, marker: str) -> PanelRow:
        return self.rows.get(marker) or PanelRow(marker.lower())

    def _one(self, attribute: str, several: str) -> str:
        values = list(dict.fromkeys(getattr(r, attribute) for r in self.rows.values())) or [getattr(PanelRow(""), attribute)]
        return values[0] if len(values) == 1 else several

    @property
    def population(self) -> str:
        """The quantified population, or "each marker's population" where the markers have several."""
        return self._one("population", "each marker's population")

    @property
    def parent(self) -> str:
        return self._one("parent", "its parent")

    @property
    def x_marker(self) -> str:
        return self._one("x_marker", "its population's gate dimension")


def panel_layout(template_path: str) -> PanelLayout:
    from ..errors import CytokitError
    from ..gating.load import load_template

    try:
        template = load_template(template_path)
    except (CytokitError, OSError):
        return PanelLayout()
    by_name = {p.name: p for p in template.populations}
    rows = {}
    for m in template.markers:
        pop = by_name[m.population]
        x_role = template.axis_of(m.population) or ""
        role = template.roles.get(x_role)
        rows[m.name] = PanelRow(m.channel, m.population, template.path_of(m.population),
                                "all events" if pop.parent == "root" else pop.parent, x_role,
                                role.marker if role is not None and role.marker else x_role,
                                tuple(pop.gate.get("dims", ()) or ()), m.quantile)
    return PanelLayout(rows)


def _x_threshold(results: ResultsLike, file: str, row: PanelRow) -> float:
    """The population's cut on the x axis in ``file`` (its fitted threshold, or a quadrant's on that dimension)."""
    learned = (results.fitted.get(file) or {}).get(row.path) or {}
    if "threshold_" in learned and np.ndim(learned["threshold_"]) == 0:
        return float(learned["threshold_"])
    if "thresholds_" in learned and row.x_role in row.dims:
        try:
            return float(learned["thresholds_"][row.dims.index(row.x_role)])
        except (IndexError, TypeError, ValueError):
            pass
    return float("nan")
