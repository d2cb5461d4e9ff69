"""Checks of the values that the training functions take.

The training functions (cA.test_cA, ScA.test_ScA, analysis.run_analysis,
logistic_sgd.sgd_optimization_mnist) check every argument before they load
data or compile anything, with the functions below; a value they cannot
use raises ``ConfigError``, whose one-line message names the argument, the
value and what it must be. The command lines (cli.py) turn it into an
``error:`` line and exit code 2.
"""
import numbers

import numpy

from .kernel import GRADIENTS

# numpy.random.RandomState takes seeds in [0, 2**32)
SEED_LIMIT = 2 ** 32
# the radii of analysis.py's contraction curves
MAX_RADII = 1000
# The deepest ScA the stacks compile: T.grad walks the fine-tuning graph
# by recursion, and past a depth it exhausts Python's recursion limit
# (RecursionError, after every layer was pre-trained). Measured with
# 3-unit layers (fine-tuning, test and the top layer's pre-training
# compiled and run): Theano-PyMC 1.1.2 on Python 3.11 compiles 100 layers
# and fails at 110; PyTensor 3.3.7 on Python 3.13 compiles 150. One limit
# for both, with a margin.
MAX_HIDDEN_LAYERS = 80


class ConfigError(ValueError):
    """A setting the training cannot use (one-line message)."""


class DivergenceError(Exception):
    """The cost became NaN or infinite: SGD diverged."""


def is_integer(value):
    """An int or numpy integer, but not a bool."""
    return isinstance(value, (int, numpy.integer)) and \
        not isinstance(value, bool)


