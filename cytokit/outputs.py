"""A run's output folder: the tables as CSV and Parquet, ``run.json``, ``plots/`` and ``report.html``.

The folder always holds one whole run. A new run's files are written into ``OUT/.staging``
first; only when every one is there are they moved into place (renames, ``run.json`` last),
with ``OUT/RUN_INCOMPLETE.txt`` saying so while that happens. A run that fails while writing
(a full disk) leaves the previous outputs as they were; one killed while moving files in is
finished by the next :func:`write_outputs` or :func:`recover` on the folder (and until then the
marker says plainly that the folder is incomplete). :func:`lock_folder` keeps two runs out of one
folder at once.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import __version__
from ._files import code_sha256, file_sha256, remove_stale_tmp, sync_files, write_atomic, write_staged
from .cache import template_sha256
from .errors import OutputError

STAGING = ".staging"
MARKER = "RUN_INCOMPLETE.txt"
LOCK = ".cytokit.lock"
_PLAN = ".plan.json"


def lock_folder(out: str | Path):
    """Hold ``out`` for this process until it exits (or the returned file is closed).

    Raises
    ------
    OutputError
        Another process holds the folder; the message names it.
    """
    out = Path(out)
    handle = open(out / LOCK, "a+")
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; one run at a time is then the user's to keep
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OutputError(f"{out} is in use by another cytokit run ({holder}); wait for it to finish "
                          "or choose another --out") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def check_writable(out: str | Path) -> None:
    """Raise :class:`OutputError` unless files can be created in ``out`` (made if missing) and it is
    new, empty (but for hidden files) or an earlier run's: a run replaces the files it wrote, and
    another folder's would be overwritten (``samples.csv``, ``report.html``)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = write_atomic(out / ".cytokit-write-test", b"")
        probe.unlink()
        others = [] if (out / "run.json").exists() or (out / MARKER).exists() else sorted(
            p.name for p in out.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the outputs there ({exc.strerror or exc})") from None
    if others:
        raise OutputError(f"{out} holds files that are not a cytokit run's ({', '.join(others[:3])}"
                          f"{', ...' if len(others) > 3 else ''}): choose a new or empty folder, or an earlier "
                          "run's --out")


def write_outputs(results, out: str | Path, *, run_info: dict, plots: bool = True,
                  anndata: str | None = None, flowjo: bool = False, agreement=None) -> dict[str, Path]:
    """Write every table as CSV and Parquet, ``run.json``, (with ``plots``) ``plots/`` and
    ``report.html``, (with ``anndata``, a population) ``events.h5ad``, (with ``flowjo``) the
    FlowJo workspace ``gates.wsp`` and (with ``agreement``, a
    :class:`~cytokit.report.agreement.AgreementSection`) ``compare.csv``, ``compare_summary.csv``,
    ``compare_f1.png`` and its section of the report into ``out``, replacing the previous run's as
    a whole.

    Returns the final path of every file but the figures, by name (``"samples.csv"``, ``"report.html"`` ...).

    Raises
    ------
    OutputError
        The files could not be written (the previous run's outputs are then unchanged).
    """
    out = Path(out)
    check_writable(out)
    recover(out)
    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        names = _write_staged(results, staging, run_info=run_info, plots=plots, anndata=anndata, flowjo=flowjo,
                              agreement=agreement)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"{out}: cannot write the outputs ({exc.strerror or exc}); the previous run's "
                          "outputs are unchanged") from None
    # Figures and a report of an earlier run that this run does not replace would contradict the
    # tables: the files that run wrote (its run.json lists them) and this one does not are removed.
    try:
        sync_files(staging / name for name in names)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"{out}: cannot write the outputs ({exc.strerror or exc}); the previous run's "
                          "outputs are unchanged") from None
    stale = [name for name in _written_before(out) if name not in names]
    write_atomic(staging / _PLAN, json.dumps({"move": names, "remove": stale}))
    write_atomic(out / MARKER, f"cytokit was replacing the outputs of this folder with a new run's (in {STAGING}/) "
                               "when it stopped: the files here are a mix of two runs. Run cytokit again with "
                               "this --out (any command that writes it) to finish, or delete the folder.\n")
    recover(out)
    return {name: out / name for name in names if not name.startswith("plots/")}


