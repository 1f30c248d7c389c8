"""Figures of an experiment: paired cohort plots, per-patient panels and gating hierarchies.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot's
global state, so figures can be made in worker processes and on headless machines.

Example::

    res = Experiment.from_folder("sample_fcs/modern", template="gating_templates/cll_cd19_7aad.yaml").run()
    res.plot.paired("LAG3")            # baseline → follow-up per patient
    res.plot.patient("CLL001")         # CD19 × marker dot plots + histograms
    res.plot.gates("CLL001_C2D1_stained.fcs")
    save_figures(res, "out")           # out/plots/*.png

"""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .experiment import Results
    from .gating.result import GatingResult

__all__ = [
    "METRICS", "ResultsPlotter", "figure_png", "plot_gates", "plot_paired", "plot_patient", "save_figures",
]

#: ``metric`` of :func:`plot_paired` → (column stem in ``paired``, ``cohort.metric``, axis label)
METRICS = {
    "pct_pos": ("pct_pos", "delta_pct_pos", "% positive"),
    "mfi": ("mfi", "log2_mfi_ratio", "median MFI"),
    "rmfi": ("rmfi", "delta_rmfi", "rMFI (stained / isotype median)"),
}
COLOURS = {"isotype": "#8c8c8c", "baseline": "#1f77b4", "followup": "#d62728", "gate": "#ff7f0e"}
PNG_DPI = 90


# ----------------------------------------------------------------------------- helpers


def _figure(width: float, height: float, *, left: float = 0.6, right: float = 0.15, top: float = 0.6,
            bottom: float = 0.5, wspace: float = 0.3, hspace: float = 0.5) -> Figure:
    """A figure with fixed margins in inches (constrained layout costs more than drawing)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, wspace=wspace, hspace=hspace)
    return fig


def figure_png(figure: Figure, *, dpi: int = PNG_DPI, palette: bool = True) -> bytes:
    """``figure`` as PNG bytes; ``palette`` quantises to 256 colours (3–4× smaller files).

    The palette image is made from the rendered pixels, not from a first PNG (encoding and
    decoding that one took a quarter of the time of a gating figure).
    """
    buffer = io.BytesIO()
    if not palette:
        figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
        return buffer.getvalue()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas, kept = FigureCanvasAgg(figure), (figure.dpi, figure.get_facecolor())
    figure.set_dpi(dpi)
    figure.set_facecolor("white")
    try:
        canvas.draw()
        image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    finally:
        figure.set_dpi(kept[0])
        figure.set_facecolor(kept[1])
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG")
    return buffer.getvalue()


def _figure_svg(figure: Figure) -> bytes:
    """SVG bytes that are the same for the same figure (no date, fixed element ids), so a rerun
    rewrites identical files."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "cytokit"}):
        figure.savefig(buffer, format="svg", facecolor="white", metadata={"Date": None})
    return buffer.getvalue()


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


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="#a00",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def slug(text: str) -> str:
    """A file- and anchor-safe name: ``"CLL001_C2D1 stained.fcs"`` → ``"CLL001_C2D1-stained-fcs"``."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", str(text)).strip("-") or "x"


def unique_slugs(names: Iterable[str], *, label: Callable[[str], str] = str) -> dict[str, str]:
    """``name → slug(label(name))``, made unique: names whose slugs collide get a short stable
    hash of the name appended (``"A.1"``, ``"A 1"`` → ``"A-1-…"`` twice, with different hashes)."""
    plain = {name: slug(label(name)) for name in dict.fromkeys(map(str, names))}
    counts = Counter(plain.values())
    return {name: text if counts[text] == 1 else f"{text}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"
            for name, text in plain.items()}


# ----------------------------------------------------------------------------- paired plot


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
                ax.annotate(str(patient), (1, a), xytext=(4, 0), textcoords="offset points", fontsize=6,
                            va="center", color="#444")
        if np.isfinite(before).any() and np.isfinite(after).any():  # nanmedian warns on all-NaN
            ax.plot([0, 1], [np.nanmedian(before), np.nanmedian(after)], "-", color="black", linewidth=2.5,
                    label="median")
            ax.legend(loc="best", fontsize=7, frameon=False)
    ax.set_xticks([0, 1], [baseline, followup])
    ax.set_xlim(-0.3, 1.45)
    ax.set_ylabel(label)
    row = None
    if cohort is not None and len(cohort):
        hit = cohort[(cohort["marker"] == marker) & (cohort["metric"] == cohort_metric)]
        row = hit.iloc[0] if len(hit) else None
    title = f"{marker}: {label}"
    if row is not None:
        title += (f"\nn={int(row['n_pairs'])}, median Δ={_fmt(row['median_delta'])} "
                  f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]\nWilcoxon p={_p(row['p_wilcoxon'])}")
    ax.set_title(title, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------- patient panel


def _tubes(samples: pd.DataFrame, patient: str, baseline: str, followup: str) -> list[tuple[str, str | None]]:
    """(label, file) for the patient's isotype, baseline and follow-up stained tubes."""
    rows = samples[samples["patient"] == patient]

    def pick(timepoint: str, isotype: bool) -> str | None:
        hit = rows[(rows["timepoint"] == timepoint) & ((rows["stain"].str.lower() == "isotype") == isotype)]
        return hit["file"].iloc[0] if len(hit) else None

    iso = pick(baseline, True) or pick(followup, True)
    iso_tp = baseline if pick(baseline, True) else followup
    return [(f"isotype {iso_tp}", iso), (f"{baseline} stained", pick(baseline, False)),
            (f"{followup} stained", pick(followup, False))]


