"""Gates fitted on an ancestor's events (``fit_on``), on several files pooled (``pool``), and the
sequential valley quadrant: what each fits on, and the same cuts through compare and run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cytokit
from cytokit import Sample, TemplateError
from cytokit.gating import pooling
from cytokit.gating.peaks import ValleyQuadrantGate
from cytokit.gating.template import parse_template
from cytokit.gating.thresholds import DensityValleyGate

TEMPLATE = """
channels:
  a: {pnn: [A]}
  b: {pnn: [B]}
compensation: none
populations:
  - {name: Big, parent: root, gate: {type: range, dim: a, min: 0.2}}
  - name: Bpos
    parent: Big
    %s
    gate: {type: density_valley, dim: b, side: above, min_peak_height: 0.01}
"""


def _sample(n_neg: int, n_pos: int, seed: int, name: str) -> Sample:
    rng = np.random.default_rng(seed)
    b = np.r_[rng.normal(0.2, 0.05, n_neg), rng.normal(0.7, 0.05, n_pos)]
    sample = Sample.from_dataframe(pd.DataFrame({"A": rng.uniform(0.0, 1.0, len(b)), "B": b}))
    sample.path = name
    return sample


def test_fit_on_fits_on_the_ancestor_and_keeps_only_the_parent():
    template = parse_template(TEMPLATE % "fit_on: Big")
    sample = _sample(3_000, 3_000, 0, "x.fcs")
    result = template.apply(sample)
    big = result.membership["Big"]
    expected = DensityValleyGate("B", side="above", min_peak_height=0.01).fit(sample.events[big])
    assert result.gates["Big/Bpos"].threshold_ == expected.threshold_
    assert not (result.membership["Big/Bpos"] & ~big).any()


def test_pooled_gate_gives_a_file_without_positives_the_others_cut():
    template = parse_template(TEMPLATE % "pool: true")
    samples = [_sample(3_000, 3_000, 1, "clear.fcs"), _sample(4_000, 0, 2, "negative.fcs")]
    alone = template.apply(samples[1])
    assert alone.flags["Big/Bpos"].startswith("gate failed")  # one peak: no valley of its own
    fits = pooling.fit_pooled(template, samples)
    gate = fits["Big/Bpos"]
    assert gate.n_pooled_files_ == 2 and 0.3 < gate.threshold_ < 0.6
    pooled = pd.concat([s.events[s.events["A"] >= 0.2] for s in samples], ignore_index=True)
    assert gate.threshold_ == DensityValleyGate("B", side="above", min_peak_height=0.01).fit(pooled).threshold_
    for sample in samples:
        result = template.apply(sample, pooled=fits)
        inside = result.membership["Big/Bpos"]
        assert result.gates["Big/Bpos"].threshold_ == gate.threshold_ and "Big/Bpos" not in result.flags
        assert np.array_equal(inside, (sample.events["A"] >= 0.2).to_numpy() & (sample.events["B"] >= gate.threshold_).to_numpy())
    assert template.apply(samples[1], pooled=fits).membership["Big/Bpos"].sum() == 0


def test_a_pooled_gate_over_files_of_different_scales_is_doubtful_and_says_why():
    template = parse_template(TEMPLATE % "pool: true")
    samples = [_sample(3_000, 3_000, 1, "linear.fcs"), _sample(3_000, 3_000, 2, "log.fcs")]
    assert not pooling.fit_pooled(template, samples)["Big/Bpos"].warning_  # in-memory ranges within 2x
    samples[1].channels.loc[samples[1].channels["pnn"] == "B", "decades"] = 4.0  # B log-amplified
    gate = pooling.fit_pooled(template, samples)["Big/Bpos"]
    assert "different scales (B: linear in linear.fcs" in gate.warning_ and "log-amplified over 4 decades in log.fcs" in gate.warning_
    assert "A:" not in gate.warning_  # A is on one scale in both
    assert template.apply(samples[0], pooled=pooling.fit_pooled(template, samples)).flags["Big/Bpos"].startswith(
        "gate doubtful: pooled files record")


def test_pooled_fit_takes_at_most_a_subsample_of_each_file(monkeypatch):
    monkeypatch.setattr(pooling, "MAX_EVENTS_PER_FILE", 500)
    template = parse_template(TEMPLATE % "pool: true")
    fits = pooling.fit_pooled(template, [_sample(3_000, 3_000, 3, "a.fcs"), _sample(200, 200, 4, "b.fcs")])
    big_b = int((_sample(200, 200, 4, "b.fcs").events["A"] >= 0.2).sum())
    assert fits["Big/Bpos"].n_fit_events_ == 500 + big_b


def test_a_file_that_cannot_be_gated_is_left_out_or_raised():
    template = parse_template(TEMPLATE % "pool: true")
    bad = Sample.from_dataframe(pd.DataFrame({"A": [0.5, 0.6]}))  # no channel B
    bad.path = "bad.fcs"
    with pytest.raises(cytokit.CytokitError, match="bad.fcs"):
        pooling.fit_pooled(template, [_sample(3_000, 3_000, 5, "a.fcs"), bad])
    seen = []
    fits = pooling.fit_pooled(template, [_sample(3_000, 3_000, 5, "a.fcs"), bad],
                              on_error=lambda item, exc: seen.append(item))
    assert seen == [bad] and fits["Big/Bpos"].n_pooled_files_ == 1


@pytest.mark.parametrize("line, message", [
    ("fit_on: Nowhere", "not the parent or an ancestor"),
])
def test_fit_on_must_name_an_ancestor(line, message):
    with pytest.raises(TemplateError, match=message):
        parse_template(TEMPLATE % line)


def test_pool_is_refused_on_gates_fitted_elsewhere():
    text = TEMPLATE.replace("gate: {type: density_valley, dim: b, side: above, min_peak_height: 0.01}",
                            "gate: {type: boolean, op: not, operands: [Big]}") % "pool: true"
    with pytest.raises(TemplateError, match="takes neither pool nor fit_on"):
        parse_template(text)


def test_sequential_quadrant_fits_the_second_valley_on_one_side_of_the_first():
    rng = np.random.default_rng(6)
    # x: two peaks. y separates only among x+ (naive y+ against EMRA y-); x- events spread over y.
    x = np.r_[rng.normal(0.2, 0.05, 6_000), rng.normal(0.7, 0.05, 4_000)]
    y = np.r_[rng.uniform(0.0, 1.0, 6_000), rng.normal(0.2, 0.04, 2_000), rng.normal(0.8, 0.04, 2_000)]
    events = pd.DataFrame({"x": x, "y": y})
    gate = ValleyQuadrantGate(["x", "y"], quadrant="++", sequential="above").fit(events)
    assert gate.failed_ is None
    positive = events[events["x"] >= gate.thresholds_[0]]
    expected = DensityValleyGate("y", side="above").fit(positive)
    assert gate.thresholds_[1] == expected.threshold_ and 0.35 < gate.thresholds_[1] < 0.65
    with pytest.raises(ValueError, match="sequential"):
        ValleyQuadrantGate(["x", "y"], quadrant="++", sequential="left").check_params()


def test_run_uses_the_cuts_fitted_on_all_its_files(tmp_path):
    template_path = tmp_path / "pooled.yaml"
    template_path.write_text(TEMPLATE % "pool: true")
    folder = tmp_path / "fcs"
    folder.mkdir()
    samples = []
    for i, (neg, pos) in enumerate([(3_000, 3_000), (4_000, 0)]):
        for j, timepoint in enumerate(("C2D1", "C2D8")):
            path = folder / f"P{i}_{timepoint}_stained.fcs"
            cytokit.write_fcs(path, _sample(neg, pos, 10 + 2 * i + j, path.name).events)
            samples.append(path)
    experiment = cytokit.Experiment.from_folder(folder, template=template_path)
    fits = experiment.fit_pooled()
    assert fits["Big/Bpos"].n_pooled_files_ == 4
    results = experiment.run(cache_dir=tmp_path / "cache")
    pops = results.populations.set_index(["file", "population"])
    for path in samples:
        direct = experiment.template.apply(cytokit.read_fcs(path), pooled=fits)
        assert pops.loc[(path.name, "Big/Bpos"), "count"] == direct.membership["Big/Bpos"].sum()
    assert results.pooled["Big/Bpos"].threshold_ == fits["Big/Bpos"].threshold_


def test_pooled_gates_on_the_same_events_share_one_pass_and_the_cap_shrinks_with_many_files(monkeypatch):
    from cytokit.gating import apply

    text = (TEMPLATE % "pool: true") + """
  - name: Bpos2
    parent: Big
    pool: true
    gate: {type: density_valley, dim: b, side: above, min_peak_height: 0.05}
  - name: Deep
    parent: Bpos
    pool: true
    gate: {type: density_valley, dim: a, side: above}
