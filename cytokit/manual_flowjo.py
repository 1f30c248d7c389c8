"""A FlowJo workspace as a manual gating (:class:`WorkspaceSource`): FlowKit gates each sample, and each
file finds its sample as FlowJo relinks one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import GateError, MetadataError
from .manual_base import SLASH, Gating, ManualSource, _edges, _limits, _same_matrix

if TYPE_CHECKING:
    import pandas as pd

    from .sample import Sample


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
        self.entries = entries = _workspace_entries(self.path)
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
            named = [name for name, _ in self.entries]  # loaded or not (FlowKit names only those it loaded)
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


__all__ = ["WorkspaceSource"]
