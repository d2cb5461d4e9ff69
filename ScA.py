"""Stacked contractive auto-encoders: CAE pre-training of an MLP on MNIST.

A multi-layer perceptron with sigmoid hidden layers

    h_0 = x,   h_k = s(h_{k-1} W_k + b_k)  (k = 1..K),
    P(Y | x) = softmax(h_K V + c)

is trained in two phases (as the stacked denoising auto-encoders of the
tutorial series are, with cA in place of dA), and then scored once:

1. Pre-training, greedy and layer by layer: hidden layer k is the encoder
   of a contractive auto-encoder (cA.py) whose input is h_{k-1}, the
   output of the layers below, and which minimises on the training set

       mean_x L_rec(h_{k-1}, z_k) + lambda * mean_x ||dh_k / dh_{k-1}||_F^2

   by SGD on (W_k, b_k, b'_k) alone: the layers below stay fixed. The cA
   is built with the layer's own shared W_k and b_k, so training it *is*
   training the MLP's layer (no copy); b'_k, the reconstruction bias, is
   the cA's own and is dropped afterwards. lambda = 0 makes it a plain
   auto-encoder (AE).
2. Fine-tuning: the whole MLP, with a logistic regression on top, is
   trained by SGD on the negative log-likelihood of the labels. The
   validation error after each epoch picks the epoch whose parameters are
   kept (early stopping, logistic_sgd.EarlyStopping).
3. Test: the kept parameters are scored on the test set, once. Nothing
   before this step reads the test set, so no choice depends on it.

Every epoch of both phases visits the training examples in a new random
order, drawn from RandomState(shuffle_seed) started afresh for each phase:
models that differ only in their pre-training see the same minibatches.

``--compare`` reproduces the paper's MNIST comparison (Rifai et al., ICML
2011, Table 1) for one hidden layer of 1000 units: the same MLP (the same
initial weights, from ``--seed``) fine-tuned with the same budget from its
random initialisation, after plain auto-encoder pre-training and after CAE
pre-training; ``--two-layers`` adds a CAE-pre-trained 1000-1000 stack.
Beside each test error it gives the paper's other two columns for the
pre-trained layer (the size of J = dh/dx and the share of saturated units,
``pretrained_layer``), McNemar's exact test between every two rows
(``mcnemar_exact``: they are scored on the same digits), and draws the
contraction curves of the pre-trained AE and CAE layers (analysis.py's).

    python ScA.py --compare            # the table (docs/stacked.md)
    python ScA.py                      # one CAE-pre-trained MLP
    python ScA.py --no-pretrain        # the same MLP from random weights
    python ScA.py --help               # every hyperparameter

The defaults are the settings with the lowest validation error in the
hyperparameter searches that docs/stacked.md describes.
"""
import itertools
import math
import os
import statistics
import sys
import time

if __name__ == '__main__':
    from machinery import start_script
    start_script(__file__)

# the stack first: without one, this says what to do
from machinery import backend
from machinery.backend import theano, T, sigmoid
import numpy

from machinery.kernel import steps
from machinery import checks
from machinery import cli
from machinery import commands
from machinery import mnist_data
from machinery import outputs
from machinery import reports
from machinery import resources
import analysis
from cA import cA
from logistic_sgd import (EarlyStopping, LogisticRegression, read_data,
                          shared_dataset)
from mlp import HiddenLayer

# examples per call of the compiled prediction (validation and test)
EVAL_BATCH_SIZE = 1000
COMPARISON_NAME = commands.SCA_COMPARISON_NAME  # what compare() writes
CONTRACTION_FIGURE = commands.SCA_CONTRACTION_NAME  # and its figure
# what each kind of pre-training is called in the progress lines
PRETRAINING_NAMES = {'none': 'random initialisation (no pre-training)',
                     'AE': 'plain auto-encoder pre-training (lambda 0)',
                     'CAE': 'CAE pre-training'}
# Rifai et al. (2011), Table 1, MNIST, one hidden layer of 1000 units: the
# test error, the column "Av. ||J_f(x)||_F" (printed in units of 1e-4; its
# scale is that of the mean squared entry of J, see pretrained_layer) and
# SAT, the mean fraction of saturated hidden units, before fine-tuning
PAPER = {'CAE': {'test_error': 0.0114, 'jacobian_norm_column': 0.73e-4,
                 'saturated_fraction': 0.8636},
         'AE': {'test_error': 0.0178, 'jacobian_norm_column': 17.5e-4,
                'saturated_fraction': 0.4990}}
# a hidden unit is saturated below this or above 1 minus it (the paper's
# SAT; analysis.saturated_fraction)
SATURATION_THRESHOLD = 0.05
# test digits around which the contraction curves of compare() are drawn
CURVE_EXAMPLES = 500


# ---- minibatches in a shuffled order ----------------------------------------

def minibatch(data, index, size, order=None):
    """Minibatch ``index`` (symbolic) of the shared ``data``: its rows
    index * size to (index + 1) * size - 1, taken in the stored order, or,
    when ``order`` (a shared vector of row numbers) is given, in that
    order. The last minibatch is short when size does not divide the
    rows."""
    positions = slice(index * size, (index + 1) * size)
    return data[positions] if order is None else data[order[positions]]


