"""Tests of cytokit.fcs: every edge case is one line of a parametrised test, built as bytes."""

from __future__ import annotations

import warnings

import flowio
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cytokit
from cytokit import FCSError, read_fcs, write_fcs
from cytokit.fcs import FCSWarning, list_datasets

from .fcsbuilder import build_fcs, chain

RNG = np.random.default_rng(7)
INTS = RNG.integers(0, 1000, size=(50, 3))
FLOATS = RNG.normal(100, 30, size=(50, 3)).astype(np.float32)


def write(tmp_path, data: bytes, name="x.fcs"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("version", ["2.0", "3.0", "3.1", "3.2"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("datatype", ["F", "D"])
def test_float_data_every_version_and_byte_order(tmp_path, version, byteorder, datatype):
    path = write(tmp_path, build_fcs(FLOATS, version=version, byteorder=byteorder, datatype=datatype))
    sample = read_fcs(path)
    assert sample.version == version
    np.testing.assert_array_equal(sample.events.to_numpy(), FLOATS.astype(np.float64))
    assert list(sample.events.columns) == ["CH1", "CH2", "CH3"]


@pytest.mark.parametrize("bits", [8, 16, 24, 32, 64, [16, 32, 8], [24, 16, 8]])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_integer_widths(tmp_path, bits, byteorder):
    values = INTS % 250
    path = write(tmp_path, build_fcs(values, datatype="I", bits=bits, byteorder=byteorder))
    np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), values)


@pytest.mark.parametrize("bits", [10, 12])
def test_sub_byte_widths_are_stored_in_whole_bytes(tmp_path, bits):
    path = write(tmp_path, build_fcs(INTS, datatype="I", bits=bits, ranges=[1024] * 3))
    np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), INTS)


def test_high_bits_above_range_are_masked(tmp_path):
    junk = INTS + (0b101 << 10)  # bits above $PnR = 1024 set, as Beckman files do
    path = write(tmp_path, build_fcs(junk, datatype="I", bits=16, ranges=[1024] * 3))
    np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), INTS)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_block_and_threaded_decoding_masks_each_column(tmp_path, monkeypatch, threads, byteorder):
    from cytokit.fcs import _data

    monkeypatch.setattr(_data, "_BLOCK", 64)  # many blocks and a short last one
    monkeypatch.setattr(_data, "_THREADED", 1024)  # threads even for this small file
    rng = np.random.default_rng(1)
    values = rng.integers(0, 1024, size=(1001, 3))
    junk = values | (rng.integers(0, 64, size=values.shape) << 10)
    expected = values.copy()
    expected[:, 2] = junk[:, 2]  # $PnR 65536 keeps all 16 bits
    path = write(tmp_path, build_fcs(junk, datatype="I", bits=16, byteorder=byteorder, ranges=[1024, 1024, 65536]))
    events = read_fcs(path, threads=threads).events
    assert (events.dtypes == np.float32).all()
    np.testing.assert_array_equal(events.to_numpy(), expected)


@pytest.mark.parametrize("datatype", ["F", "D"])
def test_block_and_threaded_decoding_of_big_endian_floats(tmp_path, monkeypatch, datatype):
    from cytokit.fcs import _data

    monkeypatch.setattr(_data, "_BLOCK", 100)
    monkeypatch.setattr(_data, "_THREADED", 1024)
    values = np.random.default_rng(2).lognormal(5, 2, size=(777, 4)).astype(np.float32 if datatype == "F" else float)
    path = write(tmp_path, build_fcs(values, datatype=datatype, byteorder=">"))
    for threads in (1, 2):
        events = read_fcs(path, threads=threads).events
        assert events.dtypes.iloc[0] == values.dtype
        np.testing.assert_array_equal(events.to_numpy(), values)


def _read_in_forked_child(path, queue):
    queue.put(read_fcs(path, threads=2).events.to_numpy().sum())


