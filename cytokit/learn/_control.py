"""Control-derived candidates for a learned population: a cut at a quantile of the control tube.

Where the training files name their controls (``learn_template(controls=...)``, the
``file,control_file`` sheet ``cytokit compare --controls`` reads), a one-dimensional population
can be learned as a ``control_threshold`` gate: the cut at quantile ``q`` of the matched
control's parent events (its smoothed distribution, ``smooth: true``), as a person sets a
positive gate on the unstimulated, FMO or isotype tube. The person's own cut in each training
file sits at some quantile of that file's control; ``q`` is the quantile (of a grid, and those
where the person's best one-sided cut sits in each file) whose cuts reproduce the person best over
the training files, the middle one of ties. A training file that is itself a control is its own
(as ``compare`` and ``cytokit run`` gate a control tube). Scored by cross-validation: each
training file with the quantile of the other files (its own where it is the only one), cut on
its own control. Learned only where every training file has its control among the training
files (the control's parent events come from the person's gating of it) and they have two
controls or more: with one, the cut is the same in every training file and cannot tell a cut
that follows the control from a fixed one. Not on scatter dimensions (a control differs from
its stained tube in staining), and chosen only within ``TOLERANCE`` of the best other candidate
(:mod:`cytokit.learn._search`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gating.thresholds import smoothed_cdf

#: the quantiles tried (besides those where the person cut each training file): every 0.5 % and,
#: towards either end, ten per decade of the distance to it (down to 1e-5)
Q_GRID = np.unique(np.r_[np.linspace(0.005, 0.995, 199), np.logspace(-5, -2.3, 28), 1 - np.logspace(-5, -2.3, 28)])


@dataclass
class ControlCandidate:
    """A ``control_threshold`` gate mapping (role by name) and its cross-validated F1 per training file."""

    gate: dict
    scores: list[float]

    @property
    def cv_f1(self) -> float:
        return float(np.mean(self.scores))


def best_cut(x: np.ndarray, member: np.ndarray, side: str) -> tuple[float, float]:
    """``(cut, F1)``: the one-sided cut (``x >= cut`` above, ``x < cut`` below) that reproduces
    ``member`` best, halfway between the events either side of it."""
    order = np.argsort(x, kind="stable")
    xs, ms = x[order], member[order].astype(float)
    n, n_m = len(xs), ms.sum()
    if side == "above":  # keep xs[i:], cut between xs[i - 1] and xs[i]
        f1 = 2 * np.cumsum(ms[::-1])[::-1] / ((n - np.arange(n)) + n_m)
        i = int(np.argmax(f1))
        return float(xs[i] if i == 0 else (xs[i - 1] + xs[i]) / 2), float(f1[i])
    f1 = 2 * np.cumsum(ms) / (np.arange(1, n + 1) + n_m)  # keep xs[:i + 1]
    i = int(np.argmax(f1))
    return float(xs[i] if i == n - 1 else (xs[i] + xs[i + 1]) / 2), float(f1[i])


def _f1_at(x: np.ndarray, member: np.ndarray, cuts: np.ndarray, side: str) -> np.ndarray:
    """F1 against ``member`` of keeping ``x`` above (``>=``) or below (``<``) each of ``cuts``."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    below = np.r_[0, np.cumsum(member[order])]  # members among the first k sorted events
    n_m, k = below[-1], np.searchsorted(xs, cuts, side="left")  # k events below each cut
    tp, kept = (n_m - below[k], len(xs) - k) if side == "above" else (below[k], k)
    return np.where(kept + n_m > 0, 2 * tp / np.maximum(kept + n_m, 1), 0.0)


def _best(f1: np.ndarray) -> int:
    """The index of the best mean F1; among ties, the quantile in the middle of them."""
    ties = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return int(ties[len(ties) // 2])


def control_candidates(data, controls: dict[str, tuple[str, np.ndarray]], dims: list[list[int]],
                       names: list[str]) -> list[ControlCandidate]:
    """The control-derived candidates on each one-dimensional ``dims`` entry, each side (``controls``:
    part's file → ``(its control's name, the control's parent events, all roles)``); none unless every
    part has a control, and two parts different ones: cut on one control, a quantile of it is a fixed
    cut, which the registered candidates already are (trained on an unstimulated activation tube and
    a stimulated one it controls, a quantile tied with the fixed cut in training, won, and failed the
    unstained tube, which has no control: sum of the ten held-out medians 9.898 → 9.620)."""
    if not data or not all(p.file in controls for p in data) or len({controls[p.file][0] for p in data}) < 2:
        return []
    out = []
    for d in dims:
        if len(d) != 1:
            continue
        j = d[0]
        curves = []
        for p in data:
            c = controls[p.file][1][:, j]
            c = c[np.isfinite(c)]
            if len(c) < 50:  # ControlThresholdGate's min_events: too few to fit on
                return out
            curves.append(smoothed_cdf(c))
        for side in ("above", "below"):
            x = [p.values[:, j] for p in data]
            qs = [float(np.interp(best_cut(xi, p.member, side)[0], grid, cdf))
                  for xi, p, (grid, cdf) in zip(x, data, curves)]
            tried = np.unique(np.r_[Q_GRID, qs])
            f1 = np.array([_f1_at(xi, p.member, np.interp(tried, cdf, grid), side)
                           for xi, p, (grid, cdf) in zip(x, data, curves)])  # part x quantile
            scores = []
            for i in range(len(data)):  # the quantile best on the other parts (on this one alone if none)
                others = [k for k in range(len(data)) if k != i] or [i]
                scores.append(float(f1[i, _best(f1[others].mean(axis=0))]))
            q = float(tried[_best(f1.mean(axis=0))])
            gate = {"type": "control_threshold", "dim": names[j], "side": side, "quantile": round(q, 6),
                    "smooth": True}
            out.append(ControlCandidate(gate, scores))
    return out


def best_control(data, controls: dict | None, dims: list[list[int]], names: list[str], best: float,
                 tolerance: float) -> tuple[ControlCandidate | None, int]:
    """``(the best control-derived candidate, how many were tried)``; the candidate only if it is
    within ``tolerance`` of ``best`` (the best other candidate's cross-validated F1): the cut a person
    sets on the control tube, which follows each run's own control."""
    found = control_candidates(data, controls or {}, dims, names)
    top = max(found, key=lambda c: c.cv_f1, default=None)
    return (top if top is not None and top.cv_f1 >= best - tolerance else None), len(found)


def with_fallback(candidate: ControlCandidate, data, controls: dict[str, tuple[str, np.ndarray]],
                  names: list[str]) -> tuple[dict, list[float]]:
    """``(gate mapping, F1 per training part)``: the gate as written (its quantile, cut on each part's
    own control), with a ``fallback`` at the median of those cuts for a tube without a control (the
    unstained tube of a set: flagged, rather than every population below it empty)."""
    gate = candidate.gate
    j = names.index(gate["dim"])
    f1, cuts = [], []
    for p in data:
        c = controls[p.file][1][:, j]
        grid, cdf = smoothed_cdf(c[np.isfinite(c)])
        cuts.append(float(np.interp(gate["quantile"], cdf, grid)))
        f1.append(float(_f1_at(p.values[:, j], p.member, np.array(cuts[-1:]), gate["side"])[0]))
    return {**gate, "fallback": {"type": "threshold", "at": float(np.median(cuts))}}, f1


__all__ = ["ControlCandidate", "best_control", "best_cut", "control_candidates", "with_fallback"]
