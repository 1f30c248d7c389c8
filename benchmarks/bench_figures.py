"""What the figures cost in a `cytokit run`: first run, rerun from the cache, and without plots.

    python benchmarks/bench_figures.py [--patients 10] [--events 100000] [--workers 2] [--other DIR]

A simulated modern-layout cohort (patients × 4 files). Rows, each a fresh output folder
unless said, wall time of the whole command (best of ``--repeat``):

- ``--no-plots``: the tables only;
- with plots (gating figures and patient panels drawn in the workers, while the events are
  in memory; cached with each patient's results);
- the same command again on that output folder: every patient from the cache;
- with ``--afterwards``, for comparison, figures drawn *after* the analysis, as before this
  design: the Python API ``Experiment.run(figures=False)`` then ``write_outputs``, which gates
  every file again to draw it (once, shared by ``plots/`` and the report) in the parent process.

Each row gives the wall time and the CPU seconds of the command and its worker processes; on a
machine shared with other jobs the CPU seconds are the steadier measure. ``--other DIR`` (another
checkout of cytokit, say the commit before a change) runs the same rows from that source,
interleaved with this one's, so the two are compared in one machine state.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "gating_templates" / "cll_cd19_7aad.yaml"

AFTERWARDS = """
import sys
from cytokit import Experiment
from cytokit.outputs import write_outputs
exp = Experiment.from_folder(sys.argv[1], template=sys.argv[2])
res = exp.run(workers=int(sys.argv[4]))
write_outputs(res, sys.argv[3], run_info={})
"""


def timed(cmd: list[str], source: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU seconds (the command's and its children's) of ``cmd`` run on ``source``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=source, check=False,
                          env={**os.environ, "PYTHONPATH": str(source)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--afterwards", action="store_true", help="also the figures drawn after the analysis")
    parser.add_argument("--other", type=Path, help="another cytokit checkout, run interleaved with this one")
    args = parser.parse_args()
    from cytokit.simulate import simulate_cohort

    sources = {"": ROOT} if args.other is None else {"this: ": ROOT, "other: ": args.other.resolve()}
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cohort = tmp / "cohort"
        simulate_cohort(cohort, patients=args.patients, events=args.events, layout="modern")
        n_files = len(list(cohort.glob("*.fcs")))
        for _ in range(args.repeat):  # interleaved
            for name, source in sources.items():
                run = [sys.executable, "-m", "cytokit.cli", "run", str(cohort), "--template", str(TEMPLATE),
                       "--quiet", "--workers", str(args.workers)]
                for label, extra in [("--no-plots", ["--no-plots"]), ("with plots", [])]:
                    out = tmp / "out"
                    shutil.rmtree(out, ignore_errors=True)
                    rows.setdefault(name + label, []).append(timed([*run, "--out", str(out), *extra], source))
                    if label == "with plots":
                        rows.setdefault(name + "with plots, rerun (all from the cache)", []).append(
                            timed([*run, "--out", str(out)], source))
                if args.afterwards:
                    out = tmp / "after"
                    shutil.rmtree(out, ignore_errors=True)
                    rows.setdefault(name + "figures drawn afterwards, files gated again (API)", []).append(
                        timed([sys.executable, "-c", AFTERWARDS, str(cohort), str(TEMPLATE), str(out),
                               str(args.workers)], source))
    print(f"{n_files} files × {args.events:,} events, {args.workers} workers, {os.cpu_count()} cores; "
          f"best of {args.repeat}; load average at the end {os.getloadavg()[0]:.1f}\n")
    print("| run | wall time (s) | CPU (s) | all runs: wall / CPU (s) |\n|---|---:|---:|---|")
    for label, runs in rows.items():
        print(f"| {label} | {min(w for w, _ in runs):.1f} | {min(c for _, c in runs):.1f} | "
              f"{', '.join(f'{w:.1f} / {c:.1f}' for w, c in runs)} |")
    for name in sources:
        plots, bare = rows[name + "with plots"], rows[name + "--no-plots"]
        print(f"\n{name}with plots / --no-plots: wall "
              f"{min(w for w, _ in plots) / min(w for w, _ in bare):.2f}×, "
              f"CPU {min(c for _, c in plots) / min(c for _, c in bare):.2f}×")


if __name__ == "__main__":
    main()
