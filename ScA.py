"""Stacked contractive auto-encoders: CAE pre-training of a deep MLP.

A multi-layer perceptron with sigmoid hidden layers

    h_0 = x,   h_k = s(h_{k-1} W_k + b_k)  (k = 1..K),
    P(Y | x) = softmax(h_K V + c)

is trained in two phases (as the stacked denoising auto-encoders of the
tutorial series are, with cA in place of dA):

1. Pre-training, greedy and layer by layer: hidden layer k is the encoder
   of a contractive auto-encoder (cA.py) whose input is h_{k-1}, the
   output of the layers below, and which minimises on the training set

       mean_x L_rec(h_{k-1}, z_k) + lambda * mean_x ||dh_k / dh_{k-1}||_F^2

   by SGD on (W_k, b_k, b'_k) alone: the layers below stay fixed. The cA
   is built with the layer's own shared W_k and b_k, so training it *is*
   training the MLP's layer (no copy); b'_k, the reconstruction bias, is
   the cA's own and is dropped afterwards.
2. Fine-tuning: the whole MLP, with a logistic regression on top, is
   trained by SGD on the negative log-likelihood of the labels, with
   early stopping on the validation set.

``pretrain=False`` skips phase 1: the same MLP (the same initial weights,
drawn from the same seed) fine-tuned from its random initialisation with
the same budget, the baseline of a fair comparison.

    python ScA.py                      # pre-train and fine-tune one model
    python ScA.py --no-pretrain        # the same MLP from random weights
    python ScA.py --compare            # both, for 1000 and 1000-1000
    python ScA.py --help               # every hyperparameter

``--compare`` writes cA_plots/ScA_comparison.json and prints a Markdown
table of test and validation errors and times.
"""
import argparse
import inspect
import json
import os
import platform
import signal
import sys
import time

if __name__ == '__main__':
    # until main() runs, Ctrl-C ends the process at once (nothing is
    # written while the modules load), without a traceback
    signal.signal(signal.SIGINT, signal.SIG_DFL)

# the stack first: without one, this says what to do
from backend import theano, T, sigmoid
import numpy

import cA as cA_module
import cli
import mnist_data
import outputs
from cA import cA
from checks import ConfigError, is_integer
from logistic_sgd import LogisticRegression, load_data
from mlp import HiddenLayer
from outputs import atomic_write


