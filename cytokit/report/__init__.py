"""The HTML report: one self-contained page (figures inlined as PNG ``data:`` URIs).

Example::

    write_report(res, "out/report.html", title="CLL lenalidomide C2D1 → C2D8")

The page has no external resources (no network, no CDN): inline CSS and a few
lines of inline JavaScript that sort tables on a header click. Every text that
comes from data (file names, ``$PnS``, error messages) goes through jinja2's
autoescaping.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from ..plots import ResultsLike
from ..plots.patient import panel_patients
from ._html import data_uri as _data_uri
from ._html import environment, generated
from ._html import table as _table

if TYPE_CHECKING:  # pragma: no cover
    from ..plots import ResultsPlotter
    from .agreement import AgreementSection

__all__ = ["write_report", "render_report"]

#: cohort metrics shown in the report's cohort table, in order
COHORT_METRICS = ("delta_pct_pos", "log2_rmfi_ratio", "delta_rmfi", "log2_mfi_ratio_raw")  # the last: no control


class ReportResults(ResultsLike, Protocol):
    """What the report reads of :class:`~cytokit.experiment.Results`: the figures' tables and
    lookups, the populations and each file's keywords and channels (described, not imported:
    ``cytokit.batch`` writes the report and is below the notebook API)."""

    populations: pd.DataFrame  #: one row per file × population: count, pct_parent, flag
    gating: dict  #: file → a few keywords and the channel of each role (``GatingResult.summary()``)


def render_report(results: ReportResults, *, title: str = "cytokit report",
                  plotter: ResultsPlotter | None = None, agreement: AgreementSection | None = None) -> str:
    """The report's HTML text (see :func:`write_report`)."""
    from ..errors import CytokitError
    from ..plots import ResultsPlotter, unique_slugs
    from ..results import paired_patients

    plotter = plotter or ResultsPlotter(results)
    samples = results.samples
    markers = list(dict.fromkeys(results.markers["marker"])) if len(results.markers) else []

    several = len(results.comparisons) > 1
    comparisons = [{"label": f"{b} → {f}", "figures": [
        {"marker": m, "src": _data_uri(plotter.png("paired", m, (b, f) if several else None)),
         "caption": _caption(results.cohort, m, b, f)} for m in markers]} for b, f in results.comparisons]
    longitudinal = ([{"marker": m, "src": _data_uri(plotter.png("longitudinal", m))} for m in markers]
                    if len(results.timepoints) > 2 else [])
    cohort = results.cohort
    if len(cohort):
        cohort = cohort[cohort["metric"].isin(COHORT_METRICS)]
    groups = getattr(results, "groups", None)
    if groups is not None and len(groups):
        groups = groups[groups["metric"].isin(COHORT_METRICS)]

    patients = []
    # files without a patient (not in the sample sheet) are listed under quality only
    patient_anchors = unique_slugs(sorted(p for p in samples["patient"].astype(str).unique() if p.strip()))
    file_anchors = unique_slugs(samples["file"])
    drawn = panel_patients(results)
    # each patient's rows by position, read off once (a filter per patient was a third of the report's time)
    by_patient = _positions(samples["patient"])
    serving = _serving_control(samples).tolist()
    sample_rows = samples.to_dict("records")
    marker_tables = _tables_by(results.markers, ["file", "timepoint", "stain", "marker", "n_events", "median",
                                                 "pct_pos", "threshold", "rmfi", "flag"])
    paired_tables = _tables_by(results.paired, ["marker", *(("baseline", "followup") if several else ()),
                                                "pct_pos_baseline", "pct_pos_followup", "delta_pct_pos",
                                                "mfi_baseline", "mfi_followup", "log2_rmfi_ratio", "delta_rmfi",
                                                "flag"])
    for patient, patient_anchor in patient_anchors.items():
        positions = by_patient.get(patient, [])
        files = []
        for row in (sample_rows[i] for i in positions):
            entry = {"file": row["file"], "anchor": "file-" + file_anchors[str(row["file"])],
                     "timepoint": row["timepoint"], "stain": row["stain"], "status": row["status"],
                     "error": row["error"], "quality": row["quality"], "src": None, "keywords": {},
                     "channels": [], "problem": ""}
            if row["status"] != "error":
                try:
                    entry["src"] = _data_uri(plotter.png("gates", row["file"]))
                    entry.update(results.gating.get(row["file"]) or plotter.gating(row["file"]).summary())
                except (CytokitError, KeyError, OSError) as exc:
                    entry["problem"] = f"gating figure not drawn: {exc}"
            files.append(entry)
        patients.append({
            "id": patient, "anchor": "patient-" + patient_anchor,
            "status": ", ".join(sorted({sample_rows[i]["status"] for i in positions if not serving[i]})) or "ok",
            "panel": _data_uri(plotter.png("patient", patient)) if str(patient) in drawn else None,
            "markers": marker_tables(patient),
            "paired": paired_tables(patient),
            "files": files,
        })

    n_paired, n_valued = paired_patients(results.paired)
    problems = samples[(samples["status"] != "ok") | (samples["quality"].astype(str) != "")]
    pop_flags = results.populations[results.populations["flag"].astype(str) != ""]
    skipped = pop_flags["flag"].astype(str).map(_only_skipped)
    # a gate the files cannot have (no FSC-A on a FACSCalibur: singlets skipped) in one row, not one per file
    skips = (pop_flags[skipped].groupby(["population", "flag"], sort=False).size().reset_index(name="files")
             if skipped.any() else pop_flags.iloc[:0].assign(files=0))
    counts = samples["status"].value_counts().to_dict()
    from ..plots.patient import panel_layout

    layout = panel_layout(results.template_path)
    return environment().get_template("report.html.j2").render(
        title=title,
        population=layout.population, parent=layout.parent, x_name=layout.x_marker,
        generated=generated(),
        template_path=results.template_path,
        comparison_labels=[c["label"] for c in comparisons], timepoints=results.timepoints,
        n_files=len(samples), counts=counts,
        pct_pos=not len(results.cohort) or "delta_pct_pos" in set(results.cohort["metric"]),
        n_paired=n_paired, n_valued=n_valued,
        comparisons=comparisons, several=several, longitudinal=longitudinal,
        cohort=_table(cohort, ["marker", "baseline", "followup", "metric", "n_pairs", "median_delta", "ci_low",
                               "ci_high", "ci_level", "test", "p_value", "p_min", "q_bh", "n_up", "n_down", "n_flagged"]),
        group_by=getattr(results, "group_by", None),
        groups=None if groups is None else _table(groups, [
            "marker", "baseline", "followup", "metric", "group_a", "group_b", "n_a", "n_b", "median_a", "median_b",
            "median_diff", "ci_low", "ci_high", "test", "p_value", "p_min", "q_bh"]),
        patients=patients,
        samples=_table(samples, ["file", "patient", "timepoint", "stain", "status", "error", "quality"]),
        problems=_table(problems, ["file", "patient", "timepoint", "stain", "status", "error", "quality"]),
        failed=samples[samples["status"] == "error"][["file", "error"]].to_dict("records"),
        unpaired=sorted(samples.loc[(samples["status"] == "unpaired") & ~_serving_control(samples), "patient"]
                        .astype(str).unique()),
        population_flags=_table(pop_flags[~skipped], ["file", "population", "count", "pct_parent", "flag"]),
        skipped_gates=_table(skips, ["population", "flag", "files"]),
        agreement=None if agreement is None else agreement.context(),
    )


