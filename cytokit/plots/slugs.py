"""File- and anchor-safe names for figures and report sections, unique within a run."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable


def slug(text: str) -> str:
    """A file- and anchor-safe name: ``"CLL001_C2D1 stained.fcs"`` → ``"CLL001_C2D1-stained-fcs"``."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", str(text)).strip("-") or "x"


def unique_slugs(names: Iterable[str], *, label: Callable[[str], str] = str) -> dict[str, str]:
    """``name → slug(label(name))``, made unique: names whose slugs collide get a short stable
    hash of the name appended (``"A.1"``, ``"A 1"`` → ``"A-1-…"`` twice, with different hashes)."""
    plain = {name: slug(label(name)) for name in dict.fromkeys(map(str, names))}
    counts = Counter(plain.values())
    return {name: text if counts[text] == 1 else f"{text}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"
            for name, text in plain.items()}