def _written_before(out: Path) -> list[str]:
    """The files the run in ``out`` wrote: its ``run.json``'s ``outputs`` (a run before they were
    listed: its figures and the files a run may leave out)."""
    try:
        listed = json.loads((out / "run.json").read_text()).get("outputs")
    except (OSError, ValueError, AttributeError):
        listed = None
    if isinstance(listed, list):  # names inside the folder only: a run.json is the folder's, not trusted further
        return [str(n) for n in listed if not Path(str(n)).is_absolute() and ".." not in Path(str(n)).parts]
    figures = sorted((out / "plots").glob("*")) if (out / "plots").is_dir() else []
    return [f"plots/{p.name}" for p in figures if p.suffix in (".png", ".svg")] + [
        "report.html", "events.h5ad", "gates.wsp", "groups.csv", "groups.parquet", "compare.csv",
        "compare_summary.csv", "compare_f1.png"]


def recover(out: str | Path) -> bool:
    """Finish moving a staged run into ``out`` if one was cut short there; discard a staging folder
    that never got complete. Returns whether a staged run was moved in."""
    out = Path(out)
    staging = out / STAGING
    if not (out / MARKER).exists():
        shutil.rmtree(staging, ignore_errors=True)  # a write that failed or was killed before it was whole
        return False
    plan = json.loads((staging / _PLAN).read_text())
    for name in plan["move"]:
        if (staging / name).exists():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, out / name)
    for name in plan["remove"]:
        (out / name).unlink(missing_ok=True)
    if (out / "plots").is_dir() and not any((out / "plots").iterdir()):
        (out / "plots").rmdir()  # a rerun with --no-plots removed every figure
    shutil.rmtree(staging, ignore_errors=True)
    (out / MARKER).unlink()
    for folder in (out, out / "plots"):
        if folder.is_dir():
            remove_stale_tmp(folder)
    return True


def _write_staged(results, staging: Path, *, run_info: dict, plots: bool, anndata: str | None,
                  flowjo: bool = False, agreement=None) -> list[str]:
    """Every output file into ``staging``; returns their names relative to it, ``run.json`` last. They are
    written plainly and made durable together by :func:`write_outputs` (a staging folder is published
    whole, or discarded)."""
    import io

    names = []
    for name in results.tables:
        table = getattr(results, name)
        write_staged(staging / f"{name}.csv", table.to_csv(index=False))
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        write_staged(staging / f"{name}.parquet", buffer.getvalue())
        names += [f"{name}.csv", f"{name}.parquet"]
    if plots:
        from .plots import ResultsPlotter, save_figures
        from .report import write_report

        plotter = ResultsPlotter(results)  # shared: files gated for the plots are reused by the report
        names += [f"plots/{p.name}" for p in save_figures(results, staging, plotter=plotter, write=write_staged)]
        write_report(results, staging / "report.html", plotter=plotter, agreement=agreement)
        names.append("report.html")
    if agreement is not None:
        names += agreement.write(staging)
    if anndata is not None:
        from .anndata_export import to_anndata, write_h5ad

        write_h5ad(to_anndata(results, population=anndata), staging / "events.h5ad")
        names.append("events.h5ad")
    if flowjo:
        from .flowjo_export import to_flowjo

        to_flowjo(results, staging / "gates.wsp")
        names.append("gates.wsp")
    names.append("run.json")
    write_staged(staging / "run.json", json.dumps({**run_info, "outputs": names}, indent=2, default=str))
    return names


def _panel_info(template_path: str, panel_path: str | None) -> dict | None:
    """The panel sheet the run's markers came from (``panel_path``, else the template's key), or None."""
    from .gating.load import load_template

    panel = load_template(template_path, panel=panel_path).panel
    return None if panel is None else {"path": panel.source, "sha256": panel.sha256}


def run_info(*, template_path: str, command: list[str], samples_source: str, timings: dict,
             panel_path: str | None = None) -> dict:
    """Provenance of a run: versions, the template's hash (with its panel sheet's), the command line,
    the sheets, timings."""
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
        "template": {"path": template_path, "sha256": template_sha256(template_path, panel_path),
                     "panel": _panel_info(template_path, panel_path)},
        "command": command,
        "samples": {"source": samples_source,
                    "sha256": file_sha256(source) if source.is_file() else None},
        "timings_seconds": timings,
    }
