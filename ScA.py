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

    python ScA.py                      # one CAE-pre-trained MLP
    python ScA.py --no-pretrain        # the same MLP from random weights
    python ScA.py --help               # every hyperparameter

The paper's comparison (Rifai et al., ICML 2011, Table 1: random
initialisation, AE and CAE pre-training of the same MLP, with intervals
and paired tests) is paper/table1.py, which trains this file's model
(`make scA`, docs/stacked.md); the defaults here are the settings with the
lowest validation error of its hyperparameter searches.
"""
import sys
import time

if __name__ == '__main__':
    from machinery import start_script
    start_script(__file__)

# the stack first: without one, this says what to do
from machinery.backend import theano, T, sigmoid
import numpy

from machinery.kernel import steps
from machinery import checks
from machinery import commands
from machinery import mnist_data
from machinery import reports
from machinery import resources
from cA import cA
from logistic_sgd import (EarlyStopping, LogisticRegression, read_data,
                          shared_dataset)
from mlp import HiddenLayer

# examples per call of the compiled prediction (validation and test)
EVAL_BATCH_SIZE = 1000
# what each kind of pre-training is called in the progress lines
PRETRAINING_NAMES = {'none': 'random initialisation (no pre-training)',
                     'AE': 'plain auto-encoder pre-training (lambda 0)',
                     'CAE': 'CAE pre-training'}


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
    pretraining: 'none', 'AE' or 'CAE'; pretraining_costs: per layer, an
        (epochs, 3) array of the per-epoch means of [cost, L_rec, L_jacob]
        (empty without pre-training); pretraining_time (s).
    finetuning: finetune()'s dict (best_validation_error, best_epoch,
        epochs_run, finetuning_time, validation_errors).
    test_wrong: which test digits the kept parameters get wrong (a boolean
        vector); test_error: their share.
    pretrained: (W, b) of the first hidden layer after pre-training, before
        fine-tuning (float64 copies); None without pre-training.
    """

    def __init__(self, sca, pretraining, pretraining_costs, pretraining_time,
                 finetuning, test_wrong, pretrained):
        self.sca = sca
        self.pretraining = pretraining
        self.pretraining_costs = pretraining_costs
        self.pretraining_time = pretraining_time
        self.finetuning = finetuning
        self.test_wrong = test_wrong
        self.test_error = float(test_wrong.mean())
        self.pretrained = pretrained


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
        trains plain auto-encoders (AE). gradient: its step, as in
        cA.build_training.
    finetune_lr, finetune_lr_decay: the fine-tuning step size of epoch e
        is finetune_lr * finetune_lr_decay ** (e - 1); training_epochs:
        the most fine-tuning epochs (early stopping may end it sooner);
        finetune_batch_size: its minibatch size.
    hidden_layers_sizes: hidden layer sizes, bottom first. seed: of the
        initial weights (the same whatever the pre-training); shuffle_seed:
        of each epoch's order of the training examples.
    pretrain: False fine-tunes from the random initialisation.
    datasets: read_data's output (numpy arrays), to share one copy between
        runs; default read_data(dataset). log: default sys.stdout.

    Returns an ScAResult.
    """
    log = sys.stdout if log is None else log
    if not isinstance(hidden_layers_sizes, (str, bytes)):
        hidden_layers_sizes = tuple(hidden_layers_sizes)
    checks.stacked_training(finetune_lr, pretraining_epochs, pretrain_lr,
                            contraction_level, training_epochs,
                            pretrain_batch_size, finetune_batch_size,
                            hidden_layers_sizes, finetune_lr_decay, seed,
                            shuffle_seed, gradient)
    (train_x, train_y), valid_set, (test_x, test_y) = \
        read_data(dataset, log) if datasets is None else datasets
    checks.stacked_data(len(train_x), pretrain_batch_size,
                        finetune_batch_size, theano.config.floatX,
                        finetune_lr=finetune_lr, pretrain_lr=pretrain_lr,
                        contraction_level=contraction_level)
    resources.check_memory(resources.stacked_needs(
        train_x.shape[1], hidden_layers_sizes,
        dict(pretrain_batch_size=pretrain_batch_size,
             finetune_batch_size=finetune_batch_size),
        train_x.dtype.itemsize))
    train_set = shared_dataset((train_x, train_y))
    kind = pretraining_kind(pretrain, pretraining_epochs, contraction_level)
    sca = ScA(numpy_rng=numpy.random.RandomState(seed),
              n_ins=train_x.shape[1], hidden_layers_sizes=hidden_layers_sizes)
    print('MLP %s, %s' % (architecture(train_x.shape[1], hidden_layers_sizes),
                          PRETRAINING_NAMES[kind]), file=log, flush=True)

    # 1. pre-training
    pretraining_costs, pretraining_time, pretrained = [], 0.0, None
    if kind != 'none':
        pretraining_costs, pretraining_time = pretrain_layers(
            sca, train_set[0], pretrain_batch_size, pretraining_epochs,
            contraction_level, pretrain_lr,
            numpy.random.RandomState(shuffle_seed), log, gradient)
        # the first layer as pre-training left it
        pretrained = tuple(p.get_value().astype(numpy.float64)
                           for p in sca.sigmoid_layers[0].params)
    # 2. fine-tuning, which keeps the parameters of the best validation error
    outcome = finetune(sca, train_set, valid_set, finetune_batch_size,
                       finetune_lr, finetune_lr_decay, training_epochs,
                       numpy.random.RandomState(shuffle_seed), log)
    # 3. the test set, read once, with those parameters
    wrong = sca.wrong_digits(test_x, test_y)
    print('done: best validation error %.2f %% (epoch %d of %d run)  test '
          'error %.2f %% (%d of %d)  pre-training %.1f min  fine-tuning '
          '%.1f min' % (outcome['best_validation_error'] * 100,
                        outcome['best_epoch'], outcome['epochs_run'],
                        wrong.mean() * 100, wrong.sum(), len(wrong),
                        pretraining_time / 60,
                        outcome['finetuning_time'] / 60),
          file=log, flush=True)
    return ScAResult(sca, kind, pretraining_costs, pretraining_time, outcome,
                     wrong, pretrained)


test_ScA.__test__ = False  # a training function, not a pytest test


if __name__ == '__main__':
    sys.exit(commands.scA(test_ScA))
