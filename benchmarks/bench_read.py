"""Wall time and peak memory of reading FCS files: cytokit against its peers, in one run.

    python benchmarks/bench_read.py [--events 1000000] [--repeat 5] [--rounds 3]

Each (reader, file) pair runs in a fresh subprocess: peak memory is the rise of
the process's high-water mark (VmHWM) over its resident size after imports, so
it counts what the read itself holds. Time is the best of ``--repeat`` reads.
The whole set of subprocesses runs ``--rounds`` times in turn and each reader keeps
its best time (and largest peak): on a shared VM one slow minute otherwise lands on
the floor's subprocess or on cytokit's alone and moves their ratio by 20 %.
The floor is ``numpy.fromfile`` of the DATA segment alone; "fromfile + astype" adds the
least decoding any reader must do to return float32 (no masking, no TEXT, no DataFrame). ``cytokit.read_fcs`` runs
with its default threads (the machine's cores, at most 4, for integer or byte-swapped
DATA of 8 MB or more) and again with ``threads=1``, as a batch worker reads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

READERS = {
    "numpy.fromfile (floor)": """
import numpy as np
def read(path, meta):
    with open(path, 'rb') as fh:
        fh.seek(meta['begin'])
        return np.fromfile(fh, dtype=meta['dtype'], count=meta['count'])
""",
    "numpy.fromfile + astype(float32)": """
import numpy as np
def read(path, meta):
    with open(path, 'rb') as fh:
        fh.seek(meta['begin'])
        return np.fromfile(fh, dtype=meta['dtype'], count=meta['count']).astype(np.float32, copy=False)
""",
    "cytokit.read_fcs": """
import cytokit, cytokit.fcs  # cytokit imports lazily: load the reader before measuring
def read(path, meta):
    return cytokit.read_fcs(path).events
""",
    "cytokit.read_fcs, threads=1": """
import cytokit, cytokit.fcs
def read(path, meta):
    return cytokit.read_fcs(path, threads=1).events
""",
    "flowio 1.4 FlowData": """
import flowio
def read(path, meta):
    return flowio.FlowData(path).as_array(preprocess=True)
""",
    "FlowKit Sample": """
import flowkit
def read(path, meta):
    return flowkit.Sample(path).get_events(source='raw')
""",
    "fcsparser 0.2.8": """
import fcsparser
def read(path, meta):
    return fcsparser.parse(path, reformat_meta=False)[1]
""",
}

RUNNER = """
import json, sys, time, gc
{code}
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
path, meta, repeat = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
gc.collect()
before = rss('VmRSS:')
try:
    best = float('inf')
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = read(path, meta)
        best = min(best, time.perf_counter() - t0)
        del out
        gc.collect()
    print(json.dumps({{'seconds': best, 'peak_bytes': rss('VmHWM:') - before}}))
except Exception as exc:
    print(json.dumps({{'error': f'{{type(exc).__name__}}: {{exc}}'[:120]}}))
"""


def make_files(folder: Path, n_events: int) -> dict[str, tuple[Path, dict]]:
    import cytokit

    rng = np.random.default_rng(0)
    names = ["FSC-A", "FSC-H", "SSC-A", "FITC-A", "PE-A", "PerCP-Cy5-5-A", "APC-A", "Time"]
    floats = pd.DataFrame(rng.lognormal(8, 1, size=(n_events, 8)).astype(np.float32), columns=names)
    f32 = cytokit.write_fcs(folder / "float32_le.fcs", floats)
    ints = pd.DataFrame(rng.integers(0, 1024, size=(n_events, 8), dtype=np.uint16), columns=names)
    keywords = {f"$P{i}R": "1024" for i in range(1, 9)}
    i16 = cytokit.write_fcs(
        folder / "int16_be.fcs", ints, version="3.0", datatype="I", bits=16, byteorder=">", keywords=keywords
    )
    out = {}
    for label, path, dtype in [
        (f"{n_events:,} × 8 float32, little-endian", f32, "<f4"),
        (f"{n_events:,} × 8 uint16, big-endian", i16, ">u2"),
    ]:
        sample = cytokit.read_fcs(path)
        meta = {"begin": int(sample.keywords["$BEGINDATA"]), "dtype": dtype, "count": n_events * 8}
        out[label] = (path, meta)
    return out


def run(n_events: int, repeat: int, rounds: int) -> pd.DataFrame:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), n_events)
        for _ in range(rounds):
            for label, (path, meta) in files.items():
                size = path.stat().st_size
                for reader, code in READERS.items():
                    proc = subprocess.run(
                        [sys.executable, "-c", RUNNER.format(code=code), str(path), json.dumps(meta), str(repeat)],
                        capture_output=True, text=True,
                    )
                    lines = proc.stdout.strip().splitlines()
                    result = json.loads(lines[-1]) if lines else {"error": proc.stderr.strip().splitlines()[-1][:120]}
                    row = {"file": label, "reader": reader, "file_mb": size / 1e6, "seconds": None,
                           "peak_bytes": None, "error": None}
                    rows.append({**row, **result})
    # Each reader's best time and largest peak over the rounds.
    table = (
        pd.DataFrame(rows)
        .groupby(["file", "reader"], sort=False)
        .agg(file_mb=("file_mb", "first"), seconds=("seconds", "min"), peak_bytes=("peak_bytes", "max"),
             error=("error", "first"))
        .reset_index()
    )
    for label, group in table.groupby("file"):
        floor = group.loc[group.reader.str.contains("floor"), "seconds"].iloc[0]
        table.loc[group.index, "x_floor"] = group["seconds"] / floor
    return table


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| file | reader | time (ms) | × floor | peak extra memory (MB) |", "|---|---|---:|---:|---:|"]
    for r in table.itertuples():
        if isinstance(getattr(r, "error", None), str):
            lines.append(f"| {r.file} | {r.reader} | fails: {r.error} | | |")
        else:
            lines.append(
                f"| {r.file} | {r.reader} | {r.seconds * 1e3:.1f} | {r.x_floor:.2f} | {r.peak_bytes / 1e6:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="subprocesses per reader and file, run in turn")
    args = parser.parse_args()
    table = run(args.events, args.repeat, args.rounds)
    print(to_markdown(table))


if __name__ == "__main__":
    main()
