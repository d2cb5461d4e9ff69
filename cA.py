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
in the docstring of the class ``cA`` below; ``test_cA`` is the tutorial's
training loop.

Run it (on the real MNIST, which is fetched into data/ when missing):

    make run                          # sets up .venv/ and the data, trains
    .venv/bin/python cA.py --help     # the hyperparameters and defaults
    .venv/bin/python cA.py --epochs 5 --contraction-level 0.3

Each epoch prints its mean reconstruction cost and mean Jacobian norm; the
first 100 filters are written to cA_plots/cae_filters.png. What trains is
the graph that ``cA.get_cost_updates`` builds: edit the class, and the run
computes your edit. Where the graph is the stock one, a compiled kernel
computes that very step faster (the compile line says which step runs).
Use the model from another script (it can share W and b with an MLP
layer, see ScA.py):

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

Changes from the original (the one list; the README points here):
    - Python 3, on Theano-PyMC 1.1.2 (Python 3.9 to 3.11) or, where that
      cannot run, on PyTensor, Theano's successor (Python 3.12 and newer):
      machinery/backend.py picks the stack, sets its BLAS and flags (your
      own THEANO_FLAGS / PYTENSOR_FLAGS or rc file still wins) and gives
      the code the few names that moved; the code is the same on both.
    - The penalty is computed in closed form (eq. 5) instead of from the
      (batch, n_visible, n_hidden) stack of Jacobians: the same number,
      no memory growth with the batch, and any minibatch size works;
      ``get_jacobian`` still builds the stack, for teaching and tests.
    - True division in the penalty (a later Python 3 copy used ``//``,
      whose gradient is zero: it trained a plain auto-encoder).
    - The per-epoch log shows the epoch's means; the original printed the
      first two minibatches (``c_array[0]``, ``c_array[1]``).
    - Training is fast without hiding the tutorial's graph: the graph that
      ``get_cost_updates`` builds is compared, node for node, with the
      stock cA's; where they are the same, one compiled Op computes that
      step (machinery/kernel, with its derivation), else the graph trains
      as written. ``--gradient T.grad`` always trains the graph as written;
      ``get_fused_cost_updates`` is the hand-derived gradient as a graph
      (``--gradient fused``); all are tested against each other.
    - ``test_cA`` no longer calls ``os.chdir``; it returns the trained model
      and every minibatch's costs; the seed and n_hidden are keywords.
    - The last, shorter minibatch of an epoch is trained on, not dropped
      (with the defaults, 50,000 / 10, there is none).
    - Long runs are safe: a checkpoint after every epoch, ``--resume``,
      Ctrl-C stops between two steps and says how to resume, a diverging
      cost stops at once, one run at a time per output folder, every file
      written atomically (machinery/training.py, behind four calls of the
      loop).
    - The dataset is loaded with a restricted unpickler (machinery/
      mnist_file.py), so a malicious pickle cannot run code; every setting
      is checked before anything is loaded or compiled, and a mistake gets
      one ``error:`` line instead of a traceback (machinery/cli.py).
    - ``is None`` checks instead of ``not W`` (which asks a symbolic
      variable for its truth value).
