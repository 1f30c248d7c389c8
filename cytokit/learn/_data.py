"""The training data of :func:`cytokit.learn_template`: roles, transforms and events.

Channels are matched across the training files by ``$PnS`` where a file names the channel's
marker (a marker on another detector in another panel is still the marker), else by
``$PnN``; the Time channel is left out. A training file that names no marker at all, with the
very channels of the files that do, takes their markers on the detectors they carry them on. Roles get the marker and every
detector the training files used for it, so a file without ``$PnS`` falls back on the detector. Scatter
channels (``$PnN`` starting with FSC or SSC) are on a linear scale up to their top of scale,
everything else on logicle (``t: auto, w: 0.5, m: 4.5``): the scales people gate on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MetadataError
from ..manual import Gating, ManualSource
from ..quality import is_time as _is_time
from ..sample import Sample

LINEAR = {"kind": "linear", "t": "auto"}
LOGICLE = {"kind": "logicle", "t": "auto", "w": 0.5, "m": 4.5, "a": 0}


@dataclass
class Channels:
    """The roles of the learned template: ``name → (marker or None, [$PnN, ...])`` and their scales."""

    roles: dict[str, tuple[str | None, list[str]]]
    linear: set[str]
    compensation: str | dict  # file, none, or the manual gating's own matrix (a template's inline one)
    notes: list[str] = field(default_factory=list)  # how channels were matched, for the template's header
    dropped: dict[str, list[str]] = field(default_factory=dict)  # a marker (or $PnN) only some files carry: them

    def spec(self, used: list[str] | None = None) -> tuple[dict, dict]:
        """``(channels, transforms)`` mappings of a template, for the roles in ``used`` (default: all)."""
        names = [r for r in self.roles if used is None or r in used]
        channels = {}
        for name in names:
            marker, pnn = self.roles[name]
            channels[name] = {"marker": marker, "pnn": pnn} if marker else {"pnn": pnn}
        transforms = {name: dict(LINEAR) for name in names if name in self.linear}
        transforms["default"] = dict(LOGICLE)
        return channels, transforms


@dataclass
class TrainingFile:
    """One manually gated training file on the learned scales."""

    name: str
    values: np.ndarray  # events × roles, transformed; NaN where not finite
    gating: Gating
    roles: dict[str, str] = field(default_factory=dict)  # this file's $PnN -> role
    scales: dict = field(default_factory=dict)  # role -> its transform (channel values -> learned scale)
    pnn: frozenset = frozenset()  # this file's channels
    markers: dict = field(default_factory=dict)  # this file's $PnN -> $PnS

    def unshared(self, path: str) -> list[str]:
        """The channels (Time aside) the person's gate of ``path`` is drawn on here that are no
        learned role: not in every training file, or there under another marker name."""
        roles = self.gate_roles(path) or ()
        return [d for d, r in zip(self.gating.dims.get(path, ()), roles) if r is None and not _is_time(d)]

    def gate_roles(self, path: str) -> tuple[str | None, ...] | None:
        """The roles of the channels the person's gate of ``path`` is drawn on, in its order (None
        for a channel of the file that is no role: Time, or not in every training file); None: not
        known, or drawn on something that is not a channel of the file (a compensation matrix's
        fluorochrome, a ratio)."""
        dims = self.gating.dims.get(path)
        if not dims or not all(d in self.pnn for d in dims):
            return None
        return tuple(self.roles.get(d) for d in dims)

    def drawn(self, path: str, on: tuple[str, ...], compensated: bool) -> dict | None:
        """The person's gate of ``path`` on the roles ``on`` and the learned scale
        (:class:`~cytokit.manual.Gating`'s ``drawn``: ``limits`` per dimension or ``vertices``), or
        None where the source has none, or it was drawn on values compensated otherwise than the
        learned template's (``compensated``). A rectangle is read on any of its dimensions (its
        bounds there), a polygon only on both."""
        region, roles = self.gating.drawn.get(path), self.gate_roles(path)
        if region is None or roles is None or not set(on) <= set(roles) - {None}:
            return None
        if region.get("compensated", compensated) != compensated:
            return None
        index = [roles.index(r) for r in on]
        if "limits" in region:
            limits = [[None if v is None else float(self.scales[r].apply(np.array([v]))[0])
                       for v in region["limits"][i]] for r, i in zip(on, index)]
            ok = all(np.isfinite([v for v in lim if v is not None]).all() and (None in lim or lim[0] < lim[1])
                     for lim in limits)
            return {"limits": limits} if ok else None
        if len(on) != len(roles):
            return None
        vertices = np.asarray(region["vertices"], dtype=float)
        vertices = np.column_stack([self.scales[r].apply(vertices[:, i]) for r, i in zip(on, index)])
        return {"vertices": vertices} if np.isfinite(vertices).all() else None  # a log of a negative bound: none

    def rows(self, path: str) -> np.ndarray:
        """Indices of the (finite) events of ``path``'s parent."""
        mask = self.gating.parent_mask(path) & np.isfinite(self.values).all(axis=1)
        return np.flatnonzero(mask)


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "channel"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def common_channels(samples: list[Sample]) -> Channels:
    """The channels every training sample has (see the module docstring).

    Raises
    ------
    MetadataError
        The training files share no channel.
    """
    keyed = []  # per sample: key ($PnS, else $PnN) -> ($PnN, whether the key is a $PnS)
    for sample in samples:
        keys: dict[str, tuple[str, bool]] = {}
        for pnn, pns in zip(sample.channels.pnn, sample.channels.pns):
            if not _is_time(pnn):
                pns = str(pns).strip()
                keys.setdefault(pns or pnn, (pnn, bool(pns)))
        keyed.append(keys)
    notes = _by_detector(samples, keyed)
    shared = [k for k in keyed[0] if all(k in keys for keys in keyed[1:])]
    if not shared:
        names = {False: [], True: []}  # whether a file names any marker ($PnS): file names
        for sample, keys in zip(samples, keyed):
            names[any(is_pns for _, is_pns in keys.values())].append(sample.path.name if sample.path else "?")
        hint = (f"; {', '.join(names[False])} name{'s' if len(names[False]) == 1 else ''} no marker ($PnS) and "
                f"{', '.join(names[True])} do{'es' if len(names[True]) == 1 else ''}: give a panel sheet (--panel) "
                "saying which marker each detector carries" if all(names.values()) else "")
        raise MetadataError(f"the training files share no channel (by $PnS, or by $PnN where a file has none){hint}")
    taken: set[str] = set()
    roles, linear = {}, set()
    for key in shared:
        pnn = list(dict.fromkeys(keys[key][0] for keys in keyed))
        name = _slug(key, taken)
        roles[name] = (key if any(keys[key][1] for keys in keyed) else None, pnn)
        if re.match(r"(?i)^[FS]SC", pnn[0]):
            linear.add(name)
    compensation = "file" if all(s.spillover is not None for s in samples) else "none"
    names = [sample.path.name if sample.path else "?" for sample in samples]
    dropped = {key: [n for n, keys in zip(names, keyed) if key in keys]
               for key in dict.fromkeys(k for keys in keyed for k in keys) if key not in shared}
    return Channels(roles, linear, compensation, notes, dropped)


