"""HEADER and TEXT parsing: offsets, delimiters and escapes, keywords, supplemental TEXT, ``$NEXTDATA``."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import FCSError

_MAGIC = re.compile(rb"^FCS(\d\.\d)")
_SUPPORTED = {"2.0", "3.0", "3.1", "3.2"}


class FCSWarning(UserWarning):
    """An FCS file breaks the standard in a way cytokit can read around."""


class FCSDataWarning(FCSWarning):
    """A warning that the events may be misread (DATA holding whole events beyond ``$TOT``, a ``$PnE``
    read as linear): ``cytokit run`` and ``cytokit gate`` put it in the file's quality flags."""


@dataclass(frozen=True)
class _Segment:
    """One data set's parsed HEADER and TEXT."""

    start: int  # byte offset of this data set's HEADER in the file
    version: str
    keywords: dict[str, str]
    header_data: tuple[int, int]
    #: (name, first byte, last byte) of what DATA must not overlap, relative to ``start``:
    #: the HEADER, the TEXT and the supplemental TEXT read
    occupied: tuple[tuple[str, int, int], ...] = ()


def _fail(path: Path, what: str) -> FCSError:
    return FCSError(f"{path}: {what}")


def _warn(path: Path, what: str, category: type[FCSWarning] | None = None) -> None:
    warnings.warn(f"{path}: {what}", category or FCSWarning, stacklevel=3)


def _quote(value: str, limit: int = 60) -> str:
    """``repr`` of a keyword value for a message, cut to ``limit`` characters (binary values run long)."""
    value = str(value)
    return repr(value if len(value) <= limit else value[: limit - 3] + "…")


# --------------------------------------------------------------------------- HEADER / TEXT


def _parse_offset(field: bytes) -> int | None:
    text = field.strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(field)
    return int(text)


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # pre-3.1 files use Latin-1 / Mac-Roman
        return raw.decode("latin-1")


#: what follows a CellQuest empty value ("/$P3S//$P4S/"): a $-keyword, CellQuest's "&1Sample",
#: "@..." or the vendor shapes "BD$WORD12" and "P7THRESVOL"
_KEYWORD_LIKE = re.compile(r"[$@]|&\d|[A-Z][A-Z0-9]*\$[A-Z0-9]|P\d+[A-Z]+$")


