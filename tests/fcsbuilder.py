"""A tiny byte-level FCS builder for tests: every knob an instrument gets wrong is a parameter.

It is deliberately independent of ``cytokit.write_fcs`` so the reader is not
tested only against its own writer.
"""

from __future__ import annotations

import numpy as np


def _pack_ints(values: np.ndarray, widths: list[int], order: str) -> bytes:
    """Pack unsigned integers of per-channel byte widths, event by event."""
    n_events = values.shape[0]
    out = np.zeros((n_events, sum(widths)), dtype=np.uint8)
    pos = 0
    for j, width in enumerate(widths):
        column = values[:, j].astype(np.uint64)
        for k in range(width):
            byte = ((column >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)
            out[:, pos + (k if order == "<" else width - 1 - k)] = byte
        pos += width
    return out.tobytes()


def build_fcs(
    values,
    *,
    names: list[str] | None = None,
    version: str = "3.1",
    datatype: str = "F",
    byteorder: str = "<",
    bits: list[int] | int | None = None,
    ranges: list[float] | None = None,
    delimiter: str = "/",
    keywords: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    header_offsets: str = "both",
    text_offsets: bool = True,
    data_end_extra: int = 0,
    header_data_shift: int = 0,
    key_case: str = "upper",
    pad_keys: bool = False,
    raw_data: bytes | None = None,
    nextdata: int = 0,
) -> bytes:
    """Return the bytes of a one-data-set FCS file.

    ``header_offsets``: ``"both"`` (HEADER and TEXT agree), ``"blank"`` (HEADER
    DATA offsets blank, TEXT used), ``"zero"``. ``data_end_extra`` adds to the
    declared DATA end (1 = one byte past). ``header_data_shift`` moves the HEADER
    DATA start only (an offset disagreement).
    """
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    n_events, n_params = values.shape
    names = names or [f"CH{i + 1}" for i in range(n_params)]
    if datatype == "I":
        bits = [bits] * n_params if isinstance(bits, int) else (bits or [16] * n_params)
        widths = [-(-b // 8) for b in bits]
        payload = _pack_ints(values, widths, byteorder)
    else:
        size = 4 if datatype == "F" else 8
        bits = [8 * size] * n_params
        payload = values.astype(f"{byteorder}f{size}").tobytes()
    if raw_data is not None:
        payload = raw_data
    ranges = ranges or [2 ** min(b, 20) if datatype == "I" else 262144 for b in bits]
    order = {"<": "1,2,3,4", ">": "4,3,2,1"}[byteorder]

    kw: dict[str, str] = {
        "$BYTEORD": order,
        "$DATATYPE": datatype,
        "$MODE": "L",
        "$NEXTDATA": str(nextdata),
        "$PAR": str(n_params),
        "$TOT": str(n_events),
    }
    for i, (name, b, r) in enumerate(zip(names, bits, ranges), start=1):
        kw[f"$P{i}N"] = name
        kw[f"$P{i}B"] = str(b)
        kw[f"$P{i}R"] = str(r)
        kw[f"$P{i}E"] = "0,0"
    kw.update(keywords or {})
    for key in drop:
        kw.pop(key, None)

    def fmt_key(key: str) -> str:
        key = key.lower() if key_case == "lower" else key
        return f"  {key} " if pad_keys else key

    def esc(value: str) -> str:
        return value.replace(delimiter, delimiter * 2)

    def text_bytes(extra: dict[str, str]) -> bytes:
        items = {**kw, **extra}
        body = delimiter + "".join(f"{esc(fmt_key(k))}{delimiter}{esc(v)}{delimiter}" for k, v in items.items())
        return body.encode("latin-1")

    text_begin = 58
    extra: dict[str, str] = {}
    text = text_bytes(extra)
    if text_offsets and version != "2.0":
        for _ in range(5):
            begin = text_begin + len(text)
            extra = {"$BEGINDATA": str(begin), "$ENDDATA": str(begin + len(payload) - 1 + data_end_extra)}
            new = text_bytes(extra)
            if len(new) == len(text):
                text = new
                break
            text = new
    data_begin = text_begin + len(text)
    data_end = data_begin + len(payload) - 1 + data_end_extra

    def field(v) -> bytes:
        return f"{v:>8}".encode()

    if header_offsets == "blank":
        data_fields = b" " * 16
    elif header_offsets == "zero":
        data_fields = field(0) + field(0)
    else:
        data_fields = field(data_begin + header_data_shift) + field(data_end)
    header = (
        f"FCS{version}    ".encode()
        + field(text_begin)
        + field(text_begin + len(text) - 1)
        + data_fields
        + field(0)
        + field(0)
    )
    return header + text + payload


def chain(*datasets: bytes) -> bytes:
    """Join data sets with ``$NEXTDATA`` (each must have been built with a fixed-width placeholder)."""
    out = b""
    for i, ds in enumerate(datasets):
        if i < len(datasets) - 1:
            placeholder = b"$NEXTDATA/00000000/"
            assert placeholder in ds, "build with nextdata='00000000'"
            ds = ds.replace(placeholder, f"$NEXTDATA/{len(ds):08d}/".encode())
        out += ds
    return out
