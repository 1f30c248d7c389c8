"""The notebook API: a folder of FCS files + a gating template + a sample sheet → tidy results.

Example (``examples/cll_lenalidomide.ipynb`` runs it in the test suite)::

    exp = Experiment.from_folder("sample_fcs/modern", template="gating_templates/cll_cd19_7aad.yaml")
    res = exp.run()
    res.paired.head()

The unit of work is a *tube group*: one patient's tubes at every timepoint. At each
timepoint the isotype is gated first; its populations then give the positivity
thresholds of the stained tubes; then the baseline and follow-up tubes are compared.
``cytokit run`` runs the same code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import metadata
from .errors import CytokitError, MetadataError

SAMPLE_COLUMNS = ["file", "patient", "timepoint", "stain", "status", "error", "quality"]
POPULATION_COLUMNS = ["file", "population", "parent", "count", "pct_parent", "pct_total", "flag"]
SHIFT_METRICS = ["overton_pct_pos", "ks_d", "pb_chi2", "pb_tx", "emd"]
PAIRED_COLUMNS = [
    "patient", "marker", "population", "baseline", "followup", "pct_pos_baseline", "pct_pos_followup",
    "delta_pct_pos", "mfi_baseline", "mfi_followup", "log2_mfi_ratio", "rmfi_baseline", "rmfi_followup",
    "delta_rmfi", *SHIFT_METRICS, "n_baseline", "n_followup", "stain", "flag",
]
PLOT_EVENTS = 5000


# ----------------------------------------------------------------------------- one tube group


def analyse_group(rows: list[dict], template_path: str, *, reference_path: str | None = None,
                  min_events: int = 500, pairing: tuple[str, str] | None = None, figures: bool = False) -> dict:
    """Gate and quantify one patient's tubes: at each timepoint the isotype, then the stained tubes.

    A pure function of its inputs (paths, not bytes), so it runs the same in a
    worker process or on a Dask worker. Errors of one file are caught and reported
    in its ``samples`` row; they never stop the group's other files.
    ``reference_path``: a stained tube of the study whose detectors an isotype tube
    borrows when no stained tube of its patient can be read.
    ``pairing``: ``(baseline, followup)`` timepoints; their comparison (``paired_table``
    rows, with the distribution-shift metrics) is computed here, where the events are.
    ``figures``: draw the gating figure of each analysed file and the patient's panel here
    too (PNG bytes in ``figures[("gates", file)]`` and ``figures[("patient", patient)]``),
    where the events are, instead of gating every file again to plot it.
    """
    from .fcs import FCSWarning, read_fcs
    from .gating.load import load_template
    from .quality import quality_flags
    from .stats import MARKER_COLUMNS, population_rows, quantify

    template = load_template(template_path)
    out: dict = {"samples": [], "populations": [], "markers": [], "values": {}, "plot_events": {}, "fitted": {},
                 "gating": {}, "figures": {}, "drew_figures": figures}
    meta = {r["file"]: {k: r[k] for k in ("file", "patient", "timepoint", "stain")} for r in rows}
    status = {r["file"]: (r.get("status", "ok"), "") for r in rows}  # "unpaired" files stay out of pairing
    samples, resolved, results, quality = {}, {}, {}, {}

    def fail(name: str, exc: Exception) -> None:
        status[name] = ("error", str(exc) if isinstance(exc, CytokitError)
                        else f"unexpected {type(exc).__name__} while gating (a cytokit bug; please report it): {exc}")

    def read(path: str):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FCSWarning)
            return read_fcs(path, threads=1)  # the batch runs one group per core

    for r in rows:
        try:
            samples[r["file"]] = read(r["path"])
        except CytokitError as exc:
            fail(r["file"], exc)
    for r in rows:  # the stained tubes' detectors: their own, and the reference of their isotypes
        if r["stain"].lower() != metadata.ISOTYPE and r["file"] in samples:
            try:
                resolved[r["file"]] = template.resolve_channels(samples[r["file"]])
            except CytokitError as exc:
                fail(r["file"], exc)
    fallback = next(iter(resolved.values()), None)  # another timepoint's stained tube of the patient
    if fallback is None and reference_path:
        try:
            fallback = template.resolve_channels(read(reference_path))
        except CytokitError:
            fallback = None

    controls: dict[str, str | None] = {}  # stained or isotype file → its timepoint's isotype file
    for timepoint in dict.fromkeys(r["timepoint"] for r in rows):
        here = [r["file"] for r in rows if r["timepoint"] == timepoint and r["file"] in samples]
        iso = [n for n in here if meta[n]["stain"].lower() == metadata.ISOTYPE]
        stained = [n for n in here if n in resolved]
        reference = resolved[stained[0]] if stained else fallback
        control = None
        failed = [r["file"] for r in rows if r["timepoint"] == timepoint and r["stain"] != metadata.ISOTYPE
                  and status[r["file"]][0] == "error"]  # stained tubes that could not be read or resolved
        for name in iso:
            try:
                channels = template.resolve_channels(samples[name], reference=reference)
                results[name] = template.apply(samples[name], is_control=True, channels=channels)
                control = name
            except Exception as exc:  # noqa: BLE001 - reported in the file's row; the batch goes on
                if reference is None and failed:  # the real cause is the stained tube's
                    exc = MetadataError(f"an isotype tube takes its detectors from its stained tube, and "
                                        f"{failed[0]} failed: {status[failed[0]][1]}")
                fail(name, exc)
        for name in stained:
            if iso and control is None:
                fail(name, MetadataError(f"its isotype tube {iso[0]} could not be analysed: {status[iso[0]][1]}"))
                continue
            try:
                results[name] = template.apply(samples[name], control=results.get(control))
            except Exception as exc:  # noqa: BLE001 - reported in the file's row; the batch goes on
                fail(name, exc)
        controls.update({n: control for n in here})

    quantified = template.path_of(template.markers[0].population) if template.markers else None
    for name, result in results.items():
        out["populations"].extend(population_rows(result, meta[name]))
        is_iso = meta[name]["stain"].lower() == metadata.ISOTYPE
        iso_name = controls[name]
        rows_m = quantify(result, None if is_iso else results.get(iso_name), meta=meta[name], is_control=is_iso,
                          isotype_meta=meta.get(iso_name) if iso_name else None)
        out["markers"].extend(rows_m)
        quality[name] = quality_flags(samples[name], result, population=quantified, min_events=min_events)
        out["fitted"][name] = result.fitted()
        for marker in template.markers:
            path = template.path_of(marker.population)
            channel = result.channels.get(marker.channel)
            if channel is None:
                continue
            mask = result.membership[path]
            out["values"][(name, marker.name)] = result.transformed(channel, mask).astype(np.float32)
        out["plot_events"][name] = _plot_events(result)
        out["gating"][name] = result.summary()
        if figures:
            from .plots import figure_png, plot_gates

            out["figures"][("gates", name)] = figure_png(
                plot_gates(result, title=f"{name}  ({len(result.scale):,} events)"))
    for r in rows:
        name = r["file"]
        state, error = status[name]
        out["samples"].append({**meta[name], "status": state, "error": error,
                               "quality": "; ".join(quality.get(name, []))})
    if pairing is not None:
        paired = paired_table(pd.DataFrame(out["markers"], columns=MARKER_COLUMNS), pd.DataFrame(out["samples"]),
                              out["values"], baseline=pairing[0], followup=pairing[1])
        out["paired"] = paired.to_dict("records")
    if figures and pairing is not None and rows:
        patient = rows[0]["patient"]
        out["figures"][("patient", patient)] = _patient_figure(out, patient, template_path, pairing)
    return out


def _patient_figure(out: dict, patient: str, template_path: str, pairing: tuple[str, str]) -> dict:
    """The patient's panel drawn from the group alone, with what it was drawn from: the parent
    uses it only where its own tables hold the same files and markers (:func:`assemble`)."""
    from .plots import figure_png, plot_patient
    from .stats import MARKER_COLUMNS

    markers = pd.DataFrame(out["markers"], columns=MARKER_COLUMNS).sort_values(["file", "marker"], kind="stable")
    group = Results(samples=pd.DataFrame(out["samples"], columns=SAMPLE_COLUMNS), populations=pd.DataFrame(),
                    markers=markers.reset_index(drop=True), paired=pd.DataFrame(), cohort=pd.DataFrame(),
                    values=out["values"], plot_events=out["plot_events"], fitted=out["fitted"],
                    template_path=template_path, baseline=pairing[0], followup=pairing[1])
    return {"png": figure_png(plot_patient(group, patient)), "files": sorted(group.samples["file"]),
            "markers": list(dict.fromkeys(group.markers["marker"]))}


def _plot_events(result) -> pd.DataFrame:
    """A subsample of the marker population's parent, transformed, for the patient figures."""
    template = result.template
    if not template.markers:
        return pd.DataFrame()
    path = template.path_of(template.markers[0].population)
    parent = result.parents.get(path, "root")
    mask = result.membership[parent] if parent != "root" else np.ones(len(result.scale), dtype=bool)
    roles = [r for r in result.channels if r in {m.channel for m in template.markers} | {"cd19"}]
    index = np.flatnonzero(mask)
    if len(index) > PLOT_EVENTS:
        index = np.sort(np.random.default_rng(0).choice(index, PLOT_EVENTS, replace=False))
    frame = pd.DataFrame({role: result.transformed(result.channels[role], index).astype(np.float32)
                          for role in roles})
    frame["in_population"] = result.membership[path][index]
    return frame


