"""Figures of an experiment: paired cohort plots, per-patient panels and gating hierarchies.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot's
global state, so figures can be made in worker processes and on headless machines.

Example::

    res = Experiment.from_folder("sample_fcs/modern", template="gating_templates/cll_cd19_7aad.yaml").run()
    res.plot.paired("LAG3")            # baseline → follow-up per patient
    res.plot.patient("CLL001")         # CD19 × marker dot plots + histograms
    res.plot.gates("CLL001_C2D1_stained.fcs")
    save_figures(res, "out")           # out/plots/*.png

Modules: ``cohort`` (:func:`plot_paired`, :func:`plot_longitudinal`), ``patient`` (:func:`plot_patient`), ``gates``
(:func:`plot_gates`), ``encode`` (PNG and SVG bytes), ``slugs`` (file names), ``plotter``
(:class:`ResultsPlotter`, ``results.plot``), ``save`` (:func:`save_figures`); ``_style`` holds
what the figures share (colours, literal text, the panel grid), ``_canvas`` the gating figures and patient
panels drawn without matplotlib (``raster=True``: the pipeline's), ``_scale`` axes labelled in
scale values (decades), ``_raster`` events drawn as one image per panel, ``_results`` what they read
of the results.
"""

from __future__ import annotations

from ._results import ResultsLike  # noqa: F401 (the report describes its results with it)
from .cohort import METRICS, plot_longitudinal, plot_paired
from .encode import figure_png
from .gates import plot_gates
from .patient import plot_patient
from .plotter import ResultsPlotter
from .save import save_figures
from .slugs import unique_slugs  # noqa: F401 (the report names its anchors with it)

__all__ = [
    "METRICS", "ResultsPlotter", "figure_png", "plot_gates", "plot_longitudinal", "plot_paired", "plot_patient",
    "save_figures",
]
