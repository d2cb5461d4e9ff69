"""Multi-class logistic regression with Theano, trained by minibatch SGD.

The classifier of the tutorial series, and its data loader:

    P(Y = i | x, W, b) = softmax_i(x W + b)                            (1)
    y_pred = argmax_i P(Y = i | x, W, b)                               (2)
    NLL = - mean_n log P(Y = y_n | x_n, W, b)                          (3)

``sgd_optimization_mnist`` trains it on raw MNIST pixels with early
stopping on the validation set (the tutorial reports about 7.5 % test
error); ``load_data`` gives the other tutorials MNIST as shared variables.

    python logistic_sgd.py             # train; writes best_model.npz
    python logistic_sgd.py --predict   # classify test digits with it
"""
import argparse
import inspect
import os
import sys
import time

# the stack first: without one, this says what to do
from backend import theano, T, softmax
import numpy

import mnist_data
from utils import atomic_write


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


def read_data(dataset=mnist_data.DEFAULT_PATH):
    """MNIST as numpy arrays ((train_x, train_y), (valid_x, valid_y),
    (test_x, test_y)).

    A missing file named mnist.pkl.gz is fetched first (mnist_data.py);
    any other missing name is an error, not a download. The file is read
    with a restricted unpickler and checked; problems raise
    mnist_data.DatasetError.
    """
    if os.path.basename(dataset) == 'mnist.pkl.gz':
        mnist_data.ensure_mnist(dataset)
    return mnist_data.read_mnist(dataset)


def load_data(dataset=mnist_data.DEFAULT_PATH):
    """MNIST as [(train_x, train_y), (valid_x, valid_y), (test_x, test_y)]
    of shared variables (see read_data and shared_dataset)."""
    return [shared_dataset(pair) for pair in read_data(dataset)]


def save_model(classifier, path):
    """Write the classifier's W and b to an .npz file, atomically."""
    with atomic_write(path) as f:
        numpy.savez(f, W=classifier.W.get_value(), b=classifier.b.get_value())


def load_model(path, input=None):
    """A LogisticRegression with the W and b saved by save_model."""
    with numpy.load(path, allow_pickle=False) as saved:
        W, b = saved['W'], saved['b']
    floatX = theano.config.floatX
    return LogisticRegression(
        input=T.matrix('x') if input is None else input,
        n_in=W.shape[0], n_out=W.shape[1],
        W=theano.shared(W.astype(floatX), name='W', borrow=True),
        b=theano.shared(b.astype(floatX), name='b', borrow=True))


