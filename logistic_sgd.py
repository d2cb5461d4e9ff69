"""Multi-class logistic regression with Theano, trained by minibatch SGD.

The classifier of the tutorial series, and its data loader:

    P(Y = i | x, W, b) = softmax_i(x W + b)                            (1)
    y_pred = argmax_i P(Y = i | x, W, b)                               (2)
    NLL = - mean_n log P(Y = y_n | x_n, W, b)                          (3)

``sgd_optimization_mnist`` trains it on raw MNIST pixels with early
stopping on the validation set (the tutorial reports about 7.5 % test
error); ``load_data`` gives the other tutorials MNIST as shared variables;
``EarlyStopping`` is the tutorial's patience rule, which ScA.py's
fine-tuning uses too.

    .venv/bin/python logistic_sgd.py             # train; writes best_model.npz
    .venv/bin/python logistic_sgd.py --predict   # classify test digits with it
"""
import contextlib
import os
import sys
import time

if __name__ == '__main__':
    from machinery import start_script
    start_script(__file__)

# the stack first: without one, this says what to do
from machinery import backend
from machinery.backend import theano, T, softmax
import numpy

from machinery import checks
from machinery import commands
from machinery import mnist_data
from machinery import npz_files
from machinery import outputs

# the ten digits
N_CLASSES = 10


class LogisticRegression(object):
    """Logistic regression layer: W (n_in, n_out) and b (n_out,), both zero
    at the start; ``input`` is a symbolic (batch, n_in) matrix."""

    def __init__(self, input, n_in, n_out, W=None, b=None):
        floatX = theano.config.floatX
        if W is None:
            W = theano.shared(numpy.zeros((n_in, n_out), dtype=floatX),
                              name='W', borrow=True)
        if b is None:
            b = theano.shared(numpy.zeros(n_out, dtype=floatX),
                              name='b', borrow=True)
        self.W = W
        self.b = b
        self.p_y_given_x = softmax(T.dot(input, self.W) + self.b)  # (1)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)  # (2)
        self.params = [self.W, self.b]
        self.input = input

    def negative_log_likelihood(self, y):
        """Eq. (3): the mean over the minibatch, so the step size does not
        depend on the batch size. y: int vector of labels."""
        # log-probabilities (batch, n_out), indexed by each row's label
        log_p = T.log(self.p_y_given_x)
        return -T.mean(log_p[T.arange(y.shape[0]), y])

    def errors(self, y):
        """The fraction of the minibatch that is misclassified."""
        if y.ndim != self.y_pred.ndim:
            raise TypeError('y should have the same shape as self.y_pred',
                            ('y', y.type, 'y_pred', self.y_pred.type))
        if not y.dtype.startswith('int'):
            raise NotImplementedError('errors() needs integer labels, got %s'
                                      % y.dtype)
        return T.mean(T.neq(self.y_pred, y))


def shared_dataset(data_xy, borrow=True):
    """Put a pair (x, y) of arrays into shared variables.

    x is stored in floatX; y too (so that, as in the original, all of the
    data could live on a GPU, which only held floats), and is returned cast
    to int32, as labels must be integers to index with.
    """
    data_x, data_y = data_xy
    floatX = theano.config.floatX
    shared_x = theano.shared(numpy.asarray(data_x, dtype=floatX),
                             borrow=borrow)
    shared_y = theano.shared(numpy.asarray(data_y, dtype=floatX),
                             borrow=borrow)
    return shared_x, T.cast(shared_y, 'int32')


def read_data(dataset=mnist_data.DEFAULT_PATH, log=None):
    """MNIST as numpy arrays ((train_x, train_y), (valid_x, valid_y),
    (test_x, test_y)).

    A missing file named mnist.pkl.gz is fetched first; any other missing
    name is an error, not a download. The file is read with a restricted
    unpickler and checked; problems raise mnist_data.DatasetError
    (machinery/mnist_data.py). ``log``: where to say what is read (None:
    nowhere).
    """
    return mnist_data.read_or_fetch(dataset, log)


def load_data(dataset=mnist_data.DEFAULT_PATH, log=None):
    """MNIST as [(train_x, train_y), (valid_x, valid_y), (test_x, test_y)]
    of shared variables (see read_data and shared_dataset)."""
    return [shared_dataset(pair) for pair in read_data(dataset, log)]


def save_model(classifier, path):
    """Write the classifier's W and b to an .npz file, atomically."""
    with outputs.atomic_write(path) as f:
        numpy.savez(f, W=classifier.W.get_value(), b=classifier.b.get_value())


TRAIN_ONE = 'train one with `python logistic_sgd.py`, or give --model-path'


