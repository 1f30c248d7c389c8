"""Control tubes: their kinds, and which stained tube each serves.

A control tube's stain label names its kind (:data:`KINDS`): an isotype control, an FMO
(fluorescence minus one), an unstimulated or an unstained tube. Positivity is learned on the
control a stained tube is matched with: the tube its sheet row names in a ``control_file``
column (the layout of ``activation/design.csv``: every stimulated tube names its unstimulated
control), else the one control tube of its patient and timepoint (how isotype sheets have
always worked). :func:`assign_controls` fills both directions into the samples table:
``control_file`` (a stained tube's control) and ``control_of`` (the stained tubes a control
serves), and reports every row it cannot match by name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd

from .errors import MetadataError

ISOTYPE = "isotype"
FMO = "fmo"
UNSTIMULATED = "unstimulated"
UNSTAINED = "unstained"
KINDS = (ISOTYPE, FMO, UNSTIMULATED, UNSTAINED)
"""The control kinds, as the ``stain`` of a control tube reads once normalised."""
_LABELS = {
    ISOTYPE: re.compile(r"(iso(types?)?(controls?|ctrls?)?|[mhr]?igg\d?[abc]?|controls?|ctrls?)\d*"),
    FMO: re.compile(r"fmo[a-z0-9]*"),
    UNSTIMULATED: re.compile(r"(un|non|no)stim(ulated|ulation)?(control|ctrl)?\d*"),
    UNSTAINED: re.compile(r"(unstained|nostain|unlabell?ed)(control|ctrl)?\d*"),
}
"""Stain labels read as each kind once case-folded with spaces and punctuation removed:
``Isotype control``, ``Isotypes``, ``IgG1``, ``mIgG1``, ``ctrl``, ``isotype_001`` (isotype); ``FMO``, ``FMO-LAG3``
(fmo); ``Unstim``, ``unstimulated``, ``no stim`` (unstimulated); ``Unstained``, ``unlabelled``
(unstained). Else a label one of whose words is one kind's and no other's: ``isotype PE``,
``IgG1-PE``, ``LAG3 ISO``, ``Isotype (IgG1)`` (isotype), ``LAG3 FMO`` (fmo)."""
_WORDS = {  # one word of a longer label: not "control" alone (a positive control is stained)
    ISOTYPE: re.compile(r"iso(types?)?\d*|[mhr]?igg\d?[abc]?\d*"),
    FMO: _LABELS[FMO],
    UNSTIMULATED: re.compile(r"(un|non|no)stim(ulated)?"),
    UNSTAINED: re.compile(r"unstained|unlabell?ed"),
}
WHAT = "an isotype, FMO, unstimulated or unstained tube"


def control_kind(stain: str) -> str | None:
    """The control kind a stain label names, or None for a stained tube.

    Examples
    --------
    >>> control_kind("FMO-LAG3"), control_kind("Unstim"), control_kind("IgG1"), control_kind("stained")
    ('fmo', 'unstimulated', 'isotype', None)
    >>> control_kind("isotype PE"), control_kind("LAG3 ISO"), control_kind("LAG3 stim")
    ('isotype', 'isotype', None)
    """
    return _kind(str(stain))


@functools.lru_cache(maxsize=4096)
def _kind(stain: str) -> str | None:
    """:func:`control_kind` of a label, kept: a run asks it of the same few labels for every row of
    its tables (a 250-patient report asked it a million times)."""
    label = re.sub(r"[\W_]", "", stain.casefold())
    whole = next((kind for kind, pattern in _LABELS.items() if pattern.fullmatch(label)), None)
    if whole is not None:
        return whole
    words = [w for w in re.split(r"[\W_]+", stain.casefold()) if w]
    kinds = {kind for kind, pattern in _WORDS.items() for w in words if pattern.fullmatch(w)}
    return kinds.pop() if len(kinds) == 1 else None


def is_control(stain: str) -> bool:
    """Whether a stain label names a control tube of any kind (:func:`control_kind`)."""
    return control_kind(stain) is not None


Mark = Callable[[object, str, str], None]
"""``mark(index, status, message)``: :func:`cytokit.metadata.check_samples`'s way to report a row."""


