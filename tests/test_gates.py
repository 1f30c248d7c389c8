"""Tests for cytokit.gating.gates and .boolean (static) and .fitted, .thresholds, .regions (estimators)."""

from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytokit.errors import ChannelNotFoundError, GateError
from cytokit.gating.boolean import BooleanGate
from cytokit.gating.fitted import FittedGate
from cytokit.gating.mixture import MixtureThresholdGate
from cytokit.gating.gates import (
    EllipseGate,
    Gate,
    PolygonGate,
    QuadrantGate,
    RangeGate,
    RectangleGate,
)
from cytokit.gating.boundary import BoundaryGate, RatioSingletGate
from cytokit.gating.peaks import PeakFootGate, ShoulderGate, ValleyQuadrantGate
from cytokit.gating.regions import ClusterGate, ContourGate, SingletGate
from cytokit.gating.registered import RegisteredGate
from cytokit.gating.thresholds import (
    ControlThresholdGate,
    DensityValleyGate,
    FixedThresholdGate,
    QuantileGate,
    TailGate,
)


# ---- synthetic populations ---------------------------------------------------------------------
def bimodal(n=20_000, seed=0, dim="CD19"):
    rng = np.random.default_rng(seed)
    k = int(0.6 * n)
    return pd.DataFrame({dim: np.concatenate([rng.normal(1.0, 0.3, k), rng.normal(3.5, 0.4, n - k)])})


def unimodal(n=5_000, seed=0, dim="CD19"):
    return pd.DataFrame({dim: np.random.default_rng(seed).normal(0.0, 1.0, n)})


def scatter(seed=0):
    """Lymphocytes (planted, 60 %), monocytes and debris on FSC-A/SSC-A; returns events and truth."""
    rng = np.random.default_rng(seed)
    parts = [
        (rng.multivariate_normal([50_000, 15_000], [[4e7, 5e6], [5e6, 4e6]], 6_000), True),
        (rng.multivariate_normal([90_000, 60_000], [[1e8, 2e7], [2e7, 6e7]], 2_500), False),
        (rng.multivariate_normal([12_000, 8_000], [[2e7, 0], [0, 1.5e7]], 1_500), False),
    ]
    values = np.vstack([p for p, _ in parts])
    truth = np.concatenate([np.full(len(p), t) for p, t in parts])
    return pd.DataFrame(values, columns=["FSC-A", "SSC-A"]), truth


def singlets_and_doublets(seed=0):
    rng = np.random.default_rng(seed)
    height = rng.normal(50_000, 8_000, 9_000)
    area = height * rng.normal(1.1, 0.04, 9_000)
    d_height = rng.normal(60_000, 8_000, 1_000)
    d_area = 2 * d_height * rng.normal(1.1, 0.04, 1_000) * 0.85  # two cells in a row: area ~1.7x height
    events = pd.DataFrame(
        {"FSC-A": np.concatenate([area, d_area]), "FSC-H": np.concatenate([height, d_height])}
    )
    return events, np.concatenate([np.ones(9_000, bool), np.zeros(1_000, bool)])


def f1(predicted, truth):
    tp = np.sum(predicted & truth)
    return 2 * tp / (predicted.sum() + truth.sum())


# ---- static gates ---------------------------------------------------------------------------------
def test_rectangle_bounds_are_min_inclusive_max_exclusive():
    events = pd.DataFrame({"x": [0.0, 1.0, 1.5, 2.0, np.nan]})
    assert RangeGate("x", min=1.0, max=2.0).contains(events).tolist() == [False, True, True, False, False]
    assert RangeGate("x", min=1.0).contains(events).tolist() == [False, True, True, True, False]
    assert RangeGate("x", max=1.0).contains(events).tolist() == [True, False, False, False, False]


