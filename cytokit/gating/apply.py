"""Gating one sample with a template: compensate, transform, build the gates and gate the tree.

:func:`gate_sample` is :meth:`Template.apply <cytokit.gating.template.Template.apply>`:
the sample's spillover matrix (the file's, the template's own, a CSV file's, or none),
each role's transform on its channel (:func:`_dimensions`), and every population's gate built from its
template mapping (:data:`~cytokit.gating._schema.GATE_TYPES`), fitted on the parent's
events (a ``control_threshold`` gate on the matched control's) into a
:class:`~cytokit.gating.result.GatingResult`.
"""

from __future__ import annotations

import copy
import importlib
import inspect

import numpy as np
import pandas as pd

from ..errors import ChannelNotFoundError, TemplateError
from ..sample import Sample
from ._schema import GATE_TYPES, ROLE_KEYS, _gate_roles
from .result import GatingResult


def gate_sample(
    template,
    sample: Sample,
    *,
    control: GatingResult | None = None,
    is_control: bool = False,
    channels: dict[str, str] | None = None,
    pooled: dict | None = None,
    stop_at: str | None = None,
) -> GatingResult:
    """``template.apply(sample, ...)``: see
    :meth:`Template.apply <cytokit.gating.template.Template.apply>`. ``stop_at``: return
    before gating the population of that path (:func:`cytokit.gating.pooling.fit_pooled`
    gates every file down to a pooled gate's parent)."""
    from ..compensation import compensate

    if pooled is None:
        pooled = template.pooled
    sample = template.label(sample)  # the panel sheet's markers, for the result, its figures and outputs
    if channels is None:
        reference = control.channels if control is not None else None
        channels = template.resolve_channels(sample, reference=reference)
    events = sample.events
    spillover, comp_source = _spillover(template, sample)
    if spillover is not None:
        try:
            events = compensate(events, spillover)
        except ChannelNotFoundError as exc:
            raise ChannelNotFoundError(f"{sample.path}: compensation ({comp_source}): {exc}") from None
    scale = events
    dims, transforms = _dimensions(template, sample, channels)
    finite, nonfinite = _finite_events(sample, scale, channels, spillover)
    result = GatingResult(
        sample=sample, template=template, channels=channels, dims=dims, scale=scale,
        transforms=transforms, compensation=comp_source, spillover=spillover,
        finite=finite, nonfinite=nonfinite,
    )
    n = len(scale)
    root_mask = np.ones(n, dtype=bool) if finite is None else finite
    for pop in template.populations:
        path = template.path_of(pop.name)
        if path == stop_at:
            return result
        parent_path = template.path_of(pop.parent) if pop.parent != "root" else ""
        parent_mask = result.membership[parent_path] if parent_path else root_mask
        result.parents[path] = parent_path or "root"
        missing = [r for r in _gate_roles(pop.gate) if r not in channels]
        if missing:
            if not pop.optional:
                raise ChannelNotFoundError(
                    f"{sample.path}: population {pop.name!r} needs role(s) {', '.join(missing)}, optional and not "
                    "found in this file: give the population optional: true to skip it (flagged) where they are "
                    "missing, or make the role(s) required")
            result.membership[path] = parent_mask.copy()
            result.flags[path] = f"skipped: the file has no channel for role(s) {', '.join(missing)}"
            continue
        gate = _build_gate(template, pop, dims)
        fitted = (pooled or {}).get(path)
        if fitted is not None:  # fitted on several files: this file's dimensions, the pooled fit
            gate = copy.copy(fitted).set_params(**{k: v for k, v in gate.get_params().items() if k in ROLE_KEYS})
        if type(gate).__name__ == "BooleanGate":
            skipped = [o for o in gate.operands if result.flags.get(template.path_of(o), "").startswith("skipped")]
            if skipped:  # as below a skipped gate: the parent's events (a NOT of a pass-through is empty),
                result.membership[path] = parent_mask.copy()  # and no gate (exports leave it out)
                result.flags[path] = f"skipped: operand(s) {', '.join(skipped)} skipped"
            else:
                result.gates[path] = gate
                inside = gate.contains(pd.DataFrame({p.split("/")[-1]: m for p, m in result.membership.items()}))
                result.membership[path] = parent_mask & inside
            continue
        result.gates[path] = gate
        # A gate only ever sees its parent's events, so only those are transformed.
        rows = np.flatnonzero(parent_mask) if parent_path or finite is not None else None
        frame = result._frame(gate.dims, rows)
        if hasattr(gate, "fit"):
            if fitted is None:
                _fit(gate, frame, result, pop, parent_path, control=control, is_control=is_control)
            elif not gate.failed_:  # judged on the events of this file it divides; pooled scales that differ, always
                note, mixed = gate.file_warning(frame), getattr(gate, "mixed_scales_", None)
                gate.warning_ = note if not mixed or mixed in (note or "") else "; ".join(filter(None, [mixed, note]))
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


