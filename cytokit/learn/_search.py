"""Learning one population's gate from its parent's events in the training files.

Two families of candidates. **Registered**: the person's gate described as a region on one
or two dimensions: on one, the interval that reproduces the membership best (F1, one- or
two-sided); on two, the convex hull of the members (drawn gates are polygons, rectangles and
ellipses: convex). Which dimensions: every channel is screened by how well an interval on it
alone separates the members from the rest of the parent; the best few singly and in pairs
are candidates, each with and without registration (``max_shift`` 0 or :data:`MAX_SHIFT`;
built from several training files, each is aligned to the first, and the region may move on
a new file up to :data:`MOVE_BOUND` times the largest of those moves, at least
:data:`MIN_SHIFT` / :data:`MIN_SCALE`: FlowAtlas CD4 CM from two 423 tissues, whose parents
hold almost no naive cells, moved by up to 0.2 of the span and a stretch of 2 onto the naive
cloud of blood and lymph node, held-out median F1 0.018; bounded, 0.723). Each is scored by
cross-validation across the training files (learned on the others, F1 on the one left out;
on the file itself when there is only one). **Fitted**: cytokit's own
gates (density valleys, shoulders, valley quadrants; each file's own fit or ``pool: true``)
on the same screened dimensions (quadrants on pairs of the best :data:`N_FITTED_PAIRS` and
the pairs the screen finds within the best two), scored as :mod:`cytokit.learn._fitted`
says.

**The choice.** Fitted candidates are considered only with two or more training files (one
file cannot show that its valley is the person's cut in other files too: trained on the
unstimulated activation tube alone, an FSC-W valley scored 0.998 there and 0.000 on the
stimulated tube) and when the population has :data:`MIN_FITTED_MEMBERS` members in every
training file (a shoulder fitted on CD69+ CD4 T cells, 4 to 300 events per tube, scored 0.78
in training and 0.400 / 0.000 on the held-out tubes; registered, 0.99 / 0.77). Then a fitted
candidate no more than :data:`FITTED_TOLERANCE` below the best registered candidate wins, if
one passes the robustness checks (:func:`~cytokit.learn._fitted.fragile`; the best
:data:`MAX_FITTED_TRIES` are tried, the simplest within :data:`TOLERANCE` of the best fitted
first: one dimension, then each file's own fit before the pooled one, then the rest best
first: when the best fitted candidates are fragile, a robust one a little below them still
beats a registered region well below it: FlowAtlas CD4+CD8+, a valley quadrant at 0.94 turned
down, went to a CD8 range at 0.76 and scored 0.18 on the held-out files). Why prefer a
fitted gate that is a little worse on the training files: its score there is already a
new-file score (nothing is carried from one file to another), while a registered region's
cross-validation has seen one or two moves between training files; a fitted gate follows
each new file's own populations wherever they have moved, reads as the gate a person would
write (a valley, a quadrant), and is flagged ``gate doubtful`` per file when its fit is weak.
0.01 is one F1 point: about the spread of the training scores between the files of a set.
That reason does not hold for a region that is not moved: its cross-validation is a new-file
score too, so a fitted gate must also score above every such candidate (FlowAtlas T cells: a
CD3 range at 1.000 against the CD3 valley's 0.995, held-out 0.975 / 0.924 against 0.947 /
0.894). Otherwise the best registered candidate wins, a simpler one (one dimension, no registration)
when it is within :data:`TOLERANCE`, and the first fitted candidate turned down is noted in
its comment. Learned from one training file, a region moves (registered) only on files that
carry its dimensions on other detectors than the training file (``still_on``: another panel,
where the same marker sits elsewhere on the scale): nothing tells how far regions move between
files of one panel, and not moving them did better (trained on each of five activation tubes
and five FlowAtlas files alone, the held-out medians summed higher in every case than moved
everywhere, and higher than never moved: 390C_BM_027 13.2 moved, 14.1 never, 17.1 so). A
training file with fewer than :data:`MIN_MEMBERS` members of the population is left out of
learning it (it shows no region, and a gate selecting nothing there won its cross-validation),
but it still says whether the region moves: a region moved onto it that scores lower there
than the same region not moved is dropped (a stimulated tube and an unstimulated one with 4
CD69+ CD4 T cells: moved, the cut followed the unstimulated tube's lower negatives into them).

**The person's own gates.** Where the manual gating says what the person drew (a FlowJo
workspace or Gating-ML: the gate's channels, and a rectangle's or polygon's coordinates), the candidates
are on the person's dimensions only (each alone, and the pair), and the gate as drawn in each
training file is a registered candidate too, not moved, scored on the other training files
(on its own file when there is one, moved as well, as above): it is preferred over the other
registered candidates within :data:`TOLERANCE` of the best, and, not moved, it beats a fitted
gate that does not score higher as any region not moved does. Moving it as well was tried on
FlowAtlas and lost on the held-out files (two training files are one move each way;
docs/validation.md). Per-event memberships (``.npz``) say neither, but the dimensions the
members fill a region of tell the person's (:mod:`cytokit.learn._dims`); on them the members'
bounding box is a candidate too, each side halfway to the nearest other event level with the
box, or open where there is none (:func:`~cytokit.learn._shapes.members_box`: the person's
rectangle runs on past the last member, into empty space, and a new file's cells may lie there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from ..agreement import agreement
from ..gating.registered import RegisteredGate, anchor, best_warp, smoothed_density, unwarp, warp
from ._control import best_control
from ._control import with_fallback as control_with_fallback
from ._data import TrainingFile
from ._fitted import FittedCandidate, describe_gate, fitted_candidates, fragile, score, with_fallback
from ._shapes import covering, members_box, region

N_BINS = 96
GRID_PAD = 0.3  # of the 0.5-99.5 percentile span, each side: room for new files to move
MAX_SHIFT = 0.2
MAX_SCALE = 2.0
MOVE_BOUND = 2.0  # learned from several files, a region moves up to this many times their moves between them
MIN_SHIFT, MIN_SCALE = 0.05, 1.1  # ... and at least this far
N_SCREEN = 5  # dimensions kept after the one-dimensional screen
MAX_FITTED_TRIES = 6  # fitted candidates checked for robustness before falling back on registration
RARE_SHARE = 0.03  # the robustness check thins each training file's population to this share
RARE_TOLERANCE = 0.05  # ... and the refitted gate may lose this much F1 against the cut kept fixed
N_FITTED_PAIRS = 3  # fitted quadrants: on pairs of the best three, and the pairs of the screen within
TOLERANCE = 0.003
MIN_FITTED_MEMBERS = 100  # a fitted gate is learned only from populations this large in every training file
FITTED_TOLERANCE = 0.01  # a fitted gate no more than this below the best registered one is preferred (docstring)
MIN_MEMBERS = 5
#: below this cross-validated F1 the person drew the region differently in the training files: its doubt is
#: then edges in dense events (``max_sensitivity``), not its confidence (docs/validation.md: the flag rates)
ADJUSTED_CV, MAX_SENSITIVITY, GRID_KEYS = 0.99, 0.2, ("grid", "inside", "outside")
SEARCH_EVENTS = 8000  # parent events per file for choosing the gate (the chosen one is built on all)


@dataclass
class Part:
    """One training file's share of a population: parent events (values on all roles) and membership."""

    file: str
    values: np.ndarray
    member: np.ndarray
    channels: tuple[str, ...] = ()  # per column (role), the file's $PnN


