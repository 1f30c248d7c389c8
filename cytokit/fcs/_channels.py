"""The channels of a data set: ``$PnN``, ``$PnS``, ``$PnB``, ``$PnR``, ``$PnE``, ``$PnG`` and ``$TIMESTEP``.

Read into :class:`_Channel` records, and what turns each channel's stored values into
FCS 3.1 scale values (``cytokit.fcs``'s docstring states the rules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._text import FCSDataWarning, _fail, _quote, _warn


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
                raise _fail(path, f"$P{i}B = {_quote(bits_text)} for channel {_quote(pnn)} is not a bit width"
                            ) from None
            if bits <= 0 or bits > 64:
                raise _fail(path, f"$P{i}B = {bits} for channel {_quote(pnn)} is out of range (1-64)")
        rng = _number(path, kw, f"$P{i}R", 0.0, f"channel {_quote(pnn)} is not masked")
        if not math.isfinite(rng):  # "inf", "nan", "1e400": no top of scale, like a $PnR that is no number
            _warn(path, f"$P{i}R = {_quote(kw[f'$P{i}R'].strip())} for channel {_quote(pnn)} is not a finite "
                        "number; channel is not masked")
            rng = 0.0
        decades, offset = _amplification(path, kw, i, pnn)
        gain = _number(path, kw, f"$P{i}G", 1.0, f"gain 1 used for {_quote(pnn)}")
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
        _warn(path, f"{key} = {_quote(text)} is not a number; {otherwise}")
        return default


MAX_DECADES = 30.0
"""Log amplifiers span 3-6 decades (FACSCalibur 4); ``$PnE`` beyond this is a damaged keyword."""


def _amplification(path: Path, kw: dict[str, str], i: int, pnn: str) -> tuple[float, float]:
    text = kw.get(f"$P{i}E", "").strip()
    if not text:
        return 0.0, 0.0
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    try:
        f1, f2 = float(parts[0]), float(parts[1]) if len(parts) > 1 else 0.0
    except ValueError:
        _warn(path, f"$P{i}E = {_quote(text)} for {_quote(pnn)} is not 'f1,f2'; channel read as linear",
              FCSDataWarning)
        return 0.0, 0.0
    if not (math.isfinite(f1) and math.isfinite(f2)) or not 0 <= f1 <= MAX_DECADES or (f1 > 0 and f2 < 0):
        # 10**400 overflows, a negative offset turns every event negative: no scale to read them on
        raise _fail(path, f"$P{i}E = {_quote(text)} for {_quote(pnn)} is no amplification: f1 (decades) must be "
                          f"0 (linear) to {MAX_DECADES:g} and f2 (the value at channel 0) above 0")
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
            _warn(path, f"duplicate channel name {_quote(name)} renamed {_quote(new)}", FCSDataWarning)
            out.append(new)
        else:
            seen[name] = 1
            out.append(name)
    return out


def _time_step(path: Path, kw: dict[str, str]) -> float | None:
    step = _number(path, kw, "$TIMESTEP", math.nan, "time left in channel units")
    return step if math.isfinite(step) and step > 0 else None


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
    """``values`` (events × channels) scaled per channel, as float64 when any scale applies, and
    column-major: every channel one contiguous run, for all the per-channel work after reading."""
    if not scales:
        return np.asfortranarray(values)
    values = values.astype(np.float64, order="F")
    for j, kind, a, b in scales:
        if kind == "mul":
            values[:, j] *= a
        elif kind == "div":
            values[:, j] /= a
        else:
            values[:, j] = np.power(10.0, values[:, j] * a) * b
    return values

