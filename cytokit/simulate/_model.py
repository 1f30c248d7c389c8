"""The cohort model: design ranges, patients, the event classes and their marker distributions, labels.

Everything the truth is made of; ``_layouts`` turns the events into the contents of FCS files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CLASSES = ("debris", "dead", "doublet", "cd19neg", "cll")
TIMEPOINTS = ("C2D1", "C2D8")
STAINS = ("isotype", "stained")
MARKERS = ("LAG3", "TNFa")


@dataclass(frozen=True)
class CohortDesign:
    """Ranges each patient's parameters are drawn from (uniformly); all in per cent.

    Parameters
    ----------
    debris_pct, dead_pct, doublet_pct
        Share of all events per acquisition session (doublets: ``modern`` only).
    cll_pct_of_viable
        CD19+ CLL cells among viable single lymphocytes, per patient.
    lag3_baseline_pct, lag3_rise_pct
        LAG3+ CLL cells at C2D1, and the rise at C2D8 in responders (points).
    tnfa_baseline_pct, tnfa_fold
        TNF-α+ CLL cells at C2D1, and the C2D8 fold change in responders.
    nonresponder_change_pct
        Non-responders change each marker by less than this many points.
    nonresponder_share
        Share of patients who do not respond (at least one when ``patients >= 2``).
    cd19neg_lag3_pct, cd19neg_tnfa_pct
        Positive CD19− lymphocytes (activated T/NK cells) in the stained tube.
    nonspecific_binding
        Factor by which stained-tube negatives are brighter than the isotype's.
    """

    debris_pct: tuple[float, float] = (8.0, 12.0)
    dead_pct: tuple[float, float] = (10.0, 15.0)
    doublet_pct: tuple[float, float] = (3.0, 5.0)
    cll_pct_of_viable: tuple[float, float] = (60.0, 85.0)
    lag3_baseline_pct: tuple[float, float] = (5.0, 20.0)
    lag3_rise_pct: tuple[float, float] = (5.0, 20.0)
    tnfa_baseline_pct: tuple[float, float] = (3.0, 10.0)
    tnfa_fold: tuple[float, float] = (2.5, 3.5)
    nonresponder_change_pct: float = 1.5
    nonresponder_share: float = 1 / 6
    cd19neg_lag3_pct: tuple[float, float] = (2.0, 6.0)
    cd19neg_tnfa_pct: tuple[float, float] = (1.0, 4.0)
    nonspecific_binding: float = 1.12


@dataclass
class _Patient:
    """One patient's drawn parameters; per-timepoint values keyed by timepoint."""

    patient: str
    responder: bool
    cd19_log10: float  # CD19 level of this patient's CLL clone
    cd19neg_lag3_pct: float
    cd19neg_tnfa_pct: float
    lag3_pct: dict[str, float] = field(default_factory=dict)
    tnfa_pct: dict[str, float] = field(default_factory=dict)
    class_pct: dict[str, dict[str, float]] = field(default_factory=dict)  # timepoint -> class -> %
    day: int = 0  # acquisition day of C2D1, days after 2003-01-06


def _draw_patients(n: int, seed: int, design: CohortDesign,
                   timepoints: tuple[str, ...] = TIMEPOINTS) -> list[_Patient]:
    """Each later timepoint changes from the one before: responders' LAG3 rises by a fresh draw of
    ``lag3_rise_pct`` and TNF-α by the first timepoint's value times a fresh ``tnfa_fold`` − 1
    (both at most 95 %); non-responders change by less than ``nonresponder_change_pct``. Two
    timepoints draw what they always drew."""
    rng = np.random.default_rng([seed, 0xC11])
    n_non = 0 if n < 2 else max(1, round(n * design.nonresponder_share))
    nonresponders = set(rng.choice(n, size=n_non, replace=False).tolist())
    change = design.nonresponder_change_pct
    patients = []
    for i in range(n):
        u = lambda bounds: float(rng.uniform(*bounds))  # noqa: E731
        p = _Patient(
            patient=f"CLL{i + 1:03d}",
            responder=i not in nonresponders,
            cd19_log10=u((1.80, 2.05)),
            cd19neg_lag3_pct=u(design.cd19neg_lag3_pct),
            cd19neg_tnfa_pct=u(design.cd19neg_tnfa_pct),
            day=int(rng.integers(0, 700)),
        )
        lag3, tnfa = u(design.lag3_baseline_pct), u(design.tnfa_baseline_pct)
        p.lag3_pct[timepoints[0]], p.tnfa_pct[timepoints[0]] = lag3, tnfa
        first = tnfa
        for k, tp in enumerate(timepoints[1:]):
            if p.responder:  # TNF-α: each rise is the first value times (fold - 1), the first one as a fold
                lag3 = min(95.0, lag3 + u(design.lag3_rise_pct))
                fold = u(design.tnfa_fold)
                tnfa = min(95.0, tnfa * fold if k == 0 else tnfa + first * (fold - 1))
            else:
                lag3 = lag3 + u((-change, change))
                tnfa = max(0.5, tnfa + u((-change, change)))
            p.lag3_pct[tp], p.tnfa_pct[tp] = lag3, tnfa
        cll = u(design.cll_pct_of_viable)
        for tp in timepoints:
            p.class_pct[tp] = {
                "debris": u(design.debris_pct),
                "dead": u(design.dead_pct),
                "doublet": u(design.doublet_pct),
                "cll_of_viable": float(np.clip(cll + rng.normal(0, 2), 55, 90)),
            }
        patients.append(p)
    return patients


