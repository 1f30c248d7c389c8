"""The gates as fitted, as a FlowJo 10 workspace (``.wsp``): :func:`to_flowjo`.

One sample per analysed file, each with *its own* gates: every data-driven gate becomes the
static gate it learned on that file (from :attr:`Results.fitted <cytokit.results.Results>`,
rebuilt on the template's gate with the file's channels), with the file's transforms and
compensation, so FlowJo (or FlowKit's ``Workspace``) opens each file as cytokit gated it.

FlowJo stores gate coordinates as data values (compensated, untransformed) and draws them on
each parameter's transform; cytokit's gates live on the transformed scale, so every bound and
vertex is written as ``transform.inverse(value)``. What is written, and how:

====================================  =====================================================
cytokit                               FlowJo
====================================  =====================================================
range, rectangle (and the thresholds  ``RectangleGate`` (an open bound is left out)
and boundaries fitted to them)
polygon (singlet wedges ...)          ``PolygonGate``; a vertex beyond the scale's end (the
                                      half-planes of a 2-D ``peak_foot``) is clipped to a box
                                      around the file's events first
ellipse (``cluster``)                 ``PolygonGate`` of 256-65,536 vertices on the ellipse,
                                      checked to select exactly the ellipse's events of the
                                      file: FlowJo's own ellipse is kept in 256-bin display
                                      coordinates and read back as a polygon, never exact
boolean and / or / not                ``AndNode`` / ``OrNode`` / ``NotNode`` (dependents by
                                      path); an operand used as its complement has no FlowJo
                                      form: the population is left out, with a warning
skipped (optional, no channel)        ``OrNode`` of its parent: every parent event (at the
                                      root: a rectangle just around every event of the file);
                                      a boolean of a skipped population is skipped too
failed                                an empty ``RectangleGate`` (min = max), its reason in
                                      the population's ``annotation``
====================================  =====================================================

Transforms: linear, log, logicle, asinh (``fasinh``) and biex as FlowJo writes them;
not hyperlog: FlowJo's ``hyperlog`` element has no documented equivalence with Gating-ML's and
FlowKit's ``Workspace`` refuses any workspace holding one, so the gates on a hyperlog channel are
left out (a warning). FlowJo draws a parameter on one transform per sample, so the gates of a role
that puts a channel on a scale of its own (two roles on one channel with different transforms) are
left out too (a warning); the other role's gates are written. And
FlowJo's log puts values below its bottom (``T / 10**M``) at the bottom where cytokit's goes
below (a warning names the events). Compensation: the file's (``Acquisition-defined``) or the
template's matrix as the sample's ``spilloverMatrix``; compensated detectors are named
``Comp-<PnN>`` in gates and transforms, as FlowJo does. Samples are named by ``$FIL``, as FlowJo
names them and FlowKit's ``Workspace`` finds files (by file name when two files share one).
FlowKit's own exporter (1.3) writes one gate tree for every sample, the matrix only under
``Matrices`` (FlowKit's reader looks in each sample), neither ellipses nor booleans, and no log or
asinh, so the XML is written here (``docs/design.md``). Tested: FlowKit reproduces every
population count of both demo layouts, the FlowAtlas and the Activation sets
(``tests/test_flowjo_export.py``).
"""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

import numpy as np

from ._files import write_atomic
from ._flowjo_gates import (
    COMP_PREFIX,
    FLOWJO_TRANSFORMS,
    NSMAP,
    NoFlowJoForm,
    gate_element,
    gml,
    number,
    xml_d,
    xml_t,
)
from .errors import CytokitError

GROUP = "All Samples"