# ----------------------------------------------------------------------------- pairing and the cohort


def paired_table(markers: pd.DataFrame, samples: pd.DataFrame, values: dict, *, baseline: str,
                 followup: str) -> pd.DataFrame:
    """One row per patient × marker × population (× stain, when a timepoint has several stained
    tubes) comparing baseline with follow-up stained tubes."""
    ok = set(samples.loc[samples["status"] == "ok", "file"])
    stained = markers[(markers["stain"] != metadata.ISOTYPE) & markers["file"].isin(ok)]
    rows = []
    for _, group in stained.groupby(["patient", "marker", "population"]):
        for b, f in _tube_pairs(group[group["timepoint"] == baseline], group[group["timepoint"] == followup]):
            rows.append(_paired_row(b, f, values, baseline=baseline, followup=followup))
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def _tube_pairs(base: pd.DataFrame, follow: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    """A patient's baseline and follow-up stained tubes of one marker: one tube at each
    timepoint pair whatever their labels; several pair by stain label."""
    if len(base) == 1 and len(follow) == 1:
        return [(base.iloc[0], follow.iloc[0])]
    later = {f.stain: f for _, f in follow.iterrows()}
    return [(b, later[b.stain]) for _, b in base.iterrows() if b.stain in later]


def _paired_row(b: pd.Series, f: pd.Series, values: dict, *, baseline: str, followup: str) -> dict:
    from .shift import shift_metrics

    marker = b.marker
    shifts = shift_metrics(values.get((b.file, marker), np.empty(0)), values.get((f.file, marker), np.empty(0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        log2 = float(np.log2(f["median"] / b["median"])) if b["median"] > 0 and f["median"] > 0 else np.nan
    return {
        "patient": b.patient, "marker": marker, "population": b.population,
        "baseline": baseline, "followup": followup,
        "pct_pos_baseline": b.pct_pos, "pct_pos_followup": f.pct_pos,
        "delta_pct_pos": f.pct_pos - b.pct_pos,
        "mfi_baseline": b["median"], "mfi_followup": f["median"], "log2_mfi_ratio": log2,
        "rmfi_baseline": b.rmfi, "rmfi_followup": f.rmfi, "delta_rmfi": f.rmfi - b.rmfi,
        **shifts, "n_baseline": b.n_events, "n_followup": f.n_events,
        "stain": b.stain if b.stain == f.stain else f"{b.stain}/{f.stain}",
        "flag": "; ".join(f"{tube.timepoint}: {tube.flag}" for tube in (b, f) if tube.flag),
    }


# ----------------------------------------------------------------------------- results


@dataclass
class Results:
    """Tidy results of an :class:`Experiment` (columns documented in ``docs/outputs.md``)."""

    samples: pd.DataFrame
    populations: pd.DataFrame
    markers: pd.DataFrame
    paired: pd.DataFrame
    cohort: pd.DataFrame
    values: dict = field(default_factory=dict, repr=False)
    plot_events: dict = field(default_factory=dict, repr=False)
    fitted: dict = field(default_factory=dict, repr=False)
    gating: dict = field(default_factory=dict, repr=False)  # file → a few keywords, the channel of each role
    figures: dict = field(default_factory=dict, repr=False)  # ("gates", file) / ("patient", id) → PNG drawn early
    template_path: str = ""
    baseline: str = "C2D1"
    followup: str = "C2D8"
    paths: dict = field(default_factory=dict, repr=False)
    timings: dict = field(default_factory=dict, repr=False)  # seconds: groups (analysis), assemble

    TABLES = ("samples", "populations", "markers", "paired", "cohort")

    @property
    def plot(self):
        """Figures: ``results.plot.paired("LAG3")``, ``.patient("CLL001")``, ``.gates(file)``."""
        from .plots import ResultsPlotter

        return ResultsPlotter(self)

    def _repr_html_(self) -> str:
        n_ok = int((self.samples["status"] == "ok").sum())
        parts = [f"<h4>cytokit results</h4><p>{len(self.samples)} files ({n_ok} ok), "
                 f"{self.paired['patient'].nunique() if len(self.paired) else 0} paired patients, "
                 f"{self.baseline} → {self.followup}</p>"]
        if len(self.cohort):
            parts.append(self.cohort.to_html(index=False, float_format=lambda v: f"{v:.3g}"))
        bad = self.samples[self.samples["status"] != "ok"]
        if len(bad):
            parts.append("<p>Problems:</p>" + bad[["file", "status", "error"]].to_html(index=False))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (f"Results({len(self.samples)} files, {len(self.markers)} marker rows, "
                f"{len(self.paired)} paired rows, {len(self.cohort)} cohort rows)")


def assemble(parts: list[dict], samples: pd.DataFrame, *, template_path: str, baseline: str,
             followup: str) -> Results:
    """Combine tube-group results (``analyse_group`` with ``pairing``, from any executor) with the
    checked samples table."""
    from .paired import cohort_summary
    from .stats import MARKER_COLUMNS

    by_file = {row["file"]: row for part in parts for row in part["samples"]}
    table = samples.copy()
    table["quality"] = ""
    for i, row in table.iterrows():
        done = by_file.get(row["file"])
        if done is None:
            continue
        table.at[i, "quality"] = done["quality"]
        if done["status"] == "error":
            table.at[i, "status"], table.at[i, "error"] = "error", done["error"]
    extra = [c for c in table.columns if c not in SAMPLE_COLUMNS and c != "path"]
    table = table[SAMPLE_COLUMNS + extra].sort_values(["patient", "timepoint", "stain", "file"], kind="stable")
    populations = pd.DataFrame([r for p in parts for r in p["populations"]], columns=POPULATION_COLUMNS)
    markers = pd.DataFrame([r for p in parts for r in p["markers"]], columns=MARKER_COLUMNS)
    values = {k: v for p in parts for k, v in p["values"].items()}
    paired = pd.DataFrame([r for p in parts for r in p["paired"]], columns=PAIRED_COLUMNS)
    paired = paired.sort_values(["marker", "patient"], kind="stable").reset_index(drop=True)
    _mark_unpaired(table, set(paired["patient"]))
    # patients with several stained tubes per timepoint: one summary per stain (no pairs: no rows, all columns)
    several = paired.duplicated(["patient", "marker", "population"]).any()
    cohort = cohort_summary(paired, by=("stain",) if several else ())
    return Results(
        samples=table.reset_index(drop=True),
        populations=populations.sort_values(["file"], kind="stable").reset_index(drop=True),
        markers=markers.sort_values(["file", "marker"], kind="stable").reset_index(drop=True),
        paired=paired, cohort=cohort.reset_index(drop=True), values=values,
        plot_events={k: v for p in parts for k, v in p["plot_events"].items()},
        fitted={k: v for p in parts for k, v in p["fitted"].items()},
        gating={k: v for p in parts for k, v in p["gating"].items()},
        figures=_early_figures(parts, table, markers),
        template_path=template_path, baseline=baseline, followup=followup,
        paths=dict(zip(samples["file"], samples["path"])),
    )


def _early_figures(parts: list[dict], samples: pd.DataFrame, markers: pd.DataFrame) -> dict:
    """The figures the groups drew; a patient panel only where the group saw every file of the patient
    and every marker of the results (else it is drawn again from the whole results)."""
    names = list(dict.fromkeys(markers.sort_values(["file", "marker"], kind="stable")["marker"]))
    figures = {}
    for part in parts:
        for (kind, name), drawn in part["figures"].items():
            if kind == "gates":
                figures[kind, name] = drawn
            elif (drawn["markers"] == names
                  and drawn["files"] == sorted(samples.loc[samples["patient"] == name, "file"])):
                figures[kind, name] = drawn["png"]
    return figures


def _mark_unpaired(table: pd.DataFrame, paired_patients: set) -> None:
    """Analysed files of a patient who ended up in no paired comparison become ``unpaired``, with why."""
    for patient, group in table[table["status"] == "ok"].groupby("patient"):
        if patient in paired_patients:
            continue
        failed = table[(table["patient"] == patient) & (table["status"] == "error")]["file"].tolist()
        why = (f"{', '.join(failed)} failed" if failed
               else "no baseline and follow-up stained tubes with the same markers")
        table.loc[group.index, "status"] = "unpaired"
        table.loc[group.index, "error"] = f"left out of the paired comparison: {why}"


# ----------------------------------------------------------------------------- the experiment


class Experiment:
    """FCS files with their metadata and a gating template, ready to run.

    Build it with :meth:`from_folder`; :meth:`run` returns :class:`Results`.
    """

    def __init__(self, samples: pd.DataFrame, template: str | Path, *, baseline: str = "C2D1",
                 followup: str = "C2D8", folder: str | Path | None = None) -> None:
        from .gating.load import load_template

        self.template_path = str(Path(template).resolve())
        self.template = load_template(self.template_path)  # fail early on a bad template
        self.baseline, self.followup = baseline, followup
        self.samples = metadata.check_samples(samples, folder=folder, baseline=baseline, followup=followup)

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        template: str | Path,
        samples: str | Path | pd.DataFrame | None = None,
        pattern: str | None = None,
        keywords: dict[str, str] | None = None,
        baseline: str = "C2D1",
        followup: str = "C2D8",
    ) -> "Experiment":
        """Describe ``folder``'s FCS files by a sample sheet, a file-name pattern or FCS keywords.

        With none given, ``folder/samples.csv`` is used when it exists, else the
        pattern ``{patient}_{timepoint}_{stain}.fcs``.
        """
        folder = Path(folder)
        if isinstance(samples, pd.DataFrame):
            table = samples.copy()
            if "path" not in table:
                table["path"] = [str((folder / f).resolve()) for f in table["file"]]
        elif samples is not None:
            table = metadata.read_sample_sheet(samples, folder=folder)
        elif keywords is not None:
            table = metadata.samples_from_keywords(folder, keywords)
        elif pattern is not None or not (folder / "samples.csv").exists():
            table = metadata.samples_from_pattern(folder, pattern or metadata.DEFAULT_PATTERN,
                                                  timepoints=(baseline, followup))
        else:
            table = metadata.read_sample_sheet(folder / "samples.csv", folder=folder)
        return cls(table, template, baseline=baseline, followup=followup, folder=folder)

    def groups(self) -> list[tuple[list[dict], str | None]]:
        """The tube groups to analyse, one per patient (every timepoint, so the paired comparison
        runs where the events are), files with errors left out. A patient without any stained
        tube gets a reference stained tube of another patient, whose detectors its isotypes borrow."""
        usable = self.samples[self.samples["status"] != "error"]
        stained = usable[usable["stain"] != metadata.ISOTYPE]
        anywhere = stained["path"].iloc[0] if len(stained) else None
        out = []
        for patient, g in usable.groupby("patient", sort=True):
            g = g.sort_values("timepoint", kind="stable")
            rows = g[["file", "patient", "timepoint", "stain", "status", "path"]].to_dict("records")
            own = (stained["patient"] == patient).any()
            out.append((rows, None if own else anywhere))
        return out

    def run(self, *, workers: int = 1, dask: str | None = None, cache_dir: str | Path | None = None,
            progress: bool = False, strict: bool = False, figures: bool = False) -> Results:
        """Analyse every tube group and assemble :class:`Results`.

        Parameters
        ----------
        workers
            Local worker processes (1: in this process).
        dask
            A dask.distributed scheduler address, or ``"local"`` for a LocalCluster.
        cache_dir
            Per-group results are cached there and reused when nothing changed.
        progress
            Show a progress bar (rich).
        strict
            Stop at the first file that fails.
        figures
            Draw every file's gating figure and each patient's panel where the events are (in
            the workers), cached with the results, for :func:`~cytokit.plots.save_figures` and
            the report; without it they gate every file again to draw it.
            ``res.plot.gates(file)`` always draws afresh.
        """
        import time

        from .batch import run_groups

        started = time.perf_counter()
        parts = run_groups(self.groups(), self.template_path, pairing=(self.baseline, self.followup),
                           workers=workers, dask=dask, cache_dir=cache_dir, progress=progress, strict=strict,
                           figures=figures)
        analysed = time.perf_counter()
        results = assemble(parts, self.samples, template_path=self.template_path,
                           baseline=self.baseline, followup=self.followup)
        results.timings = {"groups": analysed - started, "assemble": time.perf_counter() - analysed}
        return results
