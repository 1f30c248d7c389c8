"""Learning one population's gate from its parent's events in the training files.

The person's gate is described as a region on one or two dimensions: on one, the interval
that reproduces the membership best (F1, one- or two-sided); on two, the convex hull of the
members (drawn gates are polygons, rectangles and ellipses: convex). Which dimensions:
every channel is screened by how well an interval on it alone separates the members from
the rest of the parent; the best few singly and in pairs are candidates, each with and
without registration (``max_shift`` 0 or :data:`MAX_SHIFT`). Each candidate is scored by
cross-validation across the training files (learned on the others, F1 on the one left
out; on the file itself when there is only one); the best wins, a simpler one (one
dimension, no registration) when it is within :data:`TOLERANCE`. With one training file,
nothing tells whether the gate must move with the data, and it does (registered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from ..agreement import agreement
from ..gating.registered import RegisteredGate, anchor, best_warp, smoothed_density, unwarp, warp
from ._data import TrainingFile

N_BINS = 96
GRID_PAD = 0.3  # of the 0.5-99.5 percentile span, each side: room for new files to move
MAX_SHIFT = 0.2
MAX_SCALE = 2.0
N_SCREEN = 5  # dimensions kept after the one-dimensional screen
TOLERANCE = 0.003
MIN_MEMBERS = 5
SEARCH_EVENTS = 8000  # parent events per file for choosing the gate (the chosen one is built on all)


@dataclass
class Part:
    """One training file's share of a population: parent events (values on all roles) and membership."""

    file: str
    values: np.ndarray
    member: np.ndarray


@dataclass
class Learned:
    """A learned gate: the template mapping and what was learned."""

    gate: dict
    dims: list[str]
    kind: str  # "range" / "polygon"
    registered: bool
    cv_f1: float
    train_f1: float
    n_files: int
    candidates: int
    notes: list[str] = field(default_factory=list)


def parts(train: list[TrainingFile], path: str, max_events: int, rng: np.random.Generator) -> list[Part]:
    """The parent events and membership of ``path`` in each training file that gated it."""
    out = []
    for tf in train:
        if path not in tf.gating.membership:
            continue
        rows = tf.rows(path)
        if len(rows) > max_events:
            rows = np.sort(rng.choice(rows, max_events, replace=False))
        out.append(Part(tf.name, tf.values[rows], tf.gating.membership[path][rows]))
    return out


def _interval(x: np.ndarray, member: np.ndarray) -> tuple[float | None, float | None]:
    """The interval (one side open, or both closed) whose membership has the best F1."""
    order = np.argsort(x, kind="stable")
    xs, ms = x[order], member[order].astype(float)
    n_m = ms.sum()
    n = len(xs)
    # keep x >= xs[i]: TP = members from i on, predicted = n - i
    tp_above = np.cumsum(ms[::-1])[::-1]
    f1_above = 2 * tp_above / ((n - np.arange(n)) + n_m)
    # keep x <= xs[i]: TP = members up to i, predicted = i + 1
    tp_below = np.cumsum(ms)
    f1_below = 2 * tp_below / (np.arange(1, n + 1) + n_m)
    i, j = int(np.argmax(f1_above)), int(np.argmax(f1_below))
    best = [(f1_above[i], (float(xs[i]), None)), (f1_below[j], (None, float(xs[j])))]
    if i < j:  # both: the upper cut on the events above the lower one
        sub = slice(i, n)
        tp = np.cumsum(ms[sub])
        f1 = 2 * tp / (np.arange(1, n - i + 1) + n_m)
        k = int(np.argmax(f1))
        best.append((f1[k], (float(xs[i]), float(xs[i + k]))))
    return max(best, key=lambda b: b[0])[1]


def _inside(x: np.ndarray, limits: tuple[float | None, float | None]) -> np.ndarray:
    lo, hi = limits
    return (x >= (-np.inf if lo is None else lo)) & (x <= (np.inf if hi is None else hi))


def screen(pooled: Part, n_keep: int, within: np.ndarray | None = None, skip: int = -1) -> list[int]:
    """The dimensions on which one interval separates members best, best first; with ``within``,
    an interval on the events ``within`` keeps (a second dimension for a first one)."""
    keep = np.ones(len(pooled.member), dtype=bool) if within is None else within
    scores = []
    for d in range(pooled.values.shape[1]):
        if d == skip:
            scores.append(-1.0)
            continue
        x = pooled.values[keep, d]
        inside = np.zeros(len(keep), dtype=bool)
        inside[keep] = _inside(x, _interval(x, pooled.member[keep]))
        scores.append(agreement(inside, pooled.member)[2])
    return [int(d) for d in np.argsort(scores)[::-1][:n_keep]]


def candidate_dims(pooled: Part) -> list[list[int]]:
    """One-dimensional candidates (the best few) and pairs: of those, and each of the best two
    with the dimensions that best separate what its interval keeps."""
    top = screen(pooled, N_SCREEN)
    pairs = [tuple(c) for c in combinations(top, 2)]
    for d in top[:2]:
        within = _inside(pooled.values[:, d], _interval(pooled.values[:, d], pooled.member))
        pairs += [(d, e) for e in screen(pooled, 3, within, skip=d)]
    unique = list(dict.fromkeys(tuple(sorted(p)) for p in pairs))
    return [[d] for d in top] + [list(p) for p in unique]


def _grid(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [0.5, 99.5])
    pad = GRID_PAD * (hi - lo) if hi > lo else 1.0
    return float(lo - pad), float(hi + pad)


