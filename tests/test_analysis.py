"""analysis.py against independent computations, and its command end to end."""
import json
import os
import signal
import subprocess
import sys

import numpy
import PIL.Image
import pytest

from machinery.backend import theano
import analysis
from analysis import (classifier_errors, contraction_ratios, encoder,
                      epoch_curves, hidden_values, jacobian_frobenius_norms,
                      jacobian_singular_values, largest_distance,
                      curve_radii,
                      mean_singular_values, pointwise_contraction_ratios,
                      random_directions, saturated_fraction,
                      typical_distances)
from machinery import checkpoints
from machinery import cli
from machinery import commands
from machinery import mnist_data
from machinery import outputs
from cA import cA
from machinery.training import AE_CHECKPOINT_NAME, CHECKPOINT_NAME
from machinery.checks import ConfigError
from conftest import REPO, run_script, sigmoid


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


def test_epoch_curves_are_the_per_epoch_means():
    costs = numpy.array([[[10., 4.], [20., 16.]], [[5., 1.], [7., 9.]]])
    reconstruction, jacobian_norm = epoch_curves(costs)
    numpy.testing.assert_allclose(reconstruction, [15, 6])
    numpy.testing.assert_allclose(jacobian_norm, [3, 2])


# ---- features for classification --------------------------------------------

@pytest.mark.slow  # compiles three classifiers: 4 to 10 s
def test_classifier_on_raw_pixels_beats_chance_and_uses_encode(tiny_mnist,
                                                               capsys):
    datasets = mnist_data.read_mnist(tiny_mnist)
    valid, test = classifier_errors(datasets, n_epochs=100, batch_size=50)
    assert test < 0.3 and valid < 0.3  # chance is 0.9
    # a code that forgets the input leaves the classifier guessing
    _, blind = classifier_errors(
        datasets, encode=lambda x: numpy.zeros((len(x), 3)), n_epochs=20,
        batch_size=50)
    assert blind > 0.6
    # without a log, the classifier's own lines go nowhere
    assert capsys.readouterr() == ('', '')


# ---- run_analysis's settings ------------------------------------------------

@pytest.mark.parametrize('name, value', [
    ('n_examples', 2.5), ('n_examples', True), ('seed', 2 ** 32),
    ('seed', -1), ('contraction_level', 0), ('min_radius_factor', 3.0),
    ('n_radii', 1),
    ('saturation_threshold', 0.5), ('classifier_batch_size', 0)])
def test_bad_settings_raise_config_error_before_anything_is_written(
        tmp_path, name, value):
    out = tmp_path / 'out'
    with pytest.raises(ConfigError, match=name):
        analysis.run_analysis(**{name: value, 'output_folder': str(out),
                                 'dataset': str(tmp_path / 'none.pkl.gz')})
    assert not out.exists()


# ---- the module and the command line ----------------------------------------

def test_importing_analysis_loads_no_stack_and_writes_nothing(tmp_path):
    # no files, no data, no compilation: neither the stack nor matplotlib
    code = ('import sys; sys.path.insert(0, %r); import analysis; '
            'loaded = [m for m in ("theano", "pytensor", "matplotlib") '
            'if m in sys.modules]; assert not loaded, loaded' % REPO)
    before = sorted(os.listdir(REPO))
    r = run_script(['-c', code], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(tmp_path)) == []
    assert sorted(os.listdir(REPO)) == before


def test_every_parameter_has_a_flag_with_its_default_and_help():
    parser = commands.analysis_parser(analysis.run_analysis)
    expected = cli.defaults_of(analysis.run_analysis)
    del expected['log']  # where the lines go: the command's is stdout
    assert cli.arguments(parser, []) == expected
    for action in parser._actions:
        assert action.help, action.dest


