"""Synthetic CLL cohorts with ground truth (``cytokit simulate``).

The simulated study: blood of chronic lymphocytic leukaemia (CLL) patients on
lenalidomide, drawn at cycle 2 day 1 (``C2D1``, baseline) and day 8 (``C2D8``), or at any
timepoints given (``--timepoints C1D1,C1D8,C2D1,C2D8``: each later one changes from the one
before it).
Each blood sample is acquired twice: an isotype-control tube and a stained tube
(CD19 FITC, 7AAD, LAG3 PE surface, TNF-α APC intracellular). On viable (7AAD−)
CD19+ CLL cells LAG3 rises in responders and TNF-α rises about threefold;
non-responders change by less than 2 points.

Output folder
-------------
::

    OUT_DIR/
      samples.csv                               file,patient,timepoint,stain
      truth.csv                                 planted % positive per file and marker
      CLL001_C2D1_isotype.fcs                   {patient}_{timepoint}_{stain}.fcs
      CLL001_C2D1_stained.fcs
      ...
      truth/CLL001_C2D1_isotype.labels.csv.gz   one row per event of that file

``samples.csv``: ``file`` (relative to the sheet's folder), ``patient``
(``CLL001`` ...), ``timepoint`` (``C2D1`` | ``C2D8``, or the ones given), ``stain``
(``isotype`` | ``stained``), and with ``--response`` ``response`` (``responder`` |
``non-responder``, for ``cytokit run --group-by response``).

``truth.csv``: one row per file and marker (``LAG3``, ``TNFa``) with columns
``file, patient, timepoint, stain, marker, population, planted_pct_pos,
labelled_pct_pos, responder``. ``population`` is always ``viable CD19+`` (the
``cll`` class below); ``planted_pct_pos`` is the probability each CLL cell was
made positive with (0 in isotype tubes); ``labelled_pct_pos`` is the share of
that file's ``cll`` events whose label is positive (the planted value plus
sampling error: compare pipelines against this one).

``truth/<file stem>.labels.csv.gz``: gzip CSV, row *i* describes event *i* of
the FCS file, columns ``cls, lag3_pos, tnfa_pos``. ``cls`` is one of
``debris, dead, doublet, cd19neg, cll`` (``doublet`` only in the ``modern``
layout; it includes a few 4–6-cell aggregates that saturate FSC-A);
``lag3_pos``/``tnfa_pos`` are 0/1, 1 only for specifically stained cells in the
stained tube (``cll`` and ``cd19neg`` cells; a doublet is positive when one of
its cells is). Read them with :func:`read_labels`.

Layouts
-------
``calibur``
    As CellQuest writes a BD FACSCalibur file: FCS 2.0, 16-bit big-endian
    integers, 1024 channels; FSC-H linear, SSC-H and FL1-H…FL4-H log-amplified
    over 4 decades (``$PnE`` = 4,0). Compensation was analog, so no spillover.
``modern``
    FCS 3.1 float32, ``$PnR`` 262144, FSC-A/FSC-H/SSC-A, detectors named by
    fluorochrome, a ``Time`` channel with ``$TIMESTEP``, a ``$SPILLOVER`` matrix
    and *uncompensated* data (observed = true @ spillover), 3–5 % doublets and
    a few saturated events (262143).

The populations sit at the same places for every patient; each acquisition
session (patient × timepoint) gets a few per cent of scatter and fluorescence
drift, so fixed gates are slightly wrong and data-driven ones right.

``_model`` holds the cohort model (design, patients, event classes and their
distributions), ``_layouts`` the two file layouts, ``_output`` the writing of a
cohort; this package re-exports their public names.
"""

from __future__ import annotations

from ._layouts import LAYOUTS, SPILLOVER
from ._model import CLASSES, MARKERS, STAINS, TIMEPOINTS, CohortDesign  # noqa: F401 (the design's constants)
from ._output import read_labels, simulate_cohort

__all__ = ["CohortDesign", "simulate_cohort", "read_labels", "SPILLOVER", "CLASSES", "LAYOUTS"]
