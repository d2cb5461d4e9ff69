"""The default step: the class's own graph, and the kernel only where that
graph is the stock one (machinery/kernel/steps.py).

A learner who edits the cA class must see the edit change what trains;
the stock class must train with the kernel. The references here are
independent of the guard: a plain numpy step of the edited cost, and the
count of kernel nodes in the compiled function.
"""
import os
import subprocess
import sys

import numpy
import pytest

from machinery.backend import theano, T, sigmoid
from machinery.kernel import op, steps
from cA import build_training, cA
from conftest import REPO, reference_costs

LR = 0.05


def kernel_nodes(f):
    return [node for node in f.maker.fgraph.toposort()
            if isinstance(node.op, op.CAEStep)]


def batch(n=6, n_visible=7, seed=2):
    return numpy.random.RandomState(seed).uniform(size=(n, n_visible))


class DoubledReconstruction(cA):
    """A learner's edit: the reconstruction cost counts twice."""

    def get_reconstruction_cost(self, x, z):
        return 2 * super().get_reconstruction_cost(x, z)


class DoubledPenalty(cA):
    """A learner's edit: the penalty counts twice."""

    def get_jacobian_norm(self, hidden):
        return 2 * super().get_jacobian_norm(hidden)


class FixedVisibleBias(cA):
    """A learner's edit: b_prime is left out of the parameters trained."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params = [self.W, self.b]


def compiled(model_class, lam=0.1, gradient='auto', n_visible=7,
             n_hidden=5):
    ca = model_class(numpy.random.RandomState(1), n_visible=n_visible,
                     n_hidden=n_hidden)
    cost, updates = ca.get_cost_updates(lam, LR)
    updates, step = steps.faster_equivalent(ca, cost, updates, lam, LR,
                                            gradient)
    f = theano.function([ca.x], [T.mean(ca.L_rec), ca.L_jacob],
                        updates=updates)
    return ca, f, step


@pytest.mark.parametrize('lam', [0.1, 0.0])
def test_the_stock_class_trains_with_the_kernel(lam):
    _, f, step = compiled(cA, lam)
    assert len(kernel_nodes(f)) == 1
    assert str(step).startswith('the kernel')


def test_build_training_gives_the_stock_class_the_kernel():
    """What `python cA.py` compiles by default, and the minibatch size it
    gives the cA."""
    data = theano.shared(batch(30, n_visible=7, seed=8))
    ca, train, step = build_training(data, 10, 5, 1, 0.1, 0.01)
    assert str(step).startswith('the kernel (get_cost_updates built the '
                                'stock graph')
    assert len(kernel_nodes(train)) == 1
    assert ca.n_batchsize == 10


class SumOfSquares(cA):
    """A rewrite of eq. (5)'s column norms that the stack's canonical
    rewrites put in the stock form."""

    def get_squared_column_norms(self):
        return (self.W ** 2).sum(axis=0)


class SumOfSqr(cA):
    def get_squared_column_norms(self):
        return T.sum(T.sqr(self.W), axis=0)


class GemvNorms(cA):
    """The same numbers in a form the rewrites do not unify: a matrix
    product (the kernel package's speed form)."""

    def get_squared_column_norms(self):
        return T.dot(T.ones_like(self.W[:, 0]), self.W ** 2)


class UntiedDecoder(cA):
    """A learner's edit: a decoder of its own, W_prime, trained too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.W_prime = theano.shared(self.W.get_value().T.copy(),
                                     name='W_prime')
        self.params = self.params + [self.W_prime]


@pytest.mark.parametrize('model_class', [SumOfSquares, SumOfSqr])
def test_a_rewrite_the_stack_unifies_still_gets_the_kernel(model_class):
    _, f, step = compiled(model_class)
    assert len(kernel_nodes(f)) == 1, str(step)
    assert str(step).startswith('the kernel')


REWRITTEN = "is not the stock cA's, even after the stack's canonical rewrites"


@pytest.mark.parametrize('model_class, why', [
    (DoubledReconstruction, 'L_rec (eq. 4) ' + REWRITTEN),
    (DoubledPenalty, 'L_jacob (eq. 5) ' + REWRITTEN),
    (GemvNorms, 'L_jacob (eq. 5) ' + REWRITTEN),
    (FixedVisibleBias, 'it trains W, b, not W, b, b_prime'),
    (UntiedDecoder, 'it trains W, b, b_prime, W_prime, not W, b, b_prime')])
def test_an_edited_class_trains_its_own_graph_and_says_why(model_class, why):
    _, f, step = compiled(model_class)
    assert kernel_nodes(f) == []
    assert str(step) == ("get_cost_updates's graph as written (the kernel "
                         "does not take over: %s)" % why)


def test_forcing_T_grad_never_compiles_the_kernel():
    _, f, step = compiled(cA, gradient='T.grad')
    assert kernel_nodes(f) == []
    assert '--gradient T.grad' in str(step)


def test_another_lambda_or_learning_rate_is_not_the_stock_graph():
    ca = cA(numpy.random.RandomState(1), n_visible=7, n_hidden=5)
    cost, updates = ca.get_cost_updates(0.1, LR)
    assert steps.difference_from_stock(ca, cost, updates, 0.1, LR) is None
    assert steps.difference_from_stock(ca, cost, updates, 0.2, LR) == \
        'the cost (eq. 6) ' + REWRITTEN
    assert steps.difference_from_stock(ca, cost, updates, 0.1, 2 * LR) == \
        "the update of W is not the stock cA's (plain SGD on the " \
        "cost, step 0.1)"


def test_the_fingerprint_follows_the_step_not_its_spelling():
    fingerprints = {c.__name__: compiled(c)[2].fingerprint
                    for c in (cA, SumOfSquares, DoubledPenalty)}
    assert fingerprints['cA'] == fingerprints['SumOfSquares']
    assert fingerprints['cA'] != fingerprints['DoubledPenalty']
    assert fingerprints['cA'] != compiled(cA, lam=0.2)[2].fingerprint
    assert compiled(cA, gradient='T.grad')[2].fingerprint != \
        fingerprints['cA']


def numpy_step_of_doubled_reconstruction(x, W, b, b_prime, lam, eta):
    """One SGD step on 2 mean L_rec + lam mean ||J||_F^2, in numpy, with the
    gradient of eqs. (7)-(10) where d_z doubles: the edited class's cost."""
    n = x.shape[0]
    h = 1 / (1 + numpy.exp(-(x @ W + b)))
    z = 1 / (1 + numpy.exp(-(h @ W.T + b_prime)))
    s = h * (1 - h)
    c = numpy.sum(W ** 2, axis=0)
    d_z = 2 * (z - x) / n
    d_h = (d_z @ W + (2 * lam / n) * c * s * (1 - 2 * h)) * s
    m = numpy.mean(s ** 2, axis=0)
    W_new = W - eta * (x.T @ d_h + d_z.T @ h + 2 * lam * W * m)
    return (W_new, b - eta * d_h.sum(axis=0),
            b_prime - eta * d_z.sum(axis=0))


def test_the_edited_class_takes_the_edited_step():
    """Not the kernel's (stock) step: the step of the doubled cost."""
    ca, f, _ = compiled(DoubledReconstruction, lam=0.3)
    before = [p.get_value().copy() for p in ca.params]
    x = batch()
    L_rec, L_jacob = f(x)
    ref_L_rec, ref_L_jacob = reference_costs(x, *before)
    assert L_rec == pytest.approx(2 * ref_L_rec, rel=1e-12)
    assert L_jacob == pytest.approx(ref_L_jacob, rel=1e-12)
    expected = numpy_step_of_doubled_reconstruction(x, *before, 0.3, LR)
    for param, value in zip(ca.params, expected):
        numpy.testing.assert_allclose(param.get_value(), value, rtol=1e-10,
                                      atol=1e-14)


def test_a_layer_of_a_stack_trains_with_the_kernel():
    """The input is another layer's symbolic output, as in ScA.py."""
    x = T.matrix('x')
    W1 = theano.shared(numpy.random.RandomState(3).uniform(-.5, .5, (7, 6)))
    ca = cA(numpy.random.RandomState(1), input=sigmoid(T.dot(x, W1)),
            n_visible=6, n_hidden=5)
    cost, updates = ca.get_cost_updates(0.1, LR)
    assert steps.difference_from_stock(ca, cost, updates, 0.1, LR) is None


@pytest.mark.slow
def test_a_learners_edit_of_cA_py_changes_what_python_cA_py_computes(
        tiny_mnist, tmp_path):
    """The learner edits the file itself: a copy of cA.py whose
    get_reconstruction_cost returns twice the cross-entropy, run as
    `python cA.py --epochs 1` beside the stock one (the rest of the
    repository on PYTHONPATH)."""
    source = open(os.path.join(REPO, 'cA.py')).read()
    written = ('        return -T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), '
               'axis=1)')
    assert source.count(written) == 1
    edited = tmp_path / 'edited'
    edited.mkdir()
    (edited / 'cA.py').write_text(source.replace(
        written, written.replace('return -T.sum', 'return -2 * T.sum')))
    lines = {}
    for name, folder in (('stock', REPO), ('edited', str(edited))):
        r = subprocess.run(
            [sys.executable, 'cA.py', '--dataset', tiny_mnist, '--epochs', '1',
             '--batch-size', '20', '--n-hidden', '30',
             '--output-folder', str(tmp_path / ('out-' + name))],
            cwd=folder, capture_output=True, text=True, timeout=600,
            env=dict(os.environ, PYTHONPATH=REPO))
        assert r.returncode == 0, r.stderr
        lines[name] = r.stdout.splitlines()
    compiled_lines = {k: [l for l in v if l.startswith('compiled in')][0]
                      for k, v in lines.items()}
    assert 'the kernel (get_cost_updates built the stock graph' in \
        compiled_lines['stock']
    assert "get_cost_updates's graph as written (the kernel does not take " \
        "over: L_rec (eq. 4) " + REWRITTEN + ")" in \
        compiled_lines['edited']
    epoch = {k: [l for l in v if l.startswith('epoch 1/1')][0].split()
             for k, v in lines.items()}
    # the first epoch's mean reconstruction: the edited cost counts twice,
    # and trains a different model
    assert float(epoch['edited'][3]) > 1.5 * float(epoch['stock'][3])