# --------------------------------------------------------------------------- events
# Cells are made in "calibur units": FSC in linear channels (0-1023), every other
# parameter as an intensity on the 1-10^4 log scale. Layouts map these to their files.


def _lognormal(rng: np.random.Generator, log10_median: float, sd: float, n: int) -> np.ndarray:
    return 10.0 ** rng.normal(log10_median, sd, n)


def _cells(rng, cls: str, n: int, p: _Patient, tp: str, stained: bool, design: CohortDesign):
    """Singlets of one class: parameter dict, LAG3 and TNF-α positivity labels."""
    nsb = math.log10(design.nonspecific_binding) if stained else 0.0
    lag3 = _lognormal(rng, 0.55 + nsb, 0.20, n)
    tnfa = _lognormal(rng, 0.45 + nsb, 0.20, n)
    lag3_pos = np.zeros(n, dtype=bool)
    tnfa_pos = np.zeros(n, dtype=bool)
    ratio = rng.normal(0.86, 0.025, n)  # FSC-H / FSC-A of a singlet
    if cls == "debris":
        fsc = _lognormal(rng, math.log10(70), 0.24, n)
        ssc = _lognormal(rng, 0.9, 0.30, n)
        cd19 = _lognormal(rng, 0.4, 0.30, n)
        lag3, tnfa = _lognormal(rng, 0.4, 0.3, n), _lognormal(rng, 0.35, 0.3, n)
        # Half of the debris holds nuclear fragments, which take up 7AAD.
        aad = np.where(rng.random(n) < 0.5, _lognormal(rng, 0.5, 0.3, n), _lognormal(rng, 1.8, 0.4, n))
        ratio = rng.normal(0.88, 0.05, n)
    elif cls == "dead":
        fsc = rng.normal(260, 55, n)
        ssc = _lognormal(rng, 1.55, 0.15, n)
        # Most dead cells are 7AAD-bright; late-apoptotic ones are dimmer.
        aad = np.where(rng.random(n) < 0.15, _lognormal(rng, 1.9, 0.2, n), _lognormal(rng, 2.6, 0.25, n))
        from_cll = rng.random(n) < p.class_pct[tp]["cll_of_viable"] / 100
        cd19 = np.where(from_cll, _lognormal(rng, p.cd19_log10 - 0.15, 0.25, n), _lognormal(rng, 0.85, 0.25, n))
        lag3, tnfa = lag3 * 2.0, tnfa * 2.0  # dead cells bind antibodies non-specifically
    else:
        is_cll = cls == "cll"
        fsc = rng.normal(360 if is_cll else 345, 35, n)
        ssc = _lognormal(rng, 1.40, 0.10, n)
        aad = _lognormal(rng, 0.75, 0.18, n)
        cd19 = _lognormal(rng, p.cd19_log10, 0.20, n) if is_cll else _lognormal(rng, 0.70, 0.22, n)
        if stained:
            lag3_p = p.lag3_pct[tp] if is_cll else p.cd19neg_lag3_pct
            tnfa_p = p.tnfa_pct[tp] if is_cll else p.cd19neg_tnfa_pct
            lag3_pos = rng.random(n) < lag3_p / 100
            tnfa_pos = rng.random(n) < tnfa_p / 100
            lag3[lag3_pos] = _lognormal(rng, 1.55, 0.25, int(lag3_pos.sum()))
            tnfa[tnfa_pos] = _lognormal(rng, 1.65, 0.28, int(tnfa_pos.sum()))
    values = {"fsc": fsc, "ssc": ssc, "cd19": cd19, "lag3": lag3, "aad": aad, "tnfa": tnfa, "ratio": ratio}
    return values, lag3_pos, tnfa_pos


