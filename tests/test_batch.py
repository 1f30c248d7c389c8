"""cytokit run: same results in process, in worker processes and on Dask; cache; kill and resume."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cytokit._files import write_atomic

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = str(REPO / "gating_templates" / "cll_cd19_7aad.yaml")
TABLES = ["samples", "populations", "markers", "paired", "cohort"]


def run_cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cytokit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def tables(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(out / f"{name}.csv") for name in TABLES}


def assert_same(a: dict, b: dict) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=False, rtol=1e-12)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Four patients of the modern demo cohort, copied so tests may change files."""
    folder = tmp_path_factory.mktemp("cohort")
    sheet = pd.read_csv(REPO / "sample_fcs" / "modern" / "samples.csv")
    sheet = sheet[sheet["patient"].isin(["CLL001", "CLL002", "CLL003", "CLL004"])]
    for name in sheet["file"]:
        shutil.copy(REPO / "sample_fcs" / "modern" / name, folder / name)
    sheet.to_csv(folder / "samples.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def long_cohort(tmp_path_factory) -> Path:
    """16 simulated patients (64 files): enough work left after the first group that an
    interruption lands mid-run however fast a group is."""
    from cytokit.simulate import simulate_cohort

    folder = tmp_path_factory.mktemp("long_cohort")
    simulate_cohort(folder, patients=16, events=20_000, layout="modern")  # returns the sheet's path
    return folder


@pytest.fixture(scope="module")
def long_reference(long_cohort, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("long_ref")
    proc = run_cli("run", long_cohort, "--template", TEMPLATE, "--out", out, "--workers", 2, "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return tables(out)


@pytest.fixture(scope="module")
def reference(cohort, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref")
    proc = run_cli("run", cohort, "--template", TEMPLATE, "--out", out, "--workers", 1, "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} >= {f"{t}.{ext}" for t in TABLES for ext in ("csv", "parquet")}
    return tables(out)


def test_worker_processes_give_the_same_results(cohort, reference, tmp_path):
    proc = run_cli("run", cohort, "--template", TEMPLATE, "--out", tmp_path, "--workers", 2, "--no-plots",
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert_same(tables(tmp_path), reference)
    parquet = pd.read_parquet(tmp_path / "markers.parquet")
    parquet = parquet.mask(parquet.eq(""))  # CSV reads "" as NaN
    pd.testing.assert_frame_equal(parquet, reference["markers"], check_dtype=False)


def test_dask_local_cluster_gives_the_same_results(cohort, reference, tmp_path):
    pytest.importorskip("distributed")
    proc = run_cli("run", cohort, "--template", TEMPLATE, "--out", tmp_path, "--dask", "local", "--no-plots",
                   "--quiet", "--workers", 1)
    assert proc.returncode == 0, proc.stderr
    assert "warning: --workers 1 is not used with --dask" in proc.stderr
    assert_same(tables(tmp_path), reference)


def test_rerun_uses_the_cache_and_redoes_only_what_changed(cohort, reference, tmp_path):
    assert run_cli("run", cohort, "--template", TEMPLATE, "--out", tmp_path, "--no-plots",
                   "--quiet").returncode == 0
    cache = tmp_path / ".cache"
    first = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(first) == 4  # one entry per patient
    assert run_cli("run", cohort, "--template", TEMPLATE, "--out", tmp_path, "--no-plots",
                   "--quiet").returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == first
    assert_same(tables(tmp_path), reference)


def test_cache_key_follows_the_code_not_just_the_version(cohort, monkeypatch):
    """A development install keeps one version across commits: cached results of older code must not be reused."""
    from cytokit import cache

    rows = [{"file": p.name, "stain": "stained", "timepoint": "C2D1", "patient": "P", "path": p}
            for p in sorted(Path(cohort).glob("*.fcs"))[:2]]
    key = cache.group_key((rows, None), "t")
    assert cache.group_key((rows, None), "t") == key
    assert len(cache.code_sha256()) == 64
    monkeypatch.setattr(cache, "code_sha256", lambda: "0" * 64)
    assert cache.group_key((rows, None), "t") != key


def test_a_rerun_with_plots_gates_no_file_again(cohort, tmp_path, monkeypatch):
    """Gating figures are drawn where the files are gated and cached with the group, so a rerun
    whose groups all come from the cache writes plots/ and report.html without gating anything."""
    from cytokit import Experiment
    from cytokit.outputs import write_outputs
    from cytokit.gating.template import Template

    exp = Experiment.from_folder(cohort, template=TEMPLATE)
    cache = tmp_path / ".cache"
    exp.run(cache_dir=cache)  # no figures: its cache entries cannot serve a run that draws them
    first = exp.run(cache_dir=cache, figures=True)
    assert sorted(first.figures) == sorted([("gates", f) for f in first.samples["file"]]
                                           + [("patient", p) for p in first.samples["patient"].unique()])
    write_outputs(first, tmp_path / "a", run_info={})

    def refuse(*args, **kwargs):
        raise AssertionError("a file was gated again")

    monkeypatch.setattr(Template, "apply", refuse)
    again = exp.run(cache_dir=cache, figures=True)
    write_outputs(again, tmp_path / "b", run_info={})
    for png in (tmp_path / "a" / "plots").glob("gates_*.png"):
        assert (tmp_path / "b" / "plots" / png.name).read_bytes() == png.read_bytes()
    assert len(list((tmp_path / "b" / "plots").glob("gates_*.png"))) == 16
    assert "gating figure not drawn" not in (tmp_path / "b" / "report.html").read_text()
    # every figure file, SVGs included, is rewritten byte for byte
    first_files = {p.name: p.read_bytes() for p in (tmp_path / "a" / "plots").iterdir()}
    assert {p.name: p.read_bytes() for p in (tmp_path / "b" / "plots").iterdir()} == first_files
    assert any(name.endswith(".svg") for name in first_files)
    # tables without plots: no report or figure of the earlier run stays beside them
    (tmp_path / "a" / "plots" / "notes.txt").write_text("mine")
    write_outputs(again, tmp_path / "a", run_info={}, plots=False)
    assert not (tmp_path / "a" / "report.html").exists()
    assert [p.name for p in (tmp_path / "a" / "plots").iterdir()] == ["notes.txt"]


def test_cache_key_follows_the_compensation_csv(tmp_path):
    from cytokit.cache import template_sha256

    (tmp_path / "m.csv").write_text("A,B\n1,0.2\n0.1,1\n")
    (tmp_path / "t.yaml").write_text(Path(TEMPLATE).read_text().replace("compensation: file", "compensation: m.csv"))
    before = template_sha256(tmp_path / "t.yaml")
    (tmp_path / "m.csv").write_text("A,B\n1,0.6\n0.1,1\n")
    assert template_sha256(tmp_path / "t.yaml") != before


def test_killed_run_resumes_to_identical_results(long_cohort, long_reference, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cytokit.cli", "run", str(long_cohort), "--template", TEMPLATE,
                             "--out", str(out), "--workers", "1", "--no-plots", "--quiet"], cwd=REPO, env=env)
    cache = out / ".cache"
    deadline = time.time() + 120
    while time.time() < deadline and not (cache.exists() and len(list(cache.glob("*.npz"))) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = list(cache.glob("*.npz"))
    assert 3 <= len(done) < 32, "the run should have been killed part-way"
    assert not list(out.glob("*.csv")), "no table is written before the analysis is complete"
    (cache / ".deadbeef.npz.abc123.tmp").write_bytes(b"half an entry")  # as a kill mid-write leaves
    resumed = run_cli("run", long_cohort, "--template", TEMPLATE, "--out", out, "--no-plots", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert_same(tables(out), long_reference)
    assert not list(out.rglob("*.tmp")), "temporary files of the killed run are cleaned up"


def _ctrl_c_default() -> None:
    """A command started in the background of a shell inherits SIGINT ignored (POSIX): give the run
    the handler it has when started from a terminal, whatever started these tests."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_workers_at_once_and_a_rerun_resumes(long_cohort, long_reference, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "cytokit.cli", "run", str(long_cohort), "--template", TEMPLATE,
                             "--out", str(out), "--workers", "2", "--no-plots", "--quiet"], cwd=REPO,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_ctrl_c_default)
    cache = out / ".cache"
    deadline = time.time() + 120
    while time.time() < deadline and not (cache.exists() and list(cache.glob("*.npz"))):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground process group
    started = time.time()
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and time.time() - started < 10, stderr
    assert "interrupted" in stderr and "run the same command again" in stderr and "Traceback" not in stderr
    assert not list(out.glob("*.csv"))
    assert len(list(cache.glob("*.npz"))) < 32, "the run should have been interrupted part-way"
    resumed = run_cli("run", long_cohort, "--template", TEMPLATE, "--out", out, "--no-plots", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert_same(tables(out), long_reference)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker PIDs from Linux /proc")
def test_workers_end_when_the_run_is_killed(cohort, tmp_path):
    """SIGKILL leaves the parent no time to stop its workers: the kernel ends them (PR_SET_PDEATHSIG)."""
    proc = subprocess.Popen([sys.executable, "-m", "cytokit.cli", "run", str(cohort), "--template", TEMPLATE,
                             "--out", str(tmp_path / "out"), "--workers", "2", "--no-plots", "--quiet"], cwd=REPO)

    def children() -> list[int]:
        found = []
        for task in Path(f"/proc/{proc.pid}/task").glob("*"):
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    deadline = time.time() + 60
    while time.time() < deadline and len(children()) < 2:
        time.sleep(0.05)
    workers = children()
    assert len(workers) >= 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "worker processes outlived their killed parent"


def test_failed_file_gives_exit_code_1_and_an_error_row(cohort, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(cohort, folder)
    victim = folder / "CLL002_C2D8_stained.fcs"
    victim.write_bytes(victim.read_bytes()[:5000])
    proc = run_cli("run", folder, "--template", TEMPLATE, "--out", tmp_path / "out", "--no-plots", "--quiet")
    assert proc.returncode == 1
    samples = pd.read_csv(tmp_path / "out" / "samples.csv").set_index("file")
    assert samples.loc["CLL002_C2D8_stained.fcs", "status"] == "error"
    assert "truncated" in samples.loc["CLL002_C2D8_stained.fcs", "error"]
    others = samples.drop("CLL002_C2D8_stained.fcs")
    cll002 = others.index.str.startswith("CLL002")  # analysed, but left out of the paired comparison
    assert (others.loc[cll002, "status"] == "unpaired").all()
    assert others.loc[cll002, "error"].str.contains("CLL002_C2D8_stained.fcs failed").all()
    assert (others.loc[~cll002, "status"] == "ok").all()
    strict = run_cli("run", folder, "--template", TEMPLATE, "--out", tmp_path / "strict", "--strict",
                     "--no-plots", "--quiet", "--workers", 1)
    assert strict.returncode == 1 and "--strict" in strict.stderr


def test_template_errors_exit_2_before_analysis(cohort, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: {fsc: {pnn: [FSC-A]}}\npopulations:\n  - {name: A, parent: root, gate: {type: blob}}\n")
    proc = run_cli("run", cohort, "--template", bad, "--out", tmp_path / "out", "--quiet")
    assert proc.returncode == 2
    assert "bad.yaml, line 3" in proc.stderr and "blob" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_write_atomic_leaves_old_file_on_failure(tmp_path):
    target = write_atomic(tmp_path / "t.csv", "old")

    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # not bytes: fails while writing
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_parent_stores_what_a_worker_could_not_cache(cohort, tmp_path, monkeypatch):
    """A remote Dask worker may not see OUT/.cache: its result is cached by the parent instead."""
    from cytokit import batch, cache
    from cytokit.experiment import Experiment

    exp = Experiment.from_folder(cohort, template=TEMPLATE)
    groups = exp.groups()[:2]
    tried = []
    real_put = cache.Cache.put

    def put(self, key, value):
        if key not in tried:  # the first attempt (the "worker's") fails
            tried.append(key)
            return False
        return real_put(self, key, value)

    monkeypatch.setattr(cache.Cache, "put", put)
    results = batch.run_groups(groups, exp.template_path, pairing=("C2D1", "C2D8"), cache_dir=tmp_path)
    assert len(tried) == 2 and all(len(r.paired) for r in results)
    assert sorted(p.stem for p in tmp_path.glob("*.npz")) == sorted(tried)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_write_atomic_gives_the_mode_of_a_plain_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        target = write_atomic(tmp_path / "t.csv", "x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == mode


def test_unreachable_dask_scheduler_is_a_cytokit_error(monkeypatch):
    pytest.importorskip("distributed")
    from cytokit import batch
    from cytokit.errors import CytokitError

    monkeypatch.setattr(batch, "DASK_CONNECT_TIMEOUT", 1)
    with pytest.raises(CytokitError, match="--dask tcp://127.0.0.1:1: cannot connect"):
        batch.run_groups([([], None)], TEMPLATE, dask="tcp://127.0.0.1:1")


def test_strict_stops_before_the_analysis_at_a_metadata_error(cohort, tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(cohort, folder)
    (folder / "odd-name.fcs").write_bytes((folder / "CLL001_C2D1_stained.fcs").read_bytes())
    proc = run_cli("run", folder, "--template", TEMPLATE, "--out", tmp_path / "out", "--strict", "--quiet",
                   "--pattern", "{patient}_{timepoint}_{stain}.fcs")
    assert proc.returncode == 1
    assert "--strict" in proc.stderr and "odd-name.fcs" in proc.stderr and "does not fit the pattern" in proc.stderr
    assert not (tmp_path / "out" / "samples.csv").exists()


def test_the_progress_bar_counts_files_that_failed_before_the_analysis(tmp_path, capsys):
    """It said "4/4 files 0 failed" where the summary said "5 files ... 1 failed" (a name not fitting the pattern)."""
    from cytokit import Experiment

    for path in (REPO / "sample_fcs" / "modern").glob("CLL001_*.fcs"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "notes.fcs").write_bytes(b"x")  # fits no {patient}_{timepoint}_{stain}.fcs: a metadata error
    exp = Experiment.from_folder(tmp_path, template=TEMPLATE)
    assert (exp.samples["status"] == "error").sum() == 1
    exp.run(progress=True)
    shown = capsys.readouterr().err  # stderr is no terminal here: a line per tenth of the files, not a bar
    assert "cytokit: analysed 5/5 files, 1 failed" in shown


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped interrupt, printed
def test_a_ctrl_c_dropped_inside_a_finaliser_still_stops_the_run(monkeypatch, request):
    """Python prints and drops a KeyboardInterrupt raised inside ``__del__``; run_groups notes the
    signal itself and stops at the next group."""
    from cytokit import batch

    class Finaliser:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # the handler's KeyboardInterrupt is dropped here

    done = []

    def execute(groups, template_path, cache, *, workers, dask):
        for i in range(3):
            Finaliser()  # collected at once: Ctrl-C lands inside its __del__
            done.append(i)
            yield i, (None, None, True)

    monkeypatch.setattr(batch, "_execute", execute)
    monkeypatch.setattr(batch, "_progress", lambda *a: (lambda result: None, lambda: None))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, as an interactive run has
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with pytest.raises(KeyboardInterrupt):
        batch.run_groups([([], None)] * 3, TEMPLATE)
    assert done == [0] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt: glibc only")
def test_an_analysis_process_keeps_freed_memory_for_the_next_group():
    """In a worker (or the ``cytokit run`` process) a freed 64 MB array stays in the heap for the
    next group instead of being unmapped and faulted in again; a user's own process is not changed."""
    script = """
import sys, numpy as np
from cytokit.batch import keep_freed_memory
def rss():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')) // 1024
if sys.argv[1] == 'keep':
    keep_freed_memory()
a = np.ones(8_000_000)  # 64 MB
held = rss()
del a
print(held - rss())
"""
    freed = {mode: int(subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                                      check=True, cwd=REPO).stdout) for mode in ("keep", "default")}
    assert freed["default"] > 50  # glibc's default: the block is unmapped when freed
    assert freed["keep"] < 5


def _one_patient_cut(folder: Path, name: str, n_events: int) -> Path:
    """CLL001's four demo tubes in ``folder``, ``name`` cut to its first ``n_events`` events."""
    from cytokit.fcs import read_fcs, write_fcs

    folder.mkdir(exist_ok=True)
    for tube in ("C2D1_isotype", "C2D1_stained", "C2D8_isotype", "C2D8_stained"):
        shutil.copy(REPO / "sample_fcs" / "modern" / f"CLL001_{tube}.fcs", folder / f"CLL001_{tube}.fcs")
    sample = read_fcs(folder / name)
    write_fcs(folder / name, sample.events.iloc[:n_events], markers=dict(zip(sample.channels.pnn, sample.channels.pns)))
    return folder


def test_a_file_without_events_is_an_error_naming_it(tmp_path):
    """An aborted acquisition is valid FCS with $TOT 0: the run says so instead of gating nothing."""
    from cytokit import Experiment

    _one_patient_cut(tmp_path, "CLL001_C2D8_isotype.fcs", 0)
    res = Experiment.from_folder(tmp_path, template=TEMPLATE).run(figures=False)
    samples = res.samples.set_index("file")
    assert samples.loc["CLL001_C2D8_isotype.fcs", "status"] == "error"
    assert samples.loc["CLL001_C2D8_isotype.fcs", "error"] == (
        f"{tmp_path / 'CLL001_C2D8_isotype.fcs'}: the file holds no events ($TOT 0): nothing to gate")
    assert samples.loc["CLL001_C2D8_stained.fcs", "error"].startswith(
        "its isotype tube CLL001_C2D8_isotype.fcs could not be analysed")
    assert (samples.loc[["CLL001_C2D1_isotype.fcs", "CLL001_C2D1_stained.fcs"], "status"] == "unpaired").all()


def test_a_file_whose_gate_failed_is_named_in_the_summary(tmp_path):
    """A readable file whose first gate failed (10 events) is analysed, its values NaN: the summary says so."""
    folder = _one_patient_cut(tmp_path / "fcs", "CLL001_C2D8_stained.fcs", 10)
    proc = run_cli("run", folder, "--template", TEMPLATE, "--out", tmp_path / "out", "--no-plots", "--workers", 1)
    assert "4 files: 4 analysed, 0 failed, 0 unpaired, 1 with a failed gate; 1 paired patients" in proc.stdout
    assert "  gate failed: CLL001_C2D8_stained.fcs: Lymphocytes: gate failed: too few events to fit" in proc.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())  # no sheet: the files' names were read
    assert run["samples"] == {"source": "pattern {patient}_{timepoint}_{stain}.fcs", "sha256": None}


def test_a_group_runs_on_one_blas_and_openmp_thread_and_the_limit_is_undone():
    """Workers × threads oversubscribe the cores; a notebook's own thread counts come back afterwards."""
    import sklearn.cluster  # noqa: F401  (its OpenMP loaded, as the analysis loads it)
    from threadpoolctl import threadpool_info, threadpool_limits

    from cytokit.batch import _one_thread

    with threadpool_limits(2):  # as a 2-core machine starts, whatever this one has
        before = {(i["internal_api"], i["filepath"]): i["num_threads"] for i in threadpool_info()}
        with _one_thread():
            inside = {(i["internal_api"], i["filepath"]): i["num_threads"] for i in threadpool_info()}
        after = {(i["internal_api"], i["filepath"]): i["num_threads"] for i in threadpool_info()}
    assert any(api == "openmp" for api, _ in inside)  # scikit-learn's OpenMP is among them
    assert set(inside.values()) == {1}
    assert after == before and max(before.values()) == 2
