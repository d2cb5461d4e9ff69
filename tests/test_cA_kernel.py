"""The compiled SGD step (machinery/kernel/op.py, CAEStep) against independent references:
the T.grad step (cA.get_cost_updates), a plain NumPy step written here, and
finite differences of the explicit cost; and how it composes with a graph.
"""
import os

import numpy
import pytest

from machinery import backend
from machinery.backend import theano, T
import cA as cA_module
from machinery.kernel import op as kernel_op
from cA import cA
from conftest import (finite_difference_gradient, reference_cost,
                      run_script, sigmoid)
from mlp import HiddenLayer

LR = 0.05
# the Op runs its C code where the stack links a BLAS library, else perform
C_CODE = bool(backend.blas_ldflags())


def small_model(n_visible=7, n_hidden=5, seed=1, dtype='float64', **kwargs):
    """A cA with random W and biases (no term trivially zero) of dtype."""
    rng = numpy.random.RandomState(seed)
    bound = 4 * numpy.sqrt(6. / (n_hidden + n_visible))
    shared = [theano.shared(v.astype(dtype), name=name) for name, v in [
        ('W', rng.uniform(-bound, bound, (n_visible, n_hidden))),
        ('b', rng.uniform(-1, 1, n_hidden)),
        ('b_prime', rng.uniform(-1, 1, n_visible))]]
    kwargs.setdefault('input', T.matrix('x', dtype=dtype))
    return cA(numpy_rng=rng, n_visible=n_visible, n_hidden=n_hidden,
              W=shared[0], bhid=shared[1], bvis=shared[2], **kwargs)


def batch(n, n_visible=7, seed=2):
    return numpy.random.RandomState(seed).uniform(0, 1, (n, n_visible))


def values(ca):
    return [p.get_value() for p in ca.params]


def numpy_step(x, W, b, b_prime, lam, eta):
    """One SGD step in NumPy, written from eqs. (1)-(10) of cA.py; returns
    (mean L_rec, L_jacob, W, b, b_prime)."""
    n = x.shape[0]
    h = sigmoid(x @ W + b)
    z = sigmoid(h @ W.T + b_prime)
    L_rec = -numpy.sum(x * numpy.log(z) + (1 - x) * numpy.log(1 - z), axis=1)
    s = h * (1 - h)
    c = numpy.sum(W ** 2, axis=0)
    L_jacob = numpy.mean((s ** 2) @ c)
    d_z = (z - x) / n
    d_h = (d_z @ W + 2 * lam / n * c * s * (1 - 2 * h)) * s
    gW = x.T @ d_h + d_z.T @ h + 2 * lam * W * numpy.mean(s ** 2, axis=0)
    return (numpy.mean(L_rec), L_jacob, W - eta * gW,
            b - eta * d_h.sum(axis=0), b_prime - eta * d_z.sum(axis=0))


def compile_step(ca, method, lam, mode=None, **kwargs):
    """theano.function(x) -> [cost, mean L_rec, L_jacob] with the step's
    updates, by 'kernel' or 'T.grad'."""
    if method == 'kernel':
        cost, updates = kernel_op.get_cost_updates(ca, lam, LR, **kwargs)
    else:
        cost, updates = ca.get_cost_updates(lam, LR)
    return theano.function([ca.x], [cost, T.mean(ca.L_rec), ca.L_jacob],
                           updates=updates, mode=mode)


def kernel_nodes(f):
    return [node for node in f.maker.fgraph.toposort()
            if isinstance(node.op, kernel_op.CAEStep)]


def runs_c_code(f):
    """Whether the function's CAEStep runs its C code (not perform)."""
    vm = getattr(f, 'vm', None) or f.fn
    return [hasattr(thunk, 'cthunk') for node, thunk in
            zip(vm.nodes, vm.thunks)
            if isinstance(node.op, kernel_op.CAEStep)] == [True]