def check_model_exists(path):
    if not os.path.exists(path):
        raise checks.ConfigError('no saved model at %s: %s' % (path,
                                                              TRAIN_ONE))


def load_model(path, n_in=28 * 28, n_out=N_CLASSES, input=None):
    """A LogisticRegression with the W (n_in, n_out) and b (n_out,) saved
    by save_model; ConfigError when the file is missing or not such a
    model (read without trusting it: machinery/npz_files.py)."""
    check_model_exists(path)
    try:
        saved = npz_files.read_arrays(path, {'W': (n_in, n_out),
                                             'b': (n_out,)})
    except (OSError, ValueError, outputs.OutputError) as e:
        raise checks.ConfigError('%s is not a model of logistic_sgd.py for '
                                 '%d inputs and %d classes (%s): %s' % (
                                     path, n_in, n_out,
                                     ' '.join(str(e).split()), TRAIN_ONE))
    floatX = theano.config.floatX
    return LogisticRegression(
        input=T.matrix('x') if input is None else input,
        n_in=n_in, n_out=n_out,
        W=theano.shared(saved['W'].astype(floatX), name='W', borrow=True),
        b=theano.shared(saved['b'].astype(floatX), name='b', borrow=True))


class EarlyStopping(object):
    """The tutorial's patience rule for early stopping.

    Training looks at the validation error from time to time (``update``).
    A new best that improves on the old one by more than 0.5 %
    (improvement_threshold) extends the patience to patience_increase
    times the minibatches done so far; training stops (``should_stop``)
    once the minibatches done reach the patience. The patience starts at
    ``patience`` minibatches, the least that training looks at.
    """

    def __init__(self, patience, patience_increase=2,
                 improvement_threshold=0.995):
        self.patience = patience
        self.patience_increase = patience_increase
        self.improvement_threshold = improvement_threshold
        self.best = numpy.inf

    def update(self, iteration, validation_error):
        """Record the validation error after ``iteration`` minibatches;
        True when it is a new best."""
        if validation_error >= self.best:
            return False
        if validation_error < self.best * self.improvement_threshold:
            self.patience = max(self.patience,
                                iteration * self.patience_increase)
        self.best = validation_error
        return True

    def should_stop(self, iteration):
        return self.patience <= iteration


def check_settings(learning_rate, n_epochs, batch_size):
    """ConfigError for a value sgd_optimization_mnist cannot train with."""
    checks.positive_number('learning_rate', learning_rate)
    checks.representable('learning_rate', learning_rate,
                         theano.config.floatX)
    checks.positive_int('n_epochs', n_epochs)
    checks.positive_int('batch_size', batch_size)


def sgd_optimization_mnist(learning_rate=0.13, n_epochs=1000,
                           dataset=mnist_data.DEFAULT_PATH, batch_size=600,
                           model_path='best_model.npz', datasets=None,
                           log=None):
    """Train LogisticRegression by minibatch SGD with early stopping.

    Early stopping is the tutorial's (EarlyStopping, starting with a
    patience of 5,000 minibatches), with a look at the validation error
    every ``validation_frequency`` minibatches, or after n_epochs. The test
    error is measured at each new best, and the best model is written to
    ``model_path`` (None: not written; its folder is checked, and held,
    before training).

    datasets: the output of load_data, or any list of three (x, y) pairs
        of shared data (e.g. learnt features); default load_data(dataset).
    Returns (best_validation_error, test_error, classifier), errors as
    fractions.
    """
    log = sys.stdout if log is None else log
    check_settings(learning_rate, n_epochs, batch_size)
    with contextlib.ExitStack() as stack:
        save_path = None
        if model_path is not None:
            outputs.check_file_path(model_path, '--model-path',
                                    'best_model.npz')
            stack.enter_context(outputs.OutputFolder(
                os.path.dirname(model_path) or '.', option='--model-path'))
            outputs.remove_dead_temporaries(model_path)
            outputs.note_replaced([model_path], 'an earlier run', log)
            # each new best goes beside model_path, which is replaced once
            # training ends: a stopped run leaves the earlier model alone
            stage = stack.enter_context(outputs.Staged([model_path]))
            save_path = stage.path(model_path)
        if datasets is None:
            datasets = load_data(dataset, log)
        return train_with_early_stopping(datasets, learning_rate, n_epochs,
                                         batch_size, save_path, log,
                                         model_path)



