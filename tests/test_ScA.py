"""mlp.HiddenLayer and ScA.py: the shared storage of the stacked cAs, the
two training phases on tiny data, and the command end to end."""
import io
import json
import os

import numpy
import pytest

import backend
from backend import theano, T
import ScA as sca_module
from ScA import ScA, check_settings, compare, pretrain_layers, test_ScA
from checks import ConfigError
from conftest import run_script, sigmoid
from logistic_sgd import load_data
from mlp import HiddenLayer, initial_weight_bound


@pytest.fixture(scope='module')
def tiny_datasets(tiny_mnist):
    return load_data(tiny_mnist)


# ---- HiddenLayer -----------------------------------------------------------

@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize('activation, factor', [(T.tanh, 1),
                                                (backend.sigmoid, 4)])
def test_hidden_layer_initial_range(activation, factor):
    n_in, n_out = 300, 200
    layer = HiddenLayer(numpy.random.RandomState(0), T.matrix('x'), n_in,
                        n_out, activation=activation)
    W = layer.W.get_value()
    bound = factor * numpy.sqrt(6. / (n_in + n_out))
    assert initial_weight_bound(n_in, n_out, activation) == \
        pytest.approx(bound)
    assert W.shape == (n_in, n_out)
    assert numpy.abs(W).max() <= bound
    assert numpy.abs(W).max() > 0.99 * bound  # the whole range is used
    # uniform on [-r, r] has variance r^2 / 3
    assert W.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    assert numpy.all(layer.b.get_value() == 0)
    assert layer.b.get_value().shape == (n_out,)
    assert layer.params == [layer.W, layer.b]


@pytest.mark.parametrize('activation, reference', [
    (T.tanh, numpy.tanh), (backend.sigmoid, sigmoid), (None, lambda a: a)])
def test_hidden_layer_output_against_numpy(activation, reference):
    rng = numpy.random.RandomState(1)
    x = T.matrix('x')
    b = theano.shared(rng.uniform(-1, 1, 7), name='b')
    layer = HiddenLayer(rng, x, 5, 7, b=b, activation=activation)
    assert layer.b is b
    X = rng.uniform(0, 1, (4, 5))
    got = theano.function([x], layer.output)(X)
    expected = reference(X @ layer.W.get_value() + b.get_value())
    numpy.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_hidden_layer_uses_given_storage():
    W = theano.shared(numpy.ones((3, 2)), name='W')
    x = T.matrix('x')
    layer = HiddenLayer(numpy.random.RandomState(0), x, 3, 2, W=W,
                        activation=None)
    output = theano.function([x], layer.output)
    X = numpy.arange(6.).reshape(2, 3)
    numpy.testing.assert_array_equal(output(X), X @ numpy.ones((3, 2)))
    W.set_value(numpy.full((3, 2), 2.))  # the caller's storage, not a copy
    numpy.testing.assert_array_equal(output(X), X @ numpy.full((3, 2), 2.))


# ---- the stack -------------------------------------------------------------

def test_cA_layers_share_the_mlp_layers_storage(tiny_datasets):
    sca = ScA(numpy.random.RandomState(3), n_ins=784,
              hidden_layers_sizes=[20, 15], n_outs=10)
    assert len(sca.cA_layers) == len(sca.sigmoid_layers) == 2
    for ca, layer in zip(sca.cA_layers, sca.sigmoid_layers):
        assert ca.W is layer.W
        assert ca.b is layer.b
    assert sca.cA_layers[1].x is sca.sigmoid_layers[0].output
    assert sca.params == (sca.sigmoid_layers[0].params +
                          sca.sigmoid_layers[1].params + sca.logLayer.params)
    functions = sca.pretraining_functions(tiny_datasets[0][0], batch_size=10)
    assert len(functions) == 2
    before = [p.get_value() for p in sca.params]
    functions[1](0)  # one step of the second cA
    after = [p.get_value() for p in sca.params]
    # the second MLP layer moved (W and b), nothing else did
    assert not numpy.allclose(after[2], before[2])
    assert not numpy.allclose(after[3], before[3])
    for i in (0, 1, 4, 5):
        numpy.testing.assert_array_equal(after[i], before[i])
    functions[0](1)
    assert not numpy.allclose(sca.sigmoid_layers[0].W.get_value(), after[0])


