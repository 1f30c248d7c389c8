"""Gating-ML 2.0 import, evaluation and export, through FlowKit.

A :class:`GateSet` is a population tree of cytokit static gates plus what Gating-ML
attaches to every gate dimension: a compensation reference (``"uncompensated"``,
``"FCS"`` for the file's own ``$SPILLOVER``, or the id of a matrix of the set) and an
optional transform reference (the id of a transform of the set). Evaluation is
cytokit's own (its compensation, transforms and gates); parsing and writing the XML
is FlowKit's (``parse_gating_xml``, ``export_gatingml``).

- :func:`read_gatingml` — file → :class:`GateSet`;
- :meth:`GateSet.evaluate` / :func:`apply_gatingml` — memberships of every population
  on a :class:`~cytokit.Sample`, parents applied (a DataFrame of booleans, one column
  per population id);
- :meth:`GateSet.build` — population list + transforms + compensation → set;
- :func:`write_gatingml` / :meth:`GateSet.write` — set → Gating-ML 2.0 file that FlowKit
  reads back with the same counts.

Population ids become Gating-ML ``id`` attributes, which must be XML names (letters,
digits, ``. - _``, not starting with a digit; FlowKit rejects files that break the
schema): use :func:`gatingml_id` to turn ``"CD19+"`` into ``"CD19pos"``.

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

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..compensation import compensate, validate_spillover
from ..errors import ChannelNotFoundError, GateError
from ..sample import Sample
from ..transforms import RatioTransform, Transform, from_flowkit
from .fitted import FittedGate
from .gates import BooleanGate, EllipseGate, Gate, PolygonGate, QuadrantGate, RectangleGate

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
        has none) or the id of a matrix in :attr:`GateSet.compensations`.
    transform
        Id of a transform in :attr:`GateSet.transforms`, or ``None``.
    """

    channel: str
    compensation: str = UNCOMPENSATED
    transform: str | None = None


