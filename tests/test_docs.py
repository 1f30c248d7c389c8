"""docs/outputs.md lists exactly the columns the tables have, in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def documented() -> dict[str, list[str]]:
    text = (REPO / "docs" / "outputs.md").read_text()
    out = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.split()[0]
        out[name] = re.findall(r"^\| (\w+) \|", section, flags=re.M)[1:]  # skip the header row
    return out


@pytest.fixture(scope="module")
def results():
    from cytokit import Experiment, read_sample_sheet

    sheet = read_sample_sheet(REPO / "sample_fcs" / "calibur" / "samples.csv")
    sheet = sheet[sheet["patient"].isin(["CLL001", "CLL002"])]
    return Experiment(sheet, REPO / "gating_templates" / "cll_cd19_7aad.yaml").run()


@pytest.mark.parametrize("table", ["samples", "populations", "markers", "paired", "cohort"])
def test_outputs_md_matches_the_tables(results, table):
    assert documented()[table] == list(getattr(results, table).columns)
