"""Batch analysis: per-file cost against FlowKit, cohort throughput, memory and start-up, in one run.

    python benchmarks/bench_batch.py [--events 1000000] [--repeat 3] [--patients 10] [--batch-events 100000]

1. Per file, on a simulated modern-layout cohort of one patient (``--events`` per file):
   ``cytokit.pipeline.analyse_group`` on the C2D1 group (isotype + stained tube: read,
   compensate, transform, the shipped template with its fitted gates, statistics) with one
   BLAS thread, as ``cytokit run`` runs every group, reported as the group's time / 2.
   Against it, FlowKit doing the same work with *static* gates of
   the same shapes (the gates cytokit fitted, exported as Gating-ML): ``flowkit.Sample``,
   ``apply_compensation`` with the file's spillover, ``apply_transform`` (logicle
   T=262144 w=0.5 m=4.5 a=0 for fluorescence and SSC, linear T=262144 for FSC, as the
   template says), ``parse_gating_xml`` + ``gate_sample``, and the LAG3/TNFa medians of
   CD19+ with pandas; for both tubes, each with its default BLAS threads and with one (the
   faster counts), reported per file (mean of the two).
2. Batch throughput: ``cytokit run`` on a simulated cohort (``--patients`` × 4 files of
   ``--batch-events``) with ``--workers 1`` and ``--workers 2``, a fresh ``--out`` each, best
   of ``--batch-repeat`` interleaved runs;
   the whole command's wall time, and the analysis phase alone (``run.json``
   ``timings.groups``). Then the same on a larger cohort (``--patients-large``), where the
   fixed costs (interpreter, imports, pairing, writing) weigh less.
3. Peak memory of the process running ``analyse_group`` on the big group: VmHWM rise over
   its resident size after imports, against the largest file's decoded events (the bytes of
   ``read_fcs(...).events``: float32 for these files).
4. ``cytokit --help`` start-up (best of 10) and the heavy modules ``import cytokit.cli`` loads.

Every measurement runs in a fresh subprocess (as in ``bench_read.py``); times are the best
of ``--repeat`` unless said otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "gating_templates" / "cll_cd19_7aad.yaml"
BIN = Path(sys.executable).parent
HEAVY = ("matplotlib", "flowkit", "sklearn", "scipy", "pandas")

COMMON = """
import json, sys, time, gc
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
"""

CYTOKIT_RUNNER = COMMON + """
import cytokit, cytokit.fcs, cytokit.pipeline, cytokit.gating.template, cytokit.gating.load, cytokit.gating.thresholds
import cytokit.gating.gates, cytokit.gating.regions, cytokit.stats, cytokit.quality, cytokit.compensation, cytokit.transforms
try:
    import sklearn.mixture  # the cluster gate's import, loaded lazily by cytokit
except ImportError:
    pass
from cytokit.pipeline import analyse_group
from threadpoolctl import threadpool_limits
rows, template, repeat = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
threadpool_limits(1)  # as `cytokit run` runs every group (cytokit.batch._execute)
from cytokit.batch import keep_freed_memory
keep_freed_memory()  # as a `cytokit run` worker's allocator is set
gc.collect()
before = rss('VmRSS:')
best, peak = float('inf'), None
for i in range(repeat):
    t0 = time.perf_counter()
    out = analyse_group(rows, template)
    best = min(best, time.perf_counter() - t0)
    if peak is None:
        peak = rss('VmHWM:') - before   # the first call: what one worker holds for one group
    bad = [s for s in out.samples.to_dict('records') if s['status'] != 'ok']
    cd19 = {r['file']: r['count'] for r in out.populations.to_dict('records') if r['population'].endswith('CD19+')}
    med = {f"{r['file']}:{r['marker']}": r['median'] for r in out.markers.to_dict('records')}
    del out
    gc.collect()
