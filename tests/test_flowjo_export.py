"""The FlowJo workspace of the fitted gates: FlowKit's ``Workspace`` reads it back and gives every
population count of every file exactly as cytokit's ``populations`` table, for a real ``cytokit run``
on both demo layouts and for each gate type and transform on a synthetic file."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from lxml import etree

flowkit = pytest.importorskip("flowkit")

from cytokit.cli import main
from cytokit.fcs import read_fcs, write_fcs
from cytokit.flowjo_export import to_flowjo
from cytokit.gating.load import load_template

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "gating_templates" / "cll_cd19_7aad.yaml"
REAL_GATED = Path(os.environ.get("CYTOKIT_REAL_GATED", REPO.parent / "shared" / "real_gated"))


def flowkit_counts(wsp: Path, folder: Path) -> dict[tuple[str, str], int]:
    """(file, population path) → count, as FlowKit's Workspace gates the files (samples are named by
    ``$FIL``: mapped back to file names through their ``DataSet`` URIs)."""
    files = {s.find("SampleNode").get("name"): Path(s.find("DataSet").get("uri")).name
             for s in etree.parse(str(wsp)).getroot().find("SampleList")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FlowKit's own warnings (pandas, missing files)
        workspace = flowkit.Workspace(str(wsp), fcs_samples=str(folder))
        workspace.analyze_samples(use_mp=False)
        report = workspace.get_analysis_report()
    return {(files[row.sample_id], "/".join([*row.gate_path[1:], row.gate_name])): int(row.count)
            for row in report.itertuples()}


@pytest.fixture(scope="module", params=["calibur", "modern"])
def demo_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"run_{request.param}")
    folder = REPO / "sample_fcs" / request.param
    code = main(["run", str(folder), "--template", str(TEMPLATE), "--out", str(out), "--quiet", "--no-plots",
                 "--workers", "1", "--flowjo"])
    assert code == 0
    return SimpleNamespace(layout=request.param, folder=folder, wsp=out / "gates.wsp",
                           populations=pd.read_csv(out / "populations.csv", keep_default_na=False))


def test_flowkit_reproduces_every_population_count_of_a_run(demo_run):
    expected = {(r.file, r.population): int(r.count) for r in demo_run.populations.itertuples()}
    got = flowkit_counts(demo_run.wsp, demo_run.folder)
    assert len(expected) == 24 * 4
    assert got == expected
    assert len({count for (_, population), count in got.items() if population == "Lymphocytes"}) > 12


def test_every_file_has_its_own_gates_transforms_and_compensation(demo_run):
    root = etree.parse(str(demo_run.wsp)).getroot()
    samples = root.find("SampleList").findall("Sample")
    assert [s.find("SampleNode").get("name") for s in samples] == sorted(demo_run.populations["file"].unique())
    ns = {"gating": "http://www.isac-net.org/std/Gating-ML/v2.0/gating",
          "transforms": "http://www.isac-net.org/std/Gating-ML/v2.0/transformations",
          "data-type": "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"}
    lymphocytes = [s.find("SampleNode/Subpopulations/Population/Gate/gating:PolygonGate", ns) for s in samples]
    first_vertices = {etree.tostring(p.find("gating:vertex", ns)) for p in lymphocytes}
    assert len(first_vertices) == len(samples)  # each file's own fitted cluster
    matrices = [s.find("transforms:spilloverMatrix", ns) for s in samples]
    dims = {d.get(f"{{{ns['data-type']}}}name") for d in root.iter(f"{{{ns['data-type']}}}fcs-dimension")}
    singlets = [s.find("SampleNode/Subpopulations/Population/Subpopulations/*", ns) for s in samples]
    if demo_run.layout == "modern":  # $SPILLOVER, compensated detectors as Comp-, a fitted singlet wedge
        assert all(m is not None and m.get("prefix") == "Comp-" for m in matrices)
        assert {"Comp-FITC-A", "Comp-PerCP-Cy5-5-A", "FSC-A", "SSC-A"} <= dims
        assert {s.tag for s in singlets} == {"Population"}
    else:  # no spillover; no FSC-A/FSC-H pair: Singlets passes its parent's events (an OR of it)
        assert all(m is None for m in matrices) and not any(d.startswith("Comp-") for d in dims)
        assert {s.tag for s in singlets} == {"OrNode"}
        assert {s.find("Dependents/Dependent").get("name") for s in singlets} == {"Lymphocytes"}
    kinds = {etree.QName(t).localname for s in samples for t in s.find("Transformations")}
    assert kinds == {"linear", "logicle"}


def test_without_its_compensation_flowkit_counts_differently(demo_run, tmp_path):
    """The count check is sensitive: the same gates on uncompensated data select other events
    (calibur files, compensated in hardware, have no matrix to replace: their counts stay)."""
    transforms = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
    datatypes = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
    tree = etree.parse(str(demo_run.wsp))
    for row in tree.getroot().iter(f"{{{transforms}}}spillover"):  # the identity: no compensation
        for coefficient in row:
            same = coefficient.get(f"{{{datatypes}}}parameter") == row.get(f"{{{datatypes}}}parameter")
            coefficient.set(f"{{{transforms}}}value", "1.0" if same else "0.0")
    tree.write(str(tmp_path / "uncompensated.wsp"))
    got = flowkit_counts(tmp_path / "uncompensated.wsp", demo_run.folder)
    expected = {(r.file, r.population): int(r.count) for r in demo_run.populations.itertuples()}
    if demo_run.layout == "modern":
        assert sum(got[key] != count for key, count in expected.items()) > 10
    else:
        assert {key: got[key] for key in expected} == expected


def test_cytokits_own_flowjo_import_reproduces_the_counts(demo_run):
    """Round trip: one file's sample of the workspace as a template, applied to that file."""
    for file in ("CLL002_C2D1_isotype.fcs", "CLL002_C2D8_stained.fcs"):
        result = load_template(demo_run.wsp, sample=file).apply(read_fcs(demo_run.folder / file))
        counts = dict(zip(result.counts()["population"], result.counts()["count"]))
        rows = demo_run.populations[demo_run.populations["file"] == file]
        assert counts == dict(zip(rows["population"], rows["count"]))


