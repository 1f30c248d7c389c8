"""openCyto gatingTemplate CSV import (cytokit.gating.opencyto)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cytokit
from cytokit.errors import TemplateError
from cytokit.gating.opencyto import template_from_opencyto
from cytokit.gating.load import load_template

REPO = Path(__file__).resolve().parents[1]
HEADER = ("alias,pop,parent,dims,gating_method,gating_args,collapseDataForGating,groupBy,"
          "preprocessing_method,preprocessing_args\n")
#: the YAML template's transforms, for the roles the example CSV creates
TRANSFORMS = {
    "FSC-A": {"kind": "linear", "t": "auto"},
    "FSC-H": {"kind": "linear", "t": "auto"},
    "default": {"kind": "logicle", "t": "auto", "w": 0.5, "m": 4.5, "a": 0},
}


def write_csv(tmp_path: Path, rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "gt.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


@pytest.mark.parametrize(("row", "gate"), [
    ('CD19+,+,root,CD19,mindensity,"gate_range=c(0.2,0.7)",,,,',
     {"type": "density_valley", "dim": "CD19", "side": "above", "search_range": [0.2, 0.7]}),
    ("Viable,-,root,7AAD,gate_mindensity,,,,,",
     {"type": "density_valley", "dim": "7AAD", "side": "below"}),
    ("Viable,-,root,7AAD,mindensity,min_peak_height=0.01,,,,",
     {"type": "density_valley", "dim": "7AAD", "side": "below", "min_peak_height": 0.01}),
    ("CD3hi,CD3+,root,CD3,quantileGate,probs=0.99,,,,",
     {"type": "quantile", "dim": "CD3", "side": "above", "q": 0.99}),
    ('CD4+,+,root,CD4,tailgate,"tol=0.05, adjust=2",,,,',
     {"type": "tail", "dim": "CD4", "side": "above", "adjust": 2.0, "fraction": 0.05}),
    ('nonDebris,+,root,"FSC-A,SSC-A",boundary,"min=c(0.2,0),max=c(Inf,0.95)",,,,',
     {"type": "rectangle", "bounds": {"FSC-A": [0.2, None], "SSC-A": [0.0, 0.95]}}),
    ('Lymphocytes,+,root,"FSC-A,SSC-A",flowClust.2d,"K=3,quantile=0.95",,,,',
     {"type": "cluster", "dims": ["FSC-A", "SSC-A"], "n_components": 3, "select": "largest",
      "confidence": 0.95}),
    ('Lymphocytes,+,root,"FSC-A,SSC-A",flowClust,"K=2, target=c(0.4,0.2)",,,,',
     {"type": "cluster", "dims": ["FSC-A", "SSC-A"], "n_components": 2, "select": "nearest",
      "location": [0.4, 0.2], "confidence": 0.9}),
    ("CD11c+,+,root,CD11c,flowClust.1d,K=3,,,,",
     {"type": "mixture_threshold", "dim": "CD11c", "side": "above", "n_components": 3, "split": "bottom"}),
    ("CD11c-,-,root,CD11c,gate_flowclust_1d,,,,,",
     {"type": "mixture_threshold", "dim": "CD11c", "side": "below", "n_components": 2, "split": "bottom"}),
    ('singlets,+,root,"FSC-A,FSC-H",singletGate,,,,,',
     {"type": "singlet", "area": "FSC-A", "height": "FSC-H"}),
])
def test_supported_methods_map_to_cytokit_gates(tmp_path, row, gate):
    template = template_from_opencyto(write_csv(tmp_path, row + "\n"))
    (population,) = template.populations
    assert population.gate == gate
    assert population.parent == "root"
    assert population.line == 2


def test_roles_parents_and_lines(tmp_path):
    rows = ('nonDebris,+,root,"FSC-A,SSC-A",boundary,"min=c(0.1,0.1),max=c(0.9,0.9)",,,,\n'
            'singlets,+,/nonDebris,"FSC-A,FSC-H",singletGate,,,,,\n'
            "CD19+,+,/nonDebris/singlets,CD19,mindensity,,,,,\n"
            "CD5+,+,CD19+,CD5,mindensity,,,,,\n")
    template = template_from_opencyto(write_csv(tmp_path, rows))
    assert [p.parent for p in template.populations] == ["root", "nonDebris", "singlets", "CD19+"]
    assert [p.line for p in template.populations] == [2, 3, 4, 5]
    assert template.paths[-1] == "nonDebris/singlets/CD19+/CD5+"
    assert template.roles["FSC-A"].marker is None and template.roles["FSC-A"].pnn == ("FSC-A",)
    assert template.roles["CD19"].marker == "CD19" and template.roles["CD19"].pnn == ("CD19",)
    assert template.markers == [] and template.compensation == "file"
    # openCyto transforms live outside the CSV: FSC and Time linear, the rest (SSC, markers) logicle
    assert template.transforms == {"FSC-A": {"kind": "linear", "t": "auto"},
                                   "FSC-H": {"kind": "linear", "t": "auto"},
                                   "default": {"kind": "logicle", "t": "auto", "w": 0.5, "m": 4.5, "a": 0}}
    assert template_from_opencyto(write_csv(tmp_path, rows), transforms={}).transforms == {}


def test_transforms_and_markers_keywords(tmp_path):
    path = write_csv(tmp_path, "CD19+,+,root,CD19,mindensity,,,,,\n")
    template = template_from_opencyto(
        path, transforms={"default": {"kind": "logicle", "t": "auto"}}, compensation="none",
        markers=[{"name": "CD19", "channel": "CD19", "population": "CD19+"}])
    assert template.transforms == {"default": {"kind": "logicle", "t": "auto"}}
    assert template.compensation == "none"
    assert [m.name for m in template.markers] == ["CD19"]


def test_unsupported_method_names_file_line_and_method(tmp_path):
    rows = "A,+,root,CD19,mindensity,,,,,\nB,+,A,CD3,refGate,CD19:CD3,,,,\n"
    path = write_csv(tmp_path, rows)
    with pytest.raises(TemplateError) as info:
        template_from_opencyto(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and "refGate" in message
    assert "mindensity" in message and "flowClust" in message  # lists what is supported


def test_missing_column_is_a_template_error(tmp_path):
    path = write_csv(tmp_path, "A,+,root,CD19,,\n", header="alias,pop,parent,dims,gating_args\n")
    with pytest.raises(TemplateError, match=r"line 1: missing column\(s\) gating_method"):
        template_from_opencyto(path)


@pytest.mark.parametrize(("row", "match"), [
    ("A,+,/nowhere,CD19,mindensity,,,,,", r"line 2, population 'A': parent 'nowhere'"),
    ('A,+,root,CD19,mindensity,"gate_range=c(1)",,,,', r"line 2: gate_range must be c\(low, high\)"),
    ("A,+,root,CD19,mindensity,gate_range,,,,", r"line 2: .* is not name=value"),
    ("A,+,root,CD19,tailgate,tol=5,,,,", r"line 2: tailgate tol=5.0"),
    ("A,pos,root,CD19,mindensity,,,,,", r"line 2: pop 'pos' must end in"),
    ('A,+,root,"CD3,CD19",mindensity,,,,,', r"line 2: mindensity gates one dim"),
    ("*,+/-,root,CD19,mindensity,,,,,", r"line 2: alias '\*'"),
])
def test_malformed_rows_name_the_line(tmp_path, row, match):
    with pytest.raises(TemplateError, match=match):
        template_from_opencyto(write_csv(tmp_path, row + "\n"))


def test_unknown_arguments_warn(tmp_path):
    path = write_csv(tmp_path, 'A,+,root,CD19,mindensity,"peaks=c(1,3)",,,,\n')
    with pytest.warns(UserWarning, match="peaks"):
        template_from_opencyto(path)


def test_load_template_dispatches_csv():
    template = load_template(REPO / "gating_templates" / "cll_cd19_7aad.opencyto.csv")
    assert template.paths == ["Lymphocytes", "Lymphocytes/Singlets", "Lymphocytes/Singlets/Viable",
                              "Lymphocytes/Singlets/Viable/CD19+"]


def test_example_csv_gates_the_demo_file_like_the_yaml_template():
    sample = cytokit.read_fcs(REPO / "sample_fcs" / "modern" / "CLL001_C2D1_stained.fcs")
    yaml_template = load_template(REPO / "gating_templates" / "cll_cd19_7aad.yaml")
    csv_template = template_from_opencyto(REPO / "gating_templates" / "cll_cd19_7aad.opencyto.csv",
                                          transforms=TRANSFORMS)
    path = "Lymphocytes/Singlets/Viable/CD19+"
    expected = int(yaml_template.apply(sample, is_control=True).membership[path].sum())
    counts = csv_template.apply(sample, is_control=True).counts().set_index("population")
    assert counts["flag"].eq("").all()
    assert expected > 0
    assert abs(int(counts.at[path, "count"]) - expected) <= 0.05 * expected


def test_the_example_csv_without_transforms_gates_like_the_yaml_template():
    """The CLI cannot pass transforms: without defaults Viable failed in all 24 demo files (issue 16 item
    20). CLL005_C2D8_isotype's dead-cell peak is below 5 % of the live one: min_peak_height=0.01."""
    yaml_template = load_template(REPO / "gating_templates" / "cll_cd19_7aad.yaml")
    csv_template = load_template(REPO / "gating_templates" / "cll_cd19_7aad.opencyto.csv")
    stained = cytokit.read_fcs(REPO / "sample_fcs" / "modern" / "CLL005_C2D8_stained.fcs")
    channels = yaml_template.resolve_channels(stained)
    for name in ("CLL005_C2D8_stained.fcs", "CLL005_C2D8_isotype.fcs"):
        sample = cytokit.read_fcs(REPO / "sample_fcs" / "modern" / name)
        ours = csv_template.apply(sample, is_control=True).counts()
        theirs = yaml_template.apply(sample, is_control=True, channels=channels).counts()
        assert ours["flag"].eq("").all(), ours
        assert ours["count"].tolist() == theirs["count"].tolist()


