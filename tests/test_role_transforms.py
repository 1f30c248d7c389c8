"""A transform per role: two roles on one channel with different transforms each gate on their own scale.

A linear ``ssc`` for a singlet-like cut and a logicle ``ssc_log`` for a cluster, both SSC-A: the second
role reads SSC-A as a dimension of its own (``"SSC-A [ssc_log]"``), in gating, Gating-ML (one
fcs-dimension, two transformation-refs) and the FlowJo export (one transform per parameter: its
gates are left out, with a warning)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cytokit import Sample
from cytokit.gating.template import parse_template
from cytokit.transforms import make_transform

T = 262144.0
TEMPLATE = """\
channels:
  fsc:     {pnn: [FSC-A]}
  ssc:     {pnn: [SSC-A]}
  ssc_log: {pnn: [SSC-A]}
compensation: none
transforms:
  fsc:     {kind: linear, t: 262144}
  ssc:     {kind: linear, t: 262144}
  ssc_log: {kind: logicle, t: 262144, w: 0.5, m: 4.5, a: 0}
populations:
  - name: Bright
    parent: root
    gate: {type: range, dim: ssc_log, min: 0.6}
  - name: Low
    parent: Bright
    gate: {type: range, dim: ssc, max: 0.25}
  - name: Box
    parent: root
    gate: {type: rectangle, bounds: {fsc: [0.2, null], ssc_log: [null, 0.7]}}
  - name: Valley log
    parent: root
    gate: {type: density_valley, dim: ssc_log, side: above}
  - name: Valley linear
    parent: root
    gate: {type: density_valley, dim: ssc, side: above}
