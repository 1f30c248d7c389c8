"""``results.plot``: the figures of one experiment's results, re-gating files on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..controls import is_control
from .cohort import plot_longitudinal, plot_paired
from .encode import figure_png
from .gates import plot_gates
from .patient import plot_patient

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..gating.result import GatingResult
    from ._results import ResultsLike


class ResultsPlotter:
    """Figures of one :class:`~cytokit.experiment.Results` (``results.plot``).

    Gating figures re-gate the file with the results' template (its isotype
    first). The last ``cache_size`` gated files are kept (a tube group is 2–4
    files), so a figure and the report's captions of one file gate it once.
    """

    def __init__(self, results: ResultsLike, *, cache_size: int = 4) -> None:
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

    def png(self, kind: str, name: str, comparison: tuple[str, str] | None = None) -> bytes:
        """PNG bytes of ``self.<kind>(name)`` (``kind``: ``paired``, ``longitudinal``, ``patient`` or
        ``gates``; ``comparison`` for ``paired``), drawn once per plotter, so ``plots/`` and the report
        share them; figures drawn during the analysis (``results.figures``) are used as they are. Gating
        figures and patient panels are drawn as the analysis draws them (``raster=True``)."""
        key = (kind, name) if comparison is None else (kind, name, *comparison)
        if key not in self._png:
            drawn = self.results.figures.get(key)
            if drawn is None and kind == "gates":
                result = self.gating(name)
                drawn = plot_gates(result, title=f"{name}  ({len(result.scale):,} events)", raster=True).png()
            elif drawn is None and kind == "patient":
                drawn = plot_patient(self.results, name, raster=True).png()
            extra = {} if comparison is None else {"comparison": comparison}
            self._png[key] = drawn if drawn is not None else figure_png(getattr(self, kind)(name, **extra))
        return self._png[key]

    def _check_marker(self, marker: str) -> None:
        res = self.results
        markers = sorted(set(res.markers["marker"])) if len(res.markers) else []
        if marker not in markers:
            raise KeyError(f"marker {marker!r} is not in the results; markers: {markers}")

    def groups(self) -> dict[str, str] | None:
        """patient → group of the results' ``group_by`` column, or None."""
        from ..metadata import patient_groups

        res = self.results
        return patient_groups(res.samples, res.group_by) if getattr(res, "group_by", None) else None

    def paired(self, marker: str, *, metric: str | None = None, comparison: tuple[str, str] | str | None = None
               ) -> Figure:
        """Baseline → follow-up per patient for ``marker`` and ``comparison`` (default: the first), lines
        coloured by group with ``group_by`` (see :func:`plot_paired`); ``metric`` by default ``pct_pos``,
        or ``mfi`` for a marker without a control (no % positive: positivity ``none``).

        Raises
        ------
        KeyError
            ``marker`` is not a marker of the results, or ``comparison`` (a pair, or
            ``"BASELINE:FOLLOWUP"``) not one of their comparisons.
        """
        from ..metadata import comparisons_of

        res = self.results
        self._check_marker(marker)
        compared = tuple(res.comparisons) or ((res.baseline, res.followup),)
        baseline, followup = comparisons_of(comparison)[0] if comparison is not None else compared[0]
        if (baseline, followup) not in compared:
            raise KeyError(f"{baseline}:{followup} is not a comparison of these results; comparisons: "
                           f"{', '.join(f'{b}:{f}' for b, f in compared)}")
        if metric is None:
            rows = res.paired[res.paired["marker"] == marker] if len(res.paired) else res.paired
            metric = "mfi" if len(rows) and rows["pct_pos_baseline"].isna().all() else "pct_pos"
        return plot_paired(res.paired, marker, cohort=res.cohort, metric=metric, baseline=baseline,
                           followup=followup, groups=self.groups(), group_table=getattr(res, "groups", None))

    def longitudinal(self, marker: str) -> Figure:
        """Each patient's % positive of ``marker`` across every timepoint (see :func:`plot_longitudinal`)."""
        res = self.results
        self._check_marker(marker)
        analysed = res.samples.loc[res.samples["status"] != "error", "file"]
        return plot_longitudinal(res.markers, marker, timepoints=res.timepoints, groups=self.groups(),
                                 ok_files=analysed)

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

        from ..fcs import FCSWarning, read_fcs
        from ..gating.load import load_template

        res = self.results
        if file not in res.paths:
            raise KeyError(f"{file!r} is not a file of these results; files: {sorted(res.paths)}")
        template = load_template(res.template_path, panel=getattr(res, "panel_path", "") or None)
        template.pooled = getattr(res, "pooled", {}) or {}
        row = res.samples[res.samples["file"] == file].iloc[0]

        def read(name: str):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FCSWarning)
                return read_fcs(res.paths[name])

        sample = read(file)
        samples = res.samples
        if is_control(row["stain"]):  # on the detectors of a stained tube it serves, else (as the pipeline)
            # of its timepoint's, of its patient's other timepoints', of the study's first
            stained = samples[~samples["stain"].map(is_control) & (samples["status"] != "error")]
            served = stained[stained["control_file"] == file] if "control_file" in stained else stained.iloc[:0]
            patients = stained[stained["patient"] == row["patient"]]
            group = pd.concat([served, patients[patients["timepoint"] == row["timepoint"]],
                               patients.sort_values("timepoint", kind="stable"), stained])
            reference = template.resolve_channels(read(group["file"].iloc[0])) if len(group) else None
            channels = template.resolve_channels(sample, reference=reference)
            result = template.apply(sample, is_control=True, channels=channels)
        else:
            iso_file = str(row.get("control_file", "") or "")
            control = None
            reference = template.resolve_channels(sample)
            if iso_file in res.paths:
                control = self._gated.get(iso_file)
                if control is None:
                    iso_sample = read(iso_file)
                    channels = template.resolve_channels(iso_sample, reference=reference)
                    control = self._keep(iso_file, template.apply(iso_sample, is_control=True,
                                                                  channels=channels))
            result = template.apply(sample, control=control)
        return self._keep(file, result)
