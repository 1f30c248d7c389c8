"""Regression guard: cytokit's example templates against people's gates on real files.

Runs ``cytokit.compare`` on both manually gated sets of ``../shared/real_gated`` (or
``$CYTOKIT_REAL_GATED``) with ``gating_templates/examples/activation.yaml`` and
``flowatlas.yaml`` (all 31 files, a few seconds; the activation tubes take CD69+ from their
unstimulated control, ``design.csv``), as ``benchmarks/validate_real.py`` does, and fails
when a population's median or worst F1, or F1 within the parent, falls below
:data:`LEVELS`: the levels measured on 2026-12-01 and 2026-12-02 (docs/validation.md, "Real data") minus
a margin of 0.02. **These are today's levels, not issue 15's goals** (median F1 >= 0.95,
worst >= 0.90, CD69+ within 2 / 5 percentage points): several populations are well below
the goals (dendritic cells, the CD4/CD8 double populations, Treg's worst file, the memory
subsets), and a 0 here means "no guard", not "acceptable". CD69+ is also guarded on its
|difference in % of parent| (today's median / worst plus 0.5 points).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
REAL_GATED = Path(os.environ.get("CYTOKIT_REAL_GATED", REPO.parent / "shared" / "real_gated"))
REAL_REASON = f"real gated files not found at {REAL_GATED} (set CYTOKIT_REAL_GATED)"

# (set, population): (F1 median, F1 worst, F1 within parent median, worst), measured - 0.02
LEVELS = {
    ("activation", "Cells"): (0.95, 0.94, 0.95, 0.94),
    ("activation", "Single Cells"): (0.95, 0.94, 0.97, 0.97),
    ("activation", "Live Cells"): (0.94, 0.89, 0.96, 0.91),
    ("activation", "T Cells"): (0.95, 0.90, 0.96, 0.95),
    ("activation", "Dendritic Cells"): (0.83, 0.00, 0.90, 0.00),
    ("activation", "CD4 T Cells"): (0.94, 0.88, 0.97, 0.97),
    ("activation", "CD8 T Cells"): (0.95, 0.92, 0.97, 0.97),
    ("activation", "CD69+ CD4 T Cells"): (0.81, 0.38, 0.93, 0.55),
    ("activation", "CD69+ CD8 T Cells"): (0.64, 0.23, 0.70, 0.26),
    ("flowatlas", "T cells"): (0.96, 0.92, 0.97, 0.93),
    ("flowatlas", "CD4"): (0.95, 0.91, 0.96, 0.91),
    ("flowatlas", "CD8"): (0.96, 0.91, 0.97, 0.93),
    ("flowatlas", "CD4+ CD8+"): (0.80, 0.39, 0.82, 0.39),
    ("flowatlas", "CD4- CD8-"): (0.89, 0.65, 0.93, 0.77),
    ("flowatlas", "Treg"): (0.82, 0.00, 0.86, 0.00),
    ("flowatlas", "non-Treg"): (0.94, 0.86, 0.97, 0.93),
    ("flowatlas", "CD4 | Memory"): (0.93, 0.84, 0.97, 0.87),
    ("flowatlas", "CD4 | Naive"): (0.91, 0.79, 0.92, 0.79),
    ("flowatlas", "CD4 | CM"): (0.77, 0.58, 0.78, 0.58),
    ("flowatlas", "CD4 | EM"): (0.90, 0.74, 0.94, 0.77),
    ("flowatlas", "CD4 | EMRA"): (0.76, 0.37, 0.85, 0.38),
    ("flowatlas", "CD8 | Naive"): (0.81, 0.38, 0.83, 0.39),
    ("flowatlas", "CD8 | CM"): (0.68, 0.41, 0.71, 0.43),
    ("flowatlas", "CD8 | EM"): (0.93, 0.83, 0.94, 0.85),
    ("flowatlas", "CD8 | EMRA"): (0.90, 0.47, 0.93, 0.47),
    ("flowatlas", "B cells"): (0.94, 0.74, 0.94, 0.74),
    ("flowatlas", "non-B"): (0.96, 0.95, 0.96, 0.95),
}
# CD69+: |delta % of parent| median, worst (today's + 0.5 points; issue 15's goal: 2, 5)
CD69_DELTA = {"CD69+ CD4 T Cells": (0.65, 1.64), "CD69+ CD8 T Cells": (1.21, 4.40)}


def _validate_real():
    spec = importlib.util.spec_from_file_location("validate_real", REPO / "benchmarks" / "validate_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def summary():
    if not (REAL_GATED / "README.md").exists():
        pytest.skip(REAL_REASON)
    import pandas as pd

    validate = _validate_real()
    table = pd.concat([validate.run_set(REAL_GATED, name) for name in validate.SETS], ignore_index=True)
    assert not (table.status == "error").any()
    return validate.summarise(table).set_index(["set", "population"])


@pytest.mark.corpus
def test_every_population_is_scored(summary):
    assert set(summary.index) == set(LEVELS)
    assert (summary.loc["activation", "files"] == 17).all()
    assert (summary.loc["flowatlas", "files"].drop(["B cells", "non-B"]) == 14).all()
    assert (summary.loc["flowatlas", "files"][["B cells", "non-B"]] == 9).all()  # the panel with CD19


@pytest.mark.corpus
@pytest.mark.parametrize("key", sorted(LEVELS), ids=lambda k: f"{k[0]}:{k[1]}")
def test_population_keeps_todays_agreement(summary, key):
    row = summary.loc[key]
    got = (row.f1_median, row.f1_worst, row.f1_parent_median, row.f1_parent_worst)
    names = ("F1 median", "F1 worst", "F1 within parent median", "F1 within parent worst")
    low = [f"{n} {g:.3f} < {floor:.2f}" for n, g, floor in zip(names, got, LEVELS[key]) if g < floor]
    assert not low, f"{key}: " + "; ".join(low)


@pytest.mark.corpus
@pytest.mark.parametrize("population", sorted(CD69_DELTA))
def test_cd69_percentages_stay_close_to_the_person(summary, population):
    row = summary.loc[("activation", population)]
    median, worst = CD69_DELTA[population]
    assert row.delta_pct_median <= median and row.delta_pct_worst <= worst, row.to_dict()
