"""Cohort statistics over paired per-patient changes (baseline → follow-up).

The input is the *paired table*: one row per (patient, marker, population),
holding per-patient changes (``delta_pct_pos``, ``log2_mfi_ratio``,
``delta_rmfi`` ...) and baseline-vs-follow-up distances from
:mod:`cytokit.shift` (``overton_pct_pos``, ``ks_d``, ``pb_tx``, ``emd`` ...).
:func:`cohort_summary` reduces it to one row per (marker, population, metric):
location, a bootstrap confidence interval, paired tests with
Benjamini–Hochberg q-values, and how many patients went up or down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .errors import PairingError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_TOLERANCES",
    "DISTANCE_METRICS",
    "SUMMARY_COLUMNS",
    "bootstrap_ci",
    "benjamini_hochberg",
    "cohort_summary",
]

DEFAULT_METRICS = (
    "delta_pct_pos",
    "log2_mfi_ratio",
    "delta_rmfi",
    "overton_pct_pos",
    "ks_d",
    "pb_tx",
    "emd",
)
"""Metric columns :func:`cohort_summary` looks for by default."""

DISTANCE_METRICS = frozenset({"overton_pct_pos", "ks_d", "pb_chi2", "pb_tx", "emd"})
"""Unsigned baseline-vs-follow-up distances (≥ 0); every other metric is a signed change."""

DEFAULT_TOLERANCES = {"delta_pct_pos": 1.0, "log2_mfi_ratio": 0.1, "delta_rmfi": 0.1}
"""Change within ±tolerance counts as unchanged; metrics not listed use 0."""

SUMMARY_COLUMNS = (
    "marker",
    "population",
    "metric",
    "n_pairs",
    "median_delta",
    "mean_delta",
    "ci_low",
    "ci_high",
    "p_wilcoxon",
    "p_ttest",
    "q_bh",
    "n_up",
    "n_down",
    "n_unchanged",
    "tolerance",
)
"""Columns of :func:`cohort_summary`, in order."""

# Resamples are drawn in blocks of at most this many values, so a large sample
# does not allocate an n_boot × n matrix at once.
_BOOT_BLOCK_VALUES = 2_000_000


def _finite(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    return array[~np.isnan(array)]


def bootstrap_ci(
    values: ArrayLike,
    *,
    statistic: Callable[..., np.ndarray] = np.median,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a statistic.

    ``n_boot`` samples of the same size are drawn with replacement, the
    statistic is computed on each, and the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of those values are returned.

    Parameters
    ----------
    values
        1-D values, e.g. per-patient changes; NaN are dropped.
    statistic
        Reduction called as ``statistic(resamples, axis=1)`` on an
        ``(n_resamples, n)`` array, as numpy's ``np.median``/``np.mean`` are;
        that lets all resamples be computed at once instead of in a loop.
    n_boot
        Number of bootstrap resamples.
    confidence
        Coverage of the interval, in (0, 1).
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same
        interval.  ``None`` draws fresh entropy.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` when fewer than 2 values remain.

    Examples
    --------
    >>> low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0], seed=1)
    >>> 1.0 <= low <= 3.0 <= high <= 5.0
    True
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    sample = _finite(values)
    n = sample.size
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    block = max(1, _BOOT_BLOCK_VALUES // n)
    estimates = np.empty(n_boot)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        resamples = sample[rng.integers(0, n, size=(stop - start, n))]
        estimates[start:stop] = statistic(resamples, axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(estimates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def benjamini_hochberg(pvalues: ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg false-discovery-rate q-values.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the p-values sorted
    ascending, so q is monotone in p.  NaN p-values stay NaN and are not counted
    in ``m`` (a test that could not be run is not a hypothesis tested).

    Parameters
    ----------
    pvalues
        P-values in [0, 1], any shape; NaN allowed.

    Returns
    -------
    numpy.ndarray
        q-values of the same shape as ``pvalues``.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, float("nan"), 0.03]).round(3).tolist()
    [0.03, 0.04, nan, 0.04]
    """
    p = np.asarray(pvalues, dtype=float)
    tested = ~np.isnan(p)
    if np.any((p[tested] < 0.0) | (p[tested] > 1.0)):
        raise ValueError("p-values must lie in [0, 1] (NaN allowed for untested hypotheses)")
    q = np.full(p.shape, np.nan)
    flat = p[tested]
    m = flat.size
    if m == 0:
        return q
    order = np.argsort(flat, kind="stable")
    scaled = flat[order] * m / np.arange(1, m + 1)
    # step-up: each q is the smallest scaled p at or above its rank
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    q_flat = np.empty(m)
    q_flat[order] = np.minimum(monotone, 1.0)
    q[tested] = q_flat
    return q