def test_threaded_decoding_works_in_a_forked_child(tmp_path, monkeypatch):
    """The decoding threads start once per process; a child forked after they started has none."""
    import multiprocessing

    from cytokit.fcs import _data

    monkeypatch.setattr(_data, "_THREADED", 16)  # threads even for these 300 bytes
    path = write(tmp_path, build_fcs(INTS, datatype="I", bits=16, byteorder=">"))
    expected = read_fcs(path, threads=2).events.to_numpy().sum()  # starts the parent's threads
    assert _data._POOL is not None
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_forked_child, args=(path, queue))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("read_fcs hung in a forked child")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == expected


def test_non_power_of_two_range_masks_to_enough_bits(tmp_path):
    values = np.array([[8265081], [15691602]])
    path = write(tmp_path, build_fcs(values | (1 << 30), datatype="I", bits=32, ranges=[11209599]))
    assert read_fcs(path).events.iloc[:, 0].tolist() == [8265081, 15691602]


def test_log_amplified_channels_are_decoded(tmp_path):
    channels = np.array([[0, 0, 512], [1023, 256, 0]])
    kw = {"$P1E": "4,0", "$P2E": "4,1", "$P3E": "0,0", "$P3G": "2"}
    path = write(tmp_path, build_fcs(channels, datatype="I", bits=16, ranges=[1024] * 3, keywords=kw, version="2.0"))
    events = read_fcs(path).events.to_numpy()
    np.testing.assert_allclose(events[:, 0], 10 ** (4 * channels[:, 0] / 1024))  # f2 = 0 read as 1
    np.testing.assert_allclose(events[:, 1], 10 ** (4 * channels[:, 1] / 1024))
    np.testing.assert_allclose(events[:, 2], channels[:, 2] / 2)  # linear: divided by gain


def test_float_data_with_log_flag_are_kept_as_stored(tmp_path):
    path = write(tmp_path, build_fcs(FLOATS, keywords={"$P1E": "4,1", "$P1G": "3"}))
    np.testing.assert_array_equal(read_fcs(path).events["CH1"], FLOATS[:, 0])


def test_time_channel_uses_timestep_not_gain(tmp_path):
    values = np.arange(12, dtype=float).reshape(4, 3)
    kw = {"$TIMESTEP": "0.01", "$P3G": "0.01"}
    path = write(tmp_path, build_fcs(values, names=["FSC-A", "SSC-A", "Time"], keywords=kw, datatype="D"))
    np.testing.assert_allclose(read_fcs(path).events["Time"], values[:, 2] * 0.01)


def test_non_numeric_timestep_warns_and_keeps_channel_units(tmp_path):
    values = np.arange(6, dtype=float).reshape(2, 3)
    path = write(tmp_path, build_fcs(values, names=["A", "B", "Time"], keywords={"$TIMESTEP": "xxx"}, datatype="D"))
    with pytest.warns(FCSWarning, match="TIMESTEP"):
        assert read_fcs(path).events["Time"].tolist() == [2.0, 5.0]


@pytest.mark.parametrize(
    ("key", "message"), [("$P1R", "channel .CH1. is not masked"), ("$P1G", "gain 1 used for .CH1.")]
)
def test_non_numeric_range_or_gain_warns_and_reads_unscaled(tmp_path, key, message):
    values = np.array([[5, 7], [1000, 3]])
    path = write(tmp_path, build_fcs(values, datatype="I", bits=16, ranges=[1024, 1024], keywords={key: "n/a"}))
    with pytest.warns(FCSWarning, match=rf"\{key} = 'n/a' is not a number; {message}"):
        np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), values)


@pytest.mark.parametrize("delimiter", ["/", "\\", "|", "\x0c", ","])
def test_any_delimiter_and_escaped_delimiters(tmp_path, delimiter):
    kw = {"$P1S": f"GFP{delimiter}FITC-A", "$FIL": f"a{delimiter}{delimiter}b"}
    path = write(tmp_path, build_fcs(FLOATS, delimiter=delimiter, keywords=kw))
    sample = read_fcs(path)
    assert sample.keywords["$P1S"] == f"GFP{delimiter}FITC-A"
    assert sample.keywords["$FIL"] == f"a{delimiter}{delimiter}b"
    np.testing.assert_array_equal(sample.events.to_numpy(), FLOATS)