def _fit(gate, frame: pd.DataFrame, result: GatingResult, pop, parent_path: str, *,
         control: GatingResult | None, is_control: bool) -> None:
    """Fit ``gate`` on the events it learns from: the parent's (``frame``), the ancestor's that
    ``fit_on`` names, or, for a ``control_threshold`` gate, the matched control's parent."""
    if type(gate).__name__ == "ControlThresholdGate" and not is_control:
        if control is None or parent_path not in control.membership and parent_path:
            if gate.fallback is None:
                gate.fit(frame.iloc[:0])
                gate.failed_ = "needs the matched control tube, and none was given"
            else:
                gate.fit(frame, without_control=True)  # its fallback, on the tube's own events, flagged
        else:
            ctrl_rows = (np.flatnonzero(control.membership[parent_path]) if parent_path
                         else None if control.finite is None else np.flatnonzero(control.finite))
            gate.fit(control._frame(gate.dims, ctrl_rows))
    elif pop.fit_on:
        fit_mask = result.membership[result.template.path_of(pop.fit_on)]
        gate.fit(result._frame(gate.dims, np.flatnonzero(fit_mask)))
    else:
        gate.fit(frame)


def _finite_events(sample: Sample, scale: pd.DataFrame, channels: dict[str, str],
                   spillover: pd.DataFrame | None) -> tuple[np.ndarray | None, str]:
    """The events finite in every channel of a role (None when all are), and a sentence on the others.

    NaN and ±inf have no place on any scale (a transform would put them at its bottom, where a
    "negative" gate takes them), so such events are left out of every population and every fit.
    The sentence names the file's channels that hold them (compensation spreads a NaN of one
    detector to all), or the compensated ones when only compensation made them non-finite.
    """
    used = list(dict.fromkeys(channels.values()))
    bad = np.zeros(len(scale), dtype=bool)
    for column in used:
        bad |= ~np.isfinite(scale[column].to_numpy())
    if not bad.any():
        return None, ""
    sources = used + [c for c in (() if spillover is None else spillover.columns) if c not in used]
    raw = sample.events
    named = [c for c in sources if c in raw and not np.isfinite(raw[c].to_numpy()[bad]).all()]
    if not named:
        named = [f"{c} (after compensation)" for c in used if not np.isfinite(scale[c].to_numpy()[bad]).all()]
    count = int(bad.sum())
    return ~bad, (f"{count} event{'s' if count != 1 else ''} with non-finite values (NaN or ±inf) in "
                  f"{', '.join(named)} left out of every gate")


def _spillover(template, sample: Sample) -> tuple[pd.DataFrame | None, str]:
    """The spillover matrix ``template`` compensates ``sample`` with (or None), and where it came from."""
    mode = template.compensation
    if isinstance(mode, dict):
        return _inline_matrix(mode), "template matrix"
    if mode == "none":
        return None, "none"
    if mode == "file":
        if sample.spillover is None:
            from ..errors import FCSError
            from ..fcs._read import unreadable_spillover

            problem = unreadable_spillover(sample.keywords, list(sample.channels["pnn"]))
            if problem:  # uncompensated, its markers' values would be other markers' too: no silent garbage
                raise FCSError(f"{sample.path}: {problem}: the template compensates with the file's matrix "
                               "(compensation: file); fix the keyword, give a matrix CSV, or, for files that need none (a "
                               "keyword naming channels without coefficients), compensation: none")
            return None, "none (the file has no spillover matrix)"
        return sample.spillover, "file"
    from ..compensation import read_spillover_csv

    path = template.compensation_path()
    return read_spillover_csv(path), str(path)


