"""Results: the tidy tables of a run, and :func:`assemble`, which builds them from the tube groups.

The five tables (``samples``, ``populations``, ``markers``, ``paired``, ``cohort``) have the
columns of ``docs/outputs.md``; the rest (marker values, plot events, fitted gates, figures
drawn in the workers) is what the figures and the report need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .metadata import Comparisons
from .paired import PAIRED_COLUMNS
from .pipeline import POPULATION_COLUMNS, SAMPLE_COLUMNS, GroupResult
from .stats import MARKER_COLUMNS


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
    panel_path: str = ""  # the panel sheet given over the template's panel key ("" for none)
    baseline: str = "C2D1"
    followup: str = "C2D8"
    paths: dict = field(default_factory=dict, repr=False)
    timings: dict = field(default_factory=dict, repr=False)  # seconds: groups (analysis), assemble
    pooled: dict = field(default_factory=dict, repr=False)  # the template's pool: true gates, fitted on the run
    comparisons: tuple = ()
    """The ``(baseline, followup)`` pairs compared, in order; ``baseline`` and ``followup`` are the first."""
    group_by: str | None = None
    """The sample-sheet column whose groups of patients ``groups`` compares, or None."""
    groups: pd.DataFrame | None = None
    """With ``group_by``: the groups' per-patient changes compared (``docs/outputs.md``), else None."""

    TABLES = ("samples", "populations", "markers", "paired", "cohort")

    def __post_init__(self) -> None:
        if len(self.comparisons) <= 1:  # one comparison: baseline and followup are it
            self.comparisons = ((self.baseline, self.followup),)

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables of these results: :attr:`TABLES`, and ``groups`` with ``group_by``."""
        return self.TABLES + (("groups",) if self.groups is not None else ())

    @property
    def timepoints(self) -> list[str]:
        """Every timepoint of the analysed files in time order (the longitudinal figures' x axis): by
        their numbers, else as the samples list them, each comparison's baseline before its follow-up
        (:func:`~cytokit.metadata.timepoint_order`)."""
        from .metadata import timepoint_order

        seen = self.samples.loc[self.samples["status"] != "error", "timepoint"].astype(str)
        return timepoint_order(list(seen), tuple(self.comparisons))

    @property
    def plot(self):
        """Figures: ``results.plot.paired("LAG3", comparison=("C1D1", "C1D8"))``, ``.longitudinal("LAG3")``,
        ``.patient("CLL001")``, ``.gates(file)``."""
        from .plots import ResultsPlotter

        return ResultsPlotter(self)

    def to_anndata(self, *, population: str | None = None, max_events_per_file: int | None = 10_000,
                   seed: int = 0):
        """The events of ``population`` (default: the quantified markers' population, or the nearest one holding
        them all where they are on several) in every analysed
        file as ``anndata.AnnData`` (see :func:`cytokit.anndata_export.to_anndata`)."""
        from .anndata_export import to_anndata

        return to_anndata(self, population=population or self._quantified_population(),
                          max_events_per_file=max_events_per_file, seed=seed)

    def to_flowjo(self, path) -> Path:
        """Write every analysed file's gates as fitted, with its transforms and compensation, as a
        FlowJo 10 workspace at ``path`` (see :func:`cytokit.flowjo_export.to_flowjo`)."""
        from .flowjo_export import to_flowjo

        return to_flowjo(self, path)

    def compare_manual(self, manual, *, mapping=None) -> pd.DataFrame:
        """This run's populations against a manual gating of its files: :func:`cytokit.compare`'s table
        (``compare.csv``), each file gated as the run gated it (its template and control), once more.

        ``manual`` is a folder of ``<file stem>.npz``, a FlowJo ``.wsp`` or a Gating-ML ``.xml`` (or an
        opened :class:`~cytokit.manual.ManualSource`); ``mapping`` ``{cytokit population: manual path}``
        or a CSV ``cytokit,manual``. A file the run could not analyse, or without a manual gating,
        gets an ``error`` row.
        """
        from .agreement import check_mapping, compare_gated
        from .gating.load import load_template
        from .manual import read_manual
        from .plots import ResultsPlotter

        mapping = check_mapping(mapping, load_template(self.template_path))
        files = list(self.samples["file"])
        source = read_manual(manual, [self.paths[f] for f in files if f in self.paths])
        failed = self.samples[self.samples["status"] == "error"]
        return compare_gated(files, ResultsPlotter(self, cache_size=8).gating, source, mapping=mapping,
                             failed=dict(zip(failed["file"], failed["error"])))

    def _quantified_population(self) -> str:
        """The markers' population, or where they are on several (CD4 T and CD8 T cells) the nearest
        population holding them all (T cells; its AnnData has a column per population below)."""
        from .gating.load import load_template

        template = load_template(self.template_path)
        paths = [template.path_of(m.population).split("/") for m in template.markers]
        if not paths:
            return "root"
        common = []
        for parts in zip(*paths):
            if len(set(parts)) > 1:
                break
            common.append(parts[0])
        return "/".join(common) or "root"

    def _repr_html_(self) -> str:
        n_ok = int((self.samples["status"] == "ok").sum())
        parts = [f"<h4>cytokit results</h4><p>{len(self.samples)} files ({n_ok} ok), "
                 f"{self.paired['patient'].nunique() if len(self.paired) else 0} paired patients, "
                 f"{', '.join(f'{b} → {f}' for b, f in self.comparisons)}</p>"]
        if len(self.cohort):
            parts.append(self.cohort.to_html(index=False, float_format=lambda v: f"{v:.3g}"))
        bad = self.samples[self.samples["status"] != "ok"]
        if len(bad):
            parts.append("<p>Problems:</p>" + bad[["file", "status", "error"]].to_html(index=False))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (f"Results({len(self.samples)} files, {len(self.markers)} marker rows, "
                f"{len(self.paired)} paired rows, {len(self.cohort)} cohort rows)")


def assemble(groups: list[GroupResult], samples: pd.DataFrame, *, template_path: str, baseline: str = "C2D1",
             followup: str = "C2D8", comparisons: Comparisons | None = None,
             group_by: str | None = None, panel_path: str = "") -> Results:
    """Combine tube groups' results (:func:`~cytokit.pipeline.analyse_group` with ``pairing``, from any
    executor) with the checked samples table. ``comparisons`` default to the one of ``baseline`` and
    ``followup``; with ``group_by`` (a column of ``samples``) the ``groups`` table compares its groups."""
    from .cohort import cohort_summary
    from .metadata import comparisons_of

    comparisons = comparisons_of(baseline=baseline, followup=followup) if comparisons is None \
        else comparisons_of(comparisons)

    by_file = {row["file"]: row for group in groups for row in group.samples.to_dict("records")}
    table = samples.copy()
    table["quality"] = ""
    for column in ("control_file", "control_of"):  # a table not from check_samples
        if column not in table:
            table[column] = ""
    for i, row in table.iterrows():
        done = by_file.get(row["file"])
        if done is None:
            continue
        table.at[i, "quality"] = done["quality"]
        if done["status"] == "error":
            table.at[i, "status"], table.at[i, "error"] = "error", done["error"]
    extra = [c for c in table.columns if c not in SAMPLE_COLUMNS and c != "path"]
    table = table[SAMPLE_COLUMNS + extra].sort_values(["patient", "timepoint", "stain", "file"], kind="stable")
    populations = _rows(groups, "populations", POPULATION_COLUMNS)
    markers = _rows(groups, "markers", MARKER_COLUMNS)
    values = {k: v for g in groups for k, v in g.values.items()}
    paired = _rows(groups, "paired", PAIRED_COLUMNS)
    paired = paired.sort_values(["marker", "patient"], kind="stable").reset_index(drop=True)
    _mark_unpaired(table, paired, quantified=bool(len(markers)))
    # several comparisons: one summary per comparison; patients with several stained tubes per timepoint:
    # one per stain (no pairs: no rows, all columns)
    by = ("baseline", "followup") if len(comparisons) > 1 else ()
    several = paired.duplicated(["patient", "marker", "population", "baseline", "followup"]).any()
    by += ("stain",) if several else ()
    cohort = cohort_summary(paired, by=by)
    group_table = None
    if group_by is not None:
        from .groups import group_summary
        from .metadata import patient_groups

        keys = ("baseline", "followup", *(("stain",) if several else ()))
        group_table = group_summary(paired, patient_groups(samples, group_by), by=keys).reset_index(drop=True)
    return Results(
        samples=table.reset_index(drop=True),
        populations=populations.sort_values(["file"], kind="stable").reset_index(drop=True),
        markers=markers.sort_values(["file", "marker"], kind="stable").reset_index(drop=True),
        paired=paired, cohort=cohort.reset_index(drop=True), values=values,
        plot_events={k: v for g in groups for k, v in g.plot_events.items()},
        fitted={k: v for g in groups for k, v in g.fitted.items()},
        gating={k: v for g in groups for k, v in g.gating.items()},
        figures=_early_figures(groups, table, markers),
        template_path=template_path, panel_path=panel_path, baseline=comparisons[0][0], followup=comparisons[0][1],
        comparisons=comparisons, group_by=group_by, groups=group_table,
        paths=dict(zip(samples["file"], samples["path"])),
    )


def paired_patients(paired: pd.DataFrame) -> tuple[int, int]:
    """``(patients paired, those of them with a value)``: a pair whose gated population is empty at
    either timepoint (its gate failed) has no MFI, and every statistic of it is NaN."""
    if not len(paired):
        return 0, 0
    valued = paired["mfi_baseline"].notna() & paired["mfi_followup"].notna()
    return int(paired["patient"].nunique()), int(paired.loc[valued, "patient"].nunique())


def _rows(groups: list[GroupResult], table: str, columns: list[str]) -> pd.DataFrame:
    """One table of every group, row by row (as the groups' own records: no dtype of an empty group's
    frame leaks into the whole), built column by column: ``to_dict("records")`` of a thousand groups' frames
    took a second."""
    frames = [getattr(g, table) for g in groups]
    frames = [f for f in frames if len(f)]
    cells = {c: [v for f in frames for v in (f[c].tolist() if c in f.columns else [np.nan] * len(f))]
             for c in columns}
    return pd.DataFrame(cells, columns=columns) if frames else pd.DataFrame([], columns=columns)


def _early_figures(groups: list[GroupResult], samples: pd.DataFrame, markers: pd.DataFrame) -> dict:
    """The figures the groups drew; a patient panel only where the group saw every file of the patient
    and every marker of the results (else it is drawn again from the whole results)."""
    names = list(dict.fromkeys(markers.sort_values(["file", "marker"], kind="stable")["marker"]))
    figures = {}
    for group in groups:
        for (kind, name), drawn in group.figures.items():
            if kind == "gates":
                figures[kind, name] = drawn
            elif (drawn["markers"] == names
                  and drawn["files"] == sorted(samples.loc[samples["patient"] == name, "file"])):
                figures[kind, name] = drawn["png"]
    return figures


def _mark_unpaired(table: pd.DataFrame, paired: pd.DataFrame, *, quantified: bool = True) -> None:
    """Analysed files of a patient whose timepoint ended up in no paired comparison become ``unpaired``,
    with why (not ``quantified``: no file has a marker row, the template has no markers)."""
    used = {(p, tp) for p, b, f in zip(paired["patient"], paired["baseline"], paired["followup"]) for tp in (b, f)}
    ok = table[table["status"] == "ok"]
    for patient, group in ok.groupby("patient"):
        group = group[[(patient, tp) not in used for tp in group["timepoint"]]]
        if group.empty:
            continue
        failed = table[(table["patient"] == patient) & (table["status"] == "error")]["file"].tolist()
        why = (f"{', '.join(failed)} failed" if failed
               else "no baseline and follow-up stained tubes with the same markers" if quantified
               else "the template quantifies no marker (it has no markers: section)")
        table.loc[group.index, "status"] = "unpaired"
        table.loc[group.index, "error"] = f"left out of the paired comparison: {why}"
