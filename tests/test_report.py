"""The HTML report: self-contained, escaped, one section per patient, renders in Chromium."""

from __future__ import annotations

import base64
import functools
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from tests.test_plots import (DEMO, PATIENTS, PNG_MAGIC, TEMPLATE, colliding_results, demo_plotter,
                              demo_results)

ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"
XSS = "<script>alert(1)</script>"


class _Collect(HTMLParser):
    """Tags with their attributes, and whether the document nests correctly enough to parse."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(html: str) -> list[tuple[str, dict]]:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    return parser.tags


@functools.lru_cache(maxsize=1)
def _report_html(folder: str) -> Path:
    from cytokit.report import write_report

    return write_report(demo_results(), Path(folder) / "report.html", title="CLL demo <2 patients>",
                        plotter=demo_plotter())


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    if not DEMO.exists():
        pytest.skip("demo data sample_fcs/modern is absent")
    return _report_html(str(tmp_path_factory.mktemp("report")))


def test_report_is_self_contained(report):
    html = report.read_text(encoding="utf-8")
    tags = _parse(html)
    assert html.startswith("<!DOCTYPE html>")
    for tag, attrs in tags:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not re.match(r"\s*(https?:)?//", value, re.I), f"<{tag} {key}={value[:60]!r}> is external"
        assert tag != "link", "no external stylesheets"
        if tag == "script":
            assert "src" not in attrs
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == 2 + len(PATIENTS) + 4 * len(PATIENTS)  # paired, panels, gating per file
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert not list(report.parent.glob("*.tmp"))
    assert "CLL demo &lt;2 patients&gt;" in html  # the title is escaped too


def test_report_sections(report):
    html = report.read_text(encoding="utf-8")
    ids = {attrs.get("id") for _, attrs in _parse(html)}
    assert {"cohort", "quality", "samples"} <= ids
    for patient in PATIENTS:
        assert f"patient-{patient}" in ids
        assert f'href="#patient-{patient}"' in html
    assert "Wilcoxon p" in html and "median Δ" in html
    assert html.count('class="sortable') >= 5
    assert report.stat().st_size < 25e6 * len(PATIENTS) / 50


def test_colliding_patient_names_get_their_own_sections():
    from cytokit.report import render_report

    if not DEMO.exists():
        pytest.skip("demo data sample_fcs/modern is absent")
    renamed, plotter = colliding_results()
    html = render_report(renamed, plotter=plotter)
    sections = re.findall(r'<section class="patient" id="(patient-[^"]+)">', html)
    assert len(set(sections)) == 2 and all(f'href="#{anchor}"' in html for anchor in sections)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> str:
    """One patient whose stained tube's $FIL and $PnS hold markup; another file that fails."""
    import cytokit
    from cytokit.experiment import Experiment
    from cytokit.report import write_report

    if not DEMO.exists():
        pytest.skip("demo data sample_fcs/modern is absent")
    folder = tmp_path_factory.mktemp("xss")
    shutil.copy(DEMO / "CLL001_C2D1_isotype.fcs", folder / "X1_C2D1_isotype.fcs")
    stained = cytokit.read_fcs(DEMO / "CLL001_C2D1_stained.fcs")
    markers = dict(zip(stained.channels.pnn, stained.channels.pns))
    markers.update({"PE-A": f"LAG3 {XSS}", "Time": '<img src=x onerror="alert(2)">'})
    cytokit.write_fcs(folder / "X1_C2D1_stained.fcs", stained.events, markers=markers,
                      keywords={"$FIL": f"{XSS}<b>bold</b>", "$CYT": "&amp; <i>"})
    (folder / "X1_C2D8_stained.fcs").write_bytes(b"not an FCS file <script>alert(3)</script>")
    table = pd.DataFrame({
        "file": ["X1_C2D1_isotype.fcs", "X1_C2D1_stained.fcs", "X1_C2D8_stained.fcs"],
        "patient": ["X1"] * 3, "timepoint": ["C2D1", "C2D1", "C2D8"], "stain": ["isotype", "stained", "stained"],
    })
    res = Experiment.from_folder(folder, template=TEMPLATE, samples=table).run()
    assert (res.samples["status"] == "error").any()
    return write_report(res, folder / "report.html", title=XSS).read_text(encoding="utf-8")


def test_markup_in_fcs_files_is_escaped(hostile_report):
    html = hostile_report
    scripts = [attrs for tag, attrs in _parse(html) if tag == "script"]
    assert len(scripts) == 1  # only the report's own table-sorting script
    assert "alert(" not in "".join(re.findall(r"<script>.*?</script>", html, re.S))
    assert XSS not in html
    assert "<img src=x" not in html and "<b>bold</b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html  # $FIL, as text
    assert "LAG3 &lt;script&gt;alert(1)&lt;/script&gt;" in html  # $PnS, as text
    assert "&amp;amp; &lt;i&gt;" in html
    assert "X1_C2D8_stained.fcs" in html and 'id="patient-X1"' in html