def build(train: list[Part], dims: list[int], register: bool, names: list[str]) -> dict | None:
    """The ``registered`` gate mapping learned from ``train`` on ``dims`` (None: nothing to learn)."""
    members = sum(int(p.member.sum()) for p in train)
    if members < MIN_MEMBERS:
        return None
    grid = [_grid(np.concatenate([p.values[:, d] for p in train])) for d in dims]
    index = np.arange(N_BINS, dtype=float)
    first = train[0]
    inside = [np.zeros(N_BINS) for _ in dims]
    outside = [np.zeros(N_BINS) for _ in dims]
    aligned_values = []
    for p in train:
        columns = []
        for i, ((lo, hi), d) in enumerate(zip(grid, dims)):
            x = p.values[:, d]
            m = (lo, hi, N_BINS, 0.0, 1.0, 0.0)  # no move
            if register and p is not first:
                ref = [smoothed_density(first.values[first.member, d], lo, hi, N_BINS),
                       smoothed_density(first.values[~first.member, d], lo, hi, N_BINS)]
                scale, bins, _ = best_warp(ref, smoothed_density(x, lo, hi, N_BINS), MAX_SHIFT * N_BINS, MAX_SCALE)
                centre = anchor(sum(r / r.sum() for r in ref if r.sum() > 0))
                m = (lo, hi, N_BINS, centre, scale, bins)
                x = unwarp(x, *m)
            # this file's inside and outside densities, read in the reference frame (counts: big files weigh more)
            for target, events in ((inside[i], p.member), (outside[i], ~p.member)):
                counts = smoothed_density(p.values[events, d], lo, hi, N_BINS) * events.sum()
                target += np.interp(warp(lo + (index + 0.5) * (hi - lo) / N_BINS, *m), lo + (index + 0.5)
                                    * (hi - lo) / N_BINS, counts, left=0.0, right=0.0)
            columns.append(x)
        aligned_values.append(np.column_stack(columns))
    values = np.concatenate(aligned_values)
    member = np.concatenate([p.member for p in train])
    top = max(max(r.max() for r in inside), max(r.max() for r in outside))
    as_ints = lambda curves: [[int(round(v)) for v in 1000 * r / top] for r in curves]
    gate = {"type": "registered", "dims": [names[d] for d in dims], "max_shift": MAX_SHIFT if register else 0,
            "max_scale": MAX_SCALE if register else 1}
    if len(dims) == 1:
        gate["limits"] = list(_interval(values[:, 0], member))
    else:
        from scipy.spatial import ConvexHull, QhullError

        points = values[member]
        try:
            hull = ConvexHull(points)
        except (QhullError, ValueError):
            return None
        gate["vertices"] = [[float(x), float(y)] for x, y in points[hull.vertices]]
    gate["grid"] = [[lo, hi] for lo, hi in grid]
    gate["inside"], gate["outside"] = as_ints(inside), as_ints(outside)
    return gate


def membership(gate: dict, part: Part, names: list[str]) -> tuple[np.ndarray, RegisteredGate]:
    """The gate fitted on ``part``'s parent events, and its membership."""
    spec = {k: v for k, v in gate.items() if k != "type"}
    fitted = RegisteredGate(**spec)
    frame = pd.DataFrame(part.values[:, [names.index(d) for d in gate["dims"]]], columns=gate["dims"])
    fitted.fit(frame)
    return np.asarray(fitted.contains(frame), dtype=bool), fitted


def _score(gate: dict | None, part: Part, names: list[str]) -> float:
    if gate is None:
        return 0.0
    return agreement(membership(gate, part, names)[0], part.member)[2]


def _subsample(part: Part) -> Part:
    """At most :data:`SEARCH_EVENTS` of a part's events (every other k-th, so members keep their share)."""
    step = -(-len(part.member) // SEARCH_EVENTS)
    return part if step <= 1 else Part(part.file, part.values[::step], part.member[::step])


def learn_population(data: list[Part], names: list[str]) -> Learned | None:
    """The best gate for one population (see the module docstring), or None when too few members."""
    if sum(int(p.member.sum()) for p in data) < MIN_MEMBERS:
        return None
    full, data = data, [_subsample(p) for p in data]
    pooled = Part("pooled", np.concatenate([p.values for p in data]), np.concatenate([p.member for p in data]))
    candidates = candidate_dims(pooled)
    scored = []
    for dims in candidates:
        for register in (False, True):
            if len(data) > 1:
                cv = np.mean([_score(build([p for p in data if p is not held], dims, register, names), held, names)
                              for held in data])
            else:
                cv = _score(build(data, dims, register, names), data[0], names)
            # simpler first: one dimension, then (with several files, which can tell) no registration;
            # one file cannot tell, and a gate that follows the data is the safer guess for new files
            scored.append((cv, -len(dims), int(register) if len(data) == 1 else -int(register), dims, register))
    best_cv = max(s[0] for s in scored)
    simple = [s for s in scored if s[0] >= best_cv - TOLERANCE]
    cv, _, _, dims, register = max(simple, key=lambda s: (s[1], s[2], s[0]))
    gate = build(full, dims, register, names)
    if gate is None:
        return None
    train_f1 = float(np.median([_score(gate, p, names) for p in full]))
    return Learned(gate, [names[d] for d in dims], "range" if len(dims) == 1 else "polygon", register,
                   float(cv), train_f1, len(data), len(scored))


__all__ = ["Learned", "Part", "build", "candidate_dims", "learn_population", "membership", "parts", "screen"]
