"""Damaged files a fuzzing reviewer found crashing a command or giving numbers silently wrong:
each now a clear error naming the file and the problem, or a quality flag."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytokit import FCSError, load_template, read_fcs
from cytokit.compensation import spillover_from_keyword, validate_spillover
from cytokit.fcs import FCSDataWarning, FCSWarning
from cytokit.metadata import read_sample_sheet

from .fcsbuilder import build_fcs

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "gating_templates" / "cll_cd19_7aad.yaml"
STAINED = REPO / "sample_fcs" / "modern" / "CLL001_C2D8_stained.fcs"
RNG = np.random.default_rng(5)


def _damaged(tmp_path: Path, old: bytes, new: bytes, name: str = "CLL001_C2D8_stained.fcs") -> Path:
    """The demo's stained tube with one TEXT value replaced by another of the same length."""
    data = STAINED.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1
    path = tmp_path / name
    path.write_bytes(data.replace(old, new, 1))
    return path


@pytest.mark.parametrize("value, problem", [
    ("inf,A,B,1,0,0,1", "must start with the channel count"),  # an OverflowError crashed every command
    ("1e400,A,B,1,0,0,1", "must start with the channel count"),
    ("2,A,A,1,0,0,1", "names channel(s) A more than once"),
])
def test_a_spillover_keyword_that_is_no_matrix_is_a_value_error(value, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        spillover_from_keyword(value)


def test_a_nearly_singular_spillover_matrix_is_refused():
    """1 beside 1.0000001: compensated LAG3 medians of -2.85e10, reported as ok."""
    matrix = pd.DataFrame([[1, 1], [1, 1.0000001]], index=["A", "B"], columns=["A", "B"])
    with pytest.raises(ValueError, match="nearly singular .condition number 4e"):
        validate_spillover(matrix)
    validate_spillover(pd.DataFrame([[1, 0.3], [0.2, 1]], index=["A", "B"], columns=["A", "B"]))


def test_a_malformed_spillover_stops_a_template_that_compensates_with_it(tmp_path):
    """It was dropped with a warning gate and run hid: LAG3 93.2 % positive instead of 27.8 %."""
    path = _damaged(tmp_path, b"$SPILLOVER/4,", b"$SPILLOVER/x,")
    with pytest.warns(FCSWarning, match="cannot be parsed as a spillover matrix"):
        sample = read_fcs(path)
    assert sample.spillover is None
    with pytest.raises(FCSError, match=f"{path.name}: \\$SPILLOVER cannot be parsed.*compensation: file"):
        load_template(TEMPLATE).apply(sample)


def test_a_damaged_file_in_a_batch_is_its_own_error_and_the_rest_are_analysed(tmp_path):
    """A $SPILLOVER count of inf raised an OverflowError out of the reader: the run lost every file."""
    from cytokit import Experiment

    folder = tmp_path / "fcs"
    folder.mkdir()
    for source in (REPO / "sample_fcs" / "modern").glob("CLL001_*.fcs"):
        (folder / source.name).write_bytes(source.read_bytes())
    data = (folder / "CLL001_C2D8_stained.fcs").read_bytes()  # the TEXT's length kept: $CYT 2 bytes shorter
    assert b"$CYT/LSRFortessa/" in data
    (folder / "CLL001_C2D8_stained.fcs").write_bytes(
        data.replace(b"$SPILLOVER/4,", b"$SPILLOVER/inf,").replace(b"$CYT/LSRFortessa/", b"$CYT/LSRFortes/"))
    res = Experiment.from_folder(folder, template=TEMPLATE).run()
    status = res.samples.set_index("file")["status"]
    assert status["CLL001_C2D8_stained.fcs"] == "error"
    assert "cannot be parsed as a spillover matrix" in res.samples.set_index("file").at["CLL001_C2D8_stained.fcs",
                                                                                          "error"]
    assert (status.drop("CLL001_C2D8_stained.fcs") != "error").all()


def test_an_unexpected_reader_error_fails_its_file_only(tmp_path, monkeypatch):
    from cytokit import Experiment, pipeline

    real = pipeline._read

    def broken(path):
        if path.endswith("CLL001_C2D1_isotype.fcs"):
            raise OverflowError("a reader bug")
        return real(path)

    monkeypatch.setattr(pipeline, "_read", broken)
    demo = REPO / "sample_fcs" / "modern"
    table = read_sample_sheet(demo / "samples.csv", folder=demo)
    samples = Experiment(table[table["patient"] == "CLL001"], TEMPLATE).run().samples.set_index("file")
    assert samples.at["CLL001_C2D1_isotype.fcs", "status"] == "error"
    assert "unexpected OverflowError while reading (a cytokit bug" in samples.at["CLL001_C2D1_isotype.fcs", "error"]
    assert samples.at["CLL001_C2D1_stained.fcs", "error"].startswith("its isotype tube CLL001_C2D1_isotype.fcs")
    assert (samples.loc[["CLL001_C2D8_isotype.fcs", "CLL001_C2D8_stained.fcs"], "status"] != "error").all()


@pytest.mark.parametrize("pne", ["inf,1", "-1,1", "400,1", "4,-1", "nan,1"])
def test_an_amplification_that_is_no_scale_is_an_error(tmp_path, pne):
    """$PnE 400,1 overflowed in the transform (a traceback); inf and a negative offset read as garbage."""
    path = tmp_path / "x.fcs"
    path.write_bytes(build_fcs(RNG.uniform(1, 1000, (20, 2)), datatype="I", bits=16, ranges=[1024, 1024],
                               keywords={"$P2E": pne}))
    with pytest.raises(FCSError, match=f"x.fcs: \\$P2E = '{pne}' for 'CH2' is no amplification"):
        read_fcs(path)


def test_data_beyond_tot_events_is_a_quality_flag(tmp_path):
    """$PAR 7 of 8 channels (or $TOT half the events) read the events misaligned, reported as ok."""
    from cytokit.quality import noting_misreads, quality_flags

    values = RNG.uniform(1, 1000, (40, 2)).astype(np.float32)
    path = tmp_path / "x.fcs"
    path.write_bytes(build_fcs(values, keywords={"$TOT": "30"}))
    with noting_misreads(path) as notes:
        sample = read_fcs(path)
    assert notes == ["DATA segment is 320 bytes, 10 event(s) more than $TOT 30 × the event size use (240): "
                     "$TOT or $PAR may be wrong; $TOT events read"]
    sample.data_warnings = notes
    assert notes[0] in quality_flags(sample)
    with warnings.catch_warnings():  # a byte of padding is no misread
        warnings.simplefilter("ignore", FCSWarning)
        warnings.simplefilter("error", FCSDataWarning)
        path.write_bytes(build_fcs(values, data_end_extra=1))
        read_fcs(path)


def test_a_degenerate_channel_fails_the_gate_not_the_file():
    """A channel whose values differ below float resolution ($PnE 1,1e-10 with $PnR 0): NumPy's
    'Too many bins' ValueError escaped the gate (a traceback)."""
    from cytokit.gating.thresholds import DensityValleyGate

    events = pd.DataFrame({"x": 1e10 + RNG.normal(0, 1e-6, 500)})
    gate = DensityValleyGate(dim="x").fit(events)
    assert gate.failed_ and "the events allow no fit" in gate.failed_
    assert not gate.contains(events).any()


def test_a_dead_control_detector_gives_no_threshold(tmp_path):
    """The isotype's PE-A at one value for every event: LAG3 100 % positive, only rMFI flagged."""
    from cytokit.stats import quantify

    template = load_template(TEMPLATE)
    stained = read_fcs(STAINED)
    control = read_fcs(REPO / "sample_fcs" / "modern" / "CLL001_C2D8_isotype.fcs")
    control.events["PE-A"] = 100.0
    gated = template.apply(stained, control=(ctrl := template.apply(
        control, is_control=True, channels=template.resolve_channels(control, reference=template.resolve_channels(
            stained)))))
    rows = {r["marker"]: r for r in quantify(gated, ctrl, meta={"file": "s.fcs"},
                                              isotype_meta={"file": "iso.fcs", "stain": "isotype"})}
    assert np.isnan(rows["LAG3"]["threshold"]) and np.isnan(rows["LAG3"]["pct_pos"])
    assert "isotype iso.fcs: LAG3's detector PE-A holds one value in every event" in rows["LAG3"]["flag"]
    assert np.isfinite(rows["TNFa"]["pct_pos"])


def test_a_duplicate_channel_name_is_named_where_it_breaks_a_tube(tmp_path):
    """$P5N PE-A renamed FITC-A in the stained tube: the good isotype tube was blamed, the stained
    tube's error said only that its isotype failed."""
    from cytokit import Experiment

    folder = tmp_path / "fcs"
    folder.mkdir()
    for source in (REPO / "sample_fcs" / "modern").glob("CLL001_C2D8_*.fcs"):
        (folder / source.name).write_bytes(source.read_bytes())
    data = STAINED.read_bytes()
    (folder / STAINED.name).write_bytes(data.replace(b"$P5N/PE-A/", b"$P5N/FITC-A/").replace(
        b"$CYT/LSRFortessa/", b"$CYT/LSRFortes/"))
    errors = Experiment.from_folder(folder, template=TEMPLATE).run().samples.set_index("file")["error"]
    assert "CLL001_C2D8_stained.fcs, whose detectors a control tube takes, measures lag3 on FITC-A_2" in \
        errors["CLL001_C2D8_isotype.fcs"]
    assert errors["CLL001_C2D8_stained.fcs"].endswith(
        "(reading this file: duplicate channel name 'FITC-A' renamed 'FITC-A_2')")