def _gated(template_path: Path, files: dict[str, Path], controls: dict[str, str]) -> tuple[SimpleNamespace, dict]:
    """Files gated one by one (each stimulated tube against its control): results as the exporter reads
    them, and cytokit's count of every (file, population)."""
    template = load_template(template_path)
    gated: dict = {}

    def gate(file):
        if file not in gated:
            control = gate(controls[file]) if file in controls else None
            sample = read_fcs(files[file])
            gated[file] = (template.apply(sample, control=control) if control else
                           template.apply(sample, is_control=True))
        return gated[file]

    for file in files:
        gate(file)
    results = SimpleNamespace(samples=pd.DataFrame({"file": list(files), "status": "ok"}),
                              paths={f: str(p) for f, p in files.items()},
                              fitted={f: r.fitted() for f, r in gated.items()},
                              gating={f: r.summary() for f, r in gated.items()}, template_path=str(template_path))
    counts = {(f, row.population): int(row.count) for f, r in gated.items() for row in r.counts().itertuples()}
    return results, counts


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flowatlas", "activation"])
def test_flowkit_reproduces_the_real_sets_counts(name, tmp_path):
    """Real files: FlowJo-exported FJComp- channels and panels without CD19 (B cells skipped at the root:
    a box around every event), and boundary, ratio-singlet, 2-D peak-foot, quadrant and control gates."""
    folder = REAL_GATED / name / "fcs"
    if not folder.is_dir():
        pytest.skip(f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)")
    controls = {}
    if name == "activation":
        design = pd.read_csv(REAL_GATED / name / "design.csv", keep_default_na=False)
        controls = {row.file: row.control_file for row in design.itertuples() if row.control_file}
    files = {p.name: p for p in sorted(folder.glob("*.fcs"))}
    results, counts = _gated(REPO / "gating_templates" / "examples" / f"{name}.yaml", files, controls)
    wsp = to_flowjo(results, tmp_path / "gates.wsp")
    assert flowkit_counts(wsp, folder) == counts
    assert len(counts) == {"flowatlas": 14 * 18, "activation": 17 * 10}[name]


