"""machinery/kernel/fused.py, the hand-derived step as a graph, against
cA.get_cost_updates (T.grad): one step, and four epochs of training."""
import os

import numpy
import pytest

from machinery.backend import theano
from machinery.kernel import fused
from cA import cA, test_cA
# tiny_run: test_cA.py's default-step run, shared with the tests here
from test_cA import TINY, batch, small_model, values, tiny_run  # noqa: F401,F811


def test_the_column_norms_gemv_is_the_sum_of_squares():
    """The speed form of eq. (5)'s c_j against the class's plain one."""
    ca = small_model()
    c = theano.function([], fused.column_norms(ca.W))()
    W = ca.W.get_value()
    numpy.testing.assert_allclose(c, (W ** 2).sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize('lam, n', [(0.3, 4), (0.0, 5), (0.1, 1)])
def test_fused_step_equals_the_T_grad_step(lam, n):
    x = batch(n)
    models = {}
    for name in ('T.grad', 'fused'):
        ca = small_model()
        get = cA.get_cost_updates if name == 'T.grad' else \
            fused.get_cost_updates
        cost, updates = get(ca, contraction_level=lam, learning_rate=0.05)
        f = theano.function([ca.x], [cost, ca.L_rec, ca.L_jacob],
                            updates=updates)
        models[name] = (f(x), values(ca))
    (out_g, params_g), (out_f, params_f) = models['T.grad'], models['fused']
    for a, b in zip(out_g, out_f):
        numpy.testing.assert_allclose(b, a, rtol=1e-12)
    for a, b in zip(params_g, params_f):
        numpy.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize('gradient', ['fused', 'auto'])
def test_fused_and_default_training_agree_with_T_grad_over_epochs(
        tiny_mnist, tiny_run, tmp_path, gradient):
    """Four epochs of 12 minibatches: every minibatch's costs and the final
    W. tiny_run trained with the default ('auto': the kernel, for the
    stock class)."""
    def run(gradient):
        return test_cA(dataset=tiny_mnist, output_folder=str(tmp_path /
                                                             gradient),
                       gradient=gradient, log=open(os.devnull, 'w'), **TINY)
    result = tiny_run[0] if gradient == 'auto' else run(gradient)
    tgrad = run('T.grad')
    numpy.testing.assert_allclose(result.costs, tgrad.costs, rtol=1e-9)
    numpy.testing.assert_allclose(result.ca.W.get_value(),
                                  tgrad.ca.W.get_value(), rtol=1e-9,
                                  atol=1e-12)
