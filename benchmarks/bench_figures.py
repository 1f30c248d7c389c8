"""What the figures cost in a `cytokit run`: first run, rerun from the cache, and without plots.

    python benchmarks/bench_figures.py [--patients 10] [--events 100000] [--workers 2]

A simulated modern-layout cohort (patients × 4 files). Rows, each a fresh output folder
unless said, wall time of the whole command (best of ``--repeat``):

- ``--no-plots``: the tables only;
- with plots (gating figures and patient panels drawn in the workers, while the events are
  in memory; cached with each patient's results);
- the same command again on that output folder: every patient from the cache;
- for comparison, figures drawn *after* the analysis, as before this design: the Python API
  ``Experiment.run(figures=False)`` then ``write_outputs``, which gates every file again to
  draw it (once, shared by ``plots/`` and the report) in the parent process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "gating_templates" / "cll_cd19_7aad.yaml"

AFTERWARDS = """
import sys
from cytokit import Experiment
from cytokit.outputs import write_outputs
exp = Experiment.from_folder(sys.argv[1], template=sys.argv[2])
res = exp.run(workers=int(sys.argv[4]))
write_outputs(res, sys.argv[3], run_info={})
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from cytokit.simulate import simulate_cohort

    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cohort = tmp / "cohort"
        simulate_cohort(cohort, patients=args.patients, events=args.events, layout="modern")
        n_files = len(list(cohort.glob("*.fcs")))
        run = [str(BIN / "cytokit"), "run", str(cohort), "--template", str(TEMPLATE), "--quiet",
               "--workers", str(args.workers)]
        for _ in range(args.repeat):  # interleaved
            for label, extra in [("--no-plots", ["--no-plots"]), ("with plots", [])]:
                out = tmp / "out"
                shutil.rmtree(out, ignore_errors=True)
                rows.setdefault(label, []).append(timed([*run, "--out", str(out), *extra]))
                if label == "with plots":
                    rows.setdefault("with plots, rerun (all from the cache)", []).append(
                        timed([*run, "--out", str(out)]))
            out = tmp / "after"
            shutil.rmtree(out, ignore_errors=True)
            rows.setdefault("figures drawn afterwards, files gated again (API)", []).append(
                timed([sys.executable, "-c", AFTERWARDS, str(cohort), str(TEMPLATE), str(out), str(args.workers)]))
    print(f"{n_files} files × {args.events:,} events, {args.workers} workers, {os.cpu_count()} cores; "
          f"best of {args.repeat}\n")
    print("| run | wall time (s) | all runs (s) |\n|---|---:|---|")
    for label, seconds in rows.items():
        print(f"| {label} | {min(seconds):.1f} | {', '.join(f'{s:.1f}' for s in seconds)} |")


if __name__ == "__main__":
    main()