@pytest.mark.parametrize("key_case,pad", [("lower", False), ("upper", True), ("lower", True)])
def test_keywords_in_any_case_or_padded(tmp_path, key_case, pad):
    path = write(tmp_path, build_fcs(FLOATS, key_case=key_case, pad_keys=pad, keywords={"$CYT": "Aria"}))
    sample = read_fcs(path)
    assert sample.keywords["$CYT"] == "Aria"
    assert sample.n_events == 50


def test_blank_header_offsets_use_begindata(tmp_path):
    path = write(tmp_path, build_fcs(FLOATS, header_offsets="blank"))
    np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), FLOATS)


def test_data_end_one_past_end_of_file_reads_with_warning(tmp_path):
    path = write(tmp_path, build_fcs(FLOATS, data_end_extra=1))
    with pytest.warns(FCSWarning, match="one byte past"):
        np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), FLOATS)


def test_offset_disagreement_resolved_by_event_size(tmp_path):
    path = write(tmp_path, build_fcs(FLOATS, header_data_shift=-40))
    with pytest.warns(FCSWarning, match="disagree"):
        np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), FLOATS)


def test_offset_disagreement_without_consistent_side_is_rejected(tmp_path):
    data = build_fcs(FLOATS, header_data_shift=-40, keywords={"$TOT": "49"})
    with pytest.raises(FCSError, match="disagree"):
        read_fcs(write(tmp_path, data))


def test_truncated_file_names_file_and_bytes(tmp_path):
    data = build_fcs(FLOATS)
    path = write(tmp_path, data[:-100], "cut.fcs")
    with pytest.raises(FCSError, match=r"cut\.fcs: DATA segment ends at byte \d+ but the file has \d+ bytes"):
        read_fcs(path)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty file \\(0 bytes\\): not an FCS file"),
        (b"hello world, not fcs", "not an FCS file"),
        (b"FCS1.0    " + b"0" * 48, "not supported"),
        (b"FCS3.1    " + b"     abc" * 6, "not a number"),
    ],
)
def test_garbage_is_rejected_with_reason(tmp_path, data, message):
    with pytest.raises(FCSError, match=message):
        read_fcs(write(tmp_path, data))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"drop": ("$PAR",)}, r"\$PAR"),
        ({"keywords": {"$DATATYPE": "Q"}}, "DATATYPE"),
        ({"keywords": {"$BYTEORD": "3,4,1,2"}}, "BYTEORD"),
        ({"keywords": {"$MODE": "C"}}, "list-mode"),
        ({"keywords": {"$P2B": "abc"}}, r"\$P2B"),
        ({"keywords": {"$TOT": "1000"}}, "truncated|disagree|need"),
    ],
)
def test_malformed_keywords_are_rejected(tmp_path, change, message):
    with pytest.raises(FCSError, match=message):
        read_fcs(write(tmp_path, build_fcs(FLOATS, **change)))


def test_missing_file_is_an_fcs_error(tmp_path):
    with pytest.raises(FCSError, match="cannot open"):
        read_fcs(tmp_path / "absent.fcs")


def test_fcs2_without_tot_derives_event_count(tmp_path):
    path = write(tmp_path, build_fcs(INTS, datatype="I", bits=16, version="2.0", drop=("$TOT",)))
    assert read_fcs(path).n_events == 50


def test_supplemental_text_is_merged(tmp_path):
    base = build_fcs(FLOATS, keywords={"$BEGINSTEXT": "00000000", "$ENDSTEXT": "00000000"})
    stext = b"/EXTRA/yes/$CYT/Canto/"
    begin = len(base)
    data = base.replace(b"$BEGINSTEXT/00000000", f"$BEGINSTEXT/{begin:08d}".encode()).replace(
        b"$ENDSTEXT/00000000", f"$ENDSTEXT/{begin + len(stext) - 1:08d}".encode()
    )
    sample = read_fcs(write(tmp_path, data + stext))
    assert sample.keywords["EXTRA"] == "yes"
    assert sample.keywords["$CYT"] == "Canto"


