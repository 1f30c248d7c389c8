"""FlowJo gate elements of static cytokit gates, in data values (behind :mod:`cytokit.flowjo_export`).

:func:`gate_element` writes a rectangle or polygon gate; ellipses become polygons that select exactly
the ellipse's events of the file (:func:`_ellipse_polygon`), and polygons reaching beyond a scale's
end are clipped to a box around the file's events (:func:`_within_scale`). ``fcs`` is the export's
view of one file: ``name``, ``transforms``, ``derived``, ``dim_name``, ``scaled`` and ``raw``.
"""

from __future__ import annotations

import warnings

import numpy as np

GATING = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
TRANSFORMS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
DATATYPES = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
NSMAP = {"gating": GATING, "transforms": TRANSFORMS, "data-type": DATATYPES}
COMP_PREFIX = "Comp-"
#: cytokit transforms written as FlowJo's (FlowJo's hyperlog is undocumented, and FlowKit refuses it)
FLOWJO_TRANSFORMS = ("linear", "log", "logicle", "asinh", "biex")
#: vertices of an ellipse's polygon: the first count that selects exactly the ellipse's events
ELLIPSE_VERTICES = (256, 1024, 4096, 16384, 65536)


def gml(name: str) -> str:
    """``name`` in the Gating-ML gating namespace (lxml's ``{uri}name``)."""
    return f"{{{GATING}}}{name}"


def xml_t(name: str) -> str:
    """``name`` in the Gating-ML transformations namespace."""
    return f"{{{TRANSFORMS}}}{name}"


def xml_d(name: str) -> str:
    """``name`` in the Gating-ML data-types namespace."""
    return f"{{{DATATYPES}}}{name}"


def number(value: float) -> str:
    """The shortest text that reads back as the same float."""
    return repr(float(value))


class NoFlowJoForm(Exception):
    """A population FlowJo cannot hold exactly; the message says why."""


def gate_element(fcs, gate, *, empty: bool):
    """The FlowJo gate element of a static cytokit gate, in data values."""
    from lxml import etree

    from .gating.gates import EllipseGate, PolygonGate, RectangleGate

    for pnn in gate.dims:
        if pnn in fcs.derived:
            raise NoFlowJoForm(f"it reads {fcs.derived[pnn]} on a transform of its own ({pnn}), and FlowJo has "
                               f"one transform per parameter: {fcs.derived[pnn]}'s is its first role's")
        transform = fcs.transforms.get(pnn)
        if transform is not None and transform.kind not in FLOWJO_TRANSFORMS:
            raise NoFlowJoForm(f"no FlowJo transform FlowKit reads for {transform.kind} ({pnn})")
    if empty:  # a failed gate: nothing is inside [v, v)
        element = etree.Element(gml("RectangleGate"), eventsInside="1", percentX="0", percentY="0")
        dim = etree.SubElement(element, gml("dimension"), {gml("min"): "0.0", gml("max"): "0.0"})
        etree.SubElement(dim, xml_d("fcs-dimension"), {xml_d("name"): fcs.dim_name(gate.dims[0])})
        return element
    if isinstance(gate, RectangleGate):
        element = etree.Element(gml("RectangleGate"), eventsInside="1", percentX="0", percentY="0")
        for pnn, bounds in gate.bounds.items():
            dim = etree.SubElement(element, gml("dimension"))
            for key, bound in zip(("min", "max"), bounds):
                if bound is None:
                    continue
                value = float(fcs.raw(pnn, [bound])[0])
                if np.isfinite(value):
                    dim.set(gml(key), number(value))
                    continue
                events = fcs.scaled(pnn)
                events = events[np.isfinite(events)]
                if not (events < bound).all() if key == "max" else not (events >= bound).all():
                    raise NoFlowJoForm(f"bound {bound:g} of {pnn} has no data value")
                # beyond the scale's end with every event inside it: an open bound selects the same
            if dim.get(gml("min")) is None and dim.get(gml("max")) is None:
                raise NoFlowJoForm(f"both bounds of {pnn} lie beyond the scale")
            etree.SubElement(dim, xml_d("fcs-dimension"), {xml_d("name"): fcs.dim_name(pnn)})
        return element
    if isinstance(gate, EllipseGate):
        if len(gate.dims) != 2:
            raise NoFlowJoForm(f"FlowJo ellipses have 2 dimensions, not {len(gate.dims)}")
        vertices = _ellipse_polygon(fcs, gate)
    elif isinstance(gate, PolygonGate):
        vertices = _within_scale(fcs, gate)
    else:
        raise NoFlowJoForm(f"{type(gate).__name__} has no FlowJo equivalent")
    element = etree.Element(gml("PolygonGate"), eventsInside="1", quadId="-1", gateResolution="256")
    for pnn in gate.dims:
        dim = etree.SubElement(element, gml("dimension"))
        etree.SubElement(dim, xml_d("fcs-dimension"), {xml_d("name"): fcs.dim_name(pnn)})
    raw = np.column_stack([fcs.raw(pnn, vertices[:, j]) for j, pnn in enumerate(gate.dims)])
    if not np.isfinite(raw).all():
        raise NoFlowJoForm(f"vertices over {', '.join(gate.dims)} beyond the scale's end")
    for vertex in raw:
        point = etree.SubElement(element, gml("vertex"))
        for value in vertex:
            etree.SubElement(point, gml("coordinate"), {xml_d("value"): number(value)})
    return element


def _ellipse_polygon(fcs, gate) -> np.ndarray:
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
                  "events on its edge", stacklevel=7)  # the caller of to_flowjo
    return vertices


def _frame(dims, points: np.ndarray):
    import pandas as pd

    return pd.DataFrame(points, columns=list(dims))


def _within_scale(fcs, gate) -> np.ndarray:
    """The polygon's vertices, clipped to a box just around the file's events where a vertex has no
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
        margin = 1e-3 * (hi - lo) + 1e-9 * (1 + abs(hi) + abs(lo))
        box.append((lo - margin, hi + margin))
    clipped = _clip(vertices, box)
    if len(clipped) < 3:
        raise NoFlowJoForm(f"the polygon over {', '.join(gate.dims)} lies outside the file's events")
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


__all__: list[str] = []
