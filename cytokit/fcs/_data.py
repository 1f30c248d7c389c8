"""The DATA segment: byte order, bounds (HEADER or TEXT offsets), decoding of integers, floats and ASCII.

Large segments are decoded by a pool of threads started once per process.
"""

from __future__ import annotations

import math
import os
import re
import threading
from pathlib import Path

import numpy as np

from ..errors import FCSError
from ._channels import _Channel
from ._text import FCSDataWarning, _Segment, _fail, _int_keyword, _quote, _warn


def _byte_order(path: Path, kw: dict[str, str]) -> str:
    order = re.sub(r"\s", "", kw.get("$BYTEORD", ""))
    if order in ("1,2,3,4", "1,2", "1", "1,2,3,4,5,6,7,8"):
        return "<"
    if order in ("4,3,2,1", "2,1", "8,7,6,5,4,3,2,1"):
        return ">"
    raise _fail(path, f"$BYTEORD = {_quote(kw.get('$BYTEORD', ''))} is not supported "
                      "(expected 1,2,3,4 or 4,3,2,1)")


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
    # DATA over the HEADER or TEXT would read keywords as events: such offsets are never used.
    overlaps = {source: _overlap(seg, bounds, needed) for source, bounds in candidates.items()}
    names = {"HEADER": "HEADER DATA offsets", "TEXT": "$BEGINDATA/$ENDDATA"}
    over = [f"{names[s]} {candidates[s][0]}-{candidates[s][1]} put the DATA segment over the {problem}"
            for s, problem in overlaps.items() if problem]
    if len(over) == len(candidates):
        raise _fail(path, "; ".join(over))

    def fits(source: str) -> int:
        """0: exact, 1: one byte long (tolerated), 2: does not fit, 3: overlaps HEADER or TEXT."""
        length = candidates[source][1] - candidates[source][0] + 1
        if overlaps[source]:
            return 3
        if needed is None:
            return 0
        return 0 if length == needed else 1 if length == needed + 1 else 2

    if len(candidates) == 2 and candidates["HEADER"] != candidates["TEXT"]:
        source = min(candidates, key=fits)
        begin, end = candidates[source]
        if fits(source) == 2:
            raise _fail(
                path,
                f"HEADER DATA offsets {h_begin}-{h_end} and $BEGINDATA/$ENDDATA {t_begin}-{t_end} disagree, "
                f"and neither holds the {needed} bytes that $TOT × $PAR × bytes per event need"
                + "".join(f" ({problem})" for problem in over),
            )
        other = "TEXT" if source == "HEADER" else "HEADER"
        why = f"{over[0]}; {source} used" if over else f"{source} used as it matches $TOT × $PAR"
        _warn(
            path,
            f"{other} DATA offsets {candidates[other][0]}-{candidates[other][1]} disagree with {source} "
            f"{begin}-{end}; {why}",
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
        tot = _int_keyword(path, kw, "$TOT", 0) or 0
        extra = (length - needed) // (needed // tot) if tot and needed >= tot else 0
        if extra:  # whole events more than $TOT says: $TOT or $PAR is wrong, and the events misread
            _warn(path, f"DATA segment is {length} bytes, {extra} event(s) more than $TOT {tot} × the "
                        f"event size use ({needed}): $TOT or $PAR may be wrong; $TOT events read",
                  FCSDataWarning)
        else:
            _warn(path, f"DATA segment is {length} bytes but only {needed} are used by $TOT events")
    return begin, begin + needed


def _overlap(seg: _Segment, bounds: tuple[int, int], needed: int | None) -> str | None:
    """The HEADER or TEXT segment the DATA bytes read from ``bounds`` would overlap (None: none).

    Only the bytes ``$TOT`` events use count, so a DATA end one byte long (tolerated) is no overlap.
    """
    begin = bounds[0]
    last = bounds[1] if needed is None else begin + max(needed, 1) - 1
    for name, first, end in seg.occupied:
        if begin <= end and last >= first:
            return f"{name} (bytes {first}-{end})"
    return None


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

