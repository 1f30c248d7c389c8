"""One patient's tube group, from FCS files to tables: the unit of work of every executor.

:func:`analyse_group` reads a patient's tubes, gates each timepoint's control tubes (isotype,
FMO, unstimulated, unstained) and then its stained tubes against their controls, quantifies the
markers, checks quality and compares baseline with follow-up while the events are in memory. It is a pure function of its inputs (paths, not
bytes), so it runs the same in this process, a worker process or on a Dask worker, and its
:class:`GroupResult` is what the cache stores and :func:`cytokit.results.assemble` joins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import metadata
from .controls import control_kind
from .errors import CytokitError, GateError, MetadataError
from .paired import paired_table
from ._sorted import ascending, sorted_quantiles
from .stats import MARKER_COLUMNS

SAMPLE_COLUMNS = ["file", "patient", "timepoint", "stain", "status", "error", "quality", "control_file", "control_of"]
POPULATION_COLUMNS = ["file", "population", "parent", "count", "pct_parent", "pct_total", "confidence", "flag"]
#: events of the quantified population's parent kept per file for the patient figures
PLOT_EVENTS = 5000


@dataclass
class GroupResult:
    """What :func:`analyse_group` found in one tube group (tables in the columns of ``docs/outputs.md``)."""

    samples: pd.DataFrame
    """One row per file of the group (:data:`SAMPLE_COLUMNS`): its status, error and quality flags."""
    populations: pd.DataFrame
    """Every gated file's population counts (:data:`POPULATION_COLUMNS`)."""
    markers: pd.DataFrame
    """Every gated file's marker statistics (:data:`cytokit.stats.MARKER_COLUMNS`), in file order."""
    paired: pd.DataFrame
    """Baseline against follow-up per marker and comparison (:data:`cytokit.paired.PAIRED_COLUMNS`); empty
    without pairing."""
    values: dict = field(default_factory=dict, repr=False)
    """(file, marker) → the marker population's finite values on the gating scale, sorted: every
    event's (float64) while the shift statistics are computed (float32 moved ``pb_tx`` in the third digit), then
    their :func:`quantile_sketch` for the figures."""
    plot_events: dict = field(default_factory=dict, repr=False)
    """file → a subsample of the quantified population's parent for the patient figures."""
    fitted: dict = field(default_factory=dict, repr=False)
    """file → population path → the learned values of its fitted gate."""
    gating: dict = field(default_factory=dict, repr=False)
    """file → a few FCS keywords and the channel of each role (:meth:`GatingResult.summary`), and
    ``scales``: role → the transform of its ``values`` and ``plot_events`` (kind and parameters)."""
    figures: dict = field(default_factory=dict, repr=False)
    """("gates", file) → PNG bytes; ("patient", id) → {"png", "files", "markers"} it was drawn from."""
    drew_figures: bool = False
    """Figures were asked for (a cache entry without them cannot serve a run that draws them)."""
    template_path: str = ""
    comparisons: tuple = ()
    """The ``(baseline, followup)`` timepoints compared, in order (empty without pairing)."""

    @property
    def baseline(self) -> str:
        """The first comparison's baseline (the patient panel's), or ``""``."""
        return self.comparisons[0][0] if self.comparisons else ""

    @property
    def followup(self) -> str:
        """The first comparison's follow-up, or ``""``."""
        return self.comparisons[0][1] if self.comparisons else ""


def analyse_group(rows: list[dict], template_path: str, *, reference_path: str | None = None,
                  min_events: int = 500, pairing: metadata.Comparisons | None = None,
                  figures: bool = False, pooled: dict | None = None, panel_path: str | None = None) -> GroupResult:
    """Gate and quantify one patient's tubes: at each timepoint the controls, then the stained tubes.

    Errors of one file are caught and reported in its ``samples`` row; they never stop the
    group's other files.

    Parameters
    ----------
    rows
        The group's files: ``file, patient, timepoint, stain, path`` and optionally ``status``
        (``unpaired`` files are analysed but stay out of pairing) and ``control_file`` (a stained
        tube's control; without it, the one control tube of its timepoint).
    template_path
        The gating template.
    reference_path
        A stained tube of the study whose detectors an isotype tube borrows when no stained
        tube of its patient can be read.
    min_events
        Fewer events in the quantified population is a quality flag.
    pairing
        ``(baseline, followup)`` timepoints, or a sequence of such pairs, compared here, where the
        events are: one ``paired`` row per patient × marker × population per comparison.
    figures
        Draw each analysed file's gating figure and the patient's panel here too.
    pooled
        The template's ``pool: true`` gates, fitted on every file of the run.
    panel_path
        A panel sheet over the template's ``panel`` key (:func:`~cytokit.load_template`'s ``panel``).
    """
    from .gating.load import load_template

    template = load_template(template_path, panel=panel_path)
    template.pooled = pooled or {}
    group = _Group(rows, template)
    group.read_tubes()
    fallback = group.resolve_stained(reference_path)
    for timepoint in dict.fromkeys(r["timepoint"] for r in rows):
        group.gate_timepoint(timepoint, fallback)
    result = group.tables(min_events=min_events, figures=figures)
    result.template_path, result.drew_figures = template_path, figures
    if pairing is not None:
        result.comparisons = metadata.comparisons_of(pairing)
        tables = [paired_table(result.markers, result.samples, result.values, baseline=b, followup=f)
                  for b, f in result.comparisons]
        result.paired = tables[0] if len(tables) == 1 else pd.DataFrame(
            [row for table in tables for row in table.to_dict("records")], columns=tables[0].columns)
    result.values = {key: quantile_sketch(v) for key, v in result.values.items()}
    if pairing is not None and figures and rows:
        from .plots.patient import has_panel

        patient = rows[0]["patient"]
        if has_panel(result, patient):
            result.figures[("patient", patient)] = _patient_figure(result, patient)
    return result


