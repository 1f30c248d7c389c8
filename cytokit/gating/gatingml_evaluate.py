"""Evaluating a Gating-ML gate set on a sample: cytokit's own compensation, transforms and gates.

:func:`evaluate` (behind :meth:`~cytokit.gating.gatingml.GateSet.evaluate`) gives the
membership of every population, parents applied; each gate dimension's values
(compensated as its :class:`~cytokit.gating.gatingml_nodes.GateDimension` says, ratio and
scale transforms applied) are computed once per sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..compensation import compensate
from ..errors import ChannelNotFoundError
from ..sample import Sample
from ..transforms import RatioTransform
from .boolean import BooleanGate
from .gates import QuadrantGate
from .gatingml_nodes import FCS, UNCOMPENSATED, GateDimension


def evaluate(gates, sample: Sample | pd.DataFrame) -> pd.DataFrame:
    """The memberships of :meth:`GateSet.evaluate <cytokit.gating.gatingml.GateSet.evaluate>`
    for the set ``gates`` (a :class:`~cytokit.gating.gatingml.GateSet`)."""
    if isinstance(sample, pd.DataFrame):
        sample = Sample.from_dataframe(sample)
    source = _EventSource(gates, sample)
    n = sample.n_events
    memberships: dict[str, np.ndarray] = {}
    for node in gates.nodes:
        if isinstance(node.gate, BooleanGate):
            operands = pd.DataFrame({op: memberships[op] for op in node.gate.operands})
            own: dict[str, np.ndarray] = {node.gate_id: node.gate.contains(operands)}
        else:
            frame = pd.DataFrame(
                {dim: source.values(node.dimension(dim), node.gate_id) for dim in node.gate.dims}
            )
            if isinstance(node.gate, QuadrantGate):
                own = node.gate.split(frame)
            else:
                own = {node.gate_id: node.gate.contains(frame)}
        parent = memberships[node.parent] if node.parent is not None else np.ones(n, dtype=bool)
        for pop, mask in own.items():
            memberships[pop] = np.asarray(mask, dtype=bool) & parent
    return pd.DataFrame(memberships, index=sample.events.index)[gates.populations]


class _EventSource:
    """Compensated, transformed columns of one sample, computed once each."""

    def __init__(self, gates, sample: Sample) -> None:  # gates: a GateSet
        self.gates, self.sample = gates, sample
        self._compensated: dict[str, pd.DataFrame] = {}
        self._columns: dict[GateDimension, np.ndarray] = {}

    def _events(self, ref: str) -> pd.DataFrame:
        if ref not in self._compensated:
            events = self.sample.events
            if ref == FCS:
                if self.sample.spillover is not None:
                    events = compensate(events, self.sample.spillover)
            elif ref != UNCOMPENSATED:
                events = compensate(events, self.gates.compensations[ref])
            self._compensated[ref] = events
        return self._compensated[ref]

    def _column(self, name: str, ref: str, gate_id: str) -> str:
        events = self._events(ref)
        matrix = self.gates.compensations.get(ref)
        if matrix is not None and list(matrix.index) != list(matrix.columns) and name in matrix.index:
            return str(matrix.columns[list(matrix.index).index(name)])  # fluorochrome i ↔ detector i
        if name in events.columns:
            return name
        try:
            return self.sample.channel(name)
        except ChannelNotFoundError as error:
            raise ChannelNotFoundError(f"gate {gate_id!r}: {error}") from None

    def values(self, gdim: GateDimension, gate_id: str) -> np.ndarray:
        if gdim not in self._columns:
            events = self._events(gdim.compensation)
            ratio = self.gates.transforms.get(gdim.channel)
            if isinstance(ratio, RatioTransform):
                num, den = (self._column(c, gdim.compensation, gate_id) for c in ratio.channels)
                frame = events[[num, den]].set_axis(list(ratio.channels), axis=1)
                values = ratio.apply(frame)
            else:
                values = events[self._column(gdim.channel, gdim.compensation, gate_id)].to_numpy(dtype=float)
            if gdim.transform is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    values = self.gates.transforms[gdim.transform].apply(values)
            self._columns[gdim] = values
        return self._columns[gdim]
