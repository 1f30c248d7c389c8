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
from ._data import read_fcs  # noqa: F401  (used by the write_fcs doctest)


# --------------------------------------------------------------------------- writing


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
) -> Path:
    """Write events to an FCS file, atomically (temporary file, then rename).

    Parameters
    ----------
    path
        Where to write.
    data
        A :class:`Sample` (its markers, spillover and non-structural keywords
        are kept) or a DataFrame whose columns are channel names (``$PnN``).
    markers
        ``$PnN`` → ``$PnS`` (stain) names.
    spillover
        Spillover matrix written as ``$SPILLOVER`` (rows and columns: channel names).
    keywords
        Extra TEXT keywords; they override the defaults (e.g. ``$P3E``, ``$CYT``).
    datatype
        ``"F"`` (float32), ``"D"`` (float64) or ``"I"`` (unsigned integers of
        ``bits`` bits, values written as given). Default: ``"F"`` when every
        column is float32, else ``"D"``, so values read back unchanged.
    version
        ``"3.1"`` (default), ``"3.0"`` or ``"2.0"``.
    byteorder
        ``"<"`` little-endian (default) or ``">"`` big-endian.

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
    extra: dict[str, str] = {}
    if isinstance(data, Sample):
        markers = {**data.markers, **(markers or {})}
        spillover = data.spillover if spillover is None else spillover
        structural = re.compile(
            r"^\$(BEGIN|END)(DATA|STEXT|ANALYSIS)$|^\$(NEXTDATA|TOT|PAR|DATATYPE|BYTEORD|MODE|SPILLOVER|SPILL)$"
            r"|^\$P\d+[BENRGS]$|^\$TIMESTEP$"
        )
        extra = {k: v for k, v in data.keywords.items() if not structural.match(k)}
        events = data.events
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
        array = np.ascontiguousarray(events.to_numpy(), dtype=f"{byteorder}u{bits // 8}")
        width = bits
    elif datatype in ("F", "D"):
        width = 32 if datatype == "F" else 64
        array = np.ascontiguousarray(events.to_numpy(), dtype=f"{byteorder}f{width // 8}")
    else:
        raise ValueError(f"datatype must be 'I', 'F' or 'D', not {datatype!r}")
    markers = markers or {}

    text: dict[str, str] = {
        "$BYTEORD": "1,2,3,4" if byteorder == "<" else "4,3,2,1",
        "$DATATYPE": datatype,
        "$MODE": "L",
        "$NEXTDATA": "0",
        "$PAR": str(len(names)),
        "$TOT": str(len(events)),
    }
    for i, name in enumerate(names, start=1):
        column = array[:, i - 1]
        if datatype == "I":
            rng = 2**bits
        else:
            top = float(np.nanmax(column)) if len(column) else 0.0
            rng = max(1, math.ceil(top)) if math.isfinite(top) else 262144
        text[f"$P{i}N"] = name
        text[f"$P{i}B"] = str(width)
        text[f"$P{i}E"] = "0,0"
        text[f"$P{i}R"] = str(rng)
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