class _Group:
    """The state of one :func:`analyse_group` call: its files' samples, channels, results and errors."""

    def __init__(self, rows: list[dict], template) -> None:
        self.rows, self.template = rows, template
        self.meta = {r["file"]: {k: r[k] for k in ("file", "patient", "timepoint", "stain")} for r in rows}
        self.status = {r["file"]: (r.get("status", "ok"), "") for r in rows}
        self.samples: dict = {}  # file → Sample
        self.resolved: dict = {}  # stained file → role → $PnN
        self.results: dict = {}  # file → GatingResult
        self.controls: dict[str, str | None] = {}  # file → the analysed control it was gated against

    def fail(self, name: str, exc: Exception) -> None:
        message = (str(exc) if isinstance(exc, CytokitError)
                   else f"unexpected {type(exc).__name__} while gating (a cytokit bug; please report it): {exc}")
        notes = getattr(self.samples.get(name), "data_warnings", None)
        if notes:  # what the reader doubted in this file may be why (a duplicate $PnN renamed)
            message += f" (reading this file: {'; '.join(notes)})"
        self.status[name] = ("error", message)

    def is_control(self, name: str) -> bool:
        return control_kind(self.meta[name]["stain"]) is not None

    def control_of(self, name: str) -> str | None:
        """A stained tube's control: its row's ``control_file``, else its timepoint's one control tube."""
        row = next(r for r in self.rows if r["file"] == name)
        if row.get("control_file"):
            return row["control_file"] if row["control_file"] in self.meta else None
        return next((r["file"] for r in self.rows if r["timepoint"] == row["timepoint"]
                     and self.is_control(r["file"])), None)

    def read_tubes(self) -> None:
        for r in self.rows:
            try:
                sample = _read(r["path"])
                if not len(sample.events):  # valid FCS (an aborted acquisition), but nothing to measure
                    raise GateError(f"{r['path']}: the file holds no events ($TOT 0): nothing to gate")
                self.samples[r["file"]] = self.template.label(sample)  # the panel sheet's markers
            except CytokitError as exc:
                self.fail(r["file"], exc)
            except Exception as exc:  # noqa: BLE001 - one file's reader bug must not lose the batch
                self.status[r["file"]] = ("error", f"{r['path']}: unexpected {type(exc).__name__} while reading "
                                                   f"(a cytokit bug; please report it): {exc}")

    def resolve_stained(self, reference_path: str | None) -> dict | None:
        """Each stained tube's detectors; returns those a control borrows when no stained tube of its
        own or of its timepoint has them (another timepoint's, else the study's reference tube's)."""
        for r in self.rows:
            if not self.is_control(r["file"]) and r["file"] in self.samples:
                try:
                    self.resolved[r["file"]] = self.template.resolve_channels(self.samples[r["file"]])
                except CytokitError as exc:
                    self.fail(r["file"], exc)
        fallback = next(iter(self.resolved.values()), None)
        if fallback is None and reference_path:
            try:
                fallback = self.template.resolve_channels(_read(reference_path))
            except CytokitError:
                fallback = None
        return fallback

    def gate_timepoint(self, timepoint: str, fallback: dict | None) -> None:
        """The timepoint's controls first (each its own control), then its stained tubes against theirs."""
        here = [r["file"] for r in self.rows if r["timepoint"] == timepoint and r["file"] in self.samples]
        for name in here:
            if self.is_control(name):
                self.gate_control(name, fallback)
        for name in here:
            if name in self.resolved:
                self.gate_stained(name, fallback)

    def gate_control(self, name: str, fallback: dict | None) -> None:
        """A control tube, once, on the detectors of a stained tube it serves (else of its timepoint's)."""
        if name in self.controls or name not in self.samples:
            return
        self.controls[name] = None
        timepoint = self.meta[name]["timepoint"]
        stained = [r["file"] for r in self.rows if not self.is_control(r["file"])]
        served = [n for n in stained if self.control_of(n) == name]
        near = served + [n for n in stained if self.meta[n]["timepoint"] == timepoint and n not in served]
        resolved = [n for n in near if n in self.resolved]
        reference = self.resolved[resolved[0]] if resolved else fallback
        failed = [n for n in near if self.status[n][0] == "error"]  # stained tubes not read or resolved
        try:
            channels = self.template.resolve_channels(self.samples[name], reference=reference)
            self.results[name] = self.template.apply(self.samples[name], is_control=True, channels=channels)
            self.controls[name] = name
        except Exception as exc:  # noqa: BLE001 - reported in the file's row; the batch goes on
            cause = exc
            if reference is None and failed:  # the real cause is the stained tube's
                cause = MetadataError(f"a control tube takes its detectors from its stained tube, and "
                                      f"{failed[0]} failed: {self.status[failed[0]][1]}")
            elif resolved and isinstance(exc, CytokitError):  # the stained tube's detectors are not this tube's
                absent = [f"{role} on {channel}" for role, channel in reference.items()
                          if channel not in self.samples[name].events.columns]
                if absent:
                    cause = MetadataError(f"{exc}; {resolved[0]}, whose detectors a control tube takes, measures "
                                          f"{', '.join(absent)}, a channel this tube has not")
            self.fail(name, cause)

    def gate_stained(self, name: str, fallback: dict | None) -> None:
        control = self.control_of(name)
        if control is not None and control in self.samples:
            self.gate_control(control, fallback)
        if control is not None and self.status[control][0] == "error":
            kind = control_kind(self.meta[control]["stain"])
            self.fail(name, MetadataError(f"its {kind} tube {control} could not be analysed: "
                                          f"{self.status[control][1]}"))
            return
        self.controls[name] = control if control in self.results else None
        try:
            self.results[name] = self.template.apply(self.samples[name], control=self.results.get(control))
        except Exception as exc:  # noqa: BLE001 - reported in the file's row; the batch goes on
            self.fail(name, exc)

    def tables(self, *, min_events: int, figures: bool) -> GroupResult:
        """Populations, markers, quality and the figures' inputs of every gated file."""
        from .quality import quality_flags
        from .stats import population_rows, quantify

        template = self.template
        quantified = list(dict.fromkeys(template.path_of(m.population) for m in template.markers))
        populations, markers, quality = [], [], {}
        shared = _shared_scales(list(self.results.values()))
        out = GroupResult(samples=pd.DataFrame(), populations=pd.DataFrame(), markers=pd.DataFrame(),
                          paired=pd.DataFrame())
        for name, result in self.results.items():
            populations.extend(population_rows(result, self.meta[name]))
            control = self.controls.get(name)
            markers.extend(quantify(result, None if self.is_control(name) else self.results.get(control),
                                    meta=self.meta[name], is_control=self.is_control(name),
                                    isotype_meta=self.meta.get(control) if control else None,
                                    min_events=min_events))
            quality[name] = quality_flags(self.samples[name], result, population=quantified, min_events=min_events)
            out.fitted[name] = result.fitted()
            for marker in template.markers:
                if marker.channel in result.channels:
                    mask = result.membership[template.path_of(marker.population)]
                    values = _on_shared_scale(result, marker.channel, mask, shared, dtype=np.float64)
                    out.values[(name, marker.name)] = np.sort(values[np.isfinite(values)])  # once, for all below
            out.plot_events[name] = _plot_events(result, shared)
            out.gating[name] = {**result.summary(), "scales": _scales(result, shared)}
            if figures:
                from .plots import plot_gates

                out.figures[("gates", name)] = plot_gates(
                    result, title=f"{name}  ({len(result.scale):,} events)", raster=True).png()
        served = {n: [s for s in self.controls if s != n and self.controls[s] == n] for n in self.controls}
        out.samples = pd.DataFrame(
            [{**self.meta[r["file"]], "status": self.status[r["file"]][0], "error": self.status[r["file"]][1],
              "quality": "; ".join(quality.get(r["file"], [])),
              "control_file": "" if self.is_control(r["file"]) else self.controls.get(r["file"]) or "",
              "control_of": "; ".join(served.get(r["file"], []))} for r in self.rows], columns=SAMPLE_COLUMNS)
        out.populations = pd.DataFrame(populations, columns=POPULATION_COLUMNS)
        out.markers = pd.DataFrame(markers, columns=MARKER_COLUMNS)
        return out