"""
import sys
import time

if __name__ == '__main__':
    from machinery import start_script
    start_script(__file__)

# the stack first: without one, this says what to do
from machinery.backend import NAME, theano, T, sigmoid, softplus
import numpy
import PIL.Image

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
    """

    def __init__(self, numpy_rng, input=None, n_visible=784, n_hidden=100,
                 n_batchsize=1, W=None, bhid=None, bvis=None):
        """
        numpy_rng: numpy.random.RandomState that draws the initial W.
        input: symbolic (batch, n_visible) input; another layer's output in
            a stacked model. None makes a new matrix variable.
        n_visible, n_hidden: sizes of the input and hidden layers.
        n_batchsize: the minibatch size the original's get_jacobian needed;
            kept so that the original's calls still work, but unused: every
            computation here takes minibatches of any size.
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

        With n rows in the minibatch, a' = h W' + b' (so z = sigmoid(a')),
        s = h (1 - h) (the slope of the sigmoid at a = x W + b) and
        c_j = sum_i W_ij^2, the chain rule through eqs. (1)-(6) gives

          dcost/da'  = (z - x) / n =: d_z                              (7)
          dcost/da   = (d_z W + (2 lambda / n) c s (1 - 2h)) s =: d_h   (8)
          dcost/dW   = x^T d_h + d_z^T h + 2 lambda W diag(m),
                       m_j = mean over the batch of s_j^2              (9)
          dcost/db   = sum_batch d_h,   dcost/db' = sum_batch d_z      (10)

        (7) is the familiar sigmoid-with-cross-entropy gradient; in (8) the
        first term comes through the reconstruction, the second through the
        penalty's factor (h (1 - h))^2; in (9) W appears in h, in z (as W')
        and in c. The SGD step on W is then

          W <- W (1 - 2 eta lambda m) - eta [x; d_z]^T [d_h; h]

        with the two outer products of (9) stacked into one matrix product
        over 2n rows, which Theano runs as a single in-place GEMM on W.
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
        # (n_visible, 2n) . (2n, n_hidden): both outer products of eq. (9)
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


def build_training(train_set_x, batch_size, n_hidden, seed,
                   contraction_level, learning_rate, gradient='auto'):
    """A new cA and its compiled SGD step, as test_cA trains them.

    Returns (ca, train_ca, step): train_ca(i) trains on minibatch i of the
    shared train_set_x and returns [mean L_rec, L_jacob] computed before
    the step; step says which step was compiled and why. gradient: 'auto'
    trains get_cost_updates's graph, which the kernel replaces only where
    it is the stock graph (then it computes the same step); 'T.grad'
    always trains that graph as written; 'fused' trains
    get_fused_cost_updates; 'kernel' the kernel (machinery/kernel/steps.py).
    """
    index = T.lscalar('index')
    x = T.matrix('x')
    ca = cA(numpy_rng=numpy.random.RandomState(seed), input=x,
            n_visible=train_set_x.get_value(borrow=True).shape[1],
            n_hidden=n_hidden)
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


def save_filters(W, path, tile_shape=(10, 10)):
    """Write the first filters (columns of W, 28x28 each) as a PNG; returns
    the path."""
    image = PIL.Image.fromarray(tile_raster_images(
        X=W.get_value(borrow=True).T, img_shape=(28, 28),
        tile_shape=tile_shape, tile_spacing=(1, 1)))
    training.write_image(image, path)
    return path


def test_cA(learning_rate=0.01, training_epochs=20,
            dataset=training.DEFAULT_DATASET, batch_size=10,
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
    after every epoch; ``resume=True`` goes on from it, and ends with the
    parameters an uninterrupted run would have had; an unfinished
    checkpoint is replaced only with ``restart=True``. SIGINT or SIGTERM
    stops training after the current minibatch, saves a checkpoint and the
    filters, and raises TrainingInterrupted; a NaN or infinite cost raises
    DivergenceError (machinery/training.py).
    """
    log = sys.stdout if log is None else log
    settings = dict(learning_rate=learning_rate,
                    training_epochs=training_epochs, batch_size=batch_size,
                    contraction_level=contraction_level, n_hidden=n_hidden,
                    seed=seed, gradient=gradient, resume=resume,
                    restart=restart)
    with training.SafeRun(output_folder, settings, log) as run:
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

        for epoch in run.epochs(ca.params, on_stop=lambda: 'filters ' +
                                save_filters(ca.W, run.filters_path)):
            epoch_start = time.perf_counter()
            for batch_index in run.minibatches(epoch):
                costs[epoch, batch_index] = train_ca(batch_index)
            print('epoch %d/%d  reconstruction %.2f  jacobian_norm %.2f'
                  '  %.1f s%s' % (epoch + 1, training_epochs,
                                  costs[epoch, :, 0].mean(),
                                  numpy.sqrt(costs[epoch, :, 1]).mean(),
                                  time.perf_counter() - epoch_start,
                                  run.partial(epoch)),
                  file=log, flush=True)
        training_time = run.training_time

        save_filters(ca.W, run.filters_path)
    print('trained %s in %.2f min (%.1f s); filters written to %s'
          % (run.epochs_trained, training_time / 60, training_time,
             run.filters_path), file=log, flush=True)
    return TrainingResult(ca, costs, training_time, run.filters_path)


test_cA.__test__ = False  # pytest would collect test_* from `from cA import`


if __name__ == '__main__':
    sys.exit(training.main(test_cA))
