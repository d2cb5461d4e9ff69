"""paper/jacobian.py against independent computations: finite-difference
Jacobians, SVDs, brute-force distances, hand-made codes and the cA class."""
import numpy
import pytest

from machinery.backend import theano
from cA import cA
from conftest import sigmoid
from paper.jacobian import (contraction_ratios, curve_radii, encoder,
                            hidden_values, jacobian_frobenius_norms,
                            jacobian_singular_values, largest_distance,
                            mean_singular_values,
                            pointwise_contraction_ratios, pretrained_layer,
                            random_directions, saturated_fraction,
                            typical_distances)
from machinery import mnist_data
from machinery.checks import ConfigError


def random_encoder(n_visible, n_hidden, seed=0, scale=1.0):
    rng = numpy.random.RandomState(seed)
    W = rng.normal(scale=scale, size=(n_visible, n_hidden))
    b = rng.uniform(-1, 1, n_hidden)
    X = rng.uniform(0, 1, (4, n_visible))
    return W, b, X


def h_of(W, b, x):
    """The encoder, written out independently of analysis.py."""
    return sigmoid(x @ W + b)


def finite_difference_jacobian(W, b, x, eps=1e-6):
    """J[i, j] = dh_j/dx_i by central differences, one input at a time."""
    J = numpy.empty(W.shape)
    for i in range(W.shape[0]):
        step = numpy.zeros_like(x)
        step[i] = eps
        J[i] = (h_of(W, b, x + step) - h_of(W, b, x - step)) / (2 * eps)
    return J


# ---- the Jacobian -----------------------------------------------------------

@pytest.mark.parametrize('n_visible, n_hidden', [(9, 6), (5, 8), (6, 6)])
def test_singular_values_match_svd_of_finite_difference_jacobian(
        n_visible, n_hidden):
    # (9, 6) takes the QR path, (5, 8) and (6, 6) the direct one
    W, b, X = random_encoder(n_visible, n_hidden)
    got = jacobian_singular_values(W, b, X)
    assert got.shape == (4, min(n_visible, n_hidden))
    for row, x in zip(got, X):
        expected = numpy.linalg.svd(finite_difference_jacobian(W, b, x),
                                    compute_uv=False)
        numpy.testing.assert_allclose(row, expected, rtol=1e-7, atol=1e-10)
        assert numpy.all(numpy.diff(row) <= 0)


def test_singular_values_at_full_size_and_in_any_chunking():
    # 784 x 500, the real shape: the QR shortcut against the plain SVD of
    # J = W diag(h (1 - h)), and chunks of 1 against one chunk
    rng = numpy.random.RandomState(3)
    bound = 4 * numpy.sqrt(6. / (784 + 500))
    W = rng.uniform(-bound, bound, (784, 500))
    b = rng.uniform(-1, 1, 500)
    X = rng.uniform(0, 1, (3, 784))
    got = jacobian_singular_values(W, b, X, chunk_size=1)
    for row, x in zip(got, X):
        h = h_of(W, b, x)
        expected = numpy.linalg.svd(W * (h * (1 - h))[None, :],
                                    compute_uv=False)
        numpy.testing.assert_allclose(row, expected, rtol=1e-9,
                                      atol=1e-12 * expected[0])
    numpy.testing.assert_array_equal(
        mean_singular_values(W, b, X), jacobian_singular_values(W, b, X)
        .mean(axis=0))


def test_frobenius_norm_matches_finite_difference_jacobian():
    W, b, X = random_encoder(9, 6)
    got = jacobian_frobenius_norms(W, b, X)
    expected = [numpy.linalg.norm(finite_difference_jacobian(W, b, x))
                for x in X]
    numpy.testing.assert_allclose(got, expected, rtol=1e-7)
    # and ||J||_F^2 is the sum of the squared singular values
    numpy.testing.assert_allclose(
        got ** 2, numpy.sum(jacobian_singular_values(W, b, X) ** 2, axis=1),
        rtol=1e-10)