def _transformed_threshold(markers: pd.DataFrame, values: dict, file: str, marker: str,
                           quantile: float) -> float:
    """The positivity threshold of ``file`` on the transformed axis (its isotype's quantile)."""
    row = markers[(markers["file"] == file) & (markers["marker"] == marker)]
    if row.empty:
        return float("nan")
    row = row.iloc[0]
    iso = markers[(markers["patient"] == row["patient"]) & (markers["timepoint"] == row["timepoint"])
                  & (markers["stain"].str.lower() == "isotype") & (markers["marker"] == marker)]
    source = iso["file"].iloc[0] if len(iso) else file
    control = values.get((source, marker))
    if control is None or not len(control):
        return float("nan")
    return float(np.quantile(control[np.isfinite(control)], quantile))


def plot_patient(results: Results, patient: str, *, quantiles: dict[str, float] | None = None) -> Figure:
    """The study panel of one patient: CD19 against each marker, and marker histograms.

    Columns: the isotype tube, the baseline and follow-up stained tubes (viable
    cells, CD19+ in colour) with the positivity threshold and the % positive of
    CD19+ cells above it; last column: isotype, baseline and follow-up histograms
    of the CD19+ cells. One row per marker.

    Parameters
    ----------
    results
        :class:`~cytokit.experiment.Results` of an experiment.
    patient
        A patient ID of ``results.samples``.
    quantiles
        Positivity quantile per marker (default: read from the template, else 0.99).
    """
    baseline, followup = results.baseline, results.followup
    if patient not in set(results.samples["patient"]):
        raise KeyError(f"patient {patient!r} is not in the results; patients: "
                       f"{sorted(results.samples['patient'].unique())}")
    marker_names = list(dict.fromkeys(results.markers["marker"])) if len(results.markers) else []
    if quantiles is None:
        quantiles = _template_quantiles(results.template_path)
    tubes = _tubes(results.samples, patient, baseline, followup)
    status = dict(zip(results.samples["file"], results.samples["status"]))
    errors = dict(zip(results.samples["file"], results.samples["error"]))
    n_rows = max(1, len(marker_names))
    fig = _figure(13.0, 3.0 * n_rows + 0.4, left=0.55, right=0.1, top=0.75, bottom=0.45, wspace=0.25,
                  hspace=0.55)
    fig.suptitle(f"Patient {patient}: CD19 × marker on viable cells; histograms on CD19+", fontsize=11)
    axes = fig.subplots(n_rows, 4, squeeze=False)
    if not marker_names:
        _no_data(axes[0][0], "no marker results")
    for i, marker in enumerate(marker_names):
        role = _role_of(results, marker)
        q = quantiles.get(marker, 0.99)
        for j, (label, file) in enumerate(tubes):
            ax = axes[i][j]
            ax.set_title(f"{label}" + (f"\n{file}" if file else ""), fontsize=8)
            frame = results.plot_events.get(file) if file else None
            if file is None:
                _no_data(ax, f"no {label} tube")
                continue
            if frame is None or frame.empty or role not in frame or "cd19" not in frame:
                _no_data(ax, f"not analysed: {errors.get(file) or status.get(file, 'missing')}"[:160])
                continue
            inside = frame["in_population"].to_numpy(bool)
            ax.scatter(frame["cd19"][~inside], frame[role][~inside], s=1, c="#c8c8c8", linewidths=0,
                       rasterized=True)
            colour = [COLOURS["isotype"], COLOURS["baseline"], COLOURS["followup"]][j]
            ax.scatter(frame["cd19"][inside], frame[role][inside], s=1.5, c=colour if j else "#505050",
                       linewidths=0, rasterized=True, alpha=0.6)
            threshold = _transformed_threshold(results.markers, results.values, file, marker, q)
            cd19_cut = _cd19_threshold(results, file)
            if np.isfinite(threshold):
                ax.axhline(threshold, color="black", linewidth=0.9, linestyle="--")
            if np.isfinite(cd19_cut):
                ax.axvline(cd19_cut, color="#555", linewidth=0.8, linestyle=":")
            row = results.markers[(results.markers["file"] == file) & (results.markers["marker"] == marker)]
            if len(row):
                ax.text(0.97, 0.97, f"{_fmt(row['pct_pos'].iloc[0])}% pos\nof CD19+", ha="right", va="top",
                        transform=ax.transAxes, fontsize=8, fontweight="bold",
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5})
            ax.set_xlabel("CD19", fontsize=8)
            ax.set_ylabel(marker, fontsize=8)
            ax.tick_params(labelsize=7)
        _histograms(axes[i][3], results, tubes, marker, q)
    return fig