def reshuffle(order, rng):
    """Draw a new order of the rows into the shared vector ``order``.

    Reshuffling then costs one small write per epoch: the compiled steps
    index the data through ``order`` and never copy the data."""
    n = order.get_value(borrow=True).shape[0]
    order.set_value(rng.permutation(n).astype(order.dtype))


def new_order(n_rows):
    """A shared vector of row numbers for minibatch(), in stored order."""
    return theano.shared(numpy.arange(n_rows, dtype='int64'), name='order')


def n_minibatches(n_rows, size):
    return -(-n_rows // size)  # the last one may be short


# ---- the model --------------------------------------------------------------

class ScA(object):
    """A stacked contractive auto-encoder: an MLP of sigmoid HiddenLayers
    with a LogisticRegression on top, and one cA per hidden layer sharing
    that layer's W and b.

    numpy_rng: numpy.random.RandomState that draws every initial W (the
        hidden layers in order; the top layer starts at zero).
    n_ins: input size; hidden_layers_sizes: the sizes of the hidden
        layers, bottom first; n_outs: number of classes.

    Attributes:
        x, y: the symbolic input matrix and int32 label vector.
        sigmoid_layers: the HiddenLayers, bottom first.
        cA_layers: the cAs; cA_layers[i].W is sigmoid_layers[i].W and
            cA_layers[i].b is sigmoid_layers[i].b (the same objects).
        logLayer: the LogisticRegression on top.
        params: the MLP's parameters, [W_1, b_1, ..., W_K, b_K, V, c]
            (not the cAs' reconstruction biases).
        finetune_cost: the mean negative log-likelihood of y.
    """

    def __init__(self, numpy_rng, n_ins=784, hidden_layers_sizes=(1000,),
                 n_outs=10):
        self.n_layers = len(hidden_layers_sizes)
        if self.n_layers < 1:
            raise checks.ConfigError('an ScA needs at least one hidden layer')
        self.x = T.matrix('x')
        self.y = T.ivector('y')
        self.sigmoid_layers = []
        self.cA_layers = []
        self.params = []
        layer_input, n_in = self.x, n_ins
        for n_out in hidden_layers_sizes:
            layer = HiddenLayer(rng=numpy_rng, input=layer_input, n_in=n_in,
                                n_out=n_out, activation=sigmoid)
            # the auto-encoder reads what this layer reads and trains this
            # layer's own shared W and b in place
            ca = cA(numpy_rng=numpy_rng, input=layer_input, n_visible=n_in,
                    n_hidden=n_out, W=layer.W, bhid=layer.b)
            self.sigmoid_layers.append(layer)
            self.cA_layers.append(ca)
            self.params.extend(layer.params)
            layer_input, n_in = layer.output, n_out
        self.logLayer = LogisticRegression(input=layer_input, n_in=n_in,
                                           n_out=n_outs)
        self.params.extend(self.logLayer.params)
        self.finetune_cost = self.logLayer.negative_log_likelihood(self.y)
        self._predict = None

    def pretraining_functions(self, train_set_x, batch_size,
                              contraction_level=0.1, learning_rate=0.01,
                              order=None, gradient='auto'):
        """One compiled SGD step per layer, bottom first.

        Function k takes a minibatch index, trains cA k on that minibatch
        of the shared train_set_x (see minibatch() for ``order``) and
        returns [cost, mean L_rec, L_jacob] of the minibatch before the step
        (cost = mean L_rec + contraction_level * L_jacob, in nats per
        example). Only cA k's W, b and b' move: the input of layer k is
        computed by the layers below, which are left unchanged.

        gradient: the step, as in cA.build_training: 'auto' trains the
        graph of cA.get_cost_updates, which the kernel replaces only where
        it is the stock graph; 'T.grad', 'fused' and 'kernel' force one
        (machinery/kernel/steps.py). self.steps says, per layer, which
        step was compiled and why.
        """
        index = T.lscalar('index')
        functions, self.steps = [], []
        for ca in self.cA_layers:
            cost, updates = ca.get_cost_updates(
                contraction_level=contraction_level,
                learning_rate=learning_rate)
            updates, step = steps.faster_equivalent(
                ca, cost, updates, contraction_level, learning_rate, gradient)
            self.steps.append(step)
            L_rec = T.mean(ca.L_rec)
            functions.append(theano.function(
                [index], [L_rec + contraction_level * ca.L_jacob, L_rec,
                          ca.L_jacob],
                updates=updates,
                givens={self.x: minibatch(train_set_x, index, batch_size,
                                          order)}))
        return functions

    def finetuning_function(self, train_set, batch_size, learning_rate,
                            order=None):
        """The compiled fine-tuning step: train_fn(index) takes one SGD step
        of every parameter on training minibatch ``index`` and returns its
        mean NLL before the step.

        train_set: (x, y) of shared data, as logistic_sgd.shared_dataset
            makes. learning_rate: a number, or a shared scalar (whose value
            can then be changed between calls, e.g. to decay it).
        """
        train_x, train_y = train_set
        index = T.lscalar('index')
        if not isinstance(learning_rate, T.Variable):
            learning_rate = T.constant(learning_rate,
                                       dtype=theano.config.floatX)
        gparams = T.grad(self.finetune_cost, self.params)
        updates = [(param, param - learning_rate * gparam)
                   for param, gparam in zip(self.params, gparams)]
        return theano.function(
            [index], self.finetune_cost, updates=updates,
            givens={self.x: minibatch(train_x, index, batch_size, order),
                    self.y: minibatch(train_y, index, batch_size, order)})

    def wrong_digits(self, data_x, data_y):
        """Which of the examples (data_x, data_y), numpy arrays, the MLP
        misclassifies with its current parameters: a boolean vector. Reads
        each row once, in chunks of EVAL_BATCH_SIZE."""
        if self._predict is None:
            self._predict = theano.function([self.x], self.logLayer.y_pred)
        floatX = theano.config.floatX
        wrong = numpy.zeros(len(data_y), dtype=bool)
        for start in range(0, len(data_y), EVAL_BATCH_SIZE):
            stop = start + EVAL_BATCH_SIZE
            predicted = self._predict(numpy.asarray(data_x[start:stop],
                                                    dtype=floatX))
            wrong[start:stop] = predicted != numpy.asarray(data_y[start:stop])
        return wrong

    def count_errors(self, data_x, data_y):
        """How many of the examples (data_x, data_y) the MLP misclassifies
        (wrong_digits, counted)."""
        return int(numpy.sum(self.wrong_digits(data_x, data_y)))


# ---- the two phases ---------------------------------------------------------

def pretrain_layers(sca, train_set_x, batch_size, epochs, contraction_level,
                    learning_rate, shuffle_rng, log, gradient='auto'):
    """Greedy layer-wise pre-training, bottom first, each layer as a CAE
    (or a plain AE when contraction_level is 0); a line per epoch.

    shuffle_rng: the numpy RandomState that draws the order of each epoch.
    gradient: see ScA.pretraining_functions.
    Returns (per layer an (epochs, 3) array of epoch means of [cost, L_rec,
    L_jacob], seconds spent training). DivergenceError when the cost
    becomes NaN or infinite.
    """
    n_train = train_set_x.get_value(borrow=True).shape[0]
    n_batches = n_minibatches(n_train, batch_size)
    order = new_order(n_train)
    functions = sca.pretraining_functions(
        train_set_x, batch_size, contraction_level=contraction_level,
        learning_rate=learning_rate, order=order, gradient=gradient)
    for k, step in enumerate(sca.steps):
        print('pre-training step of layer %d: %s' % (k + 1, step), file=log,
              flush=True)
    kind = 'CAE, lambda %g' % contraction_level if contraction_level > 0 \
        else 'AE, lambda 0'
    all_costs = []
    start = time.perf_counter()
    for k, train_layer in enumerate(functions):
        costs = numpy.zeros((epochs, 3))
        for epoch in range(1, epochs + 1):
            epoch_start = time.perf_counter()
            reshuffle(order, shuffle_rng)
            costs[epoch - 1] = numpy.mean([train_layer(i)
                                           for i in range(n_batches)], axis=0)
            cost, L_rec, L_jacob = costs[epoch - 1]
            checks.finite_cost(cost, 'the pre-training cost of layer %d in '
                               'epoch %d' % (k + 1, epoch), '--pretrain-lr',
                               learning_rate)
            now = time.perf_counter()
            print('pre-training layer %d/%d (%s): epoch %d/%d  cost %.2f '
                  'nats/example (reconstruction %.2f + %g x ||J||_F^2 %.2f)'
                  '  %.1f s%s'
                  % (k + 1, len(functions), kind, epoch, epochs, cost, L_rec,
                     contraction_level, L_jacob, now - epoch_start,
                     reports.time_left(now - start, k * epochs + epoch,
                               len(functions) * epochs)),
                  file=log, flush=True)
        all_costs.append(costs)
    return all_costs, time.perf_counter() - start


def finetune(sca, train_set, valid_set, batch_size, learning_rate,
             lr_decay, epochs, shuffle_rng, log):
    """SGD on the whole MLP; keeps the parameters of the best validation
    error. It never sees the test set.

    train_set: (x, y) of shared data; valid_set: (x, y) numpy arrays.
    The step size of epoch e is learning_rate * lr_decay ** (e - 1). The
    validation error is measured after every epoch and EarlyStopping
    (logistic_sgd.py, starting with a patience of 10 epochs) may end
    training before ``epochs``, the budget. shuffle_rng: the numpy
    RandomState that draws the order of each epoch.

    Returns a dict: best_validation_error, best_epoch, epochs_run,
    finetuning_time (s), validation_errors (one per epoch). The MLP is left
    with the parameters of best_epoch. DivergenceError when the NLL
    becomes NaN or infinite.
    """
    floatX = theano.config.floatX
    train_x, _ = train_set
    valid_x, valid_y = valid_set
    n_train = train_x.get_value(borrow=True).shape[0]
    n_batches = n_minibatches(n_train, batch_size)
    lr = theano.shared(numpy.asarray(learning_rate, dtype=floatX),
                       name='finetune_lr')
    order = new_order(n_train)
    train_fn = sca.finetuning_function(train_set, batch_size, lr, order)

    stopping = EarlyStopping(patience=10 * n_batches)
    best_epoch, best_params, validation_errors = 0, None, []
    iteration = epoch = 0
    start = time.perf_counter()
    while epoch < epochs and not stopping.should_stop(iteration):
        epoch += 1
        epoch_start = time.perf_counter()
        lr.set_value(numpy.asarray(learning_rate * lr_decay ** (epoch - 1),
                                   dtype=floatX))
        reshuffle(order, shuffle_rng)
        nll = numpy.mean([train_fn(i) for i in range(n_batches)])
        iteration += n_batches
        checks.finite_cost(nll, 'the fine-tuning NLL in epoch %d' % epoch,
                           '--finetune-lr', learning_rate)
        validation = sca.count_errors(valid_x, valid_y) / len(valid_y)
        validation_errors.append(validation)
        now = time.perf_counter()
        print('fine-tuning: epoch %d/%d  train NLL %.4f nats/example  '
              'validation error %.2f %%  lr %.4g  %.1f s%s'
              % (epoch, epochs, nll, validation * 100, lr.get_value(),
                 now - epoch_start,
                 reports.time_left(now - start, epoch, epochs)),
              file=log, flush=True)
        if stopping.update(iteration, validation):
            best_epoch = epoch
            best_params = [p.get_value() for p in sca.params]
    elapsed = time.perf_counter() - start
    for param, value in zip(sca.params, best_params):
        param.set_value(value)
    return {'best_validation_error': float(stopping.best),
            'best_epoch': best_epoch, 'epochs_run': epoch,
            'finetuning_time': elapsed,
            'validation_errors': validation_errors}


# ---- how sure the test error is ---------------------------------------------

def wilson_interval(errors, n, confidence=0.95):
    """The Wilson score interval (low, high) of an error rate, from
    ``errors`` wrong out of ``n`` independent test examples (binomial).

    It is the set of rates p that the score test does not reject:
    |errors/n - p| <= z sqrt(p (1 - p) / n), z the normal quantile of
    (1 + confidence) / 2; solving the quadratic in p gives

        (p^ + z^2/2n -+ z sqrt(p^ (1 - p^) / n + z^2/4n^2)) / (1 + z^2/n).

    Unlike p^ -+ z sqrt(p^ (1 - p^) / n), it stays inside [0, 1] and
    keeps close to its nominal coverage at error rates near 0, as here.
    """
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    p = errors / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * numpy.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / \
        (1 + z * z / n)
    return max(0.0, center - half), min(1.0, center + half)


def mcnemar_exact(only_a_wrong, only_b_wrong):
    """McNemar's exact test of two classifiers scored on the same digits:
    the two-sided p-value of only_a_wrong against only_b_wrong, the counts
    of digits that exactly one of the two gets wrong.

    The digits both get right or both get wrong say nothing about which is
    better. Under the hypothesis that both have the same error rate, each
    of the n = only_a_wrong + only_b_wrong discordant digits is equally
    likely to be A's or B's mistake, so the smaller count k is binomial
    (n, 1/2), and p = min(1, 2 P(X <= k)), computed exactly with integers.
    """
    n = only_a_wrong + only_b_wrong
    k = min(only_a_wrong, only_b_wrong)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)