def to_flowjo(results, path: str | Path) -> Path:
    """Write the gates of every analysed file of ``results`` as a FlowJo 10 workspace at ``path``.

    Parameters
    ----------
    results
        :class:`~cytokit.results.Results` (or anything with its ``samples``, ``paths``, ``fitted``,
        ``gating`` and ``template_path``).
    path
        The ``.wsp`` file, written atomically. Its samples name the FCS files by absolute path.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    CytokitError
        A file's fitted values are missing (results of another template); an
        :class:`~cytokit.FCSError` when a file cannot be read again.

    Warns
    -----
    UserWarning
        Naming the file: populations left out (no FlowJo form, see the module docstring), events
        below a log scale's bottom (FlowJo puts them at its bottom, cytokit's log below it), events
        with NaN or ±inf (in no population of cytokit's), and files that share a ``$FIL`` name.
    """
    from lxml import etree

    from .gating.load import load_template

    template = load_template(results.template_path, panel=getattr(results, "panel_path", "") or None)
    done = results.samples[results.samples["status"] != "error"]
    files = [f for f in done["file"] if f in results.fitted and f in results.gating]
    root = etree.Element("Workspace", nsmap=NSMAP)
    root.set("version", "20.0")
    root.set("modDate", datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y"))
    root.set("flowJoVersion", "10.7.1")
    root.set("curGroup", GROUP)
    etree.SubElement(root, "Matrices")
    group_node = etree.SubElement(etree.SubElement(root, "Groups"), "GroupNode",
                                  name=GROUP, annotation="", owningGroup=GROUP)
    refs = etree.SubElement(etree.SubElement(group_node, "Group", name=GROUP), "SampleRefs")
    samples = etree.SubElement(root, "SampleList")
    names = _sample_names(results, files)
    for index, file in enumerate(files, start=1):
        etree.SubElement(refs, "SampleRef", sampleID=str(index))
        samples.append(_sample_element(template, file, results, str(index), names[file]))
    data = etree.tostring(etree.ElementTree(root), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return write_atomic(Path(path), data)


def _sample_names(results, files: list[str]) -> dict[str, str]:
    """Each file's sample name: its ``$FIL``, as FlowJo names samples (and FlowKit's ``Workspace``
    finds the files by it), or the file name without one; file names for all when two share one."""
    from .fcs import FCSWarning, read_keywords

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FCSWarning)
        names = {f: read_keywords(results.paths[f]).get("$FIL", "").strip() or f for f in files}
    if len(set(names.values())) < len(names):
        warnings.warn("files share a $FIL name, so the workspace names its samples by file name: read it "
                      "with flowkit.Workspace(..., filename_as_id=True)", stacklevel=3)
        return {f: f for f in files}
    return names


# ---- one file: its static gates ----------------------------------------------------------------


class _File:
    """One file as its run saw it: compensated events, the channel of each role, transforms."""

    def __init__(self, template, file: str, results) -> None:
        from .compensation import compensate, validate_spillover
        from .gating.apply import _dimensions, _spillover

        self.name, self.path = file, Path(results.paths[file]).resolve()
        self.sample = _read(self.path)
        self.channels = {role: pnn for role, pnn, _ in results.gating[file]["channels"]}
        spillover, self.comp_source = _spillover(template, self.sample)
        self.spillover = None if spillover is None else validate_spillover(spillover)  # rows as columns
        self.events = self.sample.events if spillover is None else compensate(self.sample.events, spillover)
        self.dims, self.transforms = _dimensions(template, self.sample, self.channels)
        # a role on a channel another role puts on another scale: FlowJo has one scale per parameter
        self.derived = {d: self.channels[r] for r, d in self.dims.items() if d != self.channels[r]}
        self.detectors = set() if self.spillover is None else {str(c) for c in self.spillover.columns}
        used = list(dict.fromkeys(self.channels.values()))
        nonfinite = int((~np.isfinite(self.events[used].to_numpy(dtype=np.float64))).any(axis=1).sum())
        if nonfinite:
            warnings.warn(f"{file}: {nonfinite} events with NaN or ±inf are in no population of cytokit's, "
                          "but FlowJo gates them by their finite values: counts may differ", stacklevel=4)

    def dim_name(self, pnn: str) -> str:
        """The parameter's name in FlowJo: ``Comp-`` before compensated detectors; FlowJo writes
        ``_`` for ``/``."""
        return (COMP_PREFIX + pnn if pnn in self.detectors else pnn).replace("/", "_")

    def scaled(self, pnn: str) -> np.ndarray:
        """Every event of channel ``pnn`` on the gating scale."""
        values = self.events[pnn].to_numpy(dtype=np.float64)
        transform = self.transforms.get(pnn)
        return values if transform is None else transform.apply(values)

    def raw(self, pnn: str, values) -> np.ndarray:
        """Gating-scale ``values`` of ``pnn`` as data values (what FlowJo stores); NaN where a value
        has none that transforms back to it (beyond the scale's end: overflow, biex's table)."""
        transform = self.transforms.get(pnn)
        values = np.asarray(values, dtype=np.float64)
        if transform is None:
            return values
        with np.errstate(over="ignore", invalid="ignore"):
            raw = np.asarray(transform.inverse(values), dtype=np.float64)
            back = np.asarray(transform.apply(raw), dtype=np.float64)
        exact = np.isfinite(raw) & (np.abs(back - values) <= 1e-9 * (1 + np.abs(values)))
        return np.where(exact, raw, np.nan)


def _read(path: Path):
    from .fcs import FCSWarning, read_fcs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FCSWarning)
        return read_fcs(path)


