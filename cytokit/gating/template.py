"""Gating templates: YAML files that say once how to find the cells of interest in every file.

A template has five parts (``gating_templates/README.md`` explains them with
``cll_cd19_7aad.yaml`` as the worked example):

``channels``
    roles resolved per file: ``{marker: CD19}`` matches ``$PnS`` ("CD19", "CD19 FITC",
    "FITC-CD19", not "CD197"; see :func:`~cytokit.gating.channels._matches_marker`),
    ``{marker: [TNFa, TNF]}`` any of several names, ``{pnn: [FSC-A, FSC-H]}`` the first
    ``$PnN`` present.
``compensation``
    ``file`` (the file's ``$SPILLOVER`` and kin), ``none``, a matrix CSV path, or the
    matrix itself: ``{detectors: [...], matrix: [[...], ...]}`` (rows: the fluorochromes
    spilling, optional ``fluorochromes: [...]``; as Gating-ML imports bring it).
``transforms``
    per role (or ``default``): ``{kind: logicle|asinh|log|linear|hyperlog|biex, t: auto, ...}``;
    ``t: auto`` is the channel's top of scale (``10**decades`` for log-amplified channels).
    Two roles on one channel may differ: the second reads it as a dimension of its own,
    ``"<PnN> [<role>]"`` (:attr:`GatingResult.dims <cytokit.gating.result.GatingResult>`).
``populations``
    a tree: ``name``, ``parent`` (``root`` or a population name), ``gate`` (``type`` and
    its parameters, roles in place of channels), ``optional`` (skip, and say so, when a
    role is missing in a file), ``fit_on`` (fit the gate on an ancestor's events, apply it
    within the parent), ``pool`` (fit it once on the pooled events of every file gated
    together: :mod:`cytokit.gating.pooling`).
``markers``
    what to quantify: ``name``, ``channel`` (a role), ``population``, ``positivity``.

An optional ``panel: panel.csv`` (relative to the template) names a panel sheet
(:mod:`cytokit.panel`): the markers of channels whose files carry no ``$PnS``.

:meth:`Template.apply` compensates, transforms and gates one sample; gates of type
``control_threshold`` are fitted on the matched control's population.

This module holds the model (:class:`Template`, :class:`Population`, :class:`Marker`) and
:func:`parse_template`, which validates a template beyond its shape. Below it:
:mod:`cytokit.gating._schema` (the JSON Schema, YAML with line numbers),
:mod:`cytokit.gating.channels` (roles and marker matching) and :mod:`cytokit.gating.apply`
(gating one sample).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TemplateError
from ..panel import Panel, read_panel
from ..sample import Sample
from ._schema import SCHEMA, _explain, _gate_roles, _load_yaml
from .apply import _build_gate, _inline_matrix, gate_sample
from .channels import Role, _normal, resolve_roles
from .result import GatingResult


@dataclass(frozen=True)
class Population:
    """One population of the tree: its gate is given as a template mapping."""

    name: str
    parent: str  # "root" or a population name
    gate: dict
    optional: bool = False
    line: int = 0
    pool: bool = False  # fitted once on the pooled events of every file gated together
    fit_on: str | None = None  # fitted on this ancestor's events rather than the parent's
    manual: str | None = None  # the manual population compare pairs it with (default: the same name)


@dataclass(frozen=True)
class Marker:
    """A marker to quantify on a population, with how positivity is decided."""

    name: str
    channel: str  # role
    population: str  # population name
    method: str = "control_quantile"
    quantile: float = 0.99


@dataclass
class Template:
    """A parsed, validated gating template (build it with :func:`load_template`)."""

    roles: dict[str, Role]
    populations: list[Population]
    markers: list[Marker] = field(default_factory=list)
    compensation: str | dict = "file"
    transforms: dict[str, dict] = field(default_factory=dict)
    name: str = ""
    source: str = "<template>"
    sha256: str = ""
    #: population path → its ``pool: true`` gate fitted on several files (:mod:`~cytokit.gating.pooling`),
    #: the default of :meth:`apply`'s ``pooled``
    pooled: dict = field(default_factory=dict, repr=False)
    panel: Panel | None = None
    """The panel sheet whose markers stand for the files' ``$PnS`` (the ``panel`` key's, or
    :func:`~cytokit.load_template`'s ``panel=``), or None."""
    panel_sheet: str = ""  # the ``panel`` key, as written

    # ------------------------------------------------------------------ structure

    def path_of(self, name: str) -> str:
        """Full path of a population (``Lymphocytes/Singlets/Viable/CD19+``)."""
        by_name = {p.name: p for p in self.populations}
        parts = []
        while name != "root":
            parts.append(name)
            name = by_name[name].parent
        return "/".join(reversed(parts))

    def axis_of(self, name: str) -> str | None:
        """The role a population is told apart on, for a figure's x axis: its gate's dimension (of
        a quadrant, the first on which it is positive: CD8 for ``-+`` of CD4 × CD8), not a
        quantified marker's; for a boolean gate, its first operand's; None where there is none."""
        by_name = {p.name: p for p in self.populations}
        markers = {m.channel for m in self.markers}
        seen = set()
        while name in by_name and name not in seen:
            seen.add(name)
            gate = by_name[name].gate
            roles = [r for r in _gate_roles(gate) if r not in markers]
            if gate.get("type") == "quadrant" and isinstance(gate.get("quadrant"), str):
                positive = [d for d, sign in zip(gate.get("dims", ()), gate["quadrant"]) if sign == "+"]
                roles = [r for r in positive if r in roles] + roles
            if roles:
                return roles[0]
            name = (gate.get("operands") or [None])[0]
        return None

    @property
    def paths(self) -> list[str]:
        """Population paths in template order (parents before children)."""
        return [self.path_of(p.name) for p in self.populations]

    def resolve_channels(self, sample: Sample, *, reference: dict[str, str] | None = None) -> dict[str, str]:
        """Map every role to a ``$PnN`` of ``sample``.

        ``reference`` is the stained tube's resolution: a role whose marker is not in
        this sample's ``$PnS`` (an isotype tube) takes the reference's detector.
        Optional roles that cannot be found are left out.

        With a :attr:`panel` sheet, the sheet's markers take precedence over ``$PnS``.

        Raises
        ------
        ChannelNotFoundError
            A required role cannot be found; the message lists the file's channels (and says
            when the panel sheet has no row for the file).
        """
        return resolve_roles(self.roles.values(), sample, reference=reference, source=self.source,
                             panel=self.panel)

    def label(self, sample: Sample) -> Sample:
        """``sample`` with the :attr:`panel` sheet's markers as its channels' ``pns`` (itself without one)."""
        return self.panel.label(sample) if self.panel is not None else sample

    # ------------------------------------------------------------------ applying

    def apply(
        self,
        sample: Sample,
        *,
        control: "GatingResult | None" = None,
        is_control: bool = False,
        channels: dict[str, str] | None = None,
        pooled: dict | None = None,
    ) -> "GatingResult":
        """Compensate, transform and gate ``sample``.

        Parameters
        ----------
        sample
            The sample to gate.
        control
            The matched control tube's result: ``control_threshold`` gates are fitted
            on its population (the gate's parent) and applied here.
        is_control
            ``sample`` is itself the control tube: ``control_threshold`` gates are
            fitted on its own population.
        channels
            A role → ``$PnN`` resolution to use (default: :meth:`resolve_channels`).
        pooled
            population path → its gate fitted on several files
            (:func:`cytokit.gating.pooling.fit_pooled`), used as fitted; a ``pool`` population
            missing from it is fitted on this sample alone (default: :attr:`pooled`).
        """
        return gate_sample(self, sample, control=control, is_control=is_control, channels=channels,
                           pooled=pooled)

    def panel_path(self) -> Path | None:
        """The panel sheet the ``panel`` key names (relative to the template's folder), or None."""
        if not self.panel_sheet:
            return None
        path = Path(self.panel_sheet)
        if not path.is_absolute() and self.source not in ("<template>", ""):
            path = Path(self.source).parent / path
        return path

    def compensation_path(self) -> Path | None:
        """The matrix CSV that ``compensation`` names (relative to the template's folder), or None."""
        mode = self.compensation
        if isinstance(mode, dict) or mode in ("none", "file"):
            return None
        path = Path(mode)
        if not path.is_absolute() and self.source not in ("<template>", ""):
            path = Path(self.source).parent / path
        return path