def test_help_names_every_flag_and_touches_nothing(tmp_path):
    r = run_script([os.path.join(REPO, 'analysis.py'), '--help'],
                   cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    for action in commands.analysis_parser(analysis.run_analysis)._actions:
        assert action.option_strings[-1] in r.stdout
    assert os.listdir(str(tmp_path)) == []


TINY_ARGS = ['--epochs', '2', '--n-hidden', '20', '--n-examples', '20',
             '--batch-size', '50', '--learning-rate', '0.1', '--n-radii', '5',
             '--classifier-epochs', '100', '--classifier-batch-size', '50']
FILES = ['analysis_spectrum.png', 'analysis_contraction.png',
         'analysis_training.png', 'analysis.json', 'cae/cae_filters.png',
         'cae/cae_checkpoint.npz', 'cae/cae_costs.npy', 'ae/ae_filters.png',
         'ae/ae_checkpoint.npz', 'ae/ae_costs.npy']


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(path, name), str(folder))
                  for path, _, names in os.walk(str(folder))
                  for name in names)


@pytest.mark.slow
def test_command_end_to_end_is_quiet_and_writes_every_file(tiny_mnist,
                                                           tmp_path):
    out = tmp_path / 'plots'
    r = run_script(['analysis.py', '--dataset', tiny_mnist,
                    '--output-folder', str(out)] + TINY_ARGS)
    assert r.returncode == 0, r.stderr
    # exactly these files: no lock, no temporary left
    assert files_under(out) == sorted(FILES)
    for name in FILES:
        if name.endswith('.png'):
            with PIL.Image.open(str(out / name)) as image:
                image.load()
                assert image.format == 'PNG' and min(image.size) > 100
    with open(str(out / 'analysis.json')) as f:
        report = json.load(f)
    assert list(report) == ['settings', 'n_train', 'n_test',
                            'typical_distances', 'radii', 'models',
                            'raw_pixels', 'figures', 'total_time_s']
    assert report['settings']['classifier_batch_size'] == 50
    assert (report['n_train'], report['n_test']) == (230, 60)
    assert len(report['radii']) == 5
    # the curves reach beyond the largest distance between training digits
    train_x = mnist_data.read_mnist(tiny_mnist)[0][0].astype(numpy.float64)
    largest, pair = brute_force_largest(train_x)
    distances = report['typical_distances']
    assert distances['largest_training'] == pytest.approx(largest, rel=1e-12)
    assert distances['largest_training_pair'] == list(pair)
    assert report['radii'][-1] == pytest.approx(1.25 * largest)
    assert report['radii'][0] == pytest.approx(
        1e-3 * distances['median_nearest_neighbour'])
    cae, ae = report['models']['cae'], report['models']['ae']
    assert (cae['contraction_level'], ae['contraction_level']) == (0.1, 0.0)
    for model, key in ((cae, 'cae/cae'), (ae, 'ae/ae')):
        assert model['filters'] == str(out / (key + '_filters.png'))
        assert len(model['singular_values_mean']) == 20
        assert len(model['contraction_ratios']) == 5
        assert len(model['epoch_reconstruction_cost']) == 2
        for name in ['jacobian_frobenius_norm_mean', 'saturated_fraction',
                     'classifier_test_error', 'classifier_valid_error']:
            assert isinstance(model[name], float), name
    # the penalty makes a difference even after two epochs
    assert cae['epoch_jacobian_norm'][-1] < ae['epoch_jacobian_norm'][-1]
    assert report['raw_pixels']['classifier_test_error'] < 0.3
    # quiet: a line per step, none per classifier epoch, nothing on stderr
    lines = r.stdout.splitlines()
    assert r.stderr == ''
    assert not [l for l in lines if 'validation_error' in l]
    assert len(lines) < 50, r.stdout
    for label in ('CAE', 'AE'):
        for step in ('%s spectrum of J', '%s mean contraction ratio',
                     '%s over the 60 test digits',
                     'logistic regression on the %s code'):
            found = [l for l in lines if l.startswith(step % label)]
            assert len(found) == 1 and found[0].endswith(' s)'), step % label
    summary = r.stdout[r.stdout.index('summary'):]
    for phrase in ['ranks 1-10', 'contraction ratio', '||J||_F',
                   'saturated', 'raw pixels', 'total time']:
        assert phrase in summary