def assign_controls(out: pd.DataFrame, mark: Mark, *, sheet: str = "the sample sheet",
                    needs_control: bool = True) -> None:
    """Set ``control_file`` (stained tubes: the control their positivity is learned on) and
    ``control_of`` (control tubes: the stained tubes they serve, ``; ``-joined) on a checked
    samples table whose control tubes' ``stain`` is their kind; rows already in error take no part.

    A row's ``control_file`` (when the sheet has the column) names its control by file name; an
    empty one means the one control tube of its patient and timepoint. Reported by name through
    ``mark``: a control that is not in ``sheet``, not a control tube, another patient's, or
    unusable; several controls at a timepoint where one is needed; a control tube given a
    control; a stained tube without a control (unless not ``needs_control``: no marker's
    positivity uses one), and a control that serves no stained tube.
    """
    has_column = "control_file" in out
    named = out["control_file"].fillna("").astype(str).str.strip() if has_column \
        else pd.Series("", index=out.index)
    by_file = {f: i for i, f in zip(out.index, out["file"])}
    kind = out["stain"].map(control_kind)
    out["control_file"], out["control_of"] = "", ""
    for i in out.index[(out["status"] != "error") & kind.notna() & (named != "")]:
        mark(i, "error", f"{sheet}: {out.at[i, 'file']} is a control tube ({kind[i]}) and names a control "
                         f"({named[i]}) in control_file; a control tube takes none: leave it empty")
    controls = out[(out["status"] != "error") & kind.notna()]
    # each patient × timepoint's controls looked up once, not by a mask over the table per tube (for
    # 10,000 files that was 5,000 masks of 5,000 rows)
    at: dict[tuple, list] = {}
    for file, stain, patient, timepoint in zip(*(controls[c] for c in ("file", "stain", "patient", "timepoint"))):
        at.setdefault((patient, timepoint), []).append((file, stain))
    for i in out.index[(out["status"] != "error") & kind.isna()]:
        want = named[i]
        if want:
            j = by_file.get(want)
            problem = _named_problem(out, out.loc[i], want, j, kind[j] if j is not None else None, sheet)
            if problem:
                mark(i, "error", problem)
            else:
                out.at[i, "control_file"] = want
            continue
        file, patient, timepoint = (out.at[i, c] for c in ("file", "patient", "timepoint"))  # not a Series per tube
        here = at.get((patient, timepoint), [])
        if len(here) == 1:
            out.at[i, "control_file"] = here[0][0]
        elif len(here) > 1:
            found = ", ".join(f"{f} ({s})" for f, s in here)
            mark(i, "error", f"{sheet}: {patient} {timepoint} has {len(here)} control tubes ({found}) "
                             f"and one is needed: name the one {file} uses in a control_file column")
        elif needs_control:
            lost = out[(out["status"] == "error") & kind.notna() & (out["patient"] == patient)
                       & (out["timepoint"] == timepoint)]
            mark(i, "unpaired", f"no usable control tube for {patient} {timepoint}: "
                                + ("; ".join(f"{f}: {e}" for f, e in zip(lost["file"], lost["error"]))
                                   if len(lost) else
                                   f"none in {sheet} ({WHAT}); or name one in a sample sheet's control_file column"))
    serving: dict[str, list] = {}  # control file → the files it serves, in the table's order
    for control, file in zip(*(out.loc[out["status"] != "error", c] for c in ("control_file", "file"))):
        serving.setdefault(control, []).append(file)
    for j in controls.index:
        files = serving.get(out.at[j, "file"], [])
        out.at[j, "control_of"] = "; ".join(files)
        if not files:
            row = out.loc[j]
            mark(j, "unpaired", f"{row.stain} tube without a stained tube for {row.patient} {row.timepoint}"
                 + (" (no row's control_file names it)" if (named != "").any() else ""))


def _named_problem(out: pd.DataFrame, row: pd.Series, want: str, j, kind: str | None, sheet: str) -> str:
    """Why ``row`` cannot use the tube its control_file names (``j``: that tube's index), or ``""``."""
    head = f"{sheet}: {row.file}'s control_file names {want}"
    if j is None:
        return f"{head}, which is not in the sample sheet (give the file name of a row of the sheet)"
    other = out.loc[j]
    if other.file == row.file:
        return f"{head}, itself; name {WHAT}"
    if kind is None:
        return (f"{head}, whose stain {other.stain!r} names no control kind; a control's stain must say what "
                f"it is: isotype, FMO, unstimulated or unstained")
    if other.patient != row.patient:
        return f"{head}, a tube of patient {other.patient}; a control serves its own patient's tubes ({row.patient})"
    if other.status == "error":
        return f"{head}, which cannot be used: {other.error}"
    return ""


def check_controls(controls: Mapping[str, str], files: Iterable[str | Path] | None = None) -> dict[str, str]:
    """``{file name: control}`` from ``{file: control file}`` (names or paths), refusing a tube
    that is its own control or a control that has one (a control is gated on itself: its cut
    would move with a stimulated tube's events), and, given the ``files`` analysed, controls
    naming none of them as a tube or a control (a sheet may cover more files than are analysed, but one that
    matches none is the wrong sheet or names its files otherwise)."""
    out = {Path(str(k)).name: str(v) for k, v in controls.items() if v}
    names = None if files is None else {Path(f).name for f in files}
    tubes = set(out) | {Path(v).name for v in out.values()}
    if out and names and not names & tubes:
        raise MetadataError(f"controls: none of the {len(tubes)} tubes they name ({_some(tubes)}) is among the "
                            f"files ({_some(names)}); they are matched by file name")
    for name, ctrl in out.items():
        if Path(ctrl).name == name:
            raise MetadataError(f"controls: {name} is named as its own control")
        if Path(ctrl).name in out:
            raise MetadataError(f"controls: {name}'s control {ctrl} has a control of its own "
                                f"({out[Path(ctrl).name]}); a control tube is gated on itself")
    return out


def _some(names: set[str]) -> str:
    return ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