# ----------------------------------------------------------------------------- loading


def parse_template(text: str, *, source: str = "<template>") -> Template:
    """Parse and validate a YAML template given as text (see :func:`load_template`)."""
    # A batch loads the same template once per tube group; validation costs ~60 ms.
    template = copy.deepcopy(_parse_template(text, source))
    if template.panel_sheet:  # read each time: the sheet may change while the template does not
        template.panel = read_panel(template.panel_path())
    return template


@functools.lru_cache(maxsize=16)
def _parse_template(text: str, source: str) -> Template:
    import jsonschema

    data, lines = _load_yaml(text, source)
    if not isinstance(data, dict):
        raise TemplateError(f"{source}: a template is a YAML mapping with 'channels' and 'populations'")
    validator = jsonschema.Draft7Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        error = min(errors, key=lambda e: len(e.absolute_path))
        path = tuple(error.absolute_path)
        line = lines.get(path, lines.get(path[:-1], 1))
        key = "/".join(str(p) for p in path) or "(top level)"
        raise TemplateError(f"{source}, line {line}, key {key}: {_explain(error)}")

    roles = {}
    for name, spec in data["channels"].items():
        line = lines.get(("channels", name, "marker"), 0)
        marker, *aliases = _read_marker(spec, source, line, name) or [None]
        roles[name] = Role(name, marker, tuple(spec.get("pnn", ())), bool(spec.get("optional", False)),
                           tuple(aliases))
        for other in list(roles.values())[:-1]:  # two roles of one marker would report one channel twice
            shared = [m for m in roles[name].marker_names if _normal(m) in map(_normal, other.marker_names)]
            if shared:
                raise TemplateError(f"{source}, line {line}, role {name!r}: marker {shared[0]!r} is also the "
                                    f"marker of role {other.name!r}; two roles would take one channel")
    populations = []
    seen = {"root"}
    for i, spec in enumerate(data["populations"]):
        line = lines.get(("populations", i), 0)
        where = f"{source}, line {line}, population {spec['name']!r}"
        if spec["name"] in seen:
            raise TemplateError(f"{where}: the name is used twice (or is 'root')")
        if spec["parent"] not in seen:
            raise TemplateError(f"{where}: parent {spec['parent']!r} is not defined above it")
        for role in _gate_roles(spec["gate"]):
            if role not in roles:
                raise TemplateError(f"{where}: gate uses role {role!r}, not defined under 'channels' "
                                    f"(roles: {', '.join(roles)})")
        if spec["gate"]["type"] == "boolean":
            for operand in spec["gate"].get("operands", []):
                if operand not in seen:
                    raise TemplateError(f"{where}: boolean operand {operand!r} is not a population above it")
        fit_on = spec.get("fit_on")
        if fit_on == "root":
            raise TemplateError(f"{where}: fit_on 'root' is not supported: fit_on names a population above it "
                                "(the parent or an ancestor); a gate of a population of root is fitted on every event")
        if fit_on is not None and fit_on not in _ancestors(spec["parent"], populations):
            raise TemplateError(f"{where}: fit_on {fit_on!r} is not the parent or an ancestor of it "
                                "(a gate is fitted on events that contain its parent's)")
        if (spec.get("pool") or fit_on) and spec["gate"]["type"] in ("boolean", "control_threshold"):
            raise TemplateError(f"{where}: a {spec['gate']['type']} gate is not fitted on its own events, "
                                "so it takes neither pool nor fit_on")
        seen.add(spec["name"])
        populations.append(Population(spec["name"], spec["parent"], dict(spec["gate"]),
                                      bool(spec.get("optional", False)), line, bool(spec.get("pool", False)),
                                      fit_on, spec.get("manual")))
    markers = []
    for i, spec in enumerate(data.get("markers", []) or []):
        line = lines.get(("markers", i), 0)
        if spec["channel"] not in roles:
            raise TemplateError(f"{source}, line {line}, marker {spec['name']!r}: channel role "
                                f"{spec['channel']!r} is not defined under 'channels'")
        if spec["population"] not in seen or spec["population"] == "root":
            raise TemplateError(f"{source}, line {line}, marker {spec['name']!r}: population "
                                f"{spec['population']!r} is not "
                                + ("a gated population (name one of the template's populations)"
                                   if spec["population"] == "root" else "defined"))
        if spec["name"] in {m.name for m in markers}:
            raise TemplateError(f"{source}, line {line}, marker {spec['name']!r}: the name is used twice; "
                                "results are keyed by marker name (one marker on two populations: LAG3_B, "
                                "LAG3_T)")
        positivity = spec.get("positivity", {}) or {}
        markers.append(Marker(spec["name"], spec["channel"], spec["population"],
                              positivity.get("method", "control_quantile"), positivity.get("quantile", 0.99)))
    for role, spec in (data.get("transforms") or {}).items():
        if role != "default" and role not in roles:
            raise TemplateError(f"{source}, line {lines.get(('transforms', role), 0)}: transform for "
                                f"unknown role {role!r}")
    canonical = json.dumps(data, sort_keys=True, default=str).encode()
    template = Template(
        roles=roles,
        populations=populations,
        markers=markers,
        compensation=(data["compensation"] if isinstance(data.get("compensation"), dict)
                      else str(data.get("compensation", "file"))),
        transforms=dict(data.get("transforms") or {}),
        name=str(data.get("name", Path(source).stem)),
        source=source,
        sha256=hashlib.sha256(canonical).hexdigest(),
        panel_sheet=str(data.get("panel", "")),
    )
    # Build every gate and transform once, and find the compensation matrix, so errors surface now.
    dummy = {r: r for r in roles}
    for pop in populations:
        _build_gate(template, pop, dummy)
    _check_transforms(template, lines)
    _check_compensation(template, lines.get(("compensation",), 0))
    panel = template.panel_path()
    if panel is not None and not panel.is_file():
        raise TemplateError(f"{source}, line {lines.get(('panel',), 0)}, key panel: the panel sheet {panel} "
                            "does not exist (a CSV channel,marker; relative to the template's folder)")
    return template


