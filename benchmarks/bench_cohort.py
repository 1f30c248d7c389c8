"""A whole cohort through ``cytokit run``: 1,000 files of 100,000 events, beside FlowKit per file, in one run.

    python benchmarks/bench_cohort.py [--patients 250] [--events 100000] [--dir DIR] [--keep]
                                      [--per-file-events 1000000] [--skip-per-file]

1. The cohort: ``cytokit simulate DIR --patients 250 --events 100000 --layout modern``
   (4 files per patient: 1,000 files, about 3.1 GB), written once (reused with ``--dir``
   when it is already there; removed at the end unless ``--keep``).
2. The whole command, timed from start to exit, a fresh ``--out`` each (no cache):
   ``cytokit run DIR --template gating_templates/cll_cd19_7aad.yaml --out OUT --quiet``
   with ``--workers 1`` and ``--workers 2``, each with ``--no-plots`` and with figures
   (``plots/`` and ``report.html``), and with ``--dask local`` on a ``LocalCluster`` of
   2 worker processes (``--no-plots``). Peak memory: every process of the command's tree
   is polled every 0.1 s for its ``VmHWM`` (peak resident set); the table gives the main
   process's and the largest worker's, against the goal of 3 × the largest file's decoded
   events + 400 MB per worker.
   ``--runs 1,4,1,4`` repeats runs in rounds: every run is a row of the table, and each goal is
   given per round (the round's runs paired) and as the median of the rounds.
3. Per file, against FlowKit: ``bench_batch.per_file`` (one 1,000,000-event group: cytokit's
   ``analyse_group`` with its fitted gates against FlowKit with static gates of the same
   shapes), in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_batch  # the per-file comparison with FlowKit

ROOT = bench_batch.ROOT
TEMPLATE = bench_batch.TEMPLATE
CYTOKIT = str(bench_batch.BIN / "cytokit")

RUNS = [  # (label, options)
    ("1 worker, no figures", ["--workers", "1", "--no-plots"]),
    ("2 workers, no figures", ["--workers", "2", "--no-plots"]),
    ("Dask LocalCluster (2 workers), no figures", ["--dask", "local", "--no-plots"]),
    ("1 worker, figures", ["--workers", "1"]),
    ("2 workers, figures", ["--workers", "2"]),
]


def _hwm(process: psutil.Process) -> int | None:
    try:
        with open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def timed_run(folder: Path, out: Path, options: list[str]) -> dict:
    """The whole command's wall time and the peak resident set of its main process and of its largest worker."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [CYTOKIT, "run", str(folder), "--template", str(TEMPLATE), "--out", str(out), "--quiet", *options]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    main = psutil.Process(proc.pid)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        try:
            tree = [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for p in tree:
            hwm = _hwm(p)
            if hwm is not None:
                peaks[p.pid] = max(peaks.get(p.pid, 0), hwm)
        time.sleep(0.1)
    seconds = time.perf_counter() - t0
    _, stderr = proc.communicate()
    timings = {}
    if (out / "run.json").exists():
        timings = json.loads((out / "run.json").read_text()).get("timings_seconds", {})
    workers = [v for pid, v in peaks.items() if pid != proc.pid]
    return {"seconds": seconds, "returncode": proc.returncode, "timings": timings,
            "main_peak": peaks.get(proc.pid), "worker_peak": max(workers) if workers else None,
            "stderr": stderr.strip().splitlines()[-1][:200] if stderr.strip() else "",
            "report_bytes": (out / "report.html").stat().st_size if (out / "report.html").exists() else None,
            "plots_bytes": sum(p.stat().st_size for p in (out / "plots").glob("*")) if (out / "plots").is_dir()
            else None}


def decoded_bytes(folder: Path) -> int:
    from cytokit.fcs import read_fcs

    largest = max(folder.glob("*.fcs"), key=lambda p: p.stat().st_size)
    return int(read_fcs(largest).events.memory_usage(index=False).sum())


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:,.0f}"


def _rounds(runs: list[tuple[str, dict]], label: str) -> list[dict]:
    return [r for name, r in runs if name == label]


def _goal(name: str, values: list[float], fmt, good) -> str:
    """A goal's row: each round's value (paired by round), their median, met in how many rounds."""
    met = sum(bool(good(v)) for v in values)
    shown = fmt(values[0]) if len(values) == 1 else (
        f"{', '.join(fmt(v) for v in values)} (median {fmt(statistics.median(values))})")
    verdict = "yes" if met == len(values) else "no" if not met else f"in {met} of {len(values)} rounds"
    return f"| {name} | {shown} | {verdict} |"


