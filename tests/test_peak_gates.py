"""What the gates of issue 15's real-data methods find (boundary.py, peaks.py, the valley's
``select="prominence"``, the control threshold's ``smooth`` and the mixture threshold), on
planted populations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytokit.gating.boundary import BoundaryGate, RatioSingletGate
from cytokit.gating.peaks import PeakFootGate, ShoulderGate, ValleyQuadrantGate
from cytokit.gating.regions import SingletGate
from cytokit.gating.mixture import MixtureThresholdGate
from cytokit.gating.thresholds import ControlThresholdGate, DensityValleyGate


def test_boundary_drops_the_saturated_pile_only():
    rng = np.random.default_rng(0)
    fsc = np.r_[rng.uniform(0.05, 0.9, 9_900), np.full(100, 262143 / 262144)]
    ssc = rng.uniform(0.0, 0.8, 10_000)
    events = pd.DataFrame({"FSC-A": fsc, "SSC-A": ssc})
    gate = BoundaryGate(["FSC-A", "SSC-A"]).fit(events)
    kept = gate.contains(events)
    assert not kept[-100:].any() and kept[:9_900].mean() > 0.998
    assert gate.to_static().bounds["FSC-A"][0] is None and 0.0099 < gate.dropped_fraction_ < 0.0115


def test_ratio_singlet_with_k3_and_no_refit_is_the_singlet_gate():
    rng = np.random.default_rng(1)
    height = rng.normal(50_000, 8_000, 5_000)
    events = pd.DataFrame({"FSC-A": height * rng.normal(1.1, 0.05, 5_000), "FSC-H": height})
    ratio = RatioSingletGate("FSC-A", "FSC-H", k_low=3, k_high=3, refit=False).fit(events)
    single = SingletGate("FSC-A", "FSC-H", k=3).fit(events)
    np.testing.assert_array_equal(ratio.contains(events), single.contains(events))


def test_prominence_select_finds_a_small_population_with_a_peak_of_its_own():
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(1.0, 0.3, 9_000), rng.normal(1.9, 0.15, 600), rng.normal(4.0, 0.2, 300)]
    events = pd.DataFrame({"CD19": x})
    gate = DensityValleyGate("CD19", min_peak_height=0.01, select="prominence").fit(events)
    assert 2.5 < gate.threshold_ < 3.7 and gate.peaks_[0] < 1.2  # the valley before the 3 % peak
    assert DensityValleyGate("CD19", select="depth").fit(events).get_params()["select"] == "depth"


def test_peak_foot_cuts_at_the_far_foot_of_the_kept_peak_and_on_the_diagonal():
    rng = np.random.default_rng(3)
    live = rng.normal(0.3, 0.03, 8_000)
    dead = rng.normal(0.7, 0.05, 2_000)
    x = np.r_[live, dead]
    one = PeakFootGate("dye", side="below", k=5).fit(pd.DataFrame({"dye": x}))
    assert 0.42 < one.threshold_ < 0.5 and one.valley_depth_ > 0.9 and one.warning_ is None
    two = pd.DataFrame({"a": x + rng.normal(0, 0.01, len(x)), "b": x + rng.normal(0, 0.01, len(x))})
    gate = PeakFootGate(["a", "b"], side="below", k=5).fit(two)
    mask = gate.contains(two)
    np.testing.assert_array_equal(mask, two.mean(axis=1).to_numpy() < gate.threshold_)
    assert mask[:8_000].mean() > 0.999 and not mask[8_000:].any()


def test_peak_foot_without_a_valley_keeps_the_peak_and_warns():
    x = np.random.default_rng(4).normal(0.3, 0.03, 5_000)
    gate = PeakFootGate("dye", side="below", k=5).fit(pd.DataFrame({"dye": x}))
    assert gate.failed_ is None and "no density valley" in gate.warning_
    assert gate.contains(pd.DataFrame({"dye": x})).mean() > 0.99


def test_shoulder_finds_where_a_small_positive_cloud_begins():
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(1.0, 0.2, 9_500), rng.normal(1.9, 0.25, 500)]  # no valley: a shoulder
    gate = ShoulderGate("Foxp3", tol=0.05).fit(pd.DataFrame({"Foxp3": x}))
    assert 1.4 < gate.threshold_ < 1.9
    below = ShoulderGate("Foxp3", side="below", tol=0.05).fit(pd.DataFrame({"Foxp3": -x}))
    assert below.threshold_ == pytest.approx(-gate.threshold_, abs=0.05)


def test_valley_quadrants_tile_the_parent():
    rng = np.random.default_rng(6)
    n = 8_000
    cd4 = np.where(rng.random(n) < 0.5, rng.normal(3, 0.3, n), rng.normal(1, 0.3, n))
    cd8 = np.where(cd4 < 2, rng.normal(3, 0.3, n), rng.normal(1, 0.3, n))
    events = pd.DataFrame({"CD4": cd4, "CD8": cd8})
    masks = {q: ValleyQuadrantGate(["CD4", "CD8"], quadrant=q).fit(events).contains(events)
             for q in ("++", "+-", "-+", "--")}
    assert (sum(m.astype(int) for m in masks.values()) == 1).all()
    assert masks["+-"].mean() > 0.45 and masks["-+"].mean() > 0.45
    assert ValleyQuadrantGate(["CD4", "CD8"], quadrant="+-").fit(events).to_static().bounds["CD4"][1] is None
    with pytest.raises(ValueError, match="quadrant"):
        ValleyQuadrantGate(["CD4", "CD8"], quadrant="+").check_params()
    # one cut fixed (a `threshold`), the other the valley
    fixed = ValleyQuadrantGate(["CD4", "CD8"], quadrant="+-", thresholds=[{"type": "threshold", "at": 2.5}, None])
    fixed.fit(events)
    assert fixed.thresholds_[0] == 2.5 and 1.5 < fixed.thresholds_[1] < 2.5
    with pytest.raises(ValueError, match=r"thresholds\[0\] \(threshold\): at"):
        ValleyQuadrantGate(["CD4", "CD8"], quadrant="+-", thresholds=[{"type": "threshold", "at": "x"}, None]).check_params()


def test_a_quadrants_density_valley_threshold_is_a_valley_with_its_depth_checked():
    """A learned quadrant writes its valleys as ``density_valley`` thresholds (with fallbacks): they cut
    where the quadrant's own valleys do, report their depth, and a weak one is flagged as the quadrant's are."""
    rng = np.random.default_rng(6)
    n = 8_000
    cd4 = np.where(rng.random(n) < 0.5, rng.normal(3, 0.3, n), rng.normal(1, 0.3, n))
    cd8 = np.where(cd4 < 2, rng.normal(3, 0.3, n), rng.normal(1, 0.3, n))
    events = pd.DataFrame({"CD4": cd4, "CD8": cd8})
    own = ValleyQuadrantGate(["CD4", "CD8"], quadrant="+-").fit(events)
    spec = {"type": "density_valley", "min_peak_height": 0.01, "select": "prominence", "min_valley_depth": 0}
    cut = ValleyQuadrantGate(["CD4", "CD8"], quadrant="+-", thresholds=[spec, spec]).fit(events)
    assert cut.thresholds_ == pytest.approx(own.thresholds_) and cut.valley_depths_ == pytest.approx(own.valley_depths_)
    assert cut.warning_ is None
    strict = ValleyQuadrantGate(["CD4", "CD8"], quadrant="+-", thresholds=[spec, spec], min_valley_depth=0.999).fit(events)
    assert "weak separation in CD4" in strict.warning_


def test_mixture_threshold_is_where_the_top_component_becomes_likelier():
    rng = np.random.default_rng(8)
    x = np.r_[rng.normal(0.0, 0.1, 9_000), rng.normal(0.3, 0.1, 1_000)]  # a flank, no valley
    assert DensityValleyGate("CD11c", min_peak_height=0.01).fit(pd.DataFrame({"CD11c": x})).failed_
    gate = MixtureThresholdGate("CD11c").fit(pd.DataFrame({"CD11c": x}))
    # equal spreads: 0.9 N(0, .1) = 0.1 N(.3, .1) at x = 0.15 + 0.01 ln 9 / 0.3 = 0.223
    assert gate.threshold_ == pytest.approx(0.223, abs=0.01)
    # the components separate (Ashman's D 3) but the cut is on the flank: a 2 % move takes 20 %
    assert gate.sensitivity_ == pytest.approx(0.2, abs=0.03) and "where the events are dense" in gate.warning_
    apart = np.r_[rng.normal(0.0, 0.1, 9_000), rng.normal(1.0, 0.1, 1_000)]  # a valley between them
    clean = MixtureThresholdGate("CD11c").fit(pd.DataFrame({"CD11c": apart}))
    assert clean.sensitivity_ < 0.01 and clean.warning_ is None
    assert MixtureThresholdGate("CD11c", max_sensitivity=0.3).fit(pd.DataFrame({"CD11c": x})).warning_ is None
    assert gate.means_[1] == pytest.approx(0.3, abs=0.02) and gate.weights_[1] == pytest.approx(0.1, abs=0.01)
    later = MixtureThresholdGate("CD11c", posterior=0.9).fit(pd.DataFrame({"CD11c": x}))
    assert later.threshold_ == pytest.approx(0.297, abs=0.01)  # 0.15 + 0.01 ln 81 / 0.3
    below = MixtureThresholdGate("CD11c", side="below").fit(pd.DataFrame({"CD11c": -x}))
    assert below.threshold_ == pytest.approx(-gate.threshold_, abs=0.005)
    weak = MixtureThresholdGate("CD11c", min_separation=4).fit(pd.DataFrame({"CD11c": x}))
    assert "Ashman's D" in weak.warning_ and weak.separation_ == pytest.approx(3.0, abs=0.2)
    three = np.r_[x, rng.normal(0.9, 0.1, 1_000)]  # a third, brighter cloud
    top = MixtureThresholdGate("CD11c", n_components=3).fit(pd.DataFrame({"CD11c": three}))
    bottom = MixtureThresholdGate("CD11c", n_components=3, split="bottom").fit(pd.DataFrame({"CD11c": three}))
    assert 0.5 < top.threshold_ < 0.7 and 0.15 < bottom.threshold_ < 0.3  # before the top, after the bottom
    outlier = MixtureThresholdGate("CD11c").fit(pd.DataFrame({"CD11c": np.r_[x, 1e6]}))
    assert outlier.threshold_ == pytest.approx(gate.threshold_, abs=0.01)  # the bins are not stretched
    assert "nothing to separate" in MixtureThresholdGate("a").fit(pd.DataFrame({"a": np.ones(99)})).failed_


def test_quadrant_takes_another_cut_for_one_dimension():
    rng = np.random.default_rng(9)
    n = 10_000
    va2 = np.where(rng.random(n) < 0.5, rng.normal(3, 0.3, n), rng.normal(1, 0.3, n))
    cd11c = np.where((va2 < 2) & (rng.random(n) < 0.2), rng.normal(0.3, 0.1, n), rng.normal(0, 0.1, n))
    events = pd.DataFrame({"Va2": va2, "CD11c": cd11c})
    dc = ValleyQuadrantGate(["Va2", "CD11c"], quadrant="-+", sequential="below",
                            thresholds=[None, {"type": "mixture_threshold"}]).fit(events)
    assert dc.failed_ is None and 1.6 < dc.thresholds_[0] < 2.4 and 0.15 < dc.thresholds_[1] < 0.25
    assert np.isnan(dc.valley_depths_[1]) and dc.valley_depths_[0] > 0.5
    assert (dc.contains(events) == ((va2 < dc.thresholds_[0]) & (cd11c >= dc.thresholds_[1]))).all()
    assert ValleyQuadrantGate(["Va2", "CD11c"], quadrant="-+").fit(events).failed_  # no CD11c valley
    for bad, match in (([None, {"type": "cluster"}], "thresholds\\[1\\]"), ([None], "two cuts"),
                       ([{"type": "tail", "dim": "x"}, None], "no 'dim'"),
                       ([{"type": "mixture_threshold", "posterior": 2}, None], "posterior")):
        with pytest.raises(ValueError, match=match):
            ValleyQuadrantGate(["Va2", "CD11c"], quadrant="-+", thresholds=bad).check_params()


def test_smoothed_control_quantile_is_close_to_the_raw_one_and_steadier():
    rng = np.random.default_rng(7)
    raw, smooth = [], []
    for _ in range(20):
        ctrl = pd.DataFrame({"CD69": rng.normal(0, 1, 2_000)})
        raw.append(ControlThresholdGate("CD69", quantile=0.995).fit(ctrl).threshold_)
        smooth.append(ControlThresholdGate("CD69", quantile=0.995, smooth=True).fit(ctrl).threshold_)
    assert abs(np.mean(smooth) - 2.576) < 0.15 and np.std(smooth) < np.std(raw)


def test_template_types_load_and_bad_parameters_fail_at_load(tmp_path):
    from cytokit.errors import TemplateError
    from cytokit.gating.load import load_template

    base = """