def quantile_sketch(values: np.ndarray, size: int = PLOT_EVENTS) -> np.ndarray:
    """``values``' finite quantiles at ``size`` evenly spaced ranks (all of them, sorted, when fewer):
    what a histogram or a percentile of the distribution needs, in a fixed size. After pairing, a
    group's values travel to the parent and the cache only as these (they were 3.9 MB of a
    patient's 4.1 MB at 100,000 events per tube, 1 GB in the parent for 1,000 files)."""
    finite = ascending(values[np.isfinite(values)])
    if finite.size <= size:
        return finite
    return sorted_quantiles(finite, (np.arange(size) + 0.5) / size)



def _read(path: str):
    from .fcs import read_fcs
    from .quality import noting_misreads

    with noting_misreads(path) as notes:
        sample = read_fcs(path, threads=1)  # the batch runs one group per core
    sample.data_warnings = notes
    return sample


def _patient_figure(group: GroupResult, patient: str) -> dict:
    """The patient's panel drawn from the group alone, with what it was drawn from: the run uses it
    only where its own tables hold the same files and markers (:func:`cytokit.results.assemble`)."""
    from dataclasses import replace

    from .plots import plot_patient

    markers = group.markers.sort_values(["file", "marker"], kind="stable").reset_index(drop=True)
    png = plot_patient(replace(group, markers=markers), patient, raster=True).png()
    return {"png": png, "files": sorted(group.samples["file"]), "markers": list(dict.fromkeys(markers["marker"]))}