def to_markdown(n_files: int, events: int, runs: list[tuple[str, dict]], decoded: int, pf: dict | None,
                loads: list[str]) -> str:
    """The runs' table (in the order run) and the goals; a run repeated (``--runs 1,4,1,4``) is paired
    with the other labels' runs of the same round."""
    goal_mem = 3 * decoded + 400 * 2**20
    lines = [f"{n_files:,} files × {events:,} events (modern layout); load average {'; '.join(loads)}.", "",
             "| run | wall time (s) | files/s | main process peak (MB) | largest worker peak (MB) |",
             "|---|---:|---:|---:|---:|"]
    for label, r in runs:
        status = "" if r["returncode"] in (0, 1) else f" (exit {r['returncode']}: {r['stderr']})"
        lines.append(f"| {label}{status} | {r['seconds']:.1f} | {n_files / r['seconds']:.1f} | "
                     f"{_mb(r['main_peak'])} | {_mb(r['worker_peak'])} |")
    seconds = {label: [r["seconds"] for r in _rounds(runs, label)] for label, _ in RUNS}
    w1, w2 = seconds["1 worker, no figures"], seconds["2 workers, no figures"]
    dask, f2 = seconds["Dask LocalCluster (2 workers), no figures"], seconds["2 workers, figures"]
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    if w2:
        lines.append(_goal("2 workers, no figures ≤ 60 s", w2, lambda v: f"{v:.1f} s", lambda v: v <= 60))
    if f2:
        lines.append(_goal("2 workers, figures ≤ 90 s", f2, lambda v: f"{v:.1f} s", lambda v: v <= 90))
    if w1 and w2:
        lines.append(_goal("2 workers ≥ 1.8 × 1 worker", [a / b for a, b in zip(w1, w2)], lambda v: f"{v:.2f} ×",
                           lambda v: v >= 1.8))
    if w2 and f2:
        lines.append(_goal("figures add ≤ 50 % (2 workers)", [b / a - 1 for a, b in zip(w2, f2)],
                           lambda v: f"{100 * v:+.0f} %", lambda v: v <= 0.5))
    if w2 and dask:
        lines.append(_goal("Dask LocalCluster within 15 % of --workers 2", [b / a - 1 for a, b in zip(w2, dask)],
                           lambda v: f"{100 * v:+.0f} %", lambda v: v <= 0.15))
    peaks = [r["worker_peak"] for _, r in runs if r["worker_peak"]]
    if peaks:
        lines.append(f"| worker peak ≤ 3 × decoded ({_mb(decoded)} MB) + 400 MB = {_mb(goal_mem)} MB | "
                     f"{_mb(max(peaks))} MB | {'yes' if max(peaks) <= goal_mem else 'no'} |")
    if pf is not None:
        cyto = pf["cytokit"]
        fk = [r["seconds"] for r in pf["flowkit"].values() if "seconds" in r]
        if "seconds" in cyto and fk:
            per_file = cyto["seconds"] / 2
            flowkit = sum(fk) / len(fk)
            lines.append(f"| per {pf['n_events']:,}-event file ≥ 4 × faster than FlowKit | cytokit {per_file:.2f} s, "
                         f"FlowKit {flowkit:.2f} s: {flowkit / per_file:.2f} × | "
                         f"{'yes' if flowkit / per_file >= 4 else 'no'} |")
    report = (_rounds(runs, "2 workers, figures") or _rounds(runs, "1 worker, figures") or [None])[-1]
    if report and report["report_bytes"]:
        lines += ["", (f"With figures: report.html {_mb(report['report_bytes'])} MB, plots/ "
                       f"{_mb(report['plots_bytes'])} MB.")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=250)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help="the cohort folder (simulated when absent)")
    parser.add_argument("--keep", action="store_true", help="keep the simulated cohort")
    parser.add_argument("--per-file-events", type=int, default=1_000_000)
    parser.add_argument("--skip-per-file", action="store_true")
    parser.add_argument("--runs", default=",".join(str(i) for i in range(len(RUNS))),
                        help="which runs, by index into the list above (default all); repeated "
                             "(1,4,1,4): rounds, each goal given per round and as their median")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_cohort_"))
    folder = args.dir or tmp / "cohort"
    try:
        if not (folder / "samples.csv").exists():
            t0 = time.perf_counter()
            subprocess.run([CYTOKIT, "simulate", str(folder), "--patients", str(args.patients), "--events",
                            str(args.events), "--layout", "modern"], check=True, cwd=ROOT, capture_output=True)
            print(f"simulated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        n_files = len(list(folder.glob("*.fcs")))
        decoded = decoded_bytes(folder)
        loads, runs = [], []
        for i in (int(k) for k in args.runs.split(",")):
            label, options = RUNS[i]
            loads.append(f"{label}: {bench_batch._load()}")
            runs.append((label, timed_run(folder, tmp / "out", options)))
            print(f"{label}: {runs[-1][1]['seconds']:.1f} s", file=sys.stderr)
        pf = None
        if not args.skip_per_file:
            loads.append(f"per file: {bench_batch._load()}")
            pf = bench_batch.per_file(args.per_file_events, 3, tmp)
        print(to_markdown(n_files, args.events, runs, decoded, pf, loads))
        print(json.dumps({"runs": [{"label": label, **r} for label, r in runs], "per_file": pf, "decoded_bytes": decoded}, default=str), file=sys.stderr)
    finally:
        if args.keep and args.dir is None:
            print(f"cohort kept in {folder}", file=sys.stderr)
            shutil.rmtree(tmp / "out", ignore_errors=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
