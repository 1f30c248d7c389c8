"""Manual gatings of FCS files, read as per-event memberships for :func:`cytokit.compare`.

Three sources, one shape (:class:`Gating`: a boolean mask per population path):

- a folder of ``<file stem>.npz`` files, one boolean array per population keyed by its
  ``/``-joined path from the top, in the file's event order (the ``real_gated`` layout; a
  ``populations.tsv`` with columns ``population, parent`` beside or above the folder gives
  the parents, else a path's parent is the path without its last name);
- a FlowJo ``.wsp`` workspace, gated by FlowKit (``Workspace``, ``analyze_samples``,
  ``get_gate_membership``), which reproduces FlowJo's counts; samples are matched by
  file name;
- a Gating-ML 2.0 ``.xml`` file, evaluated on each file by
  :meth:`cytokit.gating.gatingml.GateSet.evaluate`.

Examples
--------
>>> import numpy as np
>>> g = Gating({"Cells": np.array([True, True, False]),
...             "Cells/T": np.array([True, False, False])}, n_events=3)
>>> g.parents
{'Cells': '', 'Cells/T': 'Cells'}
>>> int(g.parent_mask("Cells/T").sum()), int(g.parent_mask("Cells").sum())
(2, 3)
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import GateError, MetadataError

if TYPE_CHECKING:  # pragma: no cover
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


class NpzSource(ManualSource):
    """``<folder>/<file stem>.npz``: one boolean array per population path."""

    kind = "membership folder"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        if not self.path.is_dir():
            raise MetadataError(f"{self.path}: not a folder of .npz membership files")
        self.parents: dict[str, str] = {}
        for tsv in (self.path / "populations.tsv", self.path.parent / "populations.tsv"):
            if tsv.is_file():
                with open(tsv, newline="", encoding="utf-8") as fh:
                    rows = list(csv.DictReader(fh, delimiter="\t"))
                if rows and not {"population", "parent"} <= set(rows[0]):
                    raise MetadataError(f"{tsv}: needs the columns population and parent, has {list(rows[0])}")
                self.parents = {r["population"]: (r["parent"] or "") for r in rows}
                break

    def gating(self, file: str | Path, sample: Sample) -> Gating:
        npz = self.path / f"{Path(file).stem}.npz"
        if not npz.is_file():
            raise MetadataError(f"{file}: no manual gating: {npz} does not exist")
        if not zipfile.is_zipfile(npz):
            raise MetadataError(f"{file}: cannot read the manual gating {npz}: not an .npz archive "
                                "(numpy.savez of one boolean array per population path)")
        try:
            with np.load(npz, allow_pickle=False) as data:
                membership = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise MetadataError(f"{file}: cannot read the manual gating {npz}: {exc}") from None
        return self._checked(file, membership, sample, self.parents)


def _workspace_samples(path: Path) -> list[str]:
    """The sample names a FlowJo workspace lists, loaded or not (FlowKit names only those it loaded)."""
    import xml.etree.ElementTree as ET

    try:
        return [str(node.get("name")) for node in ET.parse(path).getroot().iter("SampleNode") if node.get("name")]
    except (OSError, ET.ParseError):
        return []


def _workspace_entries(path: Path) -> list[tuple[str, str]]:
    """``(sample name, the file name its DataSet uri names)`` of each sample a FlowJo workspace lists."""
    import xml.etree.ElementTree as ET
    from urllib.parse import unquote

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    out = []
    for sample in root.iter("Sample"):
        node, data = sample.find("SampleNode"), sample.find("DataSet")
        if node is not None and node.get("name"):
            uri = unquote(data.get("uri", "")) if data is not None else ""
            out.append((str(node.get("name")), uri.replace("\\", "/").rsplit("/", 1)[-1]))
    return out


class WorkspaceSource(ManualSource):
    """A FlowJo workspace gated by FlowKit; each file is matched to its sample by its name, its $FIL
    or the file name of the sample's DataSet uri."""

    kind = "FlowJo workspace"

    def __init__(self, path: str | Path, files: Sequence[str | Path]) -> None:
        import warnings

        import flowkit

        super().__init__(path)
        if not self.path.is_file():
            raise MetadataError(f"{self.path}: no such FlowJo workspace")
        # Each file finds its sample on its own, as FlowJo relinks one: by the file's name (cytokit's own
        # --flowjo names samples so: two cohorts' files may share a $FIL), its $FIL (FlowKit's sample id, kept
        # when a file is renamed), or the file name its DataSet uri names (a sample renamed in FlowJo)
        entries = _workspace_entries(self.path)
        samples, self.ids = [], {}
        for file in map(Path, files):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    loaded = flowkit.Sample(str(file), use_flowjo_labels=True)
            except Exception:  # noqa: BLE001 - the file's own error is reported when it is read
                continue
            keys = (file.name, str(loaded.original_filename or ""))
            found = [n for key in keys for n, _ in entries if n == key] + [n for n, uri in entries if uri == file.name]
            found = [n for n in dict.fromkeys(found) if n not in self.ids.values()]
            if not found:
                continue
            listed = sum(n == found[0] for n, _ in entries)
            if listed > 1:  # FlowKit keeps one of them
                warnings.warn(f"{self.path}: sample {found[0]!r} ({file.name}) is listed {listed} times in the "
                              "workspace; FlowKit gates one of them: remove the others in FlowJo to be sure which")
            loaded.id = found[0]
            samples.append(loaded)
            self.ids[file.name] = found[0]
        try:
            with warnings.catch_warnings():  # "WSP references X, but sample was not loaded"
                warnings.simplefilter("ignore", UserWarning)
                self.workspace = flowkit.Workspace(str(self.path), fcs_samples=samples or None)
        except Exception as exc:
            slash = " (a gate whose name holds '/', which FlowKit reads as a path: rename it in FlowJo)" \
                if "doesn't exist" in str(exc) and "Parent gate" in str(exc) else ""
            raise GateError(f"{self.path}: FlowKit cannot read the workspace: {exc}{slash}") from exc
        loaded_ids = set(self.workspace.get_sample_ids())
        self.ids = {name: sid for name, sid in self.ids.items() if sid in loaded_ids}

    def matrix(self, file: str | Path, sample: Sample) -> pd.DataFrame | None:
        sid = self.ids.get(Path(file).name)
        try:
            found = self.workspace.get_comp_matrix(sid) if sid is not None else None
        except Exception:  # noqa: BLE001 - no matrix FlowKit can give: the gates' own compensation stands
            found = None
        if found is None:
            return None
        import pandas as pd

        matrix = pd.DataFrame(np.asarray(found.matrix, dtype=float), index=list(found.fluorochromes),
                              columns=list(found.detectors))
        return None if _same_matrix(matrix, sample.spillover) else matrix

    def gating(self, file: str | Path, sample: Sample) -> Gating:
        sid = self.ids.get(Path(file).name)
        if sid is None:
            named = _workspace_samples(self.path)
            listed = ", ".join(named[:10]) + (f" and {len(named) - 10} more" if len(named) > 10 else "")
            raise MetadataError(f"{file}: not a sample of the workspace {self.path} (its files here: "
                                f"{', '.join(sorted(self.ids)) or 'none'}; its samples: {listed or 'none'})")
        ws = self.workspace
        try:
            ws.analyze_samples(sample_id=sid, use_mp=False)
            membership, parents, dims, drawn = {}, {}, {}, {}
            transforms = ws.get_transforms(sid)
            for name, gate_path in ws.get_gate_ids(sid):
                path = "/".join(n.replace("/", SLASH) for n in [*gate_path[1:], name])
                membership[path] = ws.get_gate_membership(sid, name, gate_path=gate_path)
                parents[path] = "/".join(n.replace("/", SLASH) for n in gate_path[1:])
                dims[path], drawn[path] = _drawn(ws, sid, name, gate_path, transforms)
        except Exception as exc:
            raise GateError(f"{file}: FlowKit cannot gate sample {sid!r} of {self.path}: {exc}") from exc
        return self._checked(file, membership, sample, parents, dims, drawn)