_CHECK = """
<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
window.addEventListener("load", function () {
  var bad = [];
  document.querySelectorAll("img").forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { bad.push(img.alt); }
  });
  document.querySelector("table.sortable th").click();
  var out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify({images: document.images.length, bad: bad, errors: window.__errors});
  document.body.appendChild(out);
});
</script>
"""


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
               *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


@pytest.mark.browser
def test_report_in_headless_chromium(report, tmp_path):
    import json

    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Chromium not installed (Debian package 'chromium'; .ci/run installs it)")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    shot = _chromium(binary, tmp_path / "profile1", f"--screenshot={screenshot}", "--window-size=1280,2000",
                     report.as_uri())
    assert screenshot.exists() and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(PNG_MAGIC)

    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text(encoding="utf-8").replace("</body>", _CHECK + "</body>"), encoding="utf-8")
    dump = _chromium(binary, tmp_path / "profile2", "--dump-dom", "--virtual-time-budget=10000", checked.as_uri())
    console = [line for line in (shot.stderr + dump.stderr).splitlines() if "CONSOLE" in line]
    assert not console, console
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', dump.stdout, re.S)
    assert found, dump.stderr[-2000:]
    state = json.loads(found.group(1).replace("&quot;", '"'))
    assert state["images"] == 2 + 5 * len(PATIENTS)
    assert state["bad"] == [] and state["errors"] == []


def test_a_gate_skipped_in_every_file_is_one_row_per_population_not_one_per_file(tmp_path):
    """On FACSCalibur files (no FSC-A) the singlet gate is skipped: 96 rows of the same flag buried a
    doubtful gate in the population flags."""
    from cytokit import Experiment
    from cytokit.report import write_report

    folder = Path(__file__).resolve().parents[1] / "sample_fcs" / "calibur"
    sheet = pd.read_csv(folder / "samples.csv")
    sheet = sheet[sheet["patient"].isin(["CLL001", "CLL002"])].assign(path=lambda s: [str(folder / f) for f in s["file"]])
    res = Experiment(sheet, TEMPLATE).run()
    res.populations.loc[res.populations.index[-1], "flag"] += "; gate doubtful: weak separation (a test's)"
    html = write_report(res, tmp_path / "report.html").read_text(encoding="utf-8")
    skipped = html[html.index("<h3>Skipped gates"):html.index("<h3>Population flags")]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td></tr>", skipped)
    assert ("Lymphocytes/Singlets", "skipped: the file has no channel for role(s) fsc_area", "8") in rows  # 8 files
    assert len(rows) == 3  # singlets and the two populations below it
    flags = html[html.index("<h3>Population flags"):html.index("</section>", html.index("<h3>Population flags"))]
    assert flags.count("<tr><td>") == 1 and "a test&#39;s" in flags


def test_a_control_serving_compared_tubes_does_not_make_its_patient_unpaired(tmp_path):
    """An unstimulated tube at a timepoint no comparison names is 'unpaired' in the samples table (left
    out of the pairs) while its thresholds serve the patient's pairs: the report listed every patient
    as unpaired. Only a patient with a tube truly left out is."""
    import copy

    from cytokit.report import write_report

    if not DEMO.exists():
        pytest.skip("demo data sample_fcs/modern is absent")
    res = copy.copy(demo_results())
    samples = res.samples.copy()
    iso = samples.index[(samples["patient"] == "CLL001") & (samples["stain"] == "isotype")]
    samples.loc[iso, "status"] = "unpaired"
    samples.loc[iso, "control_of"] = "a stained tube"
    res.samples = samples
    html = write_report(res, tmp_path / "report.html", plotter=demo_plotter()).read_text(encoding="utf-8")
    unpaired = html[html.index("<h3>Unpaired patients"):html.index("<h3>Files with problems")]
    assert "Every patient has both timepoints" in unpaired
    assert "Patient CLL001 <span" not in html  # its header shows no status
    stained = samples.index[(samples["patient"] == "CLL002") & (samples["stain"] == "stained")][:1]
    samples.loc[stained, "status"] = "unpaired"
    html = write_report(res, tmp_path / "report.html", plotter=demo_plotter()).read_text(encoding="utf-8")
    unpaired = html[html.index("<h3>Unpaired patients"):html.index("<h3>Files with problems")]
    assert "CLL002" in unpaired and "CLL001" not in unpaired
    assert "Patient CLL002 <span class=\"bad\">(ok, unpaired)</span>" in html
