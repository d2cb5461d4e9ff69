"""Contractive auto-encoders (CAE) with Theano: a Python 3 port of the tutorial.

A contractive auto-encoder (Rifai et al., ICML 2011) learns a code h(x)
from which its input x can be reconstructed, z(x), while keeping the code
insensitive to small changes of the input. Over a training set D it
minimises

    J_CAE = sum_{x in D} ( L_rec(x, z(x)) + lambda * ||J_h(x)||_F^2 )

where L_rec is the cross-entropy of the reconstruction, J_h(x) = dh/dx the
Jacobian of the encoder at x and ||.||_F^2 the sum of the squares of its
elements. The penalty makes the mapping contract in every direction the
reconstruction does not need: the few directions it keeps are the local
directions of variation of the data. The class ``cA`` below holds the
equations, numbered; ``test_cA`` is the tutorial's training loop.

Run it (on the real MNIST, fetched into data/ when missing):

    make run                          # sets up .venv/ and the data, trains
    .venv/bin/python cA.py --help     # the hyperparameters and defaults
    .venv/bin/python cA.py --epochs 5 --contraction-level 0.3
    python -m cA                      # where `pip install <checkout>` put it

Each epoch prints the epoch's mean reconstruction cost (eq. 4) and its
jacobian_norm, the mean over minibatches of sqrt(L_jacob), L_jacob being
the minibatch's mean ||J(x)||_F^2 (eq. 5), as the original printed; the
first 100 filters go to cA_plots/cae_filters.png. Use the class from
another script, in any folder, after `import theano` or before it (make
installs the checkout into .venv/); in a stacked model it shares W and b
with an MLP layer (ScA.py):

    from cA import cA
    ca = cA(numpy_rng, input=layer_output, n_visible=500, n_hidden=500,
            W=hidden_layer.W, bhid=hidden_layer.b)
    cost, updates = ca.get_cost_updates(contraction_level=0.1,
                                        learning_rate=0.01)

References:
    Rifai, Vincent, Muller, Glorot and Bengio (2011), ICML, "Contractive
    Auto-Encoders: Explicit Invariance During Feature Extraction".
    Rifai et al. (2011), ECML PKDD, "Higher Order Contractive Auto-Encoder".
    The Theano deep learning tutorials (dA.py, SdA.py, logistic_sgd.py).

What changed from the original, and why: docs/changes.md.
"""
import sys
import time

if __name__ == '__main__':
    from machinery import start_script
    start_script(__file__)

# the stack first: without one, this says what to do
from machinery.backend import NAME, theano, T, sigmoid
import numpy
import PIL.Image

from machinery import commands
from machinery import mnist_data
from machinery import outputs
from machinery import training
from machinery.kernel import steps
from logistic_sgd import load_data
from utils import tile_raster_images

