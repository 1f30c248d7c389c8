"""The run's cache, ``OUT/.cache``: each tube group's result under a key of everything it depends on.

The key is made of the sha256 of the group's files, the pairing, the template's hash (and its
compensation CSV's) and cytokit's own code (:func:`~cytokit._files.code_sha256`), so a rerun does
only what changed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path

from ._files import code_sha256, file_sha256, remove_stale_tmp, write_atomic
from . import _cache_format
from .metadata import Comparisons, comparisons_of
from .pipeline import GroupResult


def template_sha256(path: str | Path, panel: str | Path | None = None) -> str:
    """The template's hash, and its compensation CSV's when it names one (editing the matrix
    must not reuse results compensated with the old one), and its panel sheet's (``panel``, else
    the template's ``panel`` key's) when there is one."""
    from .gating.load import load_template

    template = load_template(path, panel=panel)
    matrix = template.compensation_path()
    digest = template.sha256
    if matrix is not None:
        digest = hashlib.sha256(digest.encode() + matrix.read_bytes()).hexdigest()
    if template.panel is not None:
        digest = hashlib.sha256(f"{digest} panel {template.panel.sha256}".encode()).hexdigest()
    return digest


def group_key(group: tuple[list[dict], str | None], template_hash: str, pairing: Comparisons | None = None) -> str:
    """Cache key: the group's files (name, role and content), the pairing (the comparisons), the template
    and cytokit's code."""
    rows, reference = group
    files = sorted((r["file"], r["stain"], r["timepoint"], r["patient"], r.get("status", "ok"),
                    r.get("control_file", ""), file_sha256(r["path"])) for r in rows)
    ref = file_sha256(reference) if reference else None
    comparisons = None if pairing is None else [list(pair) for pair in comparisons_of(pairing)]
    text = json.dumps({"files": files, "reference": ref, "pairing": comparisons, "template": template_hash,
                       "code": code_sha256()})
    return hashlib.sha256(text.encode()).hexdigest()


_KEY = re.compile(r"[0-9a-f]{64}")


class Cache:
    """``OUT/.cache``: one ``<key>.npz`` per tube group (a :class:`~cytokit.pipeline.GroupResult` as data
    only, :mod:`cytokit._cache_format`). Workers look up and store their own groups, so the hashing and
    the writing run in parallel; ``folder=None`` caches nothing."""

    def __init__(self, folder: str | Path | None, template_path: str, pairing: Comparisons | None,
                 figures: bool = False, pooled: dict | None = None, panel: str | None = None):
        self.folder = Path(folder) if folder is not None else None
        self.template_hash = template_sha256(template_path, panel) if folder is not None else ""
        self.panel = panel  # the panel sheet over the template's key, which every group is gated with
        self.pairing = pairing
        self.figures = figures
        self.pooled = pooled or {}  # the run's pool: true gates, fitted on all its files
        if self.pooled and self.folder is not None:  # another batch, other pooled cuts: other results
            fits = pickle.dumps(sorted((path, vars(gate)) for path, gate in self.pooled.items()))  # every bit
            self.template_hash = hashlib.sha256(self.template_hash.encode() + fits).hexdigest()
        if self.folder is not None and self.folder.is_dir():
            remove_stale_tmp(self.folder)

    def key(self, group: tuple[list[dict], str | None]) -> str | None:
        if self.folder is None:
            return None
        try:
            return group_key(group, self.template_hash, self.pairing)
        except OSError:
            return None  # a file vanished: analyse it and let the reader report it

    def get(self, key: str | None) -> GroupResult | None:
        """The cached group, or None: no entry, a damaged or foreign one (analysed again and
        overwritten), or one without the figures this run draws."""
        if key is None:
            return None
        try:
            result = _cache_format.decode((self.folder / f"{key}.npz").read_bytes())
        except (OSError, ValueError):
            return None
        return result if result.drew_figures or not self.figures else None

    def prune(self, keep: set[str]) -> int:
        """Delete the entries whose key is not in ``keep`` (the groups of a finished run: ``cytokit run``'s
        ``OUT/.cache`` then holds only what its outputs came from, not every earlier template's
        results); returns how many were deleted. Only ``<sha256>.npz`` names are touched."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        stale = [p for p in self.folder.glob("*.npz") if _KEY.fullmatch(p.stem) and p.stem not in keep]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def put(self, key: str | None, value: GroupResult) -> bool:
        """Store ``value``; False when this process cannot write there (a remote Dask worker)."""
        if key is not None:
            try:
                write_atomic(self.folder / f"{key}.npz", _cache_format.encode(value))
            except OSError:
                return False
        return True
