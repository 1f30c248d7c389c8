"""Which populations, and which control tubes, pair up when cytokit is compared with a manual gating.

Populations pair by name (the last path component, case-insensitive, whitespace and Unicode
normalised; else as the Gating-ML id cytokit's export writes for it, ``CD19pos`` for ``CD19+``), by a
template population's ``manual:`` key, or by a ``mapping`` {cytokit name or
path: manual name or path} (a CSV ``cytokit,manual``); a name several manual populations share
pairs with the one whose parent pairs with cytokit's parent, and a manual population pairs with one
cytokit population (a path given in a mapping aside): of several (a template of two trees), the
one whose nearest paired ancestor pairs nearest its own parent, else the first. Control tubes pair with the files
they control through a sheet ``file, control_file`` (:func:`read_controls`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path

from .errors import MetadataError
from .gating.gatingml_nodes import gatingml_id
from .manual import SLASH, Gating


MAPPED_ABSENT = "which this file's manual gating does not have"
"""The end of the note of a population mapped to a manual name the file's gating lacks."""


def normalise(name: str) -> str:
    """A population name as pairing compares it: last path component, case-folded, single spaces,
    Unicode's composed form (an é typed or pasted either way)."""
    return unicodedata.normalize("NFC", " ".join(name.rsplit("/", 1)[-1].split()).casefold())


def pair_populations(auto: Gating, manual: Gating, mapping: Mapping[str, str] | None = None
                     ) -> tuple[list[tuple[str, str]], dict[str, str], dict[str, str]]:
    """Pair cytokit's populations with manual ones.

    Returns ``(pairs, unpaired_cytokit, unpaired_manual)``: ``[(cytokit path, manual path)]``
    and ``{path: why}`` for each side's populations left without a partner.
    """
    mapping = dict(mapping or {})
    by_name: dict[str, list[str]] = {}
    for path in manual.membership:
        by_name.setdefault(normalise(path), []).append(path)
    mapped = {normalise(k) if "/" not in k else k: v for k, v in mapping.items()}
    pairs: dict[str, str] = {}
    unpaired: dict[str, str] = {}
    by_path: set[str] = set()  # paired by a mapping to a manual path: kept whatever else pairs there

    def manual_ancestors(target: str) -> list[str]:  # parent first, "" (the top) last
        chain, parent = [], manual.parents.get(target, "")
        while parent and parent not in chain:
            chain.append(parent)
            parent = manual.parents.get(parent, "")
        return [*chain, ""]

    def closeness(path: str, target: str) -> int:
        """The levels between the two, up to cytokit's nearest paired ancestor (or the top) and the manual
        ancestor it pairs with: 0 when cytokit's parent pairs with the target's; -1 when that ancestor
        pairs off the target's line."""
        chain, parent, skipped = manual_ancestors(target), auto.parents.get(path, ""), 0
        while parent and parent not in pairs:
            parent, skipped = auto.parents.get(parent, ""), skipped + 1
        paired = pairs[parent] if parent else ""
        return skipped + chain.index(paired) if paired in chain else -1

    def fits(path: str, target: str) -> bool:  # cytokit's parent pairs with the manual population's
        return closeness(path, target) == 0

    def nearer(path: str, other: str, target: str) -> bool:  # path's line is nearer target's than other's
        mine, theirs = closeness(path, target), closeness(other, target)
        return mine >= 0 and (theirs < 0 or mine < theirs)

    for path in auto.membership:
        target = mapped.get(path, mapped.get(normalise(path)))
        if target is not None and "/" in target and target not in manual.membership \
                and normalise(target.replace("/", SLASH)) in by_name:  # a FlowJo gate's name holding '/'
            target = target.replace("/", SLASH)
        if target is not None and "/" in target:  # a path: that population or none
            candidates = [target] if target in manual.membership else []
        else:  # a name: of one manual population, or of several of which one's parent pairs with cytokit's
            candidates = by_name.get(normalise(path if target is None else target), [])
            if not candidates and target is None:  # cytokit's own Gating-ML export: 'CD69+ CD8' became an id
                candidates = by_name.get(normalise(gatingml_id(path.rsplit("/", 1)[-1])), [])
        if len(candidates) > 1:
            parent = pairs.get(auto.parents.get(path, ""), "")
            candidates = [c for c in candidates if manual.parents.get(c, "") == parent] or candidates
        if len(candidates) == 1:
            target_path = candidates[0]
            taken = None if target is not None and "/" in target else next(  # a path given: that pair, as asked
                (other for other, m in pairs.items() if m == target_path and other not in by_path), None)
            if taken is not None and not nearer(path, taken, target_path):  # one partner per manual population
                unpaired[path] = f"{target_path!r} pairs with {taken!r}, " + (
                    "whose parent pairs with its parent" if fits(taken, target_path) else "which came first")
                continue
            if taken is not None:  # two trees of one template (learned from two hierarchies): the matching one
                del pairs[taken]
                unpaired[taken] = f"{target_path!r} pairs with {path!r}, " + (
                    "whose parent pairs with its parent" if fits(path, target_path) else "whose ancestors pair with its")
            pairs[path] = target_path
            if target is not None and "/" in target:
                by_path.add(path)
        elif candidates:
            unpaired[path] = f"ambiguous: manual populations {', '.join(candidates)} share its name; give a mapping"
        elif target is not None:
            unpaired[path] = f"mapped to {target!r}, {MAPPED_ABSENT}"
        else:
            unpaired[path] = f"no manual population named {path.rsplit('/', 1)[-1]!r}"
    used = set(pairs.values())
    unpaired_manual = {p: "no cytokit population pairs with it" for p in manual.membership if p not in used}
    return list(pairs.items()), unpaired, unpaired_manual