@pytest.mark.slow
def test_verbose_adds_the_classifiers_lines(tiny_mnist, tmp_path):
    r = run_script(['analysis.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path / 'out'), '--verbose'] + TINY_ARGS)
    assert r.returncode == 0, r.stderr
    # the three classifiers: their looks at the validation set, their ends
    assert 'validation_error' in r.stdout
    assert r.stdout.count('done: best validation_error') == 3


# ---- bad input through the command line -------------------------------------

BAD_SETTINGS = [  # rejected before anything is loaded or written
    (['--epochs', '0'], 'training_epochs must be a positive integer'),
    (['--n-examples', '1'], 'n_examples must be at least 2'),
    (['--contraction-level', '0'], 'contraction_level must be a positive'),
    (['--contraction-level', 'nan'], 'contraction_level must be a positive'),
    (['--n-hidden', '0'], 'n_hidden must be a positive integer'),
    (['--learning-rate', 'inf'], 'learning_rate must be a positive finite'),
    (['--batch-size', '0'], 'batch_size must be a positive integer'),
    (['--seed', '-1'], 'seed must be an integer from 0 to 4294967295'),
    (['--seed', '4294967296'], 'seed must be an integer from 0 to'),
    (['--n-radii', '0'], 'n_radii must be a positive integer'),
    (['--min-radius-factor', '0'], 'min_radius_factor must be a positive'),
    (['--max-radius-factor', 'nan'], 'max_radius_factor must be a positive'),
    (['--min-radius-factor', '3'], 'min_radius_factor must be smaller'),
    (['--saturation-threshold', '0.5'],
     'saturation_threshold must be in (0, 0.5)'),
    (['--classifier-epochs', '0'], 'classifier_epochs must be a positive'),
    (['--classifier-learning-rate', '-0.1'],
     'classifier_learning_rate must be a positive finite'),
    (['--classifier-batch-size', '0'],
     'classifier_batch_size must be a positive integer'),
    (['--epochs', 'x'], "argument --epochs: invalid int value: 'x'"),
    (['--no-such-flag'], 'unrecognized arguments: --no-such-flag'),
]
BAD_DATA = [  # rejected once the data is read, before any training
    (['--n-examples', '100000'], 'n_examples 100000 is more than the 60 '
                                 'test digits'),
    (['--batch-size', '231'], 'batch_size 231 is larger than the training '
                              'set (230 examples)'),
    (['--classifier-batch-size', '231'], 'classifier_batch_size 231 is '
                                         'larger than the training set'),
    (['--dataset', 'DIR/no_such_file.pkl.gz'], 'no_such_file.pkl.gz'),
    (['--dataset', 'DIR/garbage.pkl.gz'], 'garbage.pkl.gz'),
]


def bad_argv(tiny_mnist, tmp_path, extra):
    (tmp_path / 'garbage.pkl.gz').write_bytes(b'not a gzip file')
    extra = [e.replace('DIR', str(tmp_path)) for e in extra]
    return ['--dataset', tiny_mnist, '--output-folder',
            str(tmp_path / 'out')] + TINY_ARGS + extra


def run_bad(tiny_mnist, tmp_path, extra):
    """The real command, in a new interpreter."""
    return run_script(['analysis.py'] + bad_argv(tiny_mnist, tmp_path, extra))


def assert_one_error_line(code, stderr, phrase):
    assert code == 2, stderr
    assert stderr.startswith('error: ') and stderr.count('\n') == 1, stderr
    assert phrase in stderr


@pytest.mark.parametrize('extra, phrase', BAD_SETTINGS)
def test_bad_setting_is_one_line_exit_2_and_nothing_written(
        tiny_mnist, tmp_path, capsys, extra, phrase):
    # commands.analysis, what the script runs, in this
    # process: the settings are refused before the stack is imported, so a
    # new interpreter would only add its start-up time to every row
    try:
        code = commands.analysis(analysis.run_analysis,
                                 bad_argv(tiny_mnist, tmp_path, extra))
    except SystemExit as e:  # argparse's own exit
        code = e.code
    stdout, stderr = capsys.readouterr()
    assert_one_error_line(code, stderr, phrase)
    assert stdout == ''
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('extra, phrase', [
    (['--seed', '-1'], 'seed must be an integer from 0 to 4294967295'),
    (['--epochs', 'x'], "argument --epochs: invalid int value: 'x'")])
def test_the_script_turns_a_bad_setting_into_one_line_and_exit_2(
        tiny_mnist, tmp_path, extra, phrase):
    r = run_bad(tiny_mnist, tmp_path, extra)
    assert_one_error_line(r.returncode, r.stderr, phrase)
    assert r.stdout == ''
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow  # a process per case: the quick suite keeps one such test
@pytest.mark.parametrize('extra, phrase', BAD_DATA)
def test_bad_data_is_one_line_exit_2_and_nothing_written(
        tiny_mnist, tmp_path, extra, phrase):
    r = run_bad(tiny_mnist, tmp_path, extra)
    assert_one_error_line(r.returncode, r.stderr, phrase)
    assert 'epoch' not in r.stdout  # nothing trained
    assert files_under(tmp_path / 'out') == []


def test_an_output_folder_that_is_a_file_is_one_line(tiny_mnist, tmp_path):
    (tmp_path / 'out').write_text('a file, not a folder')
    r = run_bad(tiny_mnist, tmp_path, [])
    assert_one_error_line(r.returncode, r.stderr,
                          'cannot write to the output folder')
    assert (tmp_path / 'out').read_text() == 'a file, not a folder'


def test_a_folder_held_by_another_run_is_one_line(tiny_mnist, tmp_path):
    with outputs.OutputFolder(str(tmp_path / 'out')):
        r = run_bad(tiny_mnist, tmp_path, [])
    assert_one_error_line(r.returncode, r.stderr, 'another run is writing to')
    assert r.stdout == ''  # refused before reading the data
    assert files_under(tmp_path / 'out') == []


# ---- Ctrl-C -----------------------------------------------------------------

# at batch 1, each epoch of the tiny set is 230 steps: the run trains long
# enough to be interrupted in the middle of training
INTERRUPTIBLE_ARGS = ['--epochs', '10', '--batch-size', '1', '--n-hidden',
                      '20', '--n-examples', '20', '--n-radii', '5',
                      '--classifier-epochs', '5', '--classifier-batch-size',
                      '50']


def interrupt_after(line_start, dataset, out):
    """Run analysis.py, send SIGINT once a stdout line starts with
    line_start; (returncode, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, 'analysis.py', '--dataset', dataset,
         '--output-folder', out] + INTERRUPTIBLE_ARGS, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(line_start):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    return proc.returncode, ''.join(seen) + out, err


@pytest.mark.skipif(not os.path.exists('/proc/self/maps'),
                    reason='needs /proc to see when numpy is being loaded')
def test_ctrl_c_while_the_modules_load_ends_without_a_traceback(tiny_mnist,
                                                                tmp_path):
    proc = subprocess.Popen(
        [sys.executable, 'analysis.py', '--dataset', tiny_mnist,
         '--output-folder', str(tmp_path / 'out')] + TINY_ARGS, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # numpy's libraries are mapped: analysis.py's first imports are running
    maps = '/proc/%d/maps' % proc.pid
    while proc.poll() is None:
        with open(maps) as f:
            if 'numpy' in f.read():
                break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    # killed by the signal while loading, or cli.main's line if it was done
    assert proc.returncode in (-signal.SIGINT, 130), err
    assert 'Traceback' not in err and out == ''
    assert not (tmp_path / 'out').exists()


# the moments: reading the data, compiling, training, classifying
@pytest.mark.slow
@pytest.mark.parametrize('line_start', ['reading ', 'compiling ',
                                        'epoch 1/10', 'CAE over the '])
def test_ctrl_c_at_any_step_is_one_line_and_leaves_no_partial_file(
        tiny_mnist, tmp_path, line_start):
    out = tmp_path / 'out'
    code, stdout, stderr = interrupt_after(line_start, tiny_mnist, str(out))
    assert code == 130, (stdout, stderr)
    assert 'Traceback' not in stderr and stderr.count('\n') == 1, stderr
    # the lock is released, and no temporary file is left anywhere
    assert [f for f in files_under(out)
            if f.endswith(('.tmp', outputs.LOCK_NAME))] == []
    if line_start == 'epoch 1/10':  # test_cA's own stop, with a checkpoint
        assert 'stopped at epoch' in stderr
        assert 'the analysis stopped; resume with: ' in stderr
        assert ' analysis.py --resume ' in stderr


def files_and_bytes(folder):
    return {f: open(os.path.join(str(folder), f), 'rb').read()
            for f in files_under(folder)}


@pytest.mark.slow
def test_an_interrupted_training_is_kept_then_resumed_or_restarted(
        tiny_mnist, tmp_path):
    out = tmp_path / 'out'
    code, _, stderr = interrupt_after('epoch 2/10', tiny_mnist, str(out))
    assert code == 130, stderr
    checkpoint = str(out / 'cae' / CHECKPOINT_NAME)
    assert checkpoints.read_checkpoint(checkpoint)['epoch'] < 10  # unfinished
    argv = ['analysis.py', '--dataset', tiny_mnist, '--output-folder',
            str(out)] + INTERRUPTIBLE_ARGS
    # a plain rerun refuses, before reading anything, and changes nothing
    before = files_and_bytes(out)
    r = run_script(argv)
    assert r.returncode == 2 and r.stdout == '', r.stdout
    assert r.stderr.startswith('error: ') and r.stderr.count('\n') == 1
    assert 'unfinished run' in r.stderr and '--resume' in r.stderr
    assert files_and_bytes(out) == before
    # --resume goes on from the checkpoint, and ends as a whole run would
    r = run_script(argv + ['--resume'])
    assert r.returncode == 0, r.stderr
    assert 'resuming from %s' % checkpoint in r.stdout
    for name in ('cae/' + CHECKPOINT_NAME, 'ae/' + AE_CHECKPOINT_NAME):
        saved = checkpoints.read_checkpoint(str(out / name))
        assert (saved['epoch'], saved['batch']) == (10, 0)


@pytest.mark.slow
def test_a_cA_run_left_unfinished_in_a_model_folder_is_not_replaced(
        tiny_mnist, tmp_path):
    """cA.py trained into out/cae and was stopped: analysis.py into out
    must not throw its work away (issue: it used to, silently)."""
    out = tmp_path / 'out'
    proc = subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', tiny_mnist, '--output-folder',
         str(out / 'cae'), '--epochs', '50', '--batch-size', '1',
         '--n-hidden', '20'], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith('epoch 1/50'):
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=300)
    assert proc.returncode == 130
    before = files_and_bytes(out)
    r = run_script(['analysis.py', '--dataset', tiny_mnist,
                    '--output-folder', str(out)] + INTERRUPTIBLE_ARGS)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith('error: %s holds an unfinished run' % str(
        out / 'cae' / CHECKPOINT_NAME)), r.stderr
    assert files_and_bytes(out) == before
    # --restart is the way to replace it
    r = run_script(['analysis.py', '--dataset', tiny_mnist, '--output-folder',
                    str(out), '--restart'] + INTERRUPTIBLE_ARGS)
    assert r.returncode == 0, r.stderr
    saved = checkpoints.read_checkpoint(str(out / 'cae' / CHECKPOINT_NAME))
    assert saved['n_epochs'] == 10 and saved['epoch'] == 10