def paired_tests(runs):
    """McNemar's exact test (mcnemar_exact) between every two rows of a
    comparison, from the test digits each got wrong: a list of dicts."""
    tests = []
    for (a, run_a), (b, run_b) in itertools.combinations(enumerate(runs), 2):
        wrong_a, wrong_b = (set(run['test_wrong_digits'])
                            for run in (run_a, run_b))
        only_a, only_b = len(wrong_a - wrong_b), len(wrong_b - wrong_a)
        tests.append({'rows': [a + 1, b + 1],
                      'models': [row_name(run_a), row_name(run_b)],
                      'only_first_wrong': only_a,
                      'only_second_wrong': only_b,
                      'both_wrong': len(wrong_a & wrong_b),
                      'p_value': mcnemar_exact(only_a, only_b)})
    return tests


def row_name(run):
    """How a row of the table is called in its other lines: 'CAE', 'AE',
    'none', with the architecture when it has more than one layer."""
    if len(run['hidden_layers_sizes']) == 1:
        return run['pretraining']
    return '%s %s' % (run['pretraining'], run['model'])


# ---- the pre-trained layer, as the paper's Table 1 measures it ----------------

def pretrained_layer(W, b, X, threshold=SATURATION_THRESHOLD):
    """The paper's measures of a pre-trained encoder h = sigmoid(x W + b),
    before fine-tuning, averaged over the rows x of X (the test digits):

    jacobian_frobenius_norm: the mean of ||J(x)||_F (analysis.py's
        jacobian_frobenius_norms), as cA.py and analysis.py report it;
    jacobian_mean_square_entry: the mean of ||J(x)||_F^2 / (d_x d_h), the
        mean squared entry of J (784 x 1000 entries here). The paper's
        column "Av. ||J_f(x)||_F" is of this size (CAE 0.73e-4 for a
        ||J||_F near 8), not of ||J||_F's;
    saturated_fraction: SAT, the mean fraction of hidden units with
        h < threshold or h > 1 - threshold.
    """
    norms = analysis.jacobian_frobenius_norms(W, b, X)
    return {'jacobian_frobenius_norm': float(norms.mean()),
            'jacobian_mean_square_entry':
                float(numpy.mean(norms ** 2) / W.size),
            'saturated_fraction': analysis.saturated_fraction(
                analysis.hidden_values(W, b, X), threshold),
            'saturation_threshold': threshold}


