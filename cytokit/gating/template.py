"""Gating templates: YAML files that say once how to find the cells of interest in every file.

A template has five parts (``gating_templates/README.md`` explains them with
``cll_cd19_7aad.yaml`` as the worked example):

``channels``
    roles resolved per file: ``{marker: CD19}`` matches ``$PnS`` ("CD19", "CD19 FITC",
    "FITC-CD19", not "CD197"; see :func:`_matches_marker`), ``{marker: [TNFa, TNF]}`` any
    of several names, ``{pnn: [FSC-A, FSC-H]}`` the first ``$PnN`` present.
``compensation``
    ``file`` (the file's ``$SPILLOVER`` and kin), ``none``, a matrix CSV path, or the
    matrix itself: ``{detectors: [...], matrix: [[...], ...]}`` (rows: the fluorochromes
    spilling, optional ``fluorochromes: [...]``; as Gating-ML imports bring it).
``transforms``
    per role (or ``default``): ``{kind: logicle|asinh|log|linear|hyperlog, t: auto, ...}``;
    ``t: auto`` is the channel's top of scale (``10**decades`` for log-amplified channels).
``populations``
    a tree: ``name``, ``parent`` (``root`` or a population name), ``gate`` (``type`` and
    its parameters, roles in place of channels), ``optional`` (skip, and say so, when a
    role is missing in a file).
``markers``
    what to quantify: ``name``, ``channel`` (a role), ``population``, ``positivity``.

:meth:`Template.apply` compensates, transforms and gates one sample; gates of type
``control_threshold`` are fitted on the matched control's population.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ChannelNotFoundError, TemplateError
from ..sample import Sample
from .result import GatingResult

#: gate ``type`` in a template → (module of cytokit.gating, class)
GATE_TYPES: dict[str, tuple[str, str]] = {
    "rectangle": ("gates", "RectangleGate"),
    "range": ("gates", "RangeGate"),
    "polygon": ("gates", "PolygonGate"),
    "ellipse": ("gates", "EllipseGate"),
    "boolean": ("boolean", "BooleanGate"),
    "density_valley": ("thresholds", "DensityValleyGate"),
    "quantile": ("thresholds", "QuantileGate"),
    "tail": ("thresholds", "TailGate"),
    "cluster": ("regions", "ClusterGate"),
    "singlet": ("regions", "SingletGate"),
    "control_threshold": ("thresholds", "ControlThresholdGate"),
}
#: gate parameters whose values are channel roles
ROLE_KEYS = ("dim", "dims", "area", "height")
TRANSFORM_KINDS = ("linear", "log", "logicle", "asinh", "hyperlog")
#: Greek letters as marker names spell them: TNF-α, TNF-alpha and TNFa are one marker
GREEK = {"α": "a", "alpha": "a", "β": "b", "beta": "b", "γ": "g", "gamma": "g", "δ": "d", "delta": "d"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["channels", "populations"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "channels": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "marker": {},  # a name or a list of names: checked by _read_marker
                    "pnn": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "optional": {"type": "boolean"},
                },
                "anyOf": [{"required": ["marker"]}, {"required": ["pnn"]}],
            },
        },
        "compensation": {"anyOf": [
            {"type": "string"},
            {"type": "object", "required": ["detectors", "matrix"], "additionalProperties": False,
             "properties": {"detectors": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                            "fluorochromes": {"type": "array", "items": {"type": "string"}},
                            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}},
        ]},
        "transforms": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"enum": list(TRANSFORM_KINDS)}},
            },
        },
        "populations": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "parent", "gate"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[^/]+$"},
                    "parent": {"type": "string"},
                    "optional": {"type": "boolean"},
                    "gate": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": sorted(GATE_TYPES)}},
                    },
                },
            },
        },
        "markers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "channel", "population"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "channel": {"type": "string"},
                    "population": {"type": "string"},
                    "positivity": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "method": {"enum": ["control_quantile", "none"]},
                            "quantile": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                        },
                    },
                },
            },
        },
    },
}


# ----------------------------------------------------------------------------- YAML with line numbers


def _load_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML, returning the data and the line (1-based) of every key path."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise TemplateError(f"{source}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    lines: dict[tuple, int] = {}

    def walk(n, path: tuple):
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                walk(value, path + (key.value,))
                lines[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, path + (i,))

    if node is not None:
        walk(node, ())
    return yaml.safe_load(text), lines


# ----------------------------------------------------------------------------- the template


@dataclass(frozen=True)
class Role:
    """A channel role: how to find one channel in each file."""

    name: str
    marker: str | None = None
    pnn: tuple[str, ...] = ()
    optional: bool = False
    aliases: tuple[str, ...] = ()  # other names of the marker: [TNFa, TNF] is marker TNFa, alias TNF

    @property
    def marker_names(self) -> tuple[str, ...]:
        """Every name of the marker, any of which a ``$PnS`` may use."""
        return (self.marker, *self.aliases) if self.marker else ()


@dataclass(frozen=True)
class Population:
    """One population of the tree: its gate is given as a template mapping."""

    name: str
    parent: str  # "root" or a population name
    gate: dict
    optional: bool = False
    line: int = 0


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

    # ------------------------------------------------------------------ structure

    def path_of(self, name: str) -> str:
        """Full path of a population (``Lymphocytes/Singlets/Viable/CD19+``)."""
        by_name = {p.name: p for p in self.populations}
        parts = []
        while name != "root":
            parts.append(name)
            name = by_name[name].parent
        return "/".join(reversed(parts))

    @property
    def paths(self) -> list[str]:
        """Population paths in template order (parents before children)."""
        return [self.path_of(p.name) for p in self.populations]

    # ------------------------------------------------------------------ channels

    def resolve_channels(self, sample: Sample, *, reference: dict[str, str] | None = None) -> dict[str, str]:
        """Map every role to a ``$PnN`` of ``sample``.

        ``reference`` is the stained tube's resolution: a role whose marker is not in
        this sample's ``$PnS`` (an isotype tube) takes the reference's detector.
        Optional roles that cannot be found are left out.

        Raises
        ------
        ChannelNotFoundError
            A required role cannot be found; the message lists the file's channels.
        """
        names = list(sample.channels.pnn)
        resolved: dict[str, str] = {}
        missing = []
        for role in self.roles.values():
            found = _find_channel(role, sample)
            if found is None and reference and reference.get(role.name) in names:
                found = reference[role.name]
            if found is not None:
                resolved[role.name] = found
            elif not role.optional:
                wanted = (f"marker {_quoted(role.marker_names)} in $PnS" if role.marker
                          else f"one of $PnN {list(role.pnn)}")
                missing.append(f"role {role.name!r} needs {wanted}")
        if missing:
            where = sample.path or "the sample"
            whose = "roles'" if len(missing) > 1 else "role's"
            raise ChannelNotFoundError(
                f"{where}: template {self.source} {'; '.join(missing)}; the file has "
                + ", ".join(f"{n} ({s})" if s else n for n, s in zip(sample.channels.pnn, sample.channels.pns))
                + f" (set the {whose} marker or pnn in the template)"
            )
        return resolved

    # ------------------------------------------------------------------ applying

    def apply(
        self,
        sample: Sample,
        *,
        control: "GatingResult | None" = None,
        is_control: bool = False,
        channels: dict[str, str] | None = None,
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
        """
        from ..compensation import compensate

        if channels is None:
            reference = control.channels if control is not None else None
            channels = self.resolve_channels(sample, reference=reference)
        events = sample.events
        spillover, comp_source = self._spillover(sample)
        if spillover is not None:
            events = compensate(events, spillover)
        scale = events
        transforms = self._transforms(sample, channels)
        result = GatingResult(
            sample=sample, template=self, channels=channels, scale=scale,
            transforms=transforms, compensation=comp_source, spillover=spillover,
        )
        n = len(scale)
        for pop in self.populations:
            path = self.path_of(pop.name)
            parent_path = self.path_of(pop.parent) if pop.parent != "root" else ""
            parent_mask = result.membership[parent_path] if parent_path else np.ones(n, dtype=bool)
            result.parents[path] = parent_path or "root"
            missing = [r for r in _gate_roles(pop.gate) if r not in channels]
            if missing:
                if not pop.optional:
                    raise ChannelNotFoundError(f"{sample.path}: population {pop.name!r} needs role(s) {missing}")
                result.membership[path] = parent_mask.copy()
                result.flags[path] = f"skipped: the file has no channel for role(s) {', '.join(missing)}"
                continue
            gate = self._build_gate(pop, channels)
            result.gates[path] = gate
            if type(gate).__name__ == "BooleanGate":
                inside = gate.contains(pd.DataFrame({p.split("/")[-1]: m for p, m in result.membership.items()}))
                result.membership[path] = parent_mask & inside
                continue
            # A gate only ever sees its parent's events, so only those are transformed.
            rows = np.flatnonzero(parent_mask) if parent_path else None
            frame = result._frame(gate.dims, rows)
            if hasattr(gate, "fit"):
                if type(gate).__name__ == "ControlThresholdGate" and not is_control:
                    if control is None or parent_path not in control.membership and parent_path:
                        gate.fit(frame.iloc[:0])
                        gate.failed_ = "needs the matched control tube, and none was given"
                    else:
                        ctrl_rows = np.flatnonzero(control.membership[parent_path]) if parent_path else None
                        gate.fit(control._frame(gate.dims, ctrl_rows))
                else:
                    gate.fit(frame)
                if gate.failed_:
                    result.flags[path] = f"gate failed: {gate.failed_}"
                elif gate.warning_:
                    result.flags[path] = f"gate doubtful: {gate.warning_}"
            if rows is None:
                result.membership[path] = np.asarray(gate.contains(frame), dtype=bool)
            else:
                inside = np.zeros(n, dtype=bool)
                inside[rows] = gate.contains(frame)
                result.membership[path] = inside
        return result

    def _spillover(self, sample: Sample) -> tuple[pd.DataFrame | None, str]:
        mode = self.compensation
        if isinstance(mode, dict):
            return _inline_matrix(mode), "template matrix"
        if mode == "none":
            return None, "none"
        if mode == "file":
            if sample.spillover is None:
                return None, "none (the file has no spillover matrix)"
            return sample.spillover, "file"
        from ..compensation import read_spillover_csv

        path = self.compensation_path()
        return read_spillover_csv(path), str(path)

    def compensation_path(self) -> Path | None:
        """The matrix CSV that ``compensation`` names (relative to the template's folder), or None."""
        mode = self.compensation
        if isinstance(mode, dict) or mode in ("none", "file"):
            return None
        path = Path(mode)
        if not path.is_absolute() and self.source not in ("<template>", ""):
            path = Path(self.source).parent / path
        return path

    def _transforms(self, sample: Sample, channels: dict[str, str]) -> dict:
        from ..transforms import make_transform

        out = {}
        specs: dict[str, tuple[str, dict]] = {}
        info = sample.channels.set_index("pnn")
        for role, pnn in channels.items():
            spec = self.transforms.get(role, self.transforms.get("default"))
            if not spec:
                continue
            if pnn in specs and specs[pnn][1] != spec:
                raise TemplateError(
                    f"{self.source}: roles {specs[pnn][0]!r} and {role!r} are both channel {pnn} in "
                    f"{sample.path} but have different transforms; give them the same one"
                )
            specs[pnn] = (role, spec)
            params = {k: v for k, v in spec.items() if k != "kind"}
            if params.get("t") == "auto":
                decades = float(info.at[pnn, "decades"]) if pnn in info.index else 0.0
                top = float(info.at[pnn, "range"]) if pnn in info.index else 0.0
                if decades > 0:
                    offset = float(info.at[pnn, "offset"]) or 1.0
                    top = 10.0 ** decades * offset
                params["t"] = top if top > 1 else 262144.0
            try:
                out[pnn] = make_transform(spec["kind"], **params)
            except ValueError as exc:  # e.g. valid for t: 262144 (checked at load) but not this file's top
                raise TemplateError(f"{self.source}: transform of role {role!r} on {pnn} of {sample.path}: "
                                    f"{exc}") from None
        return out

    def _build_gate(self, pop: Population, channels: dict[str, str]):
        spec = dict(pop.gate)
        module, cls_name = GATE_TYPES[spec.pop("type")]
        cls = getattr(importlib.import_module(f"cytokit.gating.{module}"), cls_name)
        for key in ROLE_KEYS:
            if key in spec:
                value = spec[key]
                spec[key] = [channels[v] for v in value] if isinstance(value, list) else channels[value]
        if "bounds" in spec:  # rectangle: {role: [min, max]}
            spec["bounds"] = {channels[r]: tuple(b) for r, b in spec["bounds"].items()}
        if isinstance(spec.get("search_range"), list):
            spec["search_range"] = tuple(spec["search_range"])
        where = f"{self.source}, line {pop.line}: gate of population {pop.name!r} ({pop.gate['type']})"
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = [key for key in spec if key not in accepted]
        if unknown:
            raise TemplateError(f"{where}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                                f"it takes {', '.join(accepted)}")
        try:
            gate = cls(**spec)
            if hasattr(gate, "check_params"):
                gate.check_params()
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"{where}: {exc}") from None
        return gate


