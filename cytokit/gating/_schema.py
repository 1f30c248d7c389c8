"""The YAML schema of gating templates, and YAML read with the line of every key.

:data:`SCHEMA` (JSON Schema, draft 7) checks a template's shape; :data:`GATE_TYPES`,
:data:`ROLE_KEYS` and :data:`TRANSFORM_KINDS` are its vocabulary (:func:`_gate_roles`: the
roles a gate mapping names). :func:`_load_yaml` keeps the line of every key so that errors
name it, and :func:`_explain` words a schema error; :func:`_read_text` reads a template file
(UTF-8 or Windows-1252). The checks that need more than the
shape are in :mod:`cytokit.gating.template`.
"""

from __future__ import annotations

import functools

from typing import Any

from ..errors import TemplateError

#: gate ``type`` in a template → (module of cytokit.gating, class)
GATE_TYPES: dict[str, tuple[str, str]] = {
    "rectangle": ("gates", "RectangleGate"),
    "range": ("gates", "RangeGate"),
    "polygon": ("gates", "PolygonGate"),
    "ellipse": ("gates", "EllipseGate"),
    "boolean": ("boolean", "BooleanGate"),
    "density_valley": ("thresholds", "DensityValleyGate"),
    "quantile": ("thresholds", "QuantileGate"),
    "threshold": ("thresholds", "FixedThresholdGate"),
    "tail": ("thresholds", "TailGate"),
    "mixture_threshold": ("mixture", "MixtureThresholdGate"),
    "cluster": ("regions", "ClusterGate"),
    "singlet": ("regions", "SingletGate"),
    "contour": ("regions", "ContourGate"),
    "control_threshold": ("thresholds", "ControlThresholdGate"),
    "boundary": ("boundary", "BoundaryGate"),
    "ratio_singlet": ("boundary", "RatioSingletGate"),
    "peak_foot": ("peaks", "PeakFootGate"),
    "shoulder": ("peaks", "ShoulderGate"),
    "quadrant": ("peaks", "ValleyQuadrantGate"),
    "registered": ("registered", "RegisteredGate"),
}
#: gate parameters whose values are channel roles
ROLE_KEYS = ("dim", "dims", "area", "height")
TRANSFORM_KINDS = ("linear", "log", "logicle", "asinh", "hyperlog", "biex")

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
        "panel": {"type": "string", "minLength": 1},
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
                    "pool": {"type": "boolean"},
                    "fit_on": {"type": "string"},
                    "manual": {"type": "string", "minLength": 1},
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


def _read_text(path, what: str = "template") -> str:
    """A template file's text: UTF-8 (a BOM is dropped), else Windows-1252 (an editor's or Excel's
    default on Windows), as sample sheets are read; a TemplateError when it is neither or unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            error = exc
    raise TemplateError(f"{path}: cannot read {what}: neither UTF-8 nor Windows-1252 text (byte "
                        f"0x{data[error.start]:02x} at offset {error.start}); save it as UTF-8")


@functools.cache
def _loader():
    """PyYAML's safe loader, reading ``1e9`` as the number it is (YAML 1.1 wants ``1.0e+9``: a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                                 list("-+0123456789."))
    return Loader


def _load_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML, returning the data and the line (1-based) of every key path; a key given twice
    in one mapping is an error (PyYAML keeps the last: a gate on the wrong channel, silently)."""
    import yaml

    loader = _loader()
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise TemplateError(f"{source}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    lines: dict[tuple, int] = {}

    def walk(n, path: tuple):
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            seen: dict = {}
            for key, value in n.value:
                if key.value in seen:
                    raise TemplateError(f"{source}, line {key.start_mark.line + 1}: {key.value!r} is given twice "
                                        f"(also line {seen[key.value]}); PyYAML would keep only the last")
                seen[key.value] = key.start_mark.line + 1
                walk(value, path + (key.value,))
                lines[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, path + (i,))

    if node is not None:
        walk(node, ())
    return yaml.load(text, Loader=loader), lines  # noqa: S506 - a SafeLoader


def _gate_roles(gate: dict) -> list[str]:
    """The channel roles a population's gate mapping names (under :data:`ROLE_KEYS` and ``bounds``)."""
    roles = []
    for key in ROLE_KEYS:
        value = gate.get(key)
        if isinstance(value, str):
            roles.append(value)
        elif isinstance(value, list):
            roles.extend(value)
    roles.extend(gate.get("bounds", {}) or {})
    return roles


def _explain(error) -> str:
    if error.validator == "enum":
        return f"{error.instance!r} is not allowed; choose one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        return error.message
    return error.message