"""
    template = parse_template(text)
    calls = []
    real = apply.gate_sample
    monkeypatch.setattr(apply, "gate_sample", lambda *a, **k: calls.append(k.get("stop_at")) or real(*a, **k))
    monkeypatch.setattr(pooling, "MAX_POOLED_EVENTS", 1_000)
    samples = [_sample(3_000, 3_000, 20 + i, f"s{i}.fcs") for i in range(4)]
    fits = pooling.fit_pooled(template, samples)
    # Bpos and Bpos2 both learn from Big: one pass; Deep learns from Bpos, pooled above it: a second
    assert calls == ["Big/Bpos"] * 4 + ["Big/Bpos/Deep"] * 4
    assert set(fits) == {"Big/Bpos", "Big/Bpos2", "Big/Bpos/Deep"}
    assert fits["Big/Bpos"].n_fit_events_ == 4 * 250  # 1,000 events in all, 250 from each file


def test_a_pooled_gate_is_doubtful_on_the_files_whose_events_are_dense_at_its_cut():
    """The pooled fit is one for all files, its valley depth too; each file's flag says where the
    cut falls among that file's own events (the sensitivity to a 2 % move), and the fit is left as it was."""
    template = parse_template(TEMPLATE % "pool: true")
    rng = np.random.default_rng(7)
    clear = _sample(3_000, 3_000, 3, "clear.fcs")
    b = rng.normal(0.45, 0.08, 4_000)  # one broad population about where the other file's valley is
    smear = Sample.from_dataframe(pd.DataFrame({"A": rng.uniform(0.2, 1.0, len(b)), "B": b}))
    smear.path = "smear.fcs"
    fits = pooling.fit_pooled(template, [clear, smear])
    pooled = fits["Big/Bpos"]
    before = dict(vars(pooled))
    results = {s.path: template.apply(s, pooled=fits) for s in (clear, smear)}
    assert "Big/Bpos" not in results["clear.fcs"].flags and results["clear.fcs"].gates["Big/Bpos"].sensitivity_ < 0.05
    flag = results["smear.fcs"].flags["Big/Bpos"]
    assert flag.startswith("gate doubtful: the B cut") and "where the events are dense" in flag
    assert flag.endswith("on this file (fitted on 2 files pooled)")
    assert results["smear.fcs"].gates["Big/Bpos"].sensitivity_ > 0.2
    assert vars(pooled) == before  # each file judged on a copy


