"""Contractive auto-encoders (CAE) with Theano: a Python 3 port of the tutorial.

A contractive auto-encoder (Rifai, Vincent, Muller, Glorot and Bengio,
"Contractive Auto-Encoders: Explicit Invariance During Feature Extraction",
ICML 2011) is an auto-encoder trained to reconstruct its input while keeping
its hidden representation insensitive to small changes of the input. For an
input x in [0, 1]^d, hidden code h(x) and reconstruction z(x), it minimises
over a training set D

    J_CAE = sum_{x in D} ( L_rec(x, z(x)) + lambda * ||J_h(x)||_F^2 )

where L_rec is the cross-entropy of the reconstruction, J_h(x) = dh/dx is
the Jacobian of the encoder at x, and ||.||_F^2 the sum of the squares of
its elements. The penalty makes the mapping contract in every direction the
reconstruction term does not need: the few directions it keeps are the
local directions of variation of the data. The model and its equations are
in the docstring of the class ``cA`` below.

Run it (on the real MNIST, which is fetched into data/ when missing):

    make run                  # sets up .venv/ and the data, then trains
    python cA.py --help       # the hyperparameters and their defaults
    python cA.py --epochs 5 --contraction-level 0.3

Each epoch prints its mean reconstruction cost and mean Jacobian norm; the
first 100 filters are written to cA_plots/cae_filters.png. Use the model
from another script (it can share W and b with an MLP layer):

    from cA import cA
    ca = cA(numpy_rng, input=layer_output, n_visible=500, n_hidden=500,
            W=hidden_layer.W, bhid=hidden_layer.b)
    cost, updates = ca.get_cost_updates(contraction_level=0.1,
                                        learning_rate=0.01)

References:
    Rifai et al. (2011), ICML, "Contractive Auto-Encoders: Explicit
    Invariance During Feature Extraction".
    Rifai et al. (2011), ECML PKDD, "Higher Order Contractive Auto-Encoder".
    The Theano deep learning tutorials (dA.py, SdA.py, logistic_sgd.py).

Changes from the original:
    - Python 3 and Theano-PyMC 1.1.2; the BLAS is configured for you
      (theano_setup.py), and your own THEANO_FLAGS or .theanorc still wins.
    - The penalty is computed in closed form (eq. 5) instead of from the
      (batch, n_visible, n_hidden) stack of Jacobians: the same number,
      no memory growth with the batch, and any minibatch size works.
    - True division in the penalty (a later Python 3 copy used ``//``,
      whose gradient is zero: it trained a plain auto-encoder).
    - The per-epoch log shows the epoch's means; the original printed the
      first two minibatches (``c_array[0]``, ``c_array[1]``).
    - ``test_cA`` no longer calls ``os.chdir``; it returns the trained model
      and every minibatch's costs; the seed and n_hidden are keywords.
    - The last, shorter minibatch of an epoch is trained on, not dropped
      (with the defaults, 50,000 / 10, there is none).
    - The dataset is loaded with a restricted unpickler (mnist_data.py), so a
      malicious pickle cannot run code; ``is None`` checks instead of
      ``not W`` (which asks a symbolic variable for its truth value).
"""
import argparse
import inspect
import os
import sys
import tempfile
import time

# the stack first: without one, this says what to do
from backend import theano, T, sigmoid, softplus
import numpy

import cA_kernel
import checkpoints
import mnist_data
from logistic_sgd import load_data
from utils import (atomic_write, remove_stale_temporaries,
                   tile_raster_images)

import PIL.Image

HERE = os.path.dirname(os.path.abspath(__file__))