# ---- each gate type and transform on one synthetic file ------------------------------------------

SYNTHETIC = """
name: synthetic
channels:
  fsc: {pnn: [FSC-A]}
  ssc: {pnn: [SSC-A]}
  a: {pnn: [FL1-A]}
  b: {pnn: [FL2-A]}
  c: {pnn: [FL3-A]}
compensation: file
transforms:
  fsc: {kind: linear, t: 262144, a: 1000}
  ssc: {kind: log, t: 262144, m: 4.5}
  a: {kind: asinh, t: 262144, m: 4.5, a: 0.5}
  b: {kind: biex, t: 262144, width: -100, positive: 4.42, negative: 0}
  c: {kind: C_KIND, t: 262144, w: 0.5, m: 4.5, a: 0}
populations:
  - {name: Cells, parent: root, gate: {type: cluster, dims: [fsc, ssc], n_components: 2, select: largest,
     confidence: 0.95}}
  - {name: A+, parent: Cells, gate: {type: density_valley, dim: a, side: above}}
  - {name: B high, parent: Cells, gate: {type: quantile, dim: b, q: 0.7}}
  - {name: A+ B high, parent: Cells, gate: {type: boolean, op: and, operands: [A+, B high]}}
  - {name: A- or B high, parent: Cells, gate: {type: boolean, op: or, operands: [A+, B high], complement: [A+]}}
  - {name: not A+, parent: Cells, gate: {type: boolean, op: not, operands: [A+]}}
  - {name: Box, parent: A+, gate: {type: rectangle, bounds: {b: [2000, 3000], c: [0.3, null]}}}
  - {name: Triangle, parent: Cells, gate: {type: polygon, dims: [a, c], vertices: [[0.1, 0.1], [0.8, 0.2], [0.4, 0.9]]}}
  - {name: Dim, parent: Cells, gate: {type: peak_foot, dim: [a, c], side: below, k: 3}}
  - {name: Never, parent: Cells, gate: {type: quantile, dim: c, q: 0.5, min_events: 1000000}}
  - {name: Under never, parent: Never, gate: {type: range, dim: a, min: 0.2}}
"""


def _synthetic(tmp_path: Path, c_kind: str = "logicle", compensation: str = "file"):
    """One compensated five-channel file, gated by ``SYNTHETIC``: results as the exporter reads them.
    ``compensation``: ``file`` (its $SPILLOVER) or ``template`` (the same matrix in the template)."""
    rng = np.random.default_rng(1)
    n = 6000
    cells = rng.random(n) < 0.7
    positive = rng.random(n) < 0.4
    events = pd.DataFrame({
        "FSC-A": np.where(cells, rng.normal(90_000, 12_000, n), rng.normal(30_000, 8_000, n)),
        "SSC-A": np.exp(np.where(cells, rng.normal(10.0, 0.3, n), rng.normal(11.0, 0.5, n))),
        "FL1-A": np.where(positive, rng.lognormal(8.5, 0.4, n), rng.normal(50, 150, n)),
        "FL2-A": rng.lognormal(7.5, 0.8, n) - 300,
        "FL3-A": np.where(rng.random(n) < 0.5, rng.lognormal(9.0, 0.5, n), rng.normal(0, 200, n)),
    })
    detectors = ["FL1-A", "FL2-A", "FL3-A"]
    spillover = pd.DataFrame([[1.0, 0.15, 0.02], [0.03, 1.0, 0.12], [0.0, 0.04, 1.0]], index=detectors,
                             columns=detectors)
    observed = events.copy()
    observed[detectors] = events[detectors].to_numpy() @ spillover.to_numpy()
    folder = tmp_path / "fcs"
    folder.mkdir()
    # with the template's matrix, the file's $SPILLOVER is another one: the workspace must hold the template's
    in_file = spillover if compensation == "file" else spillover * 3 - 2 * np.eye(3)
    path = write_fcs(folder / "synthetic.fcs", observed.astype(np.float32), spillover=in_file,
                     keywords={"$FIL": "synthetic.fcs"})
    template_path = tmp_path / "synthetic.yaml"
    text = SYNTHETIC.replace("C_KIND", c_kind)
    if compensation == "template":
        text = text.replace("compensation: file", f"compensation: {{detectors: {detectors}, "
                                                  f"matrix: {spillover.to_numpy().tolist()}}}")
    template_path.write_text(text)
    result = load_template(template_path).apply(read_fcs(path))
    results = SimpleNamespace(
        samples=pd.DataFrame({"file": ["synthetic.fcs"], "status": ["ok"]}), paths={"synthetic.fcs": str(path)},
        fitted={"synthetic.fcs": result.fitted()}, gating={"synthetic.fcs": result.summary()},
        template_path=str(template_path))
    counts = {("synthetic.fcs", r.population): int(r.count) for r in result.counts().itertuples()}
    return results, counts, folder


