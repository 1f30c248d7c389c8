"""The command line: inspect, gate (Gating-ML export read back by FlowKit), simulate; run's usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
    failed, report = json.loads(proc.stdout)
    assert failed["file"] == str(bad) and "bad.fcs" in failed["error"] and "version" not in failed
    assert report["version"] == "2.0" and report["n_events"] == 10000
    assert {c["pns"] for c in report["channels"]} >= {"CD19 FITC", "LAG3 PE", "7AAD"}
    modern = json.loads(cli("inspect", REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs", "--json").stdout)[0]
    assert modern["spillover_keyword"] == "$SPILLOVER" and modern["spillover_identity"] is False
    assert "PE-A" in modern["spillover_channels"]


def test_python_dash_m_cytokit_is_the_command():
    proc = subprocess.run([sys.executable, "-m", "cytokit", "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: cytokit ") and " run " in proc.stdout


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


def test_gate_without_a_control_computes_no_positivity():
    """It gated the file as its own control: every marker ~1 % positive, unflagged."""
    stained = REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs"
    proc = cli("gate", stained, "--template", TEMPLATE)
    assert proc.returncode == 0, proc.stderr
    lag3 = next(line for line in proc.stdout.splitlines() if line.strip().startswith("LAG3"))
    assert "NaN" in lag3 and "no matched control tube" in lag3
    assert cli("gate", stained, "--template", TEMPLATE, "--as-control", "--control", stained).returncode == 2
    bad = REPO / "gating_templates" / "README.md"  # not a template: a usage error, as in cytokit run
    proc = cli("gate", stained, "--template", bad)
    assert proc.returncode == 2 and "README.md" in proc.stderr


def test_gate_draws_its_gates_and_exits_1_when_a_gate_failed(tmp_path):
    stained = REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs"
    proc = cli("gate", stained, "--template", TEMPLATE, "--plot", tmp_path / "g.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli("gate", stained, "--template", TEMPLATE, "--plot", tmp_path / "g.txt").returncode == 2
    template = tmp_path / "control.yaml"  # LAG3+ as a gate learned on the control tube, which is not given
    template.write_text(TEMPLATE.read_text().replace(
        "markers:", "  - {name: LAG3+, parent: CD19+, gate: {type: control_threshold, dim: lag3}}\n\nmarkers:"))
    proc = cli("gate", stained, "--template", template, "--plot", tmp_path / "f.svg")
    assert proc.returncode == 1 and "1 gate(s) failed: Lymphocytes/Singlets/Viable/CD19+/LAG3+" in proc.stderr
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:500]
    proc = cli("gate", stained, "--template", TEMPLATE, "--dataset", 1)
    assert proc.returncode == 1 and "data set 1 requested but the file has 1" in proc.stderr


def test_run_gates_a_study_without_timepoints(tmp_path):
    """Another lab's files, named anyhow, gated by a template without markers: --pattern '{patient}.fcs'."""
    folder = tmp_path / "fcs"
    folder.mkdir()
    for name in ("CLL001_C2D1_stained.fcs", "CLL002_C2D8_stained.fcs"):
        (folder / name.replace("_", " ")).write_bytes((REPO / "sample_fcs" / "modern" / name).read_bytes())
    template = tmp_path / "gating.yaml"
    template.write_text(TEMPLATE.read_text().split("\nmarkers:")[0])
    proc = cli("run", folder, "--template", template, "--out", tmp_path / "out", "--pattern", "{patient}.fcs",
               "--workers", 1)
    assert proc.returncode == 0, proc.stderr
    assert "  unpaired: 2 file(s): no timepoint (the file-name pattern has no {timepoint}): analysed, not paired" \
        in proc.stderr
    populations = pd.read_csv(tmp_path / "out" / "populations.csv")
    assert sorted(set(populations["file"])) == ["CLL001 C2D1 stained.fcs", "CLL002 C2D8 stained.fcs"]
    plots = sorted(p.name for p in (tmp_path / "out" / "plots").iterdir())
    assert plots == ["gates_CLL001-C2D1-stained.png", "gates_CLL002-C2D8-stained.png"]  # no empty patient panels
    template.write_text(TEMPLATE.read_text().replace("method: control_quantile, quantile: 0.99", "method: none"))
    proc = cli("run", folder, "--template", template, "--out", tmp_path / "out", "--pattern", "{patient}.fcs",
               "--workers", 1, "--no-plots")
    assert proc.returncode == 0 and "note: no file has a timepoint" in proc.stderr and "warning" not in proc.stderr
    assert len(pd.read_csv(tmp_path / "out" / "markers.csv")) == 4  # LAG3 and TNFa of each file