class cA(object):
    """Contractive auto-encoder with tied weights.

    For a minibatch of inputs x (one example per row, values in [0, 1]),
    with s the logistic sigmoid and lambda the contraction level:

        h = s(x W + b)                                                 (1)
        J_ij(x) = dh_j / dx_i = h_j (1 - h_j) W_ij                     (2)
        z = s(h W' + b'),   W' = W^T (tied weights)                    (3)
        L_rec(x, z) = - sum_k [x_k log z_k + (1 - x_k) log(1 - z_k)]   (4)
        ||J(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2            (5)
        cost = mean_batch L_rec + lambda * mean_batch ||J(x)||_F^2     (6)

    Eq. (2): h_j depends on x only through a_j = sum_i x_i W_ij + b_j, and
    s'(a) = s(a) (1 - s(a)), so dh_j/dx_i = h_j (1 - h_j) W_ij.
    Eq. (5) follows by squaring (2) and summing over i and j: the factor
    (h_j (1 - h_j))^2 does not depend on i, so it comes out of the sum over
    i, leaving the squared norm of column j of W. Computed this way the
    penalty costs one (batch, n_hidden) x (n_hidden,) product instead of a
    (batch, n_visible, n_hidden) tensor.
    """

    def __init__(self, numpy_rng, input=None, n_visible=784, n_hidden=100,
                 n_batchsize=1, W=None, bhid=None, bvis=None):
        """
        numpy_rng: numpy.random.RandomState that draws the initial W.
        input: symbolic (batch, n_visible) input; another layer's output in
            a stacked model. None makes a new matrix variable.
        n_visible, n_hidden: sizes of the input and hidden layers.
        n_batchsize: the minibatch size the original's get_jacobian needed;
            kept for compatibility, no computation here depends on it.
        W, bhid, bvis: shared variables to use (not copied) for the weights
            (n_visible, n_hidden), hidden bias and visible bias; None makes
            new ones.
        """
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        self.n_batchsize = n_batchsize
        floatX = theano.config.floatX
        if W is None:
            # uniform in +-4 sqrt(6 / (fan_in + fan_out)), the range suited
            # to sigmoid units (Glorot and Bengio, 2010)
            bound = 4 * numpy.sqrt(6. / (n_hidden + n_visible))
            initial_W = numpy.asarray(
                numpy_rng.uniform(low=-bound, high=bound,
                                  size=(n_visible, n_hidden)), dtype=floatX)
            W = theano.shared(value=initial_W, name='W', borrow=True)
        if bvis is None:
            bvis = theano.shared(value=numpy.zeros(n_visible, dtype=floatX),
                                 name='b_prime', borrow=True)
        if bhid is None:
            bhid = theano.shared(value=numpy.zeros(n_hidden, dtype=floatX),
                                 name='b', borrow=True)
        self.W = W
        self.b = bhid
        self.b_prime = bvis
        self.W_prime = self.W.T
        self.x = T.matrix(name='input') if input is None else input
        self.params = [self.W, self.b, self.b_prime]

    def get_hidden_values(self, input):
        """h, eq. (1): (batch, n_hidden)."""
        return sigmoid(T.dot(input, self.W) + self.b)

    def get_jacobian(self, hidden, W):
        """The explicit Jacobians of eq. (2): (batch, n_visible, n_hidden).

        Element [k, i, j] is dh_j/dx_i at example k. This is the teaching
        form; training uses the closed form of eq. (5) instead.
        """
        # (batch, 1, n_hidden) * (1, n_visible, n_hidden): each example's
        # h(1-h) row is broadcast down the n_visible rows of W, so example
        # k's slice is W with column j scaled by h_kj (1 - h_kj).
        return ((hidden * (1 - hidden)).dimshuffle(0, 'x', 1) *
                W.dimshuffle('x', 0, 1))

    def get_squared_column_norms(self):
        """c_j = sum_i W_ij^2, the second factor of eq. (5): (n_hidden,)."""
        # ones (n_visible,) . W**2 (n_visible, n_hidden): a BLAS gemv, which
        # reads the matrix about 15 % of a training step faster than Sum
        return T.dot(T.ones_like(self.W[:, 0]), self.W ** 2)

    def get_jacobian_norm(self, hidden):
        """||J(x)||_F^2 of each example, eq. (5): (batch,)."""
        # (batch, n_hidden) . (n_hidden,) -> (batch,)
        return T.dot((hidden * (1 - hidden)) ** 2,
                     self.get_squared_column_norms())

    def get_reconstructed_input(self, hidden):
        """z, eq. (3): (batch, n_visible)."""
        return sigmoid(T.dot(hidden, self.W_prime) + self.b_prime)

    def get_reconstruction_cost(self, x, z):
        """L_rec of each example, eq. (4): (batch,)."""
        return -T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), axis=1)

    def get_cost_updates(self, contraction_level, learning_rate):
        """The cost of eq. (6) and one plain SGD step on W, b, b_prime.

        Sets self.L_rec (batch,) and self.L_jacob (a scalar: ||J||_F^2
        averaged over the minibatch). Returns (cost, updates).
        """
        contraction_level, learning_rate = as_floatX(contraction_level,
                                                     learning_rate)
        h = self.get_hidden_values(self.x)
        z = self.get_reconstructed_input(h)
        self.L_rec = self.get_reconstruction_cost(self.x, z)
        self.L_jacob = T.mean(self.get_jacobian_norm(h))
        cost = T.mean(self.L_rec) + contraction_level * self.L_jacob  # (6)
        gparams = T.grad(cost, self.params)
        updates = [(param, param - learning_rate * gparam)
                   for param, gparam in zip(self.params, gparams)]
        return cost, updates

    def get_fused_cost_updates(self, contraction_level, learning_rate):
        """The cost and SGD step of get_cost_updates, faster: the gradient
        is derived by hand, so that W moves in one matrix product.

        With B rows in the minibatch, a' = h W' + b' (so z = s(a')),
        s = h (1 - h) and c_j = sum_i W_ij^2, the chain rule through
        eqs. (1)-(6) gives

          dcost/da'  = (z - x) / B =: d_z                              (7)
          dcost/da   = (d_z W + (2 lambda / B) c s (1 - 2h)) s =: d_h   (8)
          dcost/dW   = x^T d_h + d_z^T h + 2 lambda W diag(m),
                       m_j = mean over the batch of s_j^2              (9)
          dcost/db   = sum_batch d_h,   dcost/db' = sum_batch d_z      (10)

        (7) is the familiar sigmoid-with-cross-entropy gradient; in (8) the
        first term comes through the reconstruction, the second through the
        penalty's factor (h (1 - h))^2; in (9) W appears in h, in z (as W')
        and in c. The SGD step on W is then

          W <- W (1 - 2 eta lambda m) - eta [x; d_z]^T [d_h; h]

        with the two outer products of (9) stacked into one matrix product
        over 2B rows, which Theano runs as a single in-place GEMM on W.
        L_rec is computed as sum_k softplus(a'_k) - x_k a'_k, equal to eq.
        (4) since log z = -softplus(-a') and softplus(-a') = softplus(a') -
        a', with one softplus per pixel instead of two. tests/test_cA.py
        checks the whole step against get_cost_updates (T.grad).

        Sets self.L_rec and self.L_jacob as get_cost_updates does.
        """
        lam, eta = as_floatX(contraction_level, learning_rate)
        x, W = self.x, self.W
        n = T.cast(x.shape[0], theano.config.floatX)
        h = self.get_hidden_values(x)
        a_prime = T.dot(h, self.W_prime) + self.b_prime
        z = sigmoid(a_prime)
        s = h * (1 - h)
        c = self.get_squared_column_norms()
        self.L_rec = T.sum(softplus(a_prime) - x * a_prime, axis=1)
        self.L_jacob = T.mean(T.dot(s ** 2, c))  # eq. (5), averaged
        cost = T.mean(self.L_rec) + lam * self.L_jacob
        d_z = (z - x) / n  # (7)
        d_h = (T.dot(d_z, W) + (2 * lam / n) * c * s * (1 - 2 * h)) * s  # (8)
        m = T.mean(s ** 2, axis=0)
        # (n_visible, 2B) . (2B, n_hidden): both outer products of eq. (9)
        outer = T.dot(T.concatenate([x, d_z]).T, T.concatenate([d_h, h]))
        updates = [(W, W * (1 - 2 * eta * lam * m) - eta * outer),
                   (self.b, self.b - eta * T.sum(d_h, axis=0)),  # (10)
                   (self.b_prime, self.b_prime - eta * T.sum(d_z, axis=0))]
        return cost, updates


