"""FlowJo workspace import (cytokit.gating.flowjo), checked against FlowKit's own gating."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

import cytokit
from cytokit.errors import TemplateError
from cytokit.gating.flowjo import template_from_flowjo
from cytokit.gating.load import load_template

CORPUS = Path(os.environ.get("CYTOKIT_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "fcs_corpus"))
FLOWKIT = CORPUS / "flowkit"
_needs_corpus = pytest.mark.skipif(not FLOWKIT.is_dir(), reason=f"shared FCS corpus not found at {CORPUS}")


def corpus(test):
    """Reads the shared corpus: marked ``corpus`` and skipped, with the reason, when it is absent."""
    return pytest.mark.corpus(_needs_corpus(test))

#: workspaces whose FCS file is in the corpus: (workspace, FCS file)
WITH_DATA = [
    ("simple_diamond_example/simple_diamond_example_quad_gate.wsp", "simple_diamond_example/test_data_diamond_01.fcs"),
    ("simple_diamond_example/test_data_diamond_asinh_rect.wsp", "simple_diamond_example/test_data_diamond_01.fcs"),
    ("simple_diamond_example/test_data_diamond_asinh_rect2.wsp", "simple_diamond_example/test_data_diamond_01.fcs"),
    ("simple_line_example/simple_poly_and_rect_v2_poly50.wsp", "simple_line_example/data_set_simple_line_100.fcs"),
    ("simple_line_example/single_ellipse_51_events.wsp", "simple_line_example/data_set_simple_line_100.fcs"),
]


def flowkit_counts(wsp: Path, fcs: Path) -> dict[str, int]:
    import flowkit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = flowkit.Workspace(str(wsp), fcs_samples=str(fcs))
        sample_id = workspace.get_sample_ids()[0]
        workspace.analyze_samples(sample_id=sample_id, use_mp=False)
    report = workspace.get_gating_results(sample_id).report
    return {name: int(count) for name, count in zip(report.gate_name, report["count"])}


@corpus
@pytest.mark.parametrize(("wsp", "fcs"), WITH_DATA, ids=[w for w, _ in WITH_DATA])
def test_imported_workspace_reproduces_flowkit_counts(wsp, fcs):
    template = template_from_flowjo(FLOWKIT / wsp)
    result = template.apply(cytokit.read_fcs(FLOWKIT / fcs))
    counts = dict(zip(result.counts().population, result.counts()["count"]))
    expected = flowkit_counts(FLOWKIT / wsp, FLOWKIT / fcs)
    assert counts == expected
    assert any(c > 0 for c in counts.values())


@corpus
def test_transforms_and_gates_are_carried_over():
    template = template_from_flowjo(FLOWKIT / "simple_diamond_example/test_data_diamond_asinh_rect2.wsp")
    assert template.transforms["channel_B"] == {"kind": "asinh", "t": 262144.0, "m": 1.3, "a": 0.0}
    assert template.roles["channel_A"].pnn == ("channel_A",)
    assert template.compensation == "none"
    (population,) = template.populations
    assert population.gate["type"] == "rectangle" and set(population.gate["bounds"]) == {"channel_A", "channel_B"}


@corpus
def test_load_template_dispatches_wsp():
    template = load_template(FLOWKIT / "simple_line_example/single_ellipse_51_events.wsp")
    assert template.paths == ["ellipse1"]
    assert template.populations[0].gate["type"] == "polygon"


@corpus
def test_tree_with_repeated_names_compensation_and_booleans():
    # the 8-colour FCS files are not in the corpus: check the imported structure only
    template = template_from_flowjo(FLOWKIT / "8_color_data_set/8_color_ICS_boolean_gate_testing.wsp")
    assert template.compensation == "file"
    assert template.transforms["CD3 APC-H7 FLR-A"]["kind"] == "logicle"
    names = [p.name for p in template.populations]
    assert len(names) == len(set(names))
    assert "CD4+ CD107a+" in names and "CD8+ CD107a+" in names
    booleans = {p.name: p.gate for p in template.populations if p.gate["type"] == "boolean"}
    assert booleans["CD107a+ & IFNg+"] == {"type": "boolean", "op": "and",
                                            "operands": ["CD4+ CD107a+", "CD4+ IFNg+"]}
    assert template.path_of("CD4+ CD107a+") == "Time/Singlets/aAmine-/CD3+/CD4+/CD4+ CD107a+"


@corpus
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"group": "nope"}, "no sample group 'nope'"),
    ({"sample_id": "missing.fcs"}, "no sample 'missing.fcs'"),
])
def test_unknown_group_or_sample(kwargs, match):
    with pytest.raises(TemplateError, match=match):
        template_from_flowjo(FLOWKIT / "simple_line_example/single_ellipse_51_events.wsp", **kwargs)


@corpus
def test_flowjo_biex_is_refused_with_the_gate_named():
    with pytest.raises(TemplateError, match=r"gate 'upper_right': dimension transform WSPBiex"):
        template_from_flowjo(FLOWKIT / "simple_diamond_example/test_data_diamond_biex_rect.wsp")


def test_missing_workspace(tmp_path):
    with pytest.raises(TemplateError, match="no such file"):
        template_from_flowjo(tmp_path / "absent.wsp")


def test_gatingml_file_is_a_template_of_static_gates(tmp_path):
    """A Gating-ML file written by cytokit (fitted gates made static) reopens as a template."""
    import cytokit
    from cytokit.gating.load import load_template

    repo = Path(__file__).resolve().parents[1]
    template = load_template(repo / "gating_templates" / "cll_cd19_7aad.yaml")
    sample = cytokit.read_fcs(repo / "sample_fcs" / "calibur" / "CLL001_C2D1_stained.fcs")
    fitted = template.apply(sample, is_control=True)
    xml = fitted.to_gateset().write(tmp_path / "fitted.xml")
    static = load_template(xml)
    again = static.apply(sample)
    expected = fitted.counts()
    expected = expected[expected["population"] != "Lymphocytes/Singlets"]  # skipped in FCS 2.0: not exported
    assert again.counts()["count"].tolist() == expected["count"].tolist()


def test_gatingml_with_a_spectrum_matrix_reopens_with_that_matrix(tmp_path):
    """A modern file's export carries its spillover as a Gating-ML spectrum matrix; the template
    imported from it compensates with that matrix and gates the same events."""
    repo = Path(__file__).resolve().parents[1]
    sample = cytokit.read_fcs(repo / "sample_fcs" / "modern" / "CLL003_C2D8_stained.fcs")
    fitted = load_template(repo / "gating_templates" / "cll_cd19_7aad.yaml").apply(sample, is_control=True)
    static = load_template(fitted.to_gateset().write(tmp_path / "fitted.xml"))
    assert sorted(static.compensation["detectors"]) == sorted(sample.spillover.columns)
    again = static.apply(sample)
    assert again.compensation == "template matrix"
    assert again.counts()["count"].tolist() == fitted.counts()["count"].tolist()


def test_inline_matrix_in_yaml_equals_the_files_own(tmp_path):
    from cytokit.gating.template import parse_template

    repo = Path(__file__).resolve().parents[1]
    sample = cytokit.read_fcs(repo / "sample_fcs" / "modern" / "CLL003_C2D8_stained.fcs")
    shipped = (repo / "gating_templates" / "cll_cd19_7aad.yaml").read_text()
    spill = sample.spillover
    inline = "compensation: {detectors: [%s], matrix: %s}" % (", ".join(spill.columns), spill.to_numpy().tolist())
    template = parse_template(shipped.replace("compensation: file", inline))
    a, b = template.apply(sample, is_control=True), load_template(repo / "gating_templates" / "cll_cd19_7aad.yaml")
    assert a.counts()["count"].tolist() == b.apply(sample, is_control=True).counts()["count"].tolist()
    with pytest.raises(TemplateError, match="key compensation: matrix is 2 × 2 but there are 3"):
        parse_template(shipped.replace("compensation: file", "compensation: {detectors: [A, B, C], "
                                                             "matrix: [[1, 0], [0, 1]]}"))


def test_populations_follow_their_parents_and_boolean_operands():
    from cytokit.gating.flowjo import _in_dependency_order

    pops = [{"name": "R", "parent": "root", "gate": {}},
            {"name": "AND", "parent": "R", "gate": {"type": "boolean", "operands": ["R", "E"]}},
            {"name": "E", "parent": "root", "gate": {}},
            {"name": "child", "parent": "AND", "gate": {}}]
    assert [p["name"] for p in _in_dependency_order(pops)] == ["R", "E", "AND", "child"]


@corpus
def test_every_gatingml_compliance_file_imports_or_is_refused_by_name():
    results = {}
    for xml in sorted((FLOWKIT / "gate_ref" / "gml").glob("*.xml")):
        try:
            load_template(xml)
            results[xml.name] = "ok"
        except TemplateError as exc:  # anything else escaping is a bug
            assert str(exc).startswith(str(xml))
            results[xml.name] = str(exc)
    assert results["gml_parent_poly1_boolean_and2_gate.xml"] == "ok"  # a boolean listed before its operand
    assert "RatioDimension" in results["gml_ratio_range1_gate.xml"]
    assert sum(v == "ok" for v in results.values()) >= 38