def assert_step_close(before, after, reference, rtol):
    """Parameters after the step equal the reference's to rtol (relative to
    each array's largest element), and so do the steps themselves (after -
    before), which are ~1000x smaller than the parameters."""
    for p0, got, want in zip(before, after, reference):
        scale = numpy.max(numpy.abs(want))
        numpy.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)
        step, want_step = got - p0, want - p0
        step_scale = numpy.max(numpy.abs(want_step))
        assert step_scale > 0
        numpy.testing.assert_allclose(step, want_step, rtol=1e3 * rtol,
                                      atol=1e3 * rtol * step_scale)


# ---- one step, float64 -------------------------------------------------------

# (batch, n_visible, n_hidden, lambda, block_rows): one example; odd sizes;
# blocks of W rows that do not divide n_visible (7 = 3 + 3 + 1, 50 = 4 x 12
# + 2); a plain auto-encoder (lambda = 0); sizes a BLAS kernel splits; and
# sizes with work for 3 threads (B n_visible n_hidden >= 3 x
# kernel_op.PARALLEL_WORK; as many as the machine has, at least 2 here),
# in blocks (301 rows in blocks of 18, shared by the threads; 400 = 399 +
# 1: fewer blocks than 3 threads) and in whole-matrix passes (batch >=
# kernel_op.SMALL_BATCH).
CASES = [(4, 7, 5, 0.3, None), (1, 7, 5, 0.1, None), (5, 7, 5, 0.0, None),
         (4, 7, 5, 0.3, 3), (9, 50, 13, 0.2, 4), (3, 50, 37, 0.1, 1),
         (70, 33, 21, 0.1, None), (13, 61, 129, 0.5, 7),
         (12, 301, 900, 0.1, None), (10, 400, 800, 0.1, 399),
         (10, 400, 800, 0.0, 150), (100, 129, 250, 0.1, None)]
assert all(n * v * h >= 3 * kernel_op.PARALLEL_WORK
           for n, v, h, _, _ in CASES[-4:])


@pytest.mark.parametrize('n, n_visible, n_hidden, lam, block_rows', CASES)
def test_one_step_equals_the_T_grad_step_and_numpy(n, n_visible, n_hidden,
                                                   lam, block_rows):
    x = batch(n, n_visible)
    results = {}
    for method in ('T.grad', 'kernel'):
        ca = small_model(n_visible, n_hidden)
        before = values(ca)
        kw = {'block_rows': block_rows} if method == 'kernel' else {}
        f = compile_step(ca, method, lam, **kw)
        results[method] = (f(x), values(ca))
    assert runs_c_code(f) == C_CODE
    (out_g, params_g), (out_k, params_k) = results['T.grad'], results['kernel']
    numpy.testing.assert_allclose(out_k, out_g, rtol=1e-12)
    assert_step_close(before, params_k, params_g, rtol=1e-12)
    # a NumPy step written from the equations, not from either graph
    expected = numpy_step(x, *before, lam, LR)
    numpy.testing.assert_allclose(out_k[1:], expected[:2], rtol=1e-12)
    assert_step_close(before, params_k, expected[2:], rtol=1e-12)


@pytest.mark.slow
def test_one_step_with_three_threads():
    """The cases above asking OpenMP for 3 threads (OMP_NUM_THREADS; MKL
    may hold a process to its cores): more than the blocks of some, and
    shares of W that are not equal."""
    env = dict(os.environ, OMP_NUM_THREADS='3')
    r = run_script(['-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                    os.path.abspath(__file__) + '::'
                    'test_one_step_equals_the_T_grad_step_and_numpy'],
                   env=env)
    assert r.returncode == 0, r.stdout[-3000:]
    assert '%d passed' % len(CASES) in r.stdout


