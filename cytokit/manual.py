"""Manual gatings of FCS files, read as per-event memberships for :func:`cytokit.compare`.

Three sources, one shape (:class:`Gating`: a boolean mask per population path):

- a folder of ``<file stem>.npz`` files, one boolean array per population keyed by its
  ``/``-joined path from the top, in the file's event order (the ``real_gated`` layout; a
  ``populations.tsv`` with columns ``population, parent`` beside or above the folder gives
  the parents, else a path's parent is the path without its last name);
- a FlowJo ``.wsp`` workspace, gated by FlowKit (``Workspace``, ``analyze_samples``,
  ``get_gate_membership``), which reproduces FlowJo's counts (:mod:`cytokit.manual_flowjo`: each
  file finds its sample by its name, its ``$FIL`` or the file its ``DataSet`` uri names);
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
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import MetadataError
from .manual_base import EDGE_POINTS, SLASH, Gating, ManualSource, _edges, _in_channel_values, _limits, _same_matrix

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .sample import Sample


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
        from .manual_flowjo import WorkspaceSource

        return WorkspaceSource(path, files)
    if suffix == ".xml":
        return GatingMLSource(path)
    raise MetadataError(f"{path}: a manual gating is a folder of .npz files, a FlowJo .wsp or a Gating-ML "
                        f".xml file{'' if path.exists() else ' (and it does not exist)'}")


__all__ = ["EDGE_POINTS", "SLASH", "Gating", "GatingMLSource", "ManualSource", "NpzSource", "read_manual"]
