"""logistic_sgd.py: the classifier against numpy, load_data, early stopping."""
import os

import numpy
import pytest

from machinery.backend import theano, T
from machinery import mnist_data
from logistic_sgd import (LogisticRegression, load_data, load_model,
                          sgd_optimization_mnist)
from conftest import run_script


def softmax(a):
    e = numpy.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def classifier_with_random_weights(n_in=6, n_out=4, seed=0):
    rng = numpy.random.RandomState(seed)
    x = T.matrix('x')
    clf = LogisticRegression(input=x, n_in=n_in, n_out=n_out)
    clf.W.set_value(rng.normal(size=(n_in, n_out)))
    clf.b.set_value(rng.normal(size=n_out))
    return clf, x, rng


def test_probabilities_nll_and_errors_match_numpy():
    clf, x, rng = classifier_with_random_weights()
    y = T.ivector('y')
    f = theano.function([x, y], [clf.p_y_given_x, clf.y_pred,
                                 clf.negative_log_likelihood(y),
                                 clf.errors(y)])
    inputs = rng.uniform(size=(8, 6))
    labels = rng.randint(0, 4, size=8).astype('int32')
    p, pred, nll, err = f(inputs, labels)
    expected_p = softmax(inputs @ clf.W.get_value() + clf.b.get_value())
    numpy.testing.assert_allclose(p, expected_p, rtol=1e-12)
    numpy.testing.assert_array_equal(pred, expected_p.argmax(axis=1))
    assert nll == pytest.approx(
        -numpy.mean(numpy.log(expected_p[numpy.arange(8), labels])), 1e-12)
    assert err == pytest.approx(numpy.mean(expected_p.argmax(1) != labels))


def test_errors_refuses_labels_of_the_wrong_shape_or_type():
    clf, _, _ = classifier_with_random_weights()
    with pytest.raises(TypeError):
        clf.errors(T.imatrix('y'))
    with pytest.raises(NotImplementedError):
        clf.errors(T.vector('y'))


def test_load_data_gives_shared_floatX_x_and_int32_y(tiny_mnist):
    expected = mnist_data.read_mnist(tiny_mnist)
    datasets = load_data(tiny_mnist)
    assert len(datasets) == 3
    for (x, y), (ex, ey) in zip(datasets, expected):
        assert isinstance(x, theano.compile.SharedVariable)
        assert x.dtype == theano.config.floatX and y.dtype == 'int32'
        numpy.testing.assert_array_equal(x.get_value(), ex)
        numpy.testing.assert_array_equal(y.eval(), ey)


@pytest.mark.slow
def test_early_stopping_learns_and_the_saved_model_loads_back(tiny_mnist,
                                                              tmp_path):
    model = str(tmp_path / 'best.npz')
    valid_error, test_error, _ = sgd_optimization_mnist(
        learning_rate=0.13, n_epochs=60, dataset=tiny_mnist, batch_size=20,
        model_path=model, log=open(os.devnull, 'w'))
    assert valid_error < 0.3 and test_error < 0.3  # chance is 0.9
    assert os.listdir(str(tmp_path)) == ['best.npz']
    # the saved model is the best one: its test error is the reported one
    (_, _), (_, _), (test_x, test_y) = mnist_data.read_mnist(tiny_mnist)
    saved = load_model(model)
    predicted = theano.function([saved.input], saved.y_pred)(test_x)
    assert numpy.mean(predicted != test_y) == pytest.approx(test_error)
    # and a fresh interpreter loads it back through the command line
    r = run_script(['logistic_sgd.py', '--predict', '--model-path', model,
                    '--dataset', tiny_mnist])
    assert r.returncode == 0, r.stderr
    assert str(predicted[:10]) in r.stdout


def test_predict_without_a_model_is_a_one_line_error(tiny_mnist, tmp_path):
    r = run_script(['logistic_sgd.py', '--predict', '--dataset', tiny_mnist,
                    '--model-path', str(tmp_path / 'none.npz')])
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.startswith('error:') and 'none.npz' in r.stderr


# ---- the command line: every mistake is one line, before any training -------

@pytest.mark.slow
@pytest.mark.parametrize('args, message', [
    (['--batch-size', '0'], 'error: batch_size must be a positive integer, '
                            'got 0'),
    (['--learning-rate', 'nan'], 'error: learning_rate must be a positive '
                                 'finite number, got nan'),
    (['--epochs', '-2'], 'error: n_epochs must be a positive integer, '
                         'got -2'),
    (['--epochs', 'x'], "error: argument --epochs: invalid int value: 'x'"),
    (['--batch-size', '100000'], 'error: batch_size 100000 is larger than '
                                 'the training set (230 examples)'),
])
def test_bad_settings_are_one_line(tiny_mnist, tmp_path, args, message):
    model = tmp_path / 'best.npz'
    r = run_script(['logistic_sgd.py', '--dataset', tiny_mnist,
                    '--model-path', str(model)] + args)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.startswith(message) and r.stderr.count('\n') == 1
    assert 'epoch' not in r.stdout
    assert not model.exists()


def test_a_model_path_that_cannot_be_written_fails_before_training(
        tiny_mnist, tmp_path):
    a_file = tmp_path / 'a_file'
    a_file.write_text('not a folder')
    r = run_script(['logistic_sgd.py', '--dataset', tiny_mnist,
                    '--model-path', str(a_file / 'best.npz')])
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr == ('error: cannot write to the output folder %s (a file is '
                        'in the way of the folder): choose another with '
                        '--model-path\n' % a_file)
    assert r.stdout == ''  # refused before reading the data


@pytest.mark.parametrize('contents, phrase', [
    (b'not a zip file', 'is not a model of logistic_sgd.py for 784 inputs '
                        'and 10 classes (not an .npz archive'),
    (b'', '(not an .npz archive'),
    ('other arrays', 'is not a model of logistic_sgd.py for 784 inputs and '
                     '10 classes (it holds weights, not W and b)'),
    ('NaN', '(W holds NaN or infinite values)'),
])
def test_a_damaged_model_for_predict_is_one_line(tiny_mnist, tmp_path,
                                                 contents, phrase):
    model = tmp_path / 'best.npz'
    if contents == 'other arrays':
        numpy.savez(str(model), weights=numpy.ones(3))
    elif contents == 'NaN':
        numpy.savez(str(model), W=numpy.full((784, 10), numpy.nan),
                    b=numpy.zeros(10))
    else:
        model.write_bytes(contents)
    before = model.read_bytes()
    r = run_script(['logistic_sgd.py', '--predict', '--dataset', tiny_mnist,
                    '--model-path', str(model)])
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.startswith('error: %s' % model) and phrase in r.stderr
    assert r.stderr.count('\n') == 1
    assert model.read_bytes() == before


@pytest.mark.slow
def test_predict_prints_the_true_labels_beside(tiny_mnist, tmp_path):
    model = str(tmp_path / 'best.npz')
    sgd_optimization_mnist(n_epochs=5, dataset=tiny_mnist, batch_size=20,
                           model_path=model, log=open(os.devnull, 'w'))
    r = run_script(['logistic_sgd.py', '--predict', '--dataset', tiny_mnist,
                    '--model-path', model])
    assert r.returncode == 0, r.stderr
    _, _, (_, test_y) = mnist_data.read_mnist(tiny_mnist)
    truth = r.stdout.splitlines()[1]
    assert truth.startswith('true labels:') and \
        truth.endswith(str(test_y[:10]))
