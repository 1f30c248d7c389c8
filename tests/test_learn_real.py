"""Regression guard: ``cytokit learn`` trained on two manually gated real files, scored on the others.

Runs ``benchmarks/validate_learn.py``'s :func:`run` on both sets of ``../shared/real_gated`` (or
``$CYTOKIT_REAL_GATED``): a template learned from the two files of ``TRAIN`` (activation: one
unstimulated and one stimulated tube; flowatlas: the two largest T-cell-first files) is
compared with the person's gating of every other file. Fails when a population's median or
worst F1 falls below :data:`LEVELS`, the levels measured on 2026-12-02 (twelfth session; four
raised in the fourteenth; two raised, one added and one lowered in the fifteenth;
docs/validation.md, "Learned templates") minus a margin of 0.02 (0.05 for the worst file of
flowatlas, whose tissue files hold a few to a few dozen events of the small subsets). **These are the levels
reached, not issue 18's goals** (median >= 0.95, worst >= 0.90 for every population): the
activation set meets them but for the worst tube of CD69+ CD4 / CD8 T cells (a handful of
events), flowatlas does not for most populations (see docs/validation.md). Learning's run time
is a benchmark's (``benchmarks/validate_learn.py`` prints it), not a test's.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
REAL_GATED = Path(os.environ.get("CYTOKIT_REAL_GATED", REPO.parent / "shared" / "real_gated"))
REAL_REASON = f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)"

# (set, population): (F1 median, F1 worst) on the held-out files, measured - margin
LEVELS = {
    ("activation", "Cells"): (0.97, 0.97),
    ("activation", "Single Cells"): (0.97, 0.97),
    ("activation", "Dead Cells"): (0.97, 0.95),
    ("activation", "Live Cells"): (0.97, 0.97),
    ("activation", "T Cells"): (0.97, 0.97),
    ("activation", "Dendritic Cells"): (0.96, 0.91),
    ("activation", "CD4 T Cells"): (0.97, 0.96),
    ("activation", "CD8 T Cells"): (0.97, 0.96),
    ("activation", "CD69+ CD4 T Cells"): (0.97, 0.83),  # registered: too few members for a fitted gate
    ("activation", "CD69+ CD8 T Cells"): (0.92, 0.87),
    ("flowatlas", "T cells"): (0.95, 0.87),  # a CD3 range not moved, since the 14th session (the valley: 0.947 / 0.894)
    ("flowatlas", "CD4"): (0.94, 0.89),
    ("flowatlas", "CD8"): (0.95, 0.87),
    ("flowatlas", "CD4- CD8-"): (0.53, 0.01),  # a valley quadrant since the 12th session (0.670 / 0.241 registered)
    ("flowatlas", "CD4+ CD8+"): (0.80, 0.26),
    ("flowatlas", "Treg"): (0.83, 0.01),
    ("flowatlas", "non-Treg"): (0.94, 0.87),
    ("flowatlas", "CD4 | Memory"): (0.93, 0.82),
    ("flowatlas", "CD4 | Naive"): (0.93, 0.77),  # registered: its own-file valley quadrant fails the rarity check
    ("flowatlas", "CD4 | EM"): (0.92, 0.76),
    ("flowatlas", "CD4 | EMRA"): (0.75, 0.0),  # 0.796 before the members' box (15th session): 0.773 since
    ("flowatlas", "CD8 | Naive"): (0.67, 0.0),  # on CD45RA x CCR7 since the 15th session (on CD25 x CCR7: 0.163)
    ("flowatlas", "CD8 | EM"): (0.88, 0.69),
    ("flowatlas", "CD8 | EMRA"): (0.81, 0.36),
}

# flowatlas learned from workspace.wsp instead (the person's own gates as drawn are candidates there):
# (F1 median, F1 worst) on the held-out files, measured on 2026-12-02 (fourteenth session) - margin
WORKSPACE_LEVELS = {
    "T cells": (0.95, 0.87),  # the person's CD3 cut as drawn (0.947 / 0.894 learned from the .npz files)
    "CD4": (0.95, 0.88),
    "CD8": (0.96, 0.89),
    "CD4- CD8-": (0.81, 0.27),
    "CD4 | CM": (0.86, 0.74),
    "CD8 | EM": (0.93, 0.79),
    "CD8 | EMRA": (0.87, 0.43),
    "CD8 | Naive": (0.76, 0.28),  # 0.177 / 0.000 learned from the .npz memberships alone
}


def _validate_learn():
    spec = importlib.util.spec_from_file_location("validate_learn", REPO / "benchmarks" / "validate_learn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured():
    if not (REAL_GATED / "README.md").exists():
        pytest.skip(REAL_REASON)
    summary, extra = _validate_learn().run(REAL_GATED)
    return summary.set_index(["set", "population"]), extra


@pytest.mark.corpus
def test_every_guarded_population_is_learned_and_scored_on_the_other_files(measured):
    summary, extra = measured
    assert set(LEVELS) <= set(summary.index)
    assert (summary.loc["activation", "files"] == 15).all() and (summary.loc["flowatlas", "files"] == 12).all()
    for name, e in extra.items():
        assert not (e["table"].status == "error").any(), name
        learned = e["learned"].populations
        assert (learned.gate != "").sum() >= len(learned) - 1  # at most one manual population too small to learn


@pytest.mark.corpus
@pytest.mark.parametrize("key", sorted(LEVELS), ids=lambda k: f"{k[0]}:{k[1]}")
def test_learned_population_keeps_its_agreement(measured, key):
    row = measured[0].loc[key]
    floor_median, floor_worst = LEVELS[key]
    assert row.f1_median >= floor_median and row.f1_worst >= floor_worst, (
        f"{key}: F1 median {row.f1_median:.3f} (floor {floor_median}), worst {row.f1_worst:.3f} (floor {floor_worst})")


@pytest.mark.corpus
def test_the_unstained_tube_is_flagged_where_the_learned_gates_are_unsure(measured):
    table = measured[1]["activation"]["table"]
    unstained = table[(table.file == "Activation_33.fcs") & (table.status == "paired")]
    stained = table[(table.file != "Activation_33.fcs") & (table.status == "paired")]
    assert unstained.population.str.endswith("T Cells").any()
    assert (unstained[unstained.population.str.endswith("/T Cells")].flag.str.contains("confidence")).all()
    assert (stained.flag.fillna("") == "").mean() > 0.95


@pytest.mark.corpus
@pytest.mark.parametrize("population", sorted(WORKSPACE_LEVELS))
def test_learned_from_the_workspace_keeps_its_agreement(measured, population):
    row = measured[0].loc[("flowatlas", population)]
    floor_median, floor_worst = WORKSPACE_LEVELS[population]
    assert row.wsp_f1_median >= floor_median and row.wsp_f1_worst >= floor_worst, (
        f"{population}: F1 median {row.wsp_f1_median:.3f} (floor {floor_median}), worst {row.wsp_f1_worst:.3f} "
        f"(floor {floor_worst})")


@pytest.mark.corpus
def test_learned_from_the_workspace_says_where_it_took_the_persons_own_gate(measured):
    learned = measured[1]["flowatlas_workspace"]["learned"]
    naive = learned.text.split("T cells/CD8/CD8 | Naive:", 1)[1].split("  - name:", 1)[0]
    assert "the person's own gate as drawn on 390C_BM_027.fcs" in naive
