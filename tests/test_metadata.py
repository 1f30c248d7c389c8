"""Sample sheets, file-name patterns and pairing checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cytokit import MetadataError
from cytokit.metadata import check_samples, is_control, read_sample_sheet, samples_from_pattern


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(name.encode())  # distinct bytes: identical files are an error


def test_identical_files_are_reported_whatever_their_names(tmp_path):
    touch(tmp_path, "P1_C2D1_isotype.fcs", "P1_C2D1_stained.fcs", "P1_C2D8_isotype.fcs")
    (tmp_path / "P1_C2D8_stained.fcs").write_bytes(b"same" * 40_000)
    (tmp_path / "P2_C2D1_stained.fcs").write_bytes(b"same" * 40_000)
    (tmp_path / "P2_C2D1_isotype.fcs").write_bytes(b"same" * 39_999 + b"diff")  # same size and head only
    table = check_samples(samples_from_pattern(tmp_path), folder=tmp_path).set_index("file")
    for name, other in [("P1_C2D8_stained.fcs", "P2_C2D1_stained.fcs"), ("P2_C2D1_stained.fcs", "P1_C2D8_stained.fcs")]:
        assert table.loc[name, "status"] == "error"
        assert table.loc[name, "error"].startswith(f"the same bytes as {other}: one FCS file under two names")
    assert table.loc["P2_C2D1_isotype.fcs", "status"] != "error"
    assert table.loc["P1_C2D1_stained.fcs", "status"] == "unpaired"  # its C2D8 pair lost a tube


def test_one_file_listed_twice_in_a_sheet_is_reported(tmp_path):
    touch(tmp_path, "a.fcs", "b.fcs")
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain\na.fcs,P1,C2D1,isotype\nb.fcs,P1,C2D1,stained\n"
                     "b.fcs,P1,C2D8,stained\n")
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path)
    assert table["status"].tolist() == ["unpaired", "error", "error"]
    assert table["error"].iloc[1] == "b.fcs is listed 2 times in the sample sheet; none of its rows is analysed"
    (tmp_path / "c.fcs").write_bytes((tmp_path / "a.fcs").read_bytes())  # a copy under a second name
    sheet.write_text("file,patient,timepoint,stain\na.fcs,P1,C2D1,isotype\nc.fcs,P1,C2D8,isotype\n")
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path)
    assert table["error"].iloc[0] == "the same bytes as c.fcs: one FCS file under two names (a copy?); neither is analysed"


def test_names_in_other_unicode_forms_are_the_same_name(tmp_path):
    """macOS writes é as e + a combining accent (NFD); a sheet typed elsewhere has é (NFC)."""
    import unicodedata

    nfd, nfc = unicodedata.normalize("NFD", "José"), unicodedata.normalize("NFC", "José")
    touch(tmp_path, f"{nfc}_C2D1_isotype.fcs", f"{nfc}_C2D1_stained.fcs", f"{nfd}_C2D8_isotype.fcs",
          f"{nfd}_C2D8_stained.fcs")
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain\n" + "".join(
        f"{nfc}_{tp}_{stain}.fcs,{nfc},{tp},{stain}\n" for tp in ("C2D1", "C2D8") for stain in ("isotype", "stained")))
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path)
    assert len(table) == 4 and (table["status"] == "ok").all(), table["error"].tolist()
    by_pattern = check_samples(samples_from_pattern(tmp_path), folder=tmp_path)
    assert by_pattern["patient"].tolist() == [nfc] * 4 and (by_pattern["status"] == "ok").all()


def test_names_without_their_extension_or_in_another_case_are_the_folders_files(tmp_path):
    """A sheet of sample names (Excel's column without '.fcs'), or typed where names are
    case-insensitive, gave 'file not found' for each row and 'not in the sample sheet' for each file."""
    touch(tmp_path, "P01_C2D1_iso.fcs", "P01_C2D1_stained.fcs", "P01_C2D8_iso.fcs", "P01_C2D8_stained.fcs")
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain\nP01_C2D1_iso,P01,C2D1,isotype\nP01_C2D1_stained,P01,C2D1,"
                     "stained\nP01_C2D8_ISO.FCS,P01,C2D8,isotype\np01_c2d8_stained.fcs,P01,C2D8,stained\n")
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path)
    assert (table["status"] == "ok").all(), table["error"].tolist()
    assert [Path(p).name for p in table["path"]] == ["P01_C2D1_iso.fcs", "P01_C2D1_stained.fcs", "P01_C2D8_iso.fcs",
                                                     "P01_C2D8_stained.fcs"]
    touch(tmp_path, "p01_C2D1_ISO.fcs")  # two files a case-insensitive name fits: neither is guessed
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path).set_index("file")
    assert table.loc["P01_C2D1_iso", "error"].startswith("file not found")


def test_a_pattern_ending_in_fcs_fits_lmd_files(tmp_path):
    """A Beckman folder of .lmd files with the default pattern: 'name does not fit the pattern', no hint."""
    touch(tmp_path, "P1_C2D1_isotype.lmd", "P1_C2D1_stained.LMD")
    table = samples_from_pattern(tmp_path)
    assert table["pattern_error"].tolist() == ["", ""] and table["stain"].tolist() == ["isotype", "stained"]


def test_pattern_and_pairing(tmp_path):
    touch(tmp_path, "P1_C2D1_isotype.fcs", "P1_C2D1_stained.fcs", "P1_C2D8_isotype.fcs", "P1_C2D8_stained.fcs",
          "P2_C2D1_stained.fcs", "P2_C2D8_isotype.fcs", "P2_C2D8_stained.fcs", "odd-name.fcs")
    table = check_samples(samples_from_pattern(tmp_path), folder=tmp_path)
    status = dict(zip(table["file"], table["status"]))
    error = dict(zip(table["file"], table["error"]))
    assert status["P1_C2D1_stained.fcs"] == "ok"
    assert status["P2_C2D1_stained.fcs"] == "unpaired" and error["P2_C2D1_stained.fcs"] == (
        "no usable control tube for P2 C2D1: none in the file names (pattern {patient}_{timepoint}_{stain}.fcs) (an "
        "isotype, FMO, unstimulated or unstained tube); or name one in a sample sheet's control_file column")
    # two isotype tubes of one timepoint are duplicates: the stained tube says why it has none
    touch(tmp_path, "P2_C2D1_isotype.fcs", "P2_C2D1_ISO.fcs")
    table = check_samples(samples_from_pattern(tmp_path), folder=tmp_path).set_index("file")
    assert table.loc["P2_C2D1_stained.fcs", "error"].startswith(
        "no usable control tube for P2 C2D1: P2_C2D1_ISO.fcs: duplicate tube: P2 C2D1 isotype is listed more than once")
    assert status["odd-name.fcs"] == "error" and "does not fit the pattern" in error["odd-name.fcs"]


def test_custom_pattern(tmp_path):
    touch(tmp_path, "trial-07.day1.ISO.fcs")
    table = samples_from_pattern(tmp_path, "trial-{patient}.{timepoint}.{stain}.fcs")
    assert table.iloc[0][["patient", "timepoint", "stain"]].tolist() == ["07", "day1", "ISO"]
    with pytest.raises(MetadataError, match=r"needs a {patient} field \(a study without timepoints: '{patient}.fcs'\)"):
        samples_from_pattern(tmp_path, "trial-{timepoint}.{stain}.fcs")


def test_a_pattern_without_stain_or_timepoint(tmp_path):
    """Without {stain} every tube is stained; without {timepoint} (a gating-only study of other files)
    every file is analysed and none paired, said once per file and not as an error."""
    touch(tmp_path, "P1_C2D1.fcs", "P1_C2D8.fcs")
    table = samples_from_pattern(tmp_path, "{patient}_{timepoint}.fcs")
    assert table[["patient", "timepoint", "stain"]].values.tolist() == [["P1", "C2D1", "stained"], ["P1", "C2D8", "stained"]]
    assert set(check_samples(table, folder=tmp_path, needs_control=False)["status"]) == {"ok"}
    touch(tmp_path, "Activation 7.fcs")
    untimed = check_samples(samples_from_pattern(tmp_path, "{patient}.fcs"), folder=tmp_path, needs_control=False)
    assert untimed["patient"].tolist() == ["Activation 7", "P1_C2D1", "P1_C2D8"]
    assert set(untimed["status"]) == {"unpaired"}
    assert set(untimed["error"]) == {"no timepoint (the file-name pattern has no {timepoint}): analysed, not paired"}


def test_sheet_problems_are_reported_by_name(tmp_path):
    touch(tmp_path, "a.fcs", "b.fcs", "c.fcs", "extra.fcs")
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain,site\n"
                     "a.fcs,P1,C2D1,isotype,Lyon\nb.fcs,P1,C2D1,stained,Lyon\nc.fcs,P1,C2D1,stained,Lyon\n"
                     "gone.fcs,P1,C2D8,stained,Lyon\n")
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path)
    by = table.set_index("file")
    assert "duplicate tube" in by.loc["b.fcs", "error"] and by.loc["c.fcs", "status"] == "error"
    assert "file not found" in by.loc["gone.fcs", "error"]
    assert "not in the sample sheet: add a row for it, or move it out" in by.loc["extra.fcs", "error"]
    assert by.loc["a.fcs", "site"] == "Lyon"  # extra columns are kept


def test_a_stained_tube_without_its_stain_at_the_other_timepoint_is_unpaired(tmp_path):
    """Pairs are of one stain: a second stained tube at C2D8 only has nothing to pair with."""
    names = ["P1_C2D1_isotype.fcs", "P1_C2D1_stained.fcs", "P1_C2D8_isotype.fcs", "P1_C2D8_stained.fcs",
             "P1_C2D8_restain.fcs"]
    touch(tmp_path, *names)
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain\n" + "".join(f"{n},{n.replace('.fcs', '').replace('_', ',')}\n"
                                                              for n in names))
    by = check_samples(read_sample_sheet(sheet), folder=tmp_path).set_index("file")
    assert by.loc["P1_C2D8_restain.fcs", "status"] == "unpaired"
    assert "no C2D1 tube stained 'restain' to pair it with" in by.loc["P1_C2D8_restain.fcs", "error"]
    assert (by.drop(index="P1_C2D8_restain.fcs")["status"] == "ok").all()


def test_sheet_without_required_columns(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient\na.fcs,P1\n")
    with pytest.raises(MetadataError, match="lacks column\\(s\\) timepoint, stain") as error:
        read_sample_sheet(sheet)
    assert "rename" not in str(error.value)
    # another lab's headers: named, with what to rename them to
    sheet.write_text("Filename,Patient ID,Visit,Tube,Notes\na.fcs,P1,C2D1,isotype,x\n")
    with pytest.raises(MetadataError) as error:
        read_sample_sheet(sheet)
    assert str(error.value).endswith("; rename Filename → file, Patient ID → patient, Visit → timepoint, "
                                     "Tube → stain")


def test_labels_that_differ_only_in_case_are_one_label(tmp_path):
    touch(tmp_path, "P1_c2d1_ISO.fcs", "P1_c2d1_Stained.fcs", "P1_C2D8_Isotype control.fcs", "P1_C2D8_stained.fcs")
    table = check_samples(samples_from_pattern(tmp_path), folder=tmp_path)
    assert (table["status"] == "ok").all(), table["error"].tolist()
    assert sorted(set(table["timepoint"])) == ["C2D1", "C2D8"]  # the baseline/follow-up spelling
    assert sorted(set(table["stain"])) == ["isotype", "stained"]  # first spelling (C2D8 sorts first)


@pytest.mark.parametrize("label", ["isotype", "ISO", "Isotype control", "isotype_ctrl", "IgG1", "isotype_001"])
def test_control_labels(label):
    assert is_control(label)


@pytest.mark.parametrize("label", ["stained", "LAG3", "isolated", "stimulated"])
def test_not_control_labels(label):
    assert not is_control(label)


@pytest.mark.parametrize("label", ["unstained", "FMO"])
def test_other_control_kinds_are_controls_but_not_isotypes(label):
    from cytokit.controls import control_kind

    assert is_control(label) and control_kind(label) == label.lower()


def test_a_name_that_splits_two_ways_takes_the_known_timepoint(tmp_path):
    touch(tmp_path, "CLL_001_C2D1_isotype.fcs", "A_B_C_D.fcs")
    table = samples_from_pattern(tmp_path, timepoints=("C2D1", "C2D8")).set_index("file")
    assert table.loc["CLL_001_C2D1_isotype.fcs", ["patient", "timepoint", "stain"]].tolist() == [
        "CLL_001", "C2D1", "isotype"]
    assert "in more than one way" in table.loc["A_B_C_D.fcs", "pattern_error"]


def test_a_separator_inside_two_fields_still_takes_the_one_split_with_a_known_timepoint(tmp_path):
    # only the shortest and the longest split were tried: neither has the timepoint C2D8
    touch(tmp_path, "CLL_001_C2D8_stained_rerun.fcs", "CLL_001_C2D1_LAG3_ISO.fcs", "P_1_C2D1_C2D8_x.fcs")
    table = samples_from_pattern(tmp_path, timepoints=("C2D1", "C2D8")).set_index("file")
    assert table.loc["CLL_001_C2D8_stained_rerun.fcs", ["patient", "timepoint", "stain"]].tolist() == [
        "CLL_001", "C2D8", "stained_rerun"]
    assert table.loc["CLL_001_C2D1_LAG3_ISO.fcs", ["patient", "stain"]].tolist() == ["CLL_001", "LAG3_ISO"]
    # two readings with a known timepoint: ambiguous, and the message shows those two
    error = table.loc["P_1_C2D1_C2D8_x.fcs", "pattern_error"]
    assert "more than one way" in error and "timepoint='C2D1'" in error and "timepoint='C2D8'" in error
    assert "timepoint='1'" not in error


@pytest.mark.parametrize("name, hint", [
    ("CLL017-C2D8-isotype.fcs", "{patient}-{timepoint}-{stain}.fcs"),
    ("CLL017.C2D1.iso.lmd", "{patient}.{timepoint}.{stain}.fcs"),
    ("CLL-017 C2D1 LAG3 iso.fcs", "{patient} {timepoint} {stain}.fcs"),  # the known timepoint decides
    ("C2D1_CLL017_stained.fcs", "{timepoint}_{patient}_{stain}.fcs"),  # read as patient C2D1 before
])
def test_a_name_the_pattern_does_not_read_names_the_pattern_that_does(name, hint):
    from cytokit._names import fit_name

    fields, error = fit_name(name, "{patient}_{timepoint}_{stain}.fcs", ("C2D1", "C2D8"))
    assert fields == {} and error.endswith(f"it fits --pattern {hint!r}")
    fields, error = fit_name(name, hint, ("C2D1", "C2D8"))
    assert error == "" and fields["timepoint"] in ("C2D1", "C2D8") and fields["patient"] in ("CLL017", "CLL-017")


def test_no_pattern_is_suggested_where_none_fits():
    from cytokit._names import fit_name

    assert fit_name("weird.fcs", "{patient}_{timepoint}_{stain}.fcs", ("C2D1",))[1] == \
        "name does not fit the pattern '{patient}_{timepoint}_{stain}.fcs'"
    # timepoints of another design: read as they are, no other order is forced on them
    assert fit_name("P1_ova0_stim.fcs", "{patient}_{timepoint}_{stain}.fcs", ("C2D1", "C2D8"))[0] == {
        "patient": "P1", "timepoint": "ova0", "stain": "stim"}


def test_hidden_files_are_not_fcs_files(tmp_path):
    from cytokit.metadata import list_fcs

    touch(tmp_path, "P1_C2D1_stained.fcs", "._P1_C2D1_stained.fcs", ".hidden.FCS")
    assert [p.name for p in list_fcs(tmp_path)] == ["P1_C2D1_stained.fcs"]


def test_a_broken_link_in_the_folder_is_reported_not_skipped(tmp_path):
    """A link to a file on an unmounted share was skipped without a word: one tube fewer."""
    touch(tmp_path, "P1_C2D1_stained.fcs")
    (tmp_path / "P1_C2D8_stained.fcs").symlink_to(tmp_path / "gone" / "P1_C2D8_stained.fcs")
    table = check_samples(samples_from_pattern(tmp_path)).set_index("file")
    assert table.at["P1_C2D8_stained.fcs", "status"] == "error"
    assert table.at["P1_C2D8_stained.fcs", "error"].startswith("file not found: ")
    assert table.at["P1_C2D1_stained.fcs", "status"] != "error"


def test_blank_sheet_rows_are_skipped(tmp_path):
    touch(tmp_path, "a.fcs")
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain\na.fcs,P1,C2D1,stained\n,,,\n \n")
    assert read_sample_sheet(sheet)["file"].tolist() == ["a.fcs"]


def test_a_trailing_separator_is_no_column_and_a_row_too_wide_is_named(tmp_path):
    """Excel's trailing comma on every row made the first column the row names: every column shifted."""
    touch(tmp_path, "a.fcs", "b.fcs")
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain\na.fcs,P1,C2D1,stained,\nb.fcs,P1,C2D1,isotype,,\n")
    table = read_sample_sheet(sheet)
    assert table["file"].tolist() == ["a.fcs", "b.fcs"] and table["stain"].tolist() == ["stained", "isotype"]
    sheet.write_text("file,patient,timepoint,stain\na.fcs,P1,C2D1,stained\nb.fcs,P1,C2D1,iso,type\n")
    with pytest.raises(MetadataError, match=r"s\.csv, line 3: 5 values where the header names 4 columns"):
        read_sample_sheet(sheet)


@pytest.mark.parametrize("sep,newline,encoding", [(";", "\r\n", "utf-8-sig"), ("\t", "\n", "cp1252")])
def test_sheets_from_spreadsheets_in_other_locales(tmp_path, sep, newline, encoding):
    (tmp_path / "day1").mkdir()
    touch(tmp_path / "day1", "a.fcs", "b.fcs")
    lines = ["file", "patient", "timepoint", "stain", "site"], ["day1\\a.fcs", "P1", "C2D1", "isotype", "Zürich"], \
        ["day1\\b.fcs", "P1", "C2D1", "stained", "Zürich"]
    sheet = tmp_path / "s.csv"
    sheet.write_bytes(newline.join(sep.join(row) for row in lines).encode(encoding) + newline.encode())
    table = read_sample_sheet(sheet)
    assert table["path"].tolist() == [str(tmp_path / "day1" / "a.fcs"), str(tmp_path / "day1" / "b.fcs")]
    assert table["site"].tolist() == ["Zürich", "Zürich"] and table["stain"].tolist() == ["isotype", "stained"]


def test_sheet_headers_in_any_case_from_utf16_with_empty_trailing_columns(tmp_path):
    """Excel's "Unicode text" (UTF-16, tabs), headers as a person types them, unnamed empty columns."""
    touch(tmp_path, "a.fcs", "b.fcs")
    sheet = tmp_path / "s.txt"
    sheet.write_text("File\tPatient\tTimepoint\tStain\tControl_File\t\t\na.fcs\tP1\tC2D1\tisotype\t\t\t\n"
                     "b.fcs\tP1\tC2D1\tstained\ta.fcs\t\t\n", encoding="utf-16")
    table = read_sample_sheet(sheet)
    assert list(table.columns) == ["file", "patient", "timepoint", "stain", "control_file", "path"]
    assert table["control_file"].tolist() == ["", "a.fcs"]


@pytest.mark.parametrize("header,row,problem", [
    ("file,patient,timepoint,stain,notes,notes", "a,b", "names the column(s) notes more than once"),
    ("file,patient,timepoint,stain,patient", "X", "names the column(s) patient more than once"),
    ("file,patient,timepoint,stain,,site", "x,Zürich", "column 5 of the sample sheet has values but no name"),
    ("file,patient,timepoint,stain,path", "/data/a.fcs", "has a column 'path', which cytokit sets from 'file'"),
])
def test_sheet_columns_that_cannot_be_told_apart_are_refused_before_any_analysis(tmp_path, header, row, problem):
    sheet = _sheet(tmp_path, header, [f"a.fcs,P1,C2D1,isotype,{row}", f"b.fcs,P1,C2D1,stained,{row}"])
    with pytest.raises(MetadataError, match=re.escape(f"{sheet}: ") + ".*" + re.escape(problem)):
        read_sample_sheet(sheet)


# --- hostile sheets and patterns (issue 16) ---------------------------------------------------------


def _sheet(tmp_path, header: str, rows: list[str]) -> Path:
    touch(tmp_path, *{r.split(",")[0] for r in rows})
    sheet = tmp_path / "s.csv"
    sheet.write_text("\n".join([header, *rows]) + "\n")
    return sheet


@pytest.mark.parametrize("column", ["status", "error", "quality"])
def test_a_sheet_column_cytokit_writes_is_refused_by_name(tmp_path, column):
    sheet = _sheet(tmp_path, f"file,patient,timepoint,stain,{column}",
                   ["a.fcs,P1,C2D1,isotype,mine", "b.fcs,P1,C2D1,stained,mine"])
    with pytest.raises(MetadataError, match=f"column\\(s\\) '{column}' .*which cytokit writes.*rename"):
        check_samples(read_sample_sheet(sheet), folder=tmp_path)


def test_the_same_baseline_and_followup_is_an_error(tmp_path):
    touch(tmp_path, "P1_C2D1_isotype.fcs", "P1_C2D1_stained.fcs")
    with pytest.raises(MetadataError, match="same timepoint"):
        check_samples(samples_from_pattern(tmp_path), baseline="C2D1", followup="c2d1")


def test_patients_that_differ_only_in_case_are_one_patient(tmp_path):
    sheet = _sheet(tmp_path, "file,patient,timepoint,stain",
                   ["a.fcs,CLL001,C2D1,isotype", "b.fcs,CLL001,C2D1,stained",
                    "c.fcs,cll001,C2D8,isotype", "d.fcs,cll001 ,C2D8,stained"])
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path)
    assert table["patient"].tolist() == ["CLL001"] * 4
    assert table["status"].tolist() == ["ok"] * 4


