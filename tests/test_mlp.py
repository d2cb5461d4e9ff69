"""mlp.HiddenLayer: its initial range, its output against numpy, and the
storage it is given."""
import numpy
import pytest

from machinery import backend
from machinery.backend import theano, T
from conftest import sigmoid
from mlp import HiddenLayer, initial_weight_bound


@pytest.mark.parametrize('activation, factor', [(T.tanh, 1),
                                                (backend.sigmoid, 4)])
def test_hidden_layer_initial_range(activation, factor):
    n_in, n_out = 300, 200
    layer = HiddenLayer(numpy.random.RandomState(0), T.matrix('x'), n_in,
                        n_out, activation=activation)
    W = layer.W.get_value()
    bound = factor * numpy.sqrt(6. / (n_in + n_out))
    assert initial_weight_bound(n_in, n_out, activation) == \
        pytest.approx(bound)
    assert W.shape == (n_in, n_out)
    assert numpy.abs(W).max() <= bound
    assert numpy.abs(W).max() > 0.99 * bound  # the whole range is used
    # uniform on [-r, r] has variance r^2 / 3
    assert W.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    assert numpy.all(layer.b.get_value() == 0)
    assert layer.b.get_value().shape == (n_out,)
    assert layer.params == [layer.W, layer.b]


@pytest.mark.parametrize('activation, reference', [
    (T.tanh, numpy.tanh), (backend.sigmoid, sigmoid), (None, lambda a: a)])
def test_hidden_layer_output_against_numpy(activation, reference):
    rng = numpy.random.RandomState(1)
    x = T.matrix('x')
    b = theano.shared(rng.uniform(-1, 1, 7), name='b')
    layer = HiddenLayer(rng, x, 5, 7, b=b, activation=activation)
    assert layer.b is b
    X = rng.uniform(0, 1, (4, 5))
    got = theano.function([x], layer.output)(X)
    expected = reference(X @ layer.W.get_value() + b.get_value())
    numpy.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_hidden_layer_uses_given_storage():
    W = theano.shared(numpy.ones((3, 2)), name='W')
    x = T.matrix('x')
    layer = HiddenLayer(numpy.random.RandomState(0), x, 3, 2, W=W,
                        activation=None)
    output = theano.function([x], layer.output)
    X = numpy.arange(6.).reshape(2, 3)
    numpy.testing.assert_array_equal(output(X), X @ numpy.ones((3, 2)))
    W.set_value(numpy.full((3, 2), 2.))  # the caller's storage, not a copy
    numpy.testing.assert_array_equal(output(X), X @ numpy.full((3, 2), 2.))
