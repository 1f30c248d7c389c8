"""What every manual gating is (:class:`Gating`, :class:`ManualSource`) and the geometry of the
person's drawn gates, shared by the sources of :mod:`cytokit.manual` and :mod:`cytokit.manual_flowjo`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import MetadataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .gating.result import GatingResult
    from .sample import Sample


@dataclass
class Gating:
    """One file's populations as boolean masks over its events.

    Parameters
    ----------
    membership
        Population path (``/``-joined names from the top, root excluded) → boolean mask.
    n_events
        Events in the file; every mask has this length.
    parents
        Path → parent path (``""`` for a top population); default: the path without its
        last name.
    flags
        Path → why the population is doubtful (a cytokit gate that failed, was skipped, ...).
    dims
        Path → the channels (``$PnN``) the person's gate is drawn on, where the source says
        (a FlowJo workspace, Gating-ML; not a boolean gate, not an ``.npz`` file).
    drawn
        Path → the person's gate in channel values (untransformed), where a FlowJo workspace or
        Gating-ML holds a rectangle, a polygon or (Gating-ML) an ellipse: ``{"limits": [[lo, hi],
        ...]}`` (``None``: open) or ``{"vertices": array}`` (the polygon's edges drawn straight on
        the scale it was drawn on, each split in :data:`EDGE_POINTS` points, so that it keeps its
        shape on any other scale; an ellipse's outline), and ``"compensated"`` (whether drawn on
        compensated values) where the source says.
    """

    membership: dict[str, np.ndarray]
    n_events: int
    parents: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    dims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    drawn: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for path in self.membership:
            self.parents.setdefault(path, path.rpartition("/")[0])

    def parent_mask(self, path: str) -> np.ndarray:
        """The events of ``path``'s parent (every event for a top population)."""
        parent = self.parents.get(path, "")
        if parent and parent in self.membership:
            return self.membership[parent]
        return np.ones(self.n_events, dtype=bool)

    def flag(self, path: str) -> str:
        """``path``'s own flag, else that of its nearest flagged ancestor (``"<ancestor>: <flag>"``)."""
        if self.flags.get(path):
            return self.flags[path]
        parent = self.parents.get(path, "")
        while parent:
            if self.flags.get(parent):
                return f"{parent}: {self.flags[parent]}"
            parent = self.parents.get(parent, "")
        return ""

    @classmethod
    def from_result(cls, result: GatingResult) -> Gating:
        """cytokit's populations of a :class:`~cytokit.GatingResult` (flags kept)."""
        parents = {p: ("" if q == "root" else q) for p, q in result.parents.items()}
        return cls({p: np.asarray(m, dtype=bool) for p, m in result.membership.items()},
                   n_events=len(result.scale), parents=parents, flags=dict(result.flags))


class ManualSource:
    """A manual gating of a set of files; :meth:`gating` gives one file's :class:`Gating`."""

    kind = "manual"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def matrix(self, file: str | Path, sample: Sample) -> pd.DataFrame | None:
        """The spillover matrix the person's gates of ``file`` are drawn on when it is not the file's own
        ``$SPILLOVER`` (a matrix edited in FlowJo, a Gating-ML ``spectrumMatrix``), else None."""
        return None

    def gating(self, file: str | Path, sample: Sample) -> Gating:  # pragma: no cover - abstract
        raise NotImplementedError

    def _checked(self, file: str | Path, membership: dict[str, np.ndarray], sample: Sample,
                 parents: dict[str, str] | None = None, dims: dict[str, tuple[str, ...]] | None = None,
                 drawn: dict[str, dict] | None = None) -> Gating:
        masks = {}
        for path, mask in membership.items():
            mask = np.asarray(mask)
            where = f"{file}: the manual gating ({self.kind} {self.path})"
            if mask.ndim != 1:
                raise MetadataError(f"{where} holds an array of shape {mask.shape} for population {path!r}: "
                                    "a membership is one true / false value per event")
            if len(mask) != sample.n_events:
                raise MetadataError(
                    f"{where} has {len(mask)} events for "
                    f"population {path!r} but the file has {sample.n_events}: not the same file, or "
                    "not in the file's event order")
            if mask.dtype != bool and not (mask.dtype.kind in "iu" and np.isin(mask, (0, 1)).all()):
                raise MetadataError(f"{where} holds {mask.dtype} values for population {path!r}: a membership "
                                    "is true / false (or 1 / 0) per event")
            masks[path] = mask.astype(bool, copy=False)
        parents = {p: q for p, q in (parents or {}).items() if p in masks}
        dims = {p: d for p, d in (dims or {}).items() if p in masks and d}
        drawn = {p: d for p, d in (drawn or {}).items() if p in dims and d}
        gating = Gating(masks, n_events=sample.n_events, parents=parents, dims=dims, drawn=drawn)
        _check_hierarchy(gating, f"{file}: the manual gating ({self.kind} {self.path})")
        return gating


def _check_hierarchy(gating: Gating, where: str) -> None:
    """Every population inside its parent, which is in the gating, with no cycle: else a
    percentage of parent would be computed on the wrong events (or above 100 %)."""
    if not gating.membership:
        raise MetadataError(f"{where} holds no populations")
    for path, mask in gating.membership.items():
        if not all(name.strip() for name in path.split("/")):
            raise MetadataError(f"{where}: the population path {path!r} has an empty name in it")
        seen, parent = {path}, gating.parents[path]
        while parent:
            if parent in seen:
                raise MetadataError(f"{where}: population {path!r} is its own ancestor (through {parent!r})")
            if parent not in gating.membership:
                raise MetadataError(f"{where}: population {path!r} has the parent {parent!r}, which it does "
                                    f"not hold")
            seen.add(parent)
            parent = gating.parents[parent]
        outside = int(np.count_nonzero(mask & ~gating.parent_mask(path)))
        if outside:
            raise MetadataError(f"{where}: population {path!r} has {outside} events outside its parent "
                                f"{gating.parents[path]!r}: a population is a subset of its parent")


EDGE_POINTS = 128
#: what a '/' in a FlowJo gate's name ("CD4+/CD8-") becomes in its population path, whose '/' parts names
SLASH = "\u2215"


def _limits(pairs, scales) -> dict:
    """A rectangle's ``(min, max)`` per dimension, drawn on ``scales``, in channel values."""
    return {"limits": [[None if v is None else float(t.inverse(np.array([float(v)]))[0]) for v in pair]
                       for pair, t in zip(pairs, scales)]}


def _in_channel_values(points: np.ndarray, scales) -> np.ndarray:
    """Points (one column per dimension) on ``scales``, in channel values."""
    return np.column_stack([t.inverse(points[:, i]) for i, t in enumerate(scales)])


def _edges(corners: np.ndarray, scales) -> np.ndarray:
    """A polygon drawn on ``scales`` (per dimension) in channel values, each edge split in
    :data:`EDGE_POINTS` points (straight on the scale it was drawn on, wherever it is shown)."""
    step = np.linspace(0.0, 1.0, EDGE_POINTS, endpoint=False)[:, None]
    edges = np.concatenate([a + step * (b - a) for a, b in zip(corners, np.roll(corners, -1, axis=0))])
    return _in_channel_values(edges, scales)


def _same_matrix(a: pd.DataFrame, b: pd.DataFrame | None) -> bool:
    """Whether two spillover matrices are one (labels and values), as FlowJo's acquisition-defined
    matrix is the file's $SPILLOVER."""
    return (b is not None and list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
            and np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-12))