def _static_tree(template, fcs: _File, learned: dict) -> list[tuple[str, str, str, object]]:
    """``(path, parent path, kind, gate or reason)`` in template order; ``kind`` is ``gate``,
    ``skipped`` or ``failed``."""
    from .gating._schema import _gate_roles
    from .gating.apply import _build_gate

    tree, skipped = [], set()
    for pop in template.populations:
        path = template.path_of(pop.name)
        parent = template.path_of(pop.parent) if pop.parent != "root" else "root"
        missing = [r for r in _gate_roles(pop.gate) if r not in fcs.channels]
        operands = [o for o in pop.gate.get("operands", []) if o in skipped] if pop.gate["type"] == "boolean" else []
        if missing or operands:  # a boolean of a skipped population is skipped too (gating.apply)
            reason = (f"skipped: the file has no channel for role(s) {', '.join(missing)}" if missing
                      else f"skipped: operand(s) {', '.join(operands)} skipped")
            tree.append((path, parent, "skipped", reason))
            skipped.add(pop.name)
            continue
        gate = _build_gate(template, pop, fcs.dims)
        if hasattr(gate, "fit"):
            if path not in learned:
                raise CytokitError(f"{fcs.name}: no fitted values of population {path} in the results; "
                                   "were they made with this template?")
            gate.__dict__.update(learned[path])
            if gate.failed_:
                tree.append((path, parent, "failed", (gate, f"gate failed: {gate.failed_}")))
                continue
            gate = gate.to_static()
        tree.append((path, parent, "gate", gate))
    return tree


# ---- the XML of one sample ---------------------------------------------------------------------


def _sample_element(template, file: str, results, sample_id: str, sample_name: str):
    from lxml import etree

    fcs = _File(template, file, results)
    sample = etree.Element("Sample")
    etree.SubElement(sample, "DataSet", uri=fcs.path.as_uri(), sampleID=sample_id)
    if fcs.spillover is not None:
        _matrix_element(sample, fcs)
    transforms = etree.SubElement(sample, "Transformations")
    for pnn, transform in fcs.transforms.items():
        if pnn in fcs.derived or transform.kind not in FLOWJO_TRANSFORMS:
            continue  # the gates on it are left out (gate_element says why)
        for name in dict.fromkeys((pnn.replace("/", "_"), fcs.dim_name(pnn))):
            _transform_element(transforms, transform, name)
        if transform.kind == "log":
            below = int((fcs.events[pnn].to_numpy() < transform.t / 10.0 ** transform.m).sum())
            if below:
                warnings.warn(f"{file}: {below} events of {pnn} lie below the log scale's bottom "
                              f"({transform.t / 10.0 ** transform.m:g}); FlowJo puts them at the bottom, "
                              "cytokit's log below it, so gates near the bottom may differ", stacklevel=3)
    keywords = etree.SubElement(sample, "Keywords")
    for key, value in fcs.sample.keywords.items():
        etree.SubElement(keywords, "Keyword", name=_xml_text(key), value=_xml_text(value))
    node = etree.SubElement(sample, "SampleNode", name=sample_name, annotation="", owningGroup="",
                            sampleID=sample_id, count=str(len(fcs.events)))
    _write_tree(etree.SubElement(node, "Subpopulations"), fcs, _static_tree(template, fcs, results.fitted[file]),
                sample_id)
    return sample