finite = st.floats(-1e6, 1e6, allow_nan=False)
bound = st.one_of(st.none(), finite)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, finite), min_size=0, max_size=40),
    st.tuples(bound, bound).filter(lambda b: b != (None, None) and (None in b or b[0] <= b[1])),
    st.tuples(bound, bound).filter(lambda b: b != (None, None) and (None in b or b[0] <= b[1])),
)
def test_rectangle_membership_is_the_boolean_expression(points, xb, yb):
    events = pd.DataFrame(points, columns=["x", "y"], dtype=float)
    gate = RectangleGate({"x": xb, "y": yb})
    x, y = events["x"].to_numpy(), events["y"].to_numpy()
    expected = np.ones(len(events), bool)
    for values, (lo, hi) in ((x, xb), (y, yb)):
        if lo is not None:
            expected &= values >= lo
        if hi is not None:
            expected &= values < hi
    assert gate.contains(events).tolist() == expected.tolist()


STATIC_GATES = [
    RangeGate("x", min=0.0),
    RectangleGate({"x": (-1, 1), "y": (None, 0.5)}),
    PolygonGate(["x", "y"], [[0, 0], [1, 0], [1, 1], [0, 1]]),
    EllipseGate(["x", "y"], [0, 0], [[1, 0.3], [0.3, 2]], 2.0),
    QuadrantGate({"x": 0.0, "y": 0.0}),
]


@pytest.mark.parametrize("gate", STATIC_GATES, ids=lambda g: type(g).__name__)
@settings(max_examples=25, deadline=None)
@given(
    points=st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.floats(allow_nan=True, allow_infinity=True, width=32),
        ),
        max_size=30,
    )
)
def test_mask_has_one_bool_per_event_and_nan_is_outside(gate, points):
    events = pd.DataFrame(points, columns=["x", "y"], dtype=float)
    mask = gate.contains(events)
    assert mask.dtype == bool and mask.shape == (len(events),)
    assert not mask[events[list(gate.dims)].isna().any(axis=1).to_numpy()].any()
    np.testing.assert_array_equal(gate.predict(events), mask)


@pytest.mark.parametrize("gate", STATIC_GATES, ids=lambda g: type(g).__name__)
def test_missing_channel_is_named(gate):
    with pytest.raises(ChannelNotFoundError, match="'y'|'x'"):
        gate.contains(pd.DataFrame({"z": [1.0]}))


def test_polygon_matches_flowkit_including_concave_shapes():
    from flowkit import Dimension
    from flowkit import gates as fk

    vertices = [[0, 0], [4, 0], [4, 4], [2, 1], [0, 4]]  # concave "M"
    rng = np.random.default_rng(3)
    events = pd.DataFrame(rng.uniform(-1, 5, (2_000, 2)), columns=["x", "y"])
    ours = PolygonGate(["x", "y"], vertices).contains(events)
    theirs = fk.PolygonGate("p", [Dimension("x"), Dimension("y")], vertices).apply(events)
    np.testing.assert_array_equal(ours, theirs)
    assert not PolygonGate(["x", "y"], vertices).contains(pd.DataFrame({"x": [2.0], "y": [3.0]}))[0]


def test_ellipse_is_mahalanobis_distance():
    cov = np.array([[62.5, 37.5], [37.5, 62.5]])
    rng = np.random.default_rng(4)
    events = pd.DataFrame(rng.normal(13, 10, (3_000, 2)), columns=["a", "b"])
    centred = events.to_numpy() - [13, 16]
    d2 = np.einsum("ij,jk,ik->i", centred, np.linalg.inv(cov), centred)
    np.testing.assert_array_equal(EllipseGate(["a", "b"], [13, 16], cov, 1.0).contains(events), d2 <= 1.0)


@pytest.mark.parametrize("dims", [2, 3])
def test_ellipse_membership_equals_flowutils(dims):
    """cytokit adds the squared distance's terms column by column; the memberships are
    flowutils' (the same arithmetic), NaN and ±inf events outside."""
    from flowutils.gating import points_in_ellipsoid

    rng = np.random.default_rng(dims)
    points = rng.normal(0, 2, (50_000, dims))
    points[::97, 0], points[::89, -1] = np.nan, np.inf
    root = rng.normal(size=(dims, dims))
    cov, mean = root @ root.T + dims * np.eye(dims), rng.normal(size=dims)
    names = [f"c{i}" for i in range(dims)]
    with np.errstate(invalid="ignore"):
        theirs = points_in_ellipsoid(cov, mean, 3.0, points)
    ours = EllipseGate(names, mean, cov, 3.0).contains(pd.DataFrame(points, columns=names))
    np.testing.assert_array_equal(ours, theirs)
    assert 0 < ours.sum() < len(ours) and not ours[::97].any()