channels:
  a: {pnn: [A]}
  b: {pnn: [B]}
compensation: none
populations:
  - {name: Scale, parent: root, gate: {type: boundary, dims: [a, b]}}
  - {name: Live, parent: Scale, gate: {type: peak_foot, dim: [a, b], side: below, k: 5}}
  - {name: Hi, parent: Live, gate: {type: shoulder, dim: a, tol: 0.05}}
  - {name: S, parent: Scale, gate: {type: ratio_singlet, area: a, height: b}}
  - {name: Q, parent: Scale, gate: {type: quadrant, dims: [a, b], quadrant: "%s"}}
"""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(base % "+-")
    bad.write_text(base % "+")
    assert [p.name for p in load_template(good).populations] == ["Scale", "Live", "Hi", "S", "Q"]
    with pytest.raises(TemplateError, match="quadrant"):
        load_template(bad)


def test_valley_fallback_cuts_a_population_without_a_peak_and_says_so():
    rng = np.random.default_rng(10)
    x = np.r_[rng.normal(0.2, 0.05, 9_800), rng.normal(0.55, 0.08, 200)]  # 2 % positives: no peak of their own
    events = pd.DataFrame({"CD19": x})
    assert DensityValleyGate("CD19").fit(events).failed_.startswith("no density valley")
    gate = DensityValleyGate("CD19", fallback={"type": "shoulder"}).fit(events)
    shoulder = ShoulderGate("CD19").fit(events)
    assert gate.failed_ is None and gate.threshold_ == shoulder.threshold_ and 0.3 < gate.threshold_ < 0.45
    assert "no density valley" in gate.warning_ and "fallback shoulder" in gate.warning_
    assert gate.valley_depth_ == 0.0 and gate.to_static().min == gate.threshold_
    two = np.r_[x, rng.normal(0.8, 0.05, 3_000)]  # a real positive peak: the valley, not the fallback
    valley = DensityValleyGate("CD19", fallback={"type": "shoulder"}).fit(pd.DataFrame({"CD19": two}))
    assert valley.warning_ is None and valley.peaks_[1] > 0.7 and valley.valley_depth_ > 0.5
    below = DensityValleyGate("CD19", side="below", fallback={"type": "shoulder"}).fit(pd.DataFrame({"CD19": -x}))
    assert below.threshold_ == pytest.approx(-gate.threshold_, abs=0.01) and below.side == "below"
    fails = DensityValleyGate("CD19", fallback={"type": "quantile", "q": 0.5, "min_events": 10**6}).fit(events)
    assert "the fallback quantile failed too: too few events" in fails.failed_
    for bad, match in (({"type": "shoulder", "side": "below"}, "keeping the gate's side"),
                       ({"type": "cluster"}, "'type' one of"), ({"type": "shoulder", "tol": 2}, "tol"),
                       ({"type": "tail", "dim": "x"}, "no 'dim'")):
        with pytest.raises(ValueError, match=match):
            DensityValleyGate("CD19", fallback=bad).check_params()


def test_a_quadrant_says_when_a_small_move_of_its_cuts_changes_much_of_it():
    rng = np.random.default_rng(3)
    blobs = [rng.normal(c, 0.1, (3000, 2)) for c in ((0, 0), (2, 0), (0, 2))]  # --, +-, -+: clean clouds
    tail = np.column_stack([rng.normal(2.0, 0.1, 600), 0.2 + rng.exponential(0.3, 600)])  # CD4+ cells trailing into CD8
    events = pd.DataFrame(np.concatenate([*blobs, tail]), columns=["CD4", "CD8"])
    clean = ValleyQuadrantGate(["CD4", "CD8"], quadrant="+-").fit(events)
    corner = ValleyQuadrantGate(["CD4", "CD8"], quadrant="++").fit(events)
    assert corner.thresholds_ == clean.thresholds_  # the same two cuts
    # a 2 % move of the cuts: a few of the +- cloud's events, but a seventh of the ++ corner's (the tail's end)
    assert clean.sensitivity_ < 0.01 and corner.sensitivity_ == pytest.approx(0.14, abs=0.03)
    assert clean.warning_ is None and corner.warning_ is None  # the default max_sensitivity is 0.2
    strict = ValleyQuadrantGate(["CD4", "CD8"], quadrant="++", max_sensitivity=0.1).fit(events)
    assert "++ quadrant of CD4 x CD8 is ill-determined" in strict.warning_
    with pytest.raises(ValueError, match="max_sensitivity"):
        ValleyQuadrantGate(["CD4", "CD8"], quadrant="++", max_sensitivity=-1).check_params()