def _gate_roles(gate: dict) -> list[str]:
    roles = []
    for key in ROLE_KEYS:
        value = gate.get(key)
        if isinstance(value, str):
            roles.append(value)
        elif isinstance(value, list):
            roles.extend(value)
    roles.extend(gate.get("bounds", {}) or {})
    return roles


def _tokens(text: str) -> list[str]:
    """Case-folded runs of letters and digits, Greek letters spelled as in :data:`GREEK`."""
    text = text.casefold()
    for greek, latin in GREEK.items():
        text = text.replace(greek, latin)
    return re.findall(r"[^\W_]+", text)


def _normal(text: str) -> str:
    return "".join(_tokens(text))


def _quoted(markers: tuple[str, ...]) -> str:
    return " or ".join(map(repr, markers))


def _matches_marker(pns: str, marker: str) -> bool:
    """``$PnS`` names the marker as a whole run of its words.

    Case, separators and Greek spellings are ignored, and the marker is some run of
    consecutive words of ``$PnS`` joined: "TNF-alpha APC", "TNF-α-APC" and "APC-TNFa"
    name TNFa; "LAG-3-PE", "PE-LAG3" and "anti-LAG3" name LAG3. A word that only starts
    with the marker names another one: CD19 is not "CD197", CD3 is not "CD38" nor "CD3e".
    """
    want = _normal(marker)
    words = _tokens(pns or "")
    for start in range(len(words)):
        run = ""
        for word in words[start:]:
            run += word
            if run == want:
                return True
            if not want.startswith(run):
                break
    return False