@pytest.mark.parametrize("compensation", ["file", "template"])
def test_every_gate_type_and_transform_round_trips_through_flowkit(tmp_path, compensation):
    results, counts, folder = _synthetic(tmp_path, compensation=compensation)
    with pytest.warns(UserWarning, match=r"left out .*Cells/A- or B high \(FlowJo's boolean gates have no operand"):
        wsp = to_flowjo(results, tmp_path / "gates.wsp")
    got = flowkit_counts(wsp, folder)
    expected = {key: count for key, count in counts.items() if key[1] != "Cells/A- or B high"}
    assert got == expected
    assert 0 < got["synthetic.fcs", "Cells/Dim"] < got["synthetic.fcs", "Cells"]  # the clipped half-plane
    assert got["synthetic.fcs", "Cells/Never"] == 0 and got["synthetic.fcs", "Cells/Never/Under never"] == 0
    assert got["synthetic.fcs", "Cells/A+ B high"] > 0 and got["synthetic.fcs", "Cells/not A+"] > 0
    xml = wsp.read_text()
    for kind in ("linear", "log", "fasinh", "biex", "logicle", "spilloverMatrix", "AndNode", "NotNode"):
        assert f"transforms:{kind}" in xml or f"<{kind}" in xml
    assert 'annotation="gate failed: too few events to fit' in xml
    assert f'name="{"Acquisition-defined" if compensation == "file" else "template matrix"}"' in xml


def test_the_gates_on_a_hyperlog_channel_are_left_out(tmp_path):
    results, counts, folder = _synthetic(tmp_path, c_kind="hyperlog")
    with pytest.warns(UserWarning, match=r"Cells/Triangle \(no FlowJo transform FlowKit reads for hyperlog \(FL3-A\)\)"):
        wsp = to_flowjo(results, tmp_path / "gates.wsp")
    got = flowkit_counts(wsp, folder)
    left_out = {"Cells/A- or B high", "Cells/A+/Box", "Cells/Triangle", "Cells/Dim", "Cells/Never",
                "Cells/Never/Under never"}
    assert got == {key: count for key, count in counts.items() if key[1] not in left_out}
    assert "transforms:hyperlog" not in wsp.read_text() and 'fcs-dimension data-type:name="Comp-FL3-A"' not in wsp.read_text()


def test_a_rerun_from_the_cache_writes_the_same_workspace_and_one_without_flowjo_removes_it(tmp_path):
    folder = tmp_path / "fcs"
    folder.mkdir()
    for path in (REPO / "sample_fcs" / "modern").glob("CLL001_*.fcs"):
        shutil.copy(path, folder / path.name)
    out = tmp_path / "out"
    args = ["run", str(folder), "--template", str(TEMPLATE), "--out", str(out), "--quiet", "--no-plots",
            "--workers", "1"]

    def written() -> bytes:  # without the time it was written
        root = etree.parse(str(out / "gates.wsp")).getroot()
        del root.attrib["modDate"]
        return etree.tostring(root)

    assert main([*args, "--flowjo"]) == 0
    first = written()
    assert main([*args, "--flowjo"]) == 0  # every group from OUT/.cache: fitted values read back from JSON
    assert written() == first and first.count(b"<SampleNode ") == 4
    assert main(args) == 0 and not (out / "gates.wsp").exists()


