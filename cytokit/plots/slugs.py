"""File- and anchor-safe names for figures and report sections, unique within a run."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable

#: Longest slug :func:`unique_slugs` gives, collision hash included. A figure's file name adds a
#: prefix (``patient_``: 8), a suffix (``.png``: 4) and, while written, ``write_atomic``'s temporary
#: name adds 18 more (``.<name>.<12 hex>.tmp``): 200 + 30 = 230 bytes, under the 255 of every
#: common file system (slugs are ASCII, so characters are bytes).
MAX_SLUG = 200
_HASH = 8  # hex digits of the hash that replaces a long slug's cut-off tail


def _digest(name: str, digits: int) -> str:
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:digits]


def slug(text: str) -> str:
    """A file- and anchor-safe name: ``"CLL001_C2D1 stained.fcs"`` → ``"CLL001_C2D1-stained-fcs"``."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", str(text)).strip("-") or "x"


def _short(text: str, name: str, limit: int) -> str:
    """``text`` if at most ``limit`` characters, else its head and a hash of the whole ``name``."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - _HASH - 1].rstrip('-')}-{_digest(name, _HASH)}"


def unique_slugs(names: Iterable[str], *, label: Callable[[str], str] = str) -> dict[str, str]:
    """``name → slug(label(name))``, made unique and at most :data:`MAX_SLUG` characters: names whose
    slugs collide get a short stable hash of the name appended (``"A.1"``, ``"A 1"`` → ``"A-1-…"``
    twice, with different hashes), and a longer slug keeps its head and a hash of the name, so two
    long names that share their first 190 characters still get two slugs. A name's slug depends
    only on the name (and on which other names collide with it), so reruns write the same files."""
    collision = 7  # "-" and 6 hex digits
    plain = {name: _short(slug(label(name)), name, MAX_SLUG - collision) for name in dict.fromkeys(map(str, names))}
    counts = Counter(plain.values())
    return {name: text if counts[text] == 1 else f"{text}-{_digest(name, 6)}" for name, text in plain.items()}
