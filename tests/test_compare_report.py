"""The agreement with a manual gating as a report: ``cytokit compare``'s report.html and ``cytokit run --manual``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cytokit
from cytokit.agreement import COLUMNS
from cytokit.report.agreement import AgreementSection, render_agreement_report
from cytokit.simulate import read_labels, simulate_cohort

REPO = Path(__file__).resolve().parents[1]
CLL_TEMPLATE = REPO / "gating_templates" / "cll_cd19_7aad.yaml"

# Hi: CH1 > 4.5 -> events 5..9; Hi/Top: CH1 > 7.5 -> events 8, 9
TEMPLATE = """
channels:
  a: {pnn: [CH1]}
compensation: none
populations:
  - {name: Hi, parent: root, gate: {type: range, dim: a, min: 4.5}}
  - {name: Top, parent: Hi, gate: {type: range, dim: a, min: 7.5}}
"""


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cytokit.cli", *map(str, args)], capture_output=True, text=True,
                          check=False, cwd=REPO, timeout=600)


def mask(n: int, events) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(events)] = True
    return out


def cell(value: float) -> str:
    """A number as the report's tables print it."""
    return f"{value:.4g}"


def section_of(html: str) -> str:
    """The agreement section of a page."""
    match = re.search(r'<section id="agreement">.*?</section>', html, re.DOTALL)
    assert match, "no agreement section"
    return match.group(0)


def low_rows(section: str) -> list[list[str]]:
    """The cells of the "rows below F1 0.9" table."""
    table = section.split("rows below F1 0.9</h3>")[1].split("</table>")[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)[1:]]


@pytest.fixture
def study(tmp_path):
    """Three 10-event files; manual gatings of two (hi = events 3..9, hi/top = {3, 8}), none of s3."""
    fcs = tmp_path / "fcs"
    fcs.mkdir()
    for name in ("s1", "s2", "s3"):
        cytokit.write_fcs(fcs / f"{name}.fcs", pd.DataFrame({"CH1": np.arange(10.0), "CH2": np.ones(10)}))
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    manual = tmp_path / "manual"
    manual.mkdir()
    np.savez(manual / "s1.npz", **{"hi": mask(10, range(3, 10)), "hi/top": mask(10, [3, 8])})
    np.savez(manual / "s2.npz", **{"hi": mask(10, range(5, 10)), "hi/top": mask(10, [8, 9]),
                                   "<b>odd</b>": mask(10, [0])})
    # a name with a slash is a top population where populations.tsv says so (else "b>" under "<b>odd<")
    (manual / "populations.tsv").write_text("population\tparent\n<b>odd</b>\t\n")
    return fcs, template, manual


def test_compare_writes_a_report_with_the_summary_and_the_failed_file(study, tmp_path):
    fcs, template, manual = study
    out = tmp_path / "out"
    proc = cli("compare", fcs, "--template", template, "--manual", manual, "--out", out)
    assert proc.returncode == 1, proc.stderr  # s3 has no manual gating
    assert "report.html" in proc.stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # self-contained
    assert html.count("<style>") == 1 and "table.sortable th" in html  # the run report's styles and script
    section = section_of(html)
    assert "Agreement with the manual gating" in section and "<code>" + str(manual) + "</code>" in section
    summary = pd.read_csv(out / "compare_summary.csv").set_index("population")
    assert list(summary.index) == ["Hi", "Hi/Top"]
    for population, row in summary.iterrows():
        cells = re.search(rf"<tr><td>{re.escape(population)}</td>(.*?)</tr>", section).group(1)
        assert cell(row.f1_median) in cells and cell(row.f1_worst) in cells and cell(row.f1_parent_worst) in cells
    assert summary.loc["Hi", "f1_median"] == pytest.approx((10 / 12 + 1) / 2)  # s1 0.833, s2 1
    # the rows to look at: s1's Hi (0.833) and Top (0.5); none of s2 (both 1)
    low = low_rows(section)
    assert [(r[0], r[1], r[3]) for r in low] == [("s1.fcs", "Hi/Top", "0.5"), ("s1.fcs", "Hi", cell(10 / 12))]
    assert '<td class="low">0.5</td>' in section
    failed = re.search(r"<h3>Failed files</h3>\s*<ul>(.*?)</ul>", section, re.DOTALL).group(1)
    assert "<b>s3.fcs</b>" in failed and "no manual gating" in failed and "s1.fcs" not in failed
    assert "data:image/png;base64," in section  # the heat map, inlined
    assert "<b>odd</b>" not in html and "&lt;b&gt;odd&lt;/b&gt;" in section  # an unpaired manual name, escaped


def test_a_comparison_where_nothing_paired_renders_without_a_heat_map():
    table = pd.DataFrame([{"file": "a.fcs", "population": "", "manual": "", "status": "error", "flag": "",
                           "note": "cannot read a.fcs"}], columns=COLUMNS)
    section = AgreementSection(table, template="t.yaml", manual="manual.wsp", mapping={"Hi": "hi"})
    html = render_agreement_report(section)
    assert "No population paired in any file" in html and "data:image/png" not in html
    assert "cannot read a.fcs" in html and "a FlowJo workspace" in html
    assert "<code>Hi</code> → <code>hi</code>" in html
    assert "1 files" in repr(section)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, Path]:
    """Two simulated patients (8 files) and a manual gating from their truth labels, CLL002_C2D8_stained's left out."""
    folder = simulate_cohort(tmp_path_factory.mktemp("sim"), patients=2, events=3000, seed=1).parent
    manual = tmp_path_factory.mktemp("manual")
    for path in sorted(folder.glob("*.fcs")):
        if path.name == "CLL002_C2D8_stained.fcs":
            continue
        cls = read_labels(path)["cls"].to_numpy()
        cells = cls != "debris"
        np.savez(manual / f"{path.stem}.npz", **{
            "Lymphocytes": cells, "Lymphocytes/Viable": cells & np.isin(cls, ["cll", "cd19neg"]),
            "Lymphocytes/Viable/CD19+": cls == "cll"})
    return folder, manual