class cA(object):
    """Contractive auto-encoder with tied weights.

    For a minibatch of inputs x (one example per row, values in [0, 1]),
    with sigmoid(a) = 1 / (1 + exp(-a)) and lambda the contraction level:

        h = sigmoid(x W + b)                                           (1)
        J_ij(x) = dh_j / dx_i = h_j (1 - h_j) W_ij                     (2)
        z = sigmoid(h W' + b'),   W' = W^T (tied weights)              (3)
        L_rec(x, z) = - sum_k [x_k log z_k + (1 - x_k) log(1 - z_k)]   (4)
        ||J(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2            (5)
        cost = mean_batch L_rec + lambda * mean_batch ||J(x)||_F^2     (6)

    Eq. (2): h_j depends on x only through a_j = sum_i x_i W_ij + b_j, and
    sigmoid'(a) = sigmoid(a) (1 - sigmoid(a)), so dh_j/dx_i = h_j (1 - h_j)
    W_ij.
    Eq. (5) follows by squaring (2) and summing over i and j: the factor
    (h_j (1 - h_j))^2 does not depend on i, so it comes out of the sum over
    i, leaving the squared norm of column j of W. Computed this way the
    penalty costs one (batch, n_hidden) x (n_hidden,) product instead of a
    (batch, n_visible, n_hidden) tensor.

    Eqs. (2) and (5) hold for the sigmoid only (its slope is h (1 - h)):
    another activation in get_hidden_values needs its own slope in
    get_jacobian and get_jacobian_norm, the three changed together.
    """

    def __init__(self, numpy_rng, input=None, n_visible=784, n_hidden=100,
                 n_batchsize=1, W=None, bhid=None, bvis=None):
        """
        numpy_rng: numpy.random.RandomState that draws the initial W.
        input: symbolic (batch, n_visible) input; another layer's output in
            a stacked model. None makes a new matrix variable.
        n_visible, n_hidden: sizes of the input and hidden layers.
        n_batchsize: the minibatch size, as in the original (which divided
            the penalty by it); build_training passes it. The methods here
            average over the rows they get, so they need it nowhere.
        W, bhid, bvis: shared variables to use (not copied) for the weights
            (n_visible, n_hidden), hidden bias and visible bias; None makes
            new ones.
        """
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        self.n_batchsize = n_batchsize
        floatX = theano.config.floatX
        if W is None:
            # Glorot and Bengio's range for sigmoid units, as
            # mlp.HiddenLayer draws its weights
            bound = 4 * numpy.sqrt(6. / (n_visible + n_hidden))
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
        """h, eq. (1): (batch, n_hidden). Its slope h (1 - h) is in eqs.
        (2) and (5): another activation here changes get_jacobian and
        get_jacobian_norm too."""
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
        return T.sum(self.W ** 2, axis=0)

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


def as_floatX(*values):
    """Python numbers as floatX constants (so that float32 graphs stay
    float32); symbolic values unchanged."""
    return [v if isinstance(v, T.Variable)
            else T.constant(v, dtype=theano.config.floatX) for v in values]


def build_training(train_set_x, batch_size, n_hidden, seed,
                   contraction_level, learning_rate, gradient='auto'):
    """A new cA and its compiled SGD step, as test_cA trains them.

    Returns (ca, train_ca, step): train_ca(i) trains on minibatch i of the
    shared train_set_x and returns [mean L_rec, L_jacob] computed before
    the step; str(step) says which step was compiled and why. gradient:
    'auto' trains get_cost_updates's graph, which the kernel replaces only
    where it is the stock graph (then it computes the same step); 'T.grad'
    always trains that graph as written; 'fused' the hand-derived gradient
    and 'kernel' the kernel (machinery/kernel/steps.py).
    """
    index = T.lscalar('index')
    x = T.matrix('x')
    ca = cA(numpy_rng=numpy.random.RandomState(seed), input=x,
            n_visible=train_set_x.get_value(borrow=True).shape[1],
            n_hidden=n_hidden, n_batchsize=batch_size)
    cost, updates = ca.get_cost_updates(contraction_level=contraction_level,
                                        learning_rate=learning_rate)
    # the same step, faster, where it provably is the same
    updates, step = steps.faster_equivalent(
        ca, cost, updates, contraction_level, learning_rate, gradient)
    train_ca = theano.function(
        [index], [T.mean(ca.L_rec), ca.L_jacob], updates=updates,
        givens={x: train_set_x[index * batch_size:(index + 1) * batch_size]})
    return ca, train_ca, step


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


def output_names(contraction_level):
    """(checkpoint, filters) file names of a run at this lambda: a plain
    auto-encoder's (lambda 0) say so."""
    kind = 'cae' if contraction_level > 0 else 'ae'
    return kind + '_checkpoint.npz', kind + '_filters.png'


def save_filters(W, path, tile_shape=(10, 10)):
    """Write the first filters (columns of W, 28x28 each) as a PNG; returns
    the path."""
    image = PIL.Image.fromarray(tile_raster_images(
        X=W.get_value(borrow=True).T, img_shape=(28, 28),
        tile_shape=tile_shape, tile_spacing=(1, 1)))
    with outputs.atomic_write(path) as f:
        image.save(f, format='PNG')
    return path