def as_floatX(*values):
    """Python numbers as floatX constants (so that float32 graphs stay
    float32); symbolic values unchanged."""
    return [v if isinstance(v, T.Variable)
            else T.constant(v, dtype=theano.config.floatX) for v in values]


class TrainingResult(object):
    """What test_cA returns.

    ca: the trained cA.
    costs: (training_epochs, n_train_batches, 2) float array; per minibatch
        its mean reconstruction cost and its L_jacob (||J||_F^2 averaged
        over the minibatch).
    training_time: seconds spent in the training loop.
    filters_path: where the filters image was written.
    """

    def __init__(self, ca, costs, training_time, filters_path):
        self.ca = ca
        self.costs = costs
        self.training_time = training_time
        self.filters_path = filters_path


class ConfigError(ValueError):
    """A hyperparameter or output folder the training cannot use."""


def is_integer(value):
    """An int or numpy integer, but not a bool."""
    return isinstance(value, (int, numpy.integer)) and \
        not isinstance(value, bool)


def check_hyperparameters(learning_rate, training_epochs, batch_size,
                          contraction_level, n_hidden):
    """Raise ConfigError for values training cannot use."""
    for name, value in [('training_epochs', training_epochs),
                        ('batch_size', batch_size), ('n_hidden', n_hidden)]:
        if not is_integer(value) or value < 1:
            raise ConfigError('%s must be a positive integer, got %r'
                              % (name, value))
    if not (numpy.isfinite(learning_rate) and learning_rate > 0):
        raise ConfigError('learning_rate must be a positive finite number, '
                          'got %r' % (learning_rate,))
    if not (numpy.isfinite(contraction_level) and contraction_level >= 0):
        raise ConfigError('contraction_level must be a finite number >= 0, '
                          'got %r' % (contraction_level,))


