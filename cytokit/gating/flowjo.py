"""Import of FlowJo workspaces (``.wsp``) as cytokit templates, through FlowKit.

One sample's gate tree becomes a :class:`~cytokit.gating.template.Template` of static
gates (FlowJo gates are drawn by hand, so there is nothing to fit):

=============================  ==================================================
FlowKit gate (from the .wsp)   cytokit gate
=============================  ==================================================
``RectangleGate``              ``range`` (one dim) or ``rectangle`` (``bounds``);
                               FlowJo quadrants arrive as rectangles
``PolygonGate``                ``polygon`` (FlowJo ellipses arrive as polygons)
``EllipsoidGate``              ``ellipse`` (``mean``, ``covariance``, ``distance_square``)
``BooleanGate``                ``boolean`` (``op``, ``operands``, ``complement``)
=============================  ==================================================

Every gate dimension becomes a channel role named after the channel, found by
``$PnN`` (``{pnn: [name]}``); a Gating-ML file may put one channel on two transforms in two
gates, and the second becomes a role of its own, ``"<channel> (<transform id>)"``. FlowJo draws gates in transformed space; each
dimension's transform (linear, log, asinh, logicle, hyperlog, and FlowJo's default
``biex``, :class:`~cytokit.transforms.BiexTransform`) becomes the role's
``transforms:`` entry with the workspace's parameters, so the imported vertices are
compared with the same numbers FlowKit compares them with. Compensation is ``file`` (the
FCS file's ``$SPILLOVER``) when the gates use the acquisition-defined matrix, the sample's
own matrix, written into the template, when they use one made in FlowJo (or cytokit's
``--flowjo`` export of a template's matrix), else ``none``. Population names must be unique in a template, so a
FlowJo gate name used under several parents is prefixed with its parent's name
(``CD4+ IFNg+``). Markers to quantify are added in YAML.

FlowJo gates are often sample-specific (adjusted per file), and a workspace may hold
several panels: a template is one sample's tree, by default the first sample of
``All Samples``; pick another with ``sample_id=`` (``load_template(wsp, sample=...)``).
On the FlowAtlas workspace every sample's gates differ from the first's, and each
file's own tree reproduces FlowKit's counts exactly (``tests/test_flowjo.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TemplateError
from .template import Template, parse_template


def template_from_flowjo(path: str | Path, *, group: str = "All Samples", sample_id: str | None = None) -> Template:
    """Read the gate tree of one sample of a FlowJo workspace as a cytokit template.

    Parameters
    ----------
    path
        The ``.wsp`` file. The FCS files it references need not be present.
    group
        The FlowJo sample group to take the sample from.
    sample_id
        The sample (FlowJo's sample name, usually the FCS file name); default the first
        sample of ``group``.

    Returns
    -------
    Template
        Validated exactly as a YAML template; ``name`` is the file stem.

    Raises
    ------
    TemplateError
        The workspace cannot be read, the group or sample is not in it, or a gate or
        transform has no cytokit equivalent; the message names the file and the gate.
    """

    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise TemplateError(f"{path}: cannot read FlowJo workspace (no such file)")
    workspace = _workspace(path)
    groups = workspace.get_sample_groups()
    if group not in groups:
        raise TemplateError(f"{source}: no sample group {group!r}; the workspace has {', '.join(groups)}")
    samples = workspace.get_sample_ids(group_name=group, loaded_only=False)
    if not samples:
        raise TemplateError(f"{source}: sample group {group!r} has no samples")
    if sample_id is None:
        sample_id = samples[0]
        if len(samples) > 1:  # FlowJo gates are often adjusted per sample: say whose every file gets
            warnings.warn(f"{source}: the template is sample {sample_id!r}'s gate tree, applied to every file (the "
                          f"workspace has {len(samples)} samples, whose gates may differ; from Python, "
                          "load_template(path, sample=...) picks another)", UserWarning, stacklevel=3)
    elif sample_id not in samples:
        raise TemplateError(f"{source}: no sample {sample_id!r} in group {group!r}; it has {', '.join(samples)}")

    gate_ids = workspace.get_gate_ids(sample_id)
    get_gate = lambda name, gpath: workspace.get_gate(sample_id, name, gpath)  # noqa: E731
    # a matrix made in FlowJo (a custom one, cytokit's own --flowjo of a template's matrix) is the sample's;
    # the acquisition-defined one is the file's $SPILLOVER (compensation: file)
    refs = {str(d.compensation_ref) for name, gpath in gate_ids for d in getattr(get_gate(name, gpath), "dimensions",
                                                                               None) or [] if d.compensation_ref}
    matrix = workspace.get_comp_matrix(sample_id) if refs - _FILE_MATRIX else None
    return _template_from_gates(
        source, path.stem, f"imported from FlowJo workspace {path.name}, sample {sample_id}", gate_ids, get_gate,
        workspace.get_transforms(sample_id), f"sample {sample_id!r}, ",
        matrices={ref: matrix for ref in refs - _FILE_MATRIX} if matrix is not None else None,
    )


#: FlowJo's names for the file's own matrix, and for none
_FILE_MATRIX = {"Acquisition-defined", "FCS", "uncompensated", "None"}


def template_from_gatingml(path: str | Path) -> Template:
    """Read a Gating-ML 2.0 file (through FlowKit) as a template of static gates.

    Compensation by the file's own matrix (``FCS``) maps to ``compensation: file``, and
    by a spectrum matrix of the Gating-ML file (as ``cytokit gate --export-gatingml``
    writes for files with a spillover matrix) to that matrix in the template. Gates
    that use two different compensations are refused, as are ratio dimensions.
    """
    import flowkit

    path = Path(path)
    try:
        strategy = flowkit.parse_gating_xml(str(path))
    except Exception as exc:  # FlowKit raises many types for invalid XML; report them as one
        from .gatingml import _schema_error

        raise TemplateError(f"{path}: not a readable Gating-ML 2.0 file ({type(exc).__name__}: {exc})"
                            f"{_schema_error(path)}") from None
    return _template_from_gates(str(path), path.stem, f"imported from Gating-ML file {path.name}",
                                strategy.get_gate_ids(), strategy.get_gate, strategy.transformations, "",
                                matrices=strategy.comp_matrices)


def _template_from_gates(source: str, name: str, description: str, gate_ids, get_gate, xforms,
                         context: str, matrices: dict | None = None) -> Template:
    """Build a template from a FlowKit gate tree (workspace sample or Gating-ML strategy)."""
    import yaml

    names = _unique_names(gate_ids)
    channels: dict[str, dict[str, Any]] = {}
    transforms: dict[str, dict[str, Any]] = {}
    compensations: set[str] = set()
    scales: dict[tuple[str, str | None], str] = {}  # (channel, transform id) -> role
    populations = []
    for gate_name, gate_path in gate_ids:
        fk_gate = get_gate(gate_name, gate_path)
        where = f"{source}, {context}gate {'/'.join(gate_path[1:] + (gate_name,))!r}"
        roles = []
        for dim in getattr(fk_gate, "dimensions", []) or []:
            if not hasattr(dim, "id"):
                raise TemplateError(f"{where}: {type(dim).__name__} dimensions (ratios of two channels) have "
                                    "no template equivalent; cytokit.gating.gatingml.GateSet evaluates them")
            key = (dim.id, dim.transformation_ref)
            if key not in scales:  # the channel on another transform than before: a role of its own
                role = dim.id if dim.id not in channels else f"{dim.id} ({dim.transformation_ref or 'linear'})"
                scales[key] = role
                channels[role] = {"pnn": [dim.id]}
                if dim.transformation_ref is not None:
                    transforms[role] = _transform(xforms, dim.transformation_ref, where)
            roles.append(scales[key])
            if dim.compensation_ref not in (None, "uncompensated"):
                compensations.add(dim.compensation_ref)
        parent = "root" if len(gate_path) == 1 else names[(gate_path[-1], gate_path[:-1])]
        population = {"name": names[(gate_name, gate_path)], "parent": parent,
                      "gate": _gate(fk_gate, gate_path, names, where, roles)}
        if population["name"] != gate_name:  # renamed unique: compare pairs it with the gate it came from
            population["manual"] = gate_name
        populations.append(population)
    if not populations:
        raise TemplateError(f"{source}: {context}no gates")
    populations = _in_dependency_order(populations)
    data = {
        "name": name,
        "description": description,
        "channels": channels,
        "compensation": _compensation(source, compensations, matrices or {}),
        "transforms": transforms,
        "populations": populations,
    }
    return parse_template(yaml.safe_dump(data, sort_keys=False), source=source)


def _in_dependency_order(populations: list[dict]) -> list[dict]:
    """Each population after its parent and its boolean operands (Gating-ML may list a boolean
    gate before a gate it combines); order kept otherwise. A cycle is left for the template
    check to report."""
    done = {"root"}
    ordered, waiting = [], list(populations)
    while waiting:
        ready = [p for p in waiting if {p["parent"], *p["gate"].get("operands", [])} <= done]
        if not ready:
            return ordered + waiting
        for population in ready:
            done.add(population["name"])
        ordered += ready
        waiting = [p for p in waiting if p["name"] not in done]
    return ordered


def _compensation(source: str, used: set[str], matrices: dict) -> str | dict[str, Any]:
    """The template's ``compensation`` for the compensation references the gates use."""
    if len(used) > 1:
        raise TemplateError(f"{source}: gates use {len(used)} compensations ({', '.join(sorted(used))}); "
                            "a template has one")
    if not used:
        return "none"
    ref = used.pop()
    if ref not in matrices:  # "FCS" (the file's own matrix), and FlowJo's references to it
        return "file"
    matrix = matrices[ref]
    spec: dict[str, Any] = {"detectors": [str(d) for d in matrix.detectors],
                            "matrix": [[float(v) for v in row] for row in matrix.matrix]}
    fluorochromes = [str(f) for f in matrix.fluorochromes]
    if all(fluorochromes) and len(set(fluorochromes)) == len(fluorochromes):  # else rows take the detectors
        spec["fluorochromes"] = fluorochromes
    return spec


def _workspace(path: Path):
    import flowkit

    try:
        with warnings.catch_warnings():
            # FlowKit warns for every FCS file the workspace references but we do not load
            warnings.simplefilter("ignore")
            return flowkit.Workspace(str(path), load_missing_file_data=True)
    except Exception as exc:  # FlowKit raises many types for a malformed workspace
        raise TemplateError(f"{path}: FlowKit cannot read this FlowJo workspace ({type(exc).__name__}: {exc})") \
            from exc


def _unique_names(gate_ids: Sequence[tuple[str, tuple[str, ...]]]) -> dict[tuple, str]:
    """Template population names for FlowJo (name, path) pairs: unique, without '/'."""
    counts: dict[str, int] = {}
    for name, _ in gate_ids:
        counts[name] = counts.get(name, 0) + 1
    names: dict[tuple, str] = {}
    used: set[str] = set()
    for name, gate_path in gate_ids:
        candidates = [name] if counts[name] == 1 else []
        candidates += [" ".join(gate_path[-k:] + (name,)) for k in range(1, len(gate_path))]
        candidates += [" ".join(gate_path + (name,))]
        chosen = next(c for c in candidates if c not in used and c != "root")
        chosen = chosen.replace("/", "|")
        used.add(chosen)
        names[(name, gate_path)] = chosen
    return names


def _transform(xforms: dict, ref: str, where: str) -> dict[str, Any]:
    from ..transforms import from_flowkit

    if ref not in xforms:
        raise TemplateError(f"{where}: transform {ref!r} is not in the workspace")
    try:
        transform = from_flowkit(xforms[ref])
    except ValueError:
        raise TemplateError(
            f"{where}: dimension transform {xforms[ref]!r} has no cytokit equivalent (use biex, logicle, "
            "asinh, log or linear in FlowJo, or write the template in YAML)"
        ) from None
    return {"kind": transform.kind, **{k: float(v) for k, v in transform.params.items()}}


def _bounds(dim) -> list[float | None]:
    return [None if dim.min is None else float(dim.min), None if dim.max is None else float(dim.max)]


def _gate(fk_gate, gate_path: tuple[str, ...], names: dict[tuple, str], where: str,
          dims: list[str]) -> dict[str, Any]:
    """The template mapping of a FlowKit gate; ``dims`` are the roles of its dimensions."""
    kind = type(fk_gate).__name__
    if getattr(fk_gate, "use_complement", False):
        raise TemplateError(f"{where}: gates used as their complement are not supported")
    if kind == "RectangleGate":
        if len(dims) == 1:
            lo, hi = _bounds(fk_gate.dimensions[0])
            return {"type": "range", "dim": dims[0], "min": lo, "max": hi}
        return {"type": "rectangle", "bounds": {r: _bounds(d) for r, d in zip(dims, fk_gate.dimensions)}}
    if kind == "PolygonGate":
        return {"type": "polygon", "dims": dims,
                "vertices": [[float(x) for x in vertex] for vertex in fk_gate.vertices]}
    if kind == "EllipsoidGate":
        return {"type": "ellipse", "dims": dims,
                "mean": [float(x) for x in fk_gate.coordinates],
                "covariance": [[float(x) for x in row] for row in fk_gate.covariance_matrix],
                "distance_square": float(fk_gate.distance_square)}
    if kind == "BooleanGate":
        operands, complement = [], []
        for ref in fk_gate.gate_refs:
            operand = names.get((ref["ref"], tuple(ref["path"])))
            if operand is None:
                raise TemplateError(f"{where}: boolean gate refers to {ref['ref']!r}, not a gate of this sample")
            operands.append(operand)
            if ref.get("complement"):
                complement.append(operand)
        gate: dict[str, Any] = {"type": "boolean", "op": fk_gate.type, "operands": operands}
        if complement:
            gate["complement"] = complement
        return gate
    raise TemplateError(f"{where}: FlowKit gate type {kind} is not supported "
                        "(rectangle, polygon, ellipse and boolean gates are)")


__all__ = ["template_from_flowjo"]