def test_nextdata_chain(tmp_path):
    first = build_fcs(FLOATS, nextdata="00000000")
    second = build_fcs(INTS, datatype="I", bits=16, version="3.0")
    path = write(tmp_path, chain(first, second))
    table = list_datasets(path)
    assert table["n_events"].tolist() == [50, 50]
    assert table["version"].tolist() == ["3.1", "3.0"]
    np.testing.assert_array_equal(read_fcs(path, dataset=1).events.to_numpy(), INTS)
    np.testing.assert_array_equal(read_fcs(path).events.to_numpy(), FLOATS)
    with pytest.raises(FCSError, match="data set 2 requested but the file has 2"):
        read_fcs(path, dataset=2)


@pytest.mark.parametrize(
    "key,value",
    [
        ("$SPILLOVER", "2,CH1,CH2,1,0.1,0.2,1"),
        ("$SPILL", "2,CH1,CH2,1,0.1,0.2,1"),
        ("SPILL", "2,CH1,CH2,1,0.1,0.2,1"),
        ("$COMP", "2,1,0.1,0.2,1"),
    ],
)
def test_spillover_keywords(tmp_path, key, value):
    sample = read_fcs(write(tmp_path, build_fcs(FLOATS, keywords={key: value})))
    assert list(sample.spillover.columns) == ["CH1", "CH2"]
    np.testing.assert_array_equal(sample.spillover.to_numpy(), [[1, 0.1], [0.2, 1]])


def test_beckman_dfc_spillover_counts_detectors_not_parameters(tmp_path):
    # a Navios file: FL1 is the second parameter, and the keywords run to FL10 of 3 parameters
    names = ["FS INT LIN", "FL1 INT LOG", "FL2 INT LOG"]
    dfc = {f"$DFC{i}TO{j}": "0.0" for i in range(1, 11) for j in range(1, 11)} | {"$DFC1TO2": "12.5",
                                                                                 "$DFC2TO1": "1.5"}
    sample = read_fcs(write(tmp_path, build_fcs(FLOATS, names=names, keywords=dfc)))
    assert list(sample.spillover.columns) == ["FL1 INT LOG", "FL2 INT LOG"]
    np.testing.assert_allclose(sample.spillover.to_numpy(), [[1, 0.125], [0.015, 1]])


def test_beckman_dfc_spillover_links_one_amplification(tmp_path):
    # an FC 500 records FL1 and FL3 log- and linear-amplified: FL1 -> FL3 links Log to Log, Lin to Lin
    names = ["FL1 Log", "FL1 Lin", "FL3 Lin", "FL3 Log"]
    values = RNG.normal(100, 30, size=(50, 4)).astype(np.float32)
    sample = read_fcs(write(tmp_path, build_fcs(values, names=names, keywords={"$DFC1TO3": "28.4"})))
    s = sample.spillover
    assert s.loc["FL1 Log", "FL3 Log"] == s.loc["FL1 Lin", "FL3 Lin"] == pytest.approx(0.284)
    assert s.loc["FL1 Log", "FL3 Lin"] == s.loc["FL1 Lin", "FL3 Log"] == 0


def test_beckman_dfc_spillover_from_an_unrecorded_detector_is_refused(tmp_path):
    names = ["FL1 INT LOG", "FL2 INT LOG", "FS INT LIN"]
    path = write(tmp_path, build_fcs(FLOATS, names=names, keywords={"$DFC5TO2": "3.0", "$DFC1TO9": "4"}))
    with pytest.warns(FCSWarning, match=r"\$DFC5TO2 = 3 %: no parameter of detector FL5"):
        sample = read_fcs(path)
    assert sample.spillover is None  # and compensation: file refuses it (unreadable_spillover)


def test_no_spillover_is_none(tmp_path):
    assert read_fcs(write(tmp_path, build_fcs(FLOATS))).spillover is None


