"""cytokit learn with controls: a positive cut learned as a quantile of the control tube, and the
control threshold's fallback for a tube without a control."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cytokit
from cytokit.agreement import agreement
from cytokit.cli import main
from cytokit.gating.thresholds import ControlThresholdGate
from cytokit.learn import learn_template
from cytokit.gating.thresholds import smoothed_cdf
from cytokit.learn._control import best_cut

TOP = 262144.0
Q = 0.99  # the person's positive cut: this quantile of the control tube's cells
#: experiment -> its shift of CD69 (log10): a run of another day, another voltage
EXPERIMENTS = {"a": 0.0, "b": 0.35, "c": 0.7}


def _tube(folder: Path, name: str, shift: float, stimulated: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scatter with debris; CD69 negatives (and, stimulated, 20 % positives on their flank, no valley)."""
    rng = np.random.default_rng(seed)
    n, n_debris = 6000, 600
    fsc = np.r_[rng.uniform(2000, 40000, n_debris), rng.normal(110000, 15000, n - n_debris)]
    ssc = np.r_[rng.uniform(1000, 30000, n_debris), rng.normal(60000, 12000, n - n_debris)]
    positive = stimulated & (rng.random(n) < 0.2)
    log_cd69 = np.where(positive, rng.normal(3.2, 0.3, n), rng.normal(2.4, 0.2, n)) + shift
    frame = pd.DataFrame({"FSC-A": fsc, "SSC-A": ssc, "CD69-A": 10 ** log_cd69, "Time": np.arange(n) * 0.01})
    cytokit.write_fcs(folder / "fcs" / f"{name}.fcs", frame.astype("float32"), datatype="F",
                      markers={"CD69-A": "CD69"}, ranges={c: TOP for c in ["FSC-A", "SSC-A", "CD69-A"]} | {"Time": 1024.0})
    return fsc > 50000, log_cd69


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    """Per experiment an unstimulated control and a stimulated tube; the person cuts CD69+ at the
    control's 99th percentile, in the control itself too. Returns the folder and the controls mapping."""
    folder = tmp_path_factory.mktemp("learn_controls")
    (folder / "fcs").mkdir()
    (folder / "manual").mkdir()
    controls = {}
    for k, (exp, shift) in enumerate(EXPERIMENTS.items()):
        cells_c, cd69_c = _tube(folder, f"{exp}_unstim", shift, False, 10 * k)
        cut = np.quantile(cd69_c[cells_c], Q)
        for name, cells, cd69 in [(f"{exp}_unstim", cells_c, cd69_c),
                                  (f"{exp}_stim", *_tube(folder, f"{exp}_stim", shift, True, 10 * k + 1))]:
            np.savez(folder / "manual" / f"{name}.npz", **{"Cells": cells, "Cells/CD69+": cells & (cd69 > cut)})
        controls[f"{exp}_stim.fcs"] = f"{exp}_unstim.fcs"
    return folder, controls


def _files(folder: Path, *names: str) -> list[Path]:
    return [folder / "fcs" / f"{n}.fcs" for n in names]


def test_a_cut_set_on_each_experiments_control_is_learned_as_a_quantile_of_the_control(experiments, tmp_path):
    folder, controls = experiments
    train = _files(folder, "a_unstim", "a_stim", "b_unstim", "b_stim")
    learned = learn_template(folder / "manual", train, controls=controls, leave_one_out=False)
    row = learned.populations.set_index("manual").loc["Cells/CD69+"]
    assert row["gate"] == "control_threshold" and row["dims"] == "cd69"
    assert learned.populations.set_index("manual").loc["Cells", "gate"] != "control_threshold"  # not on scatter
    gate = next(p for p in learned.template.populations if p.name == "CD69+").gate
    assert gate["side"] == "above" and gate["smooth"] is True and 0.97 < gate["quantile"] < 0.999
    assert gate["fallback"]["type"] == "threshold"
    assert "quantile of its control tube" in learned.text and "a sample sheet's control_file" in learned.text
    assert "Controls: 2 control tube(s) among the training files (a_unstim.fcs, b_unstim.fcs)" in \
        learned.text.replace("\n# ", " ")
    # experiment c, higher than both training experiments, through compare with its control
    held = _files(folder, "c_unstim", "c_stim")
    table = cytokit.compare(held, learned.template, folder / "manual", controls=controls)
    f1 = table.set_index(["file", "population"])["f1"]
    assert f1["c_stim.fcs", "Cells/CD69+"] > 0.98 and f1["c_unstim.fcs", "Cells/CD69+"] > 0.9
    # the same files learned without the controls: a fixed or moved cut, not as good on c_stim
    plain = learn_template(folder / "manual", train, leave_one_out=False)
    assert plain.populations.set_index("manual").loc["Cells/CD69+", "gate"] != "control_threshold"
    other = cytokit.compare(held, plain.template, folder / "manual").set_index(["file", "population"])["f1"]
    assert other["c_stim.fcs", "Cells/CD69+"] < 0.96 and other["c_unstim.fcs", "Cells/CD69+"] < 0.5


