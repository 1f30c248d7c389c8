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
compare`` pools the files it compares, ``cytokit run`` every file of the run (it writes the
fitted gates into ``OUT/pooled_template.yaml`` and runs that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..sample import Sample

#: most events a file adds to a pooled fit (a deterministic subsample of the rest)
MAX_EVENTS_PER_FILE = 10_000


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
    """
    from ..errors import CytokitError
    from .apply import _build_gate

    fits: dict = {}
    for pop in pooled_populations(template):
        path = template.path_of(pop.name)
        frames, first = [], None
        for item in samples:
            try:
                frame, dims = _learning_events(template, item, path, pop, fits, controls)
            except CytokitError as exc:
                if on_error is None:
                    raise
                on_error(item, exc)
                continue
            if frame is None:  # the file has no channel for the gate (an optional population)
                continue
            if first is None:
                first = dims
            frames.append(frame.set_axis(list(_build_gate(template, pop, first).dims), axis=1))
        if first is None:
            continue
        gate = _build_gate(template, pop, first)
        gate.fit(pd.concat(frames, ignore_index=True))
        gate.n_pooled_files_ = len(frames)
        if gate.failed_:
            gate.failed_ = f"{gate.failed_} (fitted on {len(frames)} files pooled)"
        elif gate.warning_:
            gate.warning_ = f"{gate.warning_} (fitted on {len(frames)} files pooled)"
        fits[path] = gate
    return fits


def _learning_events(template, item, path: str, pop, fits: dict, controls):
    """One file's events for the pooled fit of ``pop`` (subsampled), and its role → dimension map."""
    from ..fcs import read_fcs
    from ._schema import _gate_roles
    from .apply import _build_gate, gate_sample

    sample = item if isinstance(item, Sample) else read_fcs(item)
    channels = template.resolve_channels(sample)
    if any(r not in channels for r in _gate_roles(pop.gate)):
        return None, None
    control = controls(sample, channels) if controls is not None else None
    result = gate_sample(template, sample, control=control, channels=channels, pooled=fits, stop_at=path)
    source = pop.fit_on or (pop.parent if pop.parent != "root" else None)
    if source is None:
        mask = np.ones(len(result.scale), dtype=bool) if result.finite is None else result.finite
    else:
        mask = result.membership[template.path_of(source)]
    rows = np.flatnonzero(mask)
    if len(rows) > MAX_EVENTS_PER_FILE:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_EVENTS_PER_FILE, replace=False))
    return result._frame(_build_gate(template, pop, result.dims).dims, rows), result.dims


__all__ = ["MAX_EVENTS_PER_FILE", "fit_pooled", "pooled_populations"]