def prepare_output_folder(output_folder):
    """Create output_folder if needed; ConfigError if it cannot be written
    (checked by writing a file there, which also holds for root)."""
    fix = 'choose another with --output-folder'
    try:
        os.makedirs(output_folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_folder):
            pass
    except OSError as e:
        raise ConfigError('cannot write to the output folder %s (%s): %s'
                          % (output_folder, e.strerror or e, fix))


def save_filters(W, path, tile_shape=(10, 10)):
    """Write the first filters (columns of W, 28x28 each) as a PNG."""
    image = PIL.Image.fromarray(tile_raster_images(
        X=W.T, img_shape=(28, 28), tile_shape=tile_shape,
        tile_spacing=(1, 1)))
    with atomic_write(path) as f:
        image.save(f, format='PNG')


GRADIENTS = ('kernel', 'fused', 'T.grad')


def build_training(train_set_x, batch_size, n_hidden, seed,
                   contraction_level, learning_rate, gradient='kernel'):
    """A new cA and its compiled SGD step, as test_cA trains them.

    gradient: how the step is computed, the same math three ways:
    'kernel' (the default, the fastest: the whole step as one compiled Op,
    cA_kernel.py), 'fused' (get_fused_cost_updates, the hand-derived
    gradient as a Theano graph) or 'T.grad' (get_cost_updates). Returns
    (ca, train_ca): train_ca(i) trains on minibatch i of the shared
    train_set_x and returns [mean L_rec, L_jacob] computed before the step.
    """
    index = T.lscalar('index')
    x = T.matrix('x')
    ca = cA(numpy_rng=numpy.random.RandomState(seed), input=x,
            n_visible=train_set_x.get_value(borrow=True).shape[1],
            n_hidden=n_hidden, n_batchsize=batch_size)
    if gradient == 'kernel':
        cost, updates = cA_kernel.get_cost_updates(
            ca, contraction_level=contraction_level,
            learning_rate=learning_rate)
    else:
        get_updates = (ca.get_fused_cost_updates if gradient == 'fused'
                       else ca.get_cost_updates)
        cost, updates = get_updates(contraction_level=contraction_level,
                                    learning_rate=learning_rate)
    train_ca = theano.function(
        [index], [T.mean(ca.L_rec), ca.L_jacob], updates=updates,
        givens={x: train_set_x[index * batch_size:(index + 1) * batch_size]})
    return ca, train_ca


CHECKPOINT_NAME = 'cae_checkpoint.npz'
FILTERS_NAME = 'cae_filters.png'


class DivergenceError(Exception):
    """The cost became NaN or infinite: SGD diverged."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training after a minibatch; a checkpoint
    and the filters of the current model were written."""

    def __init__(self, message, signum, checkpoint_path, filters_path):
        super().__init__(message)
        self.signum = signum
        self.checkpoint_path = checkpoint_path
        self.filters_path = filters_path


def resume_command(**kwargs):
    """The command line that resumes a run made with these keywords."""
    defaults = {name: p.default for name, p
                in inspect.signature(test_cA).parameters.items()}
    flags = {'training_epochs': '--epochs'}
    words = ['python', 'cA.py', '--resume']
    for name, value in kwargs.items():
        if name in defaults and value != defaults[name]:
            words += [flags.get(name, '--' + name.replace('_', '-')),
                      str(value)]
    return ' '.join(words)