# examples per call of the compiled validation and test functions
EVAL_BATCH_SIZE = 1000
COMPARISON_NAME = 'ScA_comparison.json'


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
        errors: the fraction of the minibatch misclassified.
    """

    def __init__(self, numpy_rng, n_ins=784, hidden_layers_sizes=(1000,),
                 n_outs=10):
        self.n_layers = len(hidden_layers_sizes)
        if self.n_layers < 1:
            raise ConfigError('an ScA needs at least one hidden layer')
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
        self.errors = self.logLayer.errors(self.y)

    def pretraining_functions(self, train_set_x, batch_size,
                              contraction_level=0.1, learning_rate=0.01,
                              gradient='fused'):
        """One compiled SGD step per layer, bottom first.

        Function k takes a minibatch index, trains cA k on minibatch
        ``index`` of the shared train_set_x and returns [cost, mean L_rec,
        L_jacob] of that minibatch before the step (cost = mean L_rec +
        contraction_level * L_jacob, in nats per example). Only cA k's W,
        b and b' move: the input of layer k is computed by the layers
        below, which are left unchanged.

        gradient: 'fused' (cA.get_fused_cost_updates, the fast one) or
        'T.grad' (cA.get_cost_updates); the same math.
        """
        index = T.lscalar('index')
        functions = []
        for ca in self.cA_layers:
            get_updates = (ca.get_fused_cost_updates if gradient == 'fused'
                           else ca.get_cost_updates)
            cost, updates = get_updates(contraction_level=contraction_level,
                                        learning_rate=learning_rate)
            functions.append(theano.function(
                [index], [cost, T.mean(ca.L_rec), ca.L_jacob],
                updates=updates,
                givens={self.x: train_set_x[index * batch_size:
                                            (index + 1) * batch_size]}))
        return functions

    def build_finetune_functions(self, datasets, batch_size, learning_rate):
        """Compiled fine-tuning functions: (train_fn, valid_score,
        test_score).

        datasets: three (x, y) pairs of shared data, as load_data returns.
        learning_rate: a number, or a shared scalar (whose value can then
            be changed between calls, e.g. to decay it).
        train_fn(index): one SGD step of every parameter on training
            minibatch ``index``; returns its mean NLL before the step.
        valid_score(), test_score(): the error rate (a fraction) on the
            whole validation or test set, in chunks of EVAL_BATCH_SIZE.
        """
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = datasets
        index = T.lscalar('index')
        if not isinstance(learning_rate, T.Variable):
            learning_rate = T.constant(learning_rate,
                                       dtype=theano.config.floatX)
        gparams = T.grad(self.finetune_cost, self.params)
        updates = [(param, param - learning_rate * gparam)
                   for param, gparam in zip(self.params, gparams)]

        def rows(data, size):
            return data[index * size:(index + 1) * size]

        train_fn = theano.function(
            [index], self.finetune_cost, updates=updates,
            givens={self.x: rows(train_x, batch_size),
                    self.y: rows(train_y, batch_size)})

        n_wrong = self.errors * T.cast(self.y.shape[0], theano.config.floatX)

        def error_rate_function(data_x, data_y):
            n = data_x.get_value(borrow=True).shape[0]
            count = theano.function(
                [index], n_wrong,
                givens={self.x: rows(data_x, EVAL_BATCH_SIZE),
                        self.y: rows(data_y, EVAL_BATCH_SIZE)})
            n_chunks = -(-n // EVAL_BATCH_SIZE)

            def score():
                return float(sum(count(i) for i in range(n_chunks)) / n)
            return score

        return (train_fn, error_rate_function(valid_x, valid_y),
                error_rate_function(test_x, test_y))


class ScAResult(object):
    """What test_ScA returns.

    sca: the model, with the parameters of its best validation error.
    summary: a JSON-ready dict: the errors (fractions), the times
        (seconds), the epochs and the hyperparameters of the run.
    pretraining_costs: per layer, an (epochs, 3) array of the per-epoch
        means of [cost, L_rec, L_jacob] (empty without pre-training).
    validation_errors: the validation error after each fine-tuning epoch.
    """

    def __init__(self, sca, summary, pretraining_costs, validation_errors):
        self.sca = sca
        self.summary = summary
        self.pretraining_costs = pretraining_costs
        self.validation_errors = validation_errors


def check_settings(finetune_lr, pretraining_epochs, pretrain_lr,
                   contraction_level, training_epochs, batch_size,
                   hidden_layers_sizes, finetune_lr_decay, seed):
    """Raise ConfigError for values training cannot use."""
    try:
        sizes = list(hidden_layers_sizes)
    except TypeError:
        sizes = None
    if not sizes or not all(is_integer(n) and n >= 1 for n in sizes):
        raise ConfigError('hidden_layers_sizes must be a non-empty list of '
                          'positive integers, got %r'
                          % (hidden_layers_sizes,))
    if not is_integer(pretraining_epochs) or pretraining_epochs < 0:
        raise ConfigError('pretraining_epochs must be an integer >= 0, got '
                          '%r' % (pretraining_epochs,))
    # the pre-training values, checked by cA's own rules
    cA_module.check_settings(learning_rate=pretrain_lr,
                             training_epochs=max(pretraining_epochs, 1),
                             batch_size=batch_size,
                             contraction_level=contraction_level,
                             n_hidden=sizes[0], seed=seed, gradient='fused')
    if not is_integer(training_epochs) or training_epochs < 1:
        raise ConfigError('training_epochs (the fine-tuning budget) must be '
                          'a positive integer, got %r' % (training_epochs,))
    if not (numpy.isfinite(finetune_lr) and finetune_lr > 0):
        raise ConfigError('finetune_lr must be a positive finite number, '
                          'got %r' % (finetune_lr,))
    if not (numpy.isfinite(finetune_lr_decay) and
            0 < finetune_lr_decay <= 1):
        raise ConfigError('finetune_lr_decay must be in (0, 1], got %r'
                          % (finetune_lr_decay,))
    if not is_integer(seed) or seed < 0:
        raise ConfigError('seed must be an integer >= 0, got %r' % (seed,))


def _n_rows(shared_x):
    return shared_x.get_value(borrow=True).shape[0]


def pretrain_layers(sca, train_set_x, batch_size, epochs, contraction_level,
                    learning_rate, log):
    """Greedy layer-wise CAE pre-training; prints one line per epoch.

    Returns (per layer an (epochs, 3) array of epoch means of [cost, L_rec,
    L_jacob], seconds spent training).
    """
    n_batches = -(-_n_rows(train_set_x) // batch_size)  # last may be short
    functions = sca.pretraining_functions(
        train_set_x, batch_size, contraction_level=contraction_level,
        learning_rate=learning_rate)
    all_costs = []
    start = time.perf_counter()
    for k, train_layer in enumerate(functions):
        costs = numpy.zeros((epochs, 3))
        layer_start = time.perf_counter()
        for epoch in range(epochs):
            epoch_start = time.perf_counter()
            batch_costs = numpy.array([train_layer(i)
                                       for i in range(n_batches)])
            costs[epoch] = batch_costs.mean(axis=0)
            print('pre-training layer %d/%d  epoch %d/%d  cost %.2f nats/'
                  'example (reconstruction %.2f + %g x ||J||_F^2 %.2f)  '
                  '%.1f s'
                  % (k + 1, len(functions), epoch + 1, epochs, costs[epoch, 0],
                     costs[epoch, 1], contraction_level, costs[epoch, 2],
                     time.perf_counter() - epoch_start), file=log, flush=True)
        print('pre-trained layer %d in %.1f s'
              % (k + 1, time.perf_counter() - layer_start),
              file=log, flush=True)
        all_costs.append(costs)
    return all_costs, time.perf_counter() - start


def finetune(sca, datasets, batch_size, learning_rate, lr_decay, epochs,
             log):
    """SGD on the whole MLP with early stopping on the validation set.

    The step size is learning_rate * lr_decay ** (epoch - 1). The early
    stopping is logistic_sgd's: the validation error is measured after
    every epoch; a new best that improves on the old by more than 0.5 %
    extends the patience to twice the minibatches done so far; training
    stops when the minibatches done reach the patience (at least 10
    epochs' worth) or after ``epochs`` epochs, the budget. The test error
    is measured at each new best, and the best parameters are restored at
    the end.

    Returns a dict: best_validation_error, test_error, best_epoch,
    epochs_run, finetuning_time, validation_errors.
    """
    floatX = theano.config.floatX
    lr = theano.shared(numpy.asarray(learning_rate, dtype=floatX),
                       name='finetune_lr')
    train_fn, valid_score, test_score = sca.build_finetune_functions(
        datasets, batch_size, lr)
    n_batches = -(-_n_rows(datasets[0][0]) // batch_size)

    patience = 10 * n_batches  # minibatches to look at, at least
    patience_increase = 2
    improvement_threshold = 0.995
    best_validation, test_error, best_epoch = numpy.inf, numpy.nan, 0
    best_params = None
    validation_errors = []
    iteration = 0
    epoch = 0
    start = time.perf_counter()
    while epoch < epochs and iteration < patience:
        epoch += 1
        epoch_start = time.perf_counter()
        lr.set_value(numpy.asarray(learning_rate * lr_decay ** (epoch - 1),
                                   dtype=floatX))
        nll = numpy.mean([train_fn(i) for i in range(n_batches)])
        iteration += n_batches
        validation = valid_score()
        validation_errors.append(validation)
        print('fine-tuning epoch %d/%d  train NLL %.4f nats/example  '
              'validation error %.2f %%  lr %.4g  %.1f s'
              % (epoch, epochs, nll, validation * 100, lr.get_value(),
                 time.perf_counter() - epoch_start), file=log, flush=True)
        if validation < best_validation:
            if validation < best_validation * improvement_threshold:
                patience = max(patience, iteration * patience_increase)
            best_validation, best_epoch = validation, epoch
            best_params = [p.get_value() for p in sca.params]
            test_error = test_score()
            print('    new best: test error %.2f %%' % (test_error * 100),
                  file=log, flush=True)
    elapsed = time.perf_counter() - start
    if best_params is not None:
        for param, value in zip(sca.params, best_params):
            param.set_value(value)
    return {'best_validation_error': float(best_validation),
            'test_error': float(test_error), 'best_epoch': best_epoch,
            'epochs_run': epoch, 'finetuning_time': elapsed,
            'validation_errors': validation_errors}


def test_ScA(finetune_lr=0.1, pretraining_epochs=10, pretrain_lr=0.01,
             contraction_level=0.1, training_epochs=20,
             dataset=mnist_data.DEFAULT_PATH, batch_size=10,
             hidden_layers_sizes=(1000,), finetune_lr_decay=0.95, seed=89677,
             pretrain=True, datasets=None, log=None):
    """Pre-train an ScA layer by layer as CAEs, then fine-tune it.

    finetune_lr, finetune_lr_decay: the fine-tuning step size of epoch e is
        finetune_lr * finetune_lr_decay ** (e - 1).
    pretraining_epochs, pretrain_lr, contraction_level: each layer's CAE
        training (passes over the training set, SGD step, lambda).
    training_epochs: the fine-tuning budget, most epochs (early stopping
        may end it sooner).
    batch_size: minibatch size of both phases.
    hidden_layers_sizes: hidden layer sizes, bottom first.
    seed: seed of the RandomState that draws the initial weights (the same
        weights with and without pre-training).
    pretrain: False fine-tunes from the random initialisation.
    datasets: load_data's output, to share one copy between runs; default
        load_data(dataset).
    log: where the progress lines go (default sys.stdout).

    Returns an ScAResult.
    """
    log = sys.stdout if log is None else log
    hidden_layers_sizes = tuple(hidden_layers_sizes) \
        if not isinstance(hidden_layers_sizes, (str, bytes)) \
        else hidden_layers_sizes
    check_settings(finetune_lr, pretraining_epochs, pretrain_lr,
                   contraction_level, training_epochs, batch_size,
                   hidden_layers_sizes, finetune_lr_decay, seed)
    if datasets is None:
        datasets = load_data(dataset)
    train_set_x = datasets[0][0]
    n_train = _n_rows(train_set_x)
    if batch_size > n_train:
        raise ConfigError('batch_size %d is larger than the training set '
                          '(%d examples)' % (batch_size, n_train))
    n_ins = train_set_x.get_value(borrow=True).shape[1]
    pretrain = pretrain and pretraining_epochs > 0

    sca = ScA(numpy_rng=numpy.random.RandomState(seed), n_ins=n_ins,
              hidden_layers_sizes=hidden_layers_sizes, n_outs=10)
    print('MLP %s, %s' % ('-'.join(str(n) for n in
                                   (n_ins,) + hidden_layers_sizes + (10,)),
                          'CAE pre-training' if pretrain
                          else 'random initialisation (no pre-training)'),
          file=log, flush=True)
    pretraining_costs, pretraining_time = [], 0.0
    if pretrain:
        pretraining_costs, pretraining_time = pretrain_layers(
            sca, train_set_x, batch_size, pretraining_epochs,
            contraction_level, pretrain_lr, log)
    outcome = finetune(sca, datasets, batch_size, finetune_lr,
                       finetune_lr_decay, training_epochs, log)
    print('done: best validation error %.2f %% (epoch %d of %d run)  test '
          'error %.2f %%  pre-training %.1f min  fine-tuning %.1f min'
          % (outcome['best_validation_error'] * 100, outcome['best_epoch'],
             outcome['epochs_run'], outcome['test_error'] * 100,
             pretraining_time / 60, outcome['finetuning_time'] / 60),
          file=log, flush=True)
    summary = {
        'hidden_layers_sizes': list(hidden_layers_sizes),
        'pretraining': 'CAE' if pretrain else 'none',
        'test_error': outcome['test_error'],
        'validation_error': outcome['best_validation_error'],
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
            'pretraining_epochs': pretraining_epochs if pretrain else 0,
            'pretrain_lr': pretrain_lr, 'contraction_level':
                contraction_level, 'batch_size': batch_size, 'seed': seed},
    }
    return ScAResult(sca, summary, pretraining_costs,
                     outcome['validation_errors'])


test_ScA.__test__ = False  # a training function, not a pytest test


def model_name(hidden_layers_sizes):
    sizes = list(hidden_layers_sizes)
    return 'MLP %s (%d hidden layer%s)' % (
        '-'.join(str(n) for n in sizes), len(sizes),
        '' if len(sizes) == 1 else 's')


def markdown_table(runs):
    """The comparison as a Markdown table (errors in %, times in min)."""
    lines = ['| model | pre-training | test error | validation error | '
             'pre-training time | fine-tuning time | best epoch / run |',
             '|---|---|---:|---:|---:|---:|---:|']
    for run in runs:
        lines.append('| %s | %s | %.2f %% | %.2f %% | %.1f min | %.1f min | '
                     '%d / %d |'
                     % (model_name(run['hidden_layers_sizes']),
                        run['pretraining'], run['test_error'] * 100,
                        run['validation_error'] * 100,
                        run['pretraining_time'] / 60,
                        run['finetuning_time'] / 60, run['best_epoch'],
                        run['epochs_run']))
    return '\n'.join(lines)


def _write_json(report, path):
    with atomic_write(path, 'w') as f:
        json.dump(report, f, indent=1)
        f.write('\n')


def compare(finetune_lr=0.1, pretraining_epochs=10, pretrain_lr=0.01,
            contraction_level=0.1, training_epochs=20,
            dataset=mnist_data.DEFAULT_PATH, batch_size=10,
            architectures=((1000,), (1000, 1000)), finetune_lr_decay=0.95,
            seed=89677, output_folder='cA_plots', log=None):
    """For each architecture, the same MLP fine-tuned from random weights
    and from CAE pre-training, with the same fine-tuning budget.

    The hyperparameters are test_ScA's; architectures is a list of
    hidden_layers_sizes. Writes output_folder/ScA_comparison.json after
    every run (so that an interrupted comparison keeps what it finished;
    ``complete`` says whether all runs are in) and prints the Markdown
    table and the total time at the end. Returns the report (a dict).
    """
    log = sys.stdout if log is None else log
    try:
        architectures = [tuple(a) for a in architectures]
    except TypeError:
        raise ConfigError('architectures must be a list of lists of layer '
                          'sizes, got %r' % (architectures,))
    if not architectures:
        raise ConfigError('architectures is empty: give at least one')
    for sizes in architectures:
        check_settings(finetune_lr, pretraining_epochs, pretrain_lr,
                       contraction_level, training_epochs, batch_size,
                       sizes, finetune_lr_decay, seed)
    if pretraining_epochs < 1:
        raise ConfigError('a comparison needs pretraining_epochs >= 1')
    folder = outputs.OutputFolder(output_folder)
    folder.__enter__()
    path = os.path.join(output_folder, COMPARISON_NAME)
    start = time.perf_counter()
    datasets = load_data(dataset)
    hyperparameters = {
        'finetune_lr': finetune_lr, 'finetune_lr_decay': finetune_lr_decay,
        'training_epochs': training_epochs,
        'pretraining_epochs': pretraining_epochs,
        'pretrain_lr': pretrain_lr, 'contraction_level': contraction_level,
        'batch_size': batch_size, 'seed': seed,
        'architectures': [list(a) for a in architectures],
        'dataset': os.path.abspath(dataset)}
    report = {'hyperparameters': hyperparameters, 'runs': [],
              'complete': False, 'total_time': None,
              'machine': {'python': platform.python_version(),
                          'floatX': theano.config.floatX,
                          'cpus': os.cpu_count()}}
    for sizes in architectures:
        for pretrain in (False, True):
            print('\n== %s, %s ==' % (model_name(sizes),
                                      'CAE pre-training' if pretrain
                                      else 'random initialisation'),
                  file=log, flush=True)
            result = test_ScA(
                finetune_lr=finetune_lr,
                pretraining_epochs=pretraining_epochs,
                pretrain_lr=pretrain_lr,
                contraction_level=contraction_level,
                training_epochs=training_epochs, dataset=dataset,
                batch_size=batch_size, hidden_layers_sizes=sizes,
                finetune_lr_decay=finetune_lr_decay, seed=seed,
                pretrain=pretrain, datasets=datasets, log=log)
            run = dict(result.summary)
            run['model'] = model_name(sizes)
            report['runs'].append(run)
            report['total_time'] = time.perf_counter() - start
            _write_json(report, path)
    report['complete'] = True
    report['total_time'] = time.perf_counter() - start
    _write_json(report, path)
    print('\n' + markdown_table(report['runs']), file=log)
    print('\nfine-tuning: SGD lr %g x %g^(epoch-1), batch %d, at most %d '
          'epochs, early stopping on validation; pre-training: %d epochs '
          'per layer, lr %g, contraction level %g (fused gradient); seed %d'
          % (finetune_lr, finetune_lr_decay, batch_size, training_epochs,
             pretraining_epochs, pretrain_lr, contraction_level, seed),
          file=log)
    print('total time %.1f min (%.0f s); results written to %s'
          % (report['total_time'] / 60, report['total_time'], path),
          file=log, flush=True)
    return report


def layer_sizes(text):
    """'1000-1000' -> (1000, 1000), for --architectures."""
    try:
        sizes = tuple(int(part) for part in text.split('-'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            'an architecture is hidden sizes joined by "-", e.g. 1000-1000; '
            'got %r' % text)
    return sizes


# options that only one of the two modes uses
SINGLE_ONLY = ('hidden_layers_sizes', 'pretrain')
COMPARE_ONLY = ('architectures', 'output_folder')


def parse_args(argv=None):
    """The command line; the defaults come from test_ScA's and compare's
    signatures."""
    defaults = {name: p.default for name, p
                in inspect.signature(test_ScA).parameters.items()}
    defaults.update({name: p.default for name, p
                     in inspect.signature(compare).parameters.items()
                     if name in COMPARE_ONLY})
    parser = argparse.ArgumentParser(
        description='Stacked contractive auto-encoders on MNIST: pre-train '
                    'an MLP layer by layer as CAEs, fine-tune it with early '
                    'stopping, and compare with the same MLP trained from '
                    'random weights (--compare).')

    def add(flag, dest, kind, text, **kwargs):
        parser.add_argument(flag, dest=dest, type=kind,
                            default=defaults[dest],
                            help=text + ' (default: %(default)s)', **kwargs)

    parser.add_argument('--compare', action='store_true',
                        help='run the comparison: for each of '
                             '--architectures, fine-tune from random '
                             'weights and from CAE pre-training; writes '
                             '<output-folder>/%s and prints a table'
                             % COMPARISON_NAME)
    add('--pretraining-epochs', 'pretraining_epochs', int,
        'CAE training epochs of each layer')
    add('--pretrain-lr', 'pretrain_lr', float,
        'SGD step size of the pre-training')
    add('--contraction-level', 'contraction_level', float,
        'lambda, the weight of the Jacobian penalty in pre-training')
    add('--finetune-lr', 'finetune_lr', float,
        'SGD step size of the first fine-tuning epoch')
    add('--finetune-lr-decay', 'finetune_lr_decay', float,
        'the fine-tuning step size is multiplied by this after every epoch')
    add('--finetune-epochs', 'training_epochs', int,
        'the fine-tuning budget: most epochs (early stopping on the '
        'validation set may stop sooner)', metavar='EPOCHS')
    add('--batch-size', 'batch_size', int,
        'minibatch size of pre-training and fine-tuning')
    add('--seed', 'seed', int,
        'seed of the initial weights (the same with and without '
        'pre-training)')
    parser.add_argument('--dataset', default=defaults['dataset'],
                        help='the mnist.pkl.gz file; fetched when missing '
                             '(default: data/mnist.pkl.gz)')
    add('--hidden-layers-sizes', 'hidden_layers_sizes', int,
        'without --compare: the hidden layer sizes, bottom first',
        nargs='+', metavar='N')
    parser.add_argument('--no-pretrain', dest='pretrain',
                        action='store_false',
                        help='without --compare: skip pre-training, '
                             'fine-tune from the random initialisation')
    add('--architectures', 'architectures', layer_sizes,
        'with --compare: the MLPs to compare, each as hidden sizes joined '
        'by "-"', nargs='+', metavar='SIZES')
    add('--output-folder', 'output_folder', str,
        'with --compare: where %s is written' % COMPARISON_NAME)
    return parser.parse_args(argv)


def _plain(value):
    """value with its lists turned into tuples, to compare with a default."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def run(compare_mode, **kwargs):
    """Dispatch the command line to compare or test_ScA; ConfigError for
    an option of the other mode."""
    flags = {'hidden_layers_sizes': '--hidden-layers-sizes',
             'pretrain': '--no-pretrain', 'architectures': '--architectures',
             'output_folder': '--output-folder'}
    if compare_mode:
        function, owner, ignored = compare, test_ScA, SINGLE_ONLY
        message = '%s has no effect with --compare'
    else:
        function, owner, ignored = test_ScA, compare, COMPARE_ONLY
        message = '%s needs --compare'
    for name in ignored:
        value = kwargs.pop(name)
        default = inspect.signature(owner).parameters[name].default
        if _plain(value) != _plain(default):
            raise ConfigError(message % flags[name])
    function(**kwargs)


def main(argv=None):
    args = vars(parse_args(argv))
    compare_mode = args.pop('compare')
    return cli.main(lambda **_: run(compare_mode=compare_mode, **args),
                    cli.ArgumentParser(), [])


if __name__ == '__main__':
    sys.exit(main())