def test_sample_metadata(tmp_path):
    kw = {"$P1S": "CD19 FITC", "$P2G": "2"}
    path = write(tmp_path, build_fcs(FLOATS, keywords=kw))
    sample = read_fcs(path)
    assert list(sample.channels.columns) == ["pnn", "pns", "bits", "range", "decades", "offset", "gain"]
    assert sample.channels.loc[0, "pns"] == "CD19 FITC"
    assert sample.channels.loc[1, "gain"] == 2
    import hashlib

    assert sample.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sample.path == path
    assert sample.channel("cd19 fitc") == "CH1"
    with pytest.raises(cytokit.ChannelNotFoundError, match="no channel named 'CD3'"):
        sample.channel("CD3")


def test_duplicate_channel_names_are_made_unique(tmp_path):
    path = write(tmp_path, build_fcs(FLOATS, names=["A", "A", "B"]))
    with pytest.warns(FCSWarning, match="duplicate"):
        assert list(read_fcs(path).events.columns) == ["A", "A_2", "B"]


def test_empty_data_set(tmp_path):
    path = write(tmp_path, build_fcs(np.zeros((0, 2))))
    assert read_fcs(path).n_events == 0


# ------------------------------------------------------------------ writer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_write_read_roundtrip_with_flowio_and_flowkit(tmp_path, dtype):
    import flowkit

    events = pd.DataFrame(RNG.normal(1000, 300, size=(200, 3)).astype(dtype), columns=["FSC-A", "FITC-A", "PE-A"])
    spill = pd.DataFrame([[1, 0.2], [0.05, 1]], index=["FITC-A", "PE-A"], columns=["FITC-A", "PE-A"])
    path = write_fcs(tmp_path / "w.fcs", events, markers={"FITC-A": "CD19", "PE-A": "LAG3/x"}, spillover=spill)
    sample = read_fcs(path)
    assert sample.version == "3.1"
    np.testing.assert_array_equal(sample.events.to_numpy(), events.to_numpy())
    assert sample.markers == {"FITC-A": "CD19", "PE-A": "LAG3/x"}
    pd.testing.assert_frame_equal(sample.spillover, spill.astype(float))
    fio = flowio.FlowData(str(path))
    np.testing.assert_array_equal(np.reshape(fio.events, (-1, 3)), events.to_numpy())
    fk = flowkit.Sample(str(path)).as_dataframe(source="raw")
    np.testing.assert_array_equal(fk.to_numpy(), events.to_numpy())


def test_write_sample_roundtrip_keeps_keywords(tmp_path):
    path = write_fcs(tmp_path / "a.fcs", pd.DataFrame({"X": [1.0, 2.0]}), keywords={"$CYT": "Sim"})
    again = write_fcs(tmp_path / "b.fcs", read_fcs(path))
    sample = read_fcs(again)
    assert sample.keywords["$CYT"] == "Sim"
    assert sample.events["X"].tolist() == [1.0, 2.0]


def test_write_fcs2_integers_big_endian(tmp_path):
    values = pd.DataFrame({"FSC-H": [0, 512, 1023], "FL1-H": [0, 256, 1023]})
    path = write_fcs(
        tmp_path / "c.fcs", values, version="2.0", datatype="I", bits=16, byteorder=">",
        keywords={"$P1R": "1024", "$P2R": "1024", "$P2E": "4,0"},
    )
    sample = read_fcs(path)
    assert sample.version == "2.0"
    assert sample.events["FSC-H"].tolist() == [0, 512, 1023]
    np.testing.assert_allclose(sample.events["FL1-H"], 10 ** (4 * values["FL1-H"] / 1024))
    assert flowio.FlowData(str(path)).text["byteord"] == "4,3,2,1"


def test_write_is_atomic_on_error(tmp_path):
    target = tmp_path / "keep.fcs"
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        write_fcs(target, pd.DataFrame({"A": [1.0]}), datatype="Z")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


# ------------------------------------------------------------------ fuzzing