def test_saturated_fraction_counts_hand_made_codes():
    H = numpy.array([[0.01, 0.5, 0.99, 0.05],
                     [0.96, 0.94, 0.2, 0.049]])
    # strictly below 0.05 or above 0.95: 0.01, 0.99, 0.96, 0.049
    assert saturated_fraction(H) == 4 / 8
    # below 0.1 or above 0.9: also 0.05 and 0.94
    assert saturated_fraction(H, threshold=0.1) == 6 / 8
    assert saturated_fraction(numpy.full((3, 5), 0.5)) == 0.0
    for threshold in (0, 0.5, float('nan')):
        with pytest.raises(ConfigError, match='saturation_threshold'):
            saturated_fraction(H, threshold)


def test_numpy_encoder_matches_the_theano_model():
    rng = numpy.random.RandomState(4)
    ca = cA(numpy_rng=rng, n_visible=7, n_hidden=5)
    ca.b.set_value(rng.uniform(-1, 1, 5))
    X = rng.uniform(0, 1, (11, 7))
    expected = theano.function([ca.x], ca.get_hidden_values(ca.x))(X)
    W, b = ca.W.get_value(), ca.b.get_value()
    numpy.testing.assert_allclose(encoder(W, b)(X), expected, rtol=1e-12)
    numpy.testing.assert_allclose(encoder(W, b, chunk_size=3)(X), expected,
                                  rtol=1e-12)
    numpy.testing.assert_allclose(hidden_values(W, b, X), expected,
                                  rtol=1e-12)


# ---- contraction ratios -----------------------------------------------------

RADII = numpy.logspace(-3, 3, 7)


def test_linear_encoder_ratio_is_norm_of_u_A_at_every_radius():
    rng = numpy.random.RandomState(5)
    A = rng.normal(size=(6, 4))
    X = rng.uniform(0, 1, (3, 6))
    u = random_directions(3, 6, rng)
    ratios = pointwise_contraction_ratios(lambda x: x @ A, X, RADII, u)
    assert ratios.shape == (3, 7)
    for n in range(3):
        numpy.testing.assert_allclose(ratios[n],
                                      numpy.linalg.norm(u[n] @ A),
                                      rtol=1e-9)


@pytest.mark.parametrize('c', [0.3, 2.0])
def test_scaled_orthogonal_encoder_has_mean_ratio_c(c):
    rng = numpy.random.RandomState(6)
    Q, _ = numpy.linalg.qr(rng.normal(size=(10, 10)))
    X = rng.uniform(0, 1, (8, 10))
    got = contraction_ratios(lambda x: x @ (c * Q), X, RADII,
                             numpy.random.RandomState(0))
    numpy.testing.assert_allclose(got, c, rtol=1e-9)
    # c * identity too
    got = contraction_ratios(lambda x: c * x, X, RADII,
                             numpy.random.RandomState(0))
    numpy.testing.assert_allclose(got, c, rtol=1e-12)


def test_ratio_tends_to_the_jacobians_action_for_small_radii():
    W, b, X = random_encoder(9, 6, scale=2.0)
    u = random_directions(4, 9, numpy.random.RandomState(7))
    ratios = pointwise_contraction_ratios(encoder(W, b), X, [1e-6, 3.0], u)
    expected = [numpy.linalg.norm(u[n] @ finite_difference_jacobian(W, b, x))
                for n, x in enumerate(X)]
    numpy.testing.assert_allclose(ratios[:, 0], expected, rtol=1e-5)
    # far away the sigmoid is no longer linear: the ratio has changed
    assert numpy.all(numpy.abs(ratios[:, 1] / expected - 1) > 0.01)


def test_contraction_ratios_average_the_seeded_directions():
    W, b, X = random_encoder(9, 6)
    encode = encoder(W, b)
    u = random_directions(4, 9, numpy.random.RandomState(8))
    expected = pointwise_contraction_ratios(encode, X, RADII, u).mean(axis=0)
    numpy.testing.assert_array_equal(
        contraction_ratios(encode, X, RADII, numpy.random.RandomState(8)),
        expected)
    numpy.testing.assert_array_equal(
        contraction_ratios(encode, X, RADII, None, directions=u), expected)


def test_random_directions_are_unit_vectors_spread_over_the_sphere():
    u = random_directions(2000, 5, numpy.random.RandomState(9))
    numpy.testing.assert_allclose(numpy.linalg.norm(u, axis=1), 1,
                                  rtol=1e-12)
    # uniform on the sphere: mean 0, covariance I / dim
    assert numpy.abs(u.mean(axis=0)).max() < 0.05
    numpy.testing.assert_allclose(u.T @ u / 2000, numpy.eye(5) / 5,
                                  atol=0.03)


