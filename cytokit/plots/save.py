"""Every figure of an experiment written under ``plots/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .encode import PNG_DPI, _figure_svg, figure_png
from .patient import panel_patients
from .plotter import ResultsPlotter
from .slugs import slug, unique_slugs

if TYPE_CHECKING:  # pragma: no cover
    from ._results import ResultsLike


def save_figures(results: ResultsLike, out_dir: str | Path, *, plotter: ResultsPlotter | None = None,
                 dpi: int = PNG_DPI, write: Callable[[Path, bytes], Path] | None = None) -> list[Path]:
    """Write every figure of ``results`` under ``out_dir/plots/``, atomically.

    ``paired_<marker>.png`` and ``.svg`` per marker (``paired_<marker>_<baseline>_<followup>`` per
    comparison when there are several), ``longitudinal_<marker>.png`` with more than two timepoints,
    ``patient_<patient>.png`` per
    patient, ``gates_<file>.png`` per analysed file (names through :func:`unique_slugs`:
    a short hash is appended where two names would give the same file). Gating and patient
    figures drawn during the analysis (``Experiment.run(figures=True)``) are written as they are;
    otherwise the files are gated again, and those that cannot be are skipped (their
    errors are in ``results.samples``). ``write``: how each file is written (default
    :func:`~cytokit._files.write_atomic`; ``cytokit run`` writes into a staging folder it syncs and
    publishes as a whole).

    Returns
    -------
    list of Path
        The files written.
    """
    from .._files import write_atomic
    from ..errors import CytokitError

    write = write or write_atomic
    plotter = plotter or ResultsPlotter(results)
    folder = Path(out_dir) / "plots"
    written: list[Path] = []

    def save(kind: str, key: str, name: str, comparison: tuple[str, str] | None = None) -> None:
        extra = {} if comparison is None else {"comparison": comparison}
        png = (plotter.png(kind, key, **extra) if dpi == PNG_DPI
               else figure_png(getattr(plotter, kind)(key, **extra), dpi=dpi))
        written.append(write(folder / f"{name}.png", png))

    markers = unique_slugs(results.markers["marker"]) if len(results.markers) else {}
    comparisons = list(results.comparisons)
    for marker, name in markers.items():
        for pair in comparisons:
            stem = f"paired_{name}" if len(comparisons) == 1 else f"paired_{name}_{slug(pair[0])}_{slug(pair[1])}"
            save("paired", marker, stem, comparison=pair)
            written.append(write(folder / f"{stem}.svg", _figure_svg(plotter.paired(marker, comparison=pair))))
        if len(results.timepoints) > 2:
            save("longitudinal", marker, f"longitudinal_{name}")
    patients = unique_slugs(sorted(p for p in results.samples["patient"].astype(str).unique() if p.strip()))
    drawn = panel_patients(results)
    for patient, name in patients.items():
        if str(patient) in drawn:
            save("patient", patient, f"patient_{name}")
    files = unique_slugs(results.samples["file"], label=lambda file: Path(file).stem)
    for file in results.samples.loc[results.samples["status"] != "error", "file"]:
        try:
            save("gates", file, f"gates_{files[file]}")
        except (CytokitError, KeyError):
            continue
    return written
