"""The model's math against independent references, and test_cA end to end."""
import os

import numpy
import PIL.Image
import pytest

from machinery import backend
from machinery.backend import theano, T
from machinery import checks
from cA import cA, test_cA
from machinery.kernel import fused
from conftest import (REPO, finite_difference_gradient, py_mode,
                      reference_cost, reference_costs, run_script, sigmoid)

PY_MODE = py_mode()


def small_model(n_visible=7, n_hidden=5, seed=1, **kwargs):
    """A cA with random biases too, so that no term is trivially zero."""
    rng = numpy.random.RandomState(seed)
    ca = cA(numpy_rng=rng, n_visible=n_visible, n_hidden=n_hidden, **kwargs)
    ca.b.set_value(rng.uniform(-1, 1, n_hidden))
    ca.b_prime.set_value(rng.uniform(-1, 1, n_visible))
    return ca


def batch(n, n_visible=7, seed=2):
    return numpy.random.RandomState(seed).uniform(0, 1, (n, n_visible))


def values(ca):
    return [p.get_value() for p in ca.params]


# ---- construction ----------------------------------------------------------

def test_initial_W_is_the_originals_draw():
    ca = cA(numpy_rng=numpy.random.RandomState(123), n_visible=784,
            n_hidden=500)
    bound = 4 * numpy.sqrt(6.0 / (500 + 784))
    expected = numpy.random.RandomState(123).uniform(
        low=-bound, high=bound, size=(784, 500))
    numpy.testing.assert_array_equal(ca.W.get_value(), expected)
    numpy.testing.assert_array_equal(ca.b.get_value(), numpy.zeros(500))
    numpy.testing.assert_array_equal(ca.b_prime.get_value(), numpy.zeros(784))
    assert ca.params == [ca.W, ca.b, ca.b_prime]


def test_W_prime_is_the_transpose_of_W():
    ca = small_model()
    numpy.testing.assert_array_equal(ca.W_prime.eval(), ca.W.get_value().T)


def test_given_shared_variables_and_input_are_used_not_copied():
    W = theano.shared(numpy.ones((7, 5)), name='W')
    bhid = theano.shared(numpy.zeros(5), name='b')
    bvis = theano.shared(numpy.zeros(7), name='bv')
    x = T.matrix('layer_output')
    ca = cA(numpy_rng=numpy.random.RandomState(0), input=x, n_visible=7,
            n_hidden=5, W=W, bhid=bhid, bvis=bvis)
    assert ca.W is W and ca.b is bhid and ca.b_prime is bvis and ca.x is x
    # training the cA moves the caller's W
    cost, updates = ca.get_cost_updates(0.1, 0.5)
    theano.function([x], cost, updates=updates)(batch(3))
    assert not numpy.allclose(W.get_value(), 1.0)


def test_input_can_be_another_layers_symbolic_output():
    x = T.matrix('x')
    layer = backend.sigmoid(T.dot(x, numpy.full((4, 7), 0.1)))
    ca = small_model(input=layer)
    cost, _ = ca.get_cost_updates(0.1, 0.01)
    inputs = numpy.random.RandomState(3).uniform(size=(6, 4))
    got = theano.function([x], cost)(inputs)
    expected = reference_cost(sigmoid(inputs @ numpy.full((4, 7), 0.1)),
                              *values(ca), 0.1)
    assert got == pytest.approx(expected, rel=1e-12)


# ---- the math --------------------------------------------------------------

def test_hidden_and_reconstruction_follow_eqs_1_and_3():
    ca = small_model()
    W, b, b_prime = values(ca)
    x = batch(4)
    h = ca.get_hidden_values(ca.x)
    z = ca.get_reconstructed_input(h)
    got_h, got_z = theano.function([ca.x], [h, z])(x)
    numpy.testing.assert_allclose(got_h, sigmoid(x @ W + b), rtol=1e-12)
    numpy.testing.assert_allclose(
        got_z, sigmoid(sigmoid(x @ W + b) @ W.T + b_prime), rtol=1e-12)