def test_finite_rows_equals_all_isfinite():
    from cytokit.gating.gates import finite_rows

    values = np.random.default_rng(0).normal(size=(1_000, 3))
    values[5, 1], values[7, 2], values[9, 0] = np.nan, np.inf, -np.inf
    np.testing.assert_array_equal(finite_rows(values), np.isfinite(values).all(axis=1))
    assert finite_rows(values).sum() == 997 and finite_rows(np.zeros((4, 0))).all()


def test_quadrants_partition_the_plane():
    rng = np.random.default_rng(5)
    events = pd.DataFrame(rng.normal(0, 1, (1_000, 2)), columns=["CD19", "LAG3"])
    gate = QuadrantGate({"CD19": 0.2, "LAG3": -0.1})
    masks = gate.split(events)
    assert set(masks) == {"CD19- LAG3-", "CD19- LAG3+", "CD19+ LAG3-", "CD19+ LAG3+"}
    np.testing.assert_array_equal(np.sum(list(masks.values()), axis=0), np.ones(1_000))
    np.testing.assert_array_equal(masks["CD19+ LAG3-"], (events.CD19 >= 0.2) & (events.LAG3 < -0.1))
    assert gate.quadrant_gates()["CD19+ LAG3-"] == RectangleGate({"CD19": (0.2, None), "LAG3": (None, -0.1)})
    assert gate.contains(events).all()


def test_quadrants_with_named_ranges_and_several_dividers():
    gate = QuadrantGate(
        {"FSC": [28.0, 70.0], "FL1": 6.4},
        {"mid-neg": {"FSC": (28.0, 70.0), "FL1": (None, 6.4)}, "low": {"FSC": (None, 28.0)}},
    )
    events = pd.DataFrame({"FSC": [10.0, 50.0, 50.0], "FL1": [100.0, 1.0, 10.0]})
    assert {k: v.tolist() for k, v in gate.split(events).items()} == {
        "mid-neg": [False, True, False],
        "low": [True, False, False],
    }
    with pytest.raises(ValueError, match="several values"):
        QuadrantGate({"FSC": [1.0, 2.0]})


def test_boolean_gates():
    pops = pd.DataFrame({"A": [True, True, False, False], "B": [True, False, True, False]})
    assert BooleanGate("and", ["A", "B"]).contains(pops).tolist() == [True, False, False, False]
    assert BooleanGate("or", ["A", "B"]).contains(pops).tolist() == [True, True, True, False]
    assert BooleanGate("not", ["A"]).contains(pops).tolist() == [False, False, True, True]
    assert BooleanGate("and", ["A", "B"], complement=["B"]).contains(pops).tolist() == [
        False,
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError):
        BooleanGate("not", ["A", "B"])
    with pytest.raises(ChannelNotFoundError, match="population"):
        BooleanGate("and", ["A", "C"]).contains(pops)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RectangleGate({}),
        lambda: RangeGate("x"),
        lambda: RangeGate("x", min=2, max=1),
        lambda: PolygonGate(["x", "y"], [[0, 0], [1, 1]]),
        lambda: PolygonGate(["x"], [[0, 0], [1, 1], [1, 0]]),
        lambda: EllipseGate(["x", "y"], [0, 0], [[1, 1], [1, 1]]),
        lambda: EllipseGate(["x", "y"], [0], [[1, 0], [0, 1]]),
        lambda: BooleanGate("xor", ["A"]),
    ],
)
def test_invalid_static_gates_are_rejected(make):
    with pytest.raises(ValueError):
        make()


def test_static_gates_compare_by_value():
    assert RangeGate("x", min=1) == RangeGate("x", min=1.0)
    assert RangeGate("x", min=1) != RangeGate("x", max=1)
    assert all(isinstance(g, Gate) for g in STATIC_GATES)