@dataclass
class Learned:
    """A learned gate: the template mapping and what was learned."""

    gate: dict
    dims: list[str]
    kind: str  # "range" / "polygon" (registered), or a fitted gate's type
    registered: bool
    cv_f1: float
    train_f1: float
    n_files: int
    candidates: int
    notes: list[str] = field(default_factory=list)
    pool: bool = False  # a fitted gate fitted once on the files gated together (``pool: true``)

    @property
    def fitted(self) -> bool:
        """Whether the gate is one of cytokit's fitted gates (not a registered region)."""
        return self.gate["type"] != "registered"


def parts(train: list[TrainingFile], path: str, max_events: int, rng: np.random.Generator) -> list[Part]:
    """The parent events and membership of ``path`` in each training file that gated it."""
    out = []
    for tf in train:
        if path not in tf.gating.membership:
            continue
        rows = tf.rows(path)
        if len(rows) > max_events:
            rows = np.sort(rng.choice(rows, max_events, replace=False))
        pnn = {role: name for name, role in tf.roles.items()}
        out.append(Part(tf.name, tf.values[rows], tf.gating.membership[path][rows],
                        tuple(pnn.get(role, "") for role in tf.scales)))
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
        if xs[i + k] > xs[i]:  # tied values make an empty interval, which no gate can be
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