def test_an_empty_sheet_is_a_metadata_error(tmp_path):
    (tmp_path / "s.csv").write_bytes(b"")
    with pytest.raises(MetadataError, match="s.csv: the sample sheet is empty"):
        read_sample_sheet(tmp_path / "s.csv")


def test_a_pattern_naming_a_field_twice_is_a_metadata_error(tmp_path):
    touch(tmp_path, "P1_C2D1_isotype.fcs")
    with pytest.raises(MetadataError, match="names the field\\(s\\) patient more than once"):
        samples_from_pattern(tmp_path, "{patient}_{timepoint}_{stain}_{patient}.fcs")


def test_a_pattern_without_the_suffix_matches_the_name_without_it(tmp_path):
    touch(tmp_path, "P1_C2D1_isotype.fcs", "P1_C2D1_stained.FCS")
    table = samples_from_pattern(tmp_path, "{patient}_{timepoint}_{stain}")
    assert table["stain"].tolist() == ["isotype", "stained"]


def test_tubes_of_a_timepoint_not_compared_say_so(tmp_path):
    touch(tmp_path, *[f"P1_{tp}_{s}.fcs" for tp in ("C1D1", "C2D1", "C2D8") for s in ("isotype", "stained")])
    table = check_samples(samples_from_pattern(tmp_path), folder=tmp_path).set_index("file")
    assert (table.loc[["P1_C2D1_stained.fcs", "P1_C2D8_isotype.fcs"], "status"] == "ok").all()
    for name in ("P1_C1D1_isotype.fcs", "P1_C1D1_stained.fcs"):
        assert table.loc[name, "status"] == "unpaired"
        assert "timepoint C1D1 is neither the baseline (C2D1) nor the follow-up (C2D8)" in table.loc[name, "error"]


