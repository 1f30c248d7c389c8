"""Fitted candidates for a learned population: cytokit's own data-driven gates.

Besides the person's region moved by registration (:mod:`cytokit.learn._search`), a
population can be learned as one of cytokit's fitted gates on the same dimensions: on one,
a ``density_valley`` (side above or below; ``min_peak_height`` 0.01 or 0.05; ``select``
depth or prominence) or a ``shoulder`` (side above or below; ``tol`` 0.05 or 0.1); on two, a
``quadrant`` of the two valleys (each of the four signs, ``no_valley: negative``;
``sequential`` none, or above / below with either dimension first).

**Scores.** A fitted gate learns nothing from other files: each training file is scored (F1
against the person, as for registered candidates) with the gate fitted on that file's own
parent events, as it will be fitted on a new file, so the score needs no held-out file to be
honest (only the type and settings are chosen on the training files). The pooled variant
(the population's ``pool: true``, :mod:`cytokit.gating.pooling`) is scored on each training
file with the gate fitted on the *other* training files pooled: applied to a run, the pool
is many files of which the new one is a small part, so its cut comes mostly from other
files; fitting on a pool that includes the scored file (half of it, with two training
files) would flatter it. Pooled variants are tried only from :data:`MIN_POOL_FILES` training
files on: with two, "the other files pooled" is the other file alone, and nothing shows what a
pool of many files looks like. Trained on activation tubes 1 and 7, a pooled FSC-W valley won
with three of four subsample seeds: found in the two tubes pooled, missing in the 15 held-out
tubes pooled (tube 7 alone has none; 7 of the 17 tubes have one), so Single Cells and every
population below it were empty.

**Robustness** (:func:`fragile`). Two or three training files cannot show every file a gate
will meet, so before a fitted candidate is chosen it must (in :mod:`~cytokit.learn._search`)
score as well on all the training events as on the search's subsample (a valley that moves
with the number of events is not a valley), its fit must neither fail nor find no valley on
any training file, and it must survive the population being rarer (thinned to
:data:`~cytokit.learn._search.RARE_SHARE` of its members in each file): refitted there it
may lose at most :data:`~cytokit.learn._search.RARE_TOLERANCE` F1 against the cut fitted on
the file as it is.

**Fallback** (:func:`with_fallback`). A valley chosen for a population is written with a
``fallback`` at the training files' median cut, used (and flagged ``gate doubtful``) where a
new file has no valley: two activation tubes both with an FSC-W valley learned Single Cells
as that valley, and the held-out tubes with one peak lost every population below it. A pooled
one falls back on the training files' pooled cut where the files it is applied to, pooled,
have none (a quadrant's two valleys each so).

:func:`fitted_candidates` scores them all; :mod:`cytokit.learn._search` compares them with
the registered candidates.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..agreement import agreement
from ..gating._schema import GATE_TYPES
from ..gating.fitted import FittedGate
from ..gating.pooling import MAX_EVENTS_PER_FILE

#: the settings tried per gate type (each a template gate mapping without type and dims)
VALLEY_SETTINGS = [{"min_peak_height": h, "select": s} for h in (0.01, 0.05) for s in ("depth", "prominence")]
SHOULDER_SETTINGS = [{"tol": t} for t in (0.05, 0.1)]
QUADRANT_SETTINGS = [{"sequential": s} for s in ("none", "above", "below")]
SIDES = ("above", "below")
QUADRANTS = ("++", "+-", "-+", "--")
MIN_POOL_FILES = 3  # pooled variants only from this many training files (module docstring)


@dataclass
class FittedCandidate:
    """A fitted gate (its template mapping, roles by name) and its F1 on each training file."""

    gate: dict
    pool: bool
    scores: list[float]

    @property
    def dims(self) -> list[str]:
        """The gate's roles, in its order."""
        return _gate_dims(self.gate)

    @property
    def cv_f1(self) -> float:
        """The mean F1 over the training files (each fitted on its own events, or on the pool)."""
        return float(np.mean(self.scores))


def _families(dims: list[str]) -> list[tuple[dict, str, tuple[str, ...]]]:
    """``(gate mapping, the parameter a fit does not depend on, its values)``: the candidates on
    ``dims`` in families that share one fit (a valley's side, a quadrant's signs)."""
    if len(dims) == 1:
        valleys = [({"type": "density_valley", "dim": dims[0], "side": "above", **s}, "side", SIDES)
                   for s in VALLEY_SETTINGS]
        shoulders = [({"type": "shoulder", "dim": dims[0], "side": side, **s}, "", ())
                     for side in SIDES for s in SHOULDER_SETTINGS]
        return valleys + shoulders
    out = []
    for s in QUADRANT_SETTINGS:
        for order in ([dims[0], dims[1]], [dims[1], dims[0]]) if s["sequential"] != "none" else ([dims[0], dims[1]],):
            out.append(({"type": "quadrant", "dims": order, "quadrant": "++", "no_valley": "negative", **s},
                        "quadrant", QUADRANTS))
    return out


