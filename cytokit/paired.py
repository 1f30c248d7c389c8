"""Per-patient pairs: each marker's baseline stained tube against its follow-up tube.

One row per patient × marker × population (× stain, when a timepoint has several stained tubes):
% positive, MFI and rMFI at both timepoints and their changes, and the distribution-shift
metrics of :func:`cytokit.shift.shift_metrics` on the two tubes' values, each referenced to its
own control tube (its timepoint's isotype, or the control its sheet row names) so that a session's
drift, which moves both tubes of a session alike, is not read as a change. Controls of two kinds
(an isotype at baseline, an unstained tube at follow-up) do not reference one another: the protected
shift columns stay empty and ``flag`` says why. :mod:`cytokit.cohort` summarises these rows over patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .controls import control_kind
from .shift import SHIFT_METRICS, shift_metrics

PAIRED_COLUMNS = [
    "patient", "marker", "population", "baseline", "followup", "pct_pos_baseline", "pct_pos_followup",
    "delta_pct_pos", "mfi_baseline", "mfi_followup", "log2_mfi_ratio_raw", "rmfi_baseline", "rmfi_followup",
    "delta_rmfi", "log2_rmfi_ratio", *SHIFT_METRICS, "n_baseline", "n_followup", "stain", "flag",
]


def paired_table(markers: pd.DataFrame, samples: pd.DataFrame, values: dict, *, baseline: str,
                 followup: str) -> pd.DataFrame:
    """One row per patient × marker × population (× stain, when a timepoint has several stained
    tubes) comparing baseline with follow-up stained tubes."""
    ok = set(samples.loc[samples["status"] == "ok", "file"])
    analysed = set(samples.loc[samples["status"] != "error", "file"])  # a control may serve another timepoint
    is_control = markers["stain"].map(control_kind).notna()
    stained = markers[~is_control & markers["file"].isin(ok)]
    isotypes = markers[is_control & markers["file"].isin(analysed)]
    named = dict(zip(samples["file"], samples["control_file"])) if "control_file" in samples else {}
    rows = []
    for _, group in stained.groupby(["patient", "marker", "population"]):
        for b, f in _tube_pairs(group[group["timepoint"] == baseline], group[group["timepoint"] == followup]):
            controls = (_isotype_file(b, isotypes, named), _isotype_file(f, isotypes, named))
            rows.append(_paired_row(b, f, values, baseline=baseline, followup=followup, isotypes=controls))
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def _tube_pairs(base: pd.DataFrame, follow: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    """A patient's baseline and follow-up stained tubes of one marker: one tube at each
    timepoint pair whatever their labels; several pair by stain label."""
    if len(base) == 1 and len(follow) == 1:
        return [(base.iloc[0], follow.iloc[0])]
    later = {f.stain: f for _, f in follow.iterrows()}
    return [(b, later[b.stain]) for _, b in base.iterrows() if b.stain in later]


def _isotype_file(tube: pd.Series, isotypes: pd.DataFrame, named: dict) -> tuple[str, str] | None:
    """``tube``'s control (file, kind): the one ``named`` (the samples' ``control_file``), else its
    timepoint's: the one of its patient, timepoint, marker and population, or among several the one
    its threshold was learned on."""
    mine = isotypes[(isotypes["file"] == named.get(tube.file, "")) & (isotypes["marker"] == tube.marker)
                    & (isotypes["population"] == tube.population)]
    if len(mine) == 1:
        return mine["file"].iloc[0], mine["stain"].iloc[0]
    if named.get(tube.file):
        return None  # its control was not analysed
    same = isotypes[(isotypes["patient"] == tube.patient) & (isotypes["timepoint"] == tube.timepoint)
                    & (isotypes["marker"] == tube.marker) & (isotypes["population"] == tube.population)]
    if len(same) == 1:
        return same["file"].iloc[0], same["stain"].iloc[0]
    learned = [(n, k) for n, k in zip(same["file"], same["stain"])
               if str(tube.get("threshold_source", "")).endswith(f" {n}")]
    return learned[0] if len(learned) == 1 else None


def _log2_ratio(follow: float, base: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log2(follow / base)) if base > 0 and follow > 0 else np.nan


def _paired_row(b: pd.Series, f: pd.Series, values: dict, *, baseline: str, followup: str,
                isotypes: tuple = (None, None)) -> dict:
    """``isotypes``: each tube's control as (file, kind), or None."""
    marker = b.marker
    flags = [f"{tube.timepoint}: {tube.flag}" for tube in (b, f) if tube.flag]
    if all(isotypes) and isotypes[0][1] != isotypes[1][1]:
        flags.append(f"controls of two kinds ({isotypes[0][1]} at {b.timepoint}, {isotypes[1][1]} at "
                     f"{f.timepoint}): the protected shift metrics are not computed")
        isotypes = (None, None)
    iso_b, iso_f = (values.get((control[0], marker)) if control else None for control in isotypes)
    shifts = shift_metrics(values.get((b.file, marker), np.empty(0)), values.get((f.file, marker), np.empty(0)),
                           baseline_isotype=iso_b, followup_isotype=iso_f)
    return {
        "patient": b.patient, "marker": marker, "population": b.population,
        "baseline": baseline, "followup": followup,
        "pct_pos_baseline": b.pct_pos, "pct_pos_followup": f.pct_pos,
        "delta_pct_pos": f.pct_pos - b.pct_pos,
        "mfi_baseline": b["median"], "mfi_followup": f["median"], "log2_mfi_ratio_raw": _log2_ratio(f["median"], b["median"]),
        "rmfi_baseline": b.rmfi, "rmfi_followup": f.rmfi, "delta_rmfi": f.rmfi - b.rmfi,
        "log2_rmfi_ratio": _log2_ratio(f.rmfi, b.rmfi),
        **shifts, "n_baseline": b.n_events, "n_followup": f.n_events,
        "stain": b.stain if b.stain == f.stain else f"{b.stain}/{f.stain}",
        "flag": "; ".join(flags),
    }
