"""Import of openCyto gatingTemplate CSV files as cytokit templates.

An openCyto gatingTemplate is a CSV with the columns ``alias, pop, parent, dims,
gating_method, gating_args, collapseDataForGating, groupBy, preprocessing_method,
preprocessing_args``; the first six are read, and ``collapseDataForGating`` (TRUE: ``pool: true``, the
gate fitted once on every file gated together; ``groupBy`` and preprocessing are not imported, said
so). Each row becomes one
population of a cytokit :class:`~cytokit.gating.template.Template`:

================================  ==========================================================
openCyto ``gating_method``        cytokit gate
================================  ==========================================================
``mindensity`` (``mindensity2``,  ``density_valley``; ``gate_range=c(a, b)`` (or ``min``,
``gate_mindensity``)              ``max``) → ``search_range``, ``adjust`` → ``adjust``;
                                  ``min_peak_height`` (cytokit's, not openCyto's) as is
``quantileGate``                  ``quantile``; ``probs`` → ``q``
(``gate_quantile``)
``tailgate`` (``gate_tail``)      ``tail``; ``tol`` → ``fraction`` (when 0 < tol < 1),
                                  ``gate_range`` → ``search_range``, ``adjust``
``boundary``                      ``rectangle``; ``min=c(..)``, ``max=c(..)`` → ``bounds``
``flowClust``, ``flowClust.2d``   ``cluster``; ``K`` → ``n_components``, ``quantile`` →
(``gate_flowclust_2d``)           ``confidence``, ``target=c(x, y)`` → ``select: nearest``
                                  with ``location``; without a target the largest cluster
``flowClust`` / ``flowClust.1d``  ``mixture_threshold`` (``split: bottom``: the cut after the
(``gate_flowclust_1d``) on one    lowest cluster, openCyto's ``neg_cluster = 1`` boundary);
dim                               ``K`` → ``n_components`` (default 2); Gaussian, not t, mixtures
``singletGate`` (``gate_singlet``)  ``singlet`` on the two dims (area, height)
================================  ==========================================================

``pop`` decides the side of one-dimensional thresholds: ending in ``+`` keeps events
above, ending in ``-`` events below. The population's name is the ``alias``; the parent
is the last component of ``parent`` (``root``, ``/nonDebris/singlets`` or an alias).
Every distinct dim becomes a channel role named after it: scatter and time channels
(names containing FSC, SSC or Time) are found by ``$PnN``, anything else by marker
(``$PnS``) and, failing that, by ``$PnN``.

openCyto keeps transforms and compensation outside the CSV (the GatingSet is transformed
before gating). Without ``transforms`` the channels get those of ``cll_cd19_7aad.yaml``,
which is what a cytometrist would give them: FSC and Time linear up to the channel's top
of scale, everything else (SSC, fluorescence) logicle with ``T`` the top of scale,
``W = 0.5, M = 4.5, A = 0`` (:func:`default_transforms`); pass ``transforms`` (the YAML
``transforms:`` block as a dict; ``{}`` for none) to choose, and ``compensation``
(default ``"file"``). The CSV says nothing about what to quantify either: add ``markers``
(the YAML ``markers:`` list) here or in a YAML template.

Examples
--------
>>> import tempfile, pathlib
>>> csv_text = ('alias,pop,parent,dims,gating_method,gating_args\\n'
...             'CD19+,+,root,CD19,mindensity,"gate_range=c(0.2,0.7)"\\n')
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text(csv_text)
>>> template_from_opencyto(path).populations[0].gate
{'type': 'density_valley', 'dim': 'CD19', 'side': 'above', 'search_range': [0.2, 0.7]}
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import TemplateError
from ._rargs import parse_args as _parse_args
from ._schema import _read_text
from .template import Template, parse_template

REQUIRED_COLUMNS = ("alias", "pop", "parent", "dims", "gating_method", "gating_args")

#: openCyto gating method → cytokit gate type
METHODS: dict[str, str] = {
    "mindensity": "density_valley",
    "mindensity2": "density_valley",
    "gate_mindensity": "density_valley",
    "gate_mindensity2": "density_valley",
    "quantilegate": "quantile",
    "gate_quantile": "quantile",
    "tailgate": "tail",
    "gate_tail": "tail",
    "boundary": "rectangle",
    "flowclust": "cluster",
    "flowclust.1d": "cluster",
    "flowclust.2d": "cluster",
    "gate_flowclust_1d": "cluster",
    "gate_flowclust_2d": "cluster",
    "singletgate": "singlet",
    "gate_singlet": "singlet",
}
_SUPPORTED = "mindensity, quantileGate, tailgate, boundary, flowClust(.1d/.2d), singletGate"
#: the other columns of an openCyto gatingTemplate: collapseDataForGating TRUE is pool: true; groupBy and
#: preprocessing are not imported, said so when a row uses them
OTHER_COLUMNS = ("collapseDataForGating", "groupBy", "preprocessing_method")
#: openCyto methods with a YAML template equivalent, not imported from a CSV
UNSUPPORTED = {
    "boolgate": "write it as a YAML boolean gate (type: boolean, op: and / or / not, operands)",
    "refgate": "write the cut once and refer to it in YAML (a quadrant's thresholds, or fit_on)",
    "quadgate.seq": "use a YAML quadrant gate with sequential: above / below (openCyto's quadGate.seq)",
    "quadgate": "use a YAML quadrant gate (type: quadrant), whose four quadrants are named populations",
    "gate_quad_sequential": "use a YAML quadrant gate with sequential: above / below",
    "gate_quad_tmix": "use a YAML quadrant gate (type: quadrant)",
}
_SCATTER = re.compile(r"fsc|ssc|time", re.IGNORECASE)
_LINEAR = re.compile(r"fsc|time", re.IGNORECASE)
#: the transform of every channel that is not forward scatter or time (as in cll_cd19_7aad.yaml)
LOGICLE = {"kind": "logicle", "t": "auto", "w": 0.5, "m": 4.5, "a": 0}


def default_transforms(dims) -> dict[str, dict[str, Any]]:
    """The transforms of a CSV's dims when none are given: FSC and Time linear, the rest logicle."""
    linear = {d: {"kind": "linear", "t": "auto"} for d in dims if _LINEAR.search(d)}
    return {**linear, "default": dict(LOGICLE)}