def test_compare_reads_its_own_workspace_of_files_sharing_a_fil_name(tmp_path):
    """Two cohorts' files with one $FIL: --flowjo names the samples by file name, and compare, opening
    the workspace by $FIL, found none of them ('not a sample of the workspace ... its samples: <it>')."""
    import cytokit

    folder = tmp_path / "fcs"
    folder.mkdir()
    for cohort, gain in (("A", 1.0), ("B", 1.01)):  # other bytes, the same $FIL
        for stain in ("isotype", "stained"):
            sample = read_fcs(REPO / "sample_fcs" / "modern" / f"CLL001_C2D1_{stain}.fcs")
            sample.events["FSC-A"] = sample.events["FSC-A"] * gain
            write_fcs(folder / f"{cohort}CLL001_C2D1_{stain}.fcs", sample)
    sheet = tmp_path / "samples.csv"
    sheet.write_text("file,patient,timepoint,stain\n" + "".join(
        f"{c}CLL001_C2D1_{s}.fcs,{c}1,C2D1,{s}\n" for c in "AB" for s in ("isotype", "stained")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shared $FIL's warning, and unpaired tubes'
        assert main(["run", str(folder), "--samples", str(sheet), "--template", str(TEMPLATE), "--out",
                     str(tmp_path / "out"), "--quiet", "--no-plots", "--workers", "1", "--flowjo"]) in (0, 1)
    stained = [folder / f"{c}CLL001_C2D1_stained.fcs" for c in "AB"]
    table = cytokit.compare(stained, load_template(TEMPLATE), tmp_path / "out" / "gates.wsp")
    assert (table.status == "paired").all() and (table.f1 == 1.0).all() and set(table.file) == {s.name for s in stained}


def test_a_workspace_of_a_templates_own_matrix_reopens_with_that_matrix(tmp_path):
    """Reopened as a template, cytokit's --flowjo workspace of a run with its own matrix fell back on
    the files' $SPILLOVER: Cells/B/V 2632 events where FlowKit (and the run) count 423."""
    text = TEMPLATE.read_text()
    start = text.index("compensation:")
    end = text.index("\n", start)
    matrix = ("compensation:\n  detectors: [FITC-A, PE-A, PerCP-Cy5-5-A, APC-A]\n"
              "  matrix: [[1, 0.5, 0.1, 0], [0.05, 1, 0.3, 0], [0, 0.1, 1, 0.2], [0, 0, 0.1, 1]]")
    template = tmp_path / "own_matrix.yaml"
    template.write_text(text[:start] + matrix + text[end:])
    folder = tmp_path / "fcs"
    folder.mkdir()
    for stain in ("isotype", "stained"):
        shutil.copy(REPO / "sample_fcs" / "modern" / f"CLL001_C2D1_{stain}.fcs", folder)
    out = tmp_path / "out"
    assert main(["run", str(folder), "--template", str(template), "--out", str(out), "--quiet", "--no-plots",
                 "--workers", "1", "--flowjo"]) in (0, 1)
    counts = pd.read_csv(out / "populations.csv").set_index(["file", "population"])["count"]
    stained = folder / "CLL001_C2D1_stained.fcs"
    reopened = load_template(out / "gates.wsp", sample="CLL001_C2D1_stained.fcs")
    assert isinstance(reopened.compensation, dict)
    again = reopened.apply(read_fcs(stained)).counts().set_index("population")["count"]
    for path, count in again.items():
        assert count == counts[("CLL001_C2D1_stained.fcs", path)], path