@dataclass
class GateNode:
    """One gate of a :class:`GateSet`.

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

    def _flowkit_path(self, population: str) -> tuple[str, ...]:
        """FlowKit's full path of a population, quadrant gates included, from ``'root'``."""
        path = ["root"]
        for pop in self.lineage(population):
            node = self.node(pop)
            if isinstance(node.gate, QuadrantGate):
                path.append(node.gate_id)
            path.append(pop)
        return tuple(path)

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
        if isinstance(sample, pd.DataFrame):
            sample = Sample.from_dataframe(sample)
        source = _EventSource(self, sample)
        n = sample.n_events
        memberships: dict[str, np.ndarray] = {}
        for node in self.nodes:
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
        return pd.DataFrame(memberships, index=sample.events.index)[self.populations]

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        populations: Sequence[tuple[str, Gate | FittedGate, str | None]],
        *,
        transforms: Mapping[str, Transform] | None = None,
        compensation: pd.DataFrame | str | None = None,
        compensation_id: str = "Spill",
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
            ``{channel: transform}`` that was applied to each channel before gating.
            Transform ids are :attr:`Transform.default_id`.
        compensation
            ``None`` (events were not compensated), ``"FCS"`` (compensated with the
            file's own ``$SPILLOVER``) or the spillover DataFrame used (stored under
            ``compensation_id``; only its detector channels reference it).
        """
        transforms = dict(transforms or {})
        xform_ids: dict[str, str] = {}
        set_transforms: dict[str, Transform] = {}
        for channel, xform in transforms.items():
            xform_id = xform.default_id
            if xform_id in set_transforms and set_transforms[xform_id] != xform:
                raise GateError(f"two different transforms share the id {xform_id!r}")
            set_transforms[xform_id] = xform
            xform_ids[channel] = xform_id
        compensations: dict[str, pd.DataFrame] = {}
        if isinstance(compensation, pd.DataFrame):
            compensations[compensation_id] = compensation
            compensated = set(map(str, compensation.columns))
        elif compensation not in (None, FCS):
            raise GateError(
                f"compensation must be None, 'FCS' or a spillover DataFrame, got {compensation!r}"
            )

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
                else {dim: GateDimension(dim, comp_ref(dim), xform_ids.get(dim)) for dim in gate.dims}
            )
            nodes.append(GateNode(population, gate, parent, dims))
        return cls(nodes, transforms=set_transforms, compensations=compensations)

    # ---- FlowKit interop ----------------------------------------------------------------------
    @classmethod
    def from_flowkit(cls, strategy) -> GateSet:
        """Convert a ``flowkit.GatingStrategy`` (template gates) into a set."""
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
        return cls(nodes, transforms=transforms, compensations=compensations)

    def to_flowkit(self):
        """The equivalent ``flowkit.GatingStrategy``."""
        import flowkit

        strategy = flowkit.GatingStrategy()
        for xform_id, xform in self.transforms.items():
            strategy.add_transform(xform_id, xform.to_flowkit())
        for matrix_id, matrix in self.compensations.items():
            strategy.add_comp_matrix(
                matrix_id,
                flowkit.Matrix(
                    matrix.to_numpy(dtype=float),
                    detectors=[str(c) for c in matrix.columns],
                    fluorochromes=[str(i) for i in matrix.index],
                ),
            )
        for node in self.nodes:
            parent_path = self._flowkit_path(node.parent) if node.parent is not None else ("root",)
            strategy.add_gate(self._to_flowkit_gate(node), gate_path=parent_path)
        return strategy

    def _fk_dimension(self, node: GateNode, dim: str, bounds=(None, None)):
        import flowkit

        gdim = node.dimension(dim)
        lo, hi = bounds
        if isinstance(self.transforms.get(gdim.channel), RatioTransform):
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

    def _to_flowkit_gate(self, node: GateNode):
        import flowkit
        from flowkit import gates as fk

        gate, gid = node.gate, node.gate_id
        if isinstance(gate, RectangleGate):
            return fk.RectangleGate(gid, [self._fk_dimension(node, d, b) for d, b in gate.bounds.items()])
        if isinstance(gate, PolygonGate):
            return fk.PolygonGate(
                gid, [self._fk_dimension(node, d) for d in gate.dims], gate.vertices.tolist()
            )
        if isinstance(gate, EllipseGate):
            return fk.EllipsoidGate(
                gid,
                [self._fk_dimension(node, d) for d in gate.dims],
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
                        self._divider_id(gid, dim),
                        gdim.channel,
                        gdim.compensation,
                        list(values),
                        transformation_ref=gdim.transform,
                    )
                )
            quadrants = [
                fk.Quadrant(name, [self._divider_id(gid, d) for d in ranges], list(ranges.values()))
                for name, ranges in gate.quadrants.items()
            ]
            return fk.QuadrantGate(gid, dividers, quadrants)
        if isinstance(gate, BooleanGate):
            refs = [
                {"ref": op, "path": self._flowkit_path(op)[:-1], "complement": op in gate.complement}
                for op in gate.operands
            ]
            return fk.BooleanGate(gid, gate.op, refs)
        raise GateError(f"gate {gid!r} of type {type(gate).__name__} has no Gating-ML equivalent")

    @staticmethod
    def _divider_id(gate_id: str, dim: str) -> str:
        return gatingml_id(f"{gate_id}_{dim}")

    def _check_ids(self) -> None:
        """Gating-ML ids are XML IDs: NCNames, unique across gates, quadrants, dividers,
        transforms and matrices."""
        ids = [*self._owner, *self.transforms, *self.compensations]
        ids += [
            self._divider_id(n.gate_id, d)
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
        import flowkit
        from flowkit._resources import gml_schema
        from lxml import etree

        self._check_ids()
        buffer = io.BytesIO()
        flowkit.export_gatingml(self.to_flowkit(), buffer)
        tree = etree.fromstring(buffer.getvalue())
        self._fix_quadrant_locations(tree)
        if not gml_schema.validate(etree.ElementTree(tree)):
            raise GateError(
                f"the Gating-ML document for {path} fails the Gating-ML 2.0 schema: "
                f"{gml_schema.error_log.last_error}"
            )
        path = Path(path)
        path.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="utf-8", pretty_print=True))
        return path

    def _fix_quadrant_locations(self, tree) -> None:
        """FlowKit writes ``max / 2`` and ``min * 2`` as quadrant locations, which land in the
        wrong interval for negative or zero dividers; write a point inside every interval."""
        gating = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
        for quadrant_ml in tree.iter(f"{{{gating}}}Quadrant"):
            name = quadrant_ml.get(f"{{{gating}}}id")
            node = self.node(name)
            assert isinstance(node.gate, QuadrantGate)
            dim_of = {self._divider_id(node.gate_id, d): d for d in node.gate.dims}
            for position in quadrant_ml.iter(f"{{{gating}}}position"):
                lo, hi = node.gate.quadrants[name][dim_of[position.get(f"{{{gating}}}divider_ref")]]
                if lo is not None and hi is not None:
                    location = (lo + hi) / 2
                elif lo is not None:
                    location = lo + max(1.0, abs(lo))
                else:
                    location = hi - max(1.0, abs(hi))
                position.set(f"{{{gating}}}location", repr(float(location)))


_NCNAME = re.compile(r"^[^\W\d][\w.\-]*$")


def gatingml_id(name: str) -> str:
    """A valid Gating-ML id (XML NCName) for a population or channel name.

    ``+`` becomes ``pos``, a trailing ``-`` becomes ``neg``, other characters that
    XML names do not allow become ``_``, and a leading digit, ``.`` or ``-`` gets a
    ``_`` prefix.

    Examples
    --------
    >>> gatingml_id("CD19+"), gatingml_id("7AAD-"), gatingml_id("FSC-A vs SSC/A")
    ('CD19pos', '_7AADneg', 'FSC-A_vs_SSC_A')
    """
    text = str(name).strip().replace("+", "pos")
    text = re.sub(r"-$", "neg", text)
    text = re.sub(r"[^\w.\-]", "_", text)
    if not text or not _NCNAME.match(text):
        text = "_" + text
    return text


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


class _EventSource:
    """Compensated, transformed columns of one sample, computed once each."""

    def __init__(self, gates: GateSet, sample: Sample) -> None:
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
        raise GateError(f"{path}: not a readable Gating-ML 2.0 file: {error}") from error
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
    "GateDimension",
    "GateNode",
    "GateSet",
    "gatingml_id",
    "read_gatingml",
    "write_gatingml",
    "apply_gatingml",
]