# ---- the estimator contract, once for every fitted gate ---------------------------------------------
FITTED = {
    "DensityValleyGate": (lambda: DensityValleyGate("CD19", search_range=(0, 5)), bimodal),
    "QuantileGate": (lambda: QuantileGate("CD19", q=0.9, side="below"), unimodal),
    "FixedThresholdGate": (lambda: FixedThresholdGate("CD19", at=2.5), bimodal),
    "TailGate": (lambda: TailGate("CD19", fraction=0.02), unimodal),
    "MixtureThresholdGate": (lambda: MixtureThresholdGate("CD19", n_components=2), bimodal),
    "ControlThresholdGate": (lambda: ControlThresholdGate("CD19", quantile=0.98), unimodal),
    "ClusterGate": (
        lambda: ClusterGate(["FSC-A", "SSC-A"], n_components=3, confidence=0.9),
        lambda: scatter()[0],
    ),
    "SingletGate": (lambda: SingletGate("FSC-A", "FSC-H", k=2.5), lambda: singlets_and_doublets()[0]),
    "ContourGate": (lambda: ContourGate(["FSC-A", "SSC-A"], level=0.05), lambda: scatter()[0]),
    "RatioSingletGate": (lambda: RatioSingletGate("FSC-A", "FSC-H", k_low=3, k_high=4),
                         lambda: singlets_and_doublets()[0]),
    "BoundaryGate": (lambda: BoundaryGate(["FSC-A", "SSC-A"], lower=True), lambda: scatter()[0]),
    "PeakFootGate": (lambda: PeakFootGate("CD19", side="below", k=3), bimodal),
    "ShoulderGate": (lambda: ShoulderGate("CD19", tol=0.1), bimodal),
    "ValleyQuadrantGate": (lambda: ValleyQuadrantGate(["CD19", "CD20"], quadrant="+-"),
                           lambda: pd.concat([bimodal(), bimodal(seed=1, dim="CD20")], axis=1)),
    "RegisteredGate": (lambda: RegisteredGate(["CD19"], limits=[2.2, None], grid=[[-1, 6]],
                                              inside=[np.histogram(bimodal(seed=2)["CD19"], 32, (-1, 6))[0].tolist()],
                                              outside=[[1] * 32]),
                       bimodal),
}


def _concrete_subclasses(cls):
    for sub in cls.__subclasses__():
        if not sub.__name__.startswith("_"):
            yield sub
        yield from _concrete_subclasses(sub)


def test_every_fitted_gate_is_covered():
    assert {cls.__name__ for cls in _concrete_subclasses(FittedGate)} == set(FITTED)


@pytest.fixture(params=sorted(FITTED))
def fitted_case(request):
    make_gate, make_events = FITTED[request.param]
    return make_gate, make_events()


def test_params_live_only_in_init(fitted_case):
    make_gate, _ = fitted_case
    gate = make_gate()
    names = [p for p in inspect.signature(type(gate).__init__).parameters if p != "self"]
    params = gate.get_params()
    assert list(params) == names
    assert not [k for k in vars(gate) if k.endswith("_") and not k.startswith("_")]
    assert gate.set_params(**params) is gate and gate.get_params() == params
    with pytest.raises(ValueError, match="no parameter"):
        gate.set_params(nonsense=1)


def test_fit_returns_self_and_learns_only_underscore_attributes(fitted_case):
    make_gate, events = fitted_case
    gate = make_gate()
    before, params = set(vars(gate)), dict(gate.get_params())
    assert gate.fit(events) is gate
    assert gate.failed_ is None and gate.n_fit_events_ == len(events)
    learned = set(vars(gate)) - before
    assert learned and all(name.endswith("_") for name in learned)
    assert {k: v for k, v in gate.get_params().items()} == params


def test_unfitted_use_raises_a_clear_error(fitted_case):
    make_gate, events = fitted_case
    for use in (lambda g: g.contains(events), lambda g: g.to_static()):
        with pytest.raises(GateError, match="not fitted.*fit"):
            use(make_gate())


def test_to_static_gives_the_same_membership(fitted_case):
    make_gate, events = fitted_case
    gate = make_gate().fit(events)
    static = gate.to_static()
    assert isinstance(static, Gate) and static.dims == gate.dims
    mask = gate.contains(events)
    np.testing.assert_array_equal(static.contains(events), mask)
    assert 0 < mask.sum() < len(events)


