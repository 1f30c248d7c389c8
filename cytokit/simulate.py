"""Synthetic CLL cohorts with ground truth (``cytokit simulate``).

The simulated study: blood of chronic lymphocytic leukaemia (CLL) patients on
lenalidomide, drawn at cycle 2 day 1 (``C2D1``, baseline) and day 8 (``C2D8``).
Each blood sample is acquired twice: an isotype-control tube and a stained tube
(CD19 FITC, 7AAD, LAG3 PE surface, TNF-α APC intracellular). On viable (7AAD−)
CD19+ CLL cells LAG3 rises in responders and TNF-α rises about threefold;
non-responders change by less than 2 points.

Output folder
-------------
::

    OUT_DIR/
      samples.csv                               file,patient,timepoint,stain
      truth.csv                                 planted % positive per file and marker
      CLL001_C2D1_isotype.fcs                   {patient}_{timepoint}_{stain}.fcs
      CLL001_C2D1_stained.fcs
      ...
      truth/CLL001_C2D1_isotype.labels.csv.gz   one row per event of that file

``samples.csv``: ``file`` (relative to the sheet's folder), ``patient``
(``CLL001`` ...), ``timepoint`` (``C2D1`` | ``C2D8``), ``stain``
(``isotype`` | ``stained``).

``truth.csv``: one row per file and marker (``LAG3``, ``TNFa``) with columns
``file, patient, timepoint, stain, marker, population, planted_pct_pos,
labelled_pct_pos, responder``. ``population`` is always ``viable CD19+`` (the
``cll`` class below); ``planted_pct_pos`` is the probability each CLL cell was
made positive with (0 in isotype tubes); ``labelled_pct_pos`` is the share of
that file's ``cll`` events whose label is positive (the planted value plus
sampling error: compare pipelines against this one).

``truth/<file stem>.labels.csv.gz``: gzip CSV, row *i* describes event *i* of
the FCS file, columns ``cls, lag3_pos, tnfa_pos``. ``cls`` is one of
``debris, dead, doublet, cd19neg, cll`` (``doublet`` only in the ``modern``
layout; it includes a few 4–6-cell aggregates that saturate FSC-A);
``lag3_pos``/``tnfa_pos`` are 0/1, 1 only for specifically stained cells in the
stained tube (``cll`` and ``cd19neg`` cells; a doublet is positive when one of
its cells is). Read them with :func:`read_labels`.

Layouts
-------
``calibur``
    As CellQuest writes a BD FACSCalibur file: FCS 2.0, 16-bit big-endian
    integers, 1024 channels; FSC-H linear, SSC-H and FL1-H…FL4-H log-amplified
    over 4 decades (``$PnE`` = 4,0). Compensation was analog, so no spillover.
``modern``
    FCS 3.1 float32, ``$PnR`` 262144, FSC-A/FSC-H/SSC-A, detectors named by
    fluorochrome, a ``Time`` channel with ``$TIMESTEP``, a ``$SPILLOVER`` matrix
    and *uncompensated* data (observed = true @ spillover), 3–5 % doublets and
    a few saturated events (262143).

The populations sit at the same places for every patient; each acquisition
session (patient × timepoint) gets a few per cent of scatter and fluorescence
drift, so fixed gates are slightly wrong and data-driven ones right.
"""

from __future__ import annotations

import gzip
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["CohortDesign", "simulate_cohort", "read_labels", "SPILLOVER", "CLASSES", "LAYOUTS"]

CLASSES = ("debris", "dead", "doublet", "cd19neg", "cll")
LAYOUTS = ("calibur", "modern")
TIMEPOINTS = ("C2D1", "C2D8")
STAINS = ("isotype", "stained")
MARKERS = ("LAG3", "TNFa")

_CALIBUR_CHANNELS = ("FSC-H", "SSC-H", "FL1-H", "FL2-H", "FL3-H", "FL4-H")
_MODERN_FLUOR = ("FITC-A", "PE-A", "PerCP-Cy5-5-A", "APC-A")  # CD19, LAG3, 7AAD, TNFa
_MODERN_CHANNELS = ("FSC-A", "FSC-H", "SSC-A", *_MODERN_FLUOR, "Time")
_MODERN_RANGE = 262144
_TIMESTEP = 0.01  # seconds per Time unit, as FACSDiva writes it
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: Spillover of the ``modern`` layout (rows: source fluorochrome, columns: detector).
SPILLOVER = pd.DataFrame(
    [
        [1.0, 0.21, 0.03, 0.0],
        [0.01, 1.0, 0.10, 0.005],
        [0.0, 0.02, 1.0, 0.05],
        [0.0, 0.0, 0.03, 1.0],
    ],
    index=list(_MODERN_FLUOR),
    columns=list(_MODERN_FLUOR),
)


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