print(json.dumps({'seconds': best, 'peak_bytes': peak, 'errors': bad, 'cd19': cd19, 'medians': med}))
"""

FLOWKIT_RUNNER = COMMON + """
import flowkit, numpy as np, pandas as pd
from flowkit import transforms as fkt
path, xml, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
if sys.argv[4] == '1':
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
lin = fkt.LinearTransform(param_t=262144, param_a=0)
logicle = fkt.LogicleTransform(param_t=262144, param_w=0.5, param_m=4.5, param_a=0)
def analyse():
    sample = flowkit.Sample(path)
    spill = sample.metadata.get('spillover') or sample.metadata.get('spill')
    sample.apply_compensation(spill)
    xforms = {}
    for label in sample.pnn_labels:
        if label.startswith('FSC'):
            xforms[label] = lin
        elif label != 'Time':
            xforms[label] = logicle
    sample.apply_transform(xforms, include_scatter=True)
    strategy = flowkit.parse_gating_xml(xml)
    results = strategy.gate_sample(sample)
    inside = np.asarray(results.get_gate_membership('CD19pos'))
    comp = sample.as_dataframe(source='comp', col_names=sample.pnn_labels) if hasattr(sample, 'as_dataframe') else None
    if comp is None:
        comp = pd.DataFrame(sample.get_events(source='comp'), columns=sample.pnn_labels)
    medians = comp.loc[inside, ['PE-A', 'APC-A']].median()
    return int(inside.sum()), {'LAG3': float(medians['PE-A']), 'TNFa': float(medians['APC-A'])}
gc.collect()
before = rss('VmRSS:')
best, peak = float('inf'), None
for i in range(repeat):
    t0 = time.perf_counter()
    count, medians = analyse()
    best = min(best, time.perf_counter() - t0)
    if peak is None:
        peak = rss('VmHWM:') - before
    gc.collect()