def _dimensions(template, sample: Sample, channels: dict[str, str]) -> tuple[dict[str, str], dict]:
    """``(role → dimension, {dimension: transform})``: the name each role's gates read it by, and
    the transform of each dimension that has one.

    A role's dimension is its channel's ``$PnN``. Roles on one channel with one transform share it
    (``fsc`` and ``fsc_area`` both FSC-A); a role on the same channel with another transform (a
    linear ``ssc`` for the singlet gate, a logicle ``ssc_log`` for a cluster) gets a dimension of
    its own, ``"<PnN> [<role>]"``: the same compensated values on its own scale. The first role of
    the template on a channel keeps the ``$PnN``.
    """
    dims: dict[str, str] = {}
    out: dict = {}
    scales: dict[str, list[tuple[object, str]]] = {}  # pnn -> [(transform or None, dimension)]
    table = sample.channels
    # pnn -> (decades, range, offset), for t: auto; a linear channel read as $PnR / $PnG (its values are divided)
    tops = {p: (float(d), float(r) / (float(g) if d <= 0 and g > 0 else 1.0), float(o))
            for p, d, r, o, g in zip(table["pnn"], table["decades"], table["range"], table["offset"], table["gain"])}
    for role, pnn in channels.items():
        transform = _role_transform(template, sample, role, pnn, tops)
        taken = scales.setdefault(pnn, [])
        dim = next((d for t, d in taken if t == transform), None)
        if dim is None:
            dim = pnn if not taken else f"{pnn} [{role}]"
            if dim != pnn and dim in tops:  # a channel of the file already has that name
                raise TemplateError(f"{template.source}: role {role!r} needs a dimension {dim!r} of its own "
                                    f"(channel {pnn} with another role's transform), but {sample.path} has a "
                                    "channel of that name; rename the role")
            taken.append((transform, dim))
            if transform is not None:
                out[dim] = transform
        dims[role] = dim
    return dims, out


def _role_transform(template, sample: Sample, role: str, pnn: str, tops: dict):
    """The transform of ``role`` on its channel ``pnn`` of ``sample`` (``t: auto`` resolved from
    ``tops``, ``{pnn: (decades, range, offset)}``), or None."""
    from ..transforms import make_transform

    spec = template.transforms.get(role, template.transforms.get("default"))
    if not spec:
        return None
    params = {k: v for k, v in spec.items() if k != "kind"}
    if params.get("t") == "auto":
        decades, top, offset = tops.get(pnn, (0.0, 0.0, 0.0))
        if decades > 0:
            top = 10.0 ** decades * (offset or 1.0)
        params["t"] = top if top > 1 else 262144.0
    try:
        return make_transform(spec["kind"], **params)
    except ValueError as exc:  # e.g. valid for t: 262144 (checked at load) but not this file's top
        raise TemplateError(f"{template.source}: transform of role {role!r} on {pnn} of {sample.path}: "
                            f"{exc}") from None


def _build_gate(template, pop, channels: dict[str, str]):
    """The gate of population ``pop`` (a :class:`~cytokit.gating.template.Population`), its roles
    replaced by ``channels`` (role → dimension, :func:`_dimensions`; each role itself when the
    template is loaded)."""
    spec = dict(pop.gate)
    module, cls_name = GATE_TYPES[spec.pop("type")]
    cls = getattr(importlib.import_module(f"cytokit.gating.{module}"), cls_name)
    where = f"{template.source}, line {pop.line}: gate of population {pop.name!r} ({pop.gate['type']})"
    parameters = {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}
    for key in ROLE_KEYS:
        if key in spec:
            value = spec[key]
            annotation = str(getattr(parameters.get(key), "annotation", ""))
            if (key == "dims" and not isinstance(value, list)) or (
                    isinstance(value, list) and key != "dims" and "Sequence" not in annotation):
                raise TemplateError(f"{where}: {key} is {'a list of roles' if key == 'dims' else 'one role'}, "
                                    f"got {value!r}")
            spec[key] = [channels[v] for v in value] if isinstance(value, list) else channels[value]
    if "bounds" in spec:  # rectangle: {role: [min, max]}
        spec["bounds"] = {channels[r]: tuple(b) for r, b in spec["bounds"].items()}
    if isinstance(spec.get("search_range"), list):
        spec["search_range"] = tuple(spec["search_range"])
    unknown = [key for key in spec if key not in parameters]
    if unknown:
        raise TemplateError(f"{where}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                            f"it takes {', '.join(parameters)}")
    missing = [n for n, p in parameters.items() if p.default is inspect.Parameter.empty and n not in spec
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if missing:
        raise TemplateError(f"{where}: needs {', '.join(map(repr, missing))}")
    try:
        gate = cls(**spec)
        if hasattr(gate, "check_params"):
            gate.check_params()
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"{where}: {exc}") from None
    return gate


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