def test_L_rec_and_L_jacob_match_the_explicit_reference():
    ca = small_model()
    cost, _ = ca.get_cost_updates(contraction_level=0.3, learning_rate=0.1)
    f = theano.function([ca.x], [ca.L_rec, ca.L_jacob, cost])
    x = batch(5)
    L_rec, L_jacob, got_cost = f(x)
    assert L_rec.shape == (5,)
    ref_rec, ref_jacob = reference_costs(x, *values(ca))
    assert L_rec.mean() == pytest.approx(ref_rec, rel=1e-12)
    assert L_jacob == pytest.approx(ref_jacob, rel=1e-12)
    assert got_cost == pytest.approx(ref_rec + 0.3 * ref_jacob, rel=1e-12)


def test_closed_form_penalty_equals_explicit_jacobian_and_theano_jacobian():
    ca = small_model()
    x = batch(4)
    h = ca.get_hidden_values(ca.x)
    closed = ca.get_jacobian_norm(h)
    explicit = T.sum(ca.get_jacobian(h, ca.W) ** 2, axis=(1, 2))
    stack = ca.get_jacobian(h, ca.W)
    got_closed, got_explicit, got_stack = theano.function(
        [ca.x], [closed, explicit, stack])(x)
    assert got_stack.shape == (4, 7, 5)

    # theano's own Jacobian of h(x) for one example: (n_hidden, n_visible)
    v = T.vector('v')
    jac = theano.gradient.jacobian(ca.get_hidden_values(v), v)
    jac_f = theano.function([v], jac, mode=PY_MODE)
    for k in range(4):
        J_theano = jac_f(x[k])
        numpy.testing.assert_allclose(got_stack[k], J_theano.T, rtol=1e-12)
        assert got_closed[k] == pytest.approx(numpy.sum(J_theano ** 2),
                                              rel=1e-12)
    numpy.testing.assert_allclose(got_closed, got_explicit, rtol=1e-12)