def test_a_pooled_quadrant_is_judged_on_each_files_own_events():
    gate = ValleyQuadrantGate(["x", "y"], quadrant="++")
    gate.fit(pd.DataFrame({"x": np.r_[np.zeros(500), np.ones(500)], "y": np.r_[np.zeros(500), np.ones(500)]}))
    gate.n_pooled_files_ = 3
    rng = np.random.default_rng(0)
    apart = pd.DataFrame({"x": np.r_[rng.normal(0, 0.05, 500), rng.normal(1, 0.05, 500)],
                          "y": np.r_[rng.normal(0, 0.05, 500), rng.normal(1, 0.05, 500)]})
    on_cuts = pd.DataFrame({"x": rng.normal(gate.thresholds_[0], 0.05, 1_000),
                            "y": rng.normal(gate.thresholds_[1], 0.05, 1_000)})
    assert gate.file_warning(apart) is None and gate.sensitivity_ < 0.01
    note = gate.file_warning(on_cuts)
    assert "++ quadrant of x x y is ill-determined" in note and note.endswith("on this file (fitted on 3 files pooled)")
    assert gate.file_warning(on_cuts.iloc[:10]) == gate.warning_  # too few events to judge: the fit's own


def test_a_pooled_quadrant_without_a_valley_in_a_dimension_says_so_on_every_file():
    """Judged on each file's own events, a pooled quadrant dropped the fit's "no density valley":
    FlowAtlas CD4 CM learned from three files, pooled over eleven others, was empty in all of them
    without a flag."""
    rng = np.random.default_rng(1)
    pooled = pd.DataFrame({"x": np.r_[rng.normal(0, 0.1, 500), rng.normal(1, 0.1, 500)],
                           "y": rng.normal(0.5, 0.1, 1_000)})
    gate = ValleyQuadrantGate(["x", "y"], quadrant="-+", no_valley="negative").fit(pooled)
    gate.n_pooled_files_ = 11
    assert gate.warning_.startswith("no density valley in y: all its events taken as negative")
    note = gate.file_warning(pooled.sample(300, random_state=0))
    assert note.startswith("no density valley in y: all its events taken as negative (fitted on 11 files pooled)")


def test_run_names_a_weak_pooled_fit_once(tmp_path, capsys):
    from cytokit.cli import main

    template_path = tmp_path / "pooled.yaml"
    template_path.write_text(TEMPLATE % "pool: true")
    folder = tmp_path / "fcs"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for i in range(2):
        for timepoint in ("C2D1", "C2D8"):
            b = np.r_[rng.normal(0.3, 0.1, 3_000), rng.normal(0.6, 0.1, 3_000)]  # two overlapping peaks
            cytokit.write_fcs(folder / f"P{i}_{timepoint}_stained.fcs",
                              pd.DataFrame({"A": rng.uniform(0.2, 1.0, len(b)), "B": b}))
    assert main(["run", str(folder), "--template", str(template_path), "--out", str(tmp_path / "out"),
                 "--no-plots", "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "pooled gate" in line]
    assert len(lines) == 1 and lines[0].startswith("cytokit run: warning: pooled gate Big/Bpos: weak separation")
    assert lines[0].endswith("(fitted on 4 files pooled)")