# ---- one model --------------------------------------------------------------

def pretraining_kind(pretrain, pretraining_epochs, contraction_level):
    """'none', 'AE' (lambda 0) or 'CAE'."""
    if not pretrain or pretraining_epochs == 0:
        return 'none'
    return 'CAE' if contraction_level > 0 else 'AE'


def architecture(n_ins, hidden_layers_sizes, n_outs=10):
    return '-'.join(str(n) for n in (n_ins,) + tuple(hidden_layers_sizes) +
                    (n_outs,))


class ScAResult(object):
    """What test_ScA returns.

    sca: the model, with the parameters of its best validation error.
    summary: a JSON-ready dict: the errors (fractions), the test error's
        95 % interval, the test digits it got wrong (their indices, for
        paired tests), the pre-trained first layer's measures
        (pretrained_layer; None without pre-training), the times
        (seconds), the epochs and the settings.
    pretraining_costs: per layer, an (epochs, 3) array of the per-epoch
        means of [cost, L_rec, L_jacob] (empty without pre-training).
    validation_errors: the validation error after each fine-tuning epoch.
    pretrained: (W, b) of the first hidden layer after pre-training, before
        fine-tuning (float64 copies); None without pre-training.
    """

    def __init__(self, sca, summary, pretraining_costs, validation_errors,
                 pretrained=None):
        self.pretrained = pretrained
        self.sca = sca
        self.summary = summary
        self.pretraining_costs = pretraining_costs
        self.validation_errors = validation_errors


