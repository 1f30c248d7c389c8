"""What the figures read of an experiment's results, described rather than imported.

The figures sit below the notebook API (``cytokit.experiment`` imports them, to draw in its
workers), so they take :class:`~cytokit.experiment.Results` as anything with these attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class ResultsLike(Protocol):
    """The tables and lookups of :class:`~cytokit.experiment.Results` that the figures read
    (columns documented in ``docs/outputs.md``)."""

    samples: pd.DataFrame  #: one row per file: file, patient, timepoint, stain, status, error
    markers: pd.DataFrame  #: one row per file × marker: pct_pos, median, threshold, ...
    paired: pd.DataFrame  #: baseline → follow-up per patient × marker
    cohort: pd.DataFrame  #: per marker × metric: n_pairs, median_delta, CI, Wilcoxon p
    values: dict  #: (file, marker) → the marker's transformed values on its population
    plot_events: dict  #: file → the quantified populations' parents' events (roles, in:PATH, of:PATH) for the panels
    fitted: dict  #: file → population path → the learned values of its fitted gate
    gating: dict  #: file → keywords, each role's channel and ``scales``: role → its transform's kind and parameters
    figures: dict  #: ("gates", file) / ("patient", id) → PNG bytes drawn during the analysis
    paths: dict  #: file → its path on disk
    template_path: str
    baseline: str  #: the first comparison's
    followup: str
    comparisons: tuple  #: every (baseline, followup) compared, in order
    timepoints: list  #: every analysed timepoint, compared ones first, in the comparisons' order
    group_by: str | None  #: the samples column whose groups of patients are compared, or None
    groups: pd.DataFrame | None  #: with group_by: per marker × metric × comparison, the groups compared
