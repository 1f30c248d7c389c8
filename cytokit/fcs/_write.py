"""Writing FCS files: :func:`write_fcs`."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..sample import Sample
from ._channels import _time_step
from ._read import read_fcs  # noqa: F401  (used by the write_fcs doctest)


# --------------------------------------------------------------------------- writing

#: keywords that describe the layout of the file read, rewritten for the file written
_LAYOUT = re.compile(
    r"^\$(BEGIN|END)(DATA|STEXT|ANALYSIS)$"
    r"|^\$(NEXTDATA|TOT|PAR|DATATYPE|BYTEORD|MODE|SPILLOVER|SPILL|TIMESTEP)$"
    r"|^\$P\d+([BENRGS]|DATATYPE)$"
)


def _kept_keywords(sample: Sample, names: list[str]) -> dict[str, str]:
    """The sample's keywords that still hold for the channels ``names``.

    Per-channel keywords (``$PnV``, ``$PnD``, ...) follow their channel to its new
    number, and are dropped with it when it is not written.
    """
    number = {old: names.index(pnn) + 1 for old, pnn in enumerate(sample.channels.pnn, start=1)
              if pnn in names}
    kept = {}
    for key, value in sample.keywords.items():
        if _LAYOUT.match(key):
            continue
        channel = re.fullmatch(r"(\$?P)(\d+)([A-Z].*)", key)
        if channel is None:
            kept[key] = value
        elif int(channel[2]) in number:
            kept[f"{channel[1]}{number[int(channel[2])]}{channel[3]}"] = value
    return kept


def _scale_top(sample: Sample) -> dict[str, float]:
    """Each channel's top of scale in scale values (``$PnR``, or ``10**decades`` for log channels)."""
    table = sample.channels
    log_top = 10.0**table.decades * table.offset.where(table.offset > 0, 1.0)
    return dict(zip(table.pnn, np.where(table.decades > 0, log_top, table.range)))


def _in_steps(seconds: np.ndarray, step: float, dtype: np.dtype) -> np.ndarray | None:
    """Time in ``step`` units that reads back to exactly ``seconds``, or ``None``."""
    for steps in (np.rint(seconds / step), seconds / step):  # whole steps, as instruments count
        stored = steps.astype(dtype)
        if np.array_equal(stored.astype(np.float64) * step, seconds, equal_nan=True):
            return stored
    return None


def _check_integers(column: pd.Series, name: str, bits: int) -> None:
    """Refuse what ``bits``-bit unsigned integers cannot hold: it would be wrapped or truncated."""
    values = column.to_numpy()
    if values.dtype.kind in "iu":  # exact: no float64 round trip for 64-bit counts
        low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
        bad = low < 0 or high > 2**bits - 1
    else:
        values = values.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"channel {name!r} has NaN or infinite values; datatype 'I' cannot hold them "
                             "(write it as 'F' or 'D')")
        if not np.all(values == np.floor(values)):
            first = values[values != np.floor(values)][0]
            raise ValueError(f"channel {name!r} has fractional values ({float(first)!r}); datatype 'I' would "
                             "truncate them (write it as 'F' or 'D', or round it first)")
        low, high = (values.min(), values.max()) if len(values) else (0.0, 0.0)
        bad = low < 0 or high > 2**bits - 1
    if bad:
        raise ValueError(f"channel {name!r} holds {low:g} to {high:g}, but {bits}-bit unsigned integers hold "
                         f"0 to {2**bits - 1}; the values would wrap around (choose more bits, or 'F' or "
                         "'D')")


def _range(name: str, column: np.ndarray, datatype: str, bits: int, kept: float,
           given: float | None) -> float:
    """A channel's ``$PnR``: ``write_fcs``'s ``ranges`` documents the choice."""
    finite = column[np.isfinite(column)] if datatype != "I" else column
    top = float(finite.max()) if len(finite) else 0.0
    if given is not None:
        rng = float(given)
        if not math.isfinite(rng) or rng <= 0:
            raise ValueError(f"ranges[{name!r}] = {given!r} is not a positive number")
        if datatype == "I" and top > 2 ** max(1, math.ceil(math.log2(rng))) - 1:
            raise ValueError(f"ranges[{name!r}] = {given!r} cannot hold the channel's maximum {top:g}: "
                             "reading masks the values to the bits $PnR needs")
        return rng
    if kept > 0 and kept > top:  # the sample's range still holds the values (integers: 0 … $PnR - 1)
        return kept
    if datatype == "I":
        return 2**bits
    # the smallest power of two above the maximum: a maximum at the top would read as saturated
    return float(max(262144, 2 ** (math.floor(math.log2(top)) + 1) if top >= 1 else 1))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value: Any, delim: str = "/") -> str:
    text = str(value)
    text = text.replace(delim, delim * 2)
    return text if text else " "


