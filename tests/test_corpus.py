"""Every file of the real-world corpus reads to its reference values, or is rejected when invalid."""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest

from cytokit import FCSError, read_fcs
from cytokit.fcs import FCSWarning

from .conftest import CORPUS

pytestmark = pytest.mark.corpus


def _rows():
    table = CORPUS / "EXPECTED.tsv"
    if not table.exists():
        return [pytest.param(None, id="corpus-absent")]
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [pytest.param(r, id=f"{r['relpath']}#{r['dataset']}") for r in rows]


def _reference(row, column: str) -> list[float]:
    values = [float(v) for v in row[column].split("|")]
    try:
        step = float(row["timestep"]) if row["time_col"] and row["timestep"] else None
    except ValueError:  # non-numeric $TIMESTEP: time stays in channel units
        step = None
    if step is not None:
        values[int(row["time_col"])] *= step
    return values


@pytest.mark.parametrize("row", _rows())
def test_corpus_file(corpus, row):
    path = corpus / row["relpath"]
    dataset = int(row["dataset"])
    if row["status"] == "invalid":
        if row["alt_ok"] == "read":
            pytest.fail("no row of EXPECTED.tsv has alt_ok=read today; decide how to score it")
        with pytest.raises(FCSError, match=str(path.name).replace(".", r"\.")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FCSWarning)
                read_fcs(path, dataset=dataset)
        return

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FCSWarning)
        sample = read_fcs(path, dataset=dataset)
    assert sample.version == row["version"]
    assert sample.n_events == int(row["n_events"])
    assert list(sample.channels.pnn) == row["pnn"].split("|")
    events = sample.events.to_numpy(dtype=np.float64)
    sums = [math.fsum(events[:, j]) for j in range(events.shape[1])]
    np.testing.assert_allclose(sums, _reference(row, "col_sums"), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(events[0], _reference(row, "first_row"), rtol=1e-12, atol=1e-9)
    if row["npy"]:
        reference = np.load(corpus / "expected_events" / row["npy"])
        if row["time_col"]:
            try:
                reference[:, int(row["time_col"])] *= float(row["timestep"])
            except ValueError:
                pass
        np.testing.assert_allclose(events, reference, rtol=1e-12, atol=1e-9)