def candidate_dims(pooled: Part, *, n_pairs: int | None = None) -> list[list[int]]:
    """One-dimensional candidates (the best few) and pairs: each of the best two with the
    dimensions that best separate what its interval keeps, and the best ones paired (all five,
    or the best ``n_pairs``)."""
    top = screen(pooled, N_SCREEN)
    pairs = []
    for d in top[:2]:
        within = _inside(pooled.values[:, d], _interval(pooled.values[:, d], pooled.member))
        pairs += [(d, e) for e in screen(pooled, 3, within, skip=d)]
    pairs += [tuple(c) for c in combinations(top[:n_pairs], 2)]
    unique = list(dict.fromkeys(tuple(sorted(p)) for p in pairs))
    return [[d] for d in top] + [list(p) for p in unique]


def _grid(values: np.ndarray) -> tuple[float, float]:
    """The densities' range, to the 6 significant digits the template is written with: the bins the
    learned template reads a file on are the ones its reference densities were counted on (on the
    discrete values of an old instrument, a bin edge moved by 1e-7 moved whole spikes of events to
    the next bin, and the written gate moved a quarter bin on its own training file)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    pad = GRID_PAD * (hi - lo) if hi > lo else 1.0
    return float(f"{lo - pad:.6g}"), float(f"{hi + pad:.6g}")


def build(train: list[Part], dims: list[int], register: bool, names: list[str], drawn: dict | None = None,
          box: bool = False, still: bool = False) -> dict | None:
    """The ``registered`` gate mapping learned from ``train`` on ``dims`` (None: nothing to learn);
    ``drawn``: the person's own gate in ``train[0]`` (:func:`region`) instead of the members' interval or hull;
    ``still``: learned from one file, moved only where a file carries a dimension on another detector."""
    members = sum(int(p.member.sum()) for p in train)
    if members < MIN_MEMBERS:
        return None
    grid = [_grid(np.concatenate([p.values[:, d] for p in train])) for d in dims]
    index = np.arange(N_BINS, dtype=float)
    first = train[0]
    inside = [np.zeros(N_BINS) for _ in dims]
    outside = [np.zeros(N_BINS) for _ in dims]
    aligned_values, moves = [], []
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
                moves.append((abs(bins) / N_BINS, abs(np.log(scale))))
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
    max_shift, max_scale = MAX_SHIFT, MAX_SCALE
    if moves:  # a new file may move about as far as the training files moved from one another
        max_shift = float(f"{min(MAX_SHIFT, max(MIN_SHIFT, MOVE_BOUND * max(m[0] for m in moves))):.3g}")
        max_scale = float(f"{min(MAX_SCALE, np.exp(max(np.log(MIN_SCALE), MOVE_BOUND * max(m[1] for m in moves)))):.3g}")
    gate = {"type": "registered", "dims": [names[d] for d in dims], "max_shift": max_shift if register else 0,
            "max_scale": max_scale if register else 1}
    if register and still and len(train) == 1 and first.channels and all(first.channels[d] for d in dims):
        gate["still_on"] = [[first.channels[d]] for d in dims]  # learned from one file (docstring)
    if drawn is not None:
        gate.update(region(drawn, grid))
    elif box and len(dims) == 2:
        ok = np.isfinite(values).all(axis=1)
        gate.update(region({"limits": members_box(values[ok], member[ok])}, grid))
    elif len(dims) == 1:
        gate["limits"] = list(_interval(values[:, 0], member))
    else:
        from scipy.spatial import ConvexHull, QhullError

        points = values[member]
        try:
            hull = ConvexHull(points)
        except (QhullError, ValueError):
            return None
        gate["vertices"] = [[float(x), float(y)] for x, y in covering(points[hull.vertices])]
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
    return part if step <= 1 else Part(part.file, part.values[::step], part.member[::step], part.channels)


def _choose_fitted(fitted: list[FittedCandidate], best_registered: float, full: list[Part],
                   names: list[str]) -> tuple[FittedCandidate | None, list[float], list[str]]:
    """The fitted candidate to prefer (see the module docstring), its F1 on each training file's
    events, and why the ones tried before it were turned down."""
    if len(full) < 2:  # one file cannot tell whether its valley is the person's cut elsewhere too
        return None, [], ["one training file: a fitted gate needs two to show it holds across files"]
    if min(int(p.member.sum()) for p in full) < MIN_FITTED_MEMBERS:  # a few events decide any fit's score
        return None, [], [f"fewer than {MIN_FITTED_MEMBERS} members in a training file"]
    floor = best_registered - FITTED_TOLERANCE  # as good as the best registered candidate, about
    close = [c for c in fitted if c.cv_f1 >= floor]
    best_fitted = max((c.cv_f1 for c in close), default=0.0)

    def preference(c: FittedCandidate) -> tuple:  # the simplest near the best first, then the rest, best first
        simple = c.cv_f1 >= best_fitted - TOLERANCE
        return (simple, -len(c.dims) if simple else 0, (not c.pool) if simple else 0, c.cv_f1)

    notes = []
    for choice in sorted(close, key=preference, reverse=True)[:MAX_FITTED_TRIES]:
        on_all = score(choice, full, names)
        if np.mean(on_all) < choice.cv_f1 - FITTED_TOLERANCE:  # it moved with the number of events
            notes.append(f"{describe_gate(choice.gate)}: F1 {np.mean(on_all):.3f} on all the training events, "
                         f"{choice.cv_f1:.3f} on the search's subsample")
            continue
        reason = fragile(choice, full, names, keep=RARE_SHARE, tolerance=RARE_TOLERANCE)
        if reason:
            notes.append(f"{describe_gate(choice.gate)}: {reason}")
            continue
        return choice, on_all, notes
    return None, [], notes


def learn_population(data: list[Part], names: list[str], person: list[int] | None = None,
                     drawn: dict[str, dict] | None = None,
                     controls: dict[str, tuple[str, np.ndarray]] | None = None, scatter: frozenset[int] = frozenset()
                     ) -> Learned | None:
    """The best gate for one population (see the module docstring), or None when too few members.
    ``person``: the dimensions the person's gate is drawn on, where the manual gating says (a
    FlowJo workspace, Gating-ML): the candidates are on them (each alone, and the pair), not screened.
    ``drawn``: training file name → the person's gate on those dimensions in that file (a FlowJo
    workspace's or Gating-ML's rectangle or polygon, :meth:`~cytokit.learn._data.TrainingFile.drawn`): each is a
    candidate too, scored on the other training files, and preferred when about as good as the best.
    ``controls``: training file name → its control's name and parent events (:mod:`cytokit.learn._control`):
    a cut at a quantile of the control is a candidate too, on any dimension but ``scatter``'s (what
    a control tube differs in is staining), preferred when within :data:`TOLERANCE` of every other
    candidate."""
    # a file with a handful of members or none teaches no region, and cross-validation scores it on
    # whether a gate selects nothing: learned on the others (FlowAtlas CD4 EMRA, 0 and 19 members:
    # a CD4 interval selecting nothing scored 0.5 and won)
    few = [f"{p.file} ({int(p.member.sum())})" for p in data if p.member.sum() < MIN_MEMBERS]
    skipped = [f"learned without the training file(s) with fewer than {MIN_MEMBERS} members: {', '.join(few)}"
               ] if few else []
    sparse = [p for p in data if p.member.sum() < MIN_MEMBERS]
    data = [p for p in data if p.member.sum() >= MIN_MEMBERS]
    if not data:
        return None
    drawn = {f: d for f, d in (drawn or {}).items() if any(p.file == f for p in data)}
    full, data = data, [_subsample(p) for p in data]
    pooled = Part("pooled", np.concatenate([p.values for p in data]), np.concatenate([p.member for p in data]))
    if person:
        candidates = fitted_dims = [[d] for d in person] + ([list(person)] if len(person) == 2 else [])
    else:
        candidates = candidate_dims(pooled)
        fitted_dims = candidate_dims(pooled, n_pairs=N_FITTED_PAIRS)
    scored, on_sparse = [], {}  # (dims, box, source, moved) -> F1 on the sparse files, learned on the others

    def check(key, gate_on_all):  # a region learned on the files with members, scored on those without
        if sparse:
            on_sparse[key] = float(np.mean([_score(gate_on_all(), p, names) for p in sparse]))

    for dims in candidates:  # where the person's dimensions are known but not their gate: the members' box too
        boxes = [(False, True), (True, True)] if person and not drawn and len(dims) == 2 else []
        for register, box in [(False, False), (True, False)] + boxes:
            if len(data) > 1:
                cv = np.mean([_score(build([p for p in data if p is not held], dims, register, names, box=box), held, names)
                              for held in data])
            else:
                cv = _score(build(data, dims, register, names, box=box), data[0], names)
            # simpler first: one dimension, then (with several files, which can tell) no registration;
            # with one file, registered: written with still_on, it moves only on another panel's detectors
            scored.append((cv, -len(dims), int(register) if len(data) == 1 else -int(register), dims, register, None, box))
            check((tuple(dims), box, None, register), lambda: build(data, dims, register, names, box=box))
    # the person's own gate as drawn in a file: not moved (with one training file also moved, on other
    # detectors only, and preferred so)
    for source in [p for p in data if p.file in (drawn or {})]:
        others = [p for p in data if p is not source] or [source]
        for move in (False, True) if len(data) == 1 else (False,):
            gate = build([source], person, move, names, drawn[source.file])
            scored.append((float(np.mean([_score(gate, held, names) for held in others])), -len(person), int(move),
                           person, move, source.file, False))
            check((tuple(person), False, source.file, move), lambda: gate)
    # a file with too few members teaches no region but shows whether it moves: a move that does
    # worse there is dropped (activation CD69+ CD4 T cells from tubes 31 and 9 (4 members): the cut
    # moved down onto each tube's negatives, held-out median F1 0.53; not moved, 0.99)
    worse = {k[:3] for k, f in on_sparse.items() if k[3] and f < on_sparse[k[:3] + (False,)] - TOLERANCE}
    scored = [s for s in scored if not (s[4] and (tuple(s[3]), s[6], s[5]) in worse)]
    fitted = [c for dims in fitted_dims for c in fitted_candidates(data, dims, names)]
    n_candidates = len(scored) + len(fitted)
    best_registered = max(s[0] for s in scored)
    choice, on_all, notes = _choose_fitted(fitted, best_registered, full, names)
    best_unmoved = max((s[0] for s in scored if not s[4]), default=-1.0)  # held-out scores without a move
    by_control, n_control = best_control(data, controls, [d for d in fitted_dims if not set(d) & scatter], names,
                                         max(best_registered, choice.cv_f1 if choice is not None else -1.0), TOLERANCE)
    n_candidates += n_control
    if by_control is not None:
        gate, on_all = control_with_fallback(by_control, full, controls, names)
        return Learned(gate, [gate["dim"]], "control_threshold", False, by_control.cv_f1, float(np.median(on_all)),
                       len(data), n_candidates, notes=skipped)
    if choice is not None and best_unmoved < choice.cv_f1:
        return Learned(with_fallback(choice, full, names), choice.dims, choice.gate["type"], False, choice.cv_f1,
                       float(np.median(on_all)), len(data), n_candidates, pool=choice.pool, notes=skipped)
    if choice is not None:
        notes.insert(0, f"{describe_gate(choice.gate)}: F1 {choice.cv_f1:.3f}, not above a region not moved "
                        f"({best_unmoved:.3f})")
    simple = [s for s in scored if s[0] >= best_registered - TOLERANCE]
    cv, _, _, dims, register, source, box = max(simple, key=lambda s: (s[5] is not None, s[1], s[2], s[0]))
    if source is None:
        gate = build(full, dims, register, names, box=box, still=True)
    else:
        gate = build([p for p in full if p.file == source], dims, register, names, drawn[source], still=True)
    if gate is None:
        return None
    adjusted = len(data) > 1 and cv < ADJUSTED_CV  # the person's gates differ between the training files
    if adjusted:  # the densities popped and put back last, as written
        gate.update({"min_confidence": 0, "max_sensitivity": MAX_SENSITIVITY, **{k: gate.pop(k) for k in GRID_KEYS}})
    train_f1 = float(np.median([_score(gate, p, names) for p in full]))
    notes = [f"not fitted: {notes[0]}"] if notes else []
    notes[:0] = [f"the person's gates differ between the training files: flagged where a 2 % move of its edges "
                 f"changes over {MAX_SENSITIVITY:.0%} of its events, not on its confidence"] if adjusted else []
    if (tuple(dims), box, source) in worse:
        notes.insert(0, f"not moved: moved, it did worse on {', '.join(p.file for p in sparse)}")
    if box:
        notes.insert(0, "a rectangle: the members' bounding box, each side halfway to the nearest other event level with it")
    if source is not None:
        notes.insert(0, f"the person's own gate as drawn on {source} (from the manual gating)")
    return Learned(gate, [names[d] for d in dims], "range" if len(dims) == 1 else "polygon", register,
                   float(cv), train_f1, len(data), n_candidates, notes + skipped)


__all__ = ["Learned", "Part", "build", "candidate_dims", "learn_population", "membership", "parts", "screen"]
