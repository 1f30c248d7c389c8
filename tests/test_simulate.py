"""Tests of cytokit.simulate: determinism, readability by three readers, truth, gating feasibility."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cytokit import read_fcs
from cytokit.cli import main
from cytokit.simulate import CLASSES, LAYOUTS, SPILLOVER, read_labels, simulate_cohort

PATIENTS = 6
EVENTS = 2000


@pytest.fixture(scope="module", params=LAYOUTS)
def cohort(request, tmp_path_factory) -> Path:
    """A small cohort per layout; returns the sample sheet."""
    out = tmp_path_factory.mktemp(request.param)
    return simulate_cohort(out, patients=PATIENTS, events=EVENTS, layout=request.param, seed=3)


@pytest.fixture(scope="module")
def modern(tmp_path_factory) -> Path:
    """A small modern-layout cohort, for the features only that layout has."""
    return simulate_cohort(tmp_path_factory.mktemp("modern_only"), patients=PATIENTS, events=EVENTS,
                           layout="modern", seed=3)


def _files(sheet: Path) -> list[Path]:
    return [sheet.parent / f for f in pd.read_csv(sheet)["file"]]


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- determinism and layout -------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_same_seed_gives_same_bytes(tmp_path, layout):
    first = simulate_cohort(tmp_path / "a", patients=2, events=300, layout=layout, seed=11).parent
    second = simulate_cohort(tmp_path / "b", patients=2, events=300, layout=layout, seed=11).parent
    other = simulate_cohort(tmp_path / "c", patients=2, events=300, layout=layout, seed=12).parent
    digests = _digests(first)
    assert len(digests) == 2 + 2 * 8  # sheet, truth.csv, 8 FCS files and their labels
    assert digests == _digests(second)
    assert digests["CLL001_C2D1_stained.fcs"] != _digests(other)["CLL001_C2D1_stained.fcs"]


def test_planted_fractions_do_not_depend_on_layout(tmp_path):
    truths = [
        pd.read_csv(simulate_cohort(tmp_path / layout, patients=2, events=200, layout=layout).parent / "truth.csv")
        for layout in LAYOUTS
    ]
    pd.testing.assert_series_equal(truths[0]["planted_pct_pos"], truths[1]["planted_pct_pos"])


def test_sample_sheet_lists_every_fcs_file(cohort):
    sheet = pd.read_csv(cohort)
    assert list(sheet.columns) == ["file", "patient", "timepoint", "stain"]
    assert len(sheet) == 4 * PATIENTS
    assert set(sheet["stain"]) == {"isotype", "stained"}
    assert set(sheet["timepoint"]) == {"C2D1", "C2D8"}
    assert sorted(p.name for p in cohort.parent.glob("*.fcs")) == sorted(sheet["file"])
    for row in sheet.itertuples():
        assert row.file == f"{row.patient}_{row.timepoint}_{row.stain}.fcs"
        assert (cohort.parent / "truth" / f"{Path(row.file).stem}.labels.csv.gz").is_file()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        simulate_cohort(tmp_path, layout="aria")
    with pytest.raises(ValueError, match="patients"):
        simulate_cohort(tmp_path, patients=0)


def test_more_timepoints_and_a_response_column(tmp_path):
    """Issue 19: any number of timepoints, each later one changing from the one before (responders
    rise), and a response column for --group-by; a cohort's first patient is planted alike at its
    first two timepoints whatever the later ones."""
    from cytokit.simulate import CohortDesign

    timepoints = ("C1D1", "C1D8", "C2D1", "C2D8")
    sheet = simulate_cohort(tmp_path / "four", patients=4, events=300, timepoints=timepoints, response=True,
                            design=CohortDesign(nonresponder_share=0.5))
    table = pd.read_csv(sheet)
    assert list(table.columns) == ["file", "patient", "timepoint", "stain", "response"]
    assert len(table) == 4 * 4 * 2 and list(dict.fromkeys(table["timepoint"])) == list(timepoints)
    assert sorted(p.name for p in sheet.parent.glob("*.fcs")) == sorted(table["file"])
    truth = pd.read_csv(sheet.parent / "truth.csv")
    stained = truth[truth["stain"] == "stained"]
    assert (table.drop_duplicates("patient").set_index("patient")["response"]
            == stained.drop_duplicates("patient").set_index("patient")["responder"].map(
                {True: "responder", False: "non-responder"})).all()
    assert stained.drop_duplicates("patient")["responder"].sum() == 2
    for (patient, marker), rows in stained.groupby(["patient", "marker"]):
        planted = rows.set_index("timepoint").loc[list(timepoints), "planted_pct_pos"].to_numpy()
        steps = np.diff(planted)
        if rows["responder"].iloc[0]:
            assert (steps > 1.5).all(), (patient, marker, planted)
        else:
            assert (np.abs(steps) <= 1.5 + 1e-3).all(), (patient, marker, planted)
    two = pd.read_csv(simulate_cohort(tmp_path / "two", patients=4, events=300, timepoints=timepoints[:2],
                                      design=CohortDesign(nonresponder_share=0.5)).parent / "truth.csv")
    first = truth[truth["timepoint"].isin(timepoints[:2]) & (truth["patient"] == "CLL001")].reset_index(drop=True)
    pd.testing.assert_series_equal(first["planted_pct_pos"], two.loc[two["patient"] == "CLL001", "planted_pct_pos"])


def test_the_default_cohort_is_planted_as_before_more_timepoints_existed(tmp_path):
    """Two timepoints draw what they always drew (values of cytokit before issue 19)."""
    truth = pd.read_csv(simulate_cohort(tmp_path, patients=2, events=200).parent / "truth.csv")
    stained = truth[truth["stain"] == "stained"]
    assert stained["planted_pct_pos"].tolist() == [18.292, 6.101, 17.362, 4.653, 18.066, 6.615, 27.346, 17.443]


@pytest.mark.parametrize("timepoints", [("C2D1",), ("C2D1", "c2d1"), ("C2_D1", "C2D8"), ("C2D1", "")])
def test_bad_timepoints_are_refused(tmp_path, timepoints):
    with pytest.raises(ValueError, match="timepoints must be at least two different labels"):
        simulate_cohort(tmp_path, patients=1, events=100, timepoints=timepoints)


def test_cli_simulate_writes_a_cohort(tmp_path, capsys):
    assert main(["simulate", str(tmp_path), "--patients", "1", "--events", "200", "--layout", "modern"]) == 0
    assert (tmp_path / "samples.csv").is_file()
    assert "samples.csv" in capsys.readouterr().out
    assert main(["simulate", str(tmp_path), "--patients", "0"]) == 2


# --- the FCS files as other tools see them ----------------------------------------------


def test_files_look_like_their_instrument(cohort):
    stained = read_fcs(cohort.parent / "CLL001_C2D1_stained.fcs")
    isotype = read_fcs(cohort.parent / "CLL001_C2D1_isotype.fcs")
    kw = stained.keywords
    if kw["$CYT"] == "FACSCalibur":
        assert stained.version == "2.0" and kw["$DATATYPE"] == "I" and kw["$BYTEORD"] == "4,3,2,1"
        assert list(stained.channels.pnn) == ["FSC-H", "SSC-H", "FL1-H", "FL2-H", "FL3-H", "FL4-H"]
        assert list(stained.channels.range) == [1024.0] * 6
        assert list(stained.channels.decades) == [0, 4, 4, 4, 4, 4]
        assert stained.markers == {"FL1-H": "CD19 FITC", "FL2-H": "LAG3 PE", "FL3-H": "7AAD", "FL4-H": "TNFa APC"}
        assert isotype.markers["FL2-H"] == "IgG1 PE" and isotype.markers["FL4-H"] == "IgG1 APC"
        assert stained.spillover is None
        for name in ("SSC-H", "FL1-H"):
            assert stained.events[name].between(1, 10**4).all()
    else:
        assert stained.version == "3.1" and kw["$DATATYPE"] == "F"
        assert list(stained.channels.pnn) == ["FSC-A", "FSC-H", "SSC-A", *SPILLOVER.columns, "Time"]
        assert set(stained.channels.range) == {262144.0}
        assert stained.markers == {"FITC-A": "CD19", "PE-A": "LAG3", "PerCP-Cy5-5-A": "7AAD", "APC-A": "TNFa"}
        assert isotype.markers["PE-A"] == isotype.markers["APC-A"] == "IgG1 isotype"
        pd.testing.assert_frame_equal(stained.spillover, SPILLOVER)
        assert float(kw["$TIMESTEP"]) == 0.01
        assert (np.diff(stained.events["Time"].to_numpy()) >= 0).all()


def test_modern_files_have_saturated_events(modern):
    saturated = sum(int((read_fcs(f).events["FSC-A"] == 262143).sum()) for f in _files(modern))
    assert 0 < saturated < 0.01 * EVENTS * len(_files(modern))


def test_flowio_and_flowkit_read_the_same_values(cohort):
    """Exact equality: all three readers apply the same scaling to the same stored numbers."""
    flowio = pytest.importorskip("flowio")
    flowkit = pytest.importorskip("flowkit")
    for path in _files(cohort)[:2]:
        ours = read_fcs(path)
        ours_values = ours.events.to_numpy(dtype=np.float64)
        flow_data = flowio.FlowData(str(path))
        stored = flow_data.as_array(preprocess=False)
        kit = flowkit.Sample(str(path)).get_events(source="raw")  # "raw" = scale values in FlowKit
        np.testing.assert_array_equal(kit, ours_values)
        np.testing.assert_array_equal(flow_data.as_array(preprocess=True), ours_values)
        if ours.version == "2.0":
            # Stored 10-bit channel numbers; log channels decode as 10 ** (4 x / 1024).
            assert stored.max() <= 1023 and np.array_equal(stored, np.round(stored))
            np.testing.assert_array_equal(ours_values[:, 0], stored[:, 0])
            np.testing.assert_array_equal(ours_values[:, 1:], 10.0 ** (4 * stored[:, 1:] / 1024))
        else:
            np.testing.assert_array_equal(stored[:, :-1], ours_values[:, :-1])


# --- truth ----------------------------------------------------------------------------


def test_labels_cover_every_event(cohort):
    for path in _files(cohort):
        labels = read_labels(path)
        counts = labels["cls"].value_counts()
        assert counts.sum() == EVENTS == read_fcs(path).n_events
        assert set(counts[counts > 0].index) <= set(CLASSES)
        has_doublets = counts["doublet"] > 0
        assert has_doublets == (read_fcs(path).version == "3.1")
        if path.stem.endswith("isotype"):
            assert not labels["lag3_pos"].any() and not labels["tnfa_pos"].any()
        # Labels are found next to the FCS file or given directly.
        pd.testing.assert_frame_equal(labels, read_labels(path.parent / "truth" / f"{path.stem}.labels.csv.gz"))


def _marker(sample, marker: str) -> np.ndarray:
    """Marker intensities, compensated when the file carries a spillover matrix."""
    if sample.spillover is None:
        return sample.events[{"LAG3": "FL2-H", "TNFa": "FL4-H"}[marker]].to_numpy()
    names = list(sample.spillover.columns)
    comp = sample.events[names].to_numpy(dtype=float) @ np.linalg.inv(sample.spillover.to_numpy())
    return comp[:, names.index({"LAG3": "PE-A", "TNFa": "APC-A"}[marker])]


def test_positive_cells_are_brighter_and_fractions_match_the_plan(cohort):
    truth = pd.read_csv(cohort.parent / "truth.csv")
    for row in truth[truth["stain"] == "stained"].itertuples():
        sample = read_fcs(cohort.parent / row.file)
        labels = read_labels(cohort.parent / row.file)
        cll = (labels["cls"] == "cll").to_numpy()
        positive = labels[{"LAG3": "lag3_pos", "TNFa": "tnfa_pos"}[row.marker]].to_numpy()
        values = _marker(sample, row.marker)
        assert values[cll & positive].mean() > 3 * values[cll & ~positive].mean()
        labelled = 100 * positive[cll].mean()
        assert labelled == pytest.approx(row.labelled_pct_pos, abs=1e-3)
        p = row.planted_pct_pos / 100
        sampling_sd = 100 * np.sqrt(p * (1 - p) / cll.sum())
        assert abs(labelled - row.planted_pct_pos) < 4.5 * sampling_sd + 0.1


def test_responders_and_non_responders_follow_the_design(cohort):
    truth = pd.read_csv(cohort.parent / "truth.csv")
    wide = truth[truth["stain"] == "stained"].pivot_table(
        index=["patient", "responder", "marker"], columns="timepoint", values="planted_pct_pos"
    ).reset_index()
    assert 1 <= (~wide["responder"]).sum() // 2 <= 2
    for row in wide.itertuples():
        change = row.C2D8 - row.C2D1
        if not row.responder:
            assert abs(change) < 2
        elif row.marker == "LAG3":
            assert 5 <= row.C2D1 <= 20 and 5 <= change <= 20
        else:
            assert 3 <= row.C2D1 <= 10 and 2.5 <= row.C2D8 / row.C2D1 <= 3.5


# --- the data can be gated --------------------------------------------------------------


def _valley(values: np.ndarray, lo: float, hi: float, side: str, farthest: bool = False) -> float:
    """Density minimum between the main peak and a peak on ``side`` of it."""
    from scipy.signal import find_peaks

    counts, edges = np.histogram(values, bins=200, range=(lo, hi))
    kernel = np.exp(-0.5 * (np.arange(-12, 13) / 3) ** 2)
    density = np.convolve(counts, kernel / kernel.sum(), mode="same")
    peaks, _ = find_peaks(np.concatenate([[0], density, [0]]), prominence=0.005 * density.max())
    peaks = peaks - 1
    main = peaks[np.argmax(density[peaks])]
    others = [p for p in peaks if (p < main if side == "left" else p > main)]
    if farthest:
        other = min(others) if side == "left" else max(others)
    else:
        other = max(others, key=lambda p: density[p])
    a, b = sorted((main, other))
    v = a + int(np.argmin(density[a : b + 1]))
    return float(edges[v] + edges[v + 1]) / 2


def test_viable_cd19_cells_can_be_gated_with_f1_above_097(cohort):
    """Cells → singlets → 7AAD− valley → CD19+ valley recovers the ``cll`` class."""
    for path in _files(cohort)[:4]:
        sample = read_fcs(path)
        events = sample.events
        if sample.spillover is not None:
            names = list(sample.spillover.columns)
            comp = events[names].to_numpy(dtype=float) @ np.linalg.inv(sample.spillover.to_numpy())
            cd19, aad = (np.log10(np.maximum(comp[:, j], 10)) for j in (0, 2))
            fsc = events["FSC-A"].to_numpy()
            cells = fsc > _valley(fsc, 0, 262144, "left", farthest=True)
            ratio = events["FSC-H"].to_numpy() / np.maximum(fsc, 1)
            cells &= ratio > _valley(ratio[cells], 0.3, 1.1, "left")
            top = 5.5
        else:
            fsc = events["FSC-H"].to_numpy()
            cd19, aad = np.log10(events["FL1-H"].to_numpy()), np.log10(events["FL3-H"].to_numpy())
            cells = fsc > _valley(fsc, 0, 1024, "left", farthest=True)
            top = 4.0
        viable = cells & (aad < _valley(aad[cells], 0, top, "right"))
        gated = viable & (cd19 > _valley(cd19[viable], 0, top, "left"))
        truth = (read_labels(path)["cls"] == "cll").to_numpy()
        f1 = 2 * (gated & truth).sum() / (gated.sum() + truth.sum())
        assert f1 >= 0.97, f"{path.name}: F1 {f1:.3f}"


def test_modern_data_are_stored_uncompensated(modern):
    sample = read_fcs(modern.parent / "CLL001_C2D1_isotype.fcs")
    assert sample.spillover is not None
    labels = read_labels(sample.path)
    cll, cd19neg = (labels["cls"] == "cll").to_numpy(), (labels["cls"] == "cd19neg").to_numpy()
    raw_pe = sample.events["PE-A"].to_numpy()
    comp_pe = _marker(sample, "LAG3")
    # FITC (CD19, bright on CLL cells) spills into PE until compensated.
    assert np.median(raw_pe[cll]) > 2 * np.median(raw_pe[cd19neg])
    assert np.median(comp_pe[cll]) == pytest.approx(np.median(comp_pe[cd19neg]), rel=0.25)