def fitted_gate(gate: dict) -> FittedGate:
    """The unfitted gate of a candidate's template mapping (roles as column names)."""
    module, name = GATE_TYPES[gate["type"]]
    cls = getattr(importlib.import_module(f"cytokit.gating.{module}"), name)
    return cls(**{k: v for k, v in gate.items() if k != "type"})


def describe_gate(gate: dict) -> str:
    """A fitted candidate's gate in words."""
    if gate["type"] == "density_valley":
        return (f"{gate['dim']} {gate['side']} its density valley (peaks of at least "
                f"{gate['min_peak_height']:g} x the highest, chosen by {gate['select']})")
    if gate["type"] == "control_threshold":
        return (f"{gate['dim']} {gate['side']} the {gate['quantile']:g} quantile of its control tube's parent events "
                "(smoothed), where the person's cuts sat in the training files")
    if gate["type"] == "shoulder":
        return f"{gate['dim']} {gate['side']} the shoulder of its main peak (tol {gate['tol']:g})"
    signs = ", ".join(f"{d}{s}" for d, s in zip(gate["dims"], gate["quadrant"]))
    order = ("" if gate["sequential"] == "none" else
             f"; {gate['dims'][1]}'s valley among the events {gate['sequential']} {gate['dims'][0]}'s")
    return f"the {signs} quadrant of the density valleys of {' and '.join(gate['dims'])}{order}"


def _gate_dims(gate: dict) -> list[str]:
    return list(gate["dims"]) if "dims" in gate else [gate["dim"]]


def _frame(values: np.ndarray, gate: dict, names: list[str]) -> pd.DataFrame:
    """The events on the gate's dimensions, in its order, as columns named by role."""
    roles = _gate_dims(gate)
    return pd.DataFrame(values[:, [names.index(r) for r in roles]], columns=roles)