def _doublets(rng, n: int, p: _Patient, tp: str, stained: bool, design: CohortDesign):
    """Doublets, and a few 4-6-cell aggregates whose FSC-A saturates the detector."""
    if n == 0:
        values, lag3_pos, tnfa_pos = _cells(rng, "cll", 0, p, tp, stained, design)
        return values, lag3_pos, tnfa_pos
    size = np.where(rng.random(n) < 0.05, rng.integers(4, 7, n), 2)
    total = int(size.sum())
    pct = p.class_pct[tp]
    viable = 100 - pct["debris"] - pct["dead"] - pct["doublet"]
    weights = np.array([pct["dead"], viable * (1 - pct["cll_of_viable"] / 100), viable * pct["cll_of_viable"] / 100])
    kinds = rng.choice(3, size=total, p=weights / weights.sum())
    parts = {key: np.empty(total) for key in ("fsc", "ssc", "cd19", "lag3", "aad", "tnfa")}
    lag3_pos = np.zeros(total, dtype=bool)
    tnfa_pos = np.zeros(total, dtype=bool)
    for k, cls in enumerate(("dead", "cd19neg", "cll")):
        where = np.flatnonzero(kinds == k)
        values, l_pos, t_pos = _cells(rng, cls, len(where), p, tp, stained, design)
        for key in parts:
            parts[key][where] = values[key]
        lag3_pos[where], tnfa_pos[where] = l_pos, t_pos
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    values = {key: np.add.reduceat(column, starts) for key, column in parts.items()}
    values["ratio"] = np.where(size == 2, rng.normal(0.56, 0.05, n), rng.normal(0.45, 0.05, n))
    any_pos = lambda labels: np.logical_or.reduceat(labels, starts)  # noqa: E731
    return values, any_pos(lag3_pos), any_pos(tnfa_pos)


def _tube(rng, p: _Patient, tp: str, stained: bool, layout: str, n: int, design: CohortDesign):
    """All events of one tube, shuffled: parameter dict and the labels DataFrame."""
    pct = p.class_pct[tp]
    doublet = pct["doublet"] if layout == "modern" else 0.0
    viable = 100 - pct["debris"] - pct["dead"] - doublet
    shares = {
        "debris": pct["debris"],
        "dead": pct["dead"],
        "doublet": doublet,
        "cd19neg": viable * (1 - pct["cll_of_viable"] / 100),
        "cll": viable * pct["cll_of_viable"] / 100,
    }
    counts = rng.multinomial(n, np.array([shares[c] for c in CLASSES]) / 100)
    chunks, labels = [], []
    for code, (cls, count) in enumerate(zip(CLASSES, counts)):
        if cls == "doublet":
            values, lag3_pos, tnfa_pos = _doublets(rng, int(count), p, tp, stained, design)
        else:
            values, lag3_pos, tnfa_pos = _cells(rng, cls, int(count), p, tp, stained, design)
        chunks.append(values)
        labels.append(np.column_stack([np.full(int(count), code), lag3_pos, tnfa_pos]))
    order = rng.permutation(n)
    values = {key: np.concatenate([c[key] for c in chunks])[order] for key in chunks[0]}
    coded = np.concatenate(labels)[order]
    frame = pd.DataFrame(
        {
            "cls": np.asarray(CLASSES)[coded[:, 0]],
            "lag3_pos": coded[:, 1].astype(np.uint8),
            "tnfa_pos": coded[:, 2].astype(np.uint8),
        }
    )
    return values, frame


def _drift(rng) -> dict[str, float]:
    """Multiplicative scatter and fluorescence drift of one acquisition session."""
    drift = {key: float(np.exp(rng.normal(0, 0.04))) for key in ("fsc", "ssc")}
    drift.update({key: float(np.exp(rng.normal(0, 0.07))) for key in ("cd19", "lag3", "aad", "tnfa")})
    return drift