def test_step_follows_finite_differences_of_the_explicit_cost():
    """The step is -eta times the gradient of the cost built from explicit
    Jacobians (conftest.reference_cost), by central differences."""
    lam, x = 0.4, batch(3, n_visible=4)
    ca = small_model(n_visible=4, n_hidden=3)
    W, b, b_prime = before = values(ca)
    compile_step(ca, 'kernel', lam)(x)
    grads = [
        finite_difference_gradient(
            lambda v: reference_cost(x, v, b, b_prime, lam), W),
        finite_difference_gradient(
            lambda v: reference_cost(x, W, v, b_prime, lam), b),
        finite_difference_gradient(
            lambda v: reference_cost(x, W, b, v, lam), b_prime)]
    for p0, p1, g in zip(before, values(ca), grads):
        numpy.testing.assert_allclose((p0 - p1) / LR, g, rtol=1e-6,
                                      atol=1e-9)


def test_c_code_equals_the_ops_numpy_perform(monkeypatch):
    calls = []
    perform = kernel_op.CAEStep.perform
    monkeypatch.setattr(kernel_op.CAEStep, 'perform',
                        lambda *args: calls.append(1) or perform(*args))
    x = batch(6, n_visible=40)
    got = {}
    for mode in ('c', 'py'):
        ca = small_model(n_visible=40, n_hidden=30)
        m = theano.compile.Mode(linker='py') if mode == 'py' else None
        f = compile_step(ca, 'kernel', 0.2, mode=m)
        got[mode] = f(x) + values(ca)
        # perform runs in the Python linker, and without BLAS in C's too
        assert len(calls) == (not C_CODE) + (mode == 'py')
    for a, b in zip(got['c'], got['py']):
        numpy.testing.assert_allclose(a, b, rtol=1e-12,
                                      atol=1e-14 * numpy.max(numpy.abs(b)))


# ---- how it composes with a graph ------------------------------------------

def test_updates_W_b_b_prime_in_place():
    ca = small_model()
    arrays = [p.get_value(borrow=True, return_internal_type=True)
              for p in ca.params]
    before = [a.copy() for a in arrays]
    f = compile_step(ca, 'kernel', 0.1)
    assert [node.op.inplace for node in kernel_nodes(f)] == [True]
    f(batch(4))
    for p, a, a0 in zip(ca.params, arrays, before):
        # the same array, changed
        assert p.get_value(borrow=True, return_internal_type=True) is a
        assert not numpy.array_equal(a, a0)


def test_an_output_of_the_old_W_is_computed_before_the_step():
    """The destroy handler orders the nodes: W * 2 reads W before the
    in-place step changes it."""
    ca = small_model()
    W0 = ca.W.get_value()
    cost, updates = kernel_op.get_cost_updates(ca, 0.1, LR)
    f = theano.function([ca.x], [cost, ca.W * 2], updates=updates)
    assert [node.op.inplace for node in kernel_nodes(f)] == [True]
    _, doubled = f(batch(4))
    numpy.testing.assert_array_equal(doubled, 2 * W0)
    expected = numpy_step(batch(4), W0, *values(small_model())[1:], 0.1, LR)
    numpy.testing.assert_allclose(ca.W.get_value(), expected[2], rtol=1e-12)