def sgd_optimization_mnist(learning_rate=0.13, n_epochs=1000,
                           dataset=mnist_data.DEFAULT_PATH, batch_size=600,
                           model_path='best_model.npz', datasets=None,
                           log=None):
    """Train LogisticRegression by minibatch SGD with early stopping.

    Early stopping as in the tutorial: look at the validation error every
    ``validation_frequency`` minibatches; a new best that improves on the
    old by more than 0.5 % extends the patience to twice the iterations
    done so far; stop when the iterations reach the patience (at least
    5,000 minibatches) or after n_epochs. The test error is measured at
    each new best, and the best model is written to ``model_path`` (None:
    not written).

    datasets: the output of load_data, or any list of three (x, y) pairs
        of shared data (e.g. learnt features); default load_data(dataset).
    Returns (best_validation_error, test_error, classifier), errors as
    fractions.
    """
    log = sys.stdout if log is None else log
    if datasets is None:
        datasets = load_data(dataset)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = datasets

    def n_batches(data_x):
        return max(1, data_x.get_value(borrow=True).shape[0] // batch_size)

    n_train_batches = n_batches(train_x)
    n_valid_batches = n_batches(valid_x)
    n_test_batches = n_batches(test_x)
    n_in = train_x.get_value(borrow=True).shape[1]

    index = T.lscalar('index')
    x = T.matrix('x')
    y = T.ivector('y')
    classifier = LogisticRegression(input=x, n_in=n_in, n_out=10)
    cost = classifier.negative_log_likelihood(y)

    def minibatch(data, i):
        return data[i * batch_size:(i + 1) * batch_size]

    def error_function(data_x, data_y):
        return theano.function(
            [index], classifier.errors(y),
            givens={x: minibatch(data_x, index), y: minibatch(data_y, index)})

    test_model = error_function(test_x, test_y)
    validate_model = error_function(valid_x, valid_y)
    g_W, g_b = T.grad(cost=cost, wrt=[classifier.W, classifier.b])
    step = numpy.asarray(learning_rate, dtype=theano.config.floatX)
    train_model = theano.function(
        [index], cost,
        updates=[(classifier.W, classifier.W - step * g_W),
                 (classifier.b, classifier.b - step * g_b)],
        givens={x: minibatch(train_x, index), y: minibatch(train_y, index)})

    patience = 5000  # minibatches to look at, at least
    patience_increase = 2
    improvement_threshold = 0.995  # a relative improvement worth waiting for
    validation_frequency = min(n_train_batches, patience // 2)

    best_validation_loss = numpy.inf
    test_score = numpy.nan
    start_time = time.perf_counter()
    done_looping = False
    epoch = 0
    while epoch < n_epochs and not done_looping:
        epoch += 1
        for minibatch_index in range(n_train_batches):
            train_model(minibatch_index)
            iteration = (epoch - 1) * n_train_batches + minibatch_index
            if (iteration + 1) % validation_frequency == 0:
                this_validation_loss = numpy.mean(
                    [validate_model(i) for i in range(n_valid_batches)])
                print('epoch %d  minibatch %d/%d  validation_error %.3f %%'
                      % (epoch, minibatch_index + 1, n_train_batches,
                         this_validation_loss * 100), file=log, flush=True)
                if this_validation_loss < best_validation_loss:
                    if (this_validation_loss <
                            best_validation_loss * improvement_threshold):
                        patience = max(patience,
                                       iteration * patience_increase)
                    best_validation_loss = this_validation_loss
                    test_score = numpy.mean(
                        [test_model(i) for i in range(n_test_batches)])
                    print('    new best: test_error %.3f %%'
                          % (test_score * 100), file=log, flush=True)
                    if model_path is not None:
                        save_model(classifier, model_path)
            if patience <= iteration:
                done_looping = True
                break
    elapsed = time.perf_counter() - start_time
    print('done: best validation_error %.3f %%  test_error %.3f %%  '
          '%d epochs  %.1f s (%.1f epochs/s)'
          % (best_validation_loss * 100, test_score * 100, epoch, elapsed,
             epoch / elapsed), file=log, flush=True)
    return best_validation_loss, test_score, classifier


sgd_optimization_mnist.__test__ = False


def predict(model_path='best_model.npz', dataset=mnist_data.DEFAULT_PATH,
            n=10):
    """Labels the saved model predicts for the first n test digits."""
    classifier = load_model(model_path)
    predict_model = theano.function([classifier.input], classifier.y_pred)
    test_x, _ = load_data(dataset)[2]
    return predict_model(test_x.get_value(borrow=True)[:n])


def main(argv=None):
    defaults = {name: p.default for name, p in
                inspect.signature(sgd_optimization_mnist).parameters.items()}
    parser = argparse.ArgumentParser(
        description='Logistic regression on raw MNIST pixels, with early '
                    'stopping on the validation set.')
    parser.add_argument('--learning-rate', type=float,
                        default=defaults['learning_rate'],
                        help='SGD step size (default: %(default)s)')
    parser.add_argument('--epochs', type=int, dest='n_epochs',
                        default=defaults['n_epochs'],
                        help='most epochs to train (default: %(default)s)')
    parser.add_argument('--batch-size', type=int,
                        default=defaults['batch_size'],
                        help='examples per minibatch (default: %(default)s)')
    parser.add_argument('--dataset', default=defaults['dataset'],
                        help='the mnist.pkl.gz file; fetched when missing '
                             '(default: data/mnist.pkl.gz)')
    parser.add_argument('--model-path', default=defaults['model_path'],
                        help='where the best model is written (default: '
                             '%(default)s)')
    parser.add_argument('--predict', action='store_true',
                        help='do not train: print what the saved model '
                             'predicts for the first 10 test digits')
    args = parser.parse_args(argv)
    if args.predict and not os.path.exists(args.model_path):
        print('error: no saved model at %s: train one first with '
              '`python logistic_sgd.py`' % args.model_path, file=sys.stderr)
        return 2
    try:
        if args.predict:
            print('predicted labels of the first 10 test digits:',
                  predict(args.model_path, args.dataset))
        else:
            sgd_optimization_mnist(
                learning_rate=args.learning_rate, n_epochs=args.n_epochs,
                dataset=args.dataset, batch_size=args.batch_size,
                model_path=args.model_path)
    except mnist_data.DatasetError as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
