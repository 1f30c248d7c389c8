"""What the figures add to a patient group's analysis, in CPU time of one process.

    python benchmarks/bench_figure_cpu.py COHORT [--repeat 3]

``COHORT``: a simulated modern-layout cohort (``cytokit simulate COHORT --patients 4 --events
100000 --layout modern``). Each patient's groups are analysed in this process with one BLAS thread
(as a ``cytokit run`` worker does), ``cytokit.pipeline.analyse_group(rows, template, pairing=...,
figures=...)``, with and without figures, interleaved, ``--repeat`` rounds after one warm-up round
(imports, the first figure of each layout). Then the figures alone: each gated file's
``plot_gates(..., raster=True).png()`` and each patient's ``plot_patient(..., raster=True).png()``, as the
pipeline draws them (``raster=True``). CPU time (``time.process_time``: steadier than wall time on
a machine shared with other jobs), medians, per file or per panel. It imports the cytokit of the
checkout it sits in (its folder's parent goes first on ``sys.path``): to compare two commits, run
each checkout's own copy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = str(ROOT / "gating_templates" / "cll_cd19_7aad.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cohort", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from cytokit import Experiment
    from cytokit.batch import _one_thread
    from cytokit.pipeline import analyse_group
    from cytokit.plots import ResultsPlotter, plot_gates, plot_patient

    exp = Experiment.from_folder(args.cohort, template=TEMPLATE)
    groups = [rows for rows, _ in exp.groups()]
    n_files = sum(len(rows) for rows in groups)
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with _one_thread():
        for round_ in range(args.repeat + 1):
            for figures in (False, True):
                t0 = time.process_time()
                results = [analyse_group(rows, TEMPLATE, pairing=exp.comparisons, figures=figures)
                           for rows in groups]
                if round_:
                    cpu[figures].append((time.process_time() - t0) / n_files)
        res = exp.run(figures=False)
        plotter = ResultsPlotter(res, cache_size=n_files)
        gating = [(row["file"], plotter.gating(row["file"])) for rows in groups for row in rows]
        gates, panels = [], []
        for _ in range(args.repeat + 1):
            t0 = time.process_time()
            for name, result in gating:
                plot_gates(result, title=f"{name}  ({len(result.scale):,} events)", raster=True).png()
            gates.append((time.process_time() - t0) / len(gating))
        patients = sorted(res.samples["patient"].unique())
        for _ in range(args.repeat + 1):
            t0 = time.process_time()
            for patient in patients:
                plot_patient(res, patient, raster=True).png()
            panels.append((time.process_time() - t0) / len(patients))
    del results
    without, with_ = statistics.median(cpu[False]) * 1e3, statistics.median(cpu[True]) * 1e3
    print(f"{n_files} files, {len(groups)} groups; CPU ms per file, median of {args.repeat}")
    print("| measure | CPU ms |\n|---|---:|")
    print(f"| analyse_group, figures=False, per file | {without:.1f} |")
    print(f"| analyse_group, figures=True, per file | {with_:.1f} |")
    print(f"| figures' share: with / without | {with_ / without:.2f}× |")
    print(f"| gating figure (plot_gates raster + png) | {statistics.median(gates[1:]) * 1e3:.1f} |")
    print(f"| patient panel (plot_patient raster + png) | {statistics.median(panels[1:]) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
