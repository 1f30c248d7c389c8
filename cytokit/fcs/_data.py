"""Channels, byte order, DATA bounds and decoding, scaling and spillover keywords; :func:`read_fcs`."""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..compensation import spillover_from_keyword
from ..errors import FCSError
from ..sample import Sample
from ._text import _Segment, _fail, _int_keyword, _open, _read_segment, _walk, _warn

_SPILL_KEYS = ("$SPILLOVER", "$SPILL", "SPILL", "SPILLOVER", "$COMP")


# --------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class _Channel:
    pnn: str
    pns: str
    bits: int | None  # None for '*' (free-format ASCII)
    range: float
    decades: float
    offset: float
    gain: float


def _channels(path: Path, kw: dict[str, str], n_params: int) -> list[_Channel]:
    channels = []
    for i in range(1, n_params + 1):
        pnn = kw.get(f"$P{i}N", "").strip() or f"P{i}"
        bits_text = kw.get(f"$P{i}B", "").strip()
        if bits_text == "*":
            bits = None
        else:
            try:
                bits = int(bits_text)
            except ValueError:
                raise _fail(path, f"$P{i}B = {bits_text!r} for channel {pnn!r} is not a bit width") from None
            if bits <= 0 or bits > 64:
                raise _fail(path, f"$P{i}B = {bits} for channel {pnn!r} is out of range (1-64)")
        rng = _number(path, kw, f"$P{i}R", 0.0, f"channel {pnn!r} is not masked")
        decades, offset = _amplification(path, kw, i, pnn)
        gain = _number(path, kw, f"$P{i}G", 1.0, f"gain 1 used for {pnn!r}")
        if not math.isfinite(gain) or gain <= 0:
            gain = 1.0
        channels.append(_Channel(pnn, kw.get(f"$P{i}S", "").strip(), bits, rng, decades, offset, gain))
    return channels