def _draw_patients(n: int, seed: int, design: CohortDesign) -> list[_Patient]:
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
        p.lag3_pct["C2D1"], p.tnfa_pct["C2D1"] = lag3, tnfa
        if p.responder:
            p.lag3_pct["C2D8"] = lag3 + u(design.lag3_rise_pct)
            p.tnfa_pct["C2D8"] = tnfa * u(design.tnfa_fold)
        else:
            p.lag3_pct["C2D8"] = lag3 + u((-change, change))
            p.tnfa_pct["C2D8"] = max(0.5, tnfa + u((-change, change)))
        cll = u(design.cll_pct_of_viable)
        for tp in TIMEPOINTS:
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


# --------------------------------------------------------------------------- layouts


def _date(day: int) -> str:
    d = np.datetime64("2003-01-06") + np.timedelta64(day, "D")
    year, month, dom = str(d).split("-")
    return f"{dom}-{_MONTHS[int(month) - 1]}-{year}"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _calibur(values: dict, stained: bool, meta: dict) -> dict:
    def log_channel(intensity: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.round(1024 * np.log10(np.maximum(intensity, 1.0)) / 4)
        return np.clip(x, 0, 1023).astype(np.uint16)

    events = pd.DataFrame(
        {
            "FSC-H": np.clip(np.round(values["fsc"]), 0, 1023).astype(np.uint16),
            "SSC-H": log_channel(values["ssc"]),
            "FL1-H": log_channel(values["cd19"]),
            "FL2-H": log_channel(values["lag3"]),
            "FL3-H": log_channel(values["aad"]),
            "FL4-H": log_channel(values["tnfa"]),
        }
    )
    markers = {
        "FL1-H": "CD19 FITC",
        "FL2-H": "LAG3 PE" if stained else "IgG1 PE",
        "FL3-H": "7AAD",
        "FL4-H": "TNFa APC" if stained else "IgG1 APC",
    }
    keywords = {
        "$CYT": "FACSCalibur",
        "$SYS": "Macintosh System Software 9.2.2",
        "CREATOR": "CELLQuest Pro 5.2",
        "$CELLS": "peripheral blood, CLL",
        "$SRC": meta["source"],
        "$SMNO": meta["sample_number"],
        "$FIL": meta["file"],
        "$DATE": meta["date"],
        "$BTIM": meta["btim"],
        "$ETIM": meta["etim"],
        "$COM": meta["comment"],
    }
    for i, name in enumerate(_CALIBUR_CHANNELS, start=1):
        keywords[f"$P{i}R"] = "1024"
        keywords[f"$P{i}E"] = "0,0" if name == "FSC-H" else "4,0"
    return dict(data=events, markers=markers, keywords=keywords, version="2.0", datatype="I", bits=16, byteorder=">")


def _modern(rng, values: dict, stained: bool, meta: dict) -> dict:
    n = len(values["fsc"])
    top = _MODERN_RANGE - 1
    fsc_a = values["fsc"] * 200
    true = np.column_stack([values["cd19"] * 60, values["lag3"] * 80, values["aad"] * 50, values["tnfa"] * 70])
    observed = true @ SPILLOVER.to_numpy() + rng.normal(0, 25, (n, 4))  # spill, then detector noise
    seconds = np.cumsum(rng.exponential(1 / meta["rate"], n))
    events = pd.DataFrame(
        {
            "FSC-A": np.clip(fsc_a, 0, top),
            "FSC-H": np.clip(fsc_a * values["ratio"], 0, top),
            "SSC-A": np.clip(values["ssc"] * 800, 0, top),
            **{name: np.minimum(observed[:, j], top) for j, name in enumerate(_MODERN_FLUOR)},
            "Time": seconds / _TIMESTEP,
        }
    ).astype(np.float32)
    isotype = "IgG1 isotype"
    markers = {
        "FITC-A": "CD19",
        "PE-A": "LAG3" if stained else isotype,
        "PerCP-Cy5-5-A": "7AAD",
        "APC-A": "TNFa" if stained else isotype,
    }
    voltages = {"FSC-A": 380, "FSC-H": 380, "SSC-A": 260, "FITC-A": 480, "PE-A": 430, "PerCP-Cy5-5-A": 520, "APC-A": 560}
    keywords = {
        "$CYT": "LSRFortessa",
        "CREATOR": "BD FACSDiva Software Version 8.0.1",
        "$SRC": meta["source"],
        "$FIL": meta["file"],
        "$DATE": meta["date"],
        "$BTIM": meta["btim"],
        "$ETIM": _clock(meta["start"] + float(seconds[-1]) if n else meta["start"]),
        "$TIMESTEP": repr(_TIMESTEP),
        "$COM": meta["comment"],
    }
    for i, name in enumerate(_MODERN_CHANNELS, start=1):
        keywords[f"$P{i}R"] = str(_MODERN_RANGE)
        if name in voltages:
            keywords[f"$P{i}V"] = str(voltages[name])
    return dict(data=events, markers=markers, keywords=keywords, spillover=SPILLOVER, version="3.1", datatype="F")


# --------------------------------------------------------------------------- cohort


def _gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    # mtime=0 and no file name in the gzip header: same seed, same bytes.
    path.write_bytes(gzip.compress(buffer.getvalue().encode(), compresslevel=9, mtime=0))


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read the per-event truth of one simulated FCS file.

    Parameters
    ----------
    path
        The FCS file (its labels are looked up in ``truth/`` next to it) or the
        ``.labels.csv.gz`` file itself.

    Returns
    -------
    pandas.DataFrame
        One row per event in file order: ``cls`` (categorical over
        :data:`CLASSES`), ``lag3_pos`` and ``tnfa_pos`` (bool).
    """
    path = Path(path)
    if path.suffix.lower() == ".fcs":
        path = path.parent / "truth" / f"{path.stem}.labels.csv.gz"
    labels = pd.read_csv(path, dtype={"cls": str, "lag3_pos": np.uint8, "tnfa_pos": np.uint8})
    labels["cls"] = pd.Categorical(labels["cls"], categories=CLASSES)
    return labels.astype({"lag3_pos": bool, "tnfa_pos": bool})


def simulate_cohort(
    out_dir: str | os.PathLike,
    *,
    patients: int = 6,
    events: int = 10_000,
    layout: str = "calibur",
    seed: int = 0,
    design: CohortDesign | None = None,
) -> Path:
    """Write a synthetic CLL cohort: FCS files, a sample sheet and the truth.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed; files of the same names are replaced).
    patients
        Number of patients (``CLL001`` ...); each gets 4 tubes.
    events
        Events per FCS file.
    layout
        ``"calibur"`` (FCS 2.0, 1024-channel log data) or ``"modern"`` (FCS 3.1
        float, uncompensated, with doublets); see the module docstring.
    seed
        Seed of everything; the patients' planted fractions depend only on
        ``seed`` (and ``patients``), so both layouts share them.
    design
        Parameter ranges; default :class:`CohortDesign`.

    Returns
    -------
    pathlib.Path
        The sample sheet, ``out_dir/samples.csv``.

    Examples
    --------
    >>> import tempfile
    >>> sheet = simulate_cohort(tempfile.mkdtemp(), patients=1, events=500)
    >>> pd.read_csv(sheet).columns.tolist()
    ['file', 'patient', 'timepoint', 'stain']
    """
    from .fcs import write_fcs

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if not 1 <= patients <= 999:
        raise ValueError(f"patients must be between 1 and 999, not {patients}")
    if events < 1:
        raise ValueError(f"events must be positive, not {events}")
    design = design or CohortDesign()
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    layout_code = LAYOUTS.index(layout)
    sheet_rows, truth_rows = [], []
    for i, p in enumerate(_draw_patients(patients, seed, design)):
        for t, tp in enumerate(TIMEPOINTS):
            drift = _drift(np.random.default_rng([seed, layout_code, i, t, 0xD1]))
            start = 9 * 3600 + 1800 * (i % 12)
            for s, stain in enumerate(STAINS):
                rng = np.random.default_rng([seed, layout_code, i, t, s])
                stained = stain == "stained"
                values, labels = _tube(rng, p, tp, stained, layout, events, design)
                for key, factor in drift.items():
                    values[key] = values[key] * factor
                name = f"{p.patient}_{tp}_{stain}.fcs"
                meta = {
                    "file": name,
                    "source": f"{p.patient} {tp} {stain}",
                    "sample_number": f"{i + 1}-{t + 1}-{s + 1}",
                    "date": _date(p.day + 7 * t),
                    "btim": _clock(start + 300 * s),
                    "etim": _clock(start + 300 * s + 60),
                    "start": start + 300 * s,
                    "rate": 1500.0,
                    "comment": f"synthetic data: cytokit.simulate layout={layout} seed={seed}",
                }
                spec = _calibur(values, stained, meta) if layout == "calibur" else _modern(rng, values, stained, meta)
                write_fcs(out / name, spec.pop("data"), **spec)
                _gzip_csv(labels, out / "truth" / f"{Path(name).stem}.labels.csv.gz")
                sheet_rows.append({"file": name, "patient": p.patient, "timepoint": tp, "stain": stain})
                cll = labels["cls"] == "cll"
                for marker, planted, column in (
                    ("LAG3", p.lag3_pct[tp], "lag3_pos"),
                    ("TNFa", p.tnfa_pct[tp], "tnfa_pos"),
                ):
                    labelled = 100 * labels.loc[cll, column].mean() if cll.any() else float("nan")
                    truth_rows.append(
                        {
                            "file": name,
                            "patient": p.patient,
                            "timepoint": tp,
                            "stain": stain,
                            "marker": marker,
                            "population": "viable CD19+",
                            "planted_pct_pos": round(planted if stained else 0.0, 3),
                            "labelled_pct_pos": round(labelled, 3),
                            "responder": p.responder,
                        }
                    )
    pd.DataFrame(truth_rows).to_csv(out / "truth.csv", index=False, lineterminator="\n")
    sheet = out / "samples.csv"
    pd.DataFrame(sheet_rows).to_csv(sheet, index=False, lineterminator="\n")
    return sheet