def _histograms(ax, results: Results, tubes: list, marker: str, q: float) -> None:
    styles = [(COLOURS["isotype"], True), (COLOURS["baseline"], False), (COLOURS["followup"], False)]
    arrays = [results.values.get((file, marker)) if file else None for _, file in tubes]
    finite = [a[np.isfinite(a)] for a in arrays if a is not None and len(a)]
    if not finite:
        _no_data(ax, f"no CD19+ {marker} values")
        return
    low = min(np.quantile(a, 0.001) for a in finite)
    high = max(np.quantile(a, 0.999) for a in finite)
    bins = np.linspace(low, high, 80)
    for (label, file), values, (colour, filled) in zip(tubes, arrays, styles):
        if values is None or not len(values):
            continue
        ax.hist(values, bins=bins, density=True, histtype="stepfilled" if filled else "step", color=colour,
                alpha=0.45 if filled else 1.0, linewidth=1.3, label=label)
        if not filled:
            threshold = _transformed_threshold(results.markers, results.values, file, marker, q)
            if np.isfinite(threshold):
                ax.axvline(threshold, color=colour, linestyle="--", linewidth=0.9)
    ax.set_title(f"{marker} on CD19+ (dashed: thresholds)", fontsize=8)
    ax.set_xlabel(marker, fontsize=8)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False, loc="upper right")