def _tolerances(
    metrics: Sequence[str], tolerance: Mapping[str, float] | float | None
) -> dict[str, float]:
    if tolerance is None or isinstance(tolerance, Mapping):
        chosen = {**DEFAULT_TOLERANCES, **(tolerance or {})}
        result = {metric: float(chosen.get(metric, 0.0)) for metric in metrics}
    else:
        result = dict.fromkeys(metrics, float(tolerance))
    negative = {metric: tol for metric, tol in result.items() if not tol >= 0.0}
    if negative:
        raise ValueError(f"tolerances must be non-negative numbers, got {negative}")
    return result


def _p_wilcoxon(changes: np.ndarray) -> float:
    from scipy import stats

    if changes.size < 2:
        return float("nan")
    if not np.any(changes):
        # scipy warns on all-zero differences; no patient changed, so no evidence
        return 1.0
    return float(stats.wilcoxon(changes).pvalue)


def _p_ttest(changes: np.ndarray) -> float:
    from scipy import stats

    if changes.size < 2:
        return float("nan")
    if np.all(changes == changes[0]):
        # zero variance: t is 0/0 (no change) or undefined (constant change)
        return 1.0 if changes[0] == 0.0 else float("nan")
    return float(stats.ttest_1samp(changes, 0.0).pvalue)


def _summarise(
    changes: np.ndarray, *, signed: bool, tolerance: float, n_boot: int, seed: int | None
) -> dict[str, float | int]:
    n = changes.size
    ci_low, ci_high = bootstrap_ci(changes, n_boot=n_boot, seed=seed)
    return {
        "n_pairs": n,
        "median_delta": float(np.median(changes)) if n else float("nan"),
        "mean_delta": float(np.mean(changes)) if n else float("nan"),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_wilcoxon": _p_wilcoxon(changes) if signed else float("nan"),
        "p_ttest": _p_ttest(changes) if signed else float("nan"),
        "n_up": int(np.sum(changes > tolerance)),
        "n_down": int(np.sum(changes < -tolerance)),
        "n_unchanged": int(np.sum(np.abs(changes) <= tolerance)),
        "tolerance": tolerance,
    }


