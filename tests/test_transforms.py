"""Tests for cytokit.transforms: thin wrappers over flowutils, matching FlowKit exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytokit.errors import ChannelNotFoundError
from cytokit.transforms import (
    AsinhTransform,
    HyperlogTransform,
    LinearTransform,
    LogicleTransform,
    LogTransform,
    RatioTransform,
    Transform,
    from_flowkit,
    make_transform,
    transform_events,
)

KINDS = ["logicle", "hyperlog", "asinh", "linear", "log"]
VALUES = np.array([-50.0, 0.0, 1.0, 10.0, 250.0, 9_999.0, 10_000.0, 50_000.0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_apply_matches_flowkit(kind):
    xform = make_transform(kind, t=10_000)
    ours = xform.apply(VALUES)
    theirs = xform.to_flowkit().apply(VALUES.reshape(-1, 1)).ravel()
    np.testing.assert_allclose(ours, theirs, equal_nan=True)


@pytest.mark.parametrize("kind", KINDS)
def test_inverse_round_trips(kind):
    xform = make_transform(kind, t=10_000)
    values = VALUES[VALUES > 0] if kind == "log" else VALUES
    np.testing.assert_allclose(xform.inverse(xform.apply(values)), values, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_top_of_scale_maps_to_one(kind):
    assert make_transform(kind, t=10_000).apply(np.array([10_000.0]))[0] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_shape_is_preserved_and_input_untouched(kind):
    values = np.abs(np.arange(12, dtype=float).reshape(3, 4)) + 1
    before = values.copy()
    out = make_transform(kind).apply(values)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(values, before)


@pytest.mark.parametrize("kind", KINDS)
def test_from_flowkit_inverts_to_flowkit(kind):
    xform = make_transform(kind, t=10_000, a=0) if kind == "linear" else make_transform(kind, t=10_000, m=4)
    assert from_flowkit(xform.to_flowkit()) == xform


def test_defaults_are_the_usual_logicle():
    assert LogicleTransform().params == {"t": 262144.0, "w": 0.5, "m": 4.5, "a": 0.0}
    assert LogicleTransform(t=10_000).default_id == "logicle_10000_0.5_4.5_0"


def test_make_transform_accepts_gating_ml_capitals():
    assert make_transform("AsinH", T=10_000, M=4, A=1) == AsinhTransform(10_000, 4, 1)


def test_make_transform_rejects_unknown_kind_and_parameter():
    with pytest.raises(ValueError, match="unknown transform"):
        make_transform("biexp")
    with pytest.raises(ValueError, match="parameters"):
        make_transform("linear", w=1)


def test_linear_is_gating_ml_flin():
    np.testing.assert_allclose(LinearTransform(t=1000, a=100).apply([-100.0, 1000.0]), [0.0, 1.0])


def test_log_is_gating_ml_flog():
    np.testing.assert_allclose(LogTransform(t=10_000, m=4).apply([1.0, 100.0, 10_000.0]), [0.0, 0.5, 1.0])


def test_all_kinds_are_transforms_and_hashable():
    xforms = {make_transform(k) for k in KINDS} | {HyperlogTransform()}
    assert len(xforms) == len(KINDS)
    assert all(isinstance(x, Transform) for x in xforms)


def test_ratio_transform_is_gating_ml_fratio():
    events = pd.DataFrame({"FL2-H": [10.0, 4.0], "FL2-A": [4.0, 1.0]})
    ratio = RatioTransform("FL2-H", "FL2-A", a=2, b=1, c=-1)
    np.testing.assert_allclose(ratio.apply(events), [2 * 9 / 5, 2 * 3 / 2])
    fk_events = ratio.to_flowkit()
    assert from_flowkit(fk_events) == ratio


def test_ratio_transform_names_missing_channel():
    with pytest.raises(ChannelNotFoundError, match="FL2-A"):
        RatioTransform("FL2-H", "FL2-A").apply(pd.DataFrame({"FL2-H": [1.0]}))


def test_transform_events_touches_only_named_channels():
    events = pd.DataFrame({"FSC-A": [1.0, 2.0], "FL1-A": [10.0, 10_000.0]})
    out = transform_events(events, {"FL1-A": make_transform("logicle", t=10_000)})
    assert list(out.columns) == ["FSC-A", "FL1-A"]
    pd.testing.assert_series_equal(out["FSC-A"], events["FSC-A"])
    assert out["FL1-A"].iloc[1] == pytest.approx(1.0)
    assert events["FL1-A"].iloc[1] == 10_000.0
    with pytest.raises(ChannelNotFoundError, match="CD19"):
        transform_events(events, {"CD19": make_transform("linear")})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 2.6e5, allow_nan=False), min_size=2, max_size=30))
def test_logicle_is_monotonic(values):
    values = np.sort(np.array(values))
    out = LogicleTransform().apply(values)
    assert np.all(np.diff(out) >= -1e-12)


LOGICLE_PARAMS = [
    (262144, 0.5, 4.5, 0), (10_000, 0.5, 4.5, 0), (262144, 1.0, 4.5, 1.0), (262144, 2.0, 5.0, 0.5),
    (1024, 0.25, 3.0, 0), (262144, 0.1, 4.5, 2.0), (1e6, 1.5, 6.0, 0), (262144, 0.0, 4.5, 0),
]


@pytest.mark.parametrize("t, w, m, a", LOGICLE_PARAMS)
def test_vectorised_logicle_equals_flowutils(t, w, m, a):
    # cytokit._logicle runs flowutils' algorithm on whole arrays: it must give flowutils' values.
    from flowutils import transforms as fu

    rng = np.random.default_rng(1)
    values = np.concatenate([
        rng.lognormal(6, 2, 20_000), rng.normal(0, 200, 5_000), rng.uniform(-50, 50, 2_000),
        [0.0, 5e-324, -5e-324, -1e-5, 1e-9, t, 1e7, -1e5, -1e6, np.nan, np.inf, -np.inf],
    ])
    from cytokit._logicle import logicle

    ours = logicle(values, t, w, m, a)  # the algorithm; LogicleTransform also makes NaN and ±inf NaN
    theirs = fu.logicle(values.copy(), None, t=t, w=w, m=m, a=a)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~finite & ~np.isnan(theirs)], theirs[~finite & ~np.isnan(theirs)])
    assert np.max(np.abs(ours[finite] - theirs[finite])) <= 1e-12


# FlowJo's biex, as FlowKit reads it from workspaces (width -100 and the scaled tops are the
# FlowAtlas workspace's; -10 and 4.41854 FlowJo's defaults)
BIEX = [
    {},
    {"width": -100.0, "positive": 4.418539922, "max_value": 262144.0},
    {"width": -50.1187233627, "positive": 3.918539922, "max_value": 82897.211494718},
    {"width": -1000.0, "positive": 5.0, "negative": 1.0},
    {"width": -1.0, "positive": 4.5, "negative": 0.5, "max_value": 10_000.0},
]


@pytest.mark.parametrize("params", BIEX, ids=lambda p: "_".join(f"{k}{v:g}" for k, v in p.items()) or "defaults")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_biex_is_flowkits_wsp_biex(params):
    from flowkit import transforms as fk

    theirs = fk.WSPBiexTransform(**params)
    ours = from_flowkit(theirs)
    assert ours.kind == "biex" and from_flowkit(ours.to_flowkit()) == ours
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(0, 3000, 20_000), rng.lognormal(5, 3, 20_000), -rng.lognormal(4, 2, 2_000),
                             theirs._lut_func.x, ours.inverse(np.arange(4097.0)),
                             [0.0, -1e9, 1e9, ours.t, np.nan, np.inf, -np.inf]])
    np.testing.assert_array_equal(ours.apply(values), theirs.apply(values))  # NaN where FlowKit's is NaN
    channels = np.concatenate([rng.uniform(-10, 4200, 20_000), np.arange(4097.0), [np.nan]])
    np.testing.assert_array_equal(ours.inverse(channels), theirs.inverse(channels))


def test_biex_parameters_defaults_and_shape():
    from cytokit.transforms import BiexTransform

    xform = make_transform("biex", t=262144, width=-100)
    assert xform == BiexTransform(width=-100) and xform.params == {
        "t": 262144.0, "width": -100.0, "positive": 4.41854, "negative": 0.0}
    assert xform.default_id == "biex_262144_-100_4.41854_0"
    values = np.array([[-100.0, 0.0], [1e3, 262144.0]])
    out = xform.apply(values)
    assert out.shape == (2, 2) and 4090 < out[1, 1] <= 4096 and np.all(np.diff(out.ravel()) > 0)
    np.testing.assert_allclose(xform.inverse(out), values, rtol=1e-3, atol=2.0)  # a 4097-point table
    for bad in ({"width": 10}, {"positive": 0}, {"negative": -1}, {"t": float("nan")}):
        with pytest.raises(ValueError, match="FlowJo's biex needs"):
            make_transform("biex", **bad)


def test_template_accepts_a_biex_transform():
    import cytokit
    from cytokit.gating.template import parse_template

    template = parse_template("""