EDGE_POINTS = 128
#: what a '/' in a FlowJo gate's name ("CD4+/CD8-") becomes in its population path, whose '/' parts names
SLASH = "\u2215"


def _drawn(ws, sid: str, name: str, gate_path: tuple, transforms: dict) -> tuple[tuple[str, ...], dict | None]:
    """A FlowKit gate's channels and its region in channel values (:class:`Gating`'s ``drawn``);
    ``((), None)`` or ``(channels, None)`` where it cannot be read: never an error (the memberships
    are what compare needs)."""
    from .transforms import LinearTransform, from_flowkit

    try:
        gate = ws.get_gate(sid, name, gate_path=gate_path)
        found = getattr(gate, "dimensions", None) or ()
        channels = tuple(str(d.id) for d in found)
    except Exception:  # a quadrant's name is not a gate of its own in FlowKit, a divider is no dimension
        return (), None
    try:
        scales = [from_flowkit(transforms[d.transformation_ref]) if d.transformation_ref else
                  LinearTransform(t=1.0, a=0.0) for d in found]
        kind = type(gate).__name__
        if kind == "RectangleGate":
            region = _limits([(d.min, d.max) for d in found], scales)
        elif kind == "PolygonGate" and len(found) == 2:
            region = {"vertices": _edges(np.asarray(gate.vertices, dtype=float), scales)}
        else:
            return channels, None
    except (KeyError, ValueError, TypeError, AttributeError, ArithmeticError):  # no cytokit transform, or no inverse
        return channels, None
    refs = {str(d.compensation_ref) for d in found if d.compensation_ref}
    if refs:  # on compensated values (the file's or FlowJo's matrix) or not
        region["compensated"] = refs != {"uncompensated"}
    return channels, region


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