def _shared_scales(results: list) -> dict:
    """role → the one transform every tube of the group is put on, for roles whose tubes' own
    transforms differ (``t: auto`` after an instrument change gave another top of scale): the one
    with the highest top, so that no tube's events are squeezed past its end. Comparing a baseline
    and a follow-up tube on two scales moved every shift metric though nothing had changed."""
    shared = {}
    roles = dict.fromkeys(role for result in results for role in result.channels)
    for role in roles:
        transforms = [r.transforms.get(r.dimension(role)) for r in results if role in r.channels]
        if len(transforms) > 1 and any(t != transforms[0] for t in transforms[1:]) and None not in transforms:
            shared[role] = max(transforms, key=lambda t: getattr(t, "t", 0.0))
    return shared


def _scales(result, shared: dict) -> dict:
    """role → the transform its ``values`` and ``plot_events`` are on (``kind`` and Gating-ML
    parameters, JSON for the cache), so the figures label their axes in scale values."""
    out = {}
    for role in result.channels:
        transform = shared.get(role) or result.transforms.get(result.dimension(role))
        if transform is not None and hasattr(transform, "kind"):
            out[role] = {"kind": transform.kind, **{k: float(v) for k, v in transform.params.items()}}
    return out


def _on_shared_scale(result, role: str, rows, shared: dict, dtype=np.float32) -> np.ndarray:
    """``role``'s values on ``rows`` of a tube, on the group's shared scale (float32 for figures)."""
    if role not in shared:
        return result.transformed(result.dimension(role), rows).astype(dtype, copy=False)
    return shared[role].apply(result.scale[result.channels[role]].to_numpy()[rows]).astype(dtype, copy=False)


def _plot_events(result, shared: dict) -> pd.DataFrame:
    """A subsample of the quantified populations' parents, on the group's shared scale, for the patient
    figures: the markers' roles and each population's own gate dimension (CD19 of CD19+), and per
    quantified population ``P`` (its path) the columns ``in:P`` (in it) and ``of:P`` (in its parent)."""
    template = result.template
    if not template.markers:
        return pd.DataFrame()
    names = list(dict.fromkeys(m.population for m in template.markers))
    paths = [template.path_of(name) for name in names]
    parents = {path: result.parents.get(path, "root") for path in paths}
    n = len(result.scale)
    of = {path: result.membership[parent] if parent != "root" else np.ones(n, dtype=bool)
          for path, parent in parents.items()}
    shown = {m.channel for m in template.markers} | {template.axis_of(name) for name in names}
    roles = [r for r in result.channels if r in shown]
    index = np.flatnonzero(np.logical_or.reduce(list(of.values())))
    if len(index) > PLOT_EVENTS:
        index = np.sort(np.random.default_rng(0).choice(index, PLOT_EVENTS, replace=False))
    frame = pd.DataFrame({role: _on_shared_scale(result, role, index, shared) for role in roles})
    for path in paths:
        frame[f"in:{path}"] = result.membership[path][index]
        frame[f"of:{path}"] = of[path][index]
    return frame