def test_ScA(finetune_lr=0.3, pretraining_epochs=40, pretrain_lr=0.05,
             contraction_level=0.1, training_epochs=60,
             dataset=mnist_data.DEFAULT_PATH, pretrain_batch_size=10,
             finetune_batch_size=20, hidden_layers_sizes=(1000,),
             finetune_lr_decay=1.0, seed=89677, shuffle_seed=1,
             gradient='auto', pretrain=True, datasets=None, log=None):
    """Pre-train an MLP layer by layer as CAEs, fine-tune it, test it once.

    pretraining_epochs, pretrain_lr, contraction_level, pretrain_batch_size:
        each layer's auto-encoder training (passes over the training set,
        SGD step, lambda, examples per minibatch); contraction_level=0
        trains plain auto-encoders (AE).
    finetune_lr, finetune_lr_decay: the fine-tuning step size of epoch e
        is finetune_lr * finetune_lr_decay ** (e - 1).
    training_epochs: the fine-tuning budget, most epochs (early stopping
        may end it sooner); finetune_batch_size: its minibatch size.
    hidden_layers_sizes: hidden layer sizes, bottom first.
    seed: seed of the RandomState that draws the initial weights (the same
        weights whatever the pre-training).
    shuffle_seed: seed of the RandomState that draws each epoch's order of
        the training examples, started afresh for each phase.
    gradient: the pre-training step (ScA.pretraining_functions): 'auto',
        the cA class's own graph, replaced by the kernel where it is the
        stock graph; 'T.grad', 'fused' or 'kernel' force one. 'fused' was
        the first search's step (docs/stacked.md); the kernel's runs equal
        its up to rounding, so they drift apart from that search's.
    pretrain: False fine-tunes from the random initialisation.
    datasets: read_data's output (numpy arrays), to share one copy between
        runs; default read_data(dataset).
    log: where the progress lines go (default sys.stdout).

    Returns an ScAResult.
    """
    log = sys.stdout if log is None else log
    if not isinstance(hidden_layers_sizes, (str, bytes)):
        hidden_layers_sizes = tuple(hidden_layers_sizes)
    checks.stacked_training(finetune_lr, pretraining_epochs, pretrain_lr,
                   contraction_level, training_epochs, pretrain_batch_size,
                   finetune_batch_size, hidden_layers_sizes,
                   finetune_lr_decay, seed, shuffle_seed, gradient)
    if datasets is None:
        datasets = read_data(dataset, log)
    (train_x, train_y), valid_set, (test_x, test_y) = datasets
    checks.batch_fits(pretrain_batch_size, len(train_x),
                      'pretrain_batch_size')
    checks.batch_fits(finetune_batch_size, len(train_x),
                      'finetune_batch_size')
    for name, value in (('finetune_lr', finetune_lr),
                        ('pretrain_lr', pretrain_lr),
                        ('contraction_level', contraction_level)):
        checks.representable(name, value, theano.config.floatX)
    resources.check_memory(resources.stacked_needs(
        train_x.shape[1], hidden_layers_sizes,
        dict(pretrain_batch_size=pretrain_batch_size,
             finetune_batch_size=finetune_batch_size),
        train_x.dtype.itemsize))
    train_set = shared_dataset((train_x, train_y))
    kind = pretraining_kind(pretrain, pretraining_epochs, contraction_level)
    n_ins = train_x.shape[1]
    sca = ScA(numpy_rng=numpy.random.RandomState(seed), n_ins=n_ins,
              hidden_layers_sizes=hidden_layers_sizes, n_outs=10)
    print('MLP %s, %s' % (architecture(n_ins, hidden_layers_sizes),
                          PRETRAINING_NAMES[kind]), file=log, flush=True)

    # 1. pre-training
    pretraining_costs, pretraining_time, pretrained = [], 0.0, None
    if kind != 'none':
        pretraining_costs, pretraining_time = pretrain_layers(
            sca, train_set[0], pretrain_batch_size, pretraining_epochs,
            contraction_level, pretrain_lr,
            numpy.random.RandomState(shuffle_seed), log, gradient)
        # the first layer as pre-training left it, for the paper's measures
        pretrained = tuple(p.get_value().astype(numpy.float64)
                           for p in sca.sigmoid_layers[0].params)
    # 2. fine-tuning, which keeps the parameters of the best validation error
    outcome = finetune(sca, train_set, valid_set, finetune_batch_size,
                       finetune_lr, finetune_lr_decay, training_epochs,
                       numpy.random.RandomState(shuffle_seed), log)
    # 3. the test set, read once, with those parameters; the same read
    # gives the pre-trained layer's measures, which decide nothing
    n_test = len(test_y)
    test_x, test_y = test_x[0:n_test], test_y[0:n_test]
    wrong = sca.wrong_digits(test_x, test_y)
    test_errors = int(wrong.sum())
    interval = wilson_interval(test_errors, n_test)
    measures = None if pretrained is None else \
        pretrained_layer(*pretrained, numpy.asarray(test_x, numpy.float64))

    print('done: best validation error %.2f %% (epoch %d of %d run)  test '
          'error %.2f %% (%d of %d; 95 %% Wilson interval %.2f-%.2f %%)  '
          'pre-training %.1f min  fine-tuning %.1f min'
          % (outcome['best_validation_error'] * 100, outcome['best_epoch'],
             outcome['epochs_run'], test_errors / n_test * 100, test_errors,
             n_test, interval[0] * 100, interval[1] * 100,
             pretraining_time / 60, outcome['finetuning_time'] / 60),
          file=log, flush=True)
    if measures is not None:
        print('the pre-trained first layer on the %d test digits, before '
              'fine-tuning: mean ||J||_F %.3f (mean squared entry of J '
              '%.3g), saturated units (h < %g or h > %g) %.2f %%'
              % (n_test, measures['jacobian_frobenius_norm'],
                 measures['jacobian_mean_square_entry'], SATURATION_THRESHOLD,
                 1 - SATURATION_THRESHOLD,
                 measures['saturated_fraction'] * 100), file=log, flush=True)
    summary = {
        'model': architecture(n_ins, hidden_layers_sizes),
        'hidden_layers_sizes': list(hidden_layers_sizes),
        'pretraining': kind,
        'validation_error': outcome['best_validation_error'],
        'test_error': test_errors / n_test,
        'test_errors': test_errors, 'n_test': n_test,
        'test_error_interval': list(interval),
        'test_wrong_digits': numpy.flatnonzero(wrong).tolist(),
        'pretrained_layer': measures,
        'best_epoch': outcome['best_epoch'],
        'epochs_run': outcome['epochs_run'],
        'pretraining_time': pretraining_time,
        'finetuning_time': outcome['finetuning_time'],
        'validation_errors': outcome['validation_errors'],
        'pretraining_costs': [c.tolist() for c in pretraining_costs],
        'hyperparameters': {
            'finetune_lr': finetune_lr,
            'finetune_lr_decay': finetune_lr_decay,
            'training_epochs': training_epochs,
            'finetune_batch_size': finetune_batch_size,
            'pretraining_epochs': pretraining_epochs if kind != 'none' else 0,
            'pretrain_lr': pretrain_lr,
            'contraction_level': contraction_level,
            'pretrain_batch_size': pretrain_batch_size,
            'seed': seed, 'shuffle_seed': shuffle_seed,
            'gradient': gradient},
    }
    return ScAResult(sca, summary, pretraining_costs,
                     outcome['validation_errors'], pretrained)


