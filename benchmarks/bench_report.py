"""The report of a large cohort: its size, the time to write it, and its load time in headless Chromium.

    python benchmarks/bench_report.py [--patients 10] [--copies 25] [--events 100000]

A simulated modern-layout cohort (patients × 4 files) is analysed once with figures
(``Experiment.run(figures=True)``), then repeated ``--copies`` times under new patient and file
names (250 patients, 1,000 files by default) so that the report has the size of a 1,000-file
cohort without gating 1,000 files. Each copy's PNGs get a ``tEXt`` chunk with their new name, so
no two images of the page are the same bytes (a browser could otherwise share the decoded ones).

Chromium (``chromium --headless``, as ``tests/test_report.py`` drives it) loads the page from disk;
the page reports its own DOMContentLoaded and load event times (navigation start → event, which
for ``load`` includes fetching every inlined image), and the whole ``--dump-dom`` process is timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "gating_templates" / "cll_cd19_7aad.yaml"

_TIMING = """
<script>
window.addEventListener("load", function () {
  var t = performance.timing, out = document.createElement("pre");
  out.id = "bench-timing";
  out.textContent = JSON.stringify({dom: t.domContentLoadedEventEnd - t.navigationStart,
                                    load: t.loadEventStart - t.navigationStart, images: document.images.length});
  document.body.appendChild(out);
});
</script>
"""


def _tagged(png: bytes, text: str) -> bytes:
    """``png`` with a ``tEXt`` chunk (``Comment``: ``text``) after its header: other bytes, same image."""
    data = b"Comment\x00" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    end_of_header = 8 + 8 + 13 + 4  # signature, IHDR length and type, its 13 bytes, its CRC
    return png[:end_of_header] + chunk + png[end_of_header:]


def replicate(res, copies: int):
    """``res`` with every patient and file repeated ``copies`` times under new names (``K007_CLL001``)."""
    frames: dict[str, list] = {t: [] for t in ("samples", "populations", "markers", "paired")}
    lookups: dict[str, dict] = {d: {} for d in ("values", "plot_events", "fitted", "gating", "figures", "paths")}
    for k in range(copies):
        prefix = f"K{k:03d}_"
        names = {p: prefix + p for p in res.samples["patient"].astype(str).unique()}
        names.update({f: prefix + f for f in res.samples["file"]})
        for table, copied in frames.items():
            frame = getattr(res, table).copy()
            for column in ("patient", "file"):
                if column in frame:
                    frame[column] = frame[column].map(lambda v, names=names: names.get(v, v))
            copied.append(frame)
        for lookup, copied in lookups.items():
            for old, value in getattr(res, lookup).items():
                new = tuple(names.get(p, p) for p in old) if isinstance(old, tuple) else names.get(old, old)
                copied[new] = _tagged(value, prefix) if lookup == "figures" else value
    tables = {t: pd.concat(f, ignore_index=True) for t, f in frames.items()}
    return dataclasses.replace(res, **tables, **lookups)


def chromium_load(report: Path, binary: str, profile: Path) -> dict:
    page = report.with_name("timed.html")
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", _TIMING + "</body>"), encoding="utf-8")
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--dump-dom", page.as_uri()]
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - t0
    found = re.search(r'<pre id="bench-timing">(.*?)</pre>', proc.stdout, re.DOTALL)
    if not found:
        raise SystemExit(f"no timing in Chromium's DOM: {proc.stderr[-1000:]}")
    return {**json.loads(found.group(1).replace("&quot;", '"')), "process": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--copies", type=int, default=25)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--cohort", type=Path, help="an existing simulated cohort folder (else simulated)")
    args = parser.parse_args()
    from cytokit.experiment import Experiment
    from cytokit.report import write_report
    from cytokit.simulate import simulate_cohort

    binary = shutil.which("chromium")
    if binary is None:
        raise SystemExit("chromium is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cohort = args.cohort
        if cohort is None:
            cohort = tmp / "cohort"
            simulate_cohort(cohort, patients=args.patients, events=args.events, layout="modern")
        res = Experiment.from_folder(cohort, template=TEMPLATE).run(figures=True)
        big = replicate(res, args.copies)
        t0 = time.perf_counter()
        report = write_report(big, tmp / "report.html")
        written = time.perf_counter() - t0
        size = report.stat().st_size
        figures = sum(len(v) for v in big.figures.values())
        loads = [chromium_load(report, binary, tmp / f"profile{i}") for i in range(2)]
    best = min(loads, key=lambda r: r["process"])
    n_files, n_patients = len(big.samples), big.samples["patient"].nunique()
    print(f"{n_patients} patients, {n_files} files ({len(res.samples)} analysed, repeated {args.copies}×); "
          f"chromium {subprocess.run([binary, '--version'], capture_output=True, text=True, check=False).stdout.strip()}\n")
    print("| measure | value |\n|---|---:|")
    print(f"| report size | {size / 1e6:.1f} MB |")
    print(f"| of which PNGs (before base64) | {figures / 1e6:.1f} MB in {len(big.figures)} figures "
          f"({figures / len(big.figures) / 1024:.0f} KB each) |")
    print(f"| writing the report (render_report + write) | {written:.1f} s |")
    print(f"| Chromium: DOMContentLoaded | {best['dom'] / 1000:.1f} s |")
    print(f"| Chromium: load event (every image fetched) | {best['load'] / 1000:.1f} s |")
    runs = ", ".join(f"{r['process']:.1f}" for r in loads)
    print(f"| Chromium: whole `--dump-dom` process | {best['process']:.1f} s ({runs}) |")
    print(f"| images on the page | {best['images']} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