def test_typical_distances_match_brute_force():
    rng = numpy.random.RandomState(10)
    X = rng.uniform(0, 1, (7, 12))
    reference = rng.uniform(0, 1, (2345, 12)).astype(numpy.float32)
    got = typical_distances(X, reference, chunk_size=3)
    diffs = X[:, None, :] - reference[None, :, :].astype(numpy.float64)
    nearest = numpy.sqrt((diffs ** 2).sum(axis=2)).min(axis=1)
    pairs = [numpy.linalg.norm(X[i] - X[j])
             for i in range(7) for j in range(i + 1, 7)]
    assert got['median_nearest_neighbour'] == pytest.approx(
        numpy.median(nearest), rel=1e-9)
    assert got['median_pairwise'] == pytest.approx(numpy.median(pairs),
                                                   rel=1e-9)


def brute_force_largest(X):
    """Every pair's distance, written out: (distance, (i, j))."""
    best, pair = -1.0, None
    for i in range(len(X)):
        for j in range(i + 1, len(X)):
            d = numpy.sqrt(numpy.sum((X[i] - X[j]) ** 2))
            if d > best:
                best, pair = d, (i, j)
    return best, pair


@pytest.mark.parametrize('low, chunk_size', [(0.0, 1), (0.0, 7), (0.0, 500),
                                             (-1.0, 3), (-1.0, 500)])
def test_largest_distance_is_the_brute_force_maximum(low, chunk_size):
    # pixels in [0, 1] (the tighter bound), and rows with negative entries
    rng = numpy.random.RandomState(11)
    for n, dim in ((2, 3), (40, 5), (120, 30)):
        X = rng.uniform(low, 1, (n, dim)) * rng.uniform(0.2, 3, (n, 1))
        distance, pair = largest_distance(X, chunk_size=chunk_size)
        expected, expected_pair = brute_force_largest(X)
        assert distance == pytest.approx(expected, rel=1e-12)
        assert pair == expected_pair


def test_largest_distance_of_real_digits(tiny_mnist):
    train_x = mnist_data.read_mnist(tiny_mnist)[0][0].astype(numpy.float64)
    distance, pair = largest_distance(train_x, chunk_size=16)
    expected, expected_pair = brute_force_largest(train_x)
    assert distance == pytest.approx(expected, rel=1e-12)
    assert pair == expected_pair
    with pytest.raises(ValueError, match='2 rows'):
        largest_distance(train_x[:1])


def test_curve_radii_start_at_the_limit_then_are_evenly_spaced():
    radii = curve_radii(0.004, 20.0, 6)
    numpy.testing.assert_allclose(radii, [0.004, 4, 8, 12, 16, 20])
    numpy.testing.assert_allclose(curve_radii(0.01, 3.0, 2), [0.01, 3.0])


def test_pretrained_layer_measures_against_finite_differences():
    rng = numpy.random.RandomState(4)
    W = rng.normal(scale=2.0, size=(6, 5))
    b = rng.normal(size=5)
    X = rng.uniform(0, 1, (7, 6))
    measures = pretrained_layer(W, b, X, threshold=0.1)

    def h(x):
        return 1 / (1 + numpy.exp(-(x @ W + b)))
    norms, saturated = [], 0
    for x in X:
        eps = 1e-6
        J = numpy.array([(h(x + eps * e) - h(x - eps * e)) / (2 * eps)
                         for e in numpy.eye(6)])  # (n_visible, n_hidden)
        norms.append(numpy.sqrt(numpy.sum(J ** 2)))
        saturated += sum(1 for v in h(x) if v < 0.1 or v > 0.9)
    norms = numpy.array(norms)
    assert measures['jacobian_frobenius_norm'] == \
        pytest.approx(norms.mean(), rel=1e-6)
    assert measures['jacobian_mean_square_entry'] == \
        pytest.approx(numpy.mean(norms ** 2) / 30, rel=1e-6)
    assert measures['saturated_fraction'] == pytest.approx(saturated / 35)
    assert 0 < saturated < 35  # the case tests both kinds of unit
    assert measures['saturation_threshold'] == 0.1
