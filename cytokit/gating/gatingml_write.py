"""Writing Gating-ML 2.0 through FlowKit: a gate set as a ``flowkit.GatingStrategy``, then XML.

:func:`to_flowkit_strategy` converts a :class:`~cytokit.gating.gatingml.GateSet` (behind
:meth:`GateSet.to_flowkit <cytokit.gating.gatingml.GateSet.to_flowkit>`); :func:`write_xml`
exports it with ``flowkit.export_gatingml``, writes the quadrant locations FlowKit gets wrong,
and checks the document against the Gating-ML 2.0 schema FlowKit ships (behind
:meth:`GateSet.write <cytokit.gating.gatingml.GateSet.write>`, which first checks the ids).
"""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import GateError
from ..transforms import RatioTransform
from .boolean import BooleanGate
from .gates import EllipseGate, PolygonGate, QuadrantGate, RectangleGate
from .gatingml_nodes import GateNode, _divider_id


def to_flowkit_strategy(gates):
    """The ``flowkit.GatingStrategy`` equivalent to the set ``gates``."""
    import flowkit

    strategy = flowkit.GatingStrategy()
    for xform_id, xform in gates.transforms.items():
        strategy.add_transform(xform_id, xform.to_flowkit())
    for matrix_id, matrix in gates.compensations.items():
        strategy.add_comp_matrix(
            matrix_id,
            flowkit.Matrix(
                matrix.to_numpy(dtype=float),
                detectors=[str(c) for c in matrix.columns],
                fluorochromes=[str(i) for i in matrix.index],
            ),
        )
    for node in gates.nodes:
        parent_path = _flowkit_path(gates, node.parent) if node.parent is not None else ("root",)
        strategy.add_gate(_to_flowkit_gate(gates, node), gate_path=parent_path)
    return strategy


def _fk_dimension(gates, node: GateNode, dim: str, bounds=(None, None)):
    import flowkit

    gdim = node.dimension(dim)
    lo, hi = bounds
    if isinstance(gates.transforms.get(gdim.channel), RatioTransform):
        ratio = flowkit.RatioDimension(gdim.channel, gdim.compensation, gdim.transform, lo, hi)
        ratio.min, ratio.max = lo, hi  # FlowKit leaves them unset when None
        return ratio
    return flowkit.Dimension(
        gdim.channel,
        compensation_ref=gdim.compensation,
        transformation_ref=gdim.transform,
        range_min=lo,
        range_max=hi,
    )


def _to_flowkit_gate(gates, node: GateNode):
    import flowkit
    from flowkit import gates as fk

    gate, gid = node.gate, node.gate_id
    if isinstance(gate, RectangleGate):
        return fk.RectangleGate(gid, [_fk_dimension(gates, node, d, b) for d, b in gate.bounds.items()])
    if isinstance(gate, PolygonGate):
        return fk.PolygonGate(
            gid, [_fk_dimension(gates, node, d) for d in gate.dims], gate.vertices.tolist()
        )
    if isinstance(gate, EllipseGate):
        return fk.EllipsoidGate(
            gid,
            [_fk_dimension(gates, node, d) for d in gate.dims],
            gate.mean.tolist(),
            gate.covariance.tolist(),
            gate.distance_square,
        )
    if isinstance(gate, QuadrantGate):
        dividers = []
        for dim, values in gate.dividers.items():
            gdim = node.dimension(dim)
            dividers.append(
                flowkit.QuadrantDivider(
                    _divider_id(gid, dim),
                    gdim.channel,
                    gdim.compensation,
                    list(values),
                    transformation_ref=gdim.transform,
                )
            )
        quadrants = [
            fk.Quadrant(name, [_divider_id(gid, d) for d in ranges], list(ranges.values()))
            for name, ranges in gate.quadrants.items()
        ]
        return fk.QuadrantGate(gid, dividers, quadrants)
    if isinstance(gate, BooleanGate):
        refs = [
            {"ref": op, "path": _flowkit_path(gates, op)[:-1], "complement": op in gate.complement}
            for op in gate.operands
        ]
        return fk.BooleanGate(gid, gate.op, refs)
    raise GateError(f"gate {gid!r} of type {type(gate).__name__} has no Gating-ML equivalent")


def _flowkit_path(gates, population: str) -> tuple[str, ...]:
    """FlowKit's full path of a population, quadrant gates included, from ``'root'``."""
    path = ["root"]
    for pop in gates.lineage(population):
        node = gates.node(pop)
        if isinstance(node.gate, QuadrantGate):
            path.append(node.gate_id)
        path.append(pop)
    return tuple(path)


def write_xml(gates, path: str | Path) -> Path:
    """Write the set ``gates`` as a Gating-ML 2.0 file, checked against the schema FlowKit
    ships (see :meth:`GateSet.write <cytokit.gating.gatingml.GateSet.write>`); returns the path."""
    import flowkit
    from flowkit._resources import gml_schema
    from lxml import etree

    biex = sorted(c for c, x in gates.transforms.items() if getattr(x, "kind", "") == "biex")
    if biex:
        raise GateError(f"cannot write {path} as Gating-ML: FlowJo's biex transform ({', '.join(biex)}) "
                        "has no Gating-ML 2.0 form; use logicle in the template, or export a FlowJo workspace")
    buffer = io.BytesIO()
    flowkit.export_gatingml(to_flowkit_strategy(gates), buffer)
    tree = etree.fromstring(buffer.getvalue())
    _fix_quadrant_locations(gates, tree)
    if not gml_schema.validate(etree.ElementTree(tree)):
        raise GateError(
            f"the Gating-ML document for {path} fails the Gating-ML 2.0 schema: "
            f"{gml_schema.error_log.last_error}"
        )
    path = Path(path)
    path.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="utf-8", pretty_print=True))
    return path


def _fix_quadrant_locations(gates, tree) -> None:
    """FlowKit writes ``max / 2`` and ``min * 2`` as quadrant locations, which land in the
    wrong interval for negative or zero dividers; write a point inside every interval."""
    gating = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    for quadrant_ml in tree.iter(f"{{{gating}}}Quadrant"):
        name = quadrant_ml.get(f"{{{gating}}}id")
        node = gates.node(name)
        assert isinstance(node.gate, QuadrantGate)
        dim_of = {_divider_id(node.gate_id, d): d for d in node.gate.dims}
        for position in quadrant_ml.iter(f"{{{gating}}}position"):
            lo, hi = node.gate.quadrants[name][dim_of[position.get(f"{{{gating}}}divider_ref")]]
            if lo is not None and hi is not None:
                location = (lo + hi) / 2
            elif lo is not None:
                location = lo + max(1.0, abs(lo))
            else:
                location = hi - max(1.0, abs(hi))
            position.set(f"{{{gating}}}location", repr(float(location)))