def test_cA(learning_rate=0.01, training_epochs=20,
            dataset=mnist_data.DEFAULT_PATH, batch_size=10,
            output_folder='cA_plots', contraction_level=0.1, n_hidden=500,
            seed=123, gradient='auto', resume=False, restart=False,
            log=None):
    """Train a cA on MNIST with plain minibatch SGD; write its filters.

    The hyperparameters are the tutorial's: 500 hidden units, minibatches
    of 10 in the data's order, learning rate 0.01, lambda = 0.1, 20 epochs,
    W drawn from numpy.random.RandomState(seed). ``gradient`` picks the
    step (see build_training). One line per epoch goes to ``log``
    (default: sys.stdout). Writes output_folder/cae_filters.png
    (ae_filters.png at contraction_level 0, a plain auto-encoder) and
    returns a TrainingResult.

    The run holds output_folder for itself and writes a checkpoint there
    after every epoch; ``resume=True`` goes on from it and ends with the
    parameters an uninterrupted run would have had; an unfinished
    checkpoint is replaced only with ``restart=True``. SIGINT, SIGTERM or
    SIGHUP stops training within a minibatch, keeps the checkpoint of the
    epochs done, writes the filters and raises TrainingInterrupted; a NaN
    or infinite cost raises DivergenceError (machinery/training.py).
    """
    log = sys.stdout if log is None else log
    settings = dict(learning_rate=learning_rate,
                    training_epochs=training_epochs, batch_size=batch_size,
                    contraction_level=contraction_level, n_hidden=n_hidden,
                    seed=seed, gradient=gradient, resume=resume,
                    restart=restart)
    checkpoint_name, filters_name = output_names(contraction_level)
    with training.SafeRun(output_folder, checkpoint_name, filters_name,
                          settings, log) as run:
        train_set_x = load_data(dataset, log=log)[0][0]
        n_train = train_set_x.get_value(borrow=True).shape[0]
        n_train_batches = -(-n_train // batch_size)  # the last may be short
        costs = run.start(train_set_x, n_train_batches)

        print('compiling the training step with %s...' % NAME, file=log,
              flush=True)
        compile_start = time.perf_counter()
        ca, train_ca, step = build_training(
            train_set_x, batch_size, n_hidden, seed, contraction_level,
            learning_rate, gradient)
        print('compiled in %.1f s: %s' % (time.perf_counter() -
                                          compile_start, step),
              file=log, flush=True)
        # on resume, every parameter in ca.params takes the checkpoint's value
        first_epoch = run.restore(ca.params, step)
        # Ctrl-C stops within a minibatch; a diverging cost stops at once
        train_ca = run.guard(train_ca, on_stop=lambda: 'filters ' +
                             save_filters(ca.W, run.filters_path))

        for epoch in range(first_epoch, training_epochs):
            epoch_start = time.perf_counter()
            for batch_index in range(n_train_batches):
                costs[epoch, batch_index] = train_ca(batch_index)
            print('epoch %d/%d  reconstruction %.2f  jacobian_norm %.2f'
                  '  %.1f s' % (epoch + 1, training_epochs,
                                costs[epoch, :, 0].mean(),
                                numpy.sqrt(costs[epoch, :, 1]).mean(),
                                time.perf_counter() - epoch_start),
                  file=log, flush=True)
            run.checkpoint(epoch + 1)
        training_time = run.training_time

        save_filters(ca.W, run.filters_path)
    print('trained %s in %.2f min (%.1f s); filters written to %s'
          % (run.epochs_trained, training_time / 60, training_time,
             run.filters_path), file=log, flush=True)
    return TrainingResult(ca, costs, training_time, run.filters_path)


test_cA.__test__ = False  # pytest would collect test_* from `from cA import`


if __name__ == '__main__':
    sys.exit(commands.cA(test_cA))
