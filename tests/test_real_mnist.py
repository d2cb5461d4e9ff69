"""Integration: the real MNIST, as make fetches it, through test_cA."""
import collections

import numpy
import PIL.Image
import pytest

from machinery import mnist_data
from cA import cA, test_cA
from conftest import reference_costs

# trains on the real MNIST
pytestmark = pytest.mark.slow


def test_real_mnist_has_the_published_shape_and_label_counts(real_mnist):
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = \
        mnist_data.read_mnist(real_mnist)
    assert train_x.shape == (50000, 784) and train_x.dtype == numpy.float32
    assert valid_x.shape == (10000, 784) and test_x.shape == (10000, 784)
    assert train_x.max() == 255 / 256.
    counts = collections.Counter(numpy.concatenate([train_y, valid_y]))
    assert [counts[d] for d in range(10)] == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    counts = collections.Counter(test_y)
    assert [counts[d] for d in range(10)] == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_one_epoch_on_real_mnist_at_the_tutorials_settings(real_mnist,
                                                           tmp_path):
    """Epoch 1 with every default: 5,000 minibatches of 10, 500 hidden."""
    result = test_cA(training_epochs=1, dataset=real_mnist,
                     output_folder=str(tmp_path))
    assert result.costs.shape == (1, 5000, 2)
    # the first minibatch's costs, before any update, from numpy
    (train_x, _), _, _ = mnist_data.read_mnist(real_mnist)
    fresh = cA(numpy_rng=numpy.random.RandomState(123), n_visible=784,
               n_hidden=500)
    W, b, b_prime = (p.get_value() for p in fresh.params)
    expected = reference_costs(train_x[:10].astype(float), W, b, b_prime)
    numpy.testing.assert_allclose(result.costs[0, 0], expected, rtol=1e-10)
    # learning happened: the last 500 minibatches cost far less than the
    # first 10
    assert result.costs[0, -500:, 0].mean() < 0.5 * \
        result.costs[0, :10, 0].mean()
    with PIL.Image.open(result.filters_path) as image:
        assert image.size == (289, 289)