_VALID = [
    build_fcs(FLOATS[:5]),
    build_fcs(INTS[:5], datatype="I", bits=[16, 32, 8], byteorder=">", version="2.0"),
    build_fcs(INTS[:5], datatype="I", bits=24, keywords={"$P1E": "4,0"}, ranges=[1024] * 3),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.sampled_from(_VALID),
    cut=st.integers(min_value=0, max_value=2000),
    flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
)
def test_mutated_and_truncated_files_raise_only_fcs_error(tmp_path, base, cut, flips):
    data = bytearray(base[: max(cut, 0)] if cut < len(base) else base)
    for pos, byte in flips:
        if pos < len(data):
            data[pos] = byte
    path = tmp_path / "fuzz.fcs"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FCSWarning)
        try:
            sample = read_fcs(path)
        except FCSError:
            return
    assert sample.events.shape[1] == len(sample.channels)


# ------------------------------------------------------------------ writing a sample read back


def _rewrite(tmp_path, sample):
    return read_fcs(write_fcs(tmp_path / "again.fcs", sample))


def test_write_sample_roundtrip_keeps_ranges_and_values(tmp_path):
    values = INTS % 600  # well below $PnR: the data maximum is not the range
    kw = {"$P2G": "2", "$P3E": "4,1"}
    data = build_fcs(values, datatype="I", bits=16, ranges=[1024] * 3, keywords=kw)
    first = read_fcs(write(tmp_path, data))
    again = _rewrite(tmp_path, first)
    pd.testing.assert_frame_equal(again.events, first.events)
    assert again.keywords["$P1R"] == "1024"
    assert again.channels["range"].tolist() == [1024, 1024, 10_000]  # a log channel: its top of scale
    assert "$P2G" not in again.keywords and again.keywords["$P3E"] == "0,0"


@pytest.mark.parametrize(
    "datatype,steps", [("I", np.arange(50) * 37), ("D", np.arange(50) * 0.37), ("F", np.arange(50) * 1e-3)]
)
def test_write_sample_roundtrip_keeps_timestep_and_time(tmp_path, datatype, steps):
    values = np.column_stack([INTS[:, :2], steps])
    data = build_fcs(values, names=["FSC-A", "SSC-A", "Time"], datatype=datatype, bits=32,
                     ranges=[262144] * 3, keywords={"$TIMESTEP": "0.01"})
    first = read_fcs(write(tmp_path, data))
    again = _rewrite(tmp_path, first)
    assert again.keywords["$TIMESTEP"] == "0.01"
    np.testing.assert_array_equal(again.events["Time"], first.events["Time"])
    assert again.keywords["$P3R"] == "262144"


def test_write_sample_with_time_not_in_steps_drops_timestep(tmp_path):
    data = build_fcs(INTS, names=["A", "B", "Time"], datatype="I", keywords={"$TIMESTEP": "0.01"})
    sample = read_fcs(write(tmp_path, data))
    sample.events["Time"] = 0.007  # no float64 times 0.01 gives it exactly
    again = _rewrite(tmp_path, sample)
    assert "$TIMESTEP" not in again.keywords
    assert again.events["Time"].tolist() == [0.007] * 50


def test_write_sample_keeps_channel_keywords_with_their_channel(tmp_path):
    kw = {"$P1V": "400", "$P2V": "500", "P2DISPLAY": "LOG", "$CYT": "Canto", "$P2DATATYPE": "F"}
    sample = read_fcs(write(tmp_path, build_fcs(FLOATS, keywords=kw)))
    sample.events = sample.events[["CH3", "CH2"]]
    again = read_fcs(write_fcs(tmp_path / "two.fcs", sample))
    assert again.keywords["$CYT"] == "Canto"
    assert again.keywords["$P2V"] == "500" and again.keywords["P2DISPLAY"] == "LOG"
    assert "$P1V" not in again.keywords and "$P2DATATYPE" not in again.keywords


# --------------------------------------------------------------------------- hostile input (issue items 4-14)


