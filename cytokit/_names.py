"""File names read as patient, timepoint and stain by a pattern (``{patient}_{timepoint}_{stain}.fcs``)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from .errors import MetadataError

FCS_SUFFIXES = (".fcs", ".lmd")


def pattern_regex(pattern: str) -> re.Pattern:
    fields = re.findall(r"{(\w+)}", pattern)
    if "patient" not in fields:  # without {timepoint} nothing is paired, without {stain} every tube is stained
        raise MetadataError(f"file-name pattern {pattern!r} needs a {{patient}} field (a study without timepoints: "
                            "'{patient}.fcs')")
    twice = sorted({name for name in fields if fields.count(name) > 1})
    if twice:
        raise MetadataError(f"file-name pattern {pattern!r} names the field(s) {', '.join(twice)} more than once")
    regex = ""
    for literal, name in re.findall(r"([^{]*)(?:{(\w+)})?", pattern):
        regex += re.escape(literal)
        if name:
            regex += f"(?P<{name}>[^/]+?)"
    return re.compile(regex + "$", re.IGNORECASE)


def fit_name(name: str, pattern: str, timepoints: tuple[str, ...]) -> tuple[dict, str]:
    """The fields of a file name, or an error. When the name splits two ways (a separator
    inside a field, e.g. ``CLL_001_C2D1_isotype.fcs``), the split whose timepoint is one of
    ``timepoints`` wins; otherwise the name is reported as ambiguous."""
    if "{timepoint}" not in pattern:  # a study without timepoints: no reading to prefer
        timepoints = ()
    found = splits(_stem(pattern), Path(name).stem)  # the name without its .fcs or .lmd
    known = {t.casefold() for t in timepoints}
    if not found:
        hint = suggest_pattern(name, pattern, timepoints)
        return {}, f"name does not fit the pattern {pattern!r}" + (f"; it fits --pattern {hint!r}" if hint else "")
    if len(found) == 1 and known and found[0]["timepoint"].casefold() not in known:
        hint = suggest_pattern(name, pattern, timepoints)  # CLL017 read as the timepoint, C2D1 as the patient
        if hint:
            return {}, (f"name fits the pattern {pattern!r} with timepoint={found[0]['timepoint']!r}, but another "
                        f"field is a timepoint of the comparisons ({', '.join(timepoints)}): it fits --pattern {hint!r}")
    if len(found) == 1:
        return found[0], ""
    fitting = [fields for fields in found if fields["timepoint"].casefold() in known]
    if len(fitting) == 1:
        return fitting[0], ""
    shown = fitting or found
    readings = " or ".join(", ".join(f"{k}={v!r}" for k, v in fields.items()) for fields in shown[:3])
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return {}, f"name fits the pattern {pattern!r} in more than one way ({readings}{more}); use a sample sheet"


def suggest_pattern(name: str, pattern: str, timepoints: tuple[str, ...]) -> str | None:
    """A pattern ``name`` fits in one way, with a timepoint of ``timepoints`` where there are any: the
    fields between other separators (``-``, a space, ``.``) or in another order; None if none does."""
    fields = re.findall(r"{(\w+)}", pattern)
    literals = re.findall(r"([^{]*)(?:{\w+})?", pattern)[:len(fields) + 1]
    known = {t.casefold() for t in timepoints}
    orders = [fields] + [list(o) for o in itertools.permutations(fields) if list(o) != fields] if known else [fields]
    for order in orders:
        for separator in ("_", "-", " ", "."):
            text = "".join(lit.replace("_", separator) + (f"{{{f}}}" if i < len(order) else "")
                           for i, (lit, f) in enumerate(itertools.zip_longest(literals, order, fillvalue="")))
            if text == pattern:
                continue
            readings = splits(_stem(text), Path(name).stem)
            if known:
                readings = [r for r in readings if r["timepoint"].casefold() in known]
            if len(readings) == 1:
                return text
    return None


def _stem(pattern: str) -> str:
    """The pattern without its .fcs: a pattern's .fcs fits a Beckman .lmd too."""
    return pattern[:pattern.rindex(".")] if pattern.lower().endswith(FCS_SUFFIXES) else pattern


#: readings of one name looked at, at most (two fields side by side split a name every way)
_MAX_SPLITS = 100


def splits(pattern: str, name: str) -> list[dict]:
    """Every way ``name`` fits ``pattern`` (a field: one or more characters, no '/'; the text between
    fields in any case), at most :data:`_MAX_SPLITS`: ``CLL_001_C2D8_stained_rerun`` fits
    ``{patient}_{timepoint}_{stain}`` four ways, one of them with the timepoint C2D8."""
    tokens = [(kind, text) for literal, field in re.findall(r"([^{]*)(?:{(\w+)})?", pattern)
              for kind, text in (("text", literal), ("field", field)) if text]
    out: list[dict] = []

    def walk(i: int, at: int, fields: dict) -> None:
        if len(out) >= _MAX_SPLITS:
            return
        if i == len(tokens):
            if at == len(name):
                out.append(dict(fields))
            return
        kind, text = tokens[i]
        if kind == "text":
            if name[at:at + len(text)].casefold() == text.casefold():
                walk(i + 1, at + len(text), fields)
            return
        for end in range(at + 1, len(name) + 1):
            if name[end - 1] == "/":
                break
            walk(i + 1, end, {**fields, text: name[at:end]})

    walk(0, 0, {})
    return out
