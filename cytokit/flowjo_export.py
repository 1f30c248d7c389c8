"""The gates as fitted, as a FlowJo 10 workspace (``.wsp``): :func:`to_flowjo`.

One sample per analysed file, each with *its own* gates: every data-driven gate becomes the
static gate it learned on that file (from :attr:`Results.fitted <cytokit.results.Results>`,
rebuilt on the template's gate with the file's channels), with the file's transforms and
compensation, so FlowJo (or FlowKit's ``Workspace``) opens each file as cytokit gated it.

FlowJo stores gate coordinates as data values (compensated, untransformed) and draws them on
each parameter's transform; cytokit's gates live on the transformed scale, so every bound and
vertex is written as ``transform.inverse(value)``. What is written, and how:

====================================  =====================================================
cytokit                               FlowJo
====================================  =====================================================
range, rectangle (and the thresholds  ``RectangleGate`` (an open bound is left out)
and boundaries fitted to them)
polygon (singlet wedges ...)          ``PolygonGate``; a vertex beyond the scale's end (the
                                      half-planes of a 2-D ``peak_foot``) is clipped to a box
                                      around the file's events first
ellipse (``cluster``)                 ``PolygonGate`` of 256-65,536 vertices on the ellipse,
                                      checked to select exactly the ellipse's events of the
                                      file: FlowJo's own ellipse is kept in 256-bin display
                                      coordinates and read back as a polygon, never exact
boolean and / or / not                ``AndNode`` / ``OrNode`` / ``NotNode`` (dependents by
                                      path); an operand used as its complement has no FlowJo
                                      form: the population is left out, with a warning
skipped (optional, no channel)        ``OrNode`` of its parent: every parent event
failed                                an empty ``RectangleGate`` (min = max), its reason in
                                      the population's ``annotation``
====================================  =====================================================

Transforms: linear, log, logicle, asinh (``fasinh``) and biex as FlowJo writes them;
hyperlog has no FlowJo 10 form, so the gates on such a channel are left out (a warning).
Compensation: the file's (``Acquisition-defined``) or the template's matrix as the sample's
``spilloverMatrix``; compensated detectors are named ``Comp-<PnN>`` in gates, as FlowJo does.
FlowKit's own exporter writes neither per-sample gates nor the sample's matrix, nor ellipses
and booleans, so the XML is written here (``docs/design.md``).
"""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

import numpy as np

from ._files import write_atomic
from .errors import CytokitError

GATING = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
TRANSFORMS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
DATATYPES = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
NSMAP = {"gating": GATING, "transforms": TRANSFORMS, "data-type": DATATYPES}
COMP_PREFIX = "Comp-"
GROUP = "All Samples"
#: cytokit transforms FlowJo 10 has (hyperlog has no FlowJo 10 form)
FLOWJO_TRANSFORMS = ("linear", "log", "logicle", "asinh", "biex")
#: vertices of an ellipse's polygon: the first count that selects exactly the ellipse's events
ELLIPSE_VERTICES = (256, 1024, 4096, 16384, 65536)


def _g(name: str) -> str:
    return f"{{{GATING}}}{name}"


def _t(name: str) -> str:
    return f"{{{TRANSFORMS}}}{name}"


def _d(name: str) -> str:
    return f"{{{DATATYPES}}}{name}"


def _num(value: float) -> str:
    return repr(float(value))