def _find_channel(role: Role, sample: Sample) -> str | None:
    pairs = list(zip(sample.channels.pnn, sample.channels.pns))
    if role.marker:
        hits = [pnn for pnn, pns in pairs if any(_matches_marker(pns, m) for m in role.marker_names)]
        if not hits:
            wanted = {_normal(m) for m in role.marker_names}
            hits = [pnn for pnn, _ in pairs if _normal(pnn) in wanted]
        if len(hits) > 1:
            raise ChannelNotFoundError(
                f"{sample.path}: marker {_quoted(role.marker_names)} (role {role.name!r}) "
                f"matches several channels: {hits}"
            )
        if hits:
            return hits[0]
    names = {pnn.lower(): pnn for pnn, _ in pairs}
    for candidate in role.pnn:
        if candidate.lower() in names:
            return names[candidate.lower()]
    return None


# ----------------------------------------------------------------------------- loading


def parse_template(text: str, *, source: str = "<template>") -> Template:
    """Parse and validate a YAML template given as text (see :func:`load_template`)."""
    # A batch loads the same template once per tube group; validation costs ~60 ms.
    return copy.deepcopy(_parse_template(text, source))


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
        seen.add(spec["name"])
        populations.append(Population(spec["name"], spec["parent"], dict(spec["gate"]),
                                      bool(spec.get("optional", False)), line))
    markers = []
    for i, spec in enumerate(data.get("markers", []) or []):
        line = lines.get(("markers", i), 0)
        if spec["channel"] not in roles:
            raise TemplateError(f"{source}, line {line}, marker {spec['name']!r}: channel role "
                                f"{spec['channel']!r} is not defined under 'channels'")
        if spec["population"] not in seen:
            raise TemplateError(f"{source}, line {line}, marker {spec['name']!r}: population "
                                f"{spec['population']!r} is not defined")
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
    )
    # Build every gate and transform once, and find the compensation matrix, so errors surface now.
    dummy = {r: r for r in roles}
    for pop in populations:
        template._build_gate(pop, dummy)
    _check_transforms(template, lines)
    _check_compensation(template, lines.get(("compensation",), 0))
    return template


def _check_transforms(template: Template, lines: dict) -> None:
    from ..transforms import make_transform

    for role, spec in template.transforms.items():
        params = {k: (262144.0 if v == "auto" else v) for k, v in spec.items() if k != "kind"}
        try:
            make_transform(spec["kind"], **params)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"{template.source}, line {lines.get(('transforms', role), 0)}, "
                                f"transform of {role!r}: {exc}") from None


def _inline_matrix(spec: dict) -> pd.DataFrame:
    """A template's own spillover matrix (rows: fluorochromes, columns: detectors)."""
    from ..compensation import validate_spillover

    detectors = list(spec["detectors"])
    rows = list(spec.get("fluorochromes") or detectors)
    matrix = np.asarray(spec["matrix"], dtype=float)
    if matrix.shape != (len(rows), len(detectors)):
        raise ValueError(f"matrix is {' × '.join(map(str, matrix.shape))} but there are {len(rows)} "
                         f"fluorochromes and {len(detectors)} detectors")
    return validate_spillover(pd.DataFrame(matrix, index=rows, columns=detectors))


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


def _explain(error) -> str:
    if error.validator == "enum":
        return f"{error.instance!r} is not allowed; choose one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        return error.message
    return error.message