def test_not_in_place_when_the_function_does_not_update_W():
    """Without the updates, W is not the function's to change: the Op stays
    out of place and returns the new parameters as outputs."""
    ca = small_model()
    before = values(ca)
    new_W, new_b, new_b_prime = [v for _, v in
                                 kernel_op.get_cost_updates(ca, 0.1, LR)[1]]
    f = theano.function([ca.x], [new_W, new_b, new_b_prime])
    assert [node.op.inplace for node in kernel_nodes(f)] == [False]
    for _ in range(2):  # the second call reuses the output arrays
        got = f(batch(4))
        for a, b in zip(values(ca), before):
            numpy.testing.assert_array_equal(a, b)
        expected = numpy_step(batch(4), *before, 0.1, LR)[2:]
        for a, b in zip(got, expected):
            numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_input_is_another_layers_output_and_W_is_shared_with_it():
    """As in ScA.py: the cA trains a hidden layer's W and b on the output of
    the layer below; the layer sees the new weights."""
    rng = numpy.random.RandomState(5)
    x = T.matrix('x')
    below = HiddenLayer(rng, x, n_in=9, n_out=7, activation=backend.sigmoid)
    layer = HiddenLayer(rng, below.output, n_in=7, n_out=5,
                        activation=backend.sigmoid)
    inputs = batch(6, n_visible=9, seed=4)
    results = {}
    for method in ('T.grad', 'kernel'):
        for p, v in zip(layer.params, [layer.W.get_value(),
                                       layer.b.get_value()]):
            p.set_value(v)
        start = [layer.W.get_value(), layer.b.get_value()]
        ca = cA(numpy_rng=rng, input=below.output, n_visible=7, n_hidden=5,
                W=layer.W, bhid=layer.b)
        assert ca.W is layer.W
        if method == 'kernel':
            cost, updates = kernel_op.get_cost_updates(ca, 0.2, LR)
        else:
            cost, updates = ca.get_cost_updates(0.2, LR)
        f = theano.function([x], cost, updates=updates)
        results[method] = (f(inputs), layer.W.get_value(),
                           layer.b.get_value(),
                           theano.function([x], layer.output)(inputs))
        for p, v in zip(layer.params, start):  # the next method starts over
            p.set_value(v)
    for a, b in zip(results['kernel'], results['T.grad']):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert not numpy.allclose(results['kernel'][1], start[0])


def test_a_plain_autoencoder_whose_L_jacob_no_one_reads_skips_the_norms():
    """At lambda = 0 without L_jacob among the outputs, the in-place
    rewrite drops the column norms (norms=False); the step is the same."""
    x = batch(5)
    for outputs in ('L_rec', 'both'):
        ca = small_model()
        before = values(ca)
        cost, updates = kernel_op.get_cost_updates(ca, 0.0, LR)
        wanted = [T.mean(ca.L_rec)] + ([ca.L_jacob] if outputs == 'both'
                                       else [])
        f = theano.function([ca.x], wanted, updates=updates)
        assert [node.op.norms for node in kernel_nodes(f)] == [
            outputs == 'both']
        got = f(x)
        expected = numpy_step(x, *before, 0.0, LR)
        numpy.testing.assert_allclose(got, expected[:len(got)], rtol=1e-12)
        assert_step_close(before, values(ca), expected[2:], rtol=1e-12)


def test_x_with_strided_rows_and_a_fortran_ordered_x():
    """A slice of columns (rows at a stride larger than the row) and a
    transposed array (the copy path) give the same step."""
    data = theano.shared(batch(8, n_visible=12, seed=6))
    ca = small_model()
    cost, updates = kernel_op.get_cost_updates(ca, 0.1, LR)
    f = theano.function([], cost, updates=updates,
                        givens={ca.x: data[:, 2:9]})
    got = [[f()] + values(ca)]
    ca = small_model()
    f = compile_step(ca, 'kernel', 0.1)
    fortran = numpy.asfortranarray(batch(8, n_visible=12, seed=6)[:, 2:9])
    got.append([f(fortran)[0]] + values(ca))
    expected = numpy_step(batch(8, 12, 6)[:, 2:9], *values(small_model()),
                          0.1, LR)[2:]
    for result in got:
        for a, b in zip(result[1:], expected):
            numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_bad_shapes_and_an_empty_minibatch_raise():
    ca = small_model()
    f = compile_step(ca, 'kernel', 0.1)
    with pytest.raises(ValueError, match='shapes do not fit'):
        f(batch(3, n_visible=6))
    with pytest.raises(ValueError, match='empty'):
        f(numpy.zeros((0, 7)))
    with pytest.raises(TypeError, match='one dtype'):
        kernel_op.CAEStep()(T.fmatrix(), ca.W, ca.b, ca.b_prime, 0.1, 0.1)


