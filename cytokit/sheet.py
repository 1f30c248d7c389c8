"""Sample sheets: a CSV (or ``;``/tab-separated) table ``file, patient, timepoint, stain`` read as
text, whatever spreadsheet wrote it (UTF-8 with or without BOM, Windows-1252, UTF-16; trailing
separators; headers in any case)."""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

import pandas as pd

from .errors import MetadataError

REQUIRED = ("file", "patient", "timepoint", "stain")
_SYNONYMS = {  # headers other sheets use, named in the error (not read as the column: "sample" may be either)
    "file": {"filename", "fcs", "fcsfile", "fcsfilename", "filepath", "path", "datafile"},
    "patient": {"patientid", "subject", "subjectid", "donor", "donorid", "pid", "participant", "case"},
    "timepoint": {"visit", "time", "day", "cycle", "cycleday", "visitday", "tp"},
    "stain": {"tube", "tubetype", "staining", "stained", "role", "condition", "type"},
}


def _key(header: str) -> str:
    return "".join(ch for ch in header.casefold() if ch.isalnum())


def read_sample_sheet(path: str | Path, *, folder: str | Path | None = None) -> pd.DataFrame:
    """Read a CSV sample sheet (``file,patient,timepoint,stain``; extra columns kept).

    ``file`` is relative to ``folder`` (default: the sheet's folder).

    Raises
    ------
    MetadataError
        The sheet is missing, unreadable or lacks a required column.
    """
    path = Path(path)
    try:
        text = decode(path.read_bytes())
        sheet = _table(path, text, separator(text))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MetadataError(f"{path}: cannot read the sample sheet ({exc})") from None
    sheet = _named_columns(path, sheet)
    missing = [c for c in REQUIRED if c not in sheet.columns]
    if missing:
        renames = [f"{column} → {need}" for need in missing for column in sheet.columns
                   if _key(column) in _SYNONYMS[need] and column not in REQUIRED]
        raise MetadataError(
            f"{path}: the sample sheet lacks column(s) {', '.join(missing)}; it needs {', '.join(REQUIRED)} "
            f"(has {', '.join(sheet.columns)})" + (f"; rename {', '.join(renames)}" if renames else "")
        )
    for column in (*REQUIRED, *(["control_file"] if "control_file" in sheet else [])):
        sheet[column] = [unicodedata.normalize("NFC", v.strip()) for v in sheet[column]]  # é typed or é copied
    sheet = sheet[(sheet[list(REQUIRED)] != "").any(axis=1)].reset_index(drop=True)  # blank rows
    base = Path(folder) if folder is not None else path.parent
    listings: dict[Path, list] = {}  # each folder read once, not once per row a name does not fit exactly
    sheet["path"] = [str(_sheet_path(base, f, listings)) for f in sheet["file"]]
    sheet.attrs["sheet"] = str(path)  # named in check_samples' errors
    return sheet


def decode(raw: bytes) -> str:
    """A spreadsheet's CSV as text: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" has
    one), UTF-16 with one (Excel's "Unicode text"), else Windows-1252 (Excel's CSV on Windows)."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def separator(text: str) -> str:
    """A sheet's separator: spreadsheets in many locales save CSV with ';' (or tabs); the header's
    most common of ``,``, ``;`` and tab wins."""
    return max([",", ";", "\t"], key=text.partition("\n")[0].count)


def own_names(columns, own: tuple[str, ...] = (*REQUIRED, "control_file")) -> list[str]:
    """Column names, stripped, with cytokit's own (``file``, ``control_file`` ...) in their spelling
    whatever the case a person typed them in (``FILE``, ``Patient``)."""
    spelling = {c.casefold(): c for c in own}
    return [spelling.get(str(c).strip().casefold(), str(c).strip()) for c in columns]


def _table(path: Path, text: str, sep: str) -> pd.DataFrame:
    """The sheet's rows as text under its header's columns, short rows padded with "". Empty
    trailing fields are not values (Excel ends every row with a separator); a row with more
    values than the header has columns is named (a separator inside a value shifts the rest)."""
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    header = next(rows, [])
    if not any(cell.strip() for cell in header):
        raise MetadataError(f"{path}: the sample sheet is empty; it needs a header row "
                            f"{','.join(REQUIRED)} and one row per FCS file")
    width, body = len(header), []
    for cells in rows:
        if any(cell.strip() for cell in cells[width:]):
            raise MetadataError(f"{path}, line {rows.line_num}: {len(cells)} values where the header names {width} "
                                f"columns: a {sep!r} inside a value?")
        body.append(cells[:width] + [""] * (width - len(cells)))
    return pd.DataFrame(body, columns=header, dtype=str)


def _named_columns(path: Path, sheet: pd.DataFrame) -> pd.DataFrame:
    """The sheet's columns by name: cytokit's own (``file``, ``control_file`` ...) whatever their case,
    unnamed empty ones dropped (a spreadsheet's trailing separators); an unnamed column with
    values, a name given twice and a ``path`` column (cytokit sets it from ``file``) refused."""
    names = own_names(sheet.columns)
    keep = [bool(n) or bool((sheet.iloc[:, i].str.strip() != "").any()) for i, n in enumerate(names)]
    sheet = sheet.iloc[:, [i for i, k in enumerate(keep) if k]]
    names = [n for n, k in zip(names, keep) if k]
    if "" in names:
        raise MetadataError(f"{path}: column {names.index('') + 1} of the sample sheet has values but no name")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MetadataError(f"{path}: the sample sheet names the column(s) {', '.join(twice)} more than once")
    if "path" in names:
        raise MetadataError(f"{path}: the sample sheet has a column 'path', which cytokit sets from 'file' "
                            "(relative to the sheet's folder); rename it")
    return sheet.set_axis(names, axis=1)


def _sheet_path(base: Path, file: str, listings: dict[Path, list]) -> Path:
    """``file`` under ``base``; a Windows path (``day1\\a.fcs``) is read with ``/`` when only that exists,
    and a name spelt in other Unicode code points (``é`` as e and an accent: macOS's file names), in
    another case (``P01.FCS``: a sheet written where names are case-insensitive) or without its
    ``.fcs`` as the folder's one file it is (``listings``: the folders read so far, and their files)."""
    path = (base / file).resolve()
    if "\\" in file and not path.exists():
        posix = (base / file.replace("\\", "/")).resolve()
        if posix.exists():
            path = posix
    if not path.exists() and path.parent.is_dir():
        wanted = unicodedata.normalize("NFC", path.name)
        if path.parent not in listings:
            listings[path.parent] = [(p, unicodedata.normalize("NFC", p.name)) for p in path.parent.iterdir()
                                     if p.is_file()]
        names = listings[path.parent]
        for same in ([p for p, n in names if n == wanted],  # macOS's decomposed accents
                     [p for p, n in names if n.casefold() == wanted.casefold()],  # a sheet typed on Windows
                     [p for p, n in names if n.casefold() in (wanted.casefold() + ".fcs", wanted.casefold() + ".lmd")]):
            if len(same) == 1:  # the extension left out (Excel's column of sample names)
                return same[0]
    return path
