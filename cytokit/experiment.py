"""The notebook API: a folder of FCS files + a gating template + a sample sheet → tidy results.

Example (``examples/cll_lenalidomide.ipynb`` runs it in the test suite)::

    exp = Experiment.from_folder("sample_fcs/modern", template="gating_templates/cll_cd19_7aad.yaml")
    res = exp.run()
    res.paired.head()

The unit of work is a *tube group*: one patient's tubes at every timepoint
(:func:`cytokit.pipeline.analyse_group`); :func:`cytokit.batch.run_groups` runs the groups in
this process, in worker processes or on Dask, and :func:`cytokit.results.assemble` joins them.
``cytokit run`` runs the same code.
"""

from __future__ import annotations

import itertools
import operator
import warnings
from pathlib import Path

import pandas as pd

from . import metadata
from .batch import run_groups
from .errors import MetadataError
from .results import Results, assemble


class Experiment:
    """FCS files with their metadata and a gating template, ready to run.

    Build it with :meth:`from_folder`; :meth:`run` returns :class:`Results`. ``panel`` is a panel
    sheet (CSV ``channel,marker[,file]``, :mod:`cytokit.panel`) whose markers stand for the files'
    ``$PnS``, over the template's ``panel`` key.
    """

    def __init__(self, samples: pd.DataFrame, template: str | Path, *, baseline: str | None = None,
                 followup: str | None = None, compare: metadata.Comparisons | None = None,
                 group_by: str | None = None,
                 folder: str | Path | None = None, panel: str | Path | None = None) -> None:
        from .gating.load import load_template

        self.template_path = str(Path(template).resolve())
        self.panel_path = str(Path(panel).resolve()) if panel is not None else None
        # fail early on a bad template or panel sheet
        self.template = load_template(self.template_path, panel=self.panel_path)
        self._template_bytes = self._read_template_files()
        self.comparisons = metadata.comparisons_of(compare, baseline=baseline, followup=followup)
        self.baseline, self.followup = self.comparisons[0]
        self.samples = metadata.check_samples(samples, folder=folder, comparisons=self.comparisons,
                                              needs_control=any(m.method != "none" for m in self.template.markers))
        if compare is not None or baseline is not None or followup is not None:  # asked for: a typo pairs nothing
            found = set(self.samples["timepoint"].astype(str)) - {""}
            for b, f in self.comparisons:
                absent = [tp for tp in (b, f) if tp not in found]
                if absent and found:
                    raise MetadataError(f"comparison {b}:{f}: no file has timepoint {' or '.join(absent)} (the files' "
                                        f"timepoints: {', '.join(sorted(found))})")
        self.group_by = None if group_by is None else metadata.group_column(self.samples, group_by)  # its case
        if group_by is not None:
            metadata.patient_groups(self.samples, self.group_by)  # a missing column, or a patient in two groups: now

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        template: str | Path,
        samples: str | Path | pd.DataFrame | None = None,
        pattern: str | None = None,
        keywords: dict[str, str] | None = None,
        baseline: str | None = None,
        followup: str | None = None,
        compare: metadata.Comparisons | None = None,
        group_by: str | None = None,
        panel: str | Path | None = None,
    ) -> "Experiment":
        """Describe ``folder``'s FCS files by a sample sheet, a file-name pattern or FCS keywords.

        With none given, ``folder/samples.csv`` is used when it exists, else the
        pattern ``{patient}_{timepoint}_{stain}.fcs``.

        ``compare``: the comparisons, ``[("C1D1", "C1D8"), "C2D1:C2D8", ...]`` (paired rows and cohort
        statistics for each), instead of one ``baseline`` and ``followup`` (default ``C2D1``, ``C2D8``).
        ``group_by``: a sample-sheet column (e.g. ``"response"``) whose groups of patients the
        ``groups`` table compares. ``panel``: a panel sheet over the template's ``panel`` key.
        """
        folder = Path(folder)
        timepoints = metadata.compared_timepoints(metadata.comparisons_of(compare, baseline=baseline,
                                                                          followup=followup))
        given = [name for name, value in (("samples", samples), ("pattern", pattern), ("keywords", keywords))
                 if value is not None]
        if len(given) > 1:
            raise MetadataError(f"give the files' patient, timepoint and stain one way: {' and '.join(given)} "
                                "were given together")
        if isinstance(samples, pd.DataFrame):
            from .sheet import own_names

            samples = samples.set_axis(own_names(samples.columns, (*metadata.REQUIRED, "control_file", "path")),
                                       axis=1)  # FILE, Patient ...
            missing = [c for c in metadata.REQUIRED if c not in samples.columns]
            if missing:
                raise MetadataError(f"the samples table lacks column(s) {', '.join(missing)}; it needs "
                                    f"{', '.join(metadata.REQUIRED)} (has {', '.join(map(str, samples.columns))})")
            table = samples.copy()
            if "path" not in table:
                table["path"] = [str((folder / f).resolve()) for f in table["file"]]
        elif samples is not None:
            table = metadata.read_sample_sheet(samples, folder=folder)
        elif keywords is not None:
            table = metadata.samples_from_keywords(folder, keywords)
        elif pattern is not None or not (folder / "samples.csv").exists():
            table = metadata.samples_from_pattern(folder, pattern or metadata.DEFAULT_PATTERN,
                                                  timepoints=timepoints)
        else:
            table = metadata.read_sample_sheet(folder / "samples.csv", folder=folder)
        if table.empty:  # nothing to analyse is a usage error, as the CLI says it
            raise MetadataError(f"{table.attrs['sheet']}: the sample sheet lists no file" if "sheet" in table.attrs
                                else f"no FCS files (.fcs/.lmd) in {folder}; subfolders are not searched")
        return cls(table, template, baseline=baseline, followup=followup, compare=compare, group_by=group_by,
                   folder=folder, panel=panel)

    def groups(self) -> list[tuple[list[dict], str | None]]:
        """The tube groups to analyse, one per patient (every timepoint, so the paired comparison
        runs where the events are), files with errors left out. A patient without any stained
        tube gets a reference stained tube of another patient, whose detectors its controls borrow."""
        from .controls import is_control

        usable = self.samples[self.samples["status"] != "error"]
        stained = usable[~usable["stain"].map(is_control)]
        anywhere = stained["path"].iloc[0] if len(stained) else None
        with_stained = set(stained["patient"])
        # by patient, each patient's rows by timepoint (stable): the table read once, not per patient
        ordered = usable[usable["patient"].notna()].sort_values(["patient", "timepoint"], kind="stable")
        records = ordered[["file", "patient", "timepoint", "stain", "status", "path", "control_file"]].to_dict("records")
        return [(list(rows), None if patient in with_stained else anywhere)
                for patient, rows in itertools.groupby(records, key=operator.itemgetter("patient"))]

    def fit_pooled(self) -> dict:
        """The template's ``pool: true`` gates fitted on every readable file of the experiment
        (:func:`cytokit.gating.pooling.fit_pooled`; files that cannot be gated are left out here and
        reported by :meth:`run`); ``{}`` when it has none."""
        from .gating.pooling import fit_pooled, pooled_populations

        if not pooled_populations(self.template):
            return {}
        paths = self.samples.loc[self.samples["status"] != "error", "path"]
        return fit_pooled(self.template, list(paths), on_error=lambda path, exc: None)

    def _read_template_files(self) -> tuple[bytes, bytes]:
        return tuple(Path(p).read_bytes() if p and Path(p).is_file() else b""
                     for p in (self.template_path, self.panel_path))

    def _reload_if_edited(self) -> None:
        """Read the template (and panel sheet) again where the file changed since: the workers gate
        with the file as it is now, and ``self.template`` (pooled fits, markers) must be the same."""
        from .gating.load import load_template

        now = self._read_template_files()
        if now != self._template_bytes:
            warnings.warn(f"{self.template_path}: the template (or its panel sheet) changed since this Experiment "
                          "was made: read again, this run uses it as it is now", UserWarning, stacklevel=3)
            self.template = load_template(self.template_path, panel=self.panel_path)
            self._template_bytes = now

    def run(self, *, workers: int = 1, dask: str | None = None, cache_dir: str | Path | None = None,
            progress: bool = False, strict: bool = False, figures: bool = False,
            prune_cache: bool = False) -> Results:
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
        prune_cache
            Once every group is done, delete the entries of ``cache_dir`` this run did not use (``cytokit
            run`` does, on ``OUT/.cache``; leave it off for a cache several experiments share).
        """
        import time

        started = time.perf_counter()
        self._reload_if_edited()
        pooled = self.fit_pooled()
        groups = run_groups(self.groups(), self.template_path, pairing=self.comparisons,
                           workers=workers, dask=dask, cache_dir=cache_dir, progress=progress, strict=strict,
                           figures=figures, failed_before=int((self.samples["status"] == "error").sum()),
                           pooled=pooled, panel=self.panel_path, prune=prune_cache)
        analysed = time.perf_counter()
        results = assemble(groups, self.samples, template_path=self.template_path,
                           comparisons=self.comparisons, group_by=self.group_by,
                           panel_path=self.panel_path or "")
        results.pooled = pooled
        results.timings = {"groups": analysed - started, "assemble": time.perf_counter() - analysed}
        return results
