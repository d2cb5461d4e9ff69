"""How sure a test error is, and whether two classifiers scored on the same
test digits differ: the statistics of the paper's Table 1 (table1.py)."""
import math
import statistics

import numpy


def wilson_interval(errors, n, confidence=0.95):
    """The Wilson score interval (low, high) of an error rate, from
    ``errors`` wrong out of ``n`` independent test examples (binomial).

    It is the set of rates p that the score test does not reject:
    |errors/n - p| <= z sqrt(p (1 - p) / n), z the normal quantile of
    (1 + confidence) / 2; solving the quadratic in p gives

        (p^ + z^2/2n -+ z sqrt(p^ (1 - p^) / n + z^2/4n^2)) / (1 + z^2/n).

    Unlike p^ -+ z sqrt(p^ (1 - p^) / n), it stays inside [0, 1] and
    keeps close to its nominal coverage at error rates near 0, as here.
    """
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    p = errors / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * numpy.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / \
        (1 + z * z / n)
    return max(0.0, center - half), min(1.0, center + half)


def mcnemar_exact(only_a_wrong, only_b_wrong):
    """McNemar's exact test of two classifiers scored on the same digits:
    the two-sided p-value of only_a_wrong against only_b_wrong, the counts
    of digits that exactly one of the two gets wrong.

    The digits both get right or both get wrong say nothing about which is
    better. Under the hypothesis that both have the same error rate, each
    of the n = only_a_wrong + only_b_wrong discordant digits is equally
    likely to be A's or B's mistake, so the smaller count k is binomial
    (n, 1/2), and p = min(1, 2 P(X <= k)), computed exactly with integers.
    """
    n = only_a_wrong + only_b_wrong
    k = min(only_a_wrong, only_b_wrong)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)
