"""Quality flags of one file: saturation, flow-rate anomalies, thin populations, failed or doubtful gates."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence

import numpy as np

from ._sorted import ascending, sorted_histogram

#: defaults, overridable through :func:`quality_flags`
MIN_EVENTS = 500
MAX_SATURATED = 0.02
FLOW_BINS = 50


def saturated_fraction(sample, channels=None) -> float:
    """Share of events with a value at the top of a channel's range in any non-time channel (of
    ``channels``, ``$PnN``s: default every channel)."""
    return saturation(sample, channels)[0]


def saturation(sample, channels=None) -> tuple[float, dict[str, float]]:
    """``(share of events at the top of any channel's range, {channel: its share})`` over the
    non-time channels (of ``channels``, ``$PnN``s: default every channel), the channels with none left out."""
    if sample.n_events == 0:
        return 0.0, {}
    hit, shares = np.zeros(sample.n_events, dtype=bool), {}
    for row in sample.channels.itertuples():
        if is_time(row.pnn) or row.range <= 1 or (channels is not None and row.pnn not in channels):
            continue
        with np.errstate(over="ignore"):
            top = np.power(10.0, row.decades) * (row.offset or 1.0) if row.decades > 0 else row.range
        values, cut = sample.events[row.pnn].to_numpy(), 0.999 * (top - 1)
        if not values.max() < cut:  # most channels never reach it (a NaN max: compared too)
            at_top = values >= cut
            hit |= at_top
            shares[row.pnn] = float(at_top.mean())
    return float(hit.mean()), shares


def is_time(pnn: str) -> bool:
    """A Time channel: ``Time`` (any case, ``Time1`` ...), MACSQuant's ``HDR-T``."""
    name = str(pnn).strip().lower()
    return name.startswith("time") or name == "hdr-t"


def flow_rate_anomaly(sample, *, bins: int = FLOW_BINS) -> str:
    """A sentence when the event rate along the Time channel is uneven, else ``""``.

    The acquisition is cut into ``bins`` equal time slices; slices with under half
    or over twice the median count are anomalous (clogs, bubbles, drift).
    """
    time = next((c for c in sample.events.columns if is_time(c)), None)
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


def _more_data_sets(sample) -> str:
    """A sentence when the file holds data sets other than the one analysed (``$NEXTDATA``), else ``""``:
    a Guava file's four acquisitions, a Beckman ``.lmd``'s FCS 3.0 copy after its FCS 2.0 one."""
    try:
        last = int(str(sample.keywords.get("$NEXTDATA", "0")).strip() or 0) == 0
        if last and not getattr(sample, "dataset", 0) or sample.path is None:
            return ""  # (zero-padded or not: the file's last data set)
    except ValueError:  # a $NEXTDATA that is no number: the reader warned, and read the first data set
        return ""
    import warnings

    from .fcs import list_datasets

    try:
        with warnings.catch_warnings():  # the data set analysed was read (and warned about) already
            warnings.simplefilter("ignore")
            sets = list_datasets(sample.path)
    except Exception:  # noqa: BLE001 - a flag, never a failure (the data set analysed was read)
        return "the file holds further data sets ($NEXTDATA); only the first was analysed"
    if len(sets) <= 1:
        return ""
    events = ", ".join(f"{int(n):,}" for n in sets["n_events"])
    return (f"the file holds {len(sets)} data sets ({events} events); only data set {sample.dataset} was "
            "analysed (cytokit inspect FILE --dataset N shows each, cytokit gate FILE --dataset N gates it)")


@contextlib.contextmanager
def noting_misreads(path):
    """Read the FCS file ``path`` quietly, keeping its :class:`~cytokit.fcs.FCSDataWarning` messages
    (the events may be misread: DATA holding whole events beyond ``$TOT``, a ``$PnE`` read as linear)
    in the list it yields, without the path; set it as the sample's ``data_warnings``, which
    :func:`quality_flags` reports."""
    from pathlib import Path

    from .fcs import FCSDataWarning, FCSWarning

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", FCSWarning)
        warnings.simplefilter("always", FCSDataWarning)
        yield notes
    prefix = f"{Path(path)}: "
    notes.extend(str(w.message).removeprefix(prefix) for w in caught if issubclass(w.category, FCSDataWarning))


def _linear_on_log(sample, result) -> list[str]:
    """A log-amplified channel ($PnE decades) a gate sees on a linear scale: its events, decoded to 1 to
    10^decades, crowd the bottom of the axis (a FACSCalibur HTS's FSC-H under a template written for a
    linear FSC), and a gate fitted there finds no shape a person would."""
    transforms = getattr(result, "transforms", None) or {}
    decades = dict(zip(sample.channels["pnn"], sample.channels["decades"]))
    out = []
    for dim, transform in transforms.items():
        pnn = result.channel_of(dim)
        if getattr(transform, "kind", "") == "linear" and decades.get(pnn, 0) > 0:
            out.append(f"{pnn} is log-amplified ($PnE {decades[pnn]:g} decades) but the template puts it on a "
                       "linear scale, where its events crowd the bottom of the axis; give its role kind: log "
                       "(or logicle) in the template's transforms")
    return out


def quality_flags(sample, result=None, *, population: str | Sequence[str] | None = None,
                  min_events: int = MIN_EVENTS, max_saturated: float = MAX_SATURATED) -> list[str]:
    """All quality flags of one file, as sentences; ``population``: the path (or paths) of the quantified
    population(s), each flagged below ``min_events``."""
    flags = []
    for path in [population] if isinstance(population, str) else population or ():
        if result is not None and path in result.membership:
            n = int(np.count_nonzero(result.membership[path]))
            if n < min_events:
                flags.append(f"only {n} events in {path} (< {min_events})")
    more = _more_data_sets(sample)
    if more:
        flags.append(more)
    flags.extend(getattr(sample, "data_warnings", ()))  # the reader's doubts about the events (noting_misreads)
    used = set(result.channels.values()) if result is not None and getattr(result, "channels", None) else None
    share, shares = saturation(sample, used)  # an unused, dead channel (a Cytek's FSCA at its top) is no problem
    if share > max_saturated:
        worst = sorted(shares.items(), key=lambda item: -item[1])[:3]
        flags.append(f"{100 * share:.1f}% of events saturated at the top of the range ("
                     + ", ".join(f"{pnn} {100 * v:.1f}%" for pnn, v in worst) + ")")
    rate = flow_rate_anomaly(sample)
    if rate:
        flags.append(rate)
    if result is not None:
        flags.extend(_linear_on_log(sample, result))
        flags.extend(f"{path}: {flag}" for path, flag in result.flags.items() if flag.startswith("gate "))
        if getattr(result, "nonfinite", ""):  # events with NaN or ±inf, in no population
            flags.append(result.nonfinite)
    return flags