def test_a_patient_whose_baseline_tubes_failed_is_told_so():
    """It said 'no usable C2D1 tube pair (timepoints found: C2D1, C2D8)': C2D1 both missing and found."""
    import pandas as pd

    table = pd.DataFrame({"file": ["a.fcs", "b.fcs", "c.fcs", "d.fcs"], "patient": "P1",
                          "timepoint": ["C2D1", "C2D1", "C2D8", "C2D8"],
                          "stain": ["isotype", "stained", "isotype", "stained"]})
    table["path"] = ["/nowhere/a.fcs", "/nowhere/b.fcs", __file__, str(Path(__file__).parent / "conftest.py")]
    out = check_samples(table).set_index("file")
    assert out.loc["c.fcs", "error"].startswith(
        "patient P1 has no usable C2D1 tube pair (usable timepoints: C2D8; C2D1 only in tubes with errors)")


def test_tubes_of_a_timepoint_no_comparison_names_are_not_said_to_have_errors(tmp_path):
    touch(tmp_path, "P1_C2D1_isotype.fcs", "P1_C2D1_stained.fcs", "P1_C2D8_isotype.fcs", "P1_C2D8_stained.fcs")
    out = check_samples(samples_from_pattern(tmp_path), folder=tmp_path, comparisons=[("C2D8", "C9D9")])
    assert out.set_index("file").loc["P1_C2D8_stained.fcs", "error"].startswith(
        "patient P1 has no usable C9D9 tube pair (usable timepoints: C2D8; C2D1 in no comparison)")