def _pool(parts) -> np.ndarray:
    """The parts' events pooled, at most :data:`MAX_EVENTS_PER_FILE` of each, as ``pool: true``
    caps a file (here an even stride through the part, there a seeded random subsample)."""
    chunks = []
    for p in parts:
        step = -(-len(p.values) // MAX_EVENTS_PER_FILE)
        chunks.append(p.values[::max(step, 1)])
    return np.concatenate(chunks)


def _inside(fitted: FittedGate, values: np.ndarray) -> np.ndarray:
    """``fitted.contains`` on an array of events (columns in the gate's order), without a DataFrame."""
    if fitted.failed_ is not None:
        return np.zeros(len(values), dtype=bool)
    inside = np.ones(len(values), dtype=bool)
    for j, (lo, hi) in enumerate(fitted.to_static().bounds.values()):
        if lo is not None:
            inside &= values[:, j] >= lo
        if hi is not None:
            inside &= values[:, j] < hi
    return inside


def fitted_candidates(data, dims: list[int], names: list[str], *, pool: bool = True) -> list[FittedCandidate]:
    """Every fitted candidate on ``dims`` scored on each training part (see the module docstring);
    with ``pool`` and :data:`MIN_POOL_FILES` parts or more, the pooled variants too, each part
    scored with the gate fitted on the other parts pooled."""
    out = []
    for gate, free, values in _families([names[d] for d in dims]):
        variants = [{**gate, free: v} for v in values] if free else [gate]
        frames = [_frame(part.values, gate, names) for part in data]
        fits = {False: [fitted_gate(gate).fit(frame) for frame in frames]}
        if pool and len(data) >= MIN_POOL_FILES:
            fits[True] = [fitted_gate(gate).fit(_frame(_pool([p for p in data if p is not held]), gate, names))
                          for held in data]
        for pooled, gates in fits.items():
            scores: list[list[float]] = [[] for _ in variants]
            for fitted, frame, part in zip(gates, frames, data):
                for i, variant in enumerate(variants):
                    if free and getattr(fitted, free) != variant[free]:
                        fitted.set_params(**{free: variant[free]})
                    scores[i].append(agreement(_inside(fitted, frame.to_numpy()), part.member)[2])
            out += [FittedCandidate(variant, pooled, scores[i]) for i, variant in enumerate(variants)]
    return out


def _fits(gate: dict, data, names: list[str], pool: bool) -> list[FittedGate]:
    """The gate fitted as applied, for each part: on its own events, or once on all parts pooled."""
    if pool:
        shared = fitted_gate(gate).fit(_frame(_pool(data), gate, names))
        return [shared] * len(data)
    return [fitted_gate(gate).fit(_frame(p.values, gate, names)) for p in data]


def _f1(fitted: FittedGate, part, gate: dict, names: list[str]) -> float:
    return agreement(_inside(fitted, _frame(part.values, gate, names).to_numpy()), part.member)[2]


def score(candidate: FittedCandidate, data, names: list[str]) -> list[float]:
    """The candidate's F1 on each part, fitted as it is applied: on each part's own events, or
    once on all the parts pooled."""
    fits = _fits(candidate.gate, data, names, candidate.pool)
    return [_f1(f, p, candidate.gate, names) for f, p in zip(fits, data)]


def with_fallback(candidate: FittedCandidate, data, names: list[str]) -> dict:
    """The candidate's gate mapping; a valley fitted on each file's own events also falls back on
    the training files' median cut where a new file has no valley (flagged ``gate doubtful``, as
    every fallback is), as a person copies the gate: two activation tubes both with an FSC-W
    valley learned Single Cells as that valley, and the held-out tubes without one lost every
    population below it. A quadrant's two valleys each so (written as its ``thresholds``). A pooled
    gate falls back on the training files' pooled cut where the files it is applied to, pooled, have
    no valley (FlowAtlas CD4 CM from three files, pooled over eleven others: no CCR7 valley among
    CD45RA+ cells, every event CCR7−, CM empty in all eleven)."""
    gate = candidate.gate
    if gate["type"] not in ("density_valley", "quadrant"):
        return gate
    fits = [f for f in _fits(gate, data, names, candidate.pool) if f.failed_ is None]
    if gate["type"] == "density_valley":
        cuts = [f.threshold_ for f in fits]
        return {**gate, "fallback": {"type": "threshold", "at": float(np.median(cuts))}} if cuts else gate
    # a quadrant: each dimension's valley (the quadrant's own settings) with a fallback at the training
    # files' median cut, where its valley was found (FlowAtlas CD4 from blood and lung: in a lymph node
    # the CD4 valley among CD8- T cells is missing, and no_valley: negative left CD4 empty)
    quadrant, specs = fitted_gate(gate), []  # its valleys' settings, so the cuts are the same where found
    for i in range(2):
        cuts = [f.thresholds_[i] for f in fits if f.valley_depths_[i] > 0]
        specs.append({"type": "density_valley", "min_peak_height": quadrant.min_peak_height,
                      "select": quadrant.select, "adjust": quadrant.adjust, "min_valley_depth": 0,
                      **({"fallback": {"type": "threshold", "at": float(np.median(cuts))}} if cuts else {})})
    return {k: v for k, v in gate.items() if k != "no_valley"} | {"thresholds": specs}  # no_valley: no say now


def _thinned(part, keep: float):
    """The part with only every ``1/keep``-th member (the others left out): a file where the
    population is rarer."""
    members = np.flatnonzero(part.member)
    step = max(round(1 / keep), 1)
    rows = np.sort(np.r_[np.flatnonzero(~part.member), members[::step]])
    return type(part)(part.file, part.values[rows], part.member[rows], part.channels)


def fragile(candidate: FittedCandidate, data, names: list[str], *, keep: float, tolerance: float) -> str | None:
    """Why a candidate that scored well on the training files should not be trusted on new ones
    (None: no reason). Its fit on a training file (or their pool) fails or finds no valley; or,
    with the population ``keep`` times as common as in each training file, the gate fitted on
    that file must reproduce the person nearly as well as the gate fitted on
    the file as it is, kept fixed (a valley that needs the population as common as in the
    training files fails in the file that has few: a tissue with almost no naive T cells)."""
    gate = candidate.gate
    fits = _fits(gate, data, names, candidate.pool)
    for fitted, part in zip(fits, data):
        on = "the training files pooled" if candidate.pool else part.file
        if fitted.failed_ or "no density valley" in (fitted.warning_ or ""):
            return f"on {on}: {fitted.failed_ or fitted.warning_}"
    thin = [_thinned(p, keep) for p in data]
    fixed = [_f1(f, t, gate, names) for f, t in zip(fits, thin)]
    refit = [_f1(f, t, gate, names) for f, t in zip(_fits(gate, thin, names, candidate.pool), thin)]
    worse = [(b - a, p.file) for a, b, p in zip(refit, fixed, data) if a < b - tolerance]
    if worse:
        drop, file = max(worse)
        return (f"with the population {keep:g} x as common, refitted on {file} it loses F1 {drop:.3f} against "
                f"the cut kept fixed")
    return None


__all__ = ["FittedCandidate", "describe_gate", "fitted_candidates", "fitted_gate", "fragile", "score", "with_fallback"]