def _xml_text(value) -> str:
    """``value`` without the characters XML 1.0 cannot hold (FCS TEXT may have control bytes)."""
    return "".join(c for c in str(value) if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
                   or c >= "\U00010000")


def _matrix_element(parent, fcs: _File) -> None:
    from lxml import etree

    name = "Acquisition-defined" if fcs.comp_source == "file" else str(fcs.comp_source)
    matrix = etree.SubElement(parent, xml_t("spilloverMatrix"), spectral="0", prefix=COMP_PREFIX, name=name,
                              editable="0", version="FlowJo-10.7.1", status="FINALIZED", suffix="")
    matrix.set(xml_t("id"), f"cytokit-{name}")
    detectors = [str(c) for c in fcs.spillover.columns]
    params = etree.SubElement(matrix, xml_d("parameters"))
    for detector in detectors:
        etree.SubElement(params, xml_d("parameter"), {xml_d("name"): detector.replace("/", "_"),
                                                   "userProvidedCompInfix": fcs.dim_name(detector)})
    values = fcs.spillover.to_numpy(dtype=np.float64)
    for i, source in enumerate(detectors):  # rows aligned to the detectors: row i spills from detector i
        row = etree.SubElement(matrix, xml_t("spillover"), {xml_d("parameter"): source.replace("/", "_"),
                                                         "userProvidedCompInfix": fcs.dim_name(source)})
        for j, detector in enumerate(detectors):
            etree.SubElement(row, xml_t("coefficient"), {xml_d("parameter"): detector.replace("/", "_"),
                                                      xml_t("value"): number(values[i, j])})


def _transform_element(parent, transform, name: str) -> None:
    from lxml import etree

    kind, p = transform.kind, transform.params
    if kind == "linear":  # FlowJo's range is [minRange, maxRange]; cytokit's linear maps [-a, t] to [0, 1]
        attrs = {"minRange": -p["a"], "maxRange": p["t"]}
    elif kind == "log":  # log10(x / t) / m + 1 is FlowJo's (log10 x - log10 offset) / decades
        attrs = {"offset": p["t"] / 10.0 ** p["m"], "decades": p["m"]}
    elif kind == "logicle":
        attrs = {"length": 256, "T": p["t"], "W": p["w"], "M": p["m"], "A": p["a"]}
    elif kind == "asinh":
        kind, attrs = "fasinh", {"length": 256, "maxRange": p["t"], "T": p["t"], "M": p["m"], "A": p["a"], "W": 0}
    elif kind == "biex":
        attrs = {"length": 256, "maxRange": p["t"], "neg": p["negative"], "width": p["width"], "pos": p["positive"]}
    else:
        raise ValueError(f"the {kind} transform is not written to FlowJo")
    element = etree.SubElement(parent, xml_t(kind), {xml_t(k): str(v) if isinstance(v, int) else number(v)
                                                   for k, v in attrs.items()})
    if kind == "linear":
        element.set("gain", "1")  # FlowJo's own attribute, outside the Gating-ML namespace
    etree.SubElement(element, xml_d("parameter"), {xml_d("name"): name})