def to_flowjo(results, path: str | Path) -> Path:
    """Write the gates of every analysed file of ``results`` as a FlowJo 10 workspace at ``path``.

    Parameters
    ----------
    results
        :class:`~cytokit.results.Results` (or anything with its ``samples``, ``paths``, ``fitted``,
        ``gating`` and ``template_path``).
    path
        The ``.wsp`` file, written atomically. Its samples name the FCS files by absolute path.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    CytokitError
        No analysed file, or a file's fitted values are missing (results of another template).
    """
    from lxml import etree

    from .gating.load import load_template

    template = load_template(results.template_path)
    done = results.samples[results.samples["status"] != "error"]
    files = [f for f in done["file"] if f in results.fitted and f in results.gating]
    if not files:
        raise CytokitError("no analysed file to export as a FlowJo workspace")
    root = etree.Element("Workspace", nsmap=NSMAP)
    root.set("version", "20.0")
    root.set("modDate", datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y"))
    root.set("flowJoVersion", "10.7.1")
    root.set("curGroup", GROUP)
    etree.SubElement(root, "Matrices")
    group_node = etree.SubElement(etree.SubElement(root, "Groups"), "GroupNode",
                                  name=GROUP, annotation="", owningGroup=GROUP)
    refs = etree.SubElement(etree.SubElement(group_node, "Group", name=GROUP), "SampleRefs")
    samples = etree.SubElement(root, "SampleList")
    for number, file in enumerate(files, start=1):
        etree.SubElement(refs, "SampleRef", sampleID=str(number))
        samples.append(_sample_element(template, file, results, str(number)))
    data = etree.tostring(etree.ElementTree(root), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return write_atomic(Path(path), data)


# ---- one file: its static gates ----------------------------------------------------------------


class _File:
    """One file as its run saw it: compensated events, transforms, channels, static gates."""

    def __init__(self, template, file: str, results) -> None:
        from .compensation import compensate
        from .gating.apply import _spillover, _transforms

        self.name, self.path = file, Path(results.paths[file]).resolve()
        self.sample = _read(self.path)
        self.channels = {role: pnn for role, pnn, _ in results.gating[file]["channels"]}
        spillover, self.comp_source = _spillover(template, self.sample)
        self.spillover = None if spillover is None else _validated(spillover)
        self.events = self.sample.events if spillover is None else compensate(self.sample.events, spillover)
        self.transforms = _transforms(template, self.sample, self.channels)
        self.detectors = set() if self.spillover is None else {str(c) for c in self.spillover.columns}

    def dim_name(self, pnn: str) -> str:
        """The parameter's name in FlowJo: ``Comp-`` before compensated detectors; FlowJo writes
        ``_`` for ``/``."""
        return (COMP_PREFIX + pnn if pnn in self.detectors else pnn).replace("/", "_")

    def scaled(self, pnn: str) -> np.ndarray:
        """Every event of channel ``pnn`` on the gating scale."""
        values = self.events[pnn].to_numpy(dtype=np.float64)
        transform = self.transforms.get(pnn)
        return values if transform is None else transform.apply(values)

    def raw(self, pnn: str, values) -> np.ndarray:
        """Gating-scale ``values`` of ``pnn`` as data values (what FlowJo stores)."""
        transform = self.transforms.get(pnn)
        values = np.asarray(values, dtype=np.float64)
        return values if transform is None else np.asarray(transform.inverse(values), dtype=np.float64)


def _read(path: Path):
    from .fcs import FCSWarning, read_fcs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FCSWarning)
        return read_fcs(path)


def _validated(spillover):
    from .compensation import validate_spillover

    return validate_spillover(spillover)


def _static_tree(template, fcs: _File, learned: dict) -> list[tuple[str, str, str, object]]:
    """``(path, parent path, kind, gate or reason)`` in template order; ``kind`` is ``gate``,
    ``skipped`` or ``failed``."""
    from .gating._schema import _gate_roles
    from .gating.apply import _build_gate

    tree = []
    for pop in template.populations:
        path = template.path_of(pop.name)
        parent = template.path_of(pop.parent) if pop.parent != "root" else "root"
        missing = [r for r in _gate_roles(pop.gate) if r not in fcs.channels]
        if missing:
            tree.append((path, parent, "skipped", f"skipped: the file has no channel for role(s) "
                                                 f"{', '.join(missing)}"))
            continue
        gate = _build_gate(template, pop, fcs.channels)
        if hasattr(gate, "fit"):
            if path not in learned:
                raise CytokitError(f"{fcs.name}: no fitted values of population {path} in the results; "
                                   "were they made with this template?")
            gate.__dict__.update(learned[path])
            if gate.failed_:
                tree.append((path, parent, "failed", (gate, f"gate failed: {gate.failed_}")))
                continue
            gate = gate.to_static()
        tree.append((path, parent, "gate", gate))
    return tree


# ---- the XML of one sample ---------------------------------------------------------------------


def _sample_element(template, file: str, results, sample_id: str):
    from lxml import etree

    fcs = _File(template, file, results)
    sample = etree.Element("Sample")
    etree.SubElement(sample, "DataSet", uri=fcs.path.as_uri(), sampleID=sample_id)
    if fcs.spillover is not None:
        _matrix_element(sample, fcs)
    transforms = etree.SubElement(sample, "Transformations")
    for pnn, transform in fcs.transforms.items():
        if transform.kind not in FLOWJO_TRANSFORMS:
            continue  # the gates on it are left out (_geometry says why)
        for name in dict.fromkeys((pnn.replace("/", "_"), fcs.dim_name(pnn))):
            _transform_element(transforms, transform, name)
    keywords = etree.SubElement(sample, "Keywords")
    for key, value in fcs.sample.keywords.items():
        etree.SubElement(keywords, "Keyword", name=_xml_text(key), value=_xml_text(value))
    node = etree.SubElement(sample, "SampleNode", name=file, annotation="", owningGroup="",
                            sampleID=sample_id, count=str(len(fcs.events)))
    _write_tree(etree.SubElement(node, "Subpopulations"), fcs, _static_tree(template, fcs, results.fitted[file]))
    return sample


def _xml_text(value) -> str:
    """``value`` without the characters XML 1.0 cannot hold (FCS TEXT may have control bytes)."""
    return "".join(c for c in str(value) if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
                   or c >= "\U00010000")


def _matrix_element(parent, fcs: _File) -> None:
    from lxml import etree

    name = "Acquisition-defined" if fcs.comp_source == "file" else str(fcs.comp_source)
    matrix = etree.SubElement(parent, _t("spilloverMatrix"), spectral="0", prefix=COMP_PREFIX, name=name,
                              editable="0", version="FlowJo-10.7.1", status="FINALIZED", suffix="")
    matrix.set(_t("id"), f"cytokit-{name}")
    detectors = [str(c) for c in fcs.spillover.columns]
    params = etree.SubElement(matrix, _d("parameters"))
    for detector in detectors:
        etree.SubElement(params, _d("parameter"), {_d("name"): detector.replace("/", "_"),
                                                   "userProvidedCompInfix": fcs.dim_name(detector)})
    values = fcs.spillover.to_numpy(dtype=np.float64)
    for i, source in enumerate(detectors):  # rows aligned to the detectors: row i spills from detector i
        row = etree.SubElement(matrix, _t("spillover"), {_d("parameter"): source.replace("/", "_"),
                                                         "userProvidedCompInfix": fcs.dim_name(source)})
        for j, detector in enumerate(detectors):
            etree.SubElement(row, _t("coefficient"), {_d("parameter"): detector.replace("/", "_"),
                                                      _t("value"): _num(values[i, j])})


def _transform_element(parent, transform, name: str) -> None:
    from lxml import etree

    kind, p = transform.kind, transform.params
    if kind == "linear":  # FlowJo's range is [minRange, maxRange]; cytokit's linear maps [-a, t] to [0, 1]
        attrs = {"minRange": -p["a"], "maxRange": p["t"], "gain": 1.0}
    elif kind == "log":  # log10(x / t) / m + 1 is FlowJo's (log10 x - log10 offset) / decades
        attrs = {"offset": p["t"] / 10.0 ** p["m"], "decades": p["m"]}
    elif kind == "logicle":
        attrs = {"length": 256, "T": p["t"], "W": p["w"], "M": p["m"], "A": p["a"]}
    elif kind == "asinh":
        kind, attrs = "fasinh", {"length": 256, "maxRange": p["t"], "T": p["t"], "M": p["m"], "A": p["a"], "W": 0}
    elif kind == "biex":
        attrs = {"length": 256, "maxRange": p["t"], "neg": p["negative"], "width": p["width"], "pos": p["positive"]}
    else:
        raise ValueError(f"the {kind} transform has no FlowJo 10 form")
    element = etree.SubElement(parent, _t(kind), {_t(k): str(v) if isinstance(v, int) else _num(v)
                                                   for k, v in attrs.items()})
    etree.SubElement(element, _d("parameter"), {_d("name"): name})


def _write_tree(top, fcs: _File, tree) -> None:
    """Every population under its parent's ``Subpopulations``; those FlowJo cannot hold (and their
    descendants) are left out with one warning per file."""
    from lxml import etree

    holders = {"root": top}
    left_out: list[str] = []
    for number, (path, parent, kind, gate) in enumerate(tree, start=1):
        if parent not in holders:
            continue  # below a population left out
        try:
            element = _population(holders[parent], fcs, path, parent, kind, gate, f"ID{number}", holders)
        except _NoFlowJoForm as reason:
            left_out.append(f"{path} ({reason})")
            continue
        holders[path] = etree.SubElement(element, "Subpopulations")
    for element in list(holders.values()):
        if len(element) == 0 and element is not top:
            element.getparent().remove(element)
    if left_out:
        warnings.warn(f"{fcs.name}: left out of the FlowJo workspace, with the populations below them: "
                      f"{'; '.join(left_out)}", stacklevel=4)


class _NoFlowJoForm(Exception):
    """A population FlowJo cannot hold exactly; the message says why."""


def _population(parent_el, fcs: _File, path, parent, kind, gate, gate_id, holders):
    from lxml import etree

    from .gating.boolean import BooleanGate

    name = path.rsplit("/", 1)[-1]
    if kind == "skipped" or isinstance(gate, BooleanGate):
        if kind == "skipped":
            if parent == "root":
                raise _NoFlowJoForm("skipped at the root: FlowJo has no gate of every event")
            op, operands, note = "or", [parent], gate
        else:
            if gate.complement:
                raise _NoFlowJoForm("FlowJo's boolean gates have no operand used as its complement")
            op, note = gate.op, ""
            operands = [_operand_path(o, holders) for o in gate.operands]
        element = etree.SubElement(parent_el, {"and": "AndNode", "or": "OrNode", "not": "NotNode"}[op],
                                   name=name, annotation=note, owningGroup="")
        dependents = etree.SubElement(element, "Dependents")
        for operand in operands:
            etree.SubElement(dependents, "Dependent", name=operand)
        return element
    note = ""
    if kind == "failed":
        gate, note = gate
    geometry = _geometry(fcs, gate, empty=kind == "failed")
    element = etree.SubElement(parent_el, "Population", name=name, annotation=note, owningGroup="")
    wrapper = etree.SubElement(element, "Gate", {_g("id"): gate_id})
    parent_id = holders[parent].getparent().find("Gate") if parent != "root" else None
    if parent_id is not None:
        wrapper.set(_g("parent_id"), parent_id.get(_g("id")))
    wrapper.append(geometry)
    return element


def _operand_path(operand: str, holders) -> str:
    """The path of a boolean operand (a population name, unique in a template) among those written."""
    matches = [p for p in holders if p != "root" and p.rsplit("/", 1)[-1] == operand]
    if not matches:
        raise _NoFlowJoForm(f"its operand {operand} is not in the workspace")
    return matches[0]


def _geometry(fcs: _File, gate, *, empty: bool):
    """The FlowJo gate element of a static cytokit gate, in data values."""
    from lxml import etree

    from .gating.gates import EllipseGate, PolygonGate, RectangleGate

    for pnn in gate.dims:
        transform = fcs.transforms.get(pnn)
        if transform is not None and transform.kind not in FLOWJO_TRANSFORMS:
            raise _NoFlowJoForm(f"FlowJo 10 has no {transform.kind} transform ({pnn})")
    if empty:  # a failed gate: nothing is inside [v, v)
        element = etree.Element(_g("RectangleGate"), eventsInside="1", percentX="0", percentY="0")
        dim = etree.SubElement(element, _g("dimension"), {_g("min"): "0.0", _g("max"): "0.0"})
        etree.SubElement(dim, _d("fcs-dimension"), {_d("name"): fcs.dim_name(gate.dims[0])})
        return element
    if isinstance(gate, RectangleGate):
        element = etree.Element(_g("RectangleGate"), eventsInside="1", percentX="0", percentY="0")
        for pnn, bounds in gate.bounds.items():
            dim = etree.SubElement(element, _g("dimension"))
            for key, bound in zip(("min", "max"), bounds):
                if bound is None:
                    continue
                value = float(fcs.raw(pnn, [bound])[0])
                if np.isnan(value):
                    raise _NoFlowJoForm(f"bound {bound:g} of {pnn} has no data value")
                if np.isfinite(value):  # beyond the scale's end: every finite event is on its side
                    dim.set(_g(key), _num(value))
            if dim.get(_g("min")) is None and dim.get(_g("max")) is None:
                raise _NoFlowJoForm(f"both bounds of {pnn} lie beyond the scale")
            etree.SubElement(dim, _d("fcs-dimension"), {_d("name"): fcs.dim_name(pnn)})
        return element
    if isinstance(gate, EllipseGate):
        if len(gate.dims) != 2:
            raise _NoFlowJoForm(f"FlowJo ellipses have 2 dimensions, not {len(gate.dims)}")
        vertices = _ellipse_polygon(fcs, gate)
    elif isinstance(gate, PolygonGate):
        vertices = _within_scale(fcs, gate)
    else:
        raise _NoFlowJoForm(f"{type(gate).__name__} has no FlowJo equivalent")
    element = etree.Element(_g("PolygonGate"), eventsInside="1", quadId="-1", gateResolution="256")
    for pnn in gate.dims:
        dim = etree.SubElement(element, _g("dimension"))
        etree.SubElement(dim, _d("fcs-dimension"), {_d("name"): fcs.dim_name(pnn)})
    raw = np.column_stack([fcs.raw(pnn, vertices[:, j]) for j, pnn in enumerate(gate.dims)])
    for vertex in raw:
        point = etree.SubElement(element, _g("vertex"))
        for value in vertex:
            etree.SubElement(point, _g("coordinate"), {_d("value"): _num(value)})
    return element


def _ellipse_polygon(fcs: _File, gate) -> np.ndarray:
    """A polygon inscribed in the ellipse that holds exactly the ellipse's events of the file
    (only events between the polygon and the ellipse can differ: those are checked)."""
    from flowutils.gating import points_in_polygon

    points = np.column_stack([fcs.scaled(d) for d in gate.dims])
    inside = gate.contains(_frame(gate.dims, points))
    centred = points - gate.mean
    with np.errstate(invalid="ignore"):
        d2 = np.einsum("ij,jk,ik->i", centred, np.linalg.inv(gate.covariance), centred)
    chol = np.linalg.cholesky(gate.covariance)
    for n in ELLIPSE_VERTICES:
        angles = 2 * np.pi * np.arange(n) / n
        circle = np.column_stack([np.cos(angles), np.sin(angles)]) * np.sqrt(gate.distance_square)
        vertices = gate.mean + circle @ chol.T
        near = np.flatnonzero(inside & (d2 >= gate.distance_square * np.cos(np.pi / n) ** 2 * (1 - 1e-9)))
        if len(near) == 0 or np.asarray(points_in_polygon(vertices, points[near]), dtype=bool).all():
            return vertices
    warnings.warn(f"{fcs.name}: an ellipse over {', '.join(gate.dims)} as a {n}-vertex polygon still leaves out "
                  "events on its edge", stacklevel=5)
    return vertices


def _frame(dims, points: np.ndarray):
    import pandas as pd

    return pd.DataFrame(points, columns=list(dims))


def _within_scale(fcs: _File, gate) -> np.ndarray:
    """The polygon's vertices, clipped to a box around the file's events where a vertex has no
    data value (a half-plane drawn to ±10⁶ on a logicle scale): the same events inside."""
    vertices = gate.vertices
    raw = np.column_stack([fcs.raw(pnn, vertices[:, j]) for j, pnn in enumerate(gate.dims)])
    if np.isfinite(raw).all():
        return vertices
    box = []
    for pnn in gate.dims:
        values = fcs.scaled(pnn)
        values = values[np.isfinite(values)]
        lo, hi = (values.min(), values.max()) if len(values) else (0.0, 1.0)
        box.append((lo - 0.1 * (hi - lo + 1), hi + 0.1 * (hi - lo + 1)))
    clipped = _clip(vertices, box)
    if len(clipped) < 3:
        raise _NoFlowJoForm(f"the polygon over {', '.join(gate.dims)} lies outside the file's events")
    return clipped


def _clip(vertices: np.ndarray, box) -> np.ndarray:
    """Sutherland–Hodgman: ``vertices`` clipped to the axis-aligned ``box`` [(lo, hi), (lo, hi)]."""
    points = [tuple(v) for v in vertices]
    for axis in (0, 1):
        for bound, keep in ((box[axis][0], lambda p, b, a=axis: p[a] >= b), (box[axis][1], lambda p, b, a=axis: p[a] <= b)):
            out = []
            for k, current in enumerate(points):
                previous = points[k - 1]
                if keep(current, bound) != keep(previous, bound):
                    t = (bound - previous[axis]) / (current[axis] - previous[axis])
                    out.append(tuple(previous[i] + t * (current[i] - previous[i]) for i in (0, 1)))
                if keep(current, bound):
                    out.append(current)
            points = out
            if not points:
                return np.zeros((0, 2))
    return np.asarray(points, dtype=np.float64)


__all__ = ["to_flowjo"]
