"""Reading Gating-ML 2.0 through FlowKit: its parsed gates as cytokit gates and dimension references.

FlowKit parses the XML (``flowkit.parse_gating_xml``); :func:`from_flowkit_strategy`
turns the resulting ``GatingStrategy`` into the nodes, transforms and matrices of a
:class:`~cytokit.gating.gatingml.GateSet` (behind :meth:`~cytokit.gating.gatingml.GateSet.from_flowkit` and
:func:`~cytokit.gating.gatingml.read_gatingml`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import GateError
from ..transforms import from_flowkit
from .boolean import BooleanGate
from .gates import EllipseGate, Gate, PolygonGate, QuadrantGate, RectangleGate
from .gatingml_nodes import UNCOMPENSATED, GateDimension, GateNode


def from_flowkit_strategy(strategy) -> tuple[list[GateNode], dict, dict[str, pd.DataFrame]]:
    """The gate nodes, transforms and compensation matrices of a ``flowkit.GatingStrategy``."""
    from flowkit.exceptions import QuadrantReferenceError

    transforms = {xid: from_flowkit(x) for xid, x in strategy.transformations.items()}
    compensations = {}
    for mid, matrix in strategy.comp_matrices.items():
        compensations[mid] = pd.DataFrame(
            np.asarray(matrix.matrix, dtype=float),
            index=[str(f) for f in matrix.fluorochromes],
            columns=[str(d) for d in matrix.detectors],
        )
    nodes = []
    for gate_id, gate_path in strategy.get_gate_ids():
        try:
            fk_gate = strategy.get_gate(gate_id, gate_path)
        except QuadrantReferenceError:
            continue  # a quadrant: defined by its quadrant gate
        parent = gate_path[-1] if gate_path[-1] != "root" else None
        gate, dims = _from_flowkit_gate(fk_gate)
        nodes.append(GateNode(gate_id, gate, parent, dims))
    return nodes, transforms, compensations


def _from_flowkit_gate(fk_gate) -> tuple[Gate, dict[str, GateDimension]]:
    """A cytokit gate and its dimension references from a FlowKit gate."""
    from flowkit import QuadrantDivider, RatioDimension
    from flowkit import gates as fk

    def describe(dim) -> tuple[str, GateDimension]:
        if isinstance(dim, RatioDimension):
            channel = dim.ratio_ref
        elif isinstance(dim, QuadrantDivider):
            channel = dim.dimension_ref
        else:
            channel = dim.id
        name = dim.id if isinstance(dim, QuadrantDivider) else channel
        return name, GateDimension(channel, dim.compensation_ref or UNCOMPENSATED, dim.transformation_ref)

    if isinstance(fk_gate, fk.BooleanGate):
        operands = [ref["ref"] for ref in fk_gate.gate_refs]
        complement = [ref["ref"] for ref in fk_gate.gate_refs if ref["complement"]]
        return BooleanGate(fk_gate.type, operands, complement=complement), {}
    described = [describe(d) for d in fk_gate.dimensions]
    if isinstance(fk_gate, fk.QuadrantGate):  # name dividers by their channel when that is unambiguous
        channels = [gdim.channel for _, gdim in described]
        if len(set(channels)) == len(channels):
            described = [(gdim.channel, gdim) for _, gdim in described]
    names = [name for name, _ in described]
    if len(set(names)) != len(names):
        raise GateError(f"gate {fk_gate.gate_name!r} uses a dimension twice ({names}); not supported")
    dims = dict(described)
    if getattr(fk_gate, "use_complement", False):
        raise GateError(
            f"gate {fk_gate.gate_name!r} uses its complement, which Gating-ML 2.0 does not define"
        )
    if isinstance(fk_gate, fk.RectangleGate):
        bounds = {
            name: (getattr(d, "min", None), getattr(d, "max", None))
            for name, d in zip(names, fk_gate.dimensions)
        }
        return RectangleGate(bounds), dims
    if isinstance(fk_gate, fk.PolygonGate):
        return PolygonGate(names, fk_gate.vertices), dims
    if isinstance(fk_gate, fk.EllipsoidGate):
        return EllipseGate(
            names, fk_gate.coordinates, fk_gate.covariance_matrix, fk_gate.distance_square
        ), dims
    if isinstance(fk_gate, fk.QuadrantGate):
        name_of = {d.id: name for d, name in zip(fk_gate.dimensions, names)}
        dividers = {name_of[d.id]: [float(v) for v in d.values] for d in fk_gate.dimensions}
        quadrants = {
            q_id: {name_of[ref]: q.get_divider_range(ref) for ref in q.divider_refs}
            for q_id, q in fk_gate.quadrants.items()
        }
        return QuadrantGate(dividers, quadrants), dims
    raise GateError(f"unsupported FlowKit gate {fk_gate!r}")
