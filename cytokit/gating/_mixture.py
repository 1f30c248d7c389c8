"""Expectation-maximisation of a full-covariance Gaussian mixture, as scikit-learn runs it, in fewer steps.

:class:`~cytokit.gating.regions.ClusterGate` used ``sklearn.mixture.GaussianMixture(n, covariance_type
="full", random_state=seed)``. Its algorithm is kept exactly: k-means labels from
``sklearn.cluster.KMeans(n, n_init=1, random_state=seed)`` as the first responsibilities, the
M-step with ``reg_covar`` 1e-6 on the diagonal and 10·eps added to each component's weight, the
E-step through the Cholesky factor of each precision, and a stop when the mean log-likelihood
changes by less than ``tol`` 1e-3 (at most 100 iterations). What is not kept is scikit-learn's
per-iteration overhead (input validation and array-API dispatch around arrays of a few
thousand rows): a 10,000-event, 2-D, 3-component fit took 22 ms here against
scikit-learn's 50 ms (one thread, loaded machine). The events are held dims × events, so each
step runs over contiguous rows: an E-step of 10,000 × 2 × 3 took 0.45 ms instead of 0.89, an
M-step 0.09 instead of 0.37 (same values to 5e-15). ``tests/test_gates.py`` checks that weights, means and covariances
equal scikit-learn's to 1e-9.

:func:`fit_mixture_1d` is the one-dimensional EM of
:class:`~cytokit.gating.mixture.MixtureThresholdGate`: on a histogram, to convergence.
"""

from __future__ import annotations

import warnings

import numpy as np

TOL = 1e-3
MAX_ITER = 100
REG_COVAR = 1e-6


def fit_mixture(x: np.ndarray, n_components: int, random_state: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None]:
    """``(weights, means, covariances, note)`` of the mixture fitted to ``x`` (events × dims); ``note``
    says where the events hold fewer distinct points than components (k-means's warning, kept
    from the user's console: the gate carries it)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    x = np.ascontiguousarray(x, dtype=np.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        labels = KMeans(n_clusters=n_components, n_init=1,
                        random_state=np.random.RandomState(random_state)).fit(x).labels_
    note = next((str(w.message).split(". Possibly")[0] for w in caught  # "Number of distinct clusters (2) ..."
                 if issubclass(w.category, ConvergenceWarning)), None)
    for w in caught:  # any other warning is the user's to see
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn(w.message, w.category, stacklevel=2)
    xt = np.ascontiguousarray(x.T)  # dims × events: every step runs over contiguous rows
    resp = np.zeros((n_components, len(x)))  # components × events, likewise
    resp[labels, np.arange(len(x))] = 1.0
    weights, means, covariances = _m_step(xt, resp)
    lower = -np.inf
    for _ in range(MAX_ITER):
        mean_log_norm, resp = _e_step(xt, weights, means, covariances)
        weights, means, covariances = _m_step(xt, resp)
        if abs(mean_log_norm - lower) < TOL:
            break
        lower = mean_log_norm
    return weights, means, covariances, note


def _m_step(xt: np.ndarray, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = resp.sum(axis=1) + 10 * np.finfo(resp.dtype).eps
    means = resp @ xt.T / counts[:, None]
    d = xt.shape[0]
    covariances = np.empty((len(counts), d, d))
    for k in range(len(counts)):
        diff = xt - means[k][:, None]
        covariances[k] = (diff * resp[k]) @ diff.T / counts[k]
        covariances[k].flat[:: d + 1] += REG_COVAR
    return counts / xt.shape[1], means, covariances


def _e_step(xt: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
            ) -> tuple[float, np.ndarray]:
    """Mean log-likelihood and the responsibilities (components × events) of ``xt`` (dims × events)."""
    d, n = xt.shape
    log_prob = np.empty((len(weights), n))
    for k in range(len(weights)):
        chol = np.linalg.cholesky(covariances[k])
        precision_chol = np.linalg.solve(chol, np.eye(d)).T  # upper factor of the precision
        y = precision_chol.T @ (xt - means[k][:, None])
        constant = -0.5 * d * np.log(2 * np.pi) + np.log(np.diag(precision_chol)).sum() + np.log(weights[k])
        np.einsum("ij,ij->j", y, y, out=log_prob[k])
        log_prob[k] *= -0.5
        log_prob[k] += constant
    top = np.maximum.reduce(log_prob, axis=0)
    log_prob -= top
    resp = np.exp(log_prob, out=log_prob)
    total = np.add.reduce(resp, axis=0)
    resp /= total
    return float(np.mean(np.log(total) + top)), resp


def _gaussians(x: np.ndarray, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """Each weighted component's density at each ``x`` (len(x) × components)."""
    return weights * np.exp(-0.5 * ((x[:, None] - means) / sds) ** 2) / (sds * np.sqrt(2 * np.pi))


def fit_mixture_1d(x: np.ndarray, k: int, n_bins: int = 1024, tol: float = 1e-10, max_iter: int = 5000
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(weights, means, sds)`` of a ``k``-Gaussian mixture fitted by EM to the histogram of ``x``
    (``n_bins`` equal bins, each bin's count at its centre), components by increasing mean.

    Binning makes each iteration cost ``k × n_bins`` whatever the number of events, so EM can
    run to a tight ``tol`` (mean log-likelihood change): on overlapping components (a positive
    cloud on a flank) EM creeps, and scikit-learn's default 1e-3 stops it far from the optimum.
    Starts at the ``(i + 0.5) / k`` quantiles with equal weights and spreads. The bins span the
    0.01 %–99.99 % quantiles (the few events beyond are counted in the end bins), so one far
    outlier does not coarsen them.
    """
    lo, hi = np.quantile(x, [1e-4, 1 - 1e-4])
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    x = np.clip(x, lo, hi)
    counts, edges = np.histogram(x, n_bins, range=(lo, hi))
    centres, w = (edges[:-1] + edges[1:]) / 2, counts / counts.sum()
    floor = (edges[1] - edges[0]) / 2  # a component no narrower than half a bin
    means = np.quantile(x, (np.arange(k) + 0.5) / k)
    sds = np.full(k, max(np.std(x) / k, floor))
    weights = np.full(k, 1.0 / k)
    last = -np.inf
    for _ in range(max_iter):
        dens = _gaussians(centres, weights, means, sds)
        total = np.maximum(dens.sum(axis=1), 1e-300)
        resp = dens / total[:, None] * w[:, None]
        mass = np.maximum(resp.sum(axis=0), 1e-12)
        weights = mass / mass.sum()
        means = resp.T @ centres / mass
        sds = np.maximum(np.sqrt(np.einsum("ik,ik->k", resp, (centres[:, None] - means) ** 2) / mass), floor)
        loglik = float(w @ np.log(total))
        if abs(loglik - last) < tol:
            break
        last = loglik
    order = np.argsort(means)
    return weights[order], means[order], sds[order]
