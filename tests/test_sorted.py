"""cytokit._sorted: NumPy's quantiles, median and even-bin histogram read off sorted values, to the bit."""

import numpy as np
import pytest

from cytokit._sorted import sorted_histogram, sorted_median, sorted_quantiles


def _samples(n):
    rng = np.random.default_rng(n)
    return (rng.normal(size=n), rng.integers(0, 40, n).astype(float), rng.lognormal(size=n) * 1e4,
            np.full(n, 3.25))


@pytest.mark.parametrize("n", [1, 2, 7, 5_001, 100_003])
def test_sorted_quantiles_and_median_equal_numpy_to_the_bit(n):
    for values in _samples(n):
        ordered = np.sort(values)
        for q in ((np.arange(5000) + 0.5) / 5000, np.linspace(0.0, 1.0, 257), [0.001, 0.25, 0.75, 0.999]):
            np.testing.assert_array_equal(sorted_quantiles(ordered, q), np.quantile(values, q))
        assert sorted_median(ordered) == np.median(values)


@pytest.mark.parametrize("n", [1, 2, 7, 5_001, 100_003])
def test_sorted_histogram_equals_numpy_on_edges_ties_and_values_outside_the_range(n):
    """Values exactly on the edges (the integer sample on integer edges), the right edge itself,
    values outside the range and an empty range each land where ``np.histogram`` puts them."""
    for values in _samples(n):
        ordered = np.sort(values)
        lo, hi = np.quantile(values, [0.1, 0.9])
        ranges = [(lo, hi), (float(ordered[0]), float(ordered[-1])), (0.0, 40.0), (lo, lo)]
        for bins in (1, 7, 40, 1024):
            for rng in ranges:
                counts, edges = sorted_histogram(ordered, bins, rng)
                want_counts, want_edges = np.histogram(values, bins=bins, range=rng)
                np.testing.assert_array_equal(edges, want_edges)
                np.testing.assert_array_equal(counts, want_counts)
                assert counts.dtype == want_counts.dtype


def test_a_histogram_range_that_is_not_finite_or_descends_is_refused():
    with pytest.raises(ValueError, match="finite and ascending"):
        sorted_histogram(np.arange(5.0), 4, (3.0, 1.0))
    with pytest.raises(ValueError, match="finite and ascending"):
        sorted_histogram(np.arange(5.0), 4, (0.0, np.inf))


def test_quantiles_median_and_density_are_the_same_bits_whether_or_not_sorting_pays(monkeypatch):
    """Where sorting does not pay (NumPy's AVX-512 sort on AMD Zen 4), quantiles, medians and a
    density's grid and bins come from NumPy's partitions and histogram instead: the same bits."""
    import cytokit._sorted as sorted_module
    import cytokit.gating._density as density_module
    from cytokit._sorted import median, quantiles
    from cytokit.gating._density import estimate_density

    assert isinstance(sorted_module.sorting_pays(), bool)
    q = [0.001, 0.1587, 0.5, 0.8413, 0.999]
    densities = {}
    for pays in (True, False):
        for module in (sorted_module, density_module):
            monkeypatch.setattr(module, "sorting_pays", lambda pays=pays: pays)
        for values in _samples(5_001):
            np.testing.assert_array_equal(quantiles(values, q), np.quantile(values, q))
            assert median(values) == np.median(values)
        densities[pays] = [estimate_density(values) for values in _samples(5_001)[:3]]
    for by_sort, by_partition in zip(densities[True], densities[False]):
        np.testing.assert_array_equal(by_sort.grid, by_partition.grid)
        np.testing.assert_array_equal(by_sort.density, by_partition.density)
        assert by_sort.bandwidth == by_partition.bandwidth


def test_a_density_leaves_out_values_that_are_not_finite():
    from cytokit.gating._density import estimate_density

    values = np.random.default_rng(3).normal(size=2_000)
    with_gaps = np.concatenate([values, [np.nan, np.inf, -np.inf]])
    want, got = estimate_density(values), estimate_density(with_gaps)
    np.testing.assert_array_equal(got.grid, want.grid)
    np.testing.assert_array_equal(got.density, want.density)