@pytest.mark.parametrize(("row", "message"), [
    ("CD19,+/-,root,CD19,mindensity,,,,,", r"pop '\+/-' \(both sides, as two populations\) is not supported"),
    ('notLymph,-,root,"FSC-A,SSC-A",flowClust.2d,K=3,,,,', r"pop '-' on a flowClust.2d region: only '\+'"),
    ('Bnd,+,root,"FSC-A,SSC-A",boundary,"max=c(1e5,1e5)",,,,', r"rectangle value\(s\) 100000, 100000 lie off the scale"),
    ("both,+,CD4,,boolGate,CD4&CD8,,,,", r"gating_method 'boolGate' is not imported .*YAML boolean gate"),
    ('Q,*,root,"CD4,CD8",quadGate.seq,,,,,', r"'quadGate.seq' .* sequential: above / below"),
])
def test_rows_read_wrongly_before_are_refused_by_name(tmp_path, row, message):
    """'+/-' made one population, the negative one; '-' on a 2-D region was its inside; raw units on
    the 0-1 scale kept everything; boolGate said 'dims is empty'."""
    with pytest.raises(TemplateError, match=message):
        template_from_opencyto(write_csv(tmp_path, row + "\n"))


def test_opencytos_defaults_na_cells_and_unread_columns(tmp_path):
    """A row without probs took q 0.5 (openCyto's gate_quantile: 0.999) and flowClust.2d K 3 and 0.95
    (openCyto: K 2, quantile 0.9); R's write.csv writes NA in empty cells; collapseDataForGating was
    ignored without a word: it is cytokit's pool."""
    rows = ("Q,+,root,CD3,quantileGate,NA,NA,NA,NA,NA\n"
            'L,+,root,"FSC-A,SSC-A",flowClust.2d,,,,,\n'
            "V,-,root,7AAD,mindensity,,TRUE,4,,\n")
    with pytest.warns(UserWarning, match=r"line 4: groupBy '4' is not imported: the gate is fitted once on"):
        template = template_from_opencyto(write_csv(tmp_path, rows))
    gates = {p.name: p.gate for p in template.populations}
    assert [p.pool for p in template.populations] == [False, False, True]  # collapseDataForGating TRUE
    assert gates["Q"]["q"] == 0.999
    assert (gates["L"]["n_components"], gates["L"]["confidence"]) == (2, 0.9)


def test_a_parent_path_through_a_population_the_rows_do_not_have_is_refused(tmp_path):
    """Only the path's last part was read: /X/B, with no X, was accepted as B."""
    rows = ("B,+,root,CD19,mindensity,,,,,\n"
            "V,-,/B,7AAD,mindensity,,,,,\n"
            "L,+,/X/B,LAG3,mindensity,,,,,\n")
    with pytest.raises(TemplateError, match=r"line 4: parent '/X/B' is not a path of the rows above \(theirs: /B\)"):
        template_from_opencyto(write_csv(tmp_path, rows))
    fine = template_from_opencyto(write_csv(tmp_path, rows.replace("/X/B", "/B/V")))
    assert fine.paths == ["B", "B/V", "B/V/L"]
