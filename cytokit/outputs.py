"""A run's output folder: the tables as CSV and Parquet, ``run.json``, ``plots/`` and ``report.html``.

Every file is written to a temporary name and renamed into place (:func:`~cytokit._files.write_atomic`),
so a run killed at any moment leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from ._files import code_sha256, file_sha256, remove_stale_tmp, write_atomic
from .cache import template_sha256


def write_outputs(results, out: str | Path, *, run_info: dict, plots: bool = True) -> dict[str, Path]:
    """Write every table as CSV and Parquet, ``run.json``, and (with ``plots``) ``plots/`` and
    ``report.html`` into ``out``; each file atomically."""
    import io

    out = Path(out)
    for folder in (out, out / "plots"):
        if folder.is_dir():
            remove_stale_tmp(folder)
    written: dict[str, Path] = {}
    for name in results.TABLES:
        table = getattr(results, name)
        written[f"{name}.csv"] = write_atomic(out / f"{name}.csv", table.to_csv(index=False))
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        written[f"{name}.parquet"] = write_atomic(out / f"{name}.parquet", buffer.getvalue())
    drawn: set[Path] = set()
    if plots:
        from .plots import ResultsPlotter, save_figures
        from .report import write_report

        plotter = ResultsPlotter(results)  # shared: files gated for the plots are reused by the report
        drawn = set(save_figures(results, out, plotter=plotter))  # writes out/plots/
        written["report.html"] = write_report(results, out / "report.html", plotter=plotter)
    else:
        (out / "report.html").unlink(missing_ok=True)  # a report of an earlier run would contradict the tables
    # Figures of an earlier run (other patients or files, or all of them with --no-plots) must not stay.
    for stale in (out / "plots").glob("*") if (out / "plots").is_dir() else []:
        if stale.suffix in (".png", ".svg") and stale not in drawn:
            stale.unlink()
    written["run.json"] = write_atomic(out / "run.json", json.dumps(run_info, indent=2, default=str))
    return written


def run_info(*, template_path: str, command: list[str], samples_source: str, timings: dict) -> dict:
    """Provenance of a run: versions, the template's hash, the command line, the sheet, timings."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "flowkit", "flowio", "flowutils",
                    "pyarrow", "jinja2", "dask", "distributed"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    source = Path(samples_source)
    return {
        "cytokit": __version__,
        "cytokit_code_sha256": code_sha256(),
        "dependencies": versions,
        "template": {"path": template_path, "sha256": template_sha256(template_path)},
        "command": command,
        "samples": {"source": samples_source,
                    "sha256": file_sha256(source) if source.is_file() else None},
        "timings_seconds": timings,
    }