def _template_quantiles(template_path: str) -> dict[str, float]:
    from .errors import CytokitError
    from .gating.load import load_template

    try:
        template = load_template(template_path)
    except (CytokitError, OSError):
        return {}
    return {m.name: m.quantile for m in template.markers}


def _role_of(results: Results, marker: str) -> str:
    """The template role of a marker name ("LAG3" → "lag3"), as in ``plot_events`` columns."""
    from .errors import CytokitError
    from .gating.load import load_template

    try:
        for m in load_template(results.template_path).markers:
            if m.name == marker:
                return m.channel
    except (CytokitError, OSError):
        pass
    return marker.lower()


def _cd19_threshold(results: Results, file: str) -> float:
    for path, learned in (results.fitted.get(file) or {}).items():
        if path.split("/")[-1].lower().startswith("cd19") and "threshold_" in learned:
            return float(learned["threshold_"])
    return float("nan")


# ----------------------------------------------------------------------------- gating hierarchy


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
    fig.suptitle(title if title is not None else str(result.sample.path or "sample"), fontsize=9)
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
        ax.set_title(f"{name} ⊂ {parent.split('/')[-1]}\n{count:,} events ({_fmt(pct)}% of parent)", fontsize=8)
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
            return f"{role or dim} [{dim}{', ' + stain if stain else ''}]"

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
            ax.text(0.02, 0.02, flag[:120], transform=ax.transAxes, fontsize=7, color="#b00000", va="bottom",
                    wrap=True, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#b00000", "pad": 2})
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


# ----------------------------------------------------------------------------- results plotter


class ResultsPlotter:
    """Figures of one :class:`~cytokit.experiment.Results` (``results.plot``).

    Gating figures re-gate the file with the results' template (its isotype
    first). The last ``cache_size`` gated files are kept (a tube group is 2–4
    files), so a figure and the report's captions of one file gate it once.
    """

    def __init__(self, results: Results, *, cache_size: int = 4) -> None:
        from collections import OrderedDict

        self.results = results
        self.cache_size = cache_size
        self._gated: OrderedDict[str, GatingResult] = OrderedDict()
        self._png: dict[tuple[str, str], bytes] = {}

    def _keep(self, file: str, result: GatingResult) -> GatingResult:
        self._gated[file] = result
        self._gated.move_to_end(file)
        while len(self._gated) > max(1, self.cache_size):
            self._gated.popitem(last=False)
        return result

    def png(self, kind: str, name: str) -> bytes:
        """PNG bytes of ``self.<kind>(name)`` (``kind``: ``paired``, ``patient`` or ``gates``), drawn once
        per plotter, so ``plots/`` and the report share them; figures drawn during the analysis
        (``results.figures``) are used as they are."""
        key = (kind, name)
        if key not in self._png:
            drawn = self.results.figures.get(key)
            self._png[key] = drawn if drawn is not None else figure_png(getattr(self, kind)(name))
        return self._png[key]

    def paired(self, marker: str, *, metric: str = "pct_pos") -> Figure:
        """Baseline → follow-up per patient for ``marker`` (see :func:`plot_paired`).

        Raises
        ------
        KeyError
            ``marker`` is not a marker of the results.
        """
        res = self.results
        markers = sorted(set(res.markers["marker"])) if len(res.markers) else []
        if marker not in markers:
            raise KeyError(f"marker {marker!r} is not in the results; markers: {markers}")
        return plot_paired(res.paired, marker, cohort=res.cohort, metric=metric, baseline=res.baseline,
                           followup=res.followup)

    def patient(self, patient: str) -> Figure:
        """The patient's CD19 × marker panel and histograms (see :func:`plot_patient`)."""
        return plot_patient(self.results, patient)

    def gates(self, file: str) -> Figure:
        """The gating hierarchy of one file (see :func:`plot_gates`)."""
        result = self.gating(file)
        return plot_gates(result, title=f"{file}  ({len(result.scale):,} events)")

    def gating(self, file: str) -> GatingResult:
        """``file`` gated again with the results' template (its matched isotype first).

        Raises
        ------
        KeyError
            ``file`` is not one of the results' files.
        CytokitError
            The file cannot be read or gated (as when the results were made).
        """
        if file in self._gated:
            self._gated.move_to_end(file)
            return self._gated[file]
        import warnings

        from .fcs import FCSWarning, read_fcs
        from .gating.load import load_template

        res = self.results
        if file not in res.paths:
            raise KeyError(f"{file!r} is not a file of these results; files: {sorted(res.paths)}")
        template = load_template(res.template_path)
        row = res.samples[res.samples["file"] == file].iloc[0]

        def read(name: str):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FCSWarning)
                return read_fcs(res.paths[name])

        sample = read(file)
        if str(row["stain"]).lower() == "isotype":
            group = res.samples[(res.samples["patient"] == row["patient"])
                                & (res.samples["timepoint"] == row["timepoint"])
                                & (res.samples["stain"].str.lower() != "isotype")
                                & (res.samples["status"] == "ok")]
            reference = template.resolve_channels(read(group["file"].iloc[0])) if len(group) else None
            channels = template.resolve_channels(sample, reference=reference)
            result = template.apply(sample, is_control=True, channels=channels)
        else:
            iso = res.samples[(res.samples["patient"] == row["patient"])
                              & (res.samples["timepoint"] == row["timepoint"])
                              & (res.samples["stain"].str.lower() == "isotype")]
            control = None
            reference = template.resolve_channels(sample)
            if len(iso) and iso["file"].iloc[0] in res.paths:
                iso_file = iso["file"].iloc[0]
                control = self._gated.get(iso_file)
                if control is None:
                    iso_sample = read(iso_file)
                    channels = template.resolve_channels(iso_sample, reference=reference)
                    control = self._keep(iso_file, template.apply(iso_sample, is_control=True,
                                                                  channels=channels))
            result = template.apply(sample, control=control)
        return self._keep(file, result)


