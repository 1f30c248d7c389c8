"""Which file is which: sample sheets, file-name patterns, FCS keywords, and pairing checks.

Every source gives the same table: one row per FCS file with columns
``file, patient, timepoint, stain`` (``stain`` is the kind of a control tube: ``isotype``,
``fmo``, ``unstimulated``, ``unstained``; :mod:`cytokit.controls`) plus ``path`` (absolute) and
any other column of a sheet (``control_file``: the control a stained tube uses). :func:`check_samples`
then adds ``status``, ``error``, ``control_file`` and ``control_of``: problems are reported by name,
never dropped silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .controls import ISOTYPE, KINDS, assign_controls, control_kind, is_control  # noqa: F401 (ISOTYPE, is_control: re-exported)
from ._names import FCS_SUFFIXES, fit_name, pattern_regex
from .errors import MetadataError
from .sheet import REQUIRED, read_sample_sheet  # noqa: F401 (read_sample_sheet: re-exported)

DEFAULT_PATTERN = "{patient}_{timepoint}_{stain}.fcs"
#: columns cytokit writes into the samples table; a sheet may not bring its own
RESERVED = {"status": "the analysis status (ok, error, unpaired)", "error": "why a file failed or is unpaired",
            "quality": "the quality flags", "control_of": "the stained tubes a control tube serves"}


def list_fcs(folder: str | Path) -> list[Path]:
    """FCS files directly in ``folder`` (``.fcs``/``.lmd``, any case), sorted; hidden files left out
    (the ``._*.fcs`` resource files macOS writes beside each file on a USB stick or a share). A broken
    link is listed: its error is reported with the other files'."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MetadataError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir()
                  if (p.is_file() or p.is_symlink()) and p.suffix.lower() in FCS_SUFFIXES and not p.name.startswith("."))


def in_subfolders(folder: str | Path) -> int:
    """How many FCS files lie in ``folder``'s subfolders, which :func:`list_fcs` does not search."""
    return sum(1 for p in Path(folder).rglob("*") if p.parent != Path(folder) and p.suffix.lower() in FCS_SUFFIXES
               and not p.name.startswith(".") and p.is_file())


def samples_from_pattern(folder: str | Path, pattern: str = DEFAULT_PATTERN, *,
                         timepoints: tuple[str, ...] = ()) -> pd.DataFrame:
    """Describe the FCS files of ``folder`` from their names.

    Files whose names do not fit the pattern, or fit it in two ways that
    ``timepoints`` (the expected timepoint labels) cannot tell apart, get a row
    with empty fields (and are reported by :func:`check_samples`).

    Examples
    --------
    >>> pattern_regex("{patient}_{timepoint}_{stain}.fcs").match("CLL001_C2D1_isotype.fcs")["stain"]
    'isotype'
    """
    pattern_regex(pattern)  # a bad pattern fails here, before any file
    rows = []
    for path in list_fcs(folder):
        fields, error = fit_name(path.name, pattern, timepoints)
        rows.append({
            "file": path.name,
            "patient": fields.get("patient", ""),
            "timepoint": fields.get("timepoint", ""),
            "stain": fields.get("stain", "stained" if fields and "{stain}" not in pattern else ""),
            "path": str(path.resolve()),
            "pattern_error": error,
        })
    table = pd.DataFrame(rows, columns=[*REQUIRED, "path", "pattern_error"])
    table.attrs["source"] = f"the file names (pattern {pattern})"  # named in check_samples' errors
    table.attrs["untimed"] = "{timepoint}" not in pattern  # every file analysed, none paired
    return table


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
    table = pd.DataFrame(rows, columns=[*REQUIRED, "path", "pattern_error"])
    table.attrs["source"] = "the files' keywords"  # named in check_samples' errors
    return table