def test_too_few_events_fail_softly_or_strictly(fitted_case):
    make_gate, events = fitted_case
    gate = make_gate().fit(events.iloc[:3])
    assert "too few events" in gate.failed_
    mask = gate.contains(events)
    assert mask.dtype == bool and mask.shape == (len(events),) and not mask.any()
    with pytest.raises(GateError, match="fitting failed"):
        gate.to_static()
    strict = make_gate().set_params(strict=True)
    with pytest.raises(GateError, match="too few events"):
        strict.fit(events.iloc[:3])


def test_refit_clears_an_earlier_failure(fitted_case):
    make_gate, events = fitted_case
    gate = make_gate().fit(events.iloc[:3]).fit(events)
    assert gate.failed_ is None and gate.contains(events).any()


def test_missing_channel_raises_even_when_not_strict(fitted_case):
    make_gate, _ = fitted_case
    with pytest.raises(ChannelNotFoundError):
        make_gate().fit(pd.DataFrame({"other": np.arange(100.0)}))


# ---- what each fitted gate finds ----------------------------------------------------------------------
def true_valley():
    from scipy.stats import norm

    grid = np.linspace(1.0, 3.5, 25_001)
    density = 0.6 * norm.pdf(grid, 1.0, 0.3) + 0.4 * norm.pdf(grid, 3.5, 0.4)
    return grid[np.argmin(density)]


def test_density_valley_finds_the_valley_of_a_bimodal_mixture():
    gate = DensityValleyGate("CD19").fit(bimodal())
    assert gate.threshold_ == pytest.approx(true_valley(), abs=0.15)
    assert gate.peaks_[0] == pytest.approx(1.0, abs=0.15) and gate.peaks_[1] == pytest.approx(3.5, abs=0.15)
    assert isinstance(gate.to_static(), RangeGate) and gate.to_static().min == gate.threshold_


def test_density_valley_side_below_keeps_the_low_population():
    gate = DensityValleyGate("CD19", side="below").fit(bimodal())
    assert gate.to_static().max == gate.threshold_
    assert gate.contains(bimodal()).mean() == pytest.approx(0.6, abs=0.02)


def test_density_valley_search_range_picks_the_valley_inside_it():
    rng = np.random.default_rng(2)
    events = pd.DataFrame(
        {
            "CD19": np.concatenate(
                [rng.normal(0, 0.3, 8_000), rng.normal(3, 0.3, 4_000), rng.normal(6, 0.3, 8_000)]
            )
        }
    )
    assert DensityValleyGate("CD19").fit(events).threshold_ == pytest.approx(3, abs=1.6)
    assert DensityValleyGate("CD19", search_range=(3.5, None)).fit(events).threshold_ == pytest.approx(
        4.5, abs=0.3
    )
    assert DensityValleyGate("CD19", search_range=(None, 2.5)).fit(events).threshold_ == pytest.approx(
        1.5, abs=0.3
    )


@pytest.mark.parametrize("gap", [0.07, 0.1])
def test_a_dip_inside_the_main_peak_does_not_beat_the_real_valley(gap):
    """Live cells as two barely parted halves (a dip of 2-27 %) and a small dead-cell peak: the cut
    belongs between live and dead, not inside the live peak (as simulated calibur 7AAD gave)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0.25, 0.035, 45_000), rng.normal(0.25 + gap, 0.035, 45_000),
                        rng.normal(0.7, 0.05, 3_000)])
    gate = DensityValleyGate("7AAD", side="below", min_peak_height=0.01).fit(pd.DataFrame({"7AAD": x}))
    assert 0.45 < gate.threshold_ < 0.6 and gate.valley_depth_ > 0.95 and gate.warning_ is None
    assert gate.contains(pd.DataFrame({"7AAD": x})).mean() == pytest.approx(90 / 93, abs=0.005)


def test_a_gap_before_a_few_saturated_events_does_not_beat_the_real_valley():
    """Two overlapping populations (a valley 45 % deep) and 1 % of events piled at the top of the scale."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0.30, 0.06, 6000), rng.normal(0.52, 0.06, 3900), np.full(100, 0.95)]
    gate = DensityValleyGate("CD19").fit(pd.DataFrame({"CD19": x}))
    assert 0.38 < gate.threshold_ < 0.46 and gate.peaks_[1] < 0.6
    assert gate.contains(pd.DataFrame({"CD19": x})).mean() == pytest.approx(0.4, abs=0.04)