test_ScA.__test__ = False  # a training function, not a pytest test

# the settings of test_ScA that every row of a comparison shares, and
# their defaults
HYPERPARAMETERS = {name: default for name, default
                   in cli.defaults_of(test_ScA).items()
                   if name not in ('dataset', 'hidden_layers_sizes',
                                   'pretrain', 'datasets', 'log')}


# ---- the comparison ---------------------------------------------------------

def comparison_rows(n_hidden, two_layers):
    """(hidden_layers_sizes, pretraining kind) of each row of the table."""
    rows = [((n_hidden,), kind) for kind in ('none', 'AE', 'CAE')]
    if two_layers:
        rows.append(((n_hidden, n_hidden), 'CAE'))
    return rows


def percent_interval(run):
    low, high = run['test_error_interval']
    return '%.2f-%.2f %%' % (low * 100, high * 100)


def in_units_of_1e4(value):
    """A mean squared entry of J as the paper prints its column."""
    return '%.2fe-4' % (value * 1e4)


def layer_columns(measures):
    """The table's norm of J, mean J_ij^2 and SAT cells of one row."""
    if measures is None:
        return ['', '', '']
    return ['%.2f' % measures['jacobian_frobenius_norm'],
            in_units_of_1e4(measures['jacobian_mean_square_entry']),
            '%.2f %%' % (measures['saturated_fraction'] * 100)]


