"""Gates fitted once on the pooled events of several files (a population's ``pool: true``).

A population can be nearly absent in one file (naive T cells in a gut biopsy) and plain in
another (blood): its valley is then found in the pooled events and the same cut applied to
every file, as a person copies one gate across a FlowJo group (openCyto's
``collapseDataForGating``). :func:`fit_pooled` gates each file down to the pooled
population's parent, takes at most :data:`MAX_EVENTS_PER_FILE` of the events the gate learns
from (the parent's, or ``fit_on``'s), deterministically, so that one large file does not
outweigh the rest, fits the gate on them all, and goes on to the next pooled population with
the pooled fits above it fixed. The fits are on each file's gating scale: files of one
instrument and ``t: auto`` share it.

``Template.apply(sample, pooled=fits)`` then uses the fitted gates as they are; ``cytokit
compare`` pools the files it compares, ``cytokit run`` every readable file of the run
(:meth:`Experiment.fit_pooled <cytokit.experiment.Experiment.fit_pooled>`; the fits go to every
worker and into the cache key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..sample import Sample

#: most events a file adds to a pooled fit (a deterministic subsample of the rest)
MAX_EVENTS_PER_FILE = 10_000
#: most events a pooled fit takes from all files together (1,000 files: 1,000 each)
MAX_POOLED_EVENTS = 1_000_000


def pooled_populations(template) -> list:
    """The template's ``pool: true`` populations, in template order."""
    return [p for p in template.populations if getattr(p, "pool", False)]