def test_a_control_at_a_timepoint_no_comparison_names_says_whom_it_serves(tmp_path):
    """Activation_1, the unstimulated control of tubes 3, 5 and 7, was 'in no comparison: unused'."""
    touch(tmp_path, "ctrl.fcs", "stim.fcs")
    sheet = tmp_path / "s.csv"
    sheet.write_text("file,patient,timepoint,stain,control_file\nctrl.fcs,P1,ova0,unstimulated,\n"
                     "stim.fcs,P1,ova5,stimulated,ctrl.fcs\n")
    table = check_samples(read_sample_sheet(sheet), folder=tmp_path, comparisons=[("C2D1", "C2D8"), ("C2D1", "C3D1")])
    error = table.set_index("file").loc["ctrl.fcs", "error"]
    assert error.endswith("analysed but left out of the paired comparisons (the control of stim.fcs)")
    assert "unused" not in error


@pytest.mark.parametrize(("seen", "comparisons", "expected"), [
    (["ova0.5", "ova0", "ova0.05", "ova0.005"], (("ova0.005", "ova0.5"),), ["ova0", "ova0.005", "ova0.05", "ova0.5"]),
    (["D14", "D7", "D0"], (), ["D0", "D7", "D14"]),  # a folder lists D14 before D7
    (["Post", "Pre", "Week 4"], (("Pre", "Post"),), ["Pre", "Post", "Week 4"]),
    (["C2D8", "C2D1", " "], (("C2D1", "C2D8"),), ["C2D1", "C2D8"]),
    (["b", "a"], (("a", "b"), ("b", "a")), ["b", "a"]),  # contradictory comparisons: as seen, no hang
])
def test_timepoints_are_put_in_time_order(seen, comparisons, expected):
    from cytokit.metadata import timepoint_order

    assert timepoint_order(seen, comparisons) == expected


def test_fcs_files_in_subfolders_are_counted_for_the_note_that_they_are_not_searched(tmp_path):
    from cytokit.metadata import in_subfolders, list_fcs

    (tmp_path / "batch1" / "sub").mkdir(parents=True)
    touch(tmp_path, "top.fcs", "batch1/a.fcs", "batch1/sub/b.LMD", "batch1/._a.fcs", "batch1/notes.txt")
    assert [p.name for p in list_fcs(tmp_path)] == ["top.fcs"] and in_subfolders(tmp_path) == 2
    (tmp_path / "runs" / "day1").mkdir(parents=True)
    touch(tmp_path, "runs/day1/c.fcs")
    from cytokit import learn_template

    with pytest.raises(MetadataError, match=r"no FCS file directly in .*runs; subfolders are not searched"):
        learn_template(tmp_path / "x.wsp", tmp_path / "runs", out=tmp_path / "t.yaml")