def template_from_opencyto(
    path: str | Path,
    *,
    transforms: Mapping[str, Mapping[str, Any]] | None = None,
    compensation: str = "file",
    markers: Sequence[Mapping[str, Any]] | None = None,
) -> Template:
    """Read an openCyto gatingTemplate CSV as a cytokit template.

    Parameters
    ----------
    path
        The CSV file.
    transforms
        Per role (a dim name, or ``default``): ``{kind: ..., t: ..., ...}`` as in a YAML
        template; ``{}`` for none. openCyto transforms live outside the CSV, so by default
        :func:`default_transforms` (FSC and Time linear, the rest logicle).
    compensation
        ``file``, ``none`` or a spillover CSV path, as in a YAML template.
    markers
        Markers to quantify, as the YAML ``markers:`` list (``name``, ``channel`` (a
        dim), ``population`` (an alias), ``positivity``). None by default.

    Returns
    -------
    Template
        Validated exactly as a YAML template (:func:`~cytokit.gating.template.parse_template`).

    Raises
    ------
    TemplateError
        The file is missing, lacks a required column, uses an unsupported gating method or
        malformed ``gating_args``; the message names the file and the CSV line.
    """
    import yaml

    path = Path(path)
    source = str(path)
    text = _read_text(path, "openCyto gatingTemplate")
    reader = csv.reader(io.StringIO(text))
    header_line, header = _next_row(reader, source)
    if header is None:
        raise TemplateError(f"{source}: empty file; an openCyto gatingTemplate has a header with "
                            f"{', '.join(REQUIRED_COLUMNS)}")
    columns = [c.strip() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise TemplateError(f"{source}, line {header_line}: missing column(s) {', '.join(missing)}; an openCyto "
                            f"gatingTemplate needs {', '.join(REQUIRED_COLUMNS)} (found {', '.join(columns)})")
    index = {c: columns.index(c) for c in REQUIRED_COLUMNS}

    channels: dict[str, dict[str, Any]] = {}
    populations: list[dict[str, Any]] = []
    csv_lines: list[int] = []
    while True:
        line, row = _next_row(reader, source)
        if row is None:
            break
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(columns):
            row = row + [""] * (len(columns) - len(row))
        cells = {c: row[i].strip() for c, i in index.items()}
        where = f"{source}, line {line}"
        other = {c: row[columns.index(c)].strip() for c in OTHER_COLUMNS if c in columns}
        pooled = other.get("collapseDataForGating", "").upper() in ("TRUE", "T")
        if pooled and other.get("groupBy", "") not in ("", "NA"):
            warnings.warn(f"{where}: groupBy {other['groupBy']!r} is not imported: the gate is fitted once on the "
                          "events of every file gated together (pool: true)", UserWarning, stacklevel=2)
        if other.get("preprocessing_method", "") not in ("", "NA"):
            warnings.warn(f"{where}: preprocessing_method {other['preprocessing_method']!r} is not imported",
                          UserWarning, stacklevel=2)
        hint = UNSUPPORTED.get(cells["gating_method"].lower())
        if hint:
            raise TemplateError(f"{where}: gating_method {cells['gating_method']!r} is not imported from openCyto "
                                f"CSVs; {hint} (imported: {_SUPPORTED})")
        if not cells["alias"] or cells["alias"] == "*":
            raise TemplateError(f"{where}: alias {cells['alias']!r}: give every population its own alias "
                                "(multi-population rows such as quadrant gates are not supported)")
        dims = [d.strip() for d in cells["dims"].split(",") if d.strip()]
        if not dims:
            raise TemplateError(f"{where}, population {cells['alias']!r}: 'dims' is empty")
        for dim in dims:
            channels.setdefault(dim, _role(dim))
        gate = _gate(cells, dims, where)
        given = [part for part in cells["parent"].strip().split("/") if part]
        parent = given[-1] if given else "root"
        if len(given) > 1 or (cells["parent"].strip().startswith("/") and given and given != ["root"]):
            known = {pop["name"]: pop["parent"] for pop in populations}
            chain, at = [], parent
            while at in known:  # the parent's path as the rows above build it
                chain.insert(0, at)
                at = known[at]
            if [g for g in given if g != "root"] != chain and parent in known:
                raise TemplateError(f"{where}: parent {cells['parent']!r} is not a path of the rows above (theirs: "
                                    f"/{'/'.join(chain)})")
        populations.append({"name": cells["alias"], "parent": parent, "gate": gate, **({"pool": True} if pooled else {})})
        csv_lines.append(line)
    if not populations:
        raise TemplateError(f"{source}: no populations (only a header)")

    data: dict[str, Any] = {"name": path.stem, "channels": channels, "compensation": compensation}
    if transforms is None:
        transforms = default_transforms(channels)
        for population, line in zip(populations, csv_lines):
            _on_the_unit_scale(population["gate"], f"{source}, line {line}")
    if transforms:
        data["transforms"] = {str(k): dict(v) for k, v in transforms.items()}
    data["populations"] = populations
    if markers:
        data["markers"] = [dict(m) for m in markers]
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        template = parse_template(text, source=source)
    except TemplateError as exc:
        raise TemplateError(_csv_lines(str(exc), text, source, csv_lines)) from None
    template.populations = [replace(p, line=line) for p, line in zip(template.populations, csv_lines)]
    return template


def _csv_lines(message: str, text: str, source: str, csv_lines: list[int]) -> str:
    """Point an error about the generated YAML at the CSV line it came from."""
    import yaml

    match = re.match(re.escape(source) + r", line (\d+)", message)
    if not match:
        return message
    yaml_line = int(match.group(1))
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    items = next(v for k, v in node.value if k.value == "populations").value
    starts = [item.start_mark.line + 1 for item in items]
    if starts and yaml_line >= starts[0] and yaml_line <= items[-1].end_mark.line + 1:
        line = csv_lines[max(i for i, start in enumerate(starts) if start <= yaml_line)]
        return f"{source}, line {line}" + message[match.end():]
    # channels, transforms or markers: they come from the dims or the keywords, not one line
    return f"{source}" + message[match.end():]


def _next_row(reader, source: str) -> tuple[int, list[str] | None]:
    """The next CSV record and the line it starts on (1-based)."""
    start = reader.line_num + 1
    try:
        return start, next(reader)
    except StopIteration:
        return start, None
    except csv.Error as exc:
        raise TemplateError(f"{source}, line {start}: not valid CSV ({exc})") from None


def _role(dim: str) -> dict[str, Any]:
    if _SCATTER.search(dim):
        return {"pnn": [dim]}
    return {"marker": dim, "pnn": [dim]}


def _side(pop: str, where: str) -> str:
    if pop.replace(" ", "") in ("+/-", "-/+"):
        raise TemplateError(f"{where}: pop {pop!r} (both sides, as two populations) is not supported: give "
                            "one row per side, pop '+' and pop '-', with their own aliases")
    if pop.endswith("+"):
        return "above"
    if pop.endswith("-"):
        return "below"
    raise TemplateError(f"{where}: pop {pop!r} must end in '+' (above the threshold) or '-' (below)")


def _gate(cells: dict[str, str], dims: list[str], where: str) -> dict[str, Any]:
    method = cells["gating_method"]
    kind = METHODS.get(method.lower())
    if kind is None:
        raise TemplateError(f"{where}: gating_method {method!r} is not supported; supported methods: "
                            f"{_SUPPORTED}")
    args = _parse_args(cells["gating_args"], where)
    used: set[str] = set()

    def take(*names: str):
        for name in names:
            if name in args:
                used.add(name)
                return args[name]
        return None

    def one_dim() -> str:
        if len(dims) != 1:
            raise TemplateError(f"{where}: {method} gates one dim, got {len(dims)} ({', '.join(dims)})")
        return dims[0]

    def pair(value, name: str) -> list[float | None]:
        values = value if isinstance(value, list) else [value]
        if len(values) != 2:
            raise TemplateError(f"{where}: {name} must be c(low, high), got {values}")
        return [_number(v, name, where) for v in values]

    if kind == "cluster" and len(dims) == 1:  # flowClust on one dim is a cutpoint, not a region
        kind = "mixture_threshold"
    gate: dict[str, Any] = {"type": kind}
    if kind == "mixture_threshold":
        gate["dim"] = one_dim()
        gate["side"] = _side(cells["pop"], where)
        k = take("K", "k")
        gate["n_components"] = 2 if k is None else int(_number(k, "K", where))
        negative = take("neg_cluster")
        if negative is not None and _number(negative, "neg_cluster", where) != 1:
            raise TemplateError(f"{where}: neg_cluster={negative} is not supported; cytokit cuts after the lowest "
                                "cluster (neg_cluster=1) or before the highest")
        gate["split"] = "bottom"  # openCyto: the negative (lowest) cluster against all the others
    elif kind in ("density_valley", "tail"):
        gate["dim"] = one_dim()
        gate["side"] = _side(cells["pop"], where)
        search = take("gate_range", "range")
        lo, hi = take("min"), take("max")
        if search is not None:
            gate["search_range"] = pair(search, "gate_range")
        elif lo is not None or hi is not None:
            gate["search_range"] = [_number(lo, "min", where), _number(hi, "max", where)]
        adjust = take("adjust")
        if adjust is not None:
            gate["adjust"] = _number(adjust, "adjust", where)
        height = take("min_peak_height") if kind == "density_valley" else None  # cytokit's own argument
        if height is not None:
            gate["min_peak_height"] = _number(height, "min_peak_height", where)
        if kind == "tail":
            tol = take("tol")
            if tol is not None:
                tol = _number(tol, "tol", where)
                if tol is None or not 0.0 < tol < 1.0:
                    raise TemplateError(f"{where}: tailgate tol={tol} cannot be a density fraction; "
                                        "use a value between 0 and 1")
                gate["fraction"] = tol
            take("side")  # openCyto's own side argument; pop decides it here
    elif kind == "quantile":
        gate["dim"] = one_dim()
        gate["side"] = _side(cells["pop"], where)
        probs = take("probs", "prob")
        gate["q"] = 0.999 if probs is None else _number(probs, "probs", where)  # openCyto's gate_quantile default
    elif kind == "rectangle":
        lo, hi = take("min"), take("max")
        if lo is None and hi is None:
            raise TemplateError(f"{where}: boundary needs min=c(...) and/or max=c(...)")
        lows = lo if isinstance(lo, list) else [lo] * len(dims)
        highs = hi if isinstance(hi, list) else [hi] * len(dims)
        if len(lows) != len(dims) or len(highs) != len(dims):
            raise TemplateError(f"{where}: boundary min/max need one value per dim ({', '.join(dims)})")
        gate["bounds"] = {d: [_number(a, "min", where), _number(b, "max", where)]
                          for d, a, b in zip(dims, lows, highs)}
    elif kind == "cluster":
        gate["dims"] = list(dims)
        k = take("K", "k")
        gate["n_components"] = 2 if k is None else int(_number(k, "K", where))  # openCyto's default K = 2
        target = take("target")
        if target is not None:
            gate["select"] = "nearest"
            gate["location"] = [_number(v, "target", where) for v in
                                (target if isinstance(target, list) else [target])]
        else:
            gate["select"] = "largest"
        quantile = take("quantile", "level")
        gate["confidence"] = 0.9 if quantile is None else _number(quantile, "quantile", where)  # openCyto's 0.9
    elif kind == "singlet":
        if len(dims) != 2:
            raise TemplateError(f"{where}: singletGate needs two dims (area, height), got {', '.join(dims)}")
        gate["area"], gate["height"] = dims
    if kind in ("rectangle", "cluster", "singlet") and cells["pop"].strip() != "+":
        raise TemplateError(f"{where}: pop {cells['pop']!r} on a {method} region: only '+' (the events inside) is "
                            "read; for the events outside write the '+' row and a YAML boolean NOT of it")
    ignored = sorted(set(args) - used)
    if ignored:
        warnings.warn(f"{where}: {method} argument(s) {', '.join(ignored)} have no cytokit equivalent "
                      "and are ignored", UserWarning, stacklevel=4)
    return gate


def _on_the_unit_scale(gate: dict[str, Any], where: str) -> None:
    """With the default transforms every channel is gated on 0-1 (FSC linear to its top of scale,
    the rest logicle): a bound or target in channel units (openCyto's untransformed scatter,
    ``max=c(1e5, 1e5)``) would keep everything or pick another cluster, silently."""
    values = [*(gate.get("search_range") or []), *(gate.get("location") or []),
              *(v for bounds in (gate.get("bounds") or {}).values() for v in bounds)]
    odd = [v for v in values if v is not None and not -1.0 <= v <= 2.0]
    if odd:
        raise TemplateError(f"{where}: {gate['type']} value(s) {', '.join(f'{v:g}' for v in odd)} lie off the scale "
                            "it gates on: with the default transforms every channel is 0-1 (FSC linear to its top "
                            "of scale, the rest logicle); give values on that scale, or transforms ({} for "
                            "channel units)")


def _number(value, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TemplateError(f"{where}: {name} must be a number, got {value!r}")
    if value in (float("inf"), float("-inf")):
        return None
    return float(value)


__all__ = ["template_from_opencyto", "default_transforms", "METHODS"]