def _positions(column: pd.Series) -> dict:
    """Each value of ``column`` (as text, as the patients' anchors are) → its rows' positions, in order."""
    positions: dict = {}
    for i, value in enumerate(column.astype(str).tolist()):
        positions.setdefault(value, []).append(i)
    return positions


def _tables_by(frame: pd.DataFrame, columns: list[str]):
    """A function of a patient giving ``_table`` of ``frame``'s rows of that patient, the cells made once
    for the whole frame."""
    whole = _table(frame, columns)
    by_patient = _positions(frame["patient"]) if "patient" in frame.columns else {}
    return lambda patient: {"columns": whole["columns"],
                            "rows": [whole["rows"][i] for i in by_patient.get(patient, [])]}


def _serving_control(samples: pd.DataFrame) -> pd.Series:
    """Control tubes at a timepoint no comparison names whose thresholds other tubes use: ``unpaired`` in
    the samples table, but not a patient's missing pair."""
    serves = samples["control_of"] if "control_of" in samples else pd.Series("", index=samples.index)
    return (samples["status"] == "unpaired") & (serves.fillna("").astype(str) != "")


def _only_skipped(flag: str) -> bool:
    """Whether every part of a population's flag is a skipped gate (its own, or an ancestor's)."""
    return all(part.startswith("skipped:") or ": skipped:" in part for part in flag.split("; "))