def test_jacobian_matches_finite_differences_of_h():
    ca = small_model()
    W, b, _ = values(ca)
    x = batch(1)[0]
    stack = theano.function([ca.x], ca.get_jacobian(
        ca.get_hidden_values(ca.x), ca.W))(x[None, :])[0]
    for j in range(5):
        fd = finite_difference_gradient(lambda v: sigmoid(v @ W + b)[j], x)
        numpy.testing.assert_allclose(stack[:, j], fd, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize('n', [1, 3, 10, 17])
def test_penalty_works_for_any_minibatch_size(n):
    ca = small_model(n_batchsize=10)  # n_batchsize must not matter
    cost, _ = ca.get_cost_updates(contraction_level=0.1, learning_rate=0.1)
    f = theano.function([ca.x], ca.L_jacob)
    x = batch(n)
    assert f(x) == pytest.approx(reference_costs(x, *values(ca))[1],
                                 rel=1e-12)


def test_penalty_gradient_wrt_W_is_nonzero_and_matches_finite_differences():
    # the `//` defect made this gradient zero
    ca = small_model()
    _, b, b_prime = values(ca)
    x = batch(3)
    h = ca.get_hidden_values(ca.x)
    penalty = T.mean(ca.get_jacobian_norm(h))
    g = theano.function([ca.x], T.grad(penalty, ca.W))(x)
    fd = finite_difference_gradient(
        lambda W: reference_costs(x, W, b, b_prime)[1], ca.W.get_value())
    assert numpy.abs(g).max() > 1e-3
    numpy.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize('method', [cA.get_cost_updates,
                                    fused.get_cost_updates])
def test_one_sgd_step_moves_every_parameter_by_the_gradient(method):
    lam, lr = 0.2, 0.05
    ca = small_model()
    before = values(ca)
    x = batch(4)
    cost, updates = method(ca, contraction_level=lam, learning_rate=lr)
    theano.function([ca.x], cost, updates=updates)(x)
    for k, after in enumerate(values(ca)):
        def cost_of(value, k=k):
            params = list(before)
            params[k] = value
            return reference_cost(x, *params, lam)
        grad = finite_difference_gradient(cost_of, before[k])
        numpy.testing.assert_allclose(after, before[k] - lr * grad,
                                      rtol=1e-7, atol=1e-9)


def test_plain_autoencoder_when_contraction_level_is_zero():
    x = batch(4)
    initial = values(small_model())
    ca_plain, ca_cae = small_model(), small_model()
    for ca, lam in [(ca_plain, 0.0), (ca_cae, 0.5)]:
        cost, updates = ca.get_cost_updates(lam, 0.1)
        theano.function([ca.x], cost, updates=updates)(x)
    W, b, b_prime = initial
    grad_rec = finite_difference_gradient(
        lambda W: reference_costs(x, W, b, b_prime)[0], W)
    numpy.testing.assert_allclose(ca_plain.W.get_value(), W - 0.1 * grad_rec,
                                  rtol=1e-7, atol=1e-9)
    assert not numpy.allclose(ca_plain.W.get_value(), ca_cae.W.get_value())


# ---- test_cA ---------------------------------------------------------------

TINY = dict(training_epochs=4, batch_size=20, n_hidden=30,
            learning_rate=0.1, contraction_level=0.1)


@pytest.fixture(scope='module')
def tiny_run(tiny_mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp('out')
    cwd = os.getcwd()
    log = open(str(out / 'log.txt'), 'w+')
    result = test_cA(dataset=tiny_mnist, output_folder=str(out / 'plots'),
                     log=log, **TINY)
    log.seek(0)
    return result, str(out / 'plots'), log.read(), cwd


def test_training_cost_falls(tiny_run):
    result, _, _, _ = tiny_run
    per_epoch = result.costs[:, :, 0].mean(axis=1)
    assert numpy.all(numpy.diff(per_epoch) < 0)


def test_costs_cover_every_minibatch_the_last_short_one_included(tiny_run):
    result, _, _, _ = tiny_run
    # 230 examples in batches of 20: 11 full and one of 10
    assert result.costs.shape == (4, 12, 2)
    assert numpy.all(numpy.isfinite(result.costs))
    assert numpy.all(result.costs[:, :, 1] > 0)


def test_first_minibatch_costs_match_the_reference(tiny_mnist, tiny_run):
    from machinery import mnist_data
    result, _, _, _ = tiny_run
    (train_x, _), _, _ = mnist_data.read_mnist(tiny_mnist)
    fresh = cA(numpy_rng=numpy.random.RandomState(123), n_visible=784,
               n_hidden=30)
    L_rec, L_jacob = reference_costs(train_x[:20].astype(float),
                                     *values(fresh))
    assert result.costs[0, 0, 0] == pytest.approx(L_rec, rel=1e-10)
    assert result.costs[0, 0, 1] == pytest.approx(L_jacob, rel=1e-10)


def test_log_has_epoch_means(tiny_run):
    result, _, log, _ = tiny_run
    lines = [l for l in log.splitlines() if l.startswith('epoch ')]
    assert len(lines) == 4
    fields = lines[2].split()
    assert fields[:2] == ['epoch', '3/4'] and fields[-1] == 's'
    assert float(fields[3]) == pytest.approx(
        result.costs[2, :, 0].mean(), abs=0.006)
    assert float(fields[5]) == pytest.approx(
        numpy.sqrt(result.costs[2, :, 1]).mean(), abs=0.006)
    assert 'trained 4 epochs in' in log


def test_filters_png_is_289_by_289_and_cwd_is_unchanged(tiny_run):
    result, plots, _, cwd = tiny_run
    assert os.getcwd() == cwd
    path = os.path.join(plots, 'cae_filters.png')
    assert result.filters_path == path
    with PIL.Image.open(path) as image:
        assert image.format == 'PNG'
        assert image.size == (289, 289)
        pixels = numpy.asarray(image)
    # 30 filters: tiles 31..99 are blank, tile 0 is not
    assert pixels[:28, :28].std() > 0
    assert pixels[-28:, -28:].max() == 0
    assert [f for f in os.listdir(plots) if f.endswith('.tmp')] == []


def test_two_runs_give_bit_identical_costs(tiny_mnist, tiny_run, tmp_path):
    result, _, _, _ = tiny_run
    again = test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                    log=open(os.devnull, 'w'), **TINY)
    numpy.testing.assert_array_equal(again.costs, result.costs)
    numpy.testing.assert_array_equal(again.ca.W.get_value(),
                                     result.ca.W.get_value())


def test_a_test_file_that_imports_test_cA_collects_no_test(tmp_path):
    """Another tutorial's tests may `from cA import test_cA`: pytest must
    not take the training function for a test and run it."""
    test_file = tmp_path / 'test_uses_cA.py'
    test_file.write_text('from cA import test_cA\n\n\n'
                         'def test_nothing():\n    pass\n')
    r = run_script(['-m', 'pytest', '--collect-only', '-q', '-p',
                    'no:cacheprovider', str(test_file)],
                   env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 0, r.stdout + r.stderr
    collected = [l for l in r.stdout.splitlines() if '::' in l]
    assert collected == ['%s::test_nothing' % test_file] or \
        [c.split('::')[1] for c in collected] == ['test_nothing']


@pytest.mark.parametrize('kwargs, phrase', [
    (dict(batch_size=0), 'batch_size must be a positive integer'),
    (dict(training_epochs=-1), 'training_epochs must be a positive'),
    (dict(n_hidden=0), 'n_hidden must be a positive'),
    (dict(learning_rate=float('nan')), 'learning_rate must be a positive'),
    (dict(learning_rate=0.0), 'learning_rate must be a positive'),
    (dict(contraction_level=-0.1), 'contraction_level must be'),
    (dict(batch_size=10000), 'larger than the training set'),
])
def test_bad_hyperparameters_raise_config_error(tiny_mnist, tmp_path,
                                                kwargs, phrase):
    with pytest.raises(checks.ConfigError, match=phrase):
        test_cA(dataset=tiny_mnist, output_folder=str(tmp_path), **kwargs)


# ---- the module and the command line --------------------------------------

def test_importing_cA_creates_no_files(tmp_path):
    before = sorted(os.listdir(REPO)), sorted(os.listdir(
        os.path.join(REPO, 'cA_plots')))
    r = run_script(['-c', 'import sys; sys.path.insert(0, %r); import cA'
                    % REPO], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(tmp_path)) == []
    assert (sorted(os.listdir(REPO)), sorted(os.listdir(
        os.path.join(REPO, 'cA_plots')))) == before


def test_help_lists_every_flag_and_touches_nothing(tmp_path):
    r = run_script([os.path.join(REPO, 'cA.py'), '--help'],
                   cwd=str(tmp_path))
    assert r.returncode == 0
    for flag in ['--learning-rate', '--epochs', '--dataset', '--batch-size',
                 '--output-folder', '--contraction-level', '--n-hidden',
                 '--seed', '--gradient', '--resume', '--restart']:
        assert flag in r.stdout
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.slow
def test_command_line_trains_end_to_end(tiny_mnist, tmp_path):
    out = tmp_path / 'plots'
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--epochs', '2',
                    '--batch-size', '50', '--n-hidden', '20',
                    '--learning-rate', '0.1', '--output-folder', str(out)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('reconstruction') == 2
    assert 'epoch 2/2' in r.stdout
    assert (out / 'cae_filters.png').exists()


@pytest.mark.parametrize('args, phrase', [
    (['--batch-size', '0'], 'batch_size must be a positive integer'),
    (['--learning-rate', 'inf'], 'learning_rate must be a positive'),
    (['--dataset', 'no/such/file.pkl.gz'], 'no/such/file.pkl.gz'),
])
def test_command_line_bad_input_is_one_line_and_exit_2(tmp_path, tiny_mnist,
                                                       args, phrase):
    argv = ['cA.py', '--dataset', tiny_mnist,
            '--output-folder', str(tmp_path / 'out')] + args
    r = run_script(argv)
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr
    error_lines = [l for l in r.stderr.splitlines() if l.startswith('error:')]
    assert len(error_lines) == 1 and phrase in error_lines[0]


@pytest.mark.slow
def test_float32_training_stays_float32_and_learns(tiny_mnist, tmp_path):
    code = (
        'import sys, numpy, cA\n'
        'from machinery.backend import theano\n'
        'assert theano.config.floatX == "float32"\n'
        'r = cA.test_cA(dataset=sys.argv[1], output_folder=sys.argv[2],\n'
        '               training_epochs=3, batch_size=20, n_hidden=30,\n'
        '               learning_rate=0.1)\n'
        'assert all(p.get_value().dtype == numpy.float32\n'
        '           for p in r.ca.params)\n'
        'per_epoch = r.costs[:, :, 0].mean(axis=1)\n'
        'assert numpy.all(numpy.diff(per_epoch) < 0), per_epoch\n'
        'print("ok")\n')
    env = dict(os.environ, **{backend.STACK.flags_var: 'floatX=float32'})
    r = run_script(['-c', code, tiny_mnist, str(tmp_path)], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith('ok')