def test_density_valley_depth_and_a_warning_for_a_shallow_valley():
    deep = DensityValleyGate("CD19").fit(bimodal())
    assert deep.valley_depth_ > 0.9 and deep.warning_ is None
    # A broad peak with an overlapping shoulder: a valley, but barely one.
    rng = np.random.default_rng(5)
    events = pd.DataFrame({"CD19": np.concatenate([rng.normal(0, 1, 20_000), rng.normal(2.5, 0.5, 6_000)])})
    shallow = DensityValleyGate("CD19", min_peak_height=0.01).fit(events)
    assert shallow.failed_ is None and 0 < shallow.valley_depth_ < 0.5
    assert shallow.warning_.startswith("weak separation in CD19: the valley at")
    assert shallow.contains(events).any()  # kept: a warning, not a failure
    assert DensityValleyGate("CD19", min_peak_height=0.01, min_valley_depth=0.0).fit(events).warning_ is None
    # with a fallback, a valley that shallow is not trusted: the fallback cuts (FlowAtlas non-B
    # learned from two tissues with B cells, in a lung without: a 2 % dip inside the negative peak)
    fallback = DensityValleyGate("CD19", min_peak_height=0.01, fallback={"type": "threshold", "at": 4.0}).fit(events)
    assert fallback.failed_ is None and fallback.threshold_ == 4.0 and fallback.valley_depth_ == 0.0
    assert fallback.warning_.startswith("only a weak valley in CD19") and "fallback threshold cut at 4" in fallback.warning_
    assert DensityValleyGate("CD19", fallback={"type": "threshold", "at": 4.0}).fit(bimodal()).warning_ is None
    # ... and where the fallback cannot cut either, the weak valley stays, with its warning
    kept = DensityValleyGate("CD19", min_peak_height=0.01,
                             fallback={"type": "quantile", "q": 0.5, "min_events": 10**6}).fit(events)
    assert kept.failed_ is None and kept.threshold_ == shallow.threshold_
    assert kept.warning_.startswith("weak separation in CD19")


def test_density_valley_fails_softly_on_unimodal_data():
    gate = DensityValleyGate("CD19", search_range=(-2, 2)).fit(unimodal())
    assert gate.failed_.startswith("no density valley found in CD19 in [-2, 2]")
    assert not gate.contains(unimodal()).any()
    with pytest.raises(GateError, match="no density valley"):
        DensityValleyGate("CD19", strict=True).fit(unimodal())


def test_density_valley_on_a_million_events():
    """(Its speed is benchmarks/bench_batch.py's to measure, not a unit test's.)"""
    events = bimodal(n=1_000_000, seed=9)
    gate = DensityValleyGate("CD19").fit(events)
    assert gate.threshold_ == pytest.approx(true_valley(), abs=0.1)


def test_no_valley_names_the_smaller_peak_min_peak_height_left_out():
    """A CyTOF file's cisplatin+ cells peak at under 1 % of the zero peak's height: 'no density valley
    found ... 1 density peak(s)' gave no hint that a lower min_peak_height finds them."""
    rng = np.random.default_rng(3)
    events = pd.DataFrame({"CD19": np.r_[rng.normal(0, 0.05, 90_000), rng.normal(2, 0.6, 10_000)]})
    gate = DensityValleyGate("CD19").fit(events)
    found = re.search(r"\(one more at ([0-9.]+), ([0-9.e-]+) of the highest's height and [0-9.e-]+ of it in "
                      r"prominence, is not counted: min_peak_height 0.05 applies to both\)", gate.failed_)
    assert found and float(found[1]) == pytest.approx(2, abs=0.3) and float(found[2]) < 0.05
    lower = DensityValleyGate("CD19", min_peak_height=float(found[2]) / 2).fit(events)
    assert lower.failed_ is None and 0.1 < lower.threshold_ < 1.5
    assert "one more" not in DensityValleyGate("CD19", search_range=(-2, 2)).fit(unimodal()).failed_