@pytest.fixture(scope="module")
def run_manual(cohort, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    folder, manual = cohort
    out = tmp_path_factory.mktemp("run")
    proc = cli("run", folder, "--template", CLL_TEMPLATE, "--out", out, "--workers", 1, "--manual", manual)
    return out, proc


def test_run_with_manual_adds_the_section_and_compare_csv(run_manual):
    out, proc = run_manual
    assert proc.returncode == 0, proc.stderr  # a file without a manual gating does not fail the run
    assert "compared with the manual gating" in proc.stdout and "7 files, 1 not compared" in proc.stdout
    table = pd.read_csv(out / "compare.csv", keep_default_na=False)
    assert list(table.columns) == COLUMNS
    missing = table[table["file"] == "CLL002_C2D8_stained.fcs"]
    assert list(missing["status"]) == ["error"] and "no manual gating" in missing["note"].iloc[0]
    assert pd.read_csv(out / "samples.csv").set_index("file").loc["CLL002_C2D8_stained.fcs", "status"] == "ok"
    paired = table[table["status"] == "paired"]
    assert paired["file"].nunique() == 7
    cd19 = paired[paired["population"].str.endswith("CD19+")]
    assert len(cd19) == 7 and (cd19["manual"] == "Lymphocytes/Viable/CD19+").all()
    assert cd19["f1"].astype(float).min() > 0.95  # the density valley finds the simulated CLL cells
    # the populations of the comparison are the run's
    counts = pd.read_csv(out / "populations.csv").set_index(["file", "population"])["count"]
    assert [counts[(r.file, r.population)] for r in paired.itertuples()] == list(paired["n_cytokit"].astype(int))
    summary = pd.read_csv(out / "compare_summary.csv")
    assert (out / "compare_f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text(encoding="utf-8")
    section = section_of(html)
    assert '<a href="#agreement"' in html and '<section id="cohort">' in html  # the run's report, with the section
    for row in summary[summary["n_files"] > 0].itertuples():
        assert f"<tr><td>{row.population}</td><td>{row.manual}</td><td>{row.n_files}</td>" \
               f"<td>{cell(row.f1_median)}</td>" in section.replace(' class="low"', "")
    assert "<b>CLL002_C2D8_stained.fcs</b>" in section
    assert "the run&#39;s (each stained tube&#39;s control)" in section


def test_run_compares_as_compare_does_with_the_runs_controls(cohort, run_manual):
    folder, manual = cohort
    out, _ = run_manual
    samples = pd.read_csv(folder / "samples.csv")
    stained = samples[samples["stain"] == "stained"]
    controls = {f"{r.patient}_{r.timepoint}_stained.fcs": f"{r.patient}_{r.timepoint}_isotype.fcs"
                for r in stained.itertuples()}
    alone = cytokit.compare(folder, CLL_TEMPLATE, manual, controls=controls, strict=False)
    # the isotype tubes sort before their stained tubes and are gated on those tubes' detectors
    assert list(alone.loc[alone["status"] == "error", "file"]) == ["CLL002_C2D8_stained.fcs"]
    from_run = pd.read_csv(out / "compare.csv", keep_default_na=False)
    key = ["file", "population", "manual"]
    alone = alone[alone["status"] == "paired"].sort_values(key).reset_index(drop=True)
    from_run = from_run[from_run["status"] == "paired"].sort_values(key).reset_index(drop=True)
    assert len(alone) == len(from_run) > 0
    for column in ("n_cytokit", "n_manual", "f1", "f1_parent"):
        np.testing.assert_allclose(from_run[column].astype(float), alone[column].astype(float), rtol=1e-12)


def test_run_without_manual_removes_the_earlier_comparison(cohort, tmp_path):
    folder, manual = cohort
    out = tmp_path / "out"
    proc = cli("run", folder, "--template", CLL_TEMPLATE, "--out", out, "--workers", 1, "--no-plots", "--quiet",
               "--manual", manual)
    assert proc.returncode == 0, proc.stderr
    assert (out / "compare.csv").is_file() and not (out / "report.html").exists()  # --no-plots: tables only
    proc = cli("run", folder, "--template", CLL_TEMPLATE, "--out", out, "--workers", 1, "--no-plots", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not any((out / name).exists() for name in ("compare.csv", "compare_summary.csv", "compare_f1.png"))


def test_run_manual_usage_errors(cohort, tmp_path):
    folder, manual = cohort
    proc = cli("run", folder, "--template", CLL_TEMPLATE, "--out", tmp_path / "a", "--map", manual / "x.csv")
    assert proc.returncode == 2 and "give --manual too" in proc.stderr
    proc = cli("run", folder, "--template", CLL_TEMPLATE, "--out", tmp_path / "b", "--manual", tmp_path / "nope.txt")
    assert proc.returncode == 2 and "nope.txt" in proc.stderr and not (tmp_path / "b").exists()
