"""The command line: inspect, gate (with Gating-ML export read back by FlowKit), simulate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "gating_templates" / "cll_cd19_7aad.yaml"


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cytokit.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO)


def test_inspect_reports_bad_file_and_goes_on(tmp_path):
    bad = tmp_path / "bad.fcs"
    bad.write_bytes(b"FCS3.1    garbage")
    good = REPO / "sample_fcs" / "calibur" / "CLL001_C2D1_stained.fcs"
    proc = cli("inspect", bad, good, "--json")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "bad.fcs" in proc.stderr
    report = json.loads(proc.stdout)
    assert len(report) == 1 and report[0]["version"] == "2.0" and report[0]["n_events"] == 10000
    assert {c["pns"] for c in report[0]["channels"]} >= {"CD19 FITC", "LAG3 PE", "7AAD"}


def test_gate_exports_gatingml_that_flowkit_reproduces(tmp_path):
    import flowkit

    for layout in ("modern", "calibur"):
        stained = REPO / "sample_fcs" / layout / "CLL002_C2D8_stained.fcs"
        iso = REPO / "sample_fcs" / layout / "CLL002_C2D8_isotype.fcs"
        xml = tmp_path / f"{layout}.xml"
        proc = cli("gate", stained, "--template", TEMPLATE, "--control", iso, "--export-gatingml", xml)
        assert proc.returncode == 0, proc.stderr
        ours = {line.split()[0].rsplit("/", 1)[-1]: int(line.split()[2])
                for line in proc.stdout.splitlines()[1:] if line.strip().startswith("Lymphocytes")}
        report = flowkit.parse_gating_xml(str(xml)).gate_sample(flowkit.Sample(str(stained))).report
        theirs = dict(zip(report["gate_name"], report["count"]))
        assert theirs["CD19pos"] == ours["CD19+"] > 1000
        assert theirs["Viable"] == ours["Viable"]


def test_simulate_command(tmp_path):
    proc = cli("simulate", tmp_path, "--patients", 2, "--events", 2000, "--layout", "modern", "--seed", 3)
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("*.fcs"))) == 8 and (tmp_path / "samples.csv").exists()