def read_mapping(path: str | Path) -> dict[str, str]:
    """A two-column CSV ``cytokit,manual`` → ``{cytokit population: manual path}``.

    Raises
    ------
    MetadataError
        The file cannot be read or lacks the two columns.
    """
    pairs = _read_two_columns(path, "cytokit", "manual", "population mapping")
    if len({k for k, _ in pairs}) < len(pairs):
        raise MetadataError(f"{path}: the population mapping names a cytokit population twice")
    return dict(pairs)


def check_mapping(mapping: Mapping[str, str] | str | Path | None, template) -> dict[str, str]:
    """The template's ``manual:`` pairings, then ``mapping``'s (a dict or its CSV, :func:`read_mapping`);
    ``MetadataError`` for a key no population of ``template`` has (a typo would pair nothing, silently)."""
    if isinstance(mapping, (str, Path)):
        mapping = read_mapping(mapping)
    mapping = {} if mapping is None else mapping
    if not isinstance(mapping, Mapping):
        raise MetadataError(f"a population mapping is {{cytokit population: manual population}}, got {mapping!r}")
    pops = template.populations
    known = {normalise(p.name) for p in pops} | {template.path_of(p.name) for p in pops}
    for key, value in mapping.items():
        if not (isinstance(key, str) and isinstance(value, str) and value.strip()):
            raise MetadataError(f"population mapping {key!r}: {value!r}: a mapping is {{cytokit population: "
                                "manual population}}, both names")
        if key not in known and normalise(key) not in known:
            raise MetadataError(f"population mapping: {key!r} is no population of the template {template.source}")
    return {**{p.name: p.manual for p in pops if p.manual}, **mapping}


def read_controls(path: str | Path) -> dict[str, str]:
    """A CSV with columns ``file, control_file`` (others ignored; empty ``control_file``: none) →
    ``{file: control file}``, as a design sheet such as ``activation/design.csv`` gives it."""
    return {f: c for f, c in _read_two_columns(path, "file", "control_file", "controls sheet") if c}


def _read_two_columns(path: str | Path, first: str, second: str, what: str) -> list[tuple[str, str]]:
    import csv
    import io

    from .sheet import decode, separator

    try:
        text = decode(Path(path).read_bytes())  # as sample sheets: Excel's BOM, UTF-16, Windows-1252
        rows = list(csv.reader(io.StringIO(text), delimiter=separator(text)))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MetadataError(f"{path}: cannot read the {what}: {exc}") from None
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if not {first, second} <= set(header):
        raise MetadataError(f"{path}: the {what} needs the columns {first},{second}; it has "
                            f"{','.join(header) or 'none'}")
    a, b = header.index(first), header.index(second)
    cells = [row + [""] * (len(header) - len(row)) for row in rows[1:]]
    return [(row[a].strip(), row[b].strip()) for row in cells if row[a].strip()]


__all__ = ["check_mapping", "normalise", "pair_populations", "read_controls", "read_mapping"]