def test_training_files_sharing_one_control_learn_no_control_threshold(experiments):
    """With one control, its quantile is one fixed cut in every training file: nothing shows it
    follows the control (activation tubes 1 + 7: a tie with the fixed cut won, 9.898 -> 9.620)."""
    folder, controls = experiments
    learned = learn_template(folder / "manual", _files(folder, "a_unstim", "a_stim"), controls=controls,
                             leave_one_out=False)
    assert "control_threshold" not in set(learned.populations["gate"])
    assert "no population was learned as a cut on the control tube" in learned.text.replace("\n# ", " ")
    # said beside the table too, not only in the template's header
    assert learned.notes[0].startswith("Controls: 1 control tube(s) among the training files (a_unstim.fcs)")
    assert "no population was learned as a cut on the control tube" in learned.notes[0]


def test_a_control_threshold_without_a_control_cuts_at_its_fallback_flagged(experiments):
    folder, controls = experiments
    learned = learn_template(folder / "manual", _files(folder, "a_unstim", "a_stim", "b_unstim", "b_stim"),
                             controls=controls, leave_one_out=False)
    gate = next(p for p in learned.template.populations if p.name == "CD69+").gate
    result = learned.template.apply(cytokit.read_fcs(folder / "fcs" / "c_stim.fcs"))  # no control given
    assert result.fitted()["Cells/CD69+"]["threshold_"] == pytest.approx(gate["fallback"]["at"])
    assert result.flags["Cells/CD69+"].startswith("gate doubtful: no matched control tube: the fallback threshold")
    # without a fallback, as before: the gate fails, named
    bare = ControlThresholdGate("x", quantile=0.99)
    events = pd.DataFrame({"x": np.linspace(0, 1, 200)})
    assert bare.fit(events, without_control=True).failed_ == "needs the matched control tube, and none was given"
    with pytest.raises(ValueError, match="fallback"):
        ControlThresholdGate("x", side="above", fallback={"type": "threshold", "at": 0.5, "side": "below"}).check_params()


def test_the_quantile_is_read_as_the_smoothed_control_gate_reads_it():
    rng = np.random.default_rng(3)
    control = rng.normal(0.3, 0.05, 5000)
    grid, cdf = smoothed_cdf(control)
    fitted = ControlThresholdGate("x", quantile=0.995, smooth=True).fit(pd.DataFrame({"x": control}))
    # learn reads a cut's quantile off the same curve: the gate's cut sits at the quantile it was given
    assert np.interp(fitted.threshold_, grid, cdf) == pytest.approx(0.995, abs=1e-9)
    x = np.r_[rng.normal(0.3, 0.05, 900), rng.normal(0.6, 0.05, 100)]
    member = np.r_[np.zeros(900, bool), np.ones(100, bool)]
    cut, f1 = best_cut(x, member, "above")
    assert f1 == pytest.approx(agreement(x >= cut, member)[2]) and 0.4 < cut < 0.55
    cut, f1 = best_cut(x, ~member, "below")
    assert f1 == pytest.approx(agreement(x < cut, ~member)[2]) and 0.4 < cut < 0.55


def test_cli_learn_takes_a_controls_sheet(experiments, tmp_path, capsys):
    folder, controls = experiments
    sheet = tmp_path / "design.csv"
    pd.DataFrame({"file": list(controls), "control_file": list(controls.values())}).to_csv(sheet, index=False)
    out = tmp_path / "learned.yaml"
    files = [str(f) for f in _files(folder, "a_unstim", "a_stim", "b_unstim", "b_stim")]
    assert main(["learn", str(folder / "manual"), "--files", *files, "--controls", str(sheet), "--out", str(out),
                 "--no-leave-one-out"]) == 0
    printed = capsys.readouterr().out
    assert "control_threshold" in printed and 'type: "control_threshold"' in out.read_text()
    assert "\nnotes:\n  Controls: 2 control tube(s) among the training files" in printed