def fit_pooled(template, samples: Sequence[Sample | str | Path], *,
               controls: Callable[[Sample, dict], object] | None = None,
               on_error: Callable[[object, Exception], None] | None = None) -> dict:
    """Fit the template's pooled gates on ``samples`` (samples or FCS paths, read as needed).

    Returns ``{population path: fitted gate}`` for :meth:`Template.apply`'s ``pooled``.
    ``controls(sample, channels)`` gives a sample's matched control result (for
    ``control_threshold`` gates above a pooled one); ``on_error(sample, exc)`` is told of a
    file that cannot be gated (it is left out of the pool; default: the error is raised).
    A gate's ``n_pooled_files_`` says how many files it was fitted on.

    Each file is read and gated once per *pass*: a pass fits every pending pooled gate whose
    events (its parent's, or ``fit_on``'s) are gated before the first pending one, so pooled
    gates that do not depend on each other (FlowAtlas's nine memory gates) share one pass.
    Each file adds at most :data:`MAX_EVENTS_PER_FILE` events per gate, fewer in large batches
    (:data:`MAX_POOLED_EVENTS` per gate in all).
    """
    from ..errors import CytokitError
    from .apply import _build_gate

    order = {template.path_of(p.name): i for i, p in enumerate(template.populations)}
    cap = max(100, min(MAX_EVENTS_PER_FILE, MAX_POOLED_EVENTS // max(1, len(samples))))
    fits: dict = {}
    pending = pooled_populations(template)
    while pending:
        stop = template.path_of(pending[0].name)
        ready = [p for p in pending if order.get(_source(template, p), -1) < order[stop]]
        by_path = {template.path_of(p.name): p for p in ready}
        frames: dict[str, list] = {path: [] for path in by_path}
        first: dict[str, dict] = {}
        names: dict[str, list[str]] = {}  # the columns of the first file with the gate's channels
        scales: dict[str, list] = {path: [] for path in by_path}  # (the gate's channels' scales, file)
        for item in samples:
            try:
                parts = _learning_events(template, item, stop, ready, fits, controls, cap)
            except CytokitError as exc:
                if on_error is None:
                    raise
                on_error(item, exc)
                continue
            for path, (frame, dims, amplification) in parts.items():
                if len(scales[path]) < 2 and not (scales[path] and _same_scales(scales[path][0][0], amplification)):
                    scales[path].append((amplification, frame.attrs["file"]))
                if path not in first:
                    first[path] = dims
                    names[path] = list(_build_gate(template, by_path[path], dims).dims)
                frames[path].append(frame.set_axis(names[path], axis=1))
        for path, pop in by_path.items():
            if path in first:  # else no file has the gate's channels (an optional population)
                fits[path] = _fit(_build_gate(template, pop, first[path]), frames[path], scales[path])
        pending = [p for p in pending if p not in ready]
    return fits


def _source(template, pop) -> str:
    """The path of the population whose events ``pop``'s gate learns from ("" for the root)."""
    name = pop.fit_on or (pop.parent if pop.parent != "root" else None)
    return template.path_of(name) if name else ""


def _fit(gate, frames: list[pd.DataFrame], scales: list):
    gate.fit(pd.concat(frames, ignore_index=True))
    gate.n_pooled_files_ = len(frames)
    if gate.failed_:
        gate.failed_ = f"{gate.failed_} (fitted on {len(frames)} files pooled)"
    elif gate.warning_:
        gate.warning_ = f"{gate.warning_} (fitted on {len(frames)} files pooled)"
    gate.mixed_scales_ = None
    if len(scales) > 1 and not gate.failed_:  # one cut on events of different scales fits none of them
        (a, file_a), (b, file_b) = scales
        differ = "; ".join(f"{x[0]}: {_amplified(x)} in {file_a}, {_amplified(y)} in {file_b}"
                           for x, y in zip(a, b) if not _same_scales([x], [y]))
        gate.mixed_scales_ = (f"pooled files record the gate's channels on different scales ({differ}): "
                              "one gate does not fit them all")
        gate.warning_ = "; ".join(filter(None, [gate.warning_, gate.mixed_scales_]))
    return gate


def _same_scales(a, b) -> bool:
    """Whether two files record the same channels ``(pnn, $PnE decades, $PnR of integer data)`` on
    one scale: as many decades, and linear ranges within 2× where both are known (a 10-bit 1,024 and
    an 18-bit 262,144 are not; float files and samples built in memory often have their events'
    maximum as $PnR, no scale)."""
    return all(x[1] == y[1] and (x[1] or None in (x[2], y[2]) or max(x[2], y[2]) <= 2 * max(min(x[2], y[2]), 1))
               for x, y in zip(a, b))


def _amplified(channel: tuple) -> str:
    """How a channel ``(pnn, decades, range)`` was recorded, as a person reads it off $PnE and $PnR."""
    _, decades, top = channel
    return f"log-amplified over {decades:g} decades" if decades else "linear" + (f" to {top:g}" if top else "")


def _learning_events(template, item, stop: str, pops: list, fits: dict, controls, cap: int) -> dict:
    """One file's events for the pooled fits of ``pops`` (each subsampled to ``cap``), gated down
    to ``stop``: ``{population path: (frame, role → dimension, the gate's channels' (name, $PnE
    decades, $PnR))}``, leaving out the populations
    whose gate has a role the file lacks."""
    from ..fcs import read_fcs
    from ._schema import _gate_roles
    from .apply import _build_gate, gate_sample

    sample = item if isinstance(item, Sample) else read_fcs(item)
    channels = template.resolve_channels(sample)
    pops = [p for p in pops if all(r in channels for r in _gate_roles(p.gate))]
    if not pops:
        return {}
    control = controls(sample, channels) if controls is not None else None
    result = gate_sample(template, sample, control=control, channels=channels, pooled=fits, stop_at=stop)
    out = {}
    info = sample.channels.set_index("pnn")
    integer = sample.keywords.get("$DATATYPE", "").strip().upper() == "I"  # $PnR: the ADC's resolution
    for pop in pops:
        source = _source(template, pop)
        if not source:
            mask = np.ones(len(result.scale), dtype=bool) if result.finite is None else result.finite
        else:
            mask = result.membership[source]
        rows = np.flatnonzero(mask)
        if len(rows) > cap:
            rows = np.sort(np.random.default_rng(0).choice(rows, cap, replace=False))
        columns = _build_gate(template, pop, result.dims).dims
        frame = result._frame(columns, rows)
        frame.attrs["file"] = Path(sample.path).name if sample.path else "a sample in memory"
        pnns = [result.channel_of(c) for c in columns]
        amplification = tuple((c, float(info.at[c, "decades"]), float(info.at[c, "range"]) if integer else None)
                              for c in pnns if c in info.index)
        out[template.path_of(pop.name)] = (frame, result.dims, amplification)
    return out


__all__ = ["MAX_EVENTS_PER_FILE", "MAX_POOLED_EVENTS", "fit_pooled", "pooled_populations"]