def _write_tree(top, fcs: _File, tree, sample_id: str) -> None:
    """Every population under its parent's ``Subpopulations``; those FlowJo cannot hold (and their
    descendants) are left out with one warning per file."""
    from lxml import etree

    holders = {"root": top}
    left_out: list[str] = []
    for index, (path, parent, kind, gate) in enumerate(tree, start=1):
        if parent not in holders:
            continue  # below a population left out
        try:
            element = _population(holders[parent], fcs, path, parent, kind, gate, f"ID{sample_id}{index:04d}", holders)
        except NoFlowJoForm as reason:
            left_out.append(f"{path} ({reason})")
            continue
        holders[path] = etree.SubElement(element, "Subpopulations")
    for element in list(holders.values()):
        if len(element) == 0 and element is not top:
            element.getparent().remove(element)
    if left_out:
        warnings.warn(f"{fcs.name}: left out of the FlowJo workspace, with the populations below them: "
                      f"{'; '.join(left_out)}", stacklevel=4)


def _population(parent_el, fcs: _File, path, parent, kind, gate, gate_id, holders):
    from lxml import etree

    from .gating.boolean import BooleanGate

    name = path.rsplit("/", 1)[-1]
    if kind == "skipped" and parent == "root":  # no parent to pass through: a box around every event
        kind, gate = "every", (_every_event(fcs), gate)
    if kind == "skipped" or isinstance(gate, BooleanGate):
        if kind == "skipped":
            op, operands, note = "or", [parent], gate
        else:
            if gate.complement:
                raise NoFlowJoForm("FlowJo's boolean gates have no operand used as its complement")
            op, note = gate.op, ""
            operands = [_operand_path(o, holders) for o in gate.operands]
        element = etree.SubElement(parent_el, {"and": "AndNode", "or": "OrNode", "not": "NotNode"}[op],
                                   name=name, annotation=note, owningGroup="")
        dependents = etree.SubElement(element, "Dependents")
        for operand in operands:
            etree.SubElement(dependents, "Dependent", name=operand)
        return element
    note = ""
    if kind in ("failed", "every"):
        gate, note = gate
    geometry = gate_element(fcs, gate, empty=kind == "failed")
    element = etree.SubElement(parent_el, "Population", name=name, annotation=note, owningGroup="")
    wrapper = etree.SubElement(element, "Gate", {gml("id"): gate_id})
    parent_id = holders[parent].getparent().find("Gate") if parent != "root" else None
    if parent_id is not None:
        wrapper.set(gml("parent_id"), parent_id.get(gml("id")))
    wrapper.append(geometry)
    return element


def _every_event(fcs: _File):
    """A rectangle holding every event of the file that is finite in its roles' channels (the events
    cytokit gates): each channel from just below its lowest event to just above its highest."""
    from .gating.gates import RectangleGate

    bounds = {}
    for pnn in dict.fromkeys(fcs.channels.values()):
        transform = fcs.transforms.get(pnn)
        if transform is not None and transform.kind not in FLOWJO_TRANSFORMS:
            continue
        values = fcs.scaled(pnn)
        values = values[np.isfinite(values)]
        if len(values):
            lo, hi = values.min(), values.max()
            margin = 1e-6 * (hi - lo) + 1e-9 * (1 + abs(lo) + abs(hi))
            if np.isfinite(fcs.raw(pnn, [lo - margin, hi + margin])).all():
                bounds[pnn] = (lo - margin, hi + margin)
    if not bounds:
        raise NoFlowJoForm("skipped at the root, and no channel holds every event on its scale")
    return RectangleGate(bounds)


def _operand_path(operand: str, holders) -> str:
    """The path of a boolean operand (a population name, unique in a template) among those written."""
    matches = [p for p in holders if p != "root" and p.rsplit("/", 1)[-1] == operand]
    if not matches:
        raise NoFlowJoForm(f"its operand {operand} is not in the workspace")
    return matches[0]


__all__ = ["to_flowjo"]