def test_tail_gate_sits_on_the_shoulder_of_the_main_peak():
    events = unimodal(n=50_000)
    above = TailGate("CD19", fraction=0.01).fit(events)
    below = TailGate("CD19", side="below", fraction=0.01).fit(events)
    assert above.threshold_ == pytest.approx(3.03, abs=0.25)  # N(0, 1) falls to 1 % of its peak at 3.03 SD
    assert below.threshold_ == pytest.approx(-3.03, abs=0.25)
    assert above.peak_ == pytest.approx(0.0, abs=0.2)  # the mode of a KDE is a noisy estimate


def test_quantile_and_control_threshold_gates():
    control = unimodal(n=20_000)
    gate = ControlThresholdGate("CD19").fit(control)
    assert gate.threshold_ == pytest.approx(2.326, abs=0.06)
    assert gate.contains(control).mean() == pytest.approx(0.01, abs=0.002)
    rng = np.random.default_rng(8)
    stained = pd.DataFrame({"CD19": np.concatenate([rng.normal(0, 1, 7_000), rng.normal(5, 1, 3_000)])})
    assert gate.contains(stained).mean() == pytest.approx(0.3 + 0.007, abs=0.02)
    q = QuantileGate("CD19", q=0.25, side="below").fit(control)
    assert q.contains(control).mean() == pytest.approx(0.25, abs=0.001)


def test_cluster_gate_recovers_the_planted_lymphocytes():
    events, truth = scatter()
    gate = ClusterGate(["FSC-A", "SSC-A"], n_components=3, select="largest", confidence=0.99).fit(events)
    assert f1(gate.contains(events), truth) > 0.95
    assert gate.mean_ == pytest.approx([50_000, 15_000], rel=0.05)
    assert isinstance(gate.to_static(), EllipseGate)
    assert gate.distance_square_ == pytest.approx(9.21, abs=0.01)  # chi2(0.99, df=2)


@pytest.mark.parametrize(
    "rule",
    [dict(select="nearest", location=(45_000, 20_000)), dict(select="lowest", by="SSC-A", n_components=2)],
)
def test_cluster_gate_selection_rules(rule):
    events, truth = scatter()
    events, truth = (
        events[~((events["FSC-A"] < 25_000) & ~truth)],
        truth[~((events["FSC-A"] < 25_000) & ~truth)],
    )
    params = dict(n_components=3, confidence=0.99) | rule
    gate = ClusterGate(["FSC-A", "SSC-A"], **params).fit(events)
    assert f1(gate.contains(events), truth) > 0.9


def test_cluster_gate_subsamples_reproducibly():
    events, _ = scatter()
    a = ClusterGate(["FSC-A", "SSC-A"], max_fit_events=2_000).fit(events)
    b = ClusterGate(["FSC-A", "SSC-A"], max_fit_events=2_000).fit(events)
    np.testing.assert_array_equal(a.mean_, b.mean_)


@pytest.mark.parametrize("dims, k, seed", [(2, 3, 0), (3, 2, 1), (2, 4, 7)])
def test_cluster_gate_mixture_is_scikit_learns(dims, k, seed):
    """cytokit's EM (gating/_mixture.py) is scikit-learn's GaussianMixture(full) without its overhead."""
    from sklearn.mixture import GaussianMixture

    from cytokit.gating._mixture import fit_mixture

    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(i * 2.0, 0.5 + 0.2 * i, (1500 + 500 * i, dims)) for i in range(k)])
    reference = GaussianMixture(k, covariance_type="full", random_state=seed).fit(x)
    weights, means, covariances, note = fit_mixture(x, k, seed)
    assert note is None
    np.testing.assert_allclose(weights, reference.weights_, atol=1e-9)
    np.testing.assert_allclose(means, reference.means_, atol=1e-9)
    np.testing.assert_allclose(covariances, reference.covariances_, atol=1e-9)