def _by_detector(samples: list[Sample], keyed: list[dict[str, tuple[str, bool]]]) -> list[str]:
    """A file that names no marker at all (no ``$PnS``) and has the very channels (``$PnN``) of every
    file that does, the same panel as far as the files tell, takes each of their markers on the
    detector they all carry it on (as FlowJo applies gates by ``$PnN``). A file with other channels
    is not matched: FlowAtlas's panels put CD4 and CD45 on each other's detector, and only one of
    them has a channel the other lacks. Adds the keys to ``keyed`` in place; returns a note per file."""
    named = [keys for keys in keyed if any(is_pns for _, is_pns in keys.values())]
    notes = []
    for sample, keys in zip(samples, keyed):
        detectors = {pnn for pnn, _ in keys.values()}
        if not named or any(is_pns for _, is_pns in keys.values()) or any(
                {pnn for pnn, _ in other.values()} != detectors for other in named):
            continue
        matched = []
        for marker, (pnn, is_pns) in named[0].items():
            if is_pns and pnn in detectors and all(other.get(marker, ("", False)) == (pnn, True) for other in named):
                keys.setdefault(marker, (pnn, False))
                matched.append(f"{marker} on {pnn}")
        if matched:
            notes.append(f"{sample.path.name if sample.path else 'a training file'} names no marker ($PnS): "
                         f"matched by detector to the other files' markers ({', '.join(matched)}); give a "
                         "panel sheet (--panel) if its panel differs")
    return notes