def test_simulate_command(tmp_path):
    proc = cli("simulate", tmp_path, "--patients", 2, "--events", 2000, "--layout", "modern", "--seed", 3)
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("*.fcs"))) == 8 and (tmp_path / "samples.csv").exists()


def test_inspect_into_a_closed_pipe_stops_quietly():
    good = REPO / "sample_fcs" / "calibur" / "CLL001_C2D1_stained.fcs"
    proc = subprocess.Popen([sys.executable, "-m", "cytokit.cli", "inspect", "--json", *[good] * 200],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout.readline().strip() == b"["
    proc.stdout.close()  # as `| head -1` does; the rest of the JSON (>64 KiB) cannot be written
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


def test_run_without_fcs_files_is_a_usage_error(tmp_path):
    nested = tmp_path / "nested"
    (nested / "CLL001").mkdir(parents=True)
    shutil.copy(REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs", nested / "CLL001")
    for folder in (tmp_path / "empty", nested):
        folder.mkdir(exist_ok=True)
        proc = cli("run", folder, "--template", TEMPLATE, "--out", tmp_path / "out", "--quiet")
        assert proc.returncode == 2
        assert proc.stderr == (f"cytokit run: error: no FCS files (.fcs/.lmd) in {folder}; "
                               "subfolders are not searched (a --samples sheet may name files in them)\n")
    assert not (tmp_path / "out").exists()


def test_run_with_a_sheet_naming_files_in_subfolders(tmp_path):
    folder = tmp_path / "study"
    rows = ["file,patient,timepoint,stain"]
    for tp in ("C2D1", "C2D8"):
        (folder / tp.lower()).mkdir(parents=True)
        for stain in ("isotype", "stained"):
            name = f"CLL001_{tp}_{stain}.fcs"
            shutil.copy(REPO / "sample_fcs" / "modern" / name, folder / tp.lower() / name)
            rows.append(f"{tp.lower()}/{name},CLL001,{tp},{stain}")
    (folder / "samples.csv").write_text("\n".join(rows) + "\n")
    proc = cli("run", folder, "--template", TEMPLATE, "--samples", folder / "samples.csv", "--out",
               tmp_path / "out", "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (pd.read_csv(tmp_path / "out" / "samples.csv")["status"] == "ok").all()
    # the folder's own samples.csv is its sheet without --samples, as Experiment.from_folder reads it
    proc = cli("run", folder, "--template", TEMPLATE, "--out", tmp_path / "own", "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "own" / "samples.csv")) == 4


@pytest.fixture
def one_patient(tmp_path) -> Path:
    folder = tmp_path / "fcs"
    folder.mkdir()
    for name in ("CLL001_C2D1_isotype.fcs", "CLL001_C2D1_stained.fcs", "CLL001_C2D8_isotype.fcs",
                 "CLL001_C2D8_stained.fcs"):
        shutil.copy(REPO / "sample_fcs" / "modern" / name, folder / name)
    return folder


def test_run_refuses_an_out_that_would_overwrite_inputs(one_patient, tmp_path):
    (one_patient / "samples.csv").write_text(
        "file,patient,timepoint,stain\n" + "".join(f"{p.name},CLL001,{p.name[7:11]},{p.stem[12:]}\n"
                                                   for p in sorted(one_patient.glob("*.fcs"))))
    sheet = (one_patient / "samples.csv").read_text()
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", one_patient, "--quiet")
    assert proc.returncode == 2 and "is the FCS folder" in proc.stderr
    elsewhere = tmp_path / "sheets"
    elsewhere.mkdir()
    shutil.copy(one_patient / "samples.csv", elsewhere / "samples.csv")
    proc = cli("run", one_patient, "--template", TEMPLATE, "--samples", elsewhere / "samples.csv",
               "--out", elsewhere, "--quiet")
    assert proc.returncode == 2 and f"would overwrite the input {elsewhere / 'samples.csv'}" in proc.stderr
    assert (one_patient / "samples.csv").read_text() == sheet == (elsewhere / "samples.csv").read_text()
    assert [p.name for p in elsewhere.iterdir()] == ["samples.csv"]


def test_run_rejects_bad_out_workers_and_dask(one_patient, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", afile, "--quiet")
    assert proc.returncode == 2
    assert proc.stderr == f"cytokit run: error: --out {afile} is a file, not a folder\n"
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", afile / "sub", "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and f"--out {afile / 'sub'}" in proc.stderr
    assert afile.read_text() == "mine"
    for workers in ("0", "-2"):
        proc = cli("run", one_patient, "--template", TEMPLATE, "--out", tmp_path / "out", "--workers",
                   workers)
        assert proc.returncode == 2 and "argument --workers: must be at least 1" in proc.stderr
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", tmp_path / "out", "--workers", "abc")
    assert proc.returncode == 2 and "argument --workers: a whole number of worker processes, not 'abc'" in proc.stderr
    pytest.importorskip("distributed")
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", tmp_path / "out",
               "--dask", "not-an-address", "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("cytokit run: error: --dask not-an-address: cannot connect")


def test_run_warns_when_no_patient_is_paired(one_patient, tmp_path):
    (one_patient / "CLL001_C2D8_stained.fcs").unlink()
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", tmp_path / "out", "--workers", 1,
               "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr  # every file was analysed
    assert proc.stderr == ("cytokit run: warning: no patient could be paired: 3 files unpaired, 0 failed "
                           "(timepoints found: C2D1, C2D8; --baseline C2D1, --followup C2D8); "
                           "paired.csv and cohort.csv are empty\n")
    # a timepoint no file has is a typo: refused before any analysis (it analysed all, and paired none)
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", tmp_path / "out2", "--baseline", "D1", "--quiet")
    assert proc.returncode == 2 and proc.stderr == ("cytokit run: error: comparison D1:C2D8: no file has timepoint "
                                                    "D1 (the files' timepoints: C2D1, C2D8)\n")
    assert not (tmp_path / "out2").exists()


def test_run_with_a_template_of_gates_only_says_it_quantifies_no_marker(one_patient, tmp_path):
    """A learned template has no markers: section; the run said no patient could be paired and each
    tube 'no baseline and follow-up stained tubes with the same markers'."""
    text = TEMPLATE.read_text()
    gates_only = tmp_path / "gates.yaml"
    gates_only.write_text(text[:text.index("\nmarkers:")] + "\n")
    proc = cli("run", one_patient, "--template", gates_only, "--out", tmp_path / "out", "--workers", 1,
               "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("cytokit run: note: the template quantifies no marker (it has no markers: section)")
    samples = pd.read_csv(tmp_path / "out" / "samples.csv")
    assert samples["error"].str.endswith("the template quantifies no marker (it has no markers: section)").all()


def test_the_same_baseline_and_followup_is_a_usage_error(one_patient, tmp_path, capsys):
    from cytokit.cli import main

    code = main(["run", str(one_patient), "--template", str(TEMPLATE), "--out", str(tmp_path / "out"),
                 "--baseline", "C2D1", "--followup", "C2D1", "--quiet"])
    assert code == 2
    assert "the baseline and the follow-up are the same timepoint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_isotype_tube_gated_alone_is_told_how_to_name_its_detectors(tmp_path):
    """Its $PnS says IgG1 isotype, not LAG3: the error says to gate it with its stained tube or give
    a panel sheet, and with the sheet it is gated as a control (threshold: its own 99th percentile)."""
    isotype = REPO / "sample_fcs" / "modern" / "CLL001_C2D1_isotype.fcs"
    proc = cli("gate", isotype, "--template", TEMPLATE, "--as-control")
    assert proc.returncode == 1 and "--control CONTROL), or give --panel PANEL.csv" in proc.stderr, proc.stderr
    panel = tmp_path / "panel.csv"
    panel.write_text("channel,marker\nPE-A,LAG3\nAPC-A,TNFa\n")
    proc = cli("gate", isotype, "--template", TEMPLATE, "--as-control", "--panel", panel)
    assert proc.returncode == 0, proc.stderr
    lag3 = next(line for line in proc.stdout.splitlines() if line.strip().startswith("LAG3"))
    assert float(lag3.split()[4]) == pytest.approx(1.0, abs=0.1)  # pct_pos of its own 99th percentile


def test_gate_with_a_control_prints_the_markers_positivity():
    folder = REPO / "sample_fcs" / "modern"
    proc = cli("gate", folder / "CLL001_C2D1_stained.fcs", "--template", TEMPLATE,
               "--control", folder / "CLL001_C2D1_isotype.fcs")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    assert "pct_pos" in lines["marker"]
    pct = float(lines["LAG3"][lines["marker"].index("pct_pos")])
    assert 5 < pct < 60  # the simulated LAG3+ fraction of CLL001 at C2D1, well above the isotype's 1 %


@pytest.mark.parametrize("target", ["missing/x.xml", "."])
def test_gate_export_into_a_missing_folder_or_onto_a_folder_is_a_usage_error(tmp_path, target):
    proc = cli("gate", REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs", "--template", TEMPLATE,
               "--export-gatingml", tmp_path / target)
    assert proc.returncode == 2
    assert proc.stderr.startswith("cytokit gate: error: --export-gatingml") and proc.stderr.count("\n") == 1


def test_run_exits_1_when_a_population_failed_in_every_file(one_patient, tmp_path):
    """Viable failed in all 24 files and the run said "24 analysed, 0 failed", exit 0 (issue 16 item 20)."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("min_peak_height: 0.01", "min_peak_height: 0.99"))
    proc = cli("run", one_patient, "--template", broken, "--out", tmp_path / "out", "--workers", 1,
               "--no-plots", "--quiet")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in proc.stderr
    assert lines[0].startswith("cytokit run: error: population Lymphocytes/Singlets/Viable: the gate failed in "
                               "all 4 files (CLL001_C2D1_isotype.fcs: gate failed: no density valley found")
    assert lines[1].startswith("cytokit run: error: population Lymphocytes/Singlets/Viable/CD19+: the gate "
                               "failed in all 4 files")
    assert (pd.read_csv(tmp_path / "out" / "samples.csv")["status"] == "ok").all()  # the tables are written
    # with figures and the summary: the patient is paired, but nothing has a value (it said "1 paired")
    proc = cli("run", one_patient, "--template", broken, "--out", tmp_path / "out2", "--workers", 1)
    assert "; 1 paired patients (0 with values: the others' gated populations are empty)" in proc.stdout
    html = (tmp_path / "out2" / "report.html").read_text()
    assert "1 paired (0 with values)" in html and "no pair with a value (n = 0)" in html and "= nan" not in html


def test_run_with_the_shipped_opencyto_template_gates_every_file(one_patient, tmp_path):
    csv = REPO / "gating_templates" / "cll_cd19_7aad.opencyto.csv"
    proc = cli("run", one_patient, "--template", csv, "--out", tmp_path / "csv", "--workers", 1, "--no-plots",
               "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", tmp_path / "yaml", "--workers", 1,
               "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr
    ours, yaml = (pd.read_csv(tmp_path / name / "populations.csv") for name in ("csv", "yaml"))
    assert ours["flag"].isna().all() and (ours["count"] > 1000).all()
    assert ours[["file", "population", "count"]].equals(yaml[["file", "population", "count"]])


def test_strict_stopping_before_the_analysis_leaves_no_output_folder(one_patient, tmp_path):
    (one_patient / "CLL001_C2D8_stained.fcs").unlink()  # its C2D8 isotype serves no stained tube
    (one_patient / "stray.fcs").write_bytes(b"not fcs")  # a file no pattern fits: a metadata error
    proc = cli("run", one_patient, "--template", TEMPLATE, "--out", tmp_path / "out", "--strict", "--quiet")
    assert proc.returncode == 1 and "--strict: stopped before the analysis: " in proc.stderr
    assert not (tmp_path / "out").exists()  # only its lock was in it


def test_a_population_name_outside_xml_names_still_exports_valid_gatingml(tmp_path):
    """µ (U+00B5) is a word character to Python, not to XML: the export failed the schema, no file written."""
    import flowkit

    template = tmp_path / "mu.yaml"
    template.write_text(Path(TEMPLATE).read_text().replace("name: CD19+", "name: µ-CD19+").replace(
        "population: CD19+", "population: µ-CD19+"))
    stained = REPO / "sample_fcs" / "modern" / "CLL002_C2D8_stained.fcs"
    iso = REPO / "sample_fcs" / "modern" / "CLL002_C2D8_isotype.fcs"
    xml = tmp_path / "mu.xml"
    proc = cli("gate", stained, "--template", template, "--control", iso, "--export-gatingml", xml)
    assert proc.returncode == 0, proc.stderr
    report = flowkit.parse_gating_xml(str(xml)).gate_sample(flowkit.Sample(str(stained))).report
    assert "_-CD19pos" in set(report["gate_name"])


def test_gate_says_a_pooled_gate_is_fitted_on_the_file_alone(tmp_path):
    """Its counts and Gating-ML differed from the run's (FlowAtlas memory subsets: 71 of 189 populations)
    with no word that the run pools those gates."""
    pooled = tmp_path / "pooled.yaml"
    pooled.write_text(TEMPLATE.read_text().replace("gate: {type: density_valley, dim: cd19, side: above}",
                                                   "pool: true\n    gate: {type: density_valley, dim: cd19, side: above}"))
    stained = REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs"
    proc = cli("gate", stained, "--template", pooled)
    assert proc.returncode == 0, proc.stderr
    assert "cytokit gate: note: CD19+: pool: true gate(s) fitted on this file alone" in proc.stderr
    assert "pool: true" not in cli("gate", stained, "--template", TEMPLATE).stderr


def test_gate_on_a_file_without_events_is_an_error(tmp_path):
    """It printed a table of NaN and exited 0 (cytokit run said 'the file holds no events')."""
    from tests.fcsbuilder import build_fcs

    empty = tmp_path / "empty.fcs"
    empty.write_bytes(build_fcs(np.empty((0, 3)), names=["FSC-A", "SSC-A", "FL1-A"]))
    proc = cli("gate", empty, "--template", TEMPLATE)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("empty.fcs: the file holds no events ($TOT 0): nothing to gate")