@pytest.mark.parametrize("begin", ["100", "20"])  # inside the TEXT; inside the HEADER
def test_data_overlapping_header_or_text_is_rejected(tmp_path, begin):
    """Item 4: $BEGINDATA 100 with HEADER DATA offsets 0 read TEXT bytes as events and said ok."""
    data = build_fcs(FLOATS, header_offsets="zero", text_offsets=False,
                     keywords={"$BEGINDATA": begin, "$ENDDATA": "2000000000"})
    with pytest.raises(FCSError, match=r"x\.fcs: \$BEGINDATA/\$ENDDATA .* over the (TEXT|HEADER)"):
        read_fcs(write(tmp_path, data))


def test_supplemental_text_overlapping_data_is_ignored(tmp_path):
    """Item 4: a supplemental TEXT inside DATA parsed event bytes as keywords."""
    placeholder = {"$BEGINSTEXT": "00000000", "$ENDSTEXT": "00000000"}
    data = build_fcs(FLOATS, keywords=placeholder)
    data_begin = int(data[26:34])
    data = data.replace(b"/$BEGINSTEXT/00000000/$ENDSTEXT/00000000/",
                        f"/$BEGINSTEXT/{data_begin:08d}/$ENDSTEXT/{data_begin + 300:08d}/".encode())
    with pytest.warns(FCSWarning, match="supplemental TEXT .* overlaps"):
        sample = read_fcs(write(tmp_path, data))
    np.testing.assert_array_equal(sample.events.to_numpy(), FLOATS)


def test_cellquest_empty_values_keep_the_next_keyword(tmp_path):
    """Item 5: CellQuest's "\\$P1S\\\\$P2S\\\\$P3N\\FL1-A\\": $P1S and $P2S are empty, channel 3 is FL1-A."""
    data = build_fcs(INTS, names=["FSC-H", "SSC-H", "FL1-A"], version="2.0", datatype="I", delimiter="\\",
                     keywords={"$P1S": "", "$P2S": "", "$FIL": "a\\b"})
    # Move "$P3N\FL1-A\" behind the empty values: same length, so every offset still holds.
    moved = b"$P3N\\FL1-A\\"
    assert data.count(moved) == 1
    data = data.replace(moved, b"").replace(b"$P2S\\\\", b"$P2S\\\\" + moved)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FCSWarning)
        sample = read_fcs(write(tmp_path, data))
    assert list(sample.channels.pnn) == ["FSC-H", "SSC-H", "FL1-A"]
    assert sample.keywords["$P1S"] == "" and sample.keywords["$P2S"] == ""
    assert sample.keywords["$FIL"] == "a\\b"  # a doubled delimiter inside a value is still an escaped one
    np.testing.assert_array_equal(sample.events.to_numpy(), INTS)


@pytest.mark.parametrize("value", [-5, 70000, 3.7, np.nan])
def test_write_integers_refuses_what_the_type_cannot_hold(tmp_path, value):
    """Item 6: -5 was written as 65531, 70000 as 4464, 3.7 as 3."""
    df = pd.DataFrame({"FSC-A": [1.0, 2.0], "CD19": [10.0, value]})
    with pytest.raises(ValueError, match="'CD19'"):
        write_fcs(tmp_path / "x.fcs", df, datatype="I", bits=16)
    assert not (tmp_path / "x.fcs").exists()
    write_fcs(tmp_path / "ok.fcs", df.fillna(0).clip(0, 65535).round(), datatype="I", bits=16)


def test_write_dataframe_range_is_not_its_maximum(tmp_path):
    """Item 6: $PnR was the column's maximum, so the next read flagged its top events as saturated."""
    from cytokit.quality import saturated_fraction

    df = pd.DataFrame({"FSC-A": np.linspace(0, 1000, 50), "CD19": np.full(50, 262144.0)})
    sample = read_fcs(write_fcs(tmp_path / "x.fcs", df))
    assert sample.keywords["$P1R"] == "262144" and sample.keywords["$P2R"] == "524288"
    assert saturated_fraction(sample) == 0
    given = read_fcs(write_fcs(tmp_path / "r.fcs", df, ranges={"FSC-A": 1024}))
    assert given.keywords["$P1R"] == "1024"
    ints = read_fcs(write_fcs(tmp_path / "i.fcs", df.clip(0, 1000).round(), datatype="I", bits=16))
    assert ints.keywords["$P1R"] == ints.keywords["$P2R"] == "65536"
    with pytest.raises(ValueError, match="'FSC-A'.*masks"):
        write_fcs(tmp_path / "m.fcs", df.clip(0, 1000).round(), datatype="I", ranges={"FSC-A": 256})