def train_with_early_stopping(datasets, learning_rate, n_epochs, batch_size,
                              save_path, log, model_path=None):
    """The loop of sgd_optimization_mnist: each new best model goes to
    save_path (None: nowhere), which becomes model_path at the end."""
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = datasets
    checks.batch_fits(batch_size, train_x.get_value(borrow=True).shape[0])

    def n_batches(data_x):
        return max(1, data_x.get_value(borrow=True).shape[0] // batch_size)

    n_train_batches, n_valid_batches, n_test_batches = (
        n_batches(data_x) for data_x in (train_x, valid_x, test_x))

    index, x, y = T.lscalar('index'), T.matrix('x'), T.ivector('y')
    n_in = train_x.get_value(borrow=True).shape[1]
    classifier = LogisticRegression(input=x, n_in=n_in, n_out=N_CLASSES)
    cost = classifier.negative_log_likelihood(y)

    def minibatch(data, i):
        return data[i * batch_size:(i + 1) * batch_size]

    def error_function(data_x, data_y):
        return theano.function(
            [index], classifier.errors(y),
            givens={x: minibatch(data_x, index), y: minibatch(data_y, index)})

    print('compiling the training and error functions with %s...'
          % backend.NAME, file=log, flush=True)
    compile_start = time.perf_counter()
    test_model = error_function(test_x, test_y)
    validate_model = error_function(valid_x, valid_y)
    g_W, g_b = T.grad(cost=cost, wrt=[classifier.W, classifier.b])
    step = numpy.asarray(learning_rate, dtype=theano.config.floatX)
    train_model = theano.function(
        [index], cost,
        updates=[(classifier.W, classifier.W - step * g_W),
                 (classifier.b, classifier.b - step * g_b)],
        givens={x: minibatch(train_x, index), y: minibatch(train_y, index)})
    print('compiled in %.1f s' % (time.perf_counter() - compile_start),
          file=log, flush=True)

    stopping = EarlyStopping(patience=5000)
    # look at least twice within the first patience
    validation_frequency = min(n_train_batches, stopping.patience // 2)
    test_score = numpy.nan
    start_time = time.perf_counter()
    epoch, done = 0, False
    while epoch < n_epochs and not done:
        epoch += 1
        for minibatch_index in range(n_train_batches):
            minibatch_cost = train_model(minibatch_index)
            checks.finite_cost(minibatch_cost, 'the cost at epoch %d, '
                               'minibatch %d' % (epoch, minibatch_index + 1),
                               '--learning-rate', learning_rate)
            iteration = (epoch - 1) * n_train_batches + minibatch_index
            if (iteration + 1) % validation_frequency == 0:
                validation_error = numpy.mean(
                    [validate_model(i) for i in range(n_valid_batches)])
                print('epoch %d  minibatch %d/%d  validation_error %.3f %%'
                      % (epoch, minibatch_index + 1, n_train_batches,
                         validation_error * 100), file=log, flush=True)
                if stopping.update(iteration, validation_error):
                    test_score = numpy.mean(
                        [test_model(i) for i in range(n_test_batches)])
                    print('    new best: test_error %.3f %%'
                          % (test_score * 100), file=log, flush=True)
                    if save_path is not None:
                        save_model(classifier, save_path)
            if stopping.should_stop(iteration):
                done = True
                break
    elapsed = time.perf_counter() - start_time
    print('done: best validation_error %.3f %%  test_error %.3f %%  '
          '%d epochs in %.1f s of training (%.1f epochs/s)%s'
          % (stopping.best * 100, test_score * 100, epoch, elapsed,
             epoch / elapsed, '' if model_path is None else
             '; the best model is in %s' % model_path),
          file=log, flush=True)
    return stopping.best, test_score, classifier


def predict(model_path='best_model.npz', dataset=mnist_data.DEFAULT_PATH,
            n=10, log=None):
    """Print the labels the saved model predicts for the first n test
    digits, beside the true ones; returns the predictions."""
    log = sys.stdout if log is None else log
    checks.positive_int('n', n)
    check_model_exists(model_path)  # before the data is read
    test_x, test_y = read_data(dataset)[2]
    # the data says what shapes a model of it has
    classifier = load_model(model_path, n_in=test_x.shape[1])
    predict_model = theano.function([classifier.input], classifier.y_pred)
    predicted = predict_model(test_x[:n].astype(theano.config.floatX))
    print('predicted labels of the first %d test digits: %s\n'
          'true labels:%s %s' % (len(predicted), predicted,
                                 ' ' * (35 + len(str(len(predicted)))),
                                 test_y[:n]), file=log, flush=True)
    return predicted


def train_or_predict(predict_only, model_path, dataset, **training):
    """What the command line does: train, or --predict with a saved model."""
    if predict_only:
        predict(model_path, dataset)
    else:
        sgd_optimization_mnist(model_path=model_path, dataset=dataset,
                               **training)


if __name__ == '__main__':
    sys.exit(commands.logistic_sgd(sgd_optimization_mnist, train_or_predict))