def _split_text(text: str) -> list[str]:
    """Split a TEXT segment into tokens; a doubled delimiter is an escaped one.

    Except directly after a keyword and before a keyword-like token: FCS 3.x allows no
    empty values, but CellQuest (FCS 2.0) wrote them as a doubled delimiter, and a
    keyword holding the delimiter is no real keyword (``/$P3S//$P4S//$P6N/FL1-A/``:
    ``$P3S`` and ``$P4S`` are empty, ``$P6N`` is ``FL1-A``).
    """
    if not text:
        return []
    delim = text[0]
    # Drop padding after the final delimiter, then the final delimiter itself.
    body = text[1:].rstrip("\x00 \r\n")
    if body.endswith(delim):
        body = body[:-1]
    tokens: list[str] = []
    current: list[str] = []
    # Runs of delimiters: an even run is escaped delimiters, an odd one also separates.
    pieces = [piece for piece in re.split(f"({re.escape(delim)}+)", body) if piece]
    for k, piece in enumerate(pieces):
        if piece[0] == delim:
            if (len(piece) == 2 and len(tokens) % 2 == 0 and len(current) == 1 and k + 1 < len(pieces)
                    and _KEYWORD_LIKE.match(pieces[k + 1].strip().upper())):
                tokens += [current[0], ""]  # a keyword, its empty value; the next keyword follows
                current = []
                continue
            current.append(delim * (len(piece) // 2))
            if len(piece) % 2:
                tokens.append("".join(current))
                current = []
        else:
            current.append(piece)
    if current:
        tokens.append("".join(current))
    return tokens


def _parse_keywords(path: Path, raw: bytes) -> dict[str, str]:
    tokens = _split_text(_decode_text(raw))
    if len(tokens) % 2:
        # Seen in CellQuest files: the last keyword's value is empty ("/KEY//").
        _warn(path, f"TEXT keyword {_quote(tokens[-1])} has no value; read as empty")
        tokens.append("")
    keywords: dict[str, str] = {}
    for key, value in zip(tokens[::2], tokens[1::2]):
        keywords.setdefault(key.strip().upper(), value.strip())
    return keywords


def _int_keyword(path: Path, keywords: dict[str, str], key: str, default: int | None = None) -> int | None:
    value = keywords.get(key, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        try:
            as_float = float(value)
        except ValueError:
            raise _fail(path, f"keyword {key} = {_quote(value)} is not a number") from None
        if not as_float.is_integer():
            raise _fail(path, f"keyword {key} = {_quote(value)} is not a whole number") from None
        return int(as_float)


def _read_segment(path: Path, fh, file_size: int, start: int) -> _Segment:
    if file_size == 0:
        raise _fail(path, "empty file (0 bytes): not an FCS file (an interrupted copy or export?)")
    fh.seek(start)
    header = fh.read(58)
    match = _MAGIC.match(header)
    if not match:
        where = "" if start == 0 else f" at byte {start} (from $NEXTDATA)"
        raise _fail(path, f"not an FCS file: no 'FCSx.y' HEADER{where}")
    version = match.group(1).decode()
    if version not in _SUPPORTED:
        raise _fail(path, f"FCS {version} is not supported (cytokit reads FCS 2.0, 3.0, 3.1 and 3.2)")
    if len(header) < 42:
        raise _fail(path, f"HEADER is {len(header)} bytes; FCS needs at least 42 (truncated?)")
    try:
        text_begin, text_end, data_begin, data_end = (
            _parse_offset(header[i : i + 8]) for i in (10, 18, 26, 34)
        )
    except ValueError as exc:
        raise _fail(path, f"HEADER offset {exc.args[0]!r} is not a number") from None
    if text_begin is None or text_end is None or text_end < text_begin:
        raise _fail(path, f"HEADER has no valid TEXT offsets ({text_begin}-{text_end})")
    if start + text_end >= file_size:
        raise _fail(
            path,
            f"TEXT segment ends at byte {start + text_end} but the file has {file_size} bytes (truncated?)",
        )
    fh.seek(start + text_begin)
    keywords = _parse_keywords(path, fh.read(text_end - text_begin + 1))
    if not keywords:
        raise _fail(path, "TEXT segment holds no keywords")
    header_data = (data_begin or 0, data_end or 0)
    occupied = [("HEADER", 0, 57), ("TEXT", text_begin, text_end)]
    if text_begin < 58:
        raise _fail(path, f"TEXT segment {text_begin}-{text_end} overlaps the HEADER (bytes 0-57)")
    stext = _supplemental_bounds(path, file_size, start, keywords, (text_begin, text_end), header_data)
    if stext is not None:
        fh.seek(start + stext[0])
        supplemental = _parse_keywords(path, fh.read(stext[1] - stext[0] + 1))
        keywords.update((k, v) for k, v in supplemental.items() if k not in keywords)
        occupied.append(("supplemental TEXT", *stext))
    return _Segment(start, version, keywords, header_data, tuple(occupied))


def _supplemental_bounds(path, file_size, start, keywords, primary, header_data) -> tuple[int, int] | None:
    """The supplemental TEXT's offsets, or None (with a warning when they cannot be right)."""
    try:
        begin = _int_keyword(path, keywords, "$BEGINSTEXT", 0) or 0
        end = _int_keyword(path, keywords, "$ENDSTEXT", 0) or 0
    except FCSError:
        _warn(path, "$BEGINSTEXT/$ENDSTEXT are not numbers; supplemental TEXT ignored")
        return None
    if begin <= 0 or end <= begin or (begin, end) == primary:
        return None
    if start + end >= file_size:
        _warn(path, f"supplemental TEXT {begin}-{end} lies beyond the end of the file; ignored")
        return None
    others = [("HEADER", (0, 57)), ("TEXT", primary), ("HEADER DATA offsets", header_data)]
    try:
        others.append(("$BEGINDATA/$ENDDATA", (_int_keyword(path, keywords, "$BEGINDATA", 0) or 0,
                                                _int_keyword(path, keywords, "$ENDDATA", 0) or 0)))
    except FCSError:
        pass
    for name, (a, b) in others:
        if 0 <= a < b and begin <= b and end >= a:
            _warn(path, f"supplemental TEXT {begin}-{end} overlaps the {name} ({a}-{b}); ignored")
            return None
    return begin, end


# --------------------------------------------------------------------------- data sets


def _walk(path: Path, fh, file_size: int) -> list[_Segment]:
    segments = [_read_segment(path, fh, file_size, 0)]
    seen = {0}
    while True:
        last = segments[-1]
        try:
            step = _int_keyword(path, last.keywords, "$NEXTDATA", 0) or 0
        except FCSError:
            _warn(path, f"$NEXTDATA = {_quote(last.keywords['$NEXTDATA'])} is not a number; "
                        "later data sets ignored")
            break
        if step <= 0:
            break
        # $NEXTDATA is relative to the start of the current data set.
        nxt = last.start + step
        if nxt in seen or nxt + 58 > file_size:
            _warn(path, f"$NEXTDATA points to byte {nxt}, which holds no further data set; ignored")
            break
        seen.add(nxt)
        try:
            segments.append(_read_segment(path, fh, file_size, nxt))
        except FCSError as exc:
            _warn(path, f"data set at byte {nxt} cannot be read ({exc}); ignored")
            break
    return segments


def list_datasets(path: str | os.PathLike) -> pd.DataFrame:
    """List the data sets along a file's ``$NEXTDATA`` chain.

    Returns
    -------
    pandas.DataFrame
        One row per data set: ``dataset, offset, version, n_events, n_params``.
    """
    path = Path(path)
    with _open(path) as (fh, size):
        segments = _walk(path, fh, size)
    rows = []
    for i, seg in enumerate(segments):
        kw = seg.keywords
        rows.append(
            {
                "dataset": i,
                "offset": seg.start,
                "version": seg.version,
                "n_events": _int_keyword(path, kw, "$TOT", -1),
                "n_params": _int_keyword(path, kw, "$PAR", -1),
            }
        )
    return pd.DataFrame(rows)


def read_keywords(path: str | os.PathLike, *, dataset: int = 0) -> dict[str, str]:
    """The TEXT keywords of one data set, without reading its events."""
    path = Path(path)
    with _open(path) as (fh, size):
        segments = _walk(path, fh, size) if dataset else [_read_segment(path, fh, size, 0)]
    if not 0 <= dataset < len(segments):
        raise _fail(path, f"data set {dataset} requested but the file has {len(segments)}")
    return dict(segments[dataset].keywords)


class _open:
    """Open a file for reading, turning OS errors into :class:`FCSError`."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        try:
            self.fh = open(self.path, "rb")
            size = os.fstat(self.fh.fileno()).st_size
        except OSError as exc:
            raise FCSError(f"{self.path}: cannot open ({exc.strerror or exc})") from None
        return self.fh, size

    def __exit__(self, *exc):
        self.fh.close()
        return False