def _text_segment(keywords: dict[str, str]) -> bytes:
    return ("/" + "".join(f"{_escape(k)}/{_escape(v)}/" for k, v in keywords.items())).encode("utf-8")


def write_fcs(
    path: str | os.PathLike,
    data: Sample | pd.DataFrame,
    *,
    markers: dict[str, str] | None = None,
    spillover: pd.DataFrame | None = None,
    keywords: dict[str, str] | None = None,
    datatype: str | None = None,
    version: str = "3.1",
    byteorder: str = "<",
    bits: int = 16,
    ranges: dict[str, float] | None = None,
) -> Path:
    """Write events to an FCS file, atomically (temporary file, then rename).

    Parameters
    ----------
    path
        Where to write.
    data
        A :class:`Sample` or a DataFrame whose columns are channel names (``$PnN``).
        A sample keeps its markers, spillover and keywords, but those of the old
        layout (offsets, ``$PnB``, ``$PnE``, ``$PnG``, ...); each channel's top of
        scale (``$PnR``, ``10**decades`` for log channels) when it still holds the
        values; and ``$TIMESTEP``, Time written back in steps, when that reads back
        exactly. :func:`read_fcs` then gives the same values again.
    markers
        ``$PnN`` → ``$PnS`` (stain) names.
    spillover
        Spillover matrix written as ``$SPILLOVER`` (rows and columns: channel names).
    keywords
        Extra TEXT keywords; they override the defaults (e.g. ``$P3E``, ``$CYT``).
    datatype
        ``"F"`` (float32), ``"D"`` (float64) or ``"I"`` (unsigned integers of
        ``bits`` bits, values written as given: a negative, fractional or non-finite
        value, or one above ``2**bits - 1``, is a ValueError naming its channel, never
        wrapped or truncated). Default: ``"F"`` when every column is float32, else
        ``"D"``, so values read back unchanged.
    version
        ``"3.1"`` (default), ``"3.0"`` or ``"2.0"``.
    byteorder
        ``"<"`` little-endian (default) or ``">"`` big-endian.
    ranges
        ``$PnN`` → ``$PnR`` (top of scale). Otherwise a sample's own range when it
        still holds the values; else ``2**bits`` for ``"I"``, and for ``"F"``/``"D"``
        the smallest power of two above the column's largest value, at least
        262144 (the 18-bit scale of today's cytometers), so that no value of the data
        sits at the top of the range and reads as saturated. An ``"I"`` range must
        hold the column's values: reading masks them to the bits ``$PnR`` needs.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> df = pd.DataFrame({"FSC-A": [1.5, 2.5], "CD19": [10.0, 20.0]})
    >>> out = write_fcs(os.path.join(tempfile.mkdtemp(), "x.fcs"), df)
    >>> read_fcs(out).events["CD19"].tolist()
    [10.0, 20.0]
    """
    path = Path(path)
    sample = data if isinstance(data, Sample) else None
    if sample is not None:
        markers = {**sample.markers, **(markers or {})}
        spillover = sample.spillover if spillover is None else spillover
        events = sample.events
    else:
        events = data
    if version not in ("2.0", "3.0", "3.1"):
        raise ValueError(f"cannot write FCS {version}; choose 2.0, 3.0 or 3.1")
    if byteorder not in ("<", ">"):
        raise ValueError("byteorder must be '<' or '>'")
    names = [str(c) for c in events.columns]
    if datatype is None:
        datatype = "F" if all(dt == np.float32 for dt in events.dtypes) else "D"
    datatype = datatype.upper()
    if datatype == "I":
        if bits not in (8, 16, 32, 64):
            raise ValueError("bits must be 8, 16, 32 or 64 for integer data")
        dtype, width = np.dtype(f"{byteorder}u{bits // 8}"), bits
    elif datatype in ("F", "D"):
        width = 32 if datatype == "F" else 64
        dtype = np.dtype(f"{byteorder}f{width // 8}")
    else:
        raise ValueError(f"datatype must be 'I', 'F' or 'D', not {datatype!r}")
    unknown = sorted(set(ranges or {}) - set(names))
    if unknown:
        raise ValueError(f"ranges name channel(s) {unknown} that are not columns of the data ({names})")
    markers = markers or {}
    extra = _kept_keywords(sample, names) if sample is not None else {}
    tops = _scale_top(sample) if sample is not None else {}
    step = _time_step(sample.path, sample.keywords) if sample is not None else None  # as read_fcs applied it
    in_steps: dict[int, np.ndarray] = {}
    if step is not None and step != 1:  # read_fcs gave Time × $TIMESTEP: write it back in steps
        time = [j for j, name in enumerate(names) if name.strip().lower() == "time"]
        stored = [_in_steps(events.iloc[:, j].to_numpy(np.float64), step, dtype) for j in time]
        if any(steps is None for steps in stored):  # keep the values, without a $TIMESTEP to apply again
            step = None
        else:
            in_steps = dict(zip(time, stored))
    if step is not None:
        extra["$TIMESTEP"] = sample.keywords["$TIMESTEP"]
    if datatype == "I":
        for j, name in enumerate(names):
            if j not in in_steps:
                _check_integers(events.iloc[:, j], name, bits)
    # np.array copies: the Time column may be rewritten in steps
    array = np.array(events.to_numpy(), dtype=dtype, order="C")
    for j, steps in in_steps.items():
        array[:, j] = steps

    text: dict[str, str] = {
        "$BYTEORD": "1,2,3,4" if byteorder == "<" else "4,3,2,1",
        "$DATATYPE": datatype,
        "$MODE": "L",
        "$NEXTDATA": "0",
        "$PAR": str(len(names)),
        "$TOT": str(len(events)),
    }
    for i, name in enumerate(names, start=1):
        rng = _range(name, array[:, i - 1], datatype, bits, tops.get(name, 0.0), (ranges or {}).get(name))
        text[f"$P{i}N"] = name
        text[f"$P{i}B"] = str(width)
        text[f"$P{i}E"] = "0,0"
        text[f"$P{i}R"] = _number_text(rng)
        if markers.get(name):
            text[f"$P{i}S"] = markers[name]
    if spillover is not None:
        labels = [str(c) for c in spillover.columns]
        values = ",".join(repr(float(v)) for v in spillover.to_numpy().ravel())
        text["$SPILLOVER"] = f"{len(labels)},{','.join(labels)},{values}"
    text.update(extra)
    text.update({k.upper() if k.startswith("$") else k: str(v) for k, v in (keywords or {}).items()})

    payload = array.tobytes()
    text_begin = 58
    if version == "2.0":
        segment = _text_segment(text)
    else:
        # $BEGINDATA/$ENDDATA live in TEXT, whose length depends on them: iterate to a fixed point.
        begin = end = 0
        for _ in range(5):
            text["$BEGINDATA"], text["$ENDDATA"] = str(begin), str(end)
            text["$BEGINANALYSIS"] = text["$ENDANALYSIS"] = "0"
            text["$BEGINSTEXT"] = text["$ENDSTEXT"] = "0"
            segment = _text_segment(text)
            new_begin = text_begin + len(segment)
            new_end = new_begin + max(len(payload), 1) - 1
            if (new_begin, new_end) == (begin, end):
                break
            begin, end = new_begin, new_end
    data_begin = text_begin + len(segment)
    data_end = data_begin + max(len(payload), 1) - 1
    if not payload:
        data_begin = data_end = 0
    fits = data_end <= 99_999_999

    def field(value: int) -> bytes:
        return f"{value:>8d}".encode()

    header = (
        f"FCS{version}    ".encode()
        + field(text_begin)
        + field(text_begin + len(segment) - 1)
        + (field(data_begin) + field(data_end) if fits else field(0) + field(0))
        + field(0)
        + field(0)
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(segment)
            fh.write(payload)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