# ---- float32 ---------------------------------------------------------------

@pytest.mark.parametrize('n, block_rows', [(7, None), (70, None), (7, 3)])
def test_float32_stays_float32_and_matches_float64(n, block_rows):
    x = batch(n, n_visible=40)
    got = {}
    for dtype in ('float32', 'float64'):
        ca = small_model(n_visible=40, n_hidden=30, dtype=dtype)
        cost, updates = kernel_op.get_cost_updates(ca, 0.2, LR,
                                                   block_rows=block_rows)
        assert all(v.type.dtype == dtype for _, v in updates)
        f = theano.function([ca.x], [cost, ca.L_rec, ca.L_jacob],
                            updates=updates)
        outputs = [f(x.astype(dtype)) for _ in range(3)]
        got[dtype] = outputs[-1] + values(ca)
        assert all(a.dtype == dtype for a in got[dtype])
    for a, b in zip(got['float32'], got['float64']):
        numpy.testing.assert_allclose(a, b, rtol=2e-5,
                                      atol=2e-6 * numpy.max(numpy.abs(b)))


def cli_default(name):
    import inspect
    return inspect.signature(cA_module.test_cA).parameters[name].default


# ---- many steps: the training of test_cA ---------------------------------

@pytest.mark.slow
def test_kernel_and_T_grad_training_agree_over_epochs(tiny_mnist, tmp_path):
    """3 epochs on the small data at batch 20 (230 examples: the last
    minibatch has 10): every minibatch's costs and the final parameters."""
    runs = {}
    for gradient in ('kernel', 'T.grad'):
        r = cA_module.test_cA(dataset=tiny_mnist, training_epochs=3,
                              batch_size=20, n_hidden=30,
                              output_folder=str(tmp_path / gradient),
                              gradient=gradient, log=open(os.devnull, 'w'))
        runs[gradient] = (r.costs, values(r.ca))
    assert runs['kernel'][0].shape == (3, 12, 2)
    numpy.testing.assert_allclose(runs['kernel'][0], runs['T.grad'][0],
                                  rtol=1e-9)
    for a, b in zip(runs['kernel'][1], runs['T.grad'][1]):
        numpy.testing.assert_allclose(a, b, rtol=1e-9,
                                      atol=1e-9 * numpy.max(numpy.abs(b)))


# ---- the number of threads does not change the result ------------------------

@pytest.mark.skipif(not C_CODE, reason='the C code runs only with a BLAS')
@pytest.mark.parametrize('n, n_visible, n_hidden, block_rows', [
    (12, 301, 900, None), (10, 400, 800, 150), (10, 784, 500, None)])
def test_any_number_of_threads_computes_the_same_bits(n, n_visible,
                                                      n_hidden, block_rows):
    """Forced to 1, 2 and 3 threads (at most: as many as the machine has),
    and left to choose (which runs PROBE_FIRST steps with all the threads,
    then probes them and one: PROBE_STEPS steps of each), the same steps
    give the same bits."""
    steps = kernel_op.PROBE_FIRST + 2 * kernel_op.PROBE_STEPS + 8
    data = batch(n * steps, n_visible, seed=5)
    results = {}
    for threads in (1, 2, 3, None):
        ca = small_model(n_visible, n_hidden)
        f = compile_step(ca, 'kernel', 0.1, threads=threads,
                         block_rows=block_rows)
        costs = [f(data[i * n:(i + 1) * n]) for i in range(steps)]
        results[threads] = (numpy.array(costs), values(ca))
    for threads in (2, 3, None):
        numpy.testing.assert_array_equal(results[threads][0], results[1][0])
        for a, b in zip(results[threads][1], results[1][1]):
            numpy.testing.assert_array_equal(a, b)
