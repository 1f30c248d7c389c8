"""Running tube groups: in this process, in worker processes or on a Dask cluster; the cache;
atomic output files.

Each group's result is cached in ``OUT/.cache`` under a key made of the sha256 of
its files, the template's hash and cytokit's code (:func:`code_sha256`), so a rerun does only what
changed. Every file is written to a temporary name and renamed into place, so a
run killed at any moment leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterator

from . import __version__
from ._files import code_sha256, file_sha256, remove_stale_tmp, write_atomic  # noqa: F401
from .errors import CytokitError


def template_sha256(path: str | Path) -> str:
    """The template's hash, and its compensation CSV's when it names one (editing the matrix
    must not reuse results compensated with the old one)."""
    from .gating.load import load_template

    template = load_template(path)
    matrix = template.compensation_path()
    if matrix is None:
        return template.sha256
    return hashlib.sha256(template.sha256.encode() + matrix.read_bytes()).hexdigest()


def group_key(group: tuple[list[dict], str | None], template_hash: str, pairing: tuple[str, str] | None = None) -> str:
    """Cache key: the group's files (name, role and content), the pairing, the template and cytokit's code."""
    rows, reference = group
    files = sorted((r["file"], r["stain"], r["timepoint"], r["patient"], r.get("status", "ok"), file_sha256(r["path"]))
                   for r in rows)
    ref = file_sha256(reference) if reference else None
    text = json.dumps({"files": files, "reference": ref, "pairing": pairing, "template": template_hash,
                       "code": code_sha256()})
    return hashlib.sha256(text.encode()).hexdigest()


class _Cache:
    """``OUT/.cache``: one pickle per tube group. Workers look up and store their own groups, so the
    hashing and the writing run in parallel; ``folder=None`` caches nothing."""

    def __init__(self, folder: str | Path | None, template_path: str, pairing: tuple[str, str] | None,
                 figures: bool = False):
        self.folder = Path(folder) if folder is not None else None
        self.template_hash = template_sha256(template_path) if folder is not None else ""
        self.pairing = pairing
        self.figures = figures
        if self.folder is not None and self.folder.is_dir():
            remove_stale_tmp(self.folder)

    def key(self, group: tuple[list[dict], str | None]) -> str | None:
        if self.folder is None:
            return None
        try:
            return group_key(group, self.template_hash, self.pairing)
        except OSError:
            return None  # a file vanished: analyse it and let the reader report it

    def get(self, key: str | None):
        """The cached group, or None; an entry without the figures this run draws is a miss."""
        if key is None:
            return None
        try:
            with open(self.folder / f"{key}.pkl", "rb") as fh:
                part = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError):
            return None
        return part if part.get("drew_figures") or not self.figures else None

    def put(self, key: str | None, value: dict) -> bool:
        """Store ``value``; False when this process cannot write there (a remote Dask worker)."""
        if key is not None:
            try:
                write_atomic(self.folder / f"{key}.pkl", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:
                return False
        return True


def _task(group: tuple[list[dict], str | None], template_path: str, cache: _Cache) -> tuple[str | None, dict, bool]:
    """One group, from the cache when nothing changed: (key, result, stored in the cache)."""
    from .experiment import analyse_group

    key = cache.key(group)
    part = cache.get(key)
    if part is not None:
        return key, part, True
    rows, reference = group
    part = analyse_group(rows, template_path, reference_path=reference, pairing=cache.pairing,
                         figures=cache.figures)
    return key, part, cache.put(key, part)


def _failed(part: dict) -> int:
    return sum(1 for r in part["samples"] if r["status"] == "error")


def _progress(total_files: int, enabled: bool) -> tuple[Callable[[dict], None], Callable[[], None]]:
    if not enabled:
        return (lambda part: None), (lambda: None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]analysing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
        TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    task = progress.add_task("files", total=total_files, failed=0, rate="")
    progress.start()
    state = {"failed": 0}

    def advance(part: dict) -> None:
        state["failed"] += _failed(part)
        done = progress.tasks[0].completed + len(part["samples"])
        elapsed = progress.tasks[0].elapsed or 1e-9
        progress.update(task, completed=done, failed=state["failed"], rate=f"{done / elapsed:.1f} files/s")

    return advance, progress.stop


class StrictFailure(CytokitError):
    """``--strict``: a file failed and the run stopped."""


def run_groups(groups: list[tuple[list[dict], str | None]], template_path: str, *,
               pairing: tuple[str, str] | None = None, workers: int = 1, dask: str | None = None,
               cache_dir: str | Path | None = None, progress: bool = False, strict: bool = False,
               figures: bool = False) -> list[dict]:
    """Analyse tube groups (``analyse_group`` with ``pairing`` and ``figures``), reusing cached results;
    returns one result dict per group, in order."""
    cache = _Cache(cache_dir, template_path, pairing, figures)
    parts: list[dict | None] = [None] * len(groups)
    advance, stop = _progress(sum(len(rows) for rows, _ in groups), progress)
    try:
        for i, (key, part, stored) in _execute(groups, template_path, cache, workers=workers, dask=dask):
            if not stored:
                cache.put(key, part)  # the worker could not write to the cache folder; this process can
            parts[i] = part
            advance(part)
            if strict and _failed(part):
                bad = next(r for r in part["samples"] if r["status"] == "error")
                raise StrictFailure(f"--strict: {bad['file']} failed: {bad['error']}")
    finally:
        stop()
    return parts  # type: ignore[return-value]


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_init() -> None:
    """Worker processes are the parallelism: one BLAS/OpenMP thread each. Measured on the
    demo-size files: threads made one worker slower (12.7 s single-threaded vs 15.4 s for
    40 files) and N workers × M threads oversubscribe the cores. Ctrl-C is the parent's to
    handle (it stops the workers); in a worker it only printed tracebacks."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    for name in _THREAD_VARS:
        os.environ[name] = "1"
    import numpy  # noqa: F401  (load the libraries, then limit the pools they started)
    import sklearn.mixture  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _die_with_parent() -> None:
    """Linux: the kernel ends this worker when the process that started it dies, even by SIGKILL
    (an orphaned worker otherwise waits for work forever)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: no such call
        return
    if os.getppid() == 1:  # the parent died before the call took effect
        os._exit(1)


def _execute(groups: list[tuple[list[dict], str | None]], template_path: str, cache: _Cache, *, workers: int,
             dask: str | None) -> Iterator[tuple[int, tuple[str | None, dict, bool]]]:
    if not groups:
        return
    if dask is not None:
        yield from _execute_dask(groups, template_path, cache, dask)
    elif workers <= 1 or len(groups) == 1:
        from threadpoolctl import threadpool_limits

        for i, group in enumerate(groups):
            with threadpool_limits(1):  # scoped: a notebook's own limits come back afterwards
                done = _task(group, template_path, cache)
            yield i, done
    else:
        # Import the analysis stack once here: forked workers inherit it instead of each paying ~1.1 s.
        import sklearn.mixture  # noqa: F401

        from . import experiment, paired, shift, stats  # noqa: F401
        from .gating import regions, template, thresholds  # noqa: F401

        if cache.figures:
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401

        pool = ProcessPoolExecutor(max_workers=min(workers, len(groups)), initializer=_worker_init)
        try:
            futures = {pool.submit(_task, g, template_path, cache): i for i, g in enumerate(groups)}
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:  # Ctrl-C, --strict, a closed generator: no new group starts
            # The running groups finish (terminating a worker mid-result leaves the pool's result pipe
            # half-written, and the pool's thread waits on it forever); `cytokit run` ends them itself.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()


DASK_CONNECT_TIMEOUT = 10  # seconds to reach a --dask scheduler


def _execute_dask(groups, template_path: str, cache: _Cache, address: str):
    try:
        from distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise CytokitError("--dask needs dask.distributed: pip install 'cytokit[dask]'") from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=max(1, os.cpu_count() or 1), threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None, processes=True)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
        except (OSError, ValueError) as exc:  # a malformed address, or no scheduler there
            raise CytokitError(f"--dask {address}: cannot connect to a Dask scheduler: {exc}") from None
    try:
        futures = {client.submit(_task, g, template_path, cache, pure=False): i for i, g in enumerate(groups)}
        for future in dask_completed(futures):
            yield futures[future], future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
