"""The parts a Gating-ML 2.0 gate set is made of: dimension references, gate nodes and ids.

A :class:`GateDimension` says where the values of one gate dimension come from (a
compensation reference and an optional transform reference); a :class:`GateNode` is
one gate of a :class:`~cytokit.gating.gatingml.GateSet` with its parent and dimensions.
Gating-ML ids must be XML names: :func:`gatingml_id` makes one from a population name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .gates import Gate, QuadrantGate

UNCOMPENSATED = "uncompensated"
FCS = "FCS"


@dataclass(frozen=True)
class GateDimension:
    """Where the values of one gate dimension come from.

    Parameters
    ----------
    channel
        ``$PnN`` (or ``$PnS``) of the sample, a fluorochrome name of the referenced
        compensation matrix, or the id of a :class:`~cytokit.transforms.RatioTransform`.
    compensation
        ``"uncompensated"``, ``"FCS"`` (the sample's own spillover; uncompensated when it
        has none) or the id of a matrix in :attr:`~cytokit.gating.gatingml.GateSet.compensations`.
    transform
        Id of a transform in :attr:`~cytokit.gating.gatingml.GateSet.transforms`, or ``None``.
    """

    channel: str
    compensation: str = UNCOMPENSATED
    transform: str | None = None


@dataclass
class GateNode:
    """One gate of a :class:`~cytokit.gating.gatingml.GateSet`.

    ``dimensions`` maps each of ``gate.dims`` to its :class:`GateDimension`; a missing
    entry means the uncompensated, untransformed channel of that name. Boolean gates
    have no dimensions: their operands are population ids.
    """

    gate_id: str
    gate: Gate
    parent: str | None = None
    dimensions: dict[str, GateDimension] = field(default_factory=dict)

    def dimension(self, dim: str) -> GateDimension:
        return self.dimensions.get(dim, GateDimension(dim))

    @property
    def populations(self) -> list[str]:
        """Population ids this gate defines: its quadrants, or its own id."""
        if isinstance(self.gate, QuadrantGate):
            return list(self.gate.quadrants)
        return [self.gate_id]


# XML 1.0's NameStartChar and NameChar without ':' (an NCName): Python's \w takes in characters XML
# names do not allow (µ, U+00B5, failed the Gating-ML schema)
_START = ("A-Za-z_\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C-\u200D"
          "\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\U00010000-\U000EFFFF")
_CHAR = _START + "\\-.0-9\u00B7\u0300-\u036F\u203F-\u2040"
_NCNAME = re.compile(f"^[{_START}][{_CHAR}]*$")


def gatingml_id(name: str) -> str:
    """A valid Gating-ML id (XML NCName) for a population or channel name.

    ``+`` becomes ``pos``, a trailing ``-`` becomes ``neg``, other characters that
    XML names do not allow become ``_``, and a leading digit, ``.`` or ``-`` gets a
    ``_`` prefix.

    Examples
    --------
    >>> gatingml_id("CD19+"), gatingml_id("7AAD-"), gatingml_id("FSC-A vs SSC/A"), gatingml_id("µ-cells α")
    ('CD19pos', '_7AADneg', 'FSC-A_vs_SSC_A', '_-cells_α')
    """
    text = str(name).strip().replace("+", "pos")
    text = re.sub(r"-$", "neg", text)
    text = re.sub(f"[^{_CHAR}]", "_", text)
    if not text or not _NCNAME.match(text):
        text = "_" + text
    return text


def _divider_id(gate_id: str, dim: str) -> str:
    """The id of a quadrant gate's divider of dimension ``dim``."""
    return gatingml_id(f"{gate_id}_{dim}")


__all__ = ["GateDimension", "GateNode", "gatingml_id"]
