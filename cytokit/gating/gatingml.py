"""Gating-ML 2.0 import, evaluation and export, through FlowKit.

A :class:`GateSet` is a population tree of cytokit static gates plus what Gating-ML
attaches to every gate dimension: a compensation reference (``"uncompensated"``,
``"FCS"`` for the file's own ``$SPILLOVER``, or the id of a matrix of the set) and an
optional transform reference (the id of a transform of the set). Evaluation is
cytokit's own (its compensation, transforms and gates); parsing and writing the XML
is FlowKit's (``parse_gating_xml``, ``export_gatingml``).

This module holds the set and the file functions; the parts live below it:
:mod:`~cytokit.gating.gatingml_nodes` (:class:`~cytokit.gating.gatingml_nodes.GateDimension`,
:class:`~cytokit.gating.gatingml_nodes.GateNode`, ids), :mod:`~cytokit.gating.gatingml_read`
(FlowKit's parsed gates → nodes), :mod:`~cytokit.gating.gatingml_evaluate` (memberships on a
sample) and :mod:`~cytokit.gating.gatingml_write` (set → FlowKit → XML).

- :func:`read_gatingml` — file → :class:`GateSet`;
- :meth:`GateSet.evaluate` / :func:`apply_gatingml` — memberships of every population
  on a :class:`~cytokit.Sample`, parents applied (a DataFrame of booleans, one column
  per population id);
- :meth:`GateSet.build` — population list + transforms + compensation → set;
- :func:`write_gatingml` / :meth:`GateSet.write` — set → Gating-ML 2.0 file that FlowKit
  reads back with the same counts.

Population ids become Gating-ML ``id`` attributes, which must be XML names (letters,
digits, ``. - _``, not starting with a digit; FlowKit rejects files that break the
schema): use :func:`~cytokit.gating.gatingml_nodes.gatingml_id` to turn ``"CD19+"`` into ``"CD19pos"``.

Examples
--------
>>> import pandas as pd
>>> from cytokit.gating.gates import RangeGate
>>> from cytokit.transforms import make_transform
>>> events = pd.DataFrame({"FSC-A": [10.0, 500.0, 900.0], "FL1-A": [5.0, 2000.0, 50.0]})
>>> gates = GateSet.build(
...     [("Cells", RangeGate("FSC-A", min=100), None),
...      ("CD19pos", RangeGate("FL1-A", min=0.5), "Cells")],
...     transforms={"FL1-A": make_transform("logicle", t=10_000)})
>>> gates.evaluate(events).sum().to_dict()
{'Cells': 2, 'CD19pos': 1}
>>> gates.path("CD19pos")
'Cells/CD19pos'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..compensation import validate_spillover
from ..errors import GateError
from ..sample import Sample
from ..transforms import RatioTransform, Transform
from .boolean import BooleanGate
from .fitted import FittedGate
from .gates import Gate, QuadrantGate
from .gatingml_evaluate import evaluate
from .gatingml_nodes import _NCNAME, FCS, UNCOMPENSATED, GateDimension, GateNode, _divider_id, gatingml_id
from .gatingml_read import from_flowkit_strategy
from .gatingml_write import to_flowkit_strategy, write_xml


class GateSet:
    """A population tree of static gates with the transforms and matrices they use.

    Parameters
    ----------
    nodes
        The gates, in any order; ids (and quadrant names) must be unique.
    transforms
        ``{id: transform}`` referenced by :attr:`GateDimension.transform` (ratio
        transforms are referenced as channels).
    compensations
        ``{id: spillover DataFrame}`` (rows fluorochromes/sources, columns detectors)
        referenced by :attr:`GateDimension.compensation`.
    """

    def __init__(
        self,
        nodes: Sequence[GateNode],
        *,
        transforms: Mapping[str, Transform | RatioTransform] | None = None,
        compensations: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        self.transforms = dict(transforms or {})
        self.compensations = {k: validate_spillover(v) for k, v in (compensations or {}).items()}
        for reserved in (UNCOMPENSATED, FCS):
            if reserved in self.compensations or reserved.lower() in map(str.lower, self.compensations):
                raise GateError(f"compensation id {reserved!r} is reserved by Gating-ML; rename the matrix")
        self._owner: dict[str, GateNode] = {}
        for node in nodes:
            for pop in node.populations + ([node.gate_id] if isinstance(node.gate, QuadrantGate) else []):
                if pop in self._owner:
                    raise GateError(f"population id {pop!r} is used twice; ids must be unique")
                self._owner[pop] = node
        self.nodes = self._ordered(list(nodes))
        self._check_references()

    # ---- structure --------------------------------------------------------------------------
    def _dependencies(self, node: GateNode) -> list[str]:
        deps = [node.parent] if node.parent is not None else []
        if isinstance(node.gate, BooleanGate):
            deps += list(node.gate.operands)
        return deps

    def _ordered(self, nodes: list[GateNode]) -> list[GateNode]:
        done: set[str] = set()
        ordered: list[GateNode] = []
        pending = list(nodes)
        while pending:
            ready = [
                n for n in pending if all(d in done or d not in self._owner for d in self._dependencies(n))
            ]
            if not ready:
                raise GateError(
                    "gates depend on each other in a cycle: " + ", ".join(n.gate_id for n in pending)
                )
            for node in ready:
                ordered.append(node)
                done.update(node.populations)
                done.add(node.gate_id)
                pending.remove(node)
        return ordered

    def _check_references(self) -> None:
        for node in self.nodes:
            for dep in self._dependencies(node):
                if dep not in self._owner:
                    raise GateError(
                        f"gate {node.gate_id!r} refers to population {dep!r}, which no gate defines"
                    )
                owner = self._owner[dep]
                if dep == owner.gate_id and isinstance(owner.gate, QuadrantGate):
                    raise GateError(
                        f"gate {node.gate_id!r} refers to quadrant gate {dep!r}; "
                        f"refer to one of its quadrants {owner.populations}"
                    )
            if isinstance(node.gate, BooleanGate):
                continue
            unknown = sorted(set(node.dimensions) - set(node.gate.dims))
            if unknown:
                raise GateError(f"gate {node.gate_id!r} describes dimension(s) {unknown} it does not have")
            for dim in node.gate.dims:
                gdim = node.dimension(dim)
                if (
                    gdim.compensation not in (UNCOMPENSATED, FCS)
                    and gdim.compensation not in self.compensations
                ):
                    raise GateError(
                        f"gate {node.gate_id!r} dimension {dim!r} refers to compensation "
                        f"{gdim.compensation!r}, which is not in the set"
                    )
                if gdim.transform is not None and not isinstance(
                    self.transforms.get(gdim.transform), Transform
                ):
                    raise GateError(
                        f"gate {node.gate_id!r} dimension {dim!r} refers to transform "
                        f"{gdim.transform!r}, which is not a scale transform of the set"
                    )

    @property
    def populations(self) -> list[str]:
        """Every population id, parents before children."""
        return [pop for node in self.nodes for pop in node.populations]

    def node(self, population: str) -> GateNode:
        """The gate that defines ``population`` (a gate id or quadrant name)."""
        try:
            return self._owner[population]
        except KeyError:
            raise GateError(f"no population {population!r}; populations are {self.populations}") from None

    def _parent_of(self, population: str) -> str | None:
        return self.node(population).parent  # a quadrant's parent is its quadrant gate's parent

    def lineage(self, population: str) -> list[str]:
        """Ancestors then the population itself, e.g. ``["Lymphocytes", "Singlets"]``.

        Quadrant gates do not appear: a quadrant's parent is its quadrant gate's parent.
        """
        chain = [population]
        while (parent := self._parent_of(chain[0])) is not None:
            chain.insert(0, parent)
        return chain

    def path(self, population: str) -> str:
        """The ``/``-joined population path without the root, e.g. ``"Lymphocytes/Singlets"``."""
        return "/".join(self.lineage(population))

    def __repr__(self) -> str:
        return (
            f"GateSet({len(self.nodes)} gates, populations={self.populations}, "
            f"transforms={list(self.transforms)}, compensations={list(self.compensations)})"
        )

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate(self, sample: Sample | pd.DataFrame) -> pd.DataFrame:
        """Membership of every population, parents applied.

        Parameters
        ----------
        sample
            A :class:`~cytokit.Sample` (scale values; its ``spillover`` serves ``"FCS"``
            references) or a DataFrame of scale values.

        Returns
        -------
        pandas.DataFrame
            One boolean column per population id (in :attr:`populations` order), one
            row per event, index of the events.
        """
        return evaluate(self, sample)

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        populations: Sequence[tuple[str, Gate | FittedGate, str | None]],
        *,
        transforms: Mapping[str, Transform] | None = None,
        compensation: pd.DataFrame | str | None = None,
        compensation_id: str = "Spill",
        channels: Mapping[str, str] | None = None,
    ) -> GateSet:
        """A set from gates defined on compensated, transformed events (the template's view).

        Parameters
        ----------
        populations
            ``(population id, gate, parent id or None)`` in any order. Fitted gates are
            replaced by :meth:`~cytokit.gating.fitted.FittedGate.to_static` (a gate whose
            fit failed raises :class:`GateError`). A :class:`QuadrantGate` defines its
            quadrants as populations; children name a quadrant as parent.
        transforms
            ``{dimension: transform}`` that was applied to each dimension (channel) before gating.
            Transform ids are :attr:`Transform.default_id`.
        compensation
            ``None`` (events were not compensated), ``"FCS"`` (compensated with the
            file's own ``$SPILLOVER``) or the spillover DataFrame used (stored under
            ``compensation_id``; only its detector channels reference it).
        channels
            ``{dimension: channel}`` of gate dimensions not named after their channel: one
            channel on two scales (two template roles with different transforms, e.g.
            ``"SSC-A [ssc_log]"``). Each becomes a Gating-ML dimension of that channel with its
            own transform; ``transforms`` is keyed by dimension.
        """
        transforms = dict(transforms or {})
        channels = dict(channels or {})
        xform_ids: dict[str, str] = {}
        set_transforms: dict[str, Transform] = {}
        for dim, xform in transforms.items():
            xform_id = xform.default_id
            if xform_id in set_transforms and set_transforms[xform_id] != xform:
                raise GateError(f"two different transforms share the id {xform_id!r}")
            set_transforms[xform_id] = xform
            xform_ids[dim] = xform_id
        compensations: dict[str, pd.DataFrame] = {}
        if isinstance(compensation, pd.DataFrame):
            compensations[compensation_id] = compensation
            compensated = set(map(str, compensation.columns))
        elif compensation not in (None, FCS):
            raise GateError(
                f"compensation must be None, 'FCS' or a spillover DataFrame, got {compensation!r}"
            )

        def dimension(dim: str) -> GateDimension:
            channel = channels.get(dim, dim)
            return GateDimension(channel, comp_ref(channel), xform_ids.get(dim))

        def comp_ref(channel: str) -> str:
            if compensation is None:
                return UNCOMPENSATED
            if isinstance(compensation, str):
                return FCS
            return compensation_id if channel in compensated else UNCOMPENSATED

        nodes = []
        for population, gate, parent in populations:
            if isinstance(gate, FittedGate):
                gate = gate.to_static()
            dims = (
                {}
                if isinstance(gate, BooleanGate)
                else {dim: dimension(dim) for dim in gate.dims}
            )
            nodes.append(GateNode(population, gate, parent, dims))
        return cls(nodes, transforms=set_transforms, compensations=compensations)

    # ---- FlowKit interop and Gating-ML XML -------------------------------------------------------
    @classmethod
    def from_flowkit(cls, strategy) -> GateSet:
        """Convert a ``flowkit.GatingStrategy`` (template gates) into a set."""
        nodes, transforms, compensations = from_flowkit_strategy(strategy)
        return cls(nodes, transforms=transforms, compensations=compensations)

    def to_flowkit(self):
        """The equivalent ``flowkit.GatingStrategy``."""
        return to_flowkit_strategy(self)

    def _check_ids(self) -> None:
        """Gating-ML ids are XML IDs: NCNames, unique across gates, quadrants, dividers,
        transforms and matrices."""
        ids = [*self._owner, *self.transforms, *self.compensations]
        ids += [
            _divider_id(n.gate_id, d)
            for n in self.nodes
            if isinstance(n.gate, QuadrantGate)
            for d in n.gate.dims
        ]
        invalid = [i for i in ids if not _NCNAME.match(i)]
        if invalid:
            raise GateError(
                "Gating-ML ids must be XML names (a letter or _ first, then letters, digits, "
                f"'.', '-', '_'); "
                f"rename {invalid}, e.g. with gatingml_id(): "
                + ", ".join(f"{i!r} -> {gatingml_id(i)!r}" for i in invalid)
            )
        seen: set[str] = set()
        duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
        if duplicates:
            raise GateError(
                f"Gating-ML ids must be unique across gates, transforms and matrices: {duplicates}"
            )

    def write(self, path: str | Path) -> Path:
        """Write the set as a Gating-ML 2.0 file (via ``flowkit.export_gatingml``); returns the path.

        The document is checked against the Gating-ML 2.0 schema that FlowKit ships
        (FlowKit refuses to read files that fail it).

        Raises
        ------
        GateError
            When an id is not a valid Gating-ML id (see :func:`gatingml_id`) or the
            document fails the schema.
        """
        self._check_ids()
        return write_xml(self, path)


def _schema_error(path: Path) -> str:
    """Where ``path`` first fails the Gating-ML 2.0 schema FlowKit checks (gate ids must be XML names: no
    spaces, ':' or '+', FlowKit's own export of a gate named "CD3+ T cells" fails), or ``""``."""
    from flowkit._resources import gml_schema
    from lxml import etree

    try:
        if gml_schema.validate(etree.parse(str(path))):
            return ""
    except (OSError, etree.XMLSyntaxError):
        return ""
    error = next(iter(gml_schema.error_log), None)
    return f" (the Gating-ML 2.0 schema, line {error.line}: {error.message})" if error is not None else ""


def read_gatingml(path: str | Path) -> GateSet:
    """Read a Gating-ML 2.0 file into a :class:`GateSet` (parsed by FlowKit).

    Raises
    ------
    GateError
        When the file cannot be parsed or uses something cytokit cannot represent.
    """
    import flowkit
    from flowkit.exceptions import FlowKitException
    from lxml import etree

    path = Path(path)
    try:
        strategy = flowkit.parse_gating_xml(str(path))
    except (etree.XMLSyntaxError, FlowKitException, ValueError, KeyError, TypeError) as error:
        raise GateError(f"{path}: not a readable Gating-ML 2.0 file: {error}{_schema_error(path)}") from error
    try:
        return GateSet.from_flowkit(strategy)
    except (GateError, ValueError) as error:
        raise GateError(f"{path}: {error}") from error


def write_gatingml(gates: GateSet, path: str | Path) -> Path:
    """Write ``gates`` as a Gating-ML 2.0 file; see :meth:`GateSet.write`."""
    return gates.write(path)


def apply_gatingml(sample: Sample | pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Memberships of every population of a Gating-ML file on ``sample`` (see :meth:`GateSet.evaluate`)."""
    return read_gatingml(path).evaluate(sample)


__all__ = [
    "GateSet",
    "read_gatingml",
    "write_gatingml",
    "apply_gatingml",
]
