"""NumPy's quantiles, median and even-bin histogram, to the bit, read off values sorted once.

``np.quantile``, ``np.median`` and ``np.histogram`` each pass over (or partition) the whole
array again; on an earlier session's VM NumPy 2's SIMD sort of 10**6 float64 took 5.6 ms, a 4-level
``np.quantile`` 13.1 ms, ``np.median`` 9.2 ms and a 1,024-bin histogram 6.0 ms. Where one array needs several of them
(a density's grid and bins, a marker's median and robust CV), one sort and index look-ups are
cheaper, and the results are NumPy's own to the bit (``tests/test_sorted.py``).

Not on every CPU: NumPy's AVX-512 sort (x86-simd-sort) is several times slower on AMD Zen 4, whose
memory-destination compress stores are microcoded (numpy/x86-simd-sort#6): there 10**6 float64
took 63 ms to sort, 12 ms with AVX-512 disabled, and a 4-level ``np.quantile`` 20 ms.
:func:`quantiles` and :func:`median` sort only where :func:`sorting_pays` (timed once per
process); the results are the same bits either way.
"""

from __future__ import annotations

import functools
import time

import numpy as np


def ascending(values: np.ndarray) -> np.ndarray:
    """``values`` sorted: itself when it already is (one pass instead of a sort)."""
    if values.size < 2 or bool(np.all(values[1:] >= values[:-1])):
        return values
    return np.sort(values)


@functools.lru_cache(maxsize=None)
def sorting_pays() -> bool:
    """Whether one sort of an array is faster here than NumPy's partitions for four quantiles of it,
    timed once per process on 2**16 values (best of 3, about 10 ms in all)."""
    values = np.random.default_rng(0).random(1 << 16)

    def best(work) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return min(times)

    return best(lambda: np.sort(values)) < best(lambda: np.quantile(values, [0.001, 0.25, 0.75, 0.999]))


def quantiles(values: np.ndarray, q) -> np.ndarray:
    """``np.quantile(values, q)`` of finite values, to the bit: read off one sort where that pays, else
    off one partition around their ranks (what ``np.quantile`` does, without its 0.4 ms of overhead:
    eight times as long as the partition of 20,000 values)."""
    if sorting_pays():
        return sorted_quantiles(np.sort(values), q)
    low, high = _ranks(values.size, q)
    return _read_off(np.partition(values, np.union1d(low, high)), q)


def _ranks(n: int, q) -> tuple[np.ndarray, np.ndarray]:
    below = np.floor((n - 1) * np.asarray(q, dtype=np.float64)).astype(np.intp)
    return below, np.minimum(below + 1, n - 1)


def median(values: np.ndarray) -> float:
    """``np.median`` of finite, non-empty values, to the bit: read off one sort where that pays."""
    return sorted_median(np.sort(values)) if sorting_pays() else float(np.median(values))


def sorted_quantiles(ordered: np.ndarray, q) -> np.ndarray:
    """``np.quantile(ordered, q)`` (its default, linear method, to the bit) of sorted, finite
    values, read off by index: ``np.quantile`` partitions the array again around every rank."""
    return _read_off(ordered, q)


def _read_off(ordered: np.ndarray, q) -> np.ndarray:
    """The quantiles of values whose ranks ``q`` needs (and the next ones) are in sorted place."""
    virtual = (ordered.size - 1) * np.asarray(q, dtype=np.float64)
    gamma = virtual - np.floor(virtual)
    low, high = _ranks(ordered.size, q)
    a, b = ordered[low], ordered[high]
    out = a + (b - a) * gamma
    upper = gamma >= 0.5  # as numpy's lerp: from the upper neighbour past the midpoint
    out[upper] = (b - (b - a) * (1 - gamma))[upper]
    return out


def sorted_median(ordered: np.ndarray) -> float:
    """``np.median`` of sorted, finite, non-empty values (the mean of the middle two, as it takes it)."""
    n = ordered.size
    if n % 2:
        return float(ordered[n // 2])
    return float(np.mean(ordered[n // 2 - 1:n // 2 + 1]))


def sorted_histogram(ordered: np.ndarray, bins: int, range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(ordered, bins, range)`` of sorted values: the same edges (its ``linspace``)
    and counts (each bin half-open, the last closed, values outside ``range`` dropped), by
    searching the edges in the values instead of binning every value."""
    ordered = np.asarray(ordered, dtype=np.float64)  # float64 edges, as np.histogram's for float64 values
    lo, hi = float(range[0]), float(range[1])
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"histogram range must be finite and ascending, got [{lo}, {hi}]")
    if lo == hi:  # widened as np.histogram widens it
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1, endpoint=True)
    below = np.searchsorted(ordered, edges, side="left")  # values < each edge
    below[-1] = np.searchsorted(ordered, edges[-1], side="right")  # the last bin holds its right edge
    return np.diff(below), edges
