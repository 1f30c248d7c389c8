"""Running tube groups: in this process, in worker processes or on a Dask cluster.

Each group is :func:`~cytokit.pipeline.analyse_group`; its result is looked up in and stored to
the run's :class:`~cytokit.cache.Cache` by the process that analyses it.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterator

from .cache import Cache
from .errors import CytokitError
from .metadata import Comparisons
from .pipeline import GroupResult, analyse_group


Group = tuple[list[dict], "str | None"]
"""A tube group to analyse: its files' rows (``file, patient, timepoint, stain, status, path,
control_file``) and the reference stained tube its controls may borrow detectors from (or None)."""


def _task(group: Group, template_path: str, cache: Cache) -> tuple[str | None, GroupResult, bool]:
    """One group, from the cache when nothing changed: (key, result, stored in the cache)."""
    key = cache.key(group)
    result = cache.get(key)
    if result is not None:
        return key, result, True
    rows, reference = group
    with _one_thread():
        result = analyse_group(rows, template_path, reference_path=reference, pairing=cache.pairing,
                               figures=cache.figures, pooled=cache.pooled, panel_path=cache.panel)
    return key, result, cache.put(key, result)


def _one_thread():
    """One BLAS/OpenMP thread while a group is analysed, wherever it runs (this process, a pool
    worker, a Dask worker): the groups are the parallelism. Measured here: a 10,000-event
    Gaussian-mixture fit took 0.48 s with 2 OpenMP threads on 2 busy cores and 0.035 s with one; on
    demo-size files threads made one worker slower (12.7 s single-threaded vs 15.4 s for 40 files),
    and N workers × M threads oversubscribe the cores."""
    return _thread_pools().limit(limits=1)


@functools.lru_cache(maxsize=1)
def _thread_pools():
    """The process's BLAS and OpenMP libraries, found once: ``threadpool_limits`` looks them up on every
    call (2.6 ms, a group's analysis is ~170 ms), a controller's ``limit`` does not (0.01 ms).
    scikit-learn's OpenMP pool is loaded first, since a limit only reaches libraries already loaded
    (NumPy's and SciPy's OpenBLAS come with it)."""
    import sklearn.cluster  # noqa: F401  (the k-means of ClusterGate: OpenMP)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _failed(result: GroupResult) -> int:
    return int((result.samples["status"] == "error").sum())


def _progress(total_files: int, enabled: bool, failed_before: int = 0,
              ) -> tuple[Callable[[GroupResult], None], Callable[[], None]]:
    """(advance after each group, stop): a progress bar on stderr, or where stderr is no terminal (a
    log file, a cluster job's output) a line at every tenth of the files, at most every 30 s."""
    if not enabled:
        return (lambda result: None), (lambda: None)
    if not sys.stderr.isatty():
        return _progress_lines(total_files + failed_before, failed_before), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]analysing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
        TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("files", total=total_files + failed_before, completed=failed_before,
                             failed=failed_before, rate="")
    progress.start()
    state = {"failed": failed_before}

    def advance(result: GroupResult) -> None:
        state["failed"] += _failed(result)
        done = progress.tasks[0].completed + len(result.samples)
        elapsed = progress.tasks[0].elapsed or 1e-9
        progress.update(task, completed=done, failed=state["failed"], rate=f"{done / elapsed:.1f} files/s")

    return advance, progress.stop


def _progress_lines(total: int, failed_before: int) -> Callable[[GroupResult], None]:
    started = time.monotonic()
    state = {"done": failed_before, "failed": failed_before, "said": 0.0, "step": 0}

    def advance(result: GroupResult) -> None:
        state["done"] += len(result.samples)
        state["failed"] += _failed(result)
        elapsed = time.monotonic() - started
        step = 10 * state["done"] // max(total, 1)
        if step > state["step"] or (elapsed - state["said"] >= 30 and state["done"] < total):
            state["step"], state["said"] = max(step, state["step"]), elapsed
            print(f"cytokit: analysed {state['done']}/{total} files, {state['failed']} failed, "
                  f"{state['done'] / max(elapsed, 1e-9):.1f} files/s", file=sys.stderr, flush=True)

    return advance


class StrictFailure(CytokitError):
    """``--strict``: a file failed and the run stopped."""


def run_groups(groups: list[Group], template_path: str, *,
               pairing: Comparisons | None = None, workers: int = 1, dask: str | None = None,
               cache_dir: str | Path | None = None, progress: bool = False, strict: bool = False,
               figures: bool = False, failed_before: int = 0, pooled: dict | None = None,
               panel: str | None = None, prune: bool = False) -> list[GroupResult]:
    """Analyse tube groups (:func:`~cytokit.pipeline.analyse_group` with ``pairing``: one
    ``(baseline, followup)`` or a sequence of them, ``figures`` and ``panel``, a panel sheet's path),
    reusing cached results; returns one :class:`~cytokit.pipeline.GroupResult` per group, in order.
    ``failed_before``: files that failed before the analysis (metadata errors), counted by the progress bar
    as done and failed so that it ends at the run's own count of files. ``pooled``: the template's
    ``pool: true`` gates fitted on the whole run (:func:`~cytokit.gating.pooling.fit_pooled`). ``prune``:
    once every group is done, delete the cache entries this run did not use."""
    cache = Cache(cache_dir, template_path, pairing, figures, pooled, panel=panel)
    results: list[GroupResult | None] = [None] * len(groups)
    keys: set[str] = set()
    advance, stop = _progress(sum(len(rows) for rows, _ in groups), progress, failed_before)
    seen, previous = _watch_ctrl_c()
    try:
        for i, (key, result, stored) in _execute(groups, template_path, cache, workers=workers, dask=dask):
            if seen:  # a Ctrl-C whose KeyboardInterrupt was dropped (see _watch_ctrl_c)
                raise KeyboardInterrupt
            if not stored:
                cache.put(key, result)  # the worker could not write to the cache folder; this process can
            results[i] = result
            keys.add(key)
            advance(result)
            if strict and _failed(result):
                bad = result.samples[result.samples["status"] == "error"].iloc[0]
                raise StrictFailure(f"--strict: {bad['file']} failed: {bad['error']}")
        if seen:
            raise KeyboardInterrupt
        if prune and None not in keys:  # a key could not be made (a file vanished): keep everything
            cache.prune(keys)
    finally:
        stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return results  # type: ignore[return-value]


def _watch_ctrl_c() -> tuple[list, object]:
    """A Ctrl-C raises KeyboardInterrupt wherever the main thread is, and inside a ``__del__`` or a
    weakref callback Python prints it and drops it ("Exception ignored in ..."): the run would go on
    to the end. While groups run, Python's own handler is replaced by one that also notes the
    signal, so the loop stops at the next group whatever happened to the exception. Returns the
    note (a list) and the handler to restore (None: nothing replaced, not the main thread or a
    handler of the caller's own)."""
    seen: list[int] = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        return seen, None

    def noted(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    return seen, signal.signal(signal.SIGINT, noted)


def _worker_init() -> None:
    """Ctrl-C is the parent's to handle (it stops the workers); in a worker it only printed
    tracebacks. Threads are limited per task (:func:`_one_thread`), wherever the task runs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    keep_freed_memory()


def keep_freed_memory() -> None:
    """glibc: serve every allocation from the heap and keep what is freed, in a process that only
    analyses groups (a worker, the ``cytokit run`` command), never a user's own.

    Each group allocates and frees the same large arrays (a 10**6-event file's events are 64 MB):
    glibc maps any block over its mmap threshold (32 MB at most) afresh and unmaps it when freed,
    so every group touched new pages, each a page fault. Measured on the 2 × 10**6-event group of
    ``bench_batch.py``: 0.73 s → 0.68 s; on 160 files of 10**5 events with 2 workers, system time
    1.1 s → 0.6 s and the run 6.5 s → 6.1 s, at the same peak memory (a worker's peak is what it
    held at once; it now keeps that much mapped between groups)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): its own allocator's defaults
        return
    mallopt(-4, 0)  # M_MMAP_MAX: no block is mmap'ed on its own
    mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD: free memory stays in the heap for the next group


def _die_with_parent() -> None:
    """Linux: the kernel ends this worker when the process that started it dies, even by SIGKILL
    (an orphaned worker otherwise waits for work forever)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: no such call
        return
    if os.getppid() == 1:  # the parent died before the call took effect
        os._exit(1)


def _execute(groups: list[Group], template_path: str, cache: Cache, *, workers: int,
             dask: str | None) -> Iterator[tuple[int, tuple[str | None, GroupResult, bool]]]:
    if not groups:
        return
    if dask is not None:
        yield from _execute_dask(groups, template_path, cache, dask)
    elif workers <= 1 or len(groups) == 1:
        for i, group in enumerate(groups):  # _task's thread limit is scoped: a notebook's own comes back after
            yield i, _task(group, template_path, cache)
    else:
        _import_analysis(cache.figures)  # forked workers inherit it instead of each paying ~1.1 s
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


def _import_analysis(figures: bool) -> None:
    """Import the analysis stack in this process, before it forks workers."""
    import sklearn.cluster  # noqa: F401  (the k-means of ClusterGate: OpenMP)

    from . import cohort, quality  # noqa: F401
    from .gating import apply, load, regions, template, thresholds  # noqa: F401

    if figures:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401


DASK_CONNECT_TIMEOUT = 10  # seconds to reach a --dask scheduler


def _execute_dask(groups, template_path: str, cache: Cache, address: str):
    try:
        from distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise CytokitError("--dask needs dask.distributed: pip install 'cytokit[dask]'") from None
    cluster = None
    if address == "local":
        import dask

        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, so that glibc hands freed memory
        # back at once; every large NumPy array is then new pages again. Measured on 100,000-event
        # groups: 16 times the page faults and 0.3 s of system time per group (0.03 s without).
        # On Linux the workers are forked from this process with the analysis stack already imported,
        # as the process pool's are: spawned, each imported it again for its first group (1.3 s).
        # Elsewhere (macOS: fork is unsafe with the system's frameworks) Dask's default spawn.
        method = "fork" if sys.platform.startswith("linux") else dask.config.get(
            "distributed.worker.multiprocessing-method")
        if method == "fork":
            _import_analysis(cache.figures)
        # No dashboard, so no use for each worker's statistical profiler, which samples the task's
        # thread every 10 ms: on 160 files its workers' other threads took 0.26-0.50 s of CPU each
        # with it, 0.12-0.20 s without (the groups themselves 3.7-4.9 s per worker).
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                              "distributed.worker.multiprocessing-method": method,
                              "distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=max(1, os.cpu_count() or 1), threads_per_worker=1,
                                   host="127.0.0.1", dashboard_address=None, processes=True)
        client = Client(cluster)
        client.run(keep_freed_memory)  # the workers are cytokit's own (a shared cluster's are its admin's)
    else:
        try:
            client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
        except (OSError, ValueError) as exc:  # a malformed address, or no scheduler there
            raise CytokitError(f"--dask {address}: cannot connect to a Dask scheduler: {exc}") from None
    try:
        futures = {client.submit(_task, g, template_path, cache, pure=False): i for i, g in enumerate(groups)}
        for future in dask_completed(futures):
            i, result = futures.pop(future), future.result()
            future.release()  # the worker holds a result while any future of it lives: let it go now
            yield i, result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


