"""Per-sample figures: population counts and marker statistics against the tube's control
(isotype, FMO, unstimulated or unstained: :mod:`cytokit.controls`).

Marker statistics are computed on compensated *scale* values (the units of the
file); positivity thresholds are quantiles, which are the same on any monotone
transform, so the threshold is reported in scale units too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._sorted import quantiles

MARKER_COLUMNS = [
    "file", "patient", "timepoint", "stain", "population", "marker", "channel", "n_events",
    "median", "gmean", "mean", "rcv", "pct_pos", "threshold", "threshold_source",
    "isotype_pct_pos", "isotype_median", "rmfi", "flag",
]


_RCV_LEVELS = np.array([15.87, 50, 84.13]) / 100  # as np.percentile divides them


def summarise(values, quantile: float | None = None) -> dict[str, float]:
    """``n_events, median, gmean, mean, rcv`` of one population's values in one channel.

    ``gmean`` is the geometric mean of the positive values (as FlowJo, which cannot
    take the log of compensated values ≤ 0); ``rcv`` is FlowJo's robust CV,
    ``100 × ½ (P84.13 − P15.87) / median``. With ``quantile``, also ``"quantile"``: that quantile
    of the finite values (a control's positivity threshold), from the same partition.

    Examples
    --------
    >>> round(summarise([1.0, 10.0, 100.0])["gmean"], 9)
    10.0
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    n = len(values)
    extra = {} if quantile is None else {"quantile": np.nan}
    if n == 0:
        return {"n_events": 0, "median": np.nan, "gmean": np.nan, "mean": np.nan, "rcv": np.nan, **extra}
    levels = _RCV_LEVELS if quantile is None else np.append(_RCV_LEVELS, quantile)
    low, median, high, *rest = (float(q) for q in quantiles(values, levels))  # np.quantile's, to the bit
    positive = values[values > 0]
    gmean = float(np.exp(np.mean(np.log(positive)))) if len(positive) else np.nan
    rcv = float(100 * 0.5 * (high - low) / median) if median else np.nan
    extra = {"quantile": rest[0]} if rest else extra
    return {"n_events": n, "median": median, "gmean": gmean, "mean": float(values.mean()), "rcv": rcv, **extra}


def pct_above(values, threshold: float) -> float:
    """Percentage of finite ``values`` strictly above ``threshold`` (NaN when empty)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values) or not np.isfinite(threshold):
        return float("nan")
    return float(100.0 * np.mean(values > threshold))


def marker_values(result, population_path: str, role: str, *, scale: bool = True) -> np.ndarray:
    """Values of one role's channel on one population of a :class:`GatingResult` (on the role's
    own gating scale when not ``scale``)."""
    channel = result.channels.get(role)
    mask = result.membership.get(population_path)
    if channel is None or mask is None:
        return np.empty(0)
    return result.scale[channel].to_numpy()[mask] if scale else result.transformed(result.dimension(role), mask)


def quantify(stained, isotype, *, meta: dict, isotype_meta: dict | None = None,
             is_control: bool = False, min_events: int = 500) -> list[dict]:
    """Marker rows (see ``docs/outputs.md``) for a stained tube, or for a control tube itself.

    ``stained`` is the tube's :class:`GatingResult`; ``isotype`` its matched control's (of any kind:
    ``isotype_meta["stain"]`` names it, e.g. ``unstimulated``; the ``isotype_*`` columns keep their name).
    With ``is_control`` the tube is the control and its threshold is its own quantile;
    a stained tube without a control gets no threshold (NaN, flagged). A population of fewer than
    ``min_events`` events, in the tube or its control, is flagged (the flag follows into ``paired``).
    """
    rows = []
    template = stained.template
    kind = (isotype_meta or {}).get("stain") or "isotype"
    for marker in template.markers:
        path = template.path_of(marker.population)
        values = marker_values(stained, path, marker.channel)
        own = summarise(values, marker.quantile if is_control else None)
        row = {**meta, "population": path, "marker": marker.name,
               "channel": stained.channels.get(marker.channel, ""), **own}
        row.pop("quantile", None)
        control = stained if is_control else isotype
        if is_control:
            control_values, iso_summary = values, own
        else:
            control_values = marker_values(control, path, marker.channel) if control is not None else np.empty(0)
            iso_summary = summarise(control_values, marker.quantile)  # its median and threshold: one partition
        flags = _gate_flags(stained, path)
        if control is not None and not is_control:
            iso = (isotype_meta or {}).get("file", f"{kind} tube")
            flags += [f"{kind} {iso}: {flag}" for flag in _gate_flags(control, path)]
            there, here = control.channels.get(marker.channel, ""), row["channel"]
            if there != here:  # its $PnS names the marker on another detector: a threshold from another detector
                flags.append(f"{kind} {iso} measured {marker.name} on {there or 'no channel'}, this tube on "
                             f"{here}: the threshold is another detector's (check both tubes' $PnS, or give "
                             "a panel sheet)")
        if 0 < len(values) < min_events:
            flags.append(f"only {len(values)} events in {marker.population} (< {min_events}): its % positive "
                         "and median rest on few cells")
        if not is_control and 0 < len(control_values) < min_events:
            flags.append(f"{kind} {(isotype_meta or {}).get('file', 'tube')}: only {len(control_values)} events in "
                         f"{marker.population} (< {min_events}): the threshold rests on few cells")
        if control is None and marker.method != "none":
            threshold, source = np.nan, "none"
            flags.append("no matched control tube (isotype, FMO, unstimulated ...): positivity not computed")
        elif marker.method == "none":
            threshold, source = np.nan, "none"
        else:
            threshold = iso_summary["quantile"]  # the control's quantile, NaN without events
            name = (isotype_meta or meta).get("file", "")
            source = f"{marker.quantile:g} quantile of {'own events' if is_control else kind + ' ' + name}"
            if not len(control_values):
                flags.append("no control events in the population")
            elif _constant(control, path, marker.channel):  # a detector off: compensation alone spreads it
                threshold = np.nan
                flags.append(f"{'this tube' if is_control else kind + ' ' + name}: {marker.name}'s detector "
                             f"{control.channels.get(marker.channel)} holds one value in every event: no "
                             "threshold, positivity not computed")
        if not (row["median"] > 0 and iso_summary["median"] > 0) and len(values) and len(control_values):
            flags.append(f"rMFI not computed: a median at or below 0 (this tube {row['median']:.4g}, the control "
                         f"{iso_summary['median']:.4g}): a ratio of such medians is no fold change")
        row.update({
            "pct_pos": pct_above(values, threshold),
            "threshold": threshold,
            "threshold_source": source,
            "isotype_pct_pos": pct_above(control_values, threshold),
            "isotype_median": iso_summary["median"],
            "rmfi": row["median"] / iso_summary["median"] if row["median"] > 0 and iso_summary["median"] > 0 else np.nan,
            "flag": "; ".join(dict.fromkeys(flags)),
        })
        rows.append(row)
    return rows


def _constant(result, path: str, role: str) -> bool:
    """Whether the role's detector recorded one value for all of the population's events (before
    compensation, which mixes other detectors' light into it)."""
    channel, mask = result.channels.get(role), result.membership.get(path)
    if channel is None or mask is None or channel not in result.sample.events:
        return False
    raw = result.sample.events[channel].to_numpy()[mask]
    return len(raw) > 1 and np.nanmax(raw) == np.nanmin(raw)


def _gate_flags(result, path: str) -> list[str]:
    """The population's own flag, and its ancestors' failed or doubtful gates (a population gated
    under a doubtful viability cut is doubtful too)."""
    flags = [result.flags[path]] if result.flags.get(path) else []
    parent = result.parents.get(path, "root")
    while parent and parent != "root":
        flag = result.flags.get(parent, "")
        if flag.startswith("gate "):
            flags.append(f"{parent}: {flag}")
        parent = result.parents.get(parent, "root")
    return flags


def population_rows(result, meta: dict) -> list[dict]:
    """Population rows (``file, population, parent, count, pct_parent, pct_total, confidence, flag``)."""
    table = result.counts()
    return [{"file": meta["file"], **r} for r in table.to_dict("records")]


def empty_markers() -> pd.DataFrame:
    return pd.DataFrame(columns=MARKER_COLUMNS)
