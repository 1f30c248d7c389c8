"""Templates: validation with file/line/key errors, channel roles, applying, soft failure, skipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytokit import ChannelNotFoundError, Sample, TemplateError, load_template, read_fcs
from cytokit.gating.template import _matches_marker, parse_template

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "gating_templates" / "cll_cd19_7aad.yaml"
BASE = """\
channels:
  x: {pnn: [X]}
  y: {marker: CD19}
populations:
  - name: A
    parent: root
    gate: {type: range, dim: x, min: 0.5}
"""


@pytest.mark.parametrize(
    "text,match",
    [
        (BASE.replace("type: range", "type: blob"), r"line 7, key populations/0/gate/type: 'blob' is not allowed"),
        (BASE.replace("parent: root", "parent: B"), r"line 5, population 'A': parent 'B' is not defined"),
        (BASE.replace("dim: x", "dim: z"), r"gate uses role 'z', not defined"),
        (BASE + "colour: red\n", r"key \(top level\).*colour"),
        (BASE.replace("min: 0.5", "lo: 0.5"), r"line 5.*unexpected keyword argument 'lo'"),
        ("channels: [\n", r"not valid YAML"),
        (BASE + "markers:\n  - {name: M, channel: q, population: A}\n", r"line 9, marker 'M': channel role 'q'"),
    ],
)
def test_invalid_templates_name_line_and_key(text, match):
    with pytest.raises(TemplateError, match=match):
        parse_template(text, source="t.yaml")


def test_missing_template_file():
    with pytest.raises(TemplateError, match="cannot read template"):
        load_template(REPO / "nope.yaml")


@pytest.mark.parametrize("pns", ["CD19", "cd19", "CD19 FITC", "CD19-FITC", "CD19_PE-Cy7", "CD19 (FITC)"])
def test_marker_names_match_with_fluorochrome_suffixes(pns):
    assert _matches_marker(pns, "CD19")


@pytest.mark.parametrize("pns", ["CD194", "CD1", "IgG1 PE", "", "CD20 FITC"])
def test_other_markers_do_not_match(pns):
    assert not _matches_marker(pns, "CD19")


def test_tnf_alpha_spellings():
    assert _matches_marker("TNF-α APC", "TNFa") and _matches_marker("TNFa", "TNFa")


def test_missing_role_is_reported_with_the_channels():
    template = parse_template(BASE)
    sample = Sample.from_dataframe(pd.DataFrame({"X": [1.0]}), markers={"X": "CD3"})
    with pytest.raises(ChannelNotFoundError, match=r"role 'y' needs marker 'CD19'.*X \(CD3\)"):
        template.resolve_channels(sample)


def test_soft_failure_gives_empty_population_and_flag():
    text = BASE + """\
  - name: B
    parent: A
    gate: {type: density_valley, dim: y}
"""
    events = pd.DataFrame({"X": np.ones(300), "Y": np.random.default_rng(0).normal(5, 1, 300)})
    sample = Sample.from_dataframe(events, markers={"Y": "CD19"})
    result = parse_template(text).apply(sample)
    counts = result.counts().set_index("population")
    assert counts.loc["A/B", "count"] == 0
    assert "no density valley" in counts.loc["A/B", "flag"]


def test_shipped_template_on_both_layouts_and_singlets_skipped_on_calibur():
    template = load_template(SHIPPED)
    assert template.paths[-1].endswith("CD19+")
    assert [m.name for m in template.markers] == ["LAG3", "TNFa"]
    for layout, skipped in [("calibur", True), ("modern", False)]:
        stained = read_fcs(REPO / "sample_fcs" / layout / "CLL001_C2D1_stained.fcs")
        result = template.apply(stained, is_control=True)
        flag = result.flags.get("Lymphocytes/Singlets", "")
        assert flag.startswith("skipped") == skipped
        assert result.counts()["count"].iloc[-1] > 4000
        fitted = result.fitted()
        assert "threshold_" in fitted["Lymphocytes/Singlets/Viable/CD19+"]


def test_control_threshold_gate_is_fitted_on_the_control():
    text = BASE + """\
  - name: B
    parent: A
    gate: {type: control_threshold, dim: y, quantile: 0.9}
"""
    template = parse_template(text)
    rng = np.random.default_rng(1)
    control = Sample.from_dataframe(pd.DataFrame({"X": np.ones(1000), "Y": rng.normal(0, 1, 1000)}),
                                    markers={"Y": "CD19"})
    stained = Sample.from_dataframe(pd.DataFrame({"X": np.ones(1000), "Y": rng.normal(1, 1, 1000)}),
                                    markers={"Y": "CD19"})
    ctrl = template.apply(control, is_control=True)
    result = template.apply(stained, control=ctrl)
    threshold = result.gates["A/B"].threshold_
    assert threshold == pytest.approx(np.quantile(control.events["Y"], 0.9))
    alone = template.apply(stained)
    assert "needs the matched control" in alone.flags["A/B"]
