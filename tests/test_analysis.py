"""analysis.py against independent computations, and its command end to end."""
import json
import os

import numpy
import PIL.Image
import pytest

from backend import theano
import analysis
from analysis import (classifier_errors, contraction_ratios, encoder,
                      epoch_curves, hidden_values, jacobian_frobenius_norms,
                      jacobian_singular_values, log_spaced_radii,
                      mean_singular_values, pointwise_contraction_ratios,
                      random_directions, saturated_fraction,
                      typical_distances)
from cA import cA
from checks import ConfigError
from conftest import REPO, run_script, sigmoid
import mnist_data


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


# ---- the Jacobian ------------------------------------------------------------

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
    with pytest.raises(ConfigError):
        saturated_fraction(H, threshold=0.5)


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


# ---- contraction ratios --------------------------------------------------------

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


def test_radii_are_log_spaced_between_the_factors():
    radii = log_spaced_radii(5.0, 1e-3, 3.0, 9)
    assert radii[0] == pytest.approx(5e-3) and radii[-1] == pytest.approx(15)
    numpy.testing.assert_allclose(numpy.diff(numpy.log(radii)),
                                  numpy.log(3000) / 8)


def test_epoch_curves_are_the_per_epoch_means():
    costs = numpy.array([[[10., 4.], [20., 16.]], [[5., 1.], [7., 9.]]])
    reconstruction, jacobian_norm = epoch_curves(costs)
    numpy.testing.assert_allclose(reconstruction, [15, 6])
    numpy.testing.assert_allclose(jacobian_norm, [3, 2])


# ---- features for classification -----------------------------------------------

def test_classifier_on_raw_pixels_beats_chance_and_uses_encode(tiny_mnist):
    datasets = mnist_data.read_mnist(tiny_mnist)
    log = open(os.devnull, 'w')
    valid, test = classifier_errors(datasets, n_epochs=100, log=log)
    assert test < 0.3 and valid < 0.3  # chance is 0.9
    # a code that forgets the input leaves the classifier guessing
    _, blind = classifier_errors(
        datasets, encode=lambda x: numpy.zeros((len(x), 3)), n_epochs=20,
        log=log)
    assert blind > 0.6


# ---- the module and the command line --------------------------------------------

def test_importing_analysis_has_no_side_effects(tmp_path):
    code = ('import sys; sys.path.insert(0, %r); import analysis; '
            'assert "matplotlib" not in sys.modules' % REPO)
    before = sorted(os.listdir(REPO))
    r = run_script(['-c', code], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(tmp_path)) == []
    assert sorted(os.listdir(REPO)) == before


def test_help_lists_every_flag_and_touches_nothing(tmp_path):
    r = run_script([os.path.join(REPO, 'analysis.py'), '--help'],
                   cwd=str(tmp_path))
    assert r.returncode == 0
    for flag in ['--epochs', '--n-examples', '--dataset', '--output-folder',
                 '--seed', '--n-hidden', '--contraction-level',
                 '--learning-rate', '--batch-size', '--n-radii',
                 '--saturation-threshold', '--classifier-epochs']:
        assert flag in r.stdout
    assert os.listdir(str(tmp_path)) == []


def test_every_parameter_of_run_analysis_has_a_flag_with_its_default():
    args = analysis.parse_args([])
    import inspect
    for name, p in inspect.signature(analysis.run_analysis).parameters.items():
        if name != 'log':
            assert getattr(args, name) == p.default, name


TINY_ARGS = ['--epochs', '2', '--n-hidden', '20', '--n-examples', '20',
             '--batch-size', '50', '--learning-rate', '0.1', '--n-radii', '5',
             '--classifier-epochs', '100']


def test_command_end_to_end(tiny_mnist, tmp_path):
    out = tmp_path / 'plots'
    r = run_script(['analysis.py', '--dataset', tiny_mnist,
                    '--output-folder', str(out)] + TINY_ARGS)
    assert r.returncode == 0, r.stderr
    for name in ['analysis_spectrum.png', 'analysis_contraction.png',
                 'analysis_training.png', 'cae/cae_filters.png',
                 'ae/cae_filters.png']:
        with PIL.Image.open(str(out / name)) as image:
            assert image.format == 'PNG'
            assert image.size[0] > 0 and image.size[1] > 0
    assert not [f for _, _, files in os.walk(str(out)) for f in files
                if f.endswith('.tmp')]
    with open(str(out / 'analysis.json')) as f:
        report = json.load(f)
    for key in ['settings', 'typical_distances', 'radii', 'models',
                'raw_pixels', 'figures', 'total_time_s']:
        assert key in report
    assert len(report['radii']) == 5
    cae, ae = report['models']['cae'], report['models']['ae']
    assert (cae['contraction_level'], ae['contraction_level']) == (0.1, 0.0)
    for model in (cae, ae):
        assert len(model['singular_values_mean']) == 20
        assert len(model['contraction_ratios']) == 5
        assert len(model['epoch_reconstruction_cost']) == 2
        for key in ['jacobian_frobenius_norm_mean', 'saturated_fraction',
                    'classifier_test_error', 'classifier_valid_error']:
            assert isinstance(model[key], float), key
    # the penalty makes a difference even after two epochs
    assert cae['epoch_jacobian_norm'][-1] < ae['epoch_jacobian_norm'][-1]
    assert report['raw_pixels']['classifier_test_error'] < 0.3
    summary = r.stdout[r.stdout.index('summary'):]
    for phrase in ['ranks 1-10', 'contraction ratio', '||J||_F',
                   'saturated', 'raw pixels', 'total time']:
        assert phrase in summary


@pytest.mark.parametrize('args, phrase', [
    (['--epochs', '0'], 'training_epochs must be a positive integer'),
    (['--n-examples', '100000'], 'more than the 60 test digits'),
    (['--dataset', 'no/such/file.pkl.gz'], 'no/such/file.pkl.gz'),
])
def test_command_bad_input_is_one_line_and_exit_2(tiny_mnist, tmp_path, args,
                                                  phrase):
    argv = ['analysis.py', '--dataset', tiny_mnist,
            '--output-folder', str(tmp_path / 'out')] + TINY_ARGS + args
    r = run_script(argv)
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr
    error_lines = [l for l in r.stderr.splitlines() if l.startswith('error:')]
    assert len(error_lines) == 1 and phrase in error_lines[0]