class GatingMLSource(ManualSource):
    """Gating-ML 2.0 gates applied to each file (cytokit's evaluation)."""

    kind = "Gating-ML file"

    def __init__(self, path: str | Path) -> None:
        from .gating.gatingml import read_gatingml

        super().__init__(path)
        if not self.path.is_file():
            raise MetadataError(f"{self.path}: no such Gating-ML file")
        self.gates = read_gatingml(self.path)

    def matrix(self, file: str | Path, sample: Sample) -> pd.DataFrame | None:
        from .gating.gatingml_nodes import UNCOMPENSATED

        refs = {node.dimension(d).compensation for node in self.gates.nodes if not hasattr(node.gate, "operands")
                for d in node.gate.dims} - {UNCOMPENSATED, None}
        if len(refs) != 1 or next(iter(refs)) not in self.gates.compensations:  # the file's own, or several
            return None
        matrix = self.gates.compensations[next(iter(refs))]
        return None if _same_matrix(matrix, sample.spillover) else matrix

    def gating(self, file: str | Path, sample: Sample) -> Gating:
        from .errors import CytokitError

        try:
            frame = self.gates.evaluate(sample)
        except CytokitError as exc:
            raise type(exc)(f"{file}: Gating-ML {self.path}: {exc}") from exc
        membership = {self.gates.path(pop): frame[pop].to_numpy() for pop in frame.columns}
        dims, drawn = {}, {}
        for node in self.gates.nodes:
            if hasattr(node.gate, "operands"):  # a boolean gate
                continue
            for pop in node.populations:
                dims[self.gates.path(pop)] = tuple(node.dimension(d).channel for d in node.gate.dims)
                try:
                    drawn[self.gates.path(pop)] = self._drawn(node, sample.spillover is not None)
                except (ValueError, TypeError, AttributeError, ArithmeticError):  # no region, as for FlowJo's
                    drawn[self.gates.path(pop)] = None
        return self._checked(file, membership, sample, dims=dims, drawn=drawn)

    def _drawn(self, node, has_spillover: bool) -> dict | None:
        """A rectangle's or polygon's region in channel values (:class:`Gating`'s ``drawn``), or None."""
        from .gating.gatingml_nodes import FCS, UNCOMPENSATED
        from .gating.gates import EllipseGate, PolygonGate, RectangleGate
        from .transforms import LinearTransform

        where = [node.dimension(d) for d in node.gate.dims]
        scales = [self.gates.transforms.get(w.transform) if w.transform else LinearTransform(t=1.0, a=0.0)
                  for w in where]
        if not all(hasattr(t, "inverse") for t in scales):  # a ratio, or a channel of a matrix's fluorochromes
            return None
        if isinstance(node.gate, RectangleGate):
            region = _limits(node.gate.bounds.values(), scales)
        elif isinstance(node.gate, PolygonGate):
            region = {"vertices": _edges(np.asarray(node.gate.vertices, dtype=float), scales)}
        elif isinstance(node.gate, EllipseGate) and len(scales) == 2:  # its outline, as a polygon
            angle = np.linspace(0.0, 2 * np.pi, 4 * EDGE_POINTS, endpoint=False)
            circle = np.column_stack([np.cos(angle), np.sin(angle)]) * np.sqrt(node.gate.distance_square)
            outline = node.gate.mean + circle @ np.linalg.cholesky(node.gate.covariance).T
            region = {"vertices": _in_channel_values(outline, scales)}
        else:
            return None
        region["compensated"] = any(w.compensation != UNCOMPENSATED and (w.compensation != FCS or has_spillover)
                                    for w in where)
        return region


def _same_matrix(a: pd.DataFrame, b: pd.DataFrame | None) -> bool:
    """Whether two spillover matrices are one (labels and values), as FlowJo's acquisition-defined
    matrix is the file's $SPILLOVER."""
    return (b is not None and list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
            and np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-12))


def read_manual(source: str | Path | ManualSource, files: Sequence[str | Path] = ()) -> ManualSource:
    """Open a manual gating: a folder of ``.npz`` files, a FlowJo ``.wsp`` or a Gating-ML ``.xml``.

    ``files`` are the FCS files to be compared (a workspace loads them through FlowKit).

    Raises
    ------
    MetadataError
        ``source`` is none of the three, or does not exist.
    GateError
        FlowKit cannot read the workspace or the Gating-ML file.
    """
    if isinstance(source, ManualSource):
        return source
    if not isinstance(source, (str, Path)):
        raise MetadataError(f"a manual gating is a folder of .npz files, a FlowJo .wsp or a Gating-ML .xml file, "
                            f"got {source!r}")
    path = Path(source)
    if path.is_dir():
        return NpzSource(path)
    suffix = path.suffix.lower()
    if suffix == ".wsp":
        return WorkspaceSource(path, files)
    if suffix == ".xml":
        return GatingMLSource(path)
    raise MetadataError(f"{path}: a manual gating is a folder of .npz files, a FlowJo .wsp or a Gating-ML "
                        f".xml file{'' if path.exists() else ' (and it does not exist)'}")


__all__ = ["Gating", "GatingMLSource", "ManualSource", "NpzSource", "WorkspaceSource", "read_manual"]
