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

# numpy.random.RandomState takes seeds in [0, 2**32)
SEED_LIMIT = 2 ** 32


class ConfigError(ValueError):
    """A setting the training cannot use (one-line message)."""


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


def batch_fits(batch_size, n_examples, name='batch_size'):
    if batch_size > n_examples:
        raise ConfigError('%s %d is larger than the training set '
                          '(%d examples)' % (name, batch_size, n_examples))
