"""openCyto's ``gating_args``: R argument text (``gate_range=c(1,3), K=3, target=c(1e5, 5e4)``) as
Python values, for :mod:`cytokit.gating.opencyto`."""

from __future__ import annotations

import re
from typing import Any

from ..errors import TemplateError


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_args(text: str, where: str) -> dict[str, Any]:
    """``gate_range=c(1,3), K=3, target=c(1e5, 5e4)`` → a dict of Python values."""
    args: dict[str, Any] = {}
    if text.strip() in ("NA", "NULL"):  # R's write.csv writes NA in an empty cell
        return args
    for part in _split_top(text):
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise TemplateError(f"{where}: gating_args {text!r}: {part!r} is not name=value")
        args[name.strip()] = _r_value(value.strip(), text, where)
    return args


def _r_value(value: str, text: str, where: str):
    match = re.fullmatch(r"c\((.*)\)", value, flags=re.DOTALL)
    if match:
        return [_r_value(v, text, where) for v in _split_top(match.group(1))]
    if value in ("TRUE", "T"):
        return True
    if value in ("FALSE", "F"):
        return False
    if value in ("NULL", "NA"):
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    try:
        return float(value.rstrip("L")) if value not in ("Inf", "-Inf") else float(value.lower())
    except ValueError:
        raise TemplateError(f"{where}: gating_args {text!r}: cannot read value {value!r} "
                            "(numbers, c(...), TRUE/FALSE and quoted strings are understood)") from None


__all__ = ["parse_args"]