def cohort_summary(
    paired: pd.DataFrame,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    tolerance: Mapping[str, float] | float | None = None,
    n_boot: int = 2000,
    seed: int | None = 0,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Summarise per-patient changes per marker, population and metric.

    Parameters
    ----------
    paired
        One row per (patient, marker, population) with columns ``marker``,
        ``population`` and metric columns.  Metric columns named in ``metrics``
        but absent are skipped; NaN entries are left out of that metric only.
        If a ``patient`` column is present, a patient may appear only once per
        (marker, population).
    metrics
        Metric columns to summarise, in output order.  Names in
        :data:`DISTANCE_METRICS` (``overton_pct_pos``, ``ks_d``, ``pb_chi2``,
        ``pb_tx``, ``emd``) are unsigned distances between the patient's
        baseline and follow-up; any other metric (``delta_*``, ``log2_*``) is a
        signed follow-up − baseline change.
    tolerance
        Dead band for counting a patient as up or down.  ``None``: the defaults
        of :data:`DEFAULT_TOLERANCES` (1.0 percentage point for
        ``delta_pct_pos``, 0.1 for ``log2_mfi_ratio`` and ``delta_rmfi``, 0 for
        the rest).  A number: that tolerance for every metric.  A mapping:
        per-metric tolerances overriding the defaults (e.g. ``{"pb_tx": 4}``).
    n_boot
        Bootstrap resamples for the confidence interval of the median.
    seed
        Seed of the bootstrap; each row uses the same seed, so the table is
        reproducible and independent of row order.
    by
        Further columns of ``paired`` to group by (e.g. ``("stain",)`` when
        patients have several stained tubes per timepoint); they follow
        ``population`` in the output.

    Returns
    -------
    pandas.DataFrame
        One row per (marker, population, metric), columns :data:`SUMMARY_COLUMNS`:

        ``n_pairs``
            patients with a non-NaN value of the metric.
        ``median_delta``, ``mean_delta``
            median and mean of the per-patient values: the change itself for a
            signed metric, the distance itself for a distance metric.
        ``ci_low``, ``ci_high``
            percentile bootstrap CI (95 %) of the median (:func:`bootstrap_ci`);
            NaN when ``n_pairs < 2``.
        ``p_wilcoxon``, ``p_ttest``
            two-sided Wilcoxon signed-rank (:func:`scipy.stats.wilcoxon`, zero
            changes dropped) and one-sample t-test
            (:func:`scipy.stats.ttest_1samp`) of the null "median / mean change
            = 0".  NaN when ``n_pairs < 2`` and always NaN for distance metrics:
            a distance is ≥ 0 by construction, so testing it against 0 would
            call any noise significant.  When every change is 0 both are 1.0;
            when all changes equal one non-zero value the t-test is undefined
            (NaN).
        ``q_bh``
            Benjamini–Hochberg q-value of ``p_wilcoxon`` across all rows of the
            table (:func:`benjamini_hochberg`; NaN p stay NaN and are not
            counted).
        ``n_up``, ``n_down``, ``n_unchanged``
            patients whose value is > +tolerance, < −tolerance, or within.
            For distances (≥ 0) ``n_down`` is 0 and ``n_up`` counts patients
            whose distance exceeds the tolerance.
        ``tolerance``
            the tolerance used.

    Raises
    ------
    PairingError
        If ``marker`` or ``population`` is missing, or a patient appears twice
        for one marker and population.

    Examples
    --------
    >>> import pandas as pd
    >>> paired = pd.DataFrame({
    ...     "patient": ["P1", "P2", "P3"], "marker": "LAG3", "population": "CD19+",
    ...     "delta_pct_pos": [5.0, 0.5, -3.0]})
    >>> summary = cohort_summary(paired, n_boot=200)
    >>> summary[["metric", "n_pairs", "n_up", "n_down", "n_unchanged"]].to_dict("records")
    [{'metric': 'delta_pct_pos', 'n_pairs': 3, 'n_up': 1, 'n_down': 1, 'n_unchanged': 1}]
    """
    import pandas as pd

    missing = [column for column in ("marker", "population") if column not in paired.columns]
    if missing:
        raise PairingError(
            f"the paired table has no column {', '.join(map(repr, missing))}; "
            "it needs one row per (patient, marker, population) with 'marker' and "
            "'population' columns"
        )
    keys = ["marker", "population", *([by] if isinstance(by, str) else by)]
    if "patient" in paired.columns:
        duplicated = paired.duplicated(subset=["patient", *keys], keep=False)
        if duplicated.any():
            examples = paired.loc[duplicated, ["patient", *keys]].drop_duplicates().head(3)
            raise PairingError(
                f"patients appear more than once for one {' and '.join(keys)}: "
                f"{examples.to_dict('records')}; pair each patient's files once"
            )
    if isinstance(metrics, str):
        metrics = (metrics,)
    present = [metric for metric in dict.fromkeys(metrics) if metric in paired.columns]
    tolerances = _tolerances(present, tolerance)

    # pairs with a flagged tube (a doubtful or failed gate, no control ...), counted among n_pairs
    flagged = paired["flag"].fillna("").astype(str) != "" if "flag" in paired.columns else None
    rows = []
    for key, group in paired.groupby(keys, sort=False, dropna=False):
        for metric in present:
            values = pd.to_numeric(group[metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            changes = _finite(values)
            extra = {} if flagged is None else {"n_flagged": int((flagged[group.index] & ~np.isnan(values)).sum())}
            rows.append(
                dict(zip(keys, key)) | {"metric": metric}
                | _summarise(
                    changes,
                    signed=metric not in DISTANCE_METRICS,
                    tolerance=tolerances[metric],
                    n_boot=n_boot,
                    seed=seed,
                )
                | extra
            )
    flag_columns = ["n_flagged"] if flagged is not None else []
    table = pd.DataFrame(rows, columns=[*keys, *SUMMARY_COLUMNS[2:], *flag_columns])
    table["q_bh"] = benjamini_hochberg(table["p_wilcoxon"].to_numpy(float))
    for column in ("n_pairs", "n_up", "n_down", "n_unchanged"):
        table[column] = table[column].astype(int)
    return table