def test_cluster_gate_on_identical_events_keeps_them():
    """reg_covar keeps every covariance positive definite: identical events fit, and all are inside."""
    events = pd.DataFrame({"FSC-A": np.full(500, 3.0), "SSC-A": np.full(500, 4.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # k-means's own warning is the gate's, not the console's
        gate = ClusterGate(["FSC-A", "SSC-A"], n_components=3).fit(events)
    assert gate.failed_ is None
    assert gate.contains(events).all()
    assert gate.warning_ == ("the events hold fewer distinct points than 3 mixture components: Number of "
                             "distinct clusters (1) found smaller than n_clusters (3)")


def test_singlet_gate_removes_planted_doublets():
    events, singlet = singlets_and_doublets()
    gate = SingletGate("FSC-A", "FSC-H").fit(events)
    kept = gate.contains(events)
    assert kept[singlet].mean() > 0.97
    assert kept[~singlet].mean() < 0.05
    assert isinstance(gate.to_static(), PolygonGate) and gate.vertices_.shape == (3, 2)
    assert gate.ratio_ == pytest.approx(1 / 1.1, rel=0.02)
    assert gate.warning_ is None


def test_a_singlet_band_wide_enough_to_keep_doublets_is_doubtful():
    """A MACSQuant's FSC-A with a baseline offset: height/area spread 0.58 around 1.11, the band's
    lower edge below 0, every doublet kept, unflagged."""
    rng = np.random.default_rng(4)
    height = rng.uniform(1_000, 50_000, 5_000)
    area = height + rng.uniform(-20_000, 20_000, 5_000).clip(-0.8 * height)  # an offset that blurs the ratio
    gate = SingletGate("FSC-A", "FSC-H").fit(pd.DataFrame({"FSC-A": area, "FSC-H": height}))
    assert gate.ratio_ - 3 * gate.ratio_sd_ <= gate.ratio_ / 2
    assert gate.warning_.startswith("FSC-H/FSC-A ratio spreads so widely (median ") and "keeps doublets" in gate.warning_


def test_a_singlet_gate_keeping_few_events_is_doubtful():
    """A dead area channel (a Cytek's FSCA: 98 % zeros) left the 2 % with an area as 'singlets', unflagged."""
    events, _ = singlets_and_doublets()
    dead = events.assign(**{"FSC-A": np.where(np.arange(len(events)) % 50 == 0, events["FSC-A"], 0.0)})
    gate = SingletGate("FSC-A", "FSC-H").fit(dead)
    assert gate.contains(dead).mean() < 0.05
    assert gate.warning_.startswith("keeps 2% of the events it was fitted on (98% with FSC-A <= 0)")


def banana(seed=0):
    """A U-shaped cloud of cells (an ellipse around it takes its empty middle) beside debris; events and truth."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, 8_000)
    cells = np.column_stack([40_000 + 60_000 * t, 10_000 + 60_000 * (2 * t - 1) ** 2]) + rng.normal(0, 3_000, (8_000, 2))
    debris = rng.normal([8_000, 30_000], [2_500, 4_000], (2_000, 2))
    hollow = rng.normal([70_000, 45_000], [4_000, 4_000], (300, 2))  # a few other events in the U's middle
    values = np.vstack([cells, debris, hollow])
    return pd.DataFrame(values, columns=["FSC-A", "SSC-A"]), np.r_[np.ones(8_000, bool), np.zeros(2_300, bool)]


def test_contour_gate_follows_a_bent_cloud_where_an_ellipse_cannot():
    events, truth = banana()
    contour = ContourGate(["FSC-A", "SSC-A"], level=0.02).fit(events)
    ellipse = ClusterGate(["FSC-A", "SSC-A"], n_components=2, confidence=0.99).fit(events)
    assert f1(contour.contains(events), truth) > 0.97
    assert f1(contour.contains(events), truth) > f1(ellipse.contains(events), truth) + 0.02
    static = contour.to_static()
    assert isinstance(static, PolygonGate) and 8 <= len(contour.vertices_) <= 257
    assert np.array_equal(static.contains(events), contour.contains(events))
    assert 0.7 < contour.fraction_ < 0.82  # of all fitted events: the cells, not the debris


def test_contour_gate_nearest_takes_the_peak_nearest_the_location():
    events, truth = banana()
    debris = ContourGate(["FSC-A", "SSC-A"], level=0.05, select="nearest", location=(8_000, 30_000)).fit(events)
    inside = debris.contains(events)
    assert inside[~truth].mean() > 0.8 and inside[truth].mean() < 0.01
    with pytest.raises(ValueError, match="location"):
        ContourGate(["FSC-A", "SSC-A"], select="nearest").check_params()
