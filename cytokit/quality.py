"""Quality flags of one file: saturation, flow-rate anomalies, thin populations, failed or doubtful gates."""

from __future__ import annotations

import numpy as np

from ._sorted import ascending, sorted_histogram

#: defaults, overridable through :func:`quality_flags`
MIN_EVENTS = 500
MAX_SATURATED = 0.02
FLOW_BINS = 50


def saturated_fraction(sample) -> float:
    """Share of events with a value at the top of a channel's range in any non-time channel."""
    if sample.n_events == 0:
        return 0.0
    hit = np.zeros(sample.n_events, dtype=bool)
    for row in sample.channels.itertuples():
        if row.pnn.lower() == "time" or row.range <= 1:
            continue
        with np.errstate(over="ignore"):
            top = np.power(10.0, row.decades) * (row.offset or 1.0) if row.decades > 0 else row.range
        values, cut = sample.events[row.pnn].to_numpy(), 0.999 * (top - 1)
        if not values.max() < cut:  # most channels never reach it (a NaN max: compared too)
            hit |= values >= cut
    return float(hit.mean())


def flow_rate_anomaly(sample, *, bins: int = FLOW_BINS) -> str:
    """A sentence when the event rate along the Time channel is uneven, else ``""``.

    The acquisition is cut into ``bins`` equal time slices; slices with under half
    or over twice the median count are anomalous (clogs, bubbles, drift).
    """
    time = next((c for c in sample.events.columns if c.lower() == "time"), None)
    if time is None or sample.n_events < 10 * bins:
        return ""
    values = np.asarray(sample.events[time].to_numpy(), dtype=np.float64)
    finite = values[np.isfinite(values)]
    if len(finite) < len(values):
        return f"flow rate: {len(values) - len(finite)} events have a non-finite {time} value"
    scale = float(np.max(np.abs(finite)))
    if scale == 0 or not np.isfinite(scale):
        return ""
    finite = finite / scale  # huge time steps ($TIMESTEP 1e308) overflow the histogram's range otherwise
    if finite.max() <= finite.min():
        return f"flow rate: every event has the same {time} value"
    ordered = ascending(finite)  # already, in acquisition order: NumPy's bins by searching their edges
    counts, _ = sorted_histogram(ordered, bins, (ordered[0], ordered[-1]))
    median = np.median(counts)
    if median <= 0:
        return "flow rate: most of the acquisition time has no events"
    odd = np.flatnonzero((counts < 0.5 * median) | (counts > 2 * median))
    if len(odd) > 0.05 * bins:
        return f"flow rate: {len(odd)} of {bins} time slices have under ½ or over 2× the median event rate"
    return ""


def quality_flags(sample, result=None, *, population: str | None = None, min_events: int = MIN_EVENTS,
                  max_saturated: float = MAX_SATURATED) -> list[str]:
    """All quality flags of one file, as sentences."""
    flags = []
    if result is not None and population is not None and population in result.membership:
        n = int(result.membership[population].sum())
        if n < min_events:
            flags.append(f"only {n} events in {population} (< {min_events})")
    share = saturated_fraction(sample)
    if share > max_saturated:
        flags.append(f"{100 * share:.1f}% of events saturated at the top of the range")
    rate = flow_rate_anomaly(sample)
    if rate:
        flags.append(rate)
    if result is not None:
        flags.extend(f"{path}: {flag}" for path, flag in result.flags.items() if flag.startswith("gate "))
        if getattr(result, "nonfinite", ""):  # events with NaN or ±inf, in no population
            flags.append(result.nonfinite)
    return flags