def normalise_labels(samples: pd.DataFrame, *, baseline: str = "C2D1", followup: str = "C2D8",
                     timepoints: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Labels that differ only in case, surrounding spaces or Unicode normal form are one label.

    Control tubes become their kind (:func:`cytokit.controls.control_kind`: ``ISO``, ``IgG1``
    become ``isotype``, ``FMO-LAG3`` ``fmo``, ``Unstim`` ``unstimulated``, ``Unstained`` ``unstained``); timepoints equal to one of ``timepoints`` (default
    ``baseline`` and ``followup``) but for case become exactly those; any other stain or timepoint
    takes the spelling of its first row (patients too: ``CLL001`` and ``cll001`` are one patient).
    """
    out = samples.copy()
    for column in ("patient", "timepoint", "stain"):  # NFC: José typed, and José from a macOS file name
        out[column] = [unicodedata.normalize("NFC", v.strip()) for v in out[column].fillna("").astype(str)]
    kinds = out["stain"].map(control_kind)
    out.loc[kinds.notna(), "stain"] = kinds[kinds.notna()]
    named = tuple(timepoints) if timepoints is not None else (baseline, followup)
    for column, fixed in (("patient", ()), ("timepoint", named), ("stain", KINDS)):
        spelling = {label.casefold(): label for label in fixed}
        for label in out[column]:
            spelling.setdefault(label.casefold(), label)
        out[column] = [spelling[label.casefold()] for label in out[column]]
    return out


Comparison = tuple[str, str]
"""A pair of timepoints compared: ``(baseline, followup)``."""
Comparisons = Comparison | Sequence[Comparison | str] | str
"""One comparison, or several: pairs or ``"BASELINE:FOLLOWUP"`` texts (:func:`comparisons_of`)."""


def comparisons_of(compare: Comparisons | None = None, *, baseline: str | None = None,
                   followup: str | None = None) -> tuple[Comparison, ...]:
    """The comparisons of a run: ``compare`` (pairs, or ``"BASELINE:FOLLOWUP"`` texts) in the given
    order, else the one of ``baseline`` and ``followup`` (default ``C2D1`` and ``C2D8``).

    Raises
    ------
    MetadataError
        ``compare`` together with ``baseline``/``followup``; a text without one ``:``; a comparison of a
        timepoint with itself; a comparison named twice; an empty ``compare``.

    Examples
    --------
    >>> comparisons_of(["C1D1:C1D8", ("C2D1", "C2D8")])
    (('C1D1', 'C1D8'), ('C2D1', 'C2D8'))
    """
    if compare is None:
        pairs = [(baseline or "C2D1", followup or "C2D8")]
    else:
        if baseline is not None or followup is not None:
            raise MetadataError("give the comparisons either as compare (--compare BASELINE:FOLLOWUP, repeatable) "
                                "or as baseline and followup, not both")
        if isinstance(compare, str) or (isinstance(compare, tuple) and len(compare) == 2
                                         and all(isinstance(tp, str) for tp in compare)):
            compare = [compare]  # one comparison
        pairs = []
        for item in compare:
            parts = item.split(":") if isinstance(item, str) else list(item)
            if len(parts) != 2 or not all(isinstance(p, str) and p.strip() for p in parts):
                raise MetadataError(f"comparison {item!r}: give two timepoints as BASELINE:FOLLOWUP, e.g. C2D1:C2D8")
            pairs.append((parts[0].strip(), parts[1].strip()))
        if not pairs:
            raise MetadataError("no comparison given: name at least one as BASELINE:FOLLOWUP")
    seen = set()
    for b, f in pairs:
        if b.casefold() == f.casefold():
            raise MetadataError(f"the baseline and the follow-up are the same timepoint ({b!r}); "
                                "give two different timepoints to compare")
        if (b.casefold(), f.casefold()) in seen:
            raise MetadataError(f"the comparison {b}:{f} is named more than once")
        seen.add((b.casefold(), f.casefold()))
    return tuple(pairs)


def compared_timepoints(comparisons: tuple[Comparison, ...]) -> tuple[str, ...]:
    """The timepoints the comparisons name, in the order they are first named."""
    return tuple(dict.fromkeys(tp for pair in comparisons for tp in pair))


def timepoint_order(seen: Sequence[str], comparisons: tuple[Comparison, ...] = ()) -> list[str]:
    """``seen``'s distinct timepoints in time order, for a figure's axis: by the numbers in them where
    every label has one (``D0 D7 D14``, ``C1D1 C1D8 C2D1``, ``ova0 ova0.005 ova0.5``; a folder lists
    ``D14`` before ``D7``), else as first seen; then each comparison's baseline moved before its
    follow-up where that order says otherwise (``Pre``/``Post``).

    Examples
    --------
    >>> timepoint_order(["D14", "D0", "D7", "D0"])
    ['D0', 'D7', 'D14']
    >>> timepoint_order(["Post", "Pre", "Week 4"], (("Pre", "Post"),))
    ['Pre', 'Post', 'Week 4']
    """
    labels = list(dict.fromkeys(str(tp) for tp in seen if str(tp).strip()))

    def numbers(label: str) -> tuple:
        return tuple((text.casefold(), float(number)) for text, number in
                     re.findall(r"(\D*)(\d+(?:\.\d+)?)", label))

    if labels and all(numbers(tp) for tp in labels):
        labels.sort(key=numbers)  # stable: labels alike in their numbers stay as seen
    after = {tp: {b for b, f in comparisons if f == tp and b in labels} for tp in labels}
    order: list[str] = []
    while len(order) < len(labels):  # the first label (in the order above) whose baselines are placed
        ready = [tp for tp in labels if tp not in order and after[tp] <= set(order)]
        order.append(ready[0] if ready else next(tp for tp in labels if tp not in order))  # a cycle: as sorted
    return order


def group_column(samples: pd.DataFrame, column: str) -> str:
    """The sample sheet's column ``column`` names, in any case (``response`` for a header ``Response``).

    Raises
    ------
    MetadataError
        It is one of cytokit's own columns, or the sheet has none (or two) of that name.
    """
    own = (*REQUIRED, "path", "pattern_error", "control_file", *RESERVED)
    if column.strip().casefold() in {c.casefold() for c in own}:
        raise MetadataError(f"cannot group patients by {column!r}: it is one of cytokit's own columns; "
                            "name a column of the sample sheet such as response")
    if column in samples.columns:
        return column
    same = [c for c in samples.columns if str(c).strip().casefold() == column.strip().casefold()]
    if len(same) == 1:
        return same[0]
    listed = [str(c) for c in samples.columns if c in REQUIRED or c not in own]
    raise MetadataError(f"cannot group patients by {column!r}: the sample sheet has no such column (has "
                        f"{', '.join(listed)})")


#: a group cell saying one of these (any case) puts its patient in no group
MISSING_VALUES = frozenset({"na", "n/a", "#n/a", "nan", "null"})


def patient_groups(samples: pd.DataFrame, column: str) -> dict[str, str]:
    """patient → its value of the sheet's ``column`` (``--group-by``), for comparing groups of patients.

    Values are stripped, and values differing only in case are one (the first row's spelling); a
    patient whose rows leave it empty, or say ``NA``, ``N/A``, ``#N/A``, ``NaN`` or ``null`` (R's and
    Excel's missing values), is in no group.

    Raises
    ------
    MetadataError
        The sheet has no such column, it is one of cytokit's own, a patient's rows disagree (the
        message names the patient and the values), or fewer than two groups remain.
    """
    column = group_column(samples, column)
    values = samples[column].fillna("").astype(str).str.strip()
    values = values.mask(values.str.casefold().isin(MISSING_VALUES), "")
    spelling: dict[str, str] = {}
    for value in values:
        spelling.setdefault(value.casefold(), value)
    groups = {}
    for patient, rows in values.groupby(samples["patient"], sort=True):
        found = list(dict.fromkeys(spelling[v.casefold()] for v in rows if v))
        if len(found) > 1:
            raise MetadataError(f"patient {patient} has more than one {column} in the sample sheet "
                                f"({', '.join(map(repr, found))}); give all of a patient's rows the same value")
        if found and str(patient).strip():
            groups[str(patient)] = found[0]
    if len(set(groups.values())) < 2:
        raise MetadataError(f"column {column!r} puts the patients in fewer than two groups "
                            f"({', '.join(sorted(set(groups.values()))) or 'none'}); nothing to compare")
    return groups


def identical_files(paths: list[str | Path]) -> list[list[int]]:
    """Groups (indices into ``paths``) of files with identical bytes, or the same file listed twice.

    Only files that share their size and their first and last 64 KiB are hashed whole, so
    a cohort of distinct files costs one small read each.
    """
    from ._files import file_sha256

    def sample(path: str | Path) -> tuple[int, bytes, bytes]:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
            size = fh.seek(0, 2)
            fh.seek(max(0, size - (1 << 16)))
            return size, head, fh.read()

    candidates: dict[tuple, list[int]] = {}
    for k, path in enumerate(paths):
        try:
            candidates.setdefault(sample(path), []).append(k)
        except OSError:  # unreadable: reading it will report the error by name
            continue
    groups: list[list[int]] = []
    for members in candidates.values():
        if len(members) < 2:
            continue
        by_hash: dict[str, list[int]] = {}
        for k in members:
            by_hash.setdefault(file_sha256(paths[k]), []).append(k)
        groups.extend(g for g in by_hash.values() if len(g) > 1)
    return sorted(groups)


def check_samples(
    samples: pd.DataFrame,
    *,
    folder: str | Path | None = None,
    baseline: str = "C2D1",
    followup: str = "C2D8",
    comparisons: Comparisons | None = None,
    needs_control: bool = True,
) -> pd.DataFrame:
    """Add ``status`` (``ok``, ``error``, ``unpaired``) and ``error`` to a samples table.

    Reported by name: sheet rows whose file does not exist, files in ``folder``
    that no row lists, files with the same bytes as another row's (a copy under a
    second name, or one file listed twice), duplicate tubes, controls that cannot be matched
    (:func:`cytokit.controls.assign_controls`: stained tubes without a control, controls without a
    stained tube, a ``control_file`` naming no usable control ...), tubes at a timepoint no
    comparison uses, and tubes whose patient lacks the other timepoint of every comparison of theirs.
    ``comparisons`` (see :func:`comparisons_of`) default to the one of ``baseline`` and ``followup``.
    Without ``needs_control`` (every marker's positivity ``method: none``) a stained tube without a
    control is paired all the same.
    """
    comparisons = comparisons_of(baseline=baseline.strip(), followup=followup.strip()) if comparisons is None \
        else comparisons_of(comparisons)
    taken = [c for c in RESERVED if c in samples.columns]
    if taken:
        raise MetadataError("the sample sheet has column(s) " + ", ".join(f"{c!r} ({RESERVED[c]})" for c in taken)
                            + ", which cytokit writes into its samples table; rename them")
    named = compared_timepoints(comparisons)
    untimed = bool(samples.attrs.get("untimed"))  # a pattern without {timepoint}: no tube has one
    out = normalise_labels(samples, timepoints=named)
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
        elif not (row["patient"] and (row["timepoint"] or untimed) and row["stain"]):
            mark(i, "error", "patient, timepoint or stain is empty")

    readable = out.index[out["status"] != "error"]
    for group in identical_files([out.at[i, "path"] for i in readable]):
        rows = [readable[k] for k in group]
        for i in rows:
            same = [j for j in rows if j != i and Path(out.at[j, "path"]) == Path(out.at[i, "path"])]
            if same:
                mark(i, "error", f"{out.at[i, 'file']} is listed {len(same) + 1} times in the sample sheet; "
                                 "none of its rows is analysed")
                continue
            others = ", ".join(dict.fromkeys(out.at[j, "file"] for j in rows if j != i))
            mark(i, "error", f"the same bytes as {others}: one FCS file under two names (a copy?); "
                             "neither is analysed")

    key = ["patient", "timepoint", "stain"]
    dup = out.duplicated(key, keep=False) & (out["status"] != "error")
    if "control_file" in out and (out["control_file"].fillna("").astype(str).str.strip() != "").any():
        dup &= ~out["stain"].isin(KINDS)  # controls named by file: several of a kind may share a timepoint
    for i in out.index[dup]:
        r = out.loc[i]
        mark(i, "error", f"duplicate tube: {r.patient} {r.timepoint} {r.stain} is listed more than once")

    assign_controls(out, mark, sheet=samples.attrs.get("sheet") or samples.attrs.get("source", "the sample sheet"), needs_control=needs_control)
    _mark_uncompared(out, comparisons, mark)

    if folder is not None:
        listed = {str(Path(p).resolve()) for p in out["path"]}
        extra = [p for p in list_fcs(folder) if str(p.resolve()) not in listed]
        rows = pd.DataFrame([{
            "file": p.name, "patient": "", "timepoint": "", "stain": "", "path": str(p.resolve()),
            "pattern_error": "", "status": "error", "error": "file is in the folder but not in the sample sheet: "
                                                         "add a row for it, or move it out of the folder",
            "control_file": "", "control_of": "",
        } for p in extra])
        if len(rows):
            out = pd.concat([out, rows], ignore_index=True)
    return out.drop(columns=["pattern_error"])


def _mark_uncompared(out: pd.DataFrame, comparisons: tuple[Comparison, ...], mark) -> None:
    """``unpaired``: tubes at a timepoint no comparison names (analysed and reported, but unused), and
    tubes of a patient who lacks the other timepoint of each comparison that names theirs."""
    named = compared_timepoints(comparisons)
    what = "the paired comparison" if len(comparisons) == 1 else "the paired comparisons"
    compared = out["timepoint"].isin(named)
    for i in out.index[(out["status"] == "ok") & ~compared]:
        serves = str(out.at[i, "control_of"]) if "control_of" in out else ""  # its thresholds are used
        if not out.at[i, "timepoint"]:  # a study without timepoints (a pattern without {timepoint})
            mark(i, "unpaired", "no timepoint (the file-name pattern has no {timepoint}): analysed, not paired"
                 + (f" (the control of {serves})" if serves else ""))
            continue
        if len(comparisons) == 1:
            (baseline, followup), = comparisons
            why = f"is neither the baseline ({baseline}) nor the follow-up ({followup})"
        else:
            why = f"is in no comparison ({', '.join(f'{b}:{f}' for b, f in comparisons)})"
        mark(i, "unpaired", f"timepoint {out.at[i, 'timepoint']} {why}; analysed but left out of {what}"
             + (f" (the control of {serves})" if serves else ""))
    for patient, group in out[(out["status"] == "ok") & compared].groupby("patient"):
        have = set(group["timepoint"])
        for timepoint, tubes in group.groupby("timepoint", sort=False):
            pairs = [pair for pair in comparisons if timepoint in pair]
            if any(set(pair) <= have for pair in pairs):
                continue
            lacking = list(dict.fromkeys(tp for pair in pairs for tp in pair if tp not in have))
            mine = out[out["patient"] == patient]
            in_error = sorted(set(mine.loc[mine["status"] == "error", "timepoint"]) - have - {""})
            elsewhere = sorted(set(mine["timepoint"]) - set(named) - set(in_error) - {""})
            found = "; ".join([", ".join(sorted(have)), *([f"{', '.join(in_error)} only in tubes with errors"]
                                                        if in_error else []),
                               *([f"{', '.join(elsewhere)} in no comparison"] if elsewhere else [])])
            for i in tubes.index:
                mark(i, "unpaired", f"patient {patient} has no usable {' or '.join(lacking)} tube pair "
                                    f"(usable timepoints: {found}); analysed but left out of {what}")
    stained = out[(out["status"] == "ok") & compared & ~out["stain"].isin(KINDS)]
    for (patient, stain), group in stained.groupby(["patient", "stain"]):  # pairs are of one stain
        have = set(group["timepoint"])
        for i in group.index:
            pairs = [pair for pair in comparisons if out.at[i, "timepoint"] in pair]
            if not any(set(pair) <= have for pair in pairs):
                lacking = list(dict.fromkeys(tp for pair in pairs for tp in pair if tp not in have))
                mark(i, "unpaired", f"patient {patient} has no {' or '.join(lacking)} tube stained {stain!r} "
                                    f"to pair it with; analysed but left out of {what}")