channels:
  x: {pnn: [FL1-H]}
transforms:
  x: {kind: biex, t: auto, width: -100}
populations:
  - {name: Pos, parent: root, gate: {type: range, dim: x, min: 2000}}
""")
    sample = cytokit.read_fcs(Path(__file__).resolve().parents[1] / "sample_fcs" / "calibur" / "CLL001_C2D1_stained.fcs")
    result = template.apply(sample)
    scale = make_transform("biex", t=10_000, width=-100).apply(sample.events["FL1-H"].to_numpy())
    assert result.counts()["count"].tolist() == [int((scale >= 2000).sum())]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning",
                            "ignore:overflow:RuntimeWarning")
def test_non_finite_values_transform_to_nan_not_the_bottom_of_the_scale(kind):
    # flowutils' logicle gives NaN and ±inf the value -1, the bottom of the scale, where a
    # "negative" gate (Viable: 7AAD below the valley) took exactly those events (issue 16 item 2)
    xform = make_transform(kind, t=262144)
    values = np.array([np.nan, np.inf, -np.inf, 1000.0])
    out = xform.apply(values)
    assert np.isnan(out[:3]).all() and np.isfinite(out[3])
    assert np.isnan(xform.inverse(values)[:3]).all()
    assert np.isnan(make_transform(kind, t=262144).apply(values.reshape(2, 2))[0]).all()  # any shape


def test_flowjos_log_transform_is_cytokits_log():
    """cytokit's own FlowJo export writes its log as FlowJo's (offset, decades); reading it back failed
    ('has no cytokit equivalent'). Equal above the offset, where FlowJo does not clip."""
    from flowkit import transforms as fk

    theirs = fk.WSPLogTransform(offset=2.62144, decades=5.0)
    ours = from_flowkit(theirs)
    x = np.array([2.7, 10.0, 1234.5, 262144.0, 1e6])
    assert ours.kind == "log" and ours.params == {"t": pytest.approx(262144.0), "m": 5.0}
    np.testing.assert_allclose(ours.apply(x), theirs.apply(x), rtol=1e-12)


def test_a_parameter_given_in_two_cases_is_refused():
    """T and t are one parameter: the one given last won, silently (9994 against 7047 events)."""
    with pytest.raises(ValueError, match=r"parameters \['T', 't'\] are one parameter"):
        make_transform("logicle", t=262144, w=0.5, m=4.5, a=0, T=1000)
