"""paper/statistics.py: the Wilson interval against a brute-force score
test and scipy, McNemar's exact test against scipy's binomial test."""
import numpy
import pytest

from paper.statistics import mcnemar_exact, wilson_interval


@pytest.mark.parametrize('errors, n', [(0, 10000), (1, 10000), (130, 10000),
                                       (146, 10000), (5000, 10000),
                                       (10000, 10000), (3, 60), (59, 60)])
def test_wilson_interval_by_brute_force(errors, n):
    """The interval is the set of rates p that the score test keeps,
    |errors/n - p| <= z sqrt(p (1 - p) / n): find its ends on a fine grid."""
    low, high = wilson_interval(errors, n)
    z = 1.959963984540054  # the 97.5 % point of the standard normal
    p = numpy.linspace(0, 1, 2000001)
    kept = p[numpy.abs(errors / n - p) <= z * numpy.sqrt(p * (1 - p) / n)]
    assert low == pytest.approx(kept.min(), abs=1e-6)
    assert high == pytest.approx(kept.max(), abs=1e-6)
    assert low <= errors / n <= high


@pytest.mark.parametrize('errors, n', [(0, 10000), (146, 10000),
                                       (178, 10000), (7, 60)])
def test_wilson_interval_against_scipy(errors, n):
    stats = pytest.importorskip('scipy.stats')
    if not hasattr(stats, 'binomtest'):
        pytest.skip('scipy.stats has no binomtest (scipy < 1.7)')
    expected = stats.binomtest(errors, n).proportion_ci(
        confidence_level=0.95, method='wilson')
    low, high = wilson_interval(errors, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_width_for_mnist():
    # 1.3 % of 10,000 digits is known to within about +-0.22 points
    low, high = wilson_interval(130, 10000)
    assert 0.0108 < low < 0.0110 and 0.0154 < high < 0.0156


@pytest.mark.parametrize('only_a, only_b', [
    (0, 0), (0, 1), (1, 0), (3, 3), (7, 12), (12, 7), (20, 45), (45, 20),
    (130, 151), (0, 40), (300, 250)])
def test_mcnemar_exact_is_the_two_sided_binomial_test(only_a, only_b):
    scipy_stats = pytest.importorskip('scipy.stats')
    n = only_a + only_b
    expected = 1.0 if n == 0 else \
        scipy_stats.binomtest(only_a, n, 0.5).pvalue
    assert mcnemar_exact(only_a, only_b) == \
        pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_exact_by_hand():
    # 2 against 8: P(X <= 2) for X ~ B(10, 1/2) is (1 + 10 + 45) / 1024
    assert mcnemar_exact(2, 8) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_exact(5, 5) == 1.0
