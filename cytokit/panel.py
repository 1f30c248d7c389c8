"""Panel sheets: which marker each detector carries, for files whose ``$PnS`` does not say.

A panel sheet is a CSV with columns ``channel`` (the ``$PnN``) and ``marker``, and optionally
``file`` (a file name or a glob such as ``*_BM_*.fcs``; empty: every file) for a sheet that
covers several panels. Rows with an empty marker are ignored. Where a sheet names a channel's
marker it takes precedence over the file's ``$PnS``; channels it does not name keep theirs::

    channel,marker
    Alexa Fluor 488-A,CD8
    7-AAD-A,CD69

:func:`read_panel` reads a sheet into a :class:`Panel`; :meth:`Panel.label` gives a sample
whose channel table carries the sheet's markers, which role resolution, gating, quantification
and the figures then read as its ``$PnS``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from .errors import MetadataError
from .sample import Sample

REQUIRED = ("channel", "marker")
_SYNONYMS = {  # other panels' headers, named in the error
    "channel": {"detector", "parameter", "pnn", "channelname"},  # not a fluorochrome: a channel is a $PnN
    "marker": {"antigen", "antibody", "target", "pns", "markername", "stain", "specificity", "description"},
}


@dataclass(frozen=True)
class PanelRow:
    """One row of a panel sheet: ``channel`` carries ``marker`` in files matching ``file``."""

    channel: str
    marker: str
    file: str = ""  # a file name or glob; "" for every file
    line: int = 0


@dataclass(frozen=True)
class Panel:
    """A panel sheet's rows (build it with :func:`read_panel`)."""

    rows: tuple[PanelRow, ...]
    source: str = "<panel>"
    sha256: str = ""

    def rows_for(self, file_name: str | None) -> list[PanelRow]:
        """The rows that apply to a file (by name; ``None``: only rows without a ``file``)."""
        return [r for r in self.rows if not r.file
                or (file_name is not None and fnmatchcase(file_name.lower(), r.file.lower()))]

    def markers_for(self, file_name: str | None) -> dict[str, str]:
        """``$PnN`` → marker for a file; a row naming the file (or a glob) overrides a row for every file.

        Raises
        ------
        MetadataError
            Two file patterns that both match the file give one channel different markers.
        """
        markers: dict[str, PanelRow] = {}
        for row in sorted(self.rows_for(file_name), key=lambda r: bool(r.file)):  # every-file rows first
            before = markers.get(row.channel)
            if before is not None and before.file and before.marker != row.marker:
                raise MetadataError(
                    f"{self.source}, lines {before.line} and {row.line}: file patterns {before.file!r} and "
                    f"{row.file!r} both match {file_name} and give channel {row.channel!r} markers "
                    f"{before.marker!r} and {row.marker!r}; make the patterns exclusive")
            markers[row.channel] = row
        return {channel: row.marker for channel, row in markers.items()}

    def label(self, sample: Sample) -> Sample:
        """``sample`` with the sheet's markers as the ``pns`` of its channel table (events shared).

        Channels the sheet does not name keep their ``$PnS``; sheet channels the file lacks are
        ignored (panels differ between files). Channels are matched whatever their case and spacing.
        """
        markers = _loose(self.markers_for(sample.path.name if sample.path is not None else None))
        if not markers:
            return sample
        labelled = copy.copy(sample)  # events, keywords and a computed sha256 shared: the file is the same
        labelled.channels = sample.channels.assign(
            pns=[markers.get(_key(pnn), pns) for pnn, pns in zip(sample.channels["pnn"], sample.channels["pns"])])
        return labelled

    def note_for(self, sample: Sample) -> str:
        """Why the sheet gave ``sample`` no marker, for an error message ("" when it gave some)."""
        name = sample.path.name if sample.path is not None else None
        rows = self.rows_for(name)
        if not rows:
            patterns = sorted({r.file for r in self.rows})
            return (f"panel sheet {self.source} has no row for {name or 'a sample in memory'} (its file "
                    f"patterns: {', '.join(patterns)})")
        if not set(_loose(self.markers_for(name))) & {_key(p) for p in sample.channels.pnn}:
            return (f"none of the channels panel sheet {self.source} gives {name or 'the sample'} "
                    f"({', '.join(sorted({r.channel for r in rows}))}) is a $PnN of the file")
        return ""

    def __repr__(self) -> str:
        files = {r.file for r in self.rows if r.file}
        return (f"Panel({self.source!r}, {len(self.rows)} markers"
                + (f", {len(files)} file patterns" if files else "") + ")")


def _key(channel: str) -> str:
    """A channel name as a sheet is matched to a file's ``$PnN``: case and runs of spaces aside."""
    return " ".join(str(channel).split()).casefold()


def _loose(markers: dict[str, str]) -> dict[str, str]:
    return {_key(channel): marker for channel, marker in markers.items()}


def read_panel(path: str | Path) -> Panel:
    """Read a panel sheet (see the module docstring).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> sheet = pathlib.Path(tempfile.mkdtemp()) / "panel.csv"
    >>> _ = sheet.write_text("channel,marker\\nFL1-A,CD19\\nFSC-A,\\n")
    >>> read_panel(sheet).markers_for("a.fcs")
    {'FL1-A': 'CD19'}

    Raises
    ------
    MetadataError
        The sheet cannot be read, lacks the ``channel`` or ``marker`` column, or lists a
        channel twice for one file pattern with different markers.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MetadataError(f"{path}: cannot read the panel sheet ({exc.strerror or exc})") from None
    from .sheet import decode, separator

    try:
        text = decode(data)
    except UnicodeDecodeError as exc:  # UTF-16 cut short
        raise MetadataError(f"{path}: the panel sheet is not readable text ({exc})") from None

    reader = csv.DictReader(text.splitlines(), delimiter=separator(text))  # ',', ';' or tab, as sample sheets
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        renames = [f"{c} → {need}" for need in missing for c in columns if re.sub(r"\W", "", c) in _SYNONYMS[need]]
        raise MetadataError(f"{path}, line 1: a panel sheet needs the columns channel,marker (and optionally "
                            f"file); missing {', '.join(missing)} (found: {', '.join(columns) or 'none'})"
                            + (f"; rename {', '.join(renames)}" if renames else ""))
    rows: list[PanelRow] = []
    seen: dict[tuple[str, str], PanelRow] = {}
    for line, record in enumerate(reader, start=2):
        cells = {name: (record.get(columns[name]) or "").strip() if name in columns else ""
                 for name in (*REQUIRED, "file")}
        row = PanelRow(cells["channel"], cells["marker"], cells["file"], line)
        if not row.marker:
            continue
        if not row.channel:
            raise MetadataError(f"{path}, line {line}: marker {row.marker!r} has no channel ($PnN)")
        before = seen.get((row.file, row.channel))
        if before is not None:
            if before.marker != row.marker:
                where = f" for files {row.file!r}" if row.file else ""
                raise MetadataError(f"{path}, line {line}: channel {row.channel!r}{where} is marker "
                                    f"{before.marker!r} on line {before.line} and {row.marker!r} here; "
                                    "a channel carries one marker")
            continue
        seen[(row.file, row.channel)] = row
        rows.append(row)
    return Panel(tuple(rows), str(path), hashlib.sha256(data).hexdigest())


__all__ = ["Panel", "PanelRow", "read_panel"]