def markdown_table(runs):
    """The comparison as a Markdown table (errors in %, times in min), with
    the paper's rows (Table 1) under ours. The norm of J (the mean of
    ||J(x)||_F; a header cannot hold the bars), mean J_ij^2 and SAT are
    those of the pre-trained first layer on the test digits, before
    fine-tuning (pretrained_layer)."""
    lines = ['| model | pre-training | test error | 95 % interval (Wilson) | '
             'validation error | norm of J | mean J_ij^2 | SAT | '
             'pre-training time | fine-tuning time | best epoch / run |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for run in runs:
        lines.append('| MLP %s | %s | %.2f %% | %s | %.2f %% | %s | %.1f min '
                     '| %.1f min | %d / %d |'
                     % (run['model'], run['pretraining'],
                        run['test_error'] * 100, percent_interval(run),
                        run['validation_error'] * 100,
                        ' | '.join(layer_columns(run['pretrained_layer'])),
                        run['pretraining_time'] / 60,
                        run['finetuning_time'] / 60, run['best_epoch'],
                        run['epochs_run']))
    for kind, paper in PAPER.items():
        lines.append('| the paper, Table 1 | %s | %.2f %% | | | | %s | '
                     '%.2f %% | | | |'
                     % (kind, paper['test_error'] * 100,
                        in_units_of_1e4(paper['jacobian_norm_column']),
                        paper['saturated_fraction'] * 100))
    return '\n'.join(lines)


def contraction_curves(results, datasets, n_examples, seed, log):
    """The contraction curves (analysis.py's) of the pre-trained first
    layers of the one-layer rows, before fine-tuning, around the first
    n_examples test digits: the radii of analysis.py's figure, from its
    defaults (the limit r -> 0, then up to 1.25 x the largest distance
    between two training digits) and the same direction per digit for
    every model, drawn from RandomState(seed). A dict for the report."""
    start = time.perf_counter()
    (train_x, _), _, (test_x, _) = datasets
    X = numpy.asarray(test_x[0:n_examples], dtype=numpy.float64)
    curve = cli.defaults_of(analysis.run_analysis)  # its figure's radii
    distances, radii = analysis.contraction_radii(
        X, train_x, curve['n_radii'], curve['min_radius_factor'],
        curve['max_radius_factor'], log)
    directions = analysis.random_directions(
        len(X), X.shape[1], numpy.random.RandomState(seed))
    curves = {}
    for result in results:
        summary = result.summary
        if result.pretrained is None or len(summary['hidden_layers_sizes']) > 1:
            continue
        W, b = result.pretrained
        curves[summary['pretraining']] = analysis.contraction_ratios(
            analysis.encoder(W, b), X, radii, None,
            directions=directions).tolist()
    print('contraction curves of the pre-trained layers at %d test digits '
          '(%.1f s)' % (len(X), time.perf_counter() - start), file=log,
          flush=True)
    return {'n_examples': len(X), 'distances': distances,
            'radii': radii.tolist(), 'ratios': curves}


def compare(n_hidden=1000, two_layers=False, output_folder='cA_plots',
            dataset=mnist_data.DEFAULT_PATH, datasets=None, log=None,
            **settings):
    """The table of docs/stacked.md: one MLP with a hidden layer of
    n_hidden units, fine-tuned from its random initialisation, after plain
    auto-encoder pre-training (lambda 0) and after CAE pre-training; with
    two_layers, also a CAE-pre-trained stack of two such layers.

    Every row is test_ScA with the same settings (test_ScA's defaults, or
    those given as keywords: finetune_lr, contraction_level, ...): the same
    initial weights, the same order of the examples, the same fine-tuning
    budget. The AE row differs from the CAE row only by lambda: it shows
    what the penalty itself buys.

    Holds output_folder (outputs.OutputFolder) and writes
    output_folder/ScA_comparison.json after every row (``complete`` says
    whether all rows are in): the dataset by its sha256, the settings, and
    per row the errors, the test error's 95 % interval and the times.
    Prints the Markdown table at the end. Returns the report (a dict).
    """
    log = sys.stdout if log is None else log
    unknown = sorted(set(settings) - set(HYPERPARAMETERS))
    if unknown:
        raise TypeError('compare() got unexpected keywords %s'
                        % ', '.join(unknown))
    settings = dict(HYPERPARAMETERS, **settings)
    checks.positive_int('n_hidden', n_hidden)
    checks.stacked_training(hidden_layers_sizes=(n_hidden,), **settings)
    # without them, a row would be a copy of another
    checks.positive_int('pretraining_epochs', settings['pretraining_epochs'])
    checks.positive_number('contraction_level',
                           settings['contraction_level'])
    rows = comparison_rows(n_hidden, two_layers)
    start = time.perf_counter()
    with outputs.OutputFolder(output_folder) as folder:
        path = folder.path(COMPARISON_NAME)
        figure = folder.path(CONTRACTION_FIGURE)
        for name in (path, figure):
            outputs.remove_dead_temporaries(name)
        if datasets is None:
            datasets = read_data(dataset, log)
        n_train, n_valid, n_test = (len(y) for _, y in datasets)
        report = {
            'dataset': {'sha256': reports.file_sha256(dataset),
                        'bytes': os.path.getsize(dataset),
                        'n_train': n_train, 'n_valid': n_valid,
                        'n_test': n_test},
            'code': reports.code_version(),
            'hyperparameters': dict(settings, n_hidden=n_hidden,
                                    two_layers=two_layers),
            'interval': '95 % Wilson score interval of the test error, '
                        'binomial over the n_test test examples',
            'paired_test': "McNemar's exact test between two rows: two-sided "
                           'binomial (n, 1/2) p-value of the digits only one '
                           'of the two gets wrong',
            'paper': dict(PAPER, source='Rifai et al., ICML 2011, Table 1, '
                          'MNIST, one hidden layer of 1000 units; '
                          'jacobian_norm_column is the column "Av. '
                          '||J_f(x)||_F", of the size of a mean squared '
                          'entry of J'),
            'runs': [], 'paired_tests': [], 'contraction': None,
            'complete': False, 'total_time': None,
            'machine': reports.machine(backend.NAME,
                                       theano.config.floatX)}
        results = []
        for number, (sizes, kind) in enumerate(rows, 1):
            print('\n== row %d/%d: MLP %s, %s ==' % (
                number, len(rows), architecture(datasets[0][0].shape[1],
                                                sizes),
                PRETRAINING_NAMES[kind]), file=log, flush=True)
            row_settings = dict(settings)
            if kind == 'AE':
                row_settings['contraction_level'] = 0.0
            results.append(test_ScA(hidden_layers_sizes=sizes,
                                    pretrain=kind != 'none',
                                    datasets=datasets, log=log,
                                    **row_settings))
            report['runs'].append(results[-1].summary)
            report['paired_tests'] = paired_tests(report['runs'])
            report['total_time'] = time.perf_counter() - start
            reports.write_json(path, report)
            print('row %d/%d done; %.1f min so far'
                  % (number, len(rows), report['total_time'] / 60),
                  file=log, flush=True)
        # after every row is scored: what pre-training made of the layers
        contraction = contraction_curves(results, datasets, CURVE_EXAMPLES,
                                         settings['seed'], log)
        analysis.plot_contraction(
            contraction['radii'], {'%s (pre-trained, %d units)' % (
                kind, n_hidden): ratios
                for kind, ratios in contraction['ratios'].items()},
            figure, analysis.figure_distances(contraction['distances']),
            title='Contraction curves of the pre-trained %d-unit layers '
                  '(ScA.py)' % n_hidden)
        report['contraction'] = dict(contraction, figure=CONTRACTION_FIGURE)
        report['complete'] = True
        report['total_time'] = time.perf_counter() - start
        reports.write_json(path, report)
    print_table(report, path, log)
    return report


def print_table(report, path, log):
    s = report['hyperparameters']
    print('\n' + markdown_table(report['runs']), file=log)
    print('\npre-training: %d epochs per layer, SGD lr %g, batch %d, '
          'lambda %g (0 in the AE row); fine-tuning: SGD lr %g x %g^(epoch-1),'
          ' batch %d, at most %d epochs, the parameters of the best '
          'validation error kept; initial weights seed %d, data order '
          'reshuffled every epoch, seed %d'
          % (s['pretraining_epochs'], s['pretrain_lr'],
             s['pretrain_batch_size'], s['contraction_level'],
             s['finetune_lr'], s['finetune_lr_decay'],
             s['finetune_batch_size'], s['training_epochs'], s['seed'],
             s['shuffle_seed']), file=log)
    print('norm of J (the mean of ||J(x)||_F), mean J_ij^2 (of ||J(x)||_F^2 '
          '/ (d_x d_h), the scale of the paper\'s column) and SAT (h < %g or '
          'h > %g): the pre-trained first layer on the test digits, before '
          'fine-tuning'
          % (SATURATION_THRESHOLD, 1 - SATURATION_THRESHOLD), file=log)
    for test in report['paired_tests']:
        print('paired test, %s against %s (McNemar, exact): %d test digits '
              'only the first gets wrong, %d only the second, p = %.3g'
              % (test['models'][0], test['models'][1],
                 test['only_first_wrong'], test['only_second_wrong'],
                 test['p_value']), file=log)
    contraction = report['contraction']
    if contraction:
        radii = contraction['radii']
        # the limit r -> 0, the largest training distance, the last radius
        shown = (radii[0], contraction['distances']['largest_training'],
                 radii[-1])
        print('contraction ratio of the pre-trained layers (%s): %s'
              % (', '.join('r = %.3g' % r for r in shown),
                 '; '.join('%s %s' % (kind, ' '.join(
                     '%.3f' % numpy.interp(r, radii, ratios) for r in shown))
                     for kind, ratios in contraction['ratios'].items())),
              file=log)
    print('total time %.1f min (%.0f s); results written to %s and %s'
          % (report['total_time'] / 60, report['total_time'], path,
             os.path.join(os.path.dirname(path), contraction['figure'])
             if contraction else '(no figure)'),
          file=log, flush=True)



if __name__ == '__main__':
    sys.exit(commands.scA(test_ScA, compare))