@pytest.mark.parametrize("rng", ["inf", "nan", "1e400", "-inf"])
def test_non_finite_range_in_integer_file_warns_and_reads(tmp_path, rng):
    """Item 10: $PnR = inf raised OverflowError; like a $PnR that is no number, it is read unmasked."""
    data = build_fcs(INTS, datatype="I", ranges=[rng, 1024, 1024])
    with pytest.warns(FCSWarning, match=r"\$P1R = '.*' for channel 'CH1' is not a finite number"):
        sample = read_fcs(write(tmp_path, data))
    np.testing.assert_array_equal(sample.events.to_numpy(), INTS)
    assert sample.channels.range[0] == 0


@pytest.mark.parametrize("matrix", ["1,1,1,1", "1,nan,0,1"])
def test_singular_or_nan_spillover_is_the_files_error(tmp_path, matrix):
    """Item 14: a singular $SPILLOVER failed compensation with a plain ValueError ("a cytokit bug")."""
    from cytokit.compensation import compensate

    data = build_fcs(FLOATS, keywords={"$SPILLOVER": f"2,CH1,CH2,{matrix}"})
    with pytest.warns(FCSWarning, match=r"spill\.fcs: \$SPILLOVER: spillover matrix .*(singular|NaN)"):
        sample = read_fcs(write(tmp_path, data, "spill.fcs"))
    with pytest.raises(FCSError, match=r"spill\.fcs: \$SPILLOVER: spillover matrix .*(singular|NaN)"):
        compensate(sample.events, sample.spillover)


def test_run_reports_a_singular_spillover_as_the_files_problem(tmp_path):
    """Item 14: `cytokit run` put "a cytokit bug; please report it" in the file's row."""
    from pathlib import Path

    from cytokit.pipeline import analyse_group

    repo = Path(__file__).resolve().parents[1]
    rows = []
    for tp in ("C2D1", "C2D8"):
        for stain in ("isotype", "stained"):
            name = f"CLL001_{tp}_{stain}.fcs"
            path = repo / "sample_fcs" / "modern" / name
            if name == "CLL001_C2D8_stained.fcs":
                sample = read_fcs(path)
                bad = sample.spillover.copy()
                bad.iloc[1] = bad.iloc[0]
                path = write_fcs(tmp_path / name, sample, spillover=bad)
            rows.append({"file": name, "patient": "CLL001", "timepoint": tp, "stain": stain,
                         "path": str(path)})
    template = repo / "gating_templates" / "cll_cd19_7aad.yaml"
    out = analyse_group(rows, template, pairing=("C2D1", "C2D8"))
    status = {r["file"]: (r["status"], r["error"]) for r in out.samples.to_dict("records")}
    state, error = status["CLL001_C2D8_stained.fcs"]
    assert state == "error" and "CLL001_C2D8_stained.fcs: $SPILLOVER" in error and "singular" in error
    assert "cytokit bug" not in error


def test_long_binary_values_are_cut_in_warnings(tmp_path):
    """A binary keyword value printed 300 characters into a warning."""
    blob = "".join(chr(c) for c in range(33, 127)) * 4
    data = build_fcs(FLOATS, keywords={"$P1E": blob, "$TIMESTEP": blob})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_fcs(write(tmp_path, data))
    messages = [str(w.message) for w in caught if issubclass(w.category, FCSWarning)]
    assert messages and all(len(m) < len(str(tmp_path)) + 160 for m in messages), messages
    assert any("…" in m for m in messages)