def _caption(cohort: pd.DataFrame, marker: str, baseline: str, followup: str) -> str:
    """The cohort's % positive change of ``marker`` in one comparison (its MFI's, without a control), as the
    figure's caption."""
    if not len(cohort):
        return ""
    of_marker = cohort[cohort["marker"] == marker]
    metric, what, units = "delta_pct_pos", "median Δ% pos", " points"
    if not (of_marker["metric"] == metric).any():  # a marker without a control: its MFI's change
        metric, what, units = "log2_mfi_ratio_raw", "median log2 MFI ratio", ""
    rows = of_marker[of_marker["metric"] == metric]
    if {"baseline", "followup"} <= set(rows.columns):
        rows = rows[(rows["baseline"] == baseline) & (rows["followup"] == followup)]
    parts = []
    for row in rows.to_dict("records"):
        if not row["n_pairs"] or pd.isna(row["median_delta"]):
            parts.append(f"no pair with a value (n = {row['n_pairs']})")
            continue
        test = (str(row["test"]).split(":")[0].split() or ["test"])[0].capitalize()
        ci = (f" (95% CI {row['ci_low']:.3g} to {row['ci_high']:.3g})" if pd.notna(row.get("ci_low"))
              else " (no 95% CI: under 6 pairs)")
        p = (f"{test} p = {row['p_value']:.2g}" if pd.notna(row["p_value"]) else "no test (too few pairs)")
        if pd.notna(row.get("p_min")) and pd.notna(row["p_value"]) and row["p_value"] <= row["p_min"] + 1e-12:
            p += " (the smallest p these pairs can give)"
        parts.append(f"n = {row['n_pairs']}, {what} = {row['median_delta']:.3g}{units}{ci}, {p}")
    return "; ".join(parts)


def write_report(results: ReportResults, out_path: str | Path, *, title: str = "cytokit report",
                 plotter: ResultsPlotter | None = None, agreement: AgreementSection | None = None) -> Path:
    """Write the self-contained HTML report of ``results`` to ``out_path`` (atomically).

    Sections: the cohort (paired plots per marker and comparison, each patient's line across
    every timepoint when there are more than two, statistics; with ``group_by`` the groups
    compared), one section per
    patient (the population's gate dimension × marker panel, histograms, marker and paired rows, each file's
    gating hierarchy), quality (flags, failed files with their errors, unpaired
    patients) and all samples; with ``agreement``, the agreement with a manual gating
    (:class:`~cytokit.report.agreement.AgreementSection`) after the cohort. Tables sort on a
    header click.

    Parameters
    ----------
    results
        :class:`~cytokit.experiment.Results` of an experiment.
    out_path
        Where to write the ``.html`` file.
    title
        The page title.
    plotter
        A :class:`~cytokit.plots.ResultsPlotter` to reuse (shares re-gated files
        with :func:`~cytokit.plots.save_figures`).
    agreement
        The comparison with a manual gating to add as a section (``cytokit run --manual``).

    Returns
    -------
    Path
        ``out_path``.
    """
    from .._files import write_atomic

    html = render_report(results, title=title, plotter=plotter, agreement=agreement)
    return write_atomic(out_path, html)