# ----------------------------------------------------------------------------- saving


def save_figures(results: Results, out_dir: str | Path, *, plotter: ResultsPlotter | None = None,
                 dpi: int = PNG_DPI) -> list[Path]:
    """Write every figure of ``results`` under ``out_dir/plots/``, atomically.

    ``paired_<marker>.png`` and ``.svg`` per marker, ``patient_<patient>.png`` per
    patient, ``gates_<file>.png`` per analysed file (names through :func:`unique_slugs`:
    a short hash is appended where two names would give the same file). Gating and patient
    figures drawn during the analysis (``Experiment.run(figures=True)``) are written as they are;
    otherwise the files are gated again, and those that cannot be are skipped (their
    errors are in ``results.samples``).

    Returns
    -------
    list of Path
        The files written.
    """
    from ._files import write_atomic
    from .errors import CytokitError

    plotter = plotter or ResultsPlotter(results)
    folder = Path(out_dir) / "plots"
    written: list[Path] = []

    def save(kind: str, key: str, name: str) -> None:
        png = plotter.png(kind, key) if dpi == PNG_DPI else figure_png(getattr(plotter, kind)(key), dpi=dpi)
        written.append(write_atomic(folder / f"{name}.png", png))

    markers = unique_slugs(results.markers["marker"]) if len(results.markers) else {}
    for marker, name in markers.items():
        save("paired", marker, f"paired_{name}")
        written.append(write_atomic(folder / f"paired_{name}.svg", _figure_svg(plotter.paired(marker))))
    patients = unique_slugs(sorted(p for p in results.samples["patient"].astype(str).unique() if p.strip()))
    for patient, name in patients.items():
        save("patient", patient, f"patient_{name}")
    files = unique_slugs(results.samples["file"], label=lambda file: Path(file).stem)
    for file in results.samples.loc[results.samples["status"] != "error", "file"]:
        try:
            save("gates", file, f"gates_{files[file]}")
        except (CytokitError, KeyError):
            continue
    return written