def is_real(value):
    """A real number (int, float or numpy scalar), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name, value):
    if not is_integer(value) or value < 1:
        raise ConfigError('%s must be a positive integer, got %r'
                          % (name, value))


def nonnegative_int(name, value):
    if not is_integer(value) or value < 0:
        raise ConfigError('%s must be an integer >= 0, got %r'
                          % (name, value))


def positive_number(name, value):
    if not (is_real(value) and numpy.isfinite(value) and value > 0):
        raise ConfigError('%s must be a positive finite number, got %r'
                          % (name, value))


def nonnegative_number(name, value):
    if not (is_real(value) and numpy.isfinite(value) and value >= 0):
        raise ConfigError('%s must be a finite number >= 0, got %r'
                          % (name, value))


def number_in(name, value, low, high, low_open=False, high_open=False):
    """low <= value <= high, or < where the bound is open."""
    ok = is_real(value) and numpy.isfinite(value) and \
        (value > low if low_open else value >= low) and \
        (value < high if high_open else value <= high)
    if not ok:
        raise ConfigError('%s must be in %s%g, %g%s, got %r' % (
            name, '(' if low_open else '[', low, high,
            ')' if high_open else ']', value))


def random_seed(name, value):
    if not is_integer(value) or not 0 <= value < SEED_LIMIT:
        raise ConfigError('%s must be an integer from 0 to %d, got %r'
                          % (name, SEED_LIMIT - 1, value))


def one_of(name, value, choices):
    if value not in choices:
        raise ConfigError('%s must be one of %s, got %r'
                          % (name, ', '.join(map(str, choices)), value))


def autoencoder_training(learning_rate, training_epochs, batch_size,
                         contraction_level, n_hidden, seed):
    """The settings of cA.test_cA's training, which analysis.py and ScA.py
    pass on to it or train alike."""
    positive_number('learning_rate', learning_rate)
    positive_int('training_epochs', training_epochs)
    positive_int('batch_size', batch_size)
    nonnegative_number('contraction_level', contraction_level)
    positive_int('n_hidden', n_hidden)
    random_seed('seed', seed)


def cA_training(learning_rate, training_epochs, batch_size,
                contraction_level, n_hidden, seed, gradient):
    """The settings of cA.test_cA."""
    autoencoder_training(learning_rate, training_epochs, batch_size,
                         contraction_level, n_hidden, seed)
    one_of('gradient', gradient, GRADIENTS)


def representable(name, value, floatX):
    """ConfigError when a nonzero setting becomes 0 or infinite in the
    float type the model computes in (float32 holds 1.4e-45 to 3.4e38): a
    learning rate that rounds to 0 would train nothing, silently."""
    cast = numpy.asarray(value, dtype=floatX)
    if value != 0 and (cast == 0 or not numpy.isfinite(cast)):
        raise ConfigError('%s %r is %s in %s, the floatX this run computes '
                          'in: choose a value within %g to %g, or use float64'
                          % (name, value, 'infinite' if cast != 0 else '0',
                             floatX, numpy.finfo(floatX).tiny,
                             numpy.finfo(floatX).max))


def batch_fits(batch_size, n_examples, name='batch_size'):
    if batch_size > n_examples:
        raise ConfigError('%s %d is larger than the training set '
                          '(%d examples)' % (name, batch_size, n_examples))


def finite_cost(cost, where, flag, value, note=''):
    """DivergenceError when cost (a number or an array) is NaN or infinite:
    SGD diverged. where: 'the cost ... at epoch 3, minibatch 4'; flag and
    value: the step size to make smaller; note: what was kept."""
    if not numpy.all(numpy.isfinite(cost)):
        raise DivergenceError('%s became %s: training diverged; try a smaller '
                              '%s (it is %g)%s' % (
                                  where, numpy.asarray(cost).tolist(), flag,
                                  value, note))


def stacked_training(finetune_lr, pretraining_epochs, pretrain_lr,
                     contraction_level, training_epochs, pretrain_batch_size,
                     finetune_batch_size, hidden_layers_sizes,
                     finetune_lr_decay, seed, shuffle_seed, gradient):
    """The settings of ScA.test_ScA (and of every row of
    paper/table1.compare)."""
    try:
        sizes = list(hidden_layers_sizes)
    except TypeError:
        sizes = None
    if not sizes or not all(is_integer(n) and n >= 1 for n in sizes):
        raise ConfigError('hidden_layers_sizes must be a non-empty list of '
                          'positive integers, got %r'
                          % (hidden_layers_sizes,))
    if len(sizes) > MAX_HIDDEN_LAYERS:
        raise ConfigError('hidden_layers_sizes has %d layers: the stack '
                          'compiles at most %d (deeper, its gradient runs '
                          'out of Python\'s recursion limit): give fewer'
                          % (len(sizes), MAX_HIDDEN_LAYERS))
    nonnegative_int('pretraining_epochs', pretraining_epochs)
    positive_number('pretrain_lr', pretrain_lr)
    nonnegative_number('contraction_level', contraction_level)
    positive_int('pretrain_batch_size', pretrain_batch_size)
    positive_int('training_epochs', training_epochs)
    positive_number('finetune_lr', finetune_lr)
    number_in('finetune_lr_decay', finetune_lr_decay, 0, 1, low_open=True)
    positive_int('finetune_batch_size', finetune_batch_size)
    random_seed('seed', seed)
    random_seed('shuffle_seed', shuffle_seed)
    one_of('gradient', gradient, GRADIENTS)


def stacked_data(n_train, pretrain_batch_size, finetune_batch_size, floatX,
                 **numbers):
    """The settings of ScA.test_ScA that depend on the data: both
    minibatches fit in the n_train examples, and every step size and
    lambda in ``numbers`` is representable in floatX."""
    batch_fits(pretrain_batch_size, n_train, 'pretrain_batch_size')
    batch_fits(finetune_batch_size, n_train, 'finetune_batch_size')
    for name, value in numbers.items():
        representable(name, value, floatX)


def analysis(training_epochs, n_examples, contraction_level, n_hidden,
             learning_rate, batch_size, seed, n_radii, min_radius_factor,
             max_radius_factor, saturation_threshold, classifier_epochs,
             classifier_learning_rate, classifier_batch_size):
    """The settings of analysis.run_analysis, before anything is loaded
    (test_cA's as test_cA checks them)."""
    # at 0 the "CAE" would be a second plain auto-encoder
    positive_number('contraction_level', contraction_level)
    autoencoder_training(learning_rate, training_epochs, batch_size,
                         contraction_level, n_hidden, seed)
    positive_int('n_examples', n_examples)
    if n_examples < 2:
        raise ConfigError('n_examples must be at least 2 (the median '
                          'distance between two test digits needs two), '
                          'got %r' % (n_examples,))
    positive_int('n_radii', n_radii)
    if n_radii < 2:
        raise ConfigError('n_radii must be at least 2 (the limit r -> 0 '
                          'and one finite radius), got %r' % (n_radii,))
    if n_radii > MAX_RADII:
        raise ConfigError('n_radii must be at most %d (a curve of the figure '
                          'cannot show more points, and each costs two '
                          'passes over the digits), got %r'
                          % (MAX_RADII, n_radii))
    positive_number('min_radius_factor', min_radius_factor)
    positive_number('max_radius_factor', max_radius_factor)
    if min_radius_factor >= 1:
        raise ConfigError('min_radius_factor must be smaller than 1 (the '
                          'first radius shows the limit r -> 0, below the '
                          'nearest-neighbour distance), got %r'
                          % min_radius_factor)
    check_saturation_threshold(saturation_threshold)
    positive_int('classifier_epochs', classifier_epochs)
    positive_number('classifier_learning_rate', classifier_learning_rate)
    positive_int('classifier_batch_size', classifier_batch_size)


def check_saturation_threshold(threshold):
    # at 0.5 or more every unit would count as saturated
    number_in('saturation_threshold', threshold, 0, 0.5, low_open=True,
              high_open=True)
