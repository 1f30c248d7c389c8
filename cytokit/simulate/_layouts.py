"""The two file layouts, ``calibur`` and ``modern``: a tube's events as FCS channels and keywords."""

from __future__ import annotations

import numpy as np
import pandas as pd

LAYOUTS = ("calibur", "modern")

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