"""
LOGICLE = make_transform("logicle", t=T, w=0.5, m=4.5, a=0)


@pytest.fixture(scope="module")
def sample() -> Sample:
    """Two SSC populations a decade apart (1,500 and 15,000): bimodal on either scale."""
    rng = np.random.default_rng(7)
    n = 4000
    high = rng.random(n) < 0.5
    ssc = np.exp(np.where(high, rng.normal(np.log(15_000), 0.15, n), rng.normal(np.log(1_500), 0.15, n)))
    fsc = rng.normal(80_000, 15_000, n)
    return Sample.from_dataframe(pd.DataFrame({"FSC-A": fsc, "SSC-A": ssc}))


@pytest.fixture(scope="module")
def result(sample):
    return parse_template(TEMPLATE, source="roles.yaml").apply(sample)


def test_the_second_role_on_a_channel_gets_a_dimension_of_its_own(result):
    assert result.dims == {"fsc": "FSC-A", "ssc": "SSC-A", "ssc_log": "SSC-A [ssc_log]"}
    assert result.channels["ssc_log"] == "SSC-A" and result.channel_of("SSC-A [ssc_log]") == "SSC-A"
    assert result.transforms["SSC-A"] == make_transform("linear", t=T)
    assert result.transforms["SSC-A [ssc_log]"] == LOGICLE
    assert result.gates["Bright"].dims == ("SSC-A [ssc_log]",)
    assert result.gates["Bright/Low"].dims == ("SSC-A",)
    assert list(result.events.columns) == ["FSC-A", "SSC-A", "SSC-A [ssc_log]"]


def test_membership_is_each_role_on_its_own_scale(result, sample):
    fsc, ssc = sample.events["FSC-A"].to_numpy(), sample.events["SSC-A"].to_numpy()
    bright = LOGICLE.apply(ssc) >= 0.6
    low = bright & (ssc / T <= 0.25)
    box = (fsc / T >= 0.2) & (LOGICLE.apply(ssc) <= 0.7)
    np.testing.assert_array_equal(result.membership["Bright"], bright)
    np.testing.assert_array_equal(result.membership["Bright/Low"], low)
    np.testing.assert_array_equal(result.membership["Box"], box)
    # the cuts are far apart on one scale: 0.25 linear is 65,536, above every event; logicle 0.6 is ~4,250
    assert low.sum() == bright.sum() and 0 < bright.sum() < len(ssc)
    assert 0 < box.sum() < len(ssc)
    np.testing.assert_array_equal(result.transformed("SSC-A [ssc_log]"), LOGICLE.apply(ssc))
    np.testing.assert_array_equal(result.transformed("SSC-A"), ssc / T)


def test_fitted_thresholds_are_on_their_roles_scales(result):
    log_cut = result.gates["Valley log"].threshold_
    linear_cut = result.gates["Valley linear"].threshold_
    # both between the modes (1,500 and 15,000) as data values, each as a number on its own scale
    assert 1_500 < float(LOGICLE.inverse(np.array([log_cut]))[0]) < 15_000
    assert 1_500 < linear_cut * T < 15_000
    assert log_cut > 0.4 and linear_cut < 0.06
    assert result.fitted()["Valley log"]["threshold_"] == log_cut


def test_roles_with_one_transform_share_the_channel_as_before(sample):
    text = TEMPLATE.replace("ssc_log: {kind: logicle, t: 262144, w: 0.5, m: 4.5, a: 0}",
                            "ssc_log: {kind: linear, t: 262144.0, a: 0}")  # another spelling, the same transform
    result = parse_template(text).apply(sample)
    assert result.dims["ssc_log"] == "SSC-A" and result.derived == {}
    assert set(result.transforms) == {"FSC-A", "SSC-A"}
    assert result.gates["Bright"].dims == ("SSC-A",)


def test_a_role_without_a_transform_is_not_put_on_the_other_roles_scale(sample):
    text = TEMPLATE.replace("  ssc:     {kind: linear, t: 262144}\n", "")
    result = parse_template(text).apply(sample)
    assert "SSC-A" not in result.transforms and result.transforms["SSC-A [ssc_log]"] == LOGICLE
    ssc = sample.events["SSC-A"].to_numpy()
    np.testing.assert_array_equal(result.membership["Bright/Low"], (LOGICLE.apply(ssc) >= 0.6) & (ssc <= 0.25))


def test_a_derived_dimension_named_like_a_channel_is_refused():
    from cytokit import TemplateError

    events = pd.DataFrame({"FSC-A": [1.0], "SSC-A": [1.0], "SSC-A [ssc_log]": [1.0]})
    with pytest.raises(TemplateError, match=r"role 'ssc_log' needs a dimension 'SSC-A \[ssc_log\]' of its own"):
        parse_template(TEMPLATE).apply(Sample.from_dataframe(events))


def test_the_gating_figure_labels_each_axis_by_its_role(result):
    pytest.importorskip("matplotlib")
    from cytokit.plots import plot_gates

    fig = plot_gates(result)
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert any(label.startswith("ssc_log [SSC-A") for label in labels)
    assert any(label.startswith("ssc [SSC-A") for label in labels)


# ---- Gating-ML: one fcs-dimension, two transformation-refs -----------------------------------------


def test_gatingml_export_gives_each_gate_its_roles_transform(result, sample, tmp_path):
    pytest.importorskip("flowkit")
    from lxml import etree

    from cytokit.gating.flowjo import template_from_gatingml
    from cytokit.gating.gatingml import read_gatingml, write_gatingml

    path = write_gatingml(result.to_gateset(), tmp_path / "roles.xml")
    gml = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    dt = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
    refs = {}
    for gate in etree.parse(str(path)).getroot():
        for dim in gate.iter(f"{{{gml}}}dimension"):
            name = dim.find(f"{{{dt}}}fcs-dimension").get(f"{{{dt}}}name")
            refs.setdefault(gate.get(f"{{{gml}}}id"), []).append((name, dim.get(f"{{{gml}}}transformation-ref")))
    assert refs["Bright"] == [("SSC-A", LOGICLE.default_id)]
    assert refs["Low"] == [("SSC-A", "linear_262144_0")]
    assert refs["Box"] == [("FSC-A", "linear_262144_0"), ("SSC-A", LOGICLE.default_id)]

    members = read_gatingml(path).evaluate(sample)
    for path_, name in (("Bright", "Bright"), ("Bright/Low", "Low"), ("Box", "Box"), ("Valley log", "Valley_log")):
        np.testing.assert_array_equal(members[name].to_numpy(), result.membership[path_])

    imported = template_from_gatingml(path)  # the second scale of SSC-A: a role of its own
    assert imported.transforms["SSC-A"]["kind"] == "logicle"
    linear_role = next(r for r in imported.roles if r.startswith("SSC-A ("))
    assert imported.transforms[linear_role]["kind"] == "linear"
    again = imported.apply(sample)
    assert set(again.derived) == {f"SSC-A [{linear_role}]"}
    np.testing.assert_array_equal(again.membership["Bright/Low"], result.membership["Bright/Low"])
    np.testing.assert_array_equal(again.membership["Box"], result.membership["Box"])


# ---- FlowJo: one transform per parameter -------------------------------------------------------------


def test_flowjo_export_leaves_out_the_gates_of_the_second_scale(result, tmp_path):
    pytest.importorskip("flowkit")
    from cytokit.fcs import read_fcs, write_fcs
    from cytokit.flowjo_export import to_flowjo
    from tests.test_flowjo_export import flowkit_counts

    folder = tmp_path / "fcs"
    folder.mkdir()
    fcs = write_fcs(folder / "roles.fcs", result.sample.events.astype(np.float32), keywords={"$FIL": "roles.fcs"})
    template_path = tmp_path / "roles.yaml"
    template_path.write_text(TEMPLATE)
    gated = parse_template(TEMPLATE, source=str(template_path)).apply(read_fcs(fcs))
    results = SimpleNamespace(samples=pd.DataFrame({"file": ["roles.fcs"], "status": ["ok"]}),
                              paths={"roles.fcs": str(fcs)}, fitted={"roles.fcs": gated.fitted()},
                              gating={"roles.fcs": gated.summary()}, template_path=str(template_path))
    with pytest.warns(UserWarning, match=r"left out .*Bright \(it reads SSC-A on a transform of its own "
                                         r"\(SSC-A \[ssc_log\]\), and FlowJo has one transform per parameter"):
        wsp = to_flowjo(results, tmp_path / "gates.wsp")
    got = flowkit_counts(wsp, folder)
    counts = {("roles.fcs", r.population): int(r.count) for r in gated.counts().itertuples()}
    kept = {"Valley linear"}  # Bright (and Low below it), Box and Valley log read ssc_log
    assert got == {key: count for key, count in counts.items() if key[1] in kept}
    assert Path(wsp).read_text().count("<transforms:logicle") == 0