def _ancestors(name: str, populations: list[Population]) -> list[str]:
    """``name`` and the populations above it (not ``root``), nearest first."""
    by_name = {p.name: p for p in populations}
    out = []
    while name in by_name:
        out.append(name)
        name = by_name[name].parent
    return out


def _check_transforms(template: Template, lines: dict) -> None:
    from ..transforms import make_transform

    for role, spec in template.transforms.items():
        params = {k: (262144.0 if v == "auto" else v) for k, v in spec.items() if k != "kind"}
        try:
            make_transform(spec["kind"], **params)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"{template.source}, line {lines.get(('transforms', role), 0)}, "
                                f"transform of {role!r}: {exc}") from None


def _check_compensation(template: Template, line: int) -> None:
    mode = template.compensation
    if isinstance(mode, dict):
        try:
            _inline_matrix(mode)
        except ValueError as exc:
            raise TemplateError(f"{template.source}, line {line}, key compensation: {exc}") from None
        return
    path = template.compensation_path()
    if path is None:
        return
    if not path.is_file():
        raise TemplateError(f"{template.source}, line {line}, key compensation: {mode!r} is neither 'file' "
                            f"(the FCS file's own spillover matrix), 'none', nor a CSV matrix file ({path} "
                            "does not exist)")


def _read_marker(spec: dict, source: str, line: int, role: str) -> tuple[str, ...]:
    """A role's ``marker``: a name or a list of names (aliases)."""
    if "marker" not in spec:
        return ()
    value = spec["marker"]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and _normal(n) for n in names):
        raise TemplateError(f"{source}, line {line}, role {role!r}: marker must be a marker name or a list "
                            f"of names (aliases, e.g. [TNFa, TNF]), not {value!r}")
    return tuple(names)
