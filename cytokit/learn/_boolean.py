"""A manual population that is exactly an and/or/not of populations already learned.

FlowJo and Gating-ML users make populations of other populations (``CD107a+ OR IFNg+``, ``CD4+ AND
NOT Treg``, the fourth quadrant as what the other three leave): the person's memberships then are
that combination event for event. Learned as a region, such a population is only as good as a
polygon around a union (F1 0.5-0.7 on Gating-ML's compliance ``And``/``Or`` gates); learned as the
boolean gate of the populations' learned gates, it is what the person made, applied to each file's
own gates. Read off the memberships, it is found for any source, ``.npz`` files included; a
population the source gives a drawn gate for (its channels) is learned from that gate instead
(FlowJo's fourth quadrant is the rectangle the person drew, not what the other three leave).

A combination is taken only where it is exact on the parent's events of every training file that
has the population, with at least :data:`MIN_EVENTS` members and :data:`MIN_EVENTS` other parent
events in all: a drawn gate that only resembles a combination is learned as a gate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: members, and the parent's other events, the training files must hold for a combination to count
MIN_EVENTS = 20
#: operands at most: a longer combination is more likely chance than the person's
MAX_OPERANDS = 4


def boolean_of(train: Sequence, path: str, learned: Sequence[str]) -> dict | None:
    """``{"op", "operands", "complement"}`` (manual paths) that give ``path``'s members within its parent
    in every training file (``train``: :class:`~cytokit.learn._data.TrainingFile`) from the members of
    populations in ``learned``, or None: ``not``, ``and`` or ``or`` (any operand complemented), the
    fewest operands."""
    files = [tf for tf in train if path in tf.gating.membership]
    candidates = [p for p in learned if p != path and all(p in tf.gating.membership for tf in files)]
    if not files or not candidates:
        return None
    rows = [tf.gating.parent_mask(path) for tf in files]
    target = np.concatenate([tf.gating.membership[path][r] for tf, r in zip(files, rows)])
    if target.sum() < MIN_EVENTS or (~target).sum() < MIN_EVENTS:
        return None
    members = {p: np.concatenate([tf.gating.membership[p][r] for tf, r in zip(files, rows)]) for p in candidates}
    found = [c for c in (_and(target, members), _or(target, members)) if c is not None]
    if not found:
        return None
    best = min(found, key=lambda c: len(c["operands"]))
    if best["op"] == "and" and len(best["operands"]) == 1 and best["complement"]:
        return {"op": "not", "operands": best["operands"], "complement": []}
    return best


def _and(target: np.ndarray, members: dict) -> dict | None:
    """The parent's events taken in by literals (a population or its complement) that each keep every
    member, chosen greedily by how many others each leaves out, until only the members are left."""
    literals = [(p, negated, ~m if negated else m) for p, m in members.items() for negated in (False, True)]
    literals = [lit for lit in literals if lit[2][target].all()]
    kept, chosen = np.ones_like(target), []
    while len(chosen) < MAX_OPERANDS and (kept & ~target).any():
        p, negated, mask = max(literals, key=lambda lit: int((kept & ~lit[2]).sum()), default=(None, False, None))
        if mask is None or not (kept & ~mask).any():
            return None
        chosen.append((p, negated))
        kept &= mask
    if (kept & ~target).any() or not chosen:
        return None
    return {"op": "and", "operands": [p for p, _ in chosen], "complement": [p for p, n in chosen if n]}


def _or(target: np.ndarray, members: dict) -> dict | None:
    """Literals within the members, chosen greedily by how many members each adds, until all are in."""
    literals = [(p, negated, ~m if negated else m) for p, m in members.items() for negated in (False, True)]
    literals = [lit for lit in literals if lit[2].any() and not (lit[2] & ~target).any()]
    union, chosen = np.zeros_like(target), []
    while len(chosen) < MAX_OPERANDS and (target & ~union).any():
        p, negated, mask = max(literals, key=lambda lit: int((lit[2] & ~union).sum()), default=(None, False, None))
        if mask is None or not (mask & ~union).any():
            return None
        chosen.append((p, negated))
        union |= mask
    if (target & ~union).any() or len(chosen) < 2:
        return None
    return {"op": "or", "operands": [p for p, _ in chosen], "complement": [p for p, n in chosen if n]}


def expression(combination: dict, names: dict[str, str]) -> str:
    """The combination in words, by template names: ``CD4 and not Treg``."""
    if combination["op"] == "not":
        return f"not {names[combination['operands'][0]]}"
    terms = [f"not {names[p]}" if p in combination["complement"] else names[p] for p in combination["operands"]]
    return f" {combination['op']} ".join(terms)


__all__ = ["MIN_EVENTS", "boolean_of", "expression"]