def test_same_initial_weights_with_and_without_pretraining():
    a = ScA(numpy.random.RandomState(5), 784, [12, 8], 10)
    b = ScA(numpy.random.RandomState(5), 784, [12, 8], 10)
    for p, q in zip(a.params, b.params):
        numpy.testing.assert_array_equal(p.get_value(), q.get_value())


def test_pretraining_cost_falls(tiny_datasets):
    sca = ScA(numpy.random.RandomState(7), 784, [30, 20], 10)
    log = io.StringIO()
    costs, seconds = pretrain_layers(sca, tiny_datasets[0][0], batch_size=10,
                                     epochs=4, contraction_level=0.1,
                                     learning_rate=0.01, log=log)
    assert len(costs) == 2 and costs[0].shape == (4, 3)
    for layer_costs in costs:
        cost, L_rec, L_jacob = layer_costs.T
        assert cost[-1] < cost[0]
        numpy.testing.assert_allclose(cost, L_rec + 0.1 * L_jacob)
    assert seconds > 0
    lines = log.getvalue().splitlines()
    assert sum('pre-training layer' in line for line in lines) == 8
    assert 'nats/example' in lines[0]


@pytest.mark.slow
def test_finetuning_error_falls(tiny_datasets):
    sca = ScA(numpy.random.RandomState(11), 784, [30], 10)
    train_fn, valid_score, test_score = sca.build_finetune_functions(
        tiny_datasets, batch_size=10, learning_rate=0.1)
    start_valid, start_test = valid_score(), test_score()
    n_batches = -(-230 // 10)
    nll = []
    for epoch in range(6):
        nll.append(numpy.mean([train_fn(i) for i in range(n_batches)]))
    assert nll[-1] < nll[0]
    assert valid_score() < start_valid - 0.3
    assert test_score() < start_test - 0.3


@pytest.mark.slow
def test_test_ScA_with_and_without_pretraining(tiny_mnist, tiny_datasets):
    results = {}
    for pretrain in (False, True):
        log = io.StringIO()
        results[pretrain] = test_ScA(
            pretraining_epochs=2, training_epochs=4, batch_size=10,
            hidden_layers_sizes=[25], seed=2, pretrain=pretrain,
            datasets=tiny_datasets, log=log)
        assert 'done: best validation error' in log.getvalue()
    plain, cae = results[False].summary, results[True].summary
    assert plain['pretraining'] == 'none' and cae['pretraining'] == 'CAE'
    assert plain['pretraining_time'] == 0 and cae['pretraining_time'] > 0
    assert len(results[True].pretraining_costs) == 1
    for s in (plain, cae):
        assert 0 <= s['test_error'] <= 1
        assert s['validation_error'] == min(s['validation_errors'])
        assert s['validation_error'] < 0.5
        assert 1 <= s['best_epoch'] <= s['epochs_run'] <= 4
    # the returned model holds the parameters of the best validation error
    _, valid_score, _ = results[True].sca.build_finetune_functions(
        tiny_datasets, 10, 0.1)
    assert valid_score() == pytest.approx(cae['validation_error'])


@pytest.mark.parametrize('change', [
    {'batch_size': 0}, {'training_epochs': 0}, {'finetune_lr': -1},
    {'finetune_lr_decay': 0}, {'finetune_lr_decay': 1.5},
    {'contraction_level': -0.1}, {'hidden_layers_sizes': []},
    {'hidden_layers_sizes': [10, 0]}, {'pretraining_epochs': -1},
    {'pretrain_lr': float('nan')}, {'seed': -3}])
def test_check_settings_rejects(change):
    settings = dict(finetune_lr=0.1, pretraining_epochs=1, pretrain_lr=0.01,
                    contraction_level=0.1, training_epochs=1, batch_size=10,
                    hidden_layers_sizes=[10], finetune_lr_decay=0.9, seed=0)
    check_settings(**settings)
    settings.update(change)
    with pytest.raises(ConfigError):
        check_settings(**settings)


def test_batch_larger_than_training_set(tiny_datasets):
    with pytest.raises(ConfigError, match='larger than the training set'):
        test_ScA(batch_size=1000, hidden_layers_sizes=[5],
                 datasets=tiny_datasets, log=io.StringIO())


def test_markdown_table_columns():
    run = {'hidden_layers_sizes': [1000], 'pretraining': 'CAE',
           'test_error': 0.0123, 'validation_error': 0.011,
           'pretraining_time': 120., 'finetuning_time': 60.,
           'best_epoch': 3, 'epochs_run': 5}
    table = sca_module.markdown_table([run]).splitlines()
    assert table[0].startswith('| model | pre-training | test error |')
    assert '| 1.23 % | 1.10 % | 2.0 min | 1.0 min | 3 / 5 |' in table[2]


# ---- the command -----------------------------------------------------------

@pytest.mark.slow
def test_compare_command_end_to_end(tiny_mnist, tmp_path):
    out = tmp_path / 'out'
    r = run_script(['ScA.py', '--compare', '--dataset', tiny_mnist,
                    '--architectures', '20', '20-10',
                    '--pretraining-epochs', '2', '--finetune-epochs', '3',
                    '--output-folder', str(out)])
    assert r.returncode == 0, r.stderr
    with open(out / sca_module.COMPARISON_NAME) as f:
        report = json.load(f)
    assert report['complete'] is True
    assert report['total_time'] > 0
    assert [(run['hidden_layers_sizes'], run['pretraining'])
            for run in report['runs']] == [([20], 'none'), ([20], 'CAE'),
                                          ([20, 10], 'none'),
                                          ([20, 10], 'CAE')]
    assert report['hyperparameters']['pretraining_epochs'] == 2
    for run in report['runs']:
        assert 0 <= run['test_error'] <= 1
        assert run['epochs_run'] <= 3
    assert '| model | pre-training | test error |' in r.stdout
    assert 'total time' in r.stdout
    # no temporary files left beside the result
    assert os.listdir(out) == [sca_module.COMPARISON_NAME]


@pytest.mark.parametrize('args, message', [
    (['--batch-size', '0'], 'batch_size'),
    (['--compare', '--finetune-lr-decay', '2'], 'finetune_lr_decay'),
    (['--architectures', '10'], '--architectures needs --compare'),
    (['--compare', '--no-pretrain'], '--no-pretrain has no effect'),
])
def test_bad_input_gives_one_error_line(tiny_mnist, args, message):
    r = run_script(['ScA.py', '--dataset', tiny_mnist] + args)
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr
    error_lines = [line for line in r.stderr.splitlines()
                   if line.startswith('error:')]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert r.stdout == ''


def test_compare_function_writes_partial_results(tiny_datasets, tiny_mnist,
                                                 tmp_path, monkeypatch):
    # a failure in the second run leaves the first one on disk
    real = sca_module.test_ScA
    calls = []

    def failing_second(**kwargs):
        calls.append(kwargs['pretrain'])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(**kwargs)

    monkeypatch.setattr(sca_module, 'test_ScA', failing_second)
    with pytest.raises(KeyboardInterrupt):
        compare(pretraining_epochs=1, training_epochs=1, dataset=tiny_mnist,
                architectures=[[8]], output_folder=str(tmp_path),
                log=io.StringIO())
    with open(tmp_path / sca_module.COMPARISON_NAME) as f:
        report = json.load(f)
    assert report['complete'] is False
    assert len(report['runs']) == 1 and report['runs'][0]['pretraining'] \
        == 'none'
