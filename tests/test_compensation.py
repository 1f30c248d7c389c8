"""Tests for cytokit.compensation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cytokit.compensation import compensate, read_spillover_csv, spillover_from_keyword, validate_spillover
from cytokit.errors import ChannelNotFoundError, CytokitError

DETECTORS = ["FL1-A", "FL2-A", "FL3-A"]
SPILL = pd.DataFrame(
    [[1.0, 0.20, 0.05], [0.10, 1.0, 0.15], [0.0, 0.03, 1.0]], index=DETECTORS, columns=DETECTORS
)


@pytest.fixture
def planted():
    rng = np.random.default_rng(1)
    true = pd.DataFrame(rng.gamma(2.0, 500.0, size=(500, 3)), columns=DETECTORS)
    observed = pd.DataFrame(true.to_numpy() @ SPILL.to_numpy(), columns=DETECTORS)
    observed.insert(0, "FSC-A", rng.uniform(0, 1e5, 500))
    observed["Time"] = np.arange(500.0)
    return true, observed


def test_compensation_recovers_planted_values(planted):
    true, observed = planted
    out = compensate(observed, SPILL)
    np.testing.assert_allclose(out[DETECTORS].to_numpy(), true.to_numpy(), rtol=1e-9, atol=1e-7)


def test_other_channels_order_and_input_untouched(planted):
    _, observed = planted
    before = observed.copy()
    out = compensate(observed, SPILL)
    assert list(out.columns) == list(observed.columns)
    pd.testing.assert_series_equal(out["FSC-A"], observed["FSC-A"])
    pd.testing.assert_series_equal(out["Time"], observed["Time"])
    pd.testing.assert_frame_equal(observed, before)


def test_row_order_is_matched_to_columns_by_name(planted):
    true, observed = planted
    shuffled = SPILL.loc[["FL3-A", "FL1-A", "FL2-A"]]
    np.testing.assert_allclose(
        compensate(observed, shuffled)[DETECTORS].to_numpy(), true.to_numpy(), atol=1e-7
    )


def test_fluorochrome_rows_pair_with_detectors_by_position(planted):
    true, observed = planted
    spectrum = SPILL.set_axis(["FITC", "PE", "PerCP"], axis=0)
    np.testing.assert_allclose(
        compensate(observed, spectrum)[DETECTORS].to_numpy(), true.to_numpy(), atol=1e-7
    )


def test_matches_flowkit_matrix(planted):
    import flowkit

    _, observed = planted
    observed = observed.astype(np.float32).astype(np.float64)  # FlowKit keeps events as float32
    sample = flowkit.Sample(observed, sample_id="planted")
    theirs = flowkit.Matrix(SPILL.to_numpy(), DETECTORS).apply(sample)
    np.testing.assert_allclose(compensate(observed, SPILL).to_numpy(), theirs, rtol=1e-12)


def test_missing_detector_is_a_clear_channel_error(planted):
    _, observed = planted
    with pytest.raises(ChannelNotFoundError, match="FL3-A") as info:
        compensate(observed.drop(columns="FL3-A"), SPILL)
    assert isinstance(info.value, KeyError)


def test_singular_and_non_square_matrices_are_rejected():
    with pytest.raises(ValueError, match="singular"):
        validate_spillover(pd.DataFrame([[1.0, 1.0], [1.0, 1.0]], index=["a", "b"], columns=["a", "b"]))
    with pytest.raises(ValueError, match="square"):
        validate_spillover(SPILL.iloc[:2])


def test_spillover_keyword():
    spill = spillover_from_keyword("2,FL1-A,FL2-A,1,0.1,0.02,1")
    assert list(spill.columns) == ["FL1-A", "FL2-A"] and spill.loc["FL1-A", "FL2-A"] == 0.1
    with pytest.raises(ValueError, match="2 channels"):
        spillover_from_keyword("2,FL1-A,FL2-A,1,0.1")


@pytest.mark.parametrize(
    "text",
    [
        "FL1-A,FL2-A\n1,0.1\n0.02,1\n",  # FlowKit: header only
        "# FL1-A,FL2-A\n1,0.1\n0.02,1\n",  # FlowJo: header starts with '#'
        ",FL1-A,FL2-A\nFL1-A,1,0.1\nFL2-A,0.02,1\n",  # row names
        "FL1-A\tFL2-A\n1\t0.1\n0.02\t1\n",  # tab separated
        "FL1-A;FL2-A\n1;0.1\n0.02;1\n",  # semicolons
    ],
)
def test_read_spillover_csv_layouts(tmp_path, text):
    path = tmp_path / "spill.csv"
    path.write_text(text)
    spill = read_spillover_csv(path)
    assert list(spill.columns) == ["FL1-A", "FL2-A"] and list(spill.index) == ["FL1-A", "FL2-A"]
    np.testing.assert_allclose(spill.to_numpy(), [[1, 0.1], [0.02, 1]])


def test_read_spillover_csv_rejects_garbage(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("FL1-A,FL2-A\n1,0.1\n")
    with pytest.raises(CytokitError, match="square"):
        read_spillover_csv(path)
    path.write_text("FL1-A,FL2-A\n1,x\n0,1\n")
    with pytest.raises(CytokitError, match="non-numeric"):
        read_spillover_csv(path)


def test_a_files_matrix_naming_a_missing_detector_names_the_file():
    from cytokit import Sample
    from cytokit.gating.template import parse_template

    sample = Sample.from_dataframe(pd.DataFrame({"A": [1.0, 2.0], "B": [3.0, 4.0]}))
    sample.path = "tube.fcs"
    template = parse_template("channels:\n  a: {pnn: [A]}\ncompensation: {detectors: [A, Z], matrix: [[1, 0], [0, 1]]}\n"
                              "populations:\n  - {name: P, parent: root, gate: {type: range, dim: a, min: 0}}\n")
    with pytest.raises(ChannelNotFoundError, match=r"tube\.fcs: compensation \(template matrix\): spillover matrix "
                                                   r"detector\(s\) \['Z'\] are not channels"):
        template.apply(sample)