def test_cA(learning_rate=0.01, training_epochs=20,
            dataset=mnist_data.DEFAULT_PATH, batch_size=10,
            output_folder='cA_plots', contraction_level=0.1, n_hidden=500,
            seed=123, gradient='kernel', resume=False, log=None):
    """Train a cA on MNIST with plain minibatch SGD; write its filters.

    The hyperparameters are the tutorial's: 500 hidden units, minibatches
    of 10 in the data's order, learning rate 0.01, lambda = 0.1, 20 epochs,
    W drawn from numpy.random.RandomState(seed). ``gradient`` picks how the
    step is computed ('kernel', the default, 'fused' or 'T.grad', see
    build_training): the same math. One line per epoch goes to
    ``log`` (default: sys.stdout). Writes output_folder/cae_filters.png
    and returns a TrainingResult.

    After every epoch the state is saved to output_folder/
    cae_checkpoint.npz (checkpoints.py); ``resume=True`` goes on from it,
    and ends with the parameters an uninterrupted run would have had. The
    checkpoint must come from a run with the same settings and data (a
    larger training_epochs is allowed). SIGINT or SIGTERM stops training
    after the current minibatch, saves a checkpoint and the filters, and
    raises TrainingInterrupted. A NaN or infinite cost raises
    DivergenceError at once, leaving the last checkpoint as it was.
    """
    log = sys.stdout if log is None else log
    check_hyperparameters(learning_rate, training_epochs, batch_size,
                          contraction_level, n_hidden)
    if gradient not in GRADIENTS:
        raise ConfigError('gradient must be one of %s, got %r'
                          % (', '.join(GRADIENTS), gradient))
    prepare_output_folder(output_folder)
    checkpoint_path = os.path.join(output_folder, CHECKPOINT_NAME)
    filters_path = os.path.join(output_folder, FILTERS_NAME)
    for path in (checkpoint_path, filters_path):
        remove_stale_temporaries(path)  # left by a killed run
    datasets = load_data(dataset)
    train_set_x, train_set_y = datasets[0]
    n_train = train_set_x.get_value(borrow=True).shape[0]
    if batch_size > n_train:
        raise ConfigError('batch_size %d is larger than the training set '
                          '(%d examples)' % (batch_size, n_train))
    n_train_batches = -(-n_train // batch_size)  # the last may be shorter
    settings = dict(learning_rate=float(learning_rate),
                    batch_size=int(batch_size),
                    contraction_level=float(contraction_level),
                    n_hidden=int(n_hidden), seed=int(seed), gradient=gradient,
                    floatX=theano.config.floatX,
                    data_sha256=checkpoints.data_fingerprint(
                        train_set_x.get_value(borrow=True)))

    costs = numpy.zeros((training_epochs, n_train_batches, 2))
    start_epoch, start_batch = 0, 0
    if resume:
        saved = checkpoints.load_checkpoint(checkpoint_path)
        checkpoints.check_settings_match(checkpoint_path, saved['settings'],
                                         settings)
        if saved['epoch'] > training_epochs:
            raise ConfigError('%s has %d epochs done: ask for at least as '
                              'many (--epochs %d)' % (
                                  checkpoint_path, saved['epoch'],
                                  saved['epoch']))
        rows = min(training_epochs, saved['costs'].shape[0])
        costs[:rows] = saved['costs'][:rows]
        start_epoch, start_batch = saved['epoch'], saved['batch']
        print('resuming from %s at epoch %d, minibatch %d'
              % (checkpoint_path, start_epoch + 1, start_batch + 1),
              file=log, flush=True)

    ca, train_ca = build_training(train_set_x, batch_size, n_hidden, seed,
                                  contraction_level, learning_rate, gradient)
    names = checkpoints.PARAMS  # ca.params, in order
    if resume:
        for name, param in zip(names, ca.params):
            param.set_value(saved[name])

    def save_state(epoch, batch):
        checkpoints.save_checkpoint(
            checkpoint_path,
            {name: p.get_value() for name, p in zip(names, ca.params)},
            costs, epoch, batch, settings)

    start_time = time.perf_counter()
    with checkpoints.StopOnSignal() as stop:
        for epoch in range(start_epoch, training_epochs):
            epoch_start = time.perf_counter()
            first = start_batch if epoch == start_epoch else 0
            for batch_index in range(first, n_train_batches):
                costs[epoch, batch_index] = train_ca(batch_index)
                if not numpy.all(numpy.isfinite(costs[epoch, batch_index])):
                    raise DivergenceError(
                        'the cost became %s at epoch %d, minibatch %d: '
                        'training diverged; try a smaller --learning-rate '
                        '(it is %g); the last checkpoint, if any, is intact'
                        % (costs[epoch, batch_index].tolist(), epoch + 1,
                           batch_index + 1, learning_rate))
                if stop.signum is not None:
                    save_state(epoch, batch_index + 1)
                    save_filters(ca.W.get_value(borrow=True), filters_path)
                    raise TrainingInterrupted(
                        '%s: stopped at epoch %d/%d after minibatch %d/%d; '
                        'checkpoint %s, filters %s; resume with: %s'
                        % (stop.name, epoch + 1, training_epochs,
                           batch_index + 1, n_train_batches, checkpoint_path,
                           filters_path, resume_command(
                               learning_rate=learning_rate,
                               training_epochs=training_epochs,
                               dataset=dataset, batch_size=batch_size,
                               output_folder=output_folder,
                               contraction_level=contraction_level,
                               n_hidden=n_hidden, seed=seed,
                               gradient=gradient)),
                        stop.signum, checkpoint_path, filters_path)
            save_state(epoch + 1, 0)
            print('epoch %d/%d  reconstruction %.2f  jacobian_norm %.2f  '
                  '%.1f s' % (epoch + 1, training_epochs,
                              costs[epoch, :, 0].mean(),
                              numpy.sqrt(costs[epoch, :, 1]).mean(),
                              time.perf_counter() - epoch_start),
                  file=log, flush=True)
    training_time = time.perf_counter() - start_time
    print('trained %d epochs in %.2f min (%.1f s)'
          % (training_epochs - start_epoch, training_time / 60,
             training_time), file=log, flush=True)

    save_filters(ca.W.get_value(borrow=True), filters_path)
    print('filters written to %s' % filters_path, file=log, flush=True)
    return TrainingResult(ca, costs, training_time, filters_path)


test_cA.__test__ = False  # a training function, not a pytest test


def parse_args(argv=None):
    """The command line; every default comes from test_cA's signature."""
    defaults = {name: p.default for name, p
                in inspect.signature(test_cA).parameters.items()}
    parser = argparse.ArgumentParser(
        description='Train a contractive auto-encoder on MNIST and write '
                    'its filters as a PNG.')
    parser.add_argument('--learning-rate', type=float,
                        default=defaults['learning_rate'],
                        help='SGD step size (default: %(default)s)')
    parser.add_argument('--epochs', type=int, dest='training_epochs',
                        default=defaults['training_epochs'],
                        help='passes over the training set '
                             '(default: %(default)s)')
    parser.add_argument('--dataset', default=defaults['dataset'],
                        help='the mnist.pkl.gz file; fetched when missing '
                             '(default: data/mnist.pkl.gz)')
    parser.add_argument('--batch-size', type=int,
                        default=defaults['batch_size'],
                        help='examples per minibatch (default: %(default)s)')
    parser.add_argument('--output-folder',
                        default=defaults['output_folder'],
                        help='where cae_filters.png is written '
                             '(default: %(default)s)')
    parser.add_argument('--contraction-level', type=float,
                        default=defaults['contraction_level'],
                        help='lambda, the weight of the Jacobian penalty; '
                             '0 trains a plain auto-encoder '
                             '(default: %(default)s)')
    parser.add_argument('--n-hidden', type=int,
                        default=defaults['n_hidden'],
                        help='hidden units (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=defaults['seed'],
                        help='seed of the RandomState that draws W '
                             '(default: %(default)s)')
    parser.add_argument('--gradient', choices=GRADIENTS,
                        default=defaults['gradient'],
                        help="how the SGD step is computed: 'kernel' (one "
                             "compiled Op, cA_kernel.py, the fastest), "
                             "'fused' (the hand-derived gradient as a graph) "
                             "or 'T.grad' (Theano's symbolic gradient); the "
                             "same math (default: %(default)s)")
    parser.add_argument('--resume', action='store_true',
                        help='go on from the checkpoint in the output '
                             'folder (same settings and data); a larger '
                             '--epochs trains on')
    return parser.parse_args(argv)


def run_reporting_errors(function, **kwargs):
    """Call function(**kwargs) for a command line; returns the exit code.

    A user's mistake (ConfigError, mnist_data.DatasetError,
    checkpoints.CheckpointError) or a diverged training becomes one
    ``error:`` line on stderr and exit code 2, without a traceback; an
    interrupted training prints where its checkpoint is and exits with
    128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
    """
    try:
        function(**kwargs)
    except (ConfigError, mnist_data.DatasetError, DivergenceError,
            checkpoints.CheckpointError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    except TrainingInterrupted as e:
        print(str(e), file=sys.stderr)
        return 128 + e.signum
    return 0


def main(argv=None):
    return run_reporting_errors(test_cA, **vars(parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
