"""Which file is which: sample sheets, file-name patterns, FCS keywords, and pairing checks.

Every source gives the same table: one row per FCS file with columns
``file, patient, timepoint, stain`` (``stain`` is ``isotype`` for control tubes)
plus ``path`` (absolute). :func:`check_samples` then adds ``status`` and ``error``:
problems are reported by name, never dropped silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .errors import MetadataError

REQUIRED = ("file", "patient", "timepoint", "stain")
DEFAULT_PATTERN = "{patient}_{timepoint}_{stain}.fcs"
ISOTYPE = "isotype"
FCS_SUFFIXES = (".fcs", ".lmd")


def list_fcs(folder: str | Path) -> list[Path]:
    """FCS files directly in ``folder`` (``.fcs``/``.lmd``, any case), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MetadataError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FCS_SUFFIXES)


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
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{path}: cannot read the sample sheet ({exc})") from None
    sheet.columns = [c.strip() for c in sheet.columns]
    missing = [c for c in REQUIRED if c not in sheet.columns]
    if missing:
        raise MetadataError(
            f"{path}: the sample sheet lacks column(s) {', '.join(missing)}; it needs {', '.join(REQUIRED)} "
            f"(has {', '.join(sheet.columns)})"
        )
    for column in REQUIRED:
        sheet[column] = sheet[column].str.strip()
    base = Path(folder) if folder is not None else path.parent
    sheet["path"] = [str((base / f).resolve()) for f in sheet["file"]]
    return sheet


def _pattern_regex(pattern: str) -> re.Pattern:
    fields = re.findall(r"{(\w+)}", pattern)
    for name in ("patient", "timepoint", "stain"):
        if name not in fields:
            raise MetadataError(f"file-name pattern {pattern!r} needs a {{{name}}} field")
    regex = ""
    for literal, name in re.findall(r"([^{]*)(?:{(\w+)})?", pattern):
        regex += re.escape(literal)
        if name:
            regex += f"(?P<{name}>[^/]+?)"
    return re.compile(regex + "$", re.IGNORECASE)


def samples_from_pattern(folder: str | Path, pattern: str = DEFAULT_PATTERN) -> pd.DataFrame:
    """Describe the FCS files of ``folder`` from their names.

    Files whose names do not fit the pattern get a row with empty fields (and are
    reported by :func:`check_samples`).

    Examples
    --------
    >>> _pattern_regex("{patient}_{timepoint}_{stain}.fcs").match("CLL001_C2D1_isotype.fcs")["stain"]
    'isotype'
    """
    regex = _pattern_regex(pattern)
    rows = []
    for path in list_fcs(folder):
        match = regex.match(path.name)
        fields = match.groupdict() if match else {}
        rows.append({
            "file": path.name,
            "patient": fields.get("patient", ""),
            "timepoint": fields.get("timepoint", ""),
            "stain": fields.get("stain", ""),
            "path": str(path.resolve()),
            "pattern_error": "" if match else f"name does not fit the pattern {pattern!r}",
        })
    return pd.DataFrame(rows, columns=[*REQUIRED, "path", "pattern_error"])


def samples_from_keywords(folder: str | Path, keywords: dict[str, str]) -> pd.DataFrame:
    """Describe the FCS files of ``folder`` from TEXT keywords, e.g.
    ``{"patient": "PATIENT ID", "timepoint": "VISIT", "stain": "TUBE NAME"}``."""
    from .fcs import read_keywords

    missing = [c for c in ("patient", "timepoint", "stain") if c not in keywords]
    if missing:
        raise MetadataError(f"keywords mapping needs {', '.join(missing)}")
    rows = []
    for path in list_fcs(folder):
        row = {"file": path.name, "path": str(path.resolve()), "pattern_error": ""}
        try:
            kw = read_keywords(path)
        except MetadataError as exc:  # pragma: no cover - FCSError is a ValueError, handled below
            raise exc
        except ValueError as exc:
            kw, row["pattern_error"] = {}, str(exc)
        for field, key in keywords.items():
            row[field] = kw.get(key.upper(), "")
        rows.append(row)
    return pd.DataFrame(rows, columns=[*REQUIRED, "path", "pattern_error"])


def check_samples(
    samples: pd.DataFrame,
    *,
    folder: str | Path | None = None,
    baseline: str = "C2D1",
    followup: str = "C2D8",
) -> pd.DataFrame:
    """Add ``status`` (``ok``, ``error``, ``unpaired``) and ``error`` to a samples table.

    Reported by name: sheet rows whose file does not exist, files in ``folder``
    that no row lists, duplicate tubes, stained tubes without an isotype tube of
    the same patient and timepoint (and isotypes without a stained tube), and
    patients that lack the baseline or the follow-up.
    """
    out = samples.copy()
    if "pattern_error" not in out:
        out["pattern_error"] = ""
    out["status"] = "ok"
    out["error"] = ""

    def mark(index, status: str, message: str) -> None:
        if out.at[index, "status"] == "error":
            return
        out.at[index, "status"] = status
        out.at[index, "error"] = message

    for i, row in out.iterrows():
        if row["pattern_error"]:
            mark(i, "error", row["pattern_error"])
        elif not Path(row["path"]).is_file():
            mark(i, "error", f"file not found: {row['path']}")
        elif not (row["patient"] and row["timepoint"] and row["stain"]):
            mark(i, "error", "patient, timepoint or stain is empty")

    key = ["patient", "timepoint", "stain"]
    dup = out.duplicated(key, keep=False) & (out["status"] != "error")
    for i in out.index[dup]:
        r = out.loc[i]
        mark(i, "error", f"duplicate tube: {r.patient} {r.timepoint} {r.stain} is listed more than once")

    usable = out["status"] == "ok"
    is_iso = out["stain"].str.lower() == ISOTYPE
    for (patient, timepoint), group in out[usable].groupby(["patient", "timepoint"]):
        iso = group[is_iso[group.index]]
        stained = group[~is_iso[group.index]]
        for i in stained.index if iso.empty else []:
            mark(i, "unpaired", f"no isotype tube for {patient} {timepoint}")
        for i in iso.index if stained.empty else []:
            mark(i, "unpaired", f"isotype tube without a stained tube for {patient} {timepoint}")
    for patient, group in out[out["status"] == "ok"].groupby("patient"):
        have = set(group["timepoint"])
        lacking = [tp for tp in (baseline, followup) if tp not in have]
        if lacking:
            for i in group.index:
                mark(i, "unpaired", f"patient {patient} has no {' or '.join(lacking)} tubes; "
                                    "analysed but left out of the paired comparison")

    if folder is not None:
        listed = {str(Path(p).resolve()) for p in out["path"]}
        extra = [p for p in list_fcs(folder) if str(p.resolve()) not in listed]
        rows = pd.DataFrame([{
            "file": p.name, "patient": "", "timepoint": "", "stain": "", "path": str(p.resolve()),
            "pattern_error": "", "status": "error", "error": "file is in the folder but not in the sample sheet",
        } for p in extra])
        if len(rows):
            out = pd.concat([out, rows], ignore_index=True)
    return out.drop(columns=["pattern_error"])
