"""The run cache holds data, never code: entries round-trip exactly, and foreign or damaged ones are analysed again."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytokit import _cache_format
from cytokit.batch import run_groups
from cytokit.experiment import Experiment
from cytokit.pipeline import analyse_group

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = str(REPO / "gating_templates" / "cll_cd19_7aad.yaml")
MODERN = REPO / "sample_fcs" / "modern"


@pytest.fixture(scope="module")
def group():
    exp = Experiment.from_folder(MODERN, template=TEMPLATE)
    rows, reference = exp.groups()[0]
    return exp, rows, analyse_group(rows, exp.template_path, reference_path=reference,
                                    pairing=("C2D1", "C2D8"), figures=True)


def test_an_entry_round_trips_every_field(group):
    _, _, result = group
    back = _cache_format.decode(_cache_format.encode(result))
    for name in ("samples", "populations", "markers", "paired"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name), check_dtype=False)
    assert back.values.keys() == result.values.keys()
    for key, array in result.values.items():
        assert back.values[key].dtype == np.float64 and np.array_equal(back.values[key], array, equal_nan=True)
    for file, frame in result.plot_events.items():
        pd.testing.assert_frame_equal(back.plot_events[file], frame)
    assert back.figures == result.figures and len(back.figures) == 5  # 4 gating figures + the patient panel
    assert back.fitted.keys() == result.fitted.keys()
    assert (back.drew_figures, back.baseline, back.followup) == (True, "C2D1", "C2D8")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_in_the_cache_is_never_loaded(group, tmp_path):
    """A pickle left in a shared OUT/.cache would run its author's code on load."""
    exp, rows, _ = group
    groups = exp.groups()[:1]
    run_groups(groups, exp.template_path, pairing=("C2D1", "C2D8"), cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    payload = _Payload()
    payload.marker = tmp_path / "code-ran"
    entry.write_bytes(pickle.dumps(payload))
    (result,) = run_groups(groups, exp.template_path, pairing=("C2D1", "C2D8"), cache_dir=tmp_path)
    assert not payload.marker.exists()
    assert (result.samples["status"] == "ok").all()
    assert _cache_format.decode(entry.read_bytes()).samples.equals(result.samples)  # recomputed and rewritten


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not a zip", b"\x93NUMPY garbage"])
def test_a_damaged_entry_is_a_value_error(group, damage):
    with pytest.raises(ValueError):
        _cache_format.decode(damage)


def test_an_entry_of_another_format_is_a_value_error(group):
    import io
    import json

    _, _, result = group
    with np.load(io.BytesIO(_cache_format.encode(result)), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    manifest["format"] = "cytokit-group-0"  # a well-formed entry of an older cytokit
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(ValueError, match="not a cytokit group result of this format"):
        _cache_format.decode(buffer.getvalue())


def test_a_finished_run_prunes_the_entries_it_did_not_use(group, tmp_path):
    """OUT/.cache was never pruned: every template edited and rerun left a copy of every group."""
    exp, _, _ = group
    groups = exp.groups()[:2]
    run_groups(groups, exp.template_path, pairing=("C2D1", "C2D8"), cache_dir=tmp_path)
    first = {p.name for p in tmp_path.glob("*.npz")}
    assert len(first) == 2
    (tmp_path / "notes.npz").write_bytes(b"not an entry")  # a name cytokit does not write: kept
    # another pairing: other keys; without prune the old entries stay, with it only the new ones
    run_groups(groups, exp.template_path, pairing=("C2D8", "C2D1"), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 5
    run_groups(groups, exp.template_path, pairing=("C2D8", "C2D1"), cache_dir=tmp_path, prune=True)
    left = {p.name for p in tmp_path.glob("*.npz")}
    assert len(left) == 3 and not left & first and "notes.npz" in left
    # a run of one group prunes the other group's entry
    run_groups(groups[:1], exp.template_path, pairing=("C2D8", "C2D1"), cache_dir=tmp_path, prune=True)
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.parametrize("column", [np.zeros(3, dtype=np.float32), np.array(["a", "b"]), np.zeros((2, 2))])
def test_a_plot_events_column_of_another_shape_or_type_is_a_value_error(group, column):
    """Plot events are stored a column each: a column that is not a vector of the frame's numbers is damage."""
    import io

    _, _, result = group
    with np.load(io.BytesIO(_cache_format.encode(result)), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["plot_events_0_0"] = column
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(ValueError, match="plot events column"):
        _cache_format.decode(buffer.getvalue())