def _number(path: Path, kw: dict[str, str], key: str, default: float, otherwise: str) -> float:
    """A numeric keyword; ``default`` when it is absent, or with a warning when it is not a number."""
    text = kw.get(key, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        _warn(path, f"{key} = {text!r} is not a number; {otherwise}")
        return default


def _amplification(path: Path, kw: dict[str, str], i: int, pnn: str) -> tuple[float, float]:
    text = kw.get(f"$P{i}E", "").strip()
    if not text:
        return 0.0, 0.0
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    try:
        f1, f2 = float(parts[0]), float(parts[1]) if len(parts) > 1 else 0.0
    except ValueError:
        _warn(path, f"$P{i}E = {text!r} for {pnn!r} is not 'f1,f2'; channel read as linear")
        return 0.0, 0.0
    if f1 > 0 and f2 == 0:
        f2 = 1.0  # common in FCS 2.0 files; FCS 3.1 says read it as 1
    return f1, f2


def _unique_names(path: Path, names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            new = f"{name}_{seen[name]}"
            _warn(path, f"duplicate channel name {name!r} renamed {new!r}")
            out.append(new)
        else:
            seen[name] = 1
            out.append(name)
    return out


# --------------------------------------------------------------------------- DATA


def _byte_order(path: Path, kw: dict[str, str]) -> str:
    order = re.sub(r"\s", "", kw.get("$BYTEORD", ""))
    if order in ("1,2,3,4", "1,2", "1", "1,2,3,4,5,6,7,8"):
        return "<"
    if order in ("4,3,2,1", "2,1", "8,7,6,5,4,3,2,1"):
        return ">"
    raise _fail(path, f"$BYTEORD = {kw.get('$BYTEORD')!r} is not supported (expected 1,2,3,4 or 4,3,2,1)")


def _data_bounds(path: Path, seg: _Segment, file_size: int, needed: int | None) -> tuple[int, int]:
    """Absolute [begin, end) of the DATA segment, choosing between HEADER and TEXT offsets."""
    kw = seg.keywords
    candidates: dict[str, tuple[int, int]] = {}
    h_begin, h_end = seg.header_data
    if h_begin > 0 and h_end > h_begin:
        candidates["HEADER"] = (h_begin, h_end)
    try:
        t_begin = _int_keyword(path, kw, "$BEGINDATA", 0) or 0
        t_end = _int_keyword(path, kw, "$ENDDATA", 0) or 0
    except FCSError:
        t_begin = t_end = 0
    if t_begin > 0 and t_end > t_begin:
        candidates["TEXT"] = (t_begin, t_end)
    if not candidates:
        raise _fail(path, "no DATA segment offsets in HEADER or in $BEGINDATA/$ENDDATA")

    def fits(bounds: tuple[int, int]) -> int:
        """0: exact, 1: one byte long (tolerated), 2: does not fit."""
        length = bounds[1] - bounds[0] + 1
        if needed is None:
            return 0
        return 0 if length == needed else 1 if length == needed + 1 else 2

    if len(candidates) == 2 and candidates["HEADER"] != candidates["TEXT"]:
        ranked = sorted(candidates.items(), key=lambda item: fits(item[1]))
        source, (begin, end) = ranked[0]
        if fits((begin, end)) == 2:
            raise _fail(
                path,
                f"HEADER DATA offsets {h_begin}-{h_end} and $BEGINDATA/$ENDDATA {t_begin}-{t_end} disagree, "
                f"and neither holds the {needed} bytes that $TOT × $PAR × bytes per event need",
            )
        other = "TEXT" if source == "HEADER" else "HEADER"
        _warn(
            path,
            f"{other} DATA offsets {candidates[other][0]}-{candidates[other][1]} disagree with {source} "
            f"{begin}-{end}; {source} used as it matches $TOT × $PAR",
        )
    else:
        source, (begin, end) = next(iter(candidates.items()))
    begin += seg.start
    end += seg.start
    if needed is None:
        needed = end - begin + 1
    length = end - begin + 1
    if length < needed:
        raise _fail(
            path,
            f"DATA segment {begin}-{end} ({source}) holds {length} bytes but $TOT × $PAR need {needed}",
        )
    last = begin + needed - 1
    if last >= file_size:
        raise _fail(path, f"DATA segment ends at byte {last} but the file has {file_size} bytes (truncated?)")
    if length == needed + 1:
        _warn(path, f"DATA end offset {end - seg.start} is one byte past the last data byte; read anyway")
    elif length > needed:
        _warn(path, f"DATA segment is {length} bytes but only {needed} are used by $TOT events")
    return begin, begin + needed


_BLOCK = 1 << 20  # raw bytes decoded at a time: the buffer stays in the CPU cache
_THREADED = 8 << 20  # DATA segments from this size are decoded by several threads
_MAX_THREADS = 4
_POOL = None
_POOL_LOCK = threading.Lock()


def _decoders():
    """The decoding threads, started once per process: starting them for each file cost 0.1-0.4 ms."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(_MAX_THREADS - 1, thread_name_prefix="cytokit-fcs")
        return _POOL


def _forget_decoders() -> None:
    """In a forked child: the pool object was copied but none of its threads were."""
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_decoders)


def _read_ints(
    path: Path, fh, begin: int, n_events: int, channels: list[_Channel], order: str, scaled: bool, threads: int
) -> np.ndarray:
    """Decode integer DATA masked to the bits ``$PnR`` needs.

    The result is float32 when every value fits its 24-bit mantissa exactly and
    no channel is rescaled afterwards, float64 otherwise. Integer dtypes are
    never returned: ``a - b`` on unsigned columns wraps around silently.
    Whole-byte widths (8, 16, 32, 64 bits) are read block by block into a small
    buffer, masked there and converted into the result (byte swap included), so
    the only copy of the data is the result; ``threads`` split the events.
    """
    widths = [-(-c.bits // 8) for c in channels]  # 10 or 12 bits stored in whole bytes
    n_par = len(channels)
    stored = 8 * max(widths) if len(set(widths)) == 1 and widths[0] in (1, 2, 4, 8) else 64
    kept = [min(stored, max(1, math.ceil(math.log2(c.range)))) if c.range >= 1 else stored for c in channels]
    out = np.empty((n_events, n_par), dtype=np.float32 if not scaled and max(kept) <= 24 else np.float64)
    if stored == 64 and widths != [8] * n_par:
        _read_packed(fh, begin, n_events, widths, order, out, kept)
        return out
    raw = np.dtype(f"{order}u{widths[0]}")
    # Masks on the native-order view of the raw words, byte-swapped: no swap pass needed.
    masks = np.array([(1 << bits) - 1 for bits in kept], dtype=raw).view(raw.newbyteorder("="))
    mask = None if all(bits == stored for bits in kept) else masks[0] if len(set(kept)) == 1 else masks
    _read_blocks(path, begin, raw, out, mask, threads)
    return out


def _read_blocks(path: Path, begin: int, raw: np.dtype, out: np.ndarray, mask, threads: int) -> None:
    """Fill ``out`` (events × channels) from DATA words of type ``raw`` starting at byte ``begin``.

    Block by block through a small buffer: ``mask`` (on the native-order view, if
    any) there, then one casting copy into ``out`` that also swaps the bytes.
    ``threads`` decode contiguous ranges of events from their own file handles.
    """
    n_events, n_par = out.shape
    row = n_par * raw.itemsize
    step = max(1, _BLOCK // row)  # events per block
    native = raw.newbyteorder("=")

    def decode(first: int, last: int) -> None:
        buf = np.empty((min(step, last - first), n_par), dtype=raw)
        with open(path, "rb", buffering=0) as own:
            own.seek(begin + first * row)
            for a in range(first, last, step):
                block = buf[: min(step, last - a)]
                if own.readinto(memoryview(block).cast("B")) != block.nbytes:
                    raise _fail(path, "the file changed or shrank while it was read")
                if mask is not None:
                    np.bitwise_and(block.view(native), mask, out=block.view(native))
                np.copyto(out[a : a + len(block)], block, casting="unsafe")

    n_threads = max(1, min(threads, _MAX_THREADS, n_events * row // (_THREADED // 2)))
    cuts = [n_events * k // n_threads for k in range(n_threads + 1)]
    if n_threads == 1:
        decode(0, n_events)
        return
    from concurrent.futures import wait

    others = [_decoders().submit(decode, cuts[k], cuts[k + 1]) for k in range(1, n_threads)]
    try:
        decode(cuts[0], cuts[1])
    finally:
        wait(others)  # no thread may still write into ``out`` once this returns or raises
    for future in others:
        future.result()


def _read_packed(fh, begin: int, n_events: int, widths: list[int], order: str, out: np.ndarray,
                 kept: list[int]) -> None:
    """Mixed or 3-, 5-, 6-, 7-byte widths (old instruments, 24-bit converters): assembled byte by byte."""
    fh.seek(begin)
    flat = np.fromfile(fh, dtype=np.uint8, count=n_events * sum(widths)).reshape(n_events, sum(widths))
    pos = 0
    for j, width in enumerate(widths):
        cols = flat[:, pos : pos + width].astype(np.uint64)
        if order == ">":
            cols = cols[:, ::-1]
        word = sum(cols[:, k] << np.uint64(8 * k) for k in range(width))
        out[:, j] = word & np.uint64((1 << kept[j]) - 1)
        pos += width


def _read_ascii(path: Path, fh, begin: int, end: int, n_events: int, channels: list[_Channel]) -> np.ndarray:
    fh.seek(begin)
    raw = fh.read(end - begin)
    n = n_events * len(channels)
    try:
        if all(c.bits is not None for c in channels):
            widths = [c.bits for c in channels]
            step = sum(widths)
            values = []
            for e in range(n_events):
                row = raw[e * step : (e + 1) * step]
                pos = 0
                for w in widths:
                    values.append(float(row[pos : pos + w]))
                    pos += w
        else:
            values = [float(v) for v in re.split(rb"[\s,]+", raw.strip())][:n]
    except ValueError:
        raise _fail(path, "ASCII DATA segment holds a value that is not a number") from None
    if len(values) < n:
        raise _fail(path, f"ASCII DATA segment holds {len(values)} values but $TOT × $PAR = {n}")
    return np.asarray(values, dtype=np.float64).reshape(n_events, len(channels))


def _bytes_per_event(path: Path, datatype: str, channels: list[_Channel]) -> int | None:
    if datatype == "F":
        return 4 * len(channels)
    if datatype == "D":
        return 8 * len(channels)
    if datatype == "I":
        if any(c.bits is None for c in channels):
            raise _fail(path, "$DATATYPE I needs a number in every $PnB, not '*'")
        return sum(-(-c.bits // 8) for c in channels)
    if any(c.bits is None for c in channels):
        return None
    return sum(c.bits for c in channels)


def _time_step(path: Path, kw: dict[str, str]) -> float | None:
    step = _number(path, kw, "$TIMESTEP", math.nan, "time left in channel units")
    return step if math.isfinite(step) and step > 0 else None


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
        raise _fail(path, f"$PAR = {kw.get('$PAR')!r}: the number of channels is missing or not positive")
    mode = kw.get("$MODE", "L").strip().upper() or "L"
    if mode != "L":
        raise _fail(path, f"$MODE = {mode}: only list-mode data (L) are supported")
    datatype = kw.get("$DATATYPE", "").strip().upper()
    if datatype not in ("I", "F", "D", "A"):
        raise _fail(path, f"$DATATYPE = {kw.get('$DATATYPE')!r} is not one of I, F, D, A")
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


def _scales(path: Path, kw: dict[str, str], datatype: str, channels: list[_Channel]) -> list[tuple[int, str, float, float]]:
    """What turns each channel's stored values into scale values: (column, kind, a, b)."""
    step = _time_step(path, kw)
    scales: list[tuple[int, str, float, float]] = []
    for j, c in enumerate(channels):
        if c.pnn.strip().lower() == "time":
            if step is not None and step != 1:
                scales.append((j, "mul", step, 0.0))
        elif datatype in ("I", "A") and c.decades > 0:
            rng = c.range if c.range > 0 else 2.0 ** (c.bits or 16)
            scales.append((j, "log", c.decades / rng, c.offset))
        elif c.decades <= 0 and c.gain != 1:
            scales.append((j, "div", c.gain, 0.0))
    return scales


def _apply_scales(values: np.ndarray, scales: list[tuple[int, str, float, float]]) -> np.ndarray:
    if not scales:
        return values
    if values.dtype != np.float64:
        values = values.astype(np.float64)
    for j, kind, a, b in scales:
        if kind == "mul":
            values[:, j] *= a
        elif kind == "div":
            values[:, j] /= a
        else:
            values[:, j] = np.power(10.0, values[:, j] * a) * b
    return values


# --------------------------------------------------------------------------- spillover


def _spillover(path: Path, kw: dict[str, str], names: list[str]) -> pd.DataFrame | None:
    for key in _SPILL_KEYS:
        if kw.get(key, "").strip():
            try:
                return spillover_from_keyword(kw[key], names)
            except (ValueError, IndexError) as exc:
                _warn(path, f"{key} cannot be parsed as a spillover matrix ({exc}); ignored")
                return None
    return _beckman_spillover(path, kw, names)


def _beckman_spillover(path: Path, kw: dict[str, str], names: list[str]) -> pd.DataFrame | None:
    entries = {}
    for key, value in kw.items():
        match = re.fullmatch(r"\$DFC(\d+)TO(\d+)", key)
        if match:
            try:
                entries[(int(match.group(1)), int(match.group(2)))] = float(value)
            except ValueError:
                _warn(path, f"{key} = {value!r} is not a number; ignored")
    if not entries:
        return None
    numbers = sorted({i for pair in entries for i in pair})
    if numbers[-1] > len(names):
        _warn(path, "$DFCiTOj names a parameter beyond $PAR; spillover ignored")
        return None
    labels = [names[i - 1] for i in numbers]
    matrix = pd.DataFrame(np.eye(len(labels)), index=labels, columns=labels)
    for (i, j), value in entries.items():
        # FCS 2.0: the percentage of parameter i's signal that appears in parameter j.
        matrix.loc[names[i - 1], names[j - 1]] = value / 100.0
    return matrix