def skeleton(channels: Channels):
    """A template with every role and transform and one population of all events (to read scales)."""
    import yaml

    from ..gating.template import Template, parse_template

    spec_channels, transforms = channels.spec()
    first = next(iter(spec_channels))
    text = yaml.safe_dump({
        "channels": spec_channels, "compensation": channels.compensation, "transforms": transforms,
        "populations": [{"name": "all", "parent": "root", "gate": {"type": "range", "dim": first, "min": -1e300}}],
    }, sort_keys=False)
    template: Template = parse_template(text, source="<learned channels>")
    return template


def training_files(files: list[Path], samples: list[Sample], source: ManualSource,
                   channels: Channels) -> list[TrainingFile]:
    """Each training file's events on the learned scales, with its manual gating."""
    template = skeleton(channels)
    out = []
    for path, sample in zip(files, samples):
        result = template.apply(sample)
        values = np.column_stack([result.transformed(result.dimension(r)) for r in channels.roles]).astype(float)
        roles = {result.channels[r]: r for r in channels.roles}
        scales = {r: result.transforms[result.dimension(r)] for r in channels.roles}
        out.append(TrainingFile(path.name, values, source.gating(path, sample), roles, scales,
                                frozenset(sample.channels.pnn),
                                {pnn: str(pns).strip() for pnn, pns in zip(sample.channels.pnn, sample.channels.pns)}))
    return out


def unshared_note(train: list[TrainingFile], path: str) -> tuple[str | None, str]:
    """The channels the person drew ``path`` on that are no learned role, with their marker in each
    training file (a CD19 x CD8 gate where one file lacks CD19 is learned on CD8 alone, or not at
    all), and the Time channel (a Time x FSC-A gate is learned on FSC-A, said so); None when nothing
    is missing. Second: what to do about it, where anything can be done ("" for Time)."""
    drawn = [tf for tf in train if path in tf.gating.membership]
    missing = list(dict.fromkeys(d for tf in drawn for d in tf.unshared(path)))
    times = list(dict.fromkeys(d for tf in drawn for d in tf.gating.dims.get(path, ()) if _is_time(d)))
    notes = []
    if missing:
        where = "; ".join(f"{d}: " + ", ".join(f"{tf.name} {repr(tf.markers[d]) if tf.markers.get(d) else 'no marker'}"
                                                if d in tf.pnn else f"{tf.name} lacks it" for tf in train)
                          for d in missing)
        notes.append(f"{', '.join(missing)}, not a channel of every training file under one marker name ({where})")
    if times:  # a window of acquisition time (a clog, the start) is each file's own: not carried to other files
        notes.append(f"{', '.join(times)} (a time window is each acquisition's own)")
    advice = "train on files that all carry it, or give a panel sheet (--panel) naming its marker alike"
    return "; ".join(notes) or None, advice if missing else ""


def dropped_note(channels: Channels, train: list[TrainingFile], path: str) -> str:
    """The markers every training file with population ``path`` carries but some other training file
    lacks, which learn could not try (its roles are the channels of every training file), or ``""``: a
    B-cell gate learned from .npz memberships on CD25 at F1 0.45, CD19 being in one file only."""
    having = {tf.name for tf in train if path in tf.gating.membership and tf.gating.membership[path].any()}
    keys = [k for k, files in channels.dropped.items() if having and having <= set(files)]
    if not keys:
        return ""
    shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
    return (f"not tried: {shown}, which the training files with this population carry and "
            f"{', '.join(sorted({tf.name for tf in train} - set().union(*(channels.dropped[k] for k in keys))))} "
            "lack(s); train on files that all carry them")


def hierarchy(train: list[TrainingFile]) -> list[tuple[str, str]]:
    """``[(path, parent path)]`` over the training files' manual populations, parents first."""
    parents: dict[str, str] = {}
    for tf in train:
        for path in tf.gating.membership:
            parents.setdefault(path, tf.gating.parents.get(path, ""))
    order: list[str] = []

    def visit(path: str, seen: tuple = ()) -> None:
        if path in order or path in seen:
            return
        parent = parents.get(path, "")
        if parent:
            visit(parent, (*seen, path))
        order.append(path)

    for path in parents:
        visit(path)
    return [(p, parents.get(p, "")) for p in order if p in parents]


__all__ = ["Channels", "TrainingFile", "common_channels", "hierarchy", "skeleton", "training_files"]