print(json.dumps({'seconds': best, 'peak_bytes': peak, 'cd19': count, 'medians': medians}))
"""


def _run_json(args: list[str]) -> dict:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    return json.loads(lines[-1])


def _group_rows(folder: Path, patient: str, timepoint: str) -> list[dict]:
    return [
        {"file": f"{patient}_{timepoint}_{stain}.fcs", "patient": patient, "timepoint": timepoint,
         "stain": stain, "path": str(folder / f"{patient}_{timepoint}_{stain}.fcs")}
        for stain in ("isotype", "stained")
    ]


def _gatingml_for(rows: list[dict], folder: Path) -> dict[str, Path]:
    """The gates cytokit fitted for each tube of the group, written as Gating-ML."""
    from cytokit.fcs import read_fcs
    from cytokit.gating.load import load_template

    template = load_template(TEMPLATE)
    iso, stained = (read_fcs(r["path"]) for r in rows)
    reference = template.resolve_channels(stained)
    control = template.apply(iso, is_control=True, channels=template.resolve_channels(iso, reference=reference))
    result = template.apply(stained, control=control)
    out = {}
    for row, res in zip(rows, (control, result)):
        out[row["file"]] = res.to_gateset().write(folder / f"{Path(row['file']).stem}.xml")
    return out


def per_file(events: int, repeat: int, tmp: Path) -> dict:
    from cytokit.fcs import read_fcs
    from cytokit.simulate import simulate_cohort

    folder = tmp / "big"
    t0 = time.perf_counter()
    simulate_cohort(folder, patients=1, events=events, layout="modern")
    print(f"simulated 4 × {events:,} events in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = _group_rows(folder, "CLL001", "C2D1")
    largest = max(rows, key=lambda r: Path(r["path"]).stat().st_size)
    sample = read_fcs(largest["path"])
    n_events, n_channels = sample.events.shape
    decoded = int(sample.events.memory_usage(index=False).sum())  # as read_fcs returns them
    del sample
    xmls = _gatingml_for(rows, tmp)

    cyto = _run_json([sys.executable, "-c", CYTOKIT_RUNNER, json.dumps(rows), str(TEMPLATE), str(repeat)])
    fk = {}
    for row in rows:  # FlowKit with its default BLAS threads and with one: the faster counts
        runs = {threads: _run_json([sys.executable, "-c", FLOWKIT_RUNNER, row["path"], str(xmls[row["file"]]),
                                    str(repeat), threads]) for threads in ("default", "1")}
        ok = [r for r in runs.values() if "error" not in r]
        fk[row["file"]] = min(ok, key=lambda r: r["seconds"]) if ok else runs["default"]
        fk[row["file"]]["by_threads"] = {k: r.get("seconds") for k, r in runs.items()}
    return {"rows": rows, "cytokit": cyto, "flowkit": fk, "n_events": n_events, "n_channels": n_channels,
            "decoded_bytes": decoded}


def batch(patients: int, events: int, tmp: Path, repeat: int = 1) -> dict:
    from cytokit.simulate import simulate_cohort

    folder = tmp / f"cohort{patients}"
    simulate_cohort(folder, patients=patients, events=events, layout="modern")
    n_files = len(list(folder.glob("*.fcs")))
    out = {"n_files": n_files, "events": events}
    for attempt in range(repeat):  # interleaved, best of `repeat` for each worker count
        for workers in (1, 2):
            dest = tmp / f"out_w{workers}"
            shutil.rmtree(dest, ignore_errors=True)
            cmd = [str(BIN / "cytokit"), "run", str(folder), "--template", str(TEMPLATE), "--out", str(dest),
                   "--no-plots", "--quiet", "--workers", str(workers)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            seconds = time.perf_counter() - t0
            timings = {}
            if (dest / "run.json").exists():
                timings = json.loads((dest / "run.json").read_text())["timings_seconds"]
            result = {"seconds": seconds, "returncode": proc.returncode, "timings": timings,
                      "stderr": proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else ""}
            best = out.get(workers)
            if best is None or result["returncode"] != 0 or (best["returncode"] == 0 and seconds < best["seconds"]):
                out[workers] = result
            out.setdefault("all_seconds", {}).setdefault(workers, []).append(round(seconds, 2))
    shutil.rmtree(folder, ignore_errors=True)
    return out


def startup(repeat: int = 10) -> dict:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([str(BIN / "cytokit"), "--help"], capture_output=True, cwd=ROOT)
        best = min(best, time.perf_counter() - t0)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import cytokit.cli"],
                          capture_output=True, text=True, cwd=ROOT)
    loaded = set()
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+\d+ \|(\s*)(\S+)", line)
        if m:
            loaded.add(m.group(2).split(".")[0])
    return {"seconds": best, "heavy": sorted(loaded & set(HEAVY))}


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _batch_rows(bt: dict) -> list[str]:
    if bt[1]["returncode"] != 0 or bt[2]["returncode"] != 0:
        return []
    n = bt["n_files"]
    f1, f2 = n / bt[1]["seconds"], n / bt[2]["seconds"]
    runs = bt.get("all_seconds", {})
    rows = [
        f"| `cytokit run --workers 1`, {n} files × {bt['events']:,} events, whole command, files/s "
        f"(wall {bt[1]['seconds']:.1f} s, best of {runs.get(1, [])} s) | {f1:.2f} | | | |",
        f"| `cytokit run --workers 2`, same cohort, whole command, files/s (wall {bt[2]['seconds']:.1f} s, "
        f"best of {runs.get(2, [])} s) | "
        f"{f2:.2f} | | {f2 / f1:.2f}× workers 1 | ≥ 1.7×: {'met' if f2 / f1 >= 1.7 else '**missed**'} |",
    ]
    g1, g2 = bt[1]["timings"].get("groups"), bt[2]["timings"].get("groups")
    if g1 and g2:
        rows.append(
            f"| analysis phase only (importing scikit-learn/SciPy, the worker pool, every patient group; `run.json` timings.groups), "
            f"{n} files, files/s: 1 worker {n / g1:.2f} ({g1:.1f} s), 2 workers | {n / g2:.2f} ({g2:.1f} s) | | "
            f"{g1 / g2:.2f}× workers 1 | |")
    return rows


def to_markdown(pf: dict, bts: list[dict], st: dict, loads: list[str]) -> str:
    cyto, fk = pf["cytokit"], pf["flowkit"]
    n, c = pf["n_events"], pf["n_channels"]
    lines = ["| measurement | cytokit | FlowKit 1.3.2 | ratio (FlowKit time / cytokit time, or as said) | goal |", "|---|---:|---:|---:|---|"]
    if "error" in cyto:
        lines.append(f"| per file, {n:,} events | fails: {cyto['error']} | | | |")
        cyto_file = None
    else:
        cyto_file = cyto["seconds"] / 2
    fk_ok = [v for v in fk.values() if "error" not in v]
    fk_file = sum(v["seconds"] for v in fk_ok) / len(fk_ok) if len(fk_ok) == len(fk) else None
    if cyto_file is not None:
        ratio = f"{fk_file / cyto_file:.2f}" if fk_file else ""
        met = ("met" if fk_file / cyto_file >= 2 else "**missed**") if fk_file else "n/a"
        fk_cell = f"{fk_file:.2f}" if fk_file else "fails: " + "; ".join(v.get("error", "") for v in fk.values())
        lines.append(f"| per file, {n:,} events × {c} channels, s (cytokit: C2D1 group of 2 / 2; "
                     f"FlowKit: mean of the 2 tubes) | {cyto_file:.2f} | {fk_cell} | {ratio} | "
                     f"cytokit ≥ 2× faster: {met} |")
    for name, v in fk.items():
        if "error" not in v:
            label = {"default": "default BLAS threads", "1": "one BLAS thread"}
            both = ", ".join(f"{label[k]} {t:.2f}" for k, t in v["by_threads"].items() if t is not None)
            lines.append(f"| FlowKit {name}, s (faster of: {both}) | | {v['seconds']:.2f} | | |")
    if cyto_file is not None:
        decoded = pf["decoded_bytes"]
        budget = 3 * decoded + 400e6
        peak = cyto["peak_bytes"]
        fk_peak = max((v["peak_bytes"] for v in fk_ok), default=None)
        lines.append(
            f"| peak memory rise of one worker, group of 2 × {n:,} events, MB (largest file's decoded "
            f"events {decoded / 1e6:.0f} MB; budget 3 × that + 400 = {budget / 1e6:.0f} MB) | {peak / 1e6:.0f} | "
            f"{fk_peak / 1e6:.0f} (one tube) | {peak / decoded:.1f} × decoded file | "
            f"≤ {budget / 1e6:.0f} MB: {'met' if peak <= budget else '**missed**'} |")
    for w, r in ((w, bt[w]) for bt in bts for w in (1, 2)):
        if r["returncode"] != 0:
            lines.append(f"| `cytokit run --workers {w}` | fails (exit {r['returncode']}): {r['stderr']} | | | |")
    for cohort in bts:
        lines.extend(_batch_rows(cohort))
    heavy = ", ".join(st["heavy"]) or "none"
    lines.append(f"| `cytokit --help` start-up, best of 10, s | {st['seconds']:.3f} | | | "
                 f"< 0.3 s: {'met' if st['seconds'] < 0.3 else '**missed**'} |")
    lines.append(f"| heavy modules loaded by `import cytokit.cli` ({'/'.join(HEAVY)}) | {heavy} | | | "
                 f"none: {'met' if not st['heavy'] else '**missed**'} |")
    notes = [
        "",
        f"Load average (1/5/15 min) seen before each part: {'; '.join(loads)} (2 cores).",
    ]
    if cyto_file is not None and fk_ok:
        notes.append("CD19+ counts, cytokit vs FlowKit with the exported gates: " + ", ".join(
            f"{name}: {cyto['cd19'].get(name)} vs {v['cd19']}" for name, v in fk.items() if "error" not in v))
        notes.append("LAG3/TNFa medians of CD19+ (compensated scale), cytokit vs FlowKit: " + ", ".join(
            f"{name} {m}: {cyto['medians'].get(name + ':' + m, float('nan')):.2f} vs {v['medians'][m]:.2f}"
            for name, v in fk.items() if "error" not in v for m in ("LAG3", "TNFa")))
    return "\n".join(lines + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--batch-events", type=int, default=100_000)
    parser.add_argument("--batch-repeat", type=int, default=2, help="best of N runs of each batch command")
    parser.add_argument("--patients-large", type=int, default=40,
                        help="a second, larger cohort (patients × 4 files) for the batch rows; 0 to skip")
    args = parser.parse_args()
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        loads.append(f"per file {_load()}")
        pf = per_file(args.events, args.repeat, tmp)
        shutil.rmtree(tmp / "big", ignore_errors=True)
        loads.append(f"batch {_load()}")
        bts = [batch(args.patients, args.batch_events, tmp, args.batch_repeat)]
        if args.patients_large:
            loads.append(f"large batch {_load()}")
            bts.append(batch(args.patients_large, args.batch_events, tmp, args.batch_repeat))
        loads.append(f"start-up {_load()}")
        st = startup()
    print(to_markdown(pf, bts, st, loads))
    print(json.dumps({"per_file": pf, "batch": bts, "startup": st}, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
