"""A :class:`~cytokit.Sample` from one data set's TEXT and DATA, its spillover keywords; :func:`read_fcs`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..compensation import spillover_from_keyword, validate_spillover
from ..sample import Sample
from ._channels import _apply_scales, _channels, _scales, _unique_names
from ._data import (
    _MAX_THREADS,
    _byte_order,
    _bytes_per_event,
    _data_bounds,
    _read_ascii,
    _read_blocks,
    _read_ints,
)
from ._text import _Segment, _fail, _int_keyword, _open, _quote, _read_segment, _walk, _warn

_SPILL_KEYS = ("$SPILLOVER", "$SPILL", "SPILL", "SPILLOVER", "$COMP")


def read_fcs(path: str | os.PathLike, *, dataset: int = 0, threads: int | None = None) -> Sample:
    """Read one data set of an FCS file into a :class:`~cytokit.Sample`.

    Parameters
    ----------
    path
        The FCS file (2.0, 3.0, 3.1 or 3.2).
    dataset
        0-based index along the ``$NEXTDATA`` chain (see :func:`list_datasets`).
    threads
        Threads decoding integer or byte-swapped float DATA of 8 MB or more (default:
        the machine's cores, at most 4). A batch that runs one file per core passes 1.

    Returns
    -------
    Sample
        Events as FCS 3.1 scale values (module docstring). Columns are float32
        when that holds every value exactly (float data, or integers of up to
        24 bits, that need no scaling) and float64 otherwise.

    Raises
    ------
    FCSError
        The file is missing, truncated, malformed or unsupported; the message
        names the file and the problem.
    """
    path = Path(path)
    with _open(path) as (fh, size):
        segments = _walk(path, fh, size) if dataset else [_read_segment(path, fh, size, 0)]
        if not 0 <= dataset < len(segments):
            raise _fail(path, f"data set {dataset} requested but the file has {len(segments)}")
        seg = segments[dataset]
        if threads is None:
            threads = min(_MAX_THREADS, os.cpu_count() or 1)
        return _read_dataset(path, fh, size, seg, dataset, threads)


def _read_dataset(path: Path, fh, size: int, seg: _Segment, index: int, threads: int) -> Sample:
    kw = seg.keywords
    n_params = _int_keyword(path, kw, "$PAR")
    if n_params is None or n_params <= 0:
        raise _fail(path, f"$PAR = {_quote(kw.get('$PAR', ''))}: the number of channels is missing or "
                          "not positive")
    mode = kw.get("$MODE", "L").strip().upper() or "L"
    if mode != "L":
        raise _fail(path, f"$MODE = {mode}: only list-mode data (L) are supported")
    datatype = kw.get("$DATATYPE", "").strip().upper()
    if datatype not in ("I", "F", "D", "A"):
        raise _fail(path, f"$DATATYPE = {_quote(kw.get('$DATATYPE', ''))} is not one of I, F, D, A")
    channels = _channels(path, kw, n_params)
    order = _byte_order(path, kw) if datatype != "A" else "<"
    per_event = _bytes_per_event(path, datatype, channels)
    n_events = _int_keyword(path, kw, "$TOT")
    if n_events is not None and n_events < 0:
        raise _fail(path, f"$TOT = {n_events} is negative")
    needed = None if n_events is None or per_event is None else n_events * per_event
    if n_events is None:  # optional in FCS 2.0: derive it from the DATA length
        begin, end = _data_bounds(path, seg, size, None)
        if per_event:
            n_events = (end - begin) // per_event
            end = begin + n_events * per_event
    else:
        begin, end = _data_bounds(path, seg, size, needed) if needed != 0 else (0, 0)

    scales = _scales(path, kw, datatype, channels)
    if n_events == 0:
        values = np.zeros((0, n_params))
    elif datatype == "I":
        values = _read_ints(path, fh, begin, n_events, channels, order, bool(scales), threads)
    elif datatype == "A":
        if n_events is None:
            raise _fail(path, "free-format ASCII data need $TOT")
        values = _read_ascii(path, fh, begin, end, n_events, channels)
    else:
        raw = np.dtype(f"{order}f{4 if datatype == 'F' else 8}")
        if raw.isnative:
            fh.seek(begin)
            values = np.fromfile(fh, dtype=raw, count=n_events * n_params).reshape(n_events, n_params)
        else:
            values = np.empty((n_events, n_params), dtype=raw.newbyteorder("="))
            _read_blocks(path, begin, raw, values, None, threads)

    values = _apply_scales(values, scales)
    names = _unique_names(path, [c.pnn for c in channels])
    events = pd.DataFrame(values, columns=names, copy=False)
    table = pd.DataFrame(
        {
            "pnn": names,
            "pns": [c.pns for c in channels],
            "bits": [c.bits if c.bits is not None else 0 for c in channels],
            "range": [c.range for c in channels],
            "decades": [c.decades for c in channels],
            "offset": [c.offset for c in channels],
            "gain": [c.gain for c in channels],
        }
    )
    return Sample(
        events,
        table,
        kw,
        version=seg.version,
        path=path,
        dataset=index,
        spillover=_spillover(path, kw, names),
    )



# --------------------------------------------------------------------------- spillover


def _spillover(path: Path, kw: dict[str, str], names: list[str]) -> pd.DataFrame | None:
    problem = unreadable_spillover(kw, names)
    if problem:  # compensation: file refuses the file (apply); other templates' gating can still read it
        _warn(path, f"{problem}; ignored (a template with compensation: file refuses this file)")
        return None
    for key in _SPILL_KEYS:
        if kw.get(key, "").strip():
            return _checked(path, key, spillover_from_keyword(kw[key], names))
    matrix = beckman_spillover(kw, names)
    return None if matrix is None else _checked(path, "$DFCiTOj", matrix)


def unreadable_spillover(kw: dict[str, str], names: list[str]) -> str | None:
    """Why the file's spillover keyword (the first of ``$SPILLOVER``, ``$SPILL``, ``SPILL``, ``$COMP`` it
    has, else Beckman Coulter's ``$DFCiTOj``) is no matrix, or None when it parses or there is none."""
    key = next((k for k in _SPILL_KEYS if kw.get(k, "").strip()), None)
    try:
        if key is None:
            key = "$DFCiTOj"
            beckman_spillover(kw, names)
        else:
            spillover_from_keyword(kw[key], names)
    except (ValueError, IndexError, OverflowError) as exc:
        return f"{key} cannot be parsed as a spillover matrix ({exc})"
    return None


def _checked(path: Path, key: str, matrix: pd.DataFrame) -> pd.DataFrame:
    """The file's matrix, marked with where it came from; a warning when it cannot compensate.

    A NaN or singular matrix is the file's problem: :func:`~cytokit.compensation.validate_spillover`
    raises an :class:`FCSError` naming the file (``attrs["source"]``) when it is used.
    """
    matrix.attrs["source"] = f"{path}: {key}"
    try:
        validate_spillover(matrix)
    except ValueError as exc:
        _warn(path, f"{key}: {str(exc).removeprefix(matrix.attrs['source'] + ': ')}; compensating with it "
                    "will fail")
    return matrix


def beckman_spillover(kw: dict[str, str], names: list[str]) -> pd.DataFrame | None:
    """Beckman Coulter's ``$DFCiTOj`` (CXP, Kaluza, Navios): the percentage of fluorescence detector
    FLi's signal seen by FLj, or None without such keywords; a ValueError names what does not read.

    i and j count detectors, not parameters: a 7-parameter Navios file names FL1 to FL10 (``FL1 INT
    LOG`` is its third parameter). A detector's parameters are those whose ``$PnN`` starts with
    ``FLi``; an FC 500 records FL1 twice (``FL1 Log``, ``FL1 Lin``), so a coefficient links the
    parameters of FLi and FLj whose names end alike (one amplification). A spillover into a detector
    the file does not hold needs no correction; one from such a detector cannot be corrected.
    """
    entries = {}
    for key, value in kw.items():
        match = re.fullmatch(r"\$DFC(\d+)TO(\d+)", key)
        if match:
            try:
                entries[int(match.group(1)), int(match.group(2))] = float(value)
            except ValueError:
                raise ValueError(f"{key} = {_quote(value)} is not a number") from None
    if not entries:
        return None
    detectors: dict[int, dict[str, str]] = {}
    for name in names:
        match = re.match(r"FL(\d+)\b(.*)", name, re.IGNORECASE)
        if match:
            detectors.setdefault(int(match.group(1)), {})[match.group(2).strip().casefold()] = name
    labels = [name for name in names if any(name in d.values() for d in detectors.values())]
    matrix = pd.DataFrame(np.eye(len(labels)), index=labels, columns=labels)
    for (i, j), value in sorted(entries.items()):
        if i == j or value == 0 or j not in detectors:
            continue
        if not np.isfinite(value):
            raise ValueError(f"$DFC{i}TO{j} = {value:g} % is no spillover")
        if i not in detectors:
            raise ValueError(f"$DFC{i}TO{j} = {value:g} %: no parameter of detector FL{i} "
                             f"(no $PnN starting FL{i}), so FL{j} cannot be corrected for it")
        for rest, source in detectors[i].items():
            if rest in detectors[j]:
                matrix.loc[source, detectors[j][rest]] = value / 100.0
    return matrix if labels else None
