"""mlp.HiddenLayer and ScA.py: the shared storage of the stacked cAs, the
shuffled minibatches, the two training phases on tiny data, the test set
read once, the test error's interval, and the command end to end."""
import hashlib
import io
import json
import os
import subprocess

import numpy
import PIL.Image
import pytest

from machinery import backend
from machinery.backend import theano, T
import ScA as sca_module
from ScA import ScA, compare, pretrain_layers, test_ScA, wilson_interval
from machinery import commands, mnist_data, reports
from machinery.checks import ConfigError
from machinery.checks import stacked_training as check_settings
from conftest import REPO, run_script, sigmoid
from logistic_sgd import read_data, shared_dataset
from mlp import HiddenLayer, initial_weight_bound


@pytest.fixture(scope='module')
def tiny_datasets(tiny_mnist):
    """The tiny dataset as numpy arrays, as test_ScA takes it."""
    return read_data(tiny_mnist)


@pytest.fixture(scope='module')
def tiny_train(tiny_datasets):
    """Its training set as shared data, as the training steps take it."""
    return shared_dataset(tiny_datasets[0])


class CountingRows(object):
    """Test data that counts how many times each of its rows is read; it
    stands where ScA.py expects a numpy array of examples or labels."""

    def __init__(self, array):
        self.array = numpy.asarray(array)
        self.reads = numpy.zeros(len(self.array), dtype=int)

    def __len__(self):
        return len(self.array)

    @property
    def shape(self):
        return self.array.shape

    def __getitem__(self, key):
        self.reads[key] += 1
        return self.array[key]


def counting(datasets):
    """datasets with its validation and test sets counting their reads."""
    train, valid, test = datasets
    return (train, tuple(CountingRows(a) for a in valid),
            tuple(CountingRows(a) for a in test))


# ---- HiddenLayer ------------------------------------------------------------

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


# ---- minibatches in a shuffled order ----------------------------------------

def test_minibatches_follow_numpys_permutations():
    """Two epochs of minibatches of 3 from 7 rows against a plain numpy
    loop: each epoch takes the rows in the next permutation that the same
    RandomState draws, the last minibatch short."""
    data = numpy.arange(14.).reshape(7, 2)
    shared = theano.shared(data)
    order = sca_module.new_order(7)
    index = T.lscalar()
    rows = theano.function([index],
                           sca_module.minibatch(shared, index, 3, order))
    # without an order: the stored one
    plain = theano.function([index], sca_module.minibatch(shared, index, 3))
    numpy.testing.assert_array_equal(plain(1), data[3:6])

    rng, reference_rng = (numpy.random.RandomState(4),
                          numpy.random.RandomState(4))
    epochs = []
    for epoch in range(2):
        sca_module.reshuffle(order, rng)
        n = sca_module.n_minibatches(7, 3)
        got = [rows(i) for i in range(n)]
        permutation = reference_rng.permutation(7)
        expected = [data[permutation[start:start + 3]]
                    for start in range(0, 7, 3)]
        assert [len(g) for g in got] == [3, 3, 1]
        for g, e in zip(got, expected):
            numpy.testing.assert_array_equal(g, e)
        epochs.append(numpy.concatenate(got))
    # every row once per epoch, in a new order each epoch
    for visited in epochs:
        assert sorted(visited[:, 0]) == sorted(data[:, 0])
    assert not numpy.array_equal(epochs[0], epochs[1])


def test_finetuning_step_takes_the_shuffled_minibatches(tiny_datasets):
    """SGD through ``order`` equals SGD on the rows permuted by numpy."""
    (x, y), _, _ = tiny_datasets
    permutation = numpy.random.RandomState(9).permutation(len(x))
    shuffled = ScA(numpy.random.RandomState(2), 784, [12], 10)
    reference = ScA(numpy.random.RandomState(2), 784, [12], 10)
    order = sca_module.new_order(len(x))
    order.set_value(permutation)
    step = shuffled.finetuning_function(shared_dataset((x, y)), 10, 0.1,
                                        order)
    reference_step = reference.finetuning_function(
        shared_dataset((x[permutation], y[permutation])), 10, 0.1)
    for i in range(sca_module.n_minibatches(len(x), 10)):  # the last short
        assert step(i) == pytest.approx(reference_step(i), rel=1e-12)
    for p, q in zip(shuffled.params, reference.params):
        numpy.testing.assert_allclose(p.get_value(), q.get_value(),
                                      rtol=1e-12, atol=1e-15)


# ---- the stack --------------------------------------------------------------

def test_cA_layers_share_the_mlp_layers_storage(tiny_train):
    sca = ScA(numpy.random.RandomState(3), n_ins=784,
              hidden_layers_sizes=[20, 15], n_outs=10)
    assert len(sca.cA_layers) == len(sca.sigmoid_layers) == 2
    for ca, layer in zip(sca.cA_layers, sca.sigmoid_layers):
        assert ca.W is layer.W
        assert ca.b is layer.b
    assert sca.cA_layers[1].x is sca.sigmoid_layers[0].output
    assert sca.params == (sca.sigmoid_layers[0].params +
                          sca.sigmoid_layers[1].params + sca.logLayer.params)
    functions = sca.pretraining_functions(tiny_train[0], batch_size=10)
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


@pytest.mark.slow  # compiles a two-layer stack three ways per case
@pytest.mark.parametrize('gradient', ['kernel', 'T.grad'])
def test_pretraining_steps_agree_with_the_fused_one(tiny_train, gradient):
    """Each way of computing a step trains both layers of a stack alike
    (the second one on the first one's output)."""
    runs = []
    for way in ('fused', gradient):
        sca = ScA(numpy.random.RandomState(4), 784, [16, 12], 10)
        functions = sca.pretraining_functions(
            tiny_train[0], 10, contraction_level=0.3, learning_rate=0.05,
            gradient=way)
        costs = [f(i) for f in functions for i in range(5)]
        runs.append((costs, [p.get_value() for p in sca.params] +
                     [ca.b_prime.get_value() for ca in sca.cA_layers]))
    (fused_costs, fused_params), (costs, params) = runs
    numpy.testing.assert_allclose(costs, fused_costs, rtol=1e-10)
    for p, q in zip(params, fused_params):
        numpy.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


def test_same_initial_weights_with_and_without_pretraining():
    a = ScA(numpy.random.RandomState(5), 784, [12, 8], 10)
    b = ScA(numpy.random.RandomState(5), 784, [12, 8], 10)
    for p, q in zip(a.params, b.params):
        numpy.testing.assert_array_equal(p.get_value(), q.get_value())


def test_pretraining_cost_falls(tiny_train):
    sca = ScA(numpy.random.RandomState(7), 784, [30, 20], 10)
    log = io.StringIO()
    costs, seconds = pretrain_layers(sca, tiny_train[0], batch_size=10,
                                     epochs=4, contraction_level=0.1,
                                     learning_rate=0.01,
                                     shuffle_rng=numpy.random.RandomState(0),
                                     log=log)
    assert len(costs) == 2 and costs[0].shape == (4, 3)
    for layer_costs in costs:
        cost, L_rec, L_jacob = layer_costs.T
        assert cost[-1] < cost[0]
        numpy.testing.assert_allclose(cost, L_rec + 0.1 * L_jacob)
    assert seconds > 0
    lines = log.getvalue().splitlines()
    # which step each layer trains with: the stock graph, so the kernel
    assert [line[:line.index(':') + 12] for line in lines[:2]] == [
        'pre-training step of layer %d: the kernel' % k for k in (1, 2)]
    lines = lines[2:]
    assert len(lines) == 8
    assert lines[0].startswith('pre-training layer 1/2 (CAE, lambda 0.1): '
                               'epoch 1/4  cost ')
    assert 'nats/example' in lines[0]
    # a time estimate until the last epoch of the last layer
    assert all(line.endswith(' min left') for line in lines[:7])
    assert 'left' not in lines[7]


def test_time_left():
    assert reports.time_left(60., 2, 20) == '  ~9.0 min left'
    assert reports.time_left(60., 20, 20) == ''


def test_finetuning_error_falls(tiny_datasets, tiny_train):
    _, (valid_x, valid_y), _ = tiny_datasets
    sca = ScA(numpy.random.RandomState(11), 784, [30], 10)
    train_fn = sca.finetuning_function(tiny_train, batch_size=10,
                                       learning_rate=0.1)
    start_errors = sca.count_errors(valid_x, valid_y)
    nll = []
    for epoch in range(6):
        nll.append(numpy.mean([train_fn(i) for i in range(23)]))
    assert nll[-1] < nll[0]
    assert sca.count_errors(valid_x, valid_y) < start_errors - 0.3 * 60


def test_count_errors_against_numpy(tiny_datasets):
    _, (valid_x, valid_y), _ = tiny_datasets
    sca = ScA(numpy.random.RandomState(12), 784, [9], 10)
    rng = numpy.random.RandomState(0)
    for p in sca.params:  # the top layer starts at zero: move it
        p.set_value(rng.uniform(-1, 1, p.get_value().shape))
    W, b, V, c = [p.get_value() for p in sca.params]
    predicted = numpy.argmax(sigmoid(valid_x @ W + b) @ V + c, axis=1)
    assert sca.count_errors(valid_x, valid_y) == \
        numpy.sum(predicted != valid_y)


@pytest.mark.slow
def test_test_ScA_with_and_without_pretraining(tiny_datasets):
    results = {}
    for pretrain in (False, True):
        log = io.StringIO()
        results[pretrain] = test_ScA(
            pretraining_epochs=2, training_epochs=4, pretrain_batch_size=10,
            finetune_batch_size=10, hidden_layers_sizes=[25], seed=2,
            pretrain=pretrain, datasets=tiny_datasets, log=log)
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
    _, (valid_x, valid_y), _ = tiny_datasets
    assert results[True].sca.count_errors(valid_x, valid_y) / 60 == \
        pytest.approx(cae['validation_error'])


# ---- the test set, read once ------------------------------------------------

def test_test_ScA_reads_the_test_set_once(tiny_datasets):
    datasets = counting(tiny_datasets)
    result = test_ScA(pretraining_epochs=1, training_epochs=3,
                      hidden_layers_sizes=[15], seed=1, shuffle_seed=3,
                      datasets=datasets, log=io.StringIO())
    (valid_x, valid_y), (test_x, test_y) = datasets[1], datasets[2]
    # once, at the end, after the validation set picked the epoch
    assert list(test_x.reads) == [1] * 60 and list(test_y.reads) == [1] * 60
    # the validation set, once per epoch
    epochs = result.summary['epochs_run']
    assert list(valid_x.reads) == [epochs] * 60
    assert result.summary['hyperparameters']['shuffle_seed'] == 3
    assert result.summary['n_test'] == 60
    assert result.summary['test_error'] == \
        result.summary['test_errors'] / 60


@pytest.mark.slow
def test_compare_reads_the_test_set_once_per_row_and_names_the_data_by_hash(
        tiny_datasets, tiny_mnist, tmp_path):
    datasets = counting(tiny_datasets)
    report = compare(n_hidden=8, dataset=tiny_mnist, datasets=datasets,
                     output_folder=str(tmp_path), pretraining_epochs=1,
                     training_epochs=2, log=io.StringIO())
    test_x, test_y = datasets[2]
    assert len(report['runs']) == 3
    # the labels once per row; the digits once more, after every row was
    # scored, for the contraction curves of the pre-trained layers
    assert list(test_y.reads) == [3] * 60 and list(test_x.reads) == [4] * 60
    with open(tiny_mnist, 'rb') as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    text = (tmp_path / sca_module.COMPARISON_NAME).read_text()
    written = json.loads(text)
    assert written == report
    assert written['dataset']['sha256'] == expected
    assert written['dataset']['bytes'] == os.path.getsize(tiny_mnist)
    # not the path of this machine
    assert os.path.dirname(tiny_mnist) not in text
    assert 'tiny.pkl.gz' not in text


# ---- the test error's interval ----------------------------------------------

@pytest.mark.parametrize('errors, n', [(0, 10000), (1, 10000), (130, 10000),
                                       (146, 10000), (5000, 10000),
                                       (10000, 10000), (3, 60), (59, 60)])
def test_wilson_interval_by_brute_force(errors, n):
    """The interval is the set of rates p that the score test keeps,
    |errors/n - p| <= z sqrt(p (1 - p) / n): find its ends on a fine grid."""
    low, high = wilson_interval(errors, n)
    z = 1.959963984540054  # the 97.5 % point of the standard normal
    p = numpy.linspace(0, 1, 2000001)
    kept = p[numpy.abs(errors / n - p) <= z * numpy.sqrt(p * (1 - p) / n)]
    assert low == pytest.approx(kept.min(), abs=1e-6)
    assert high == pytest.approx(kept.max(), abs=1e-6)
    assert low <= errors / n <= high


@pytest.mark.parametrize('errors, n', [(0, 10000), (146, 10000),
                                       (178, 10000), (7, 60)])
def test_wilson_interval_against_scipy(errors, n):
    stats = pytest.importorskip('scipy.stats')
    if not hasattr(stats, 'binomtest'):
        pytest.skip('scipy.stats has no binomtest (scipy < 1.7)')
    expected = stats.binomtest(errors, n).proportion_ci(
        confidence_level=0.95, method='wilson')
    low, high = wilson_interval(errors, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_width_for_mnist():
    # 1.3 % of 10,000 digits is known to within about +-0.22 points
    low, high = wilson_interval(130, 10000)
    assert 0.0108 < low < 0.0110 and 0.0154 < high < 0.0156


# ---- settings ---------------------------------------------------------------

@pytest.mark.parametrize('change', [
    {'pretrain_batch_size': 0}, {'finetune_batch_size': 0},
    {'training_epochs': 0}, {'finetune_lr': -1},
    {'finetune_lr_decay': 0}, {'finetune_lr_decay': 1.5},
    {'contraction_level': -0.1}, {'hidden_layers_sizes': []},
    {'hidden_layers_sizes': [10, 0]}, {'pretraining_epochs': -1},
    {'pretrain_lr': float('nan')}, {'seed': -3}, {'seed': 2 ** 32},
    {'shuffle_seed': -1}, {'shuffle_seed': 1.5}, {'shuffle_seed': None},
    {'gradient': 'numeric'}])
def test_check_settings_rejects(change):
    settings = dict(finetune_lr=0.1, pretraining_epochs=1, pretrain_lr=0.01,
                    contraction_level=0.1, training_epochs=1,
                    pretrain_batch_size=10, finetune_batch_size=20,
                    hidden_layers_sizes=[10], finetune_lr_decay=0.9, seed=0,
                    shuffle_seed=0, gradient='fused')
    check_settings(**settings)
    settings.update(change)
    with pytest.raises(ConfigError):
        check_settings(**settings)


def test_batch_larger_than_training_set(tiny_datasets):
    with pytest.raises(ConfigError, match='finetune_batch_size 1000 is '
                                          'larger than the training set'):
        test_ScA(finetune_batch_size=1000, hidden_layers_sizes=[5],
                 datasets=tiny_datasets, log=io.StringIO())


def test_compare_needs_a_penalty_and_pretraining(tmp_path):
    for change in ({'contraction_level': 0}, {'pretraining_epochs': 0}):
        with pytest.raises(ConfigError, match=list(change)[0]):
            compare(output_folder=str(tmp_path / 'out'), **change)
    assert not (tmp_path / 'out').exists()  # refused before anything
    with pytest.raises(TypeError, match='hidden_layers_sizes'):
        compare(hidden_layers_sizes=[10])


def test_markdown_table_columns():
    run = {'model': '784-1000-10', 'pretraining': 'CAE',
           'test_error': 0.0123, 'test_error_interval': [0.0103, 0.0147],
           'validation_error': 0.011, 'pretraining_time': 120.,
           'finetuning_time': 60., 'best_epoch': 3, 'epochs_run': 5,
           'pretrained_layer': {'jacobian_frobenius_norm': 8.123,
                                'jacobian_mean_square_entry': 0.8413e-4,
                                'saturated_fraction': 0.6234}}
    table = sca_module.markdown_table([run, dict(run, pretraining='none',
                                                 pretrained_layer=None)])
    table = table.splitlines()
    assert table[0].startswith('| model | pre-training | test error | 95 % '
                               'interval (Wilson) |')
    assert table[2] == ('| MLP 784-1000-10 | CAE | 1.23 % | 1.03-1.47 % | '
                        '1.10 % | 8.12 | 0.84e-4 | 62.34 % | 2.0 min | '
                        '1.0 min | 3 / 5 |')
    assert table[3].startswith('| MLP 784-1000-10 | none | 1.23 % | '
                               '1.03-1.47 % | 1.10 % |  |  |  | 2.0 min')
    # the paper's rows, with its figures (Rifai et al. 2011, Table 1)
    assert table[4:] == [
        '| the paper, Table 1 | CAE | 1.14 % | | | | 0.73e-4 | 86.36 % | | | |',
        '| the paper, Table 1 | AE | 1.78 % | | | | 17.50e-4 | 49.90 % | | | |']
    assert all(line.count('|') == table[0].count('|') for line in table)


# ---- the paired test --------------------------------------------------------

@pytest.mark.parametrize('only_a, only_b', [
    (0, 0), (0, 1), (1, 0), (3, 3), (7, 12), (12, 7), (20, 45), (45, 20),
    (130, 151), (0, 40), (300, 250)])
def test_mcnemar_exact_is_the_two_sided_binomial_test(only_a, only_b):
    scipy_stats = pytest.importorskip('scipy.stats')
    n = only_a + only_b
    expected = 1.0 if n == 0 else \
        scipy_stats.binomtest(only_a, n, 0.5).pvalue
    assert sca_module.mcnemar_exact(only_a, only_b) == \
        pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_exact_by_hand():
    # 2 against 8: P(X <= 2) for X ~ B(10, 1/2) is (1 + 10 + 45) / 1024
    assert sca_module.mcnemar_exact(2, 8) == pytest.approx(2 * 56 / 1024)
    assert sca_module.mcnemar_exact(5, 5) == 1.0


def test_paired_tests_count_the_digits_only_one_row_gets_wrong():
    runs = [{'model': '784-8-10', 'hidden_layers_sizes': [8],
             'pretraining': kind, 'test_wrong_digits': wrong}
            for kind, wrong in (('none', [0, 1, 2, 3, 9]), ('AE', [1, 2, 4]),
                                ('CAE', [2]))]
    runs.append(dict(runs[2], hidden_layers_sizes=[8, 8],
                     model='784-8-8-10', test_wrong_digits=[]))
    tests = sca_module.paired_tests(runs)
    assert [t['rows'] for t in tests] == [[1, 2], [1, 3], [1, 4], [2, 3],
                                          [2, 4], [3, 4]]
    first = tests[0]
    assert first['models'] == ['none', 'AE']
    # none alone: 0, 3, 9; AE alone: 4; both: 1, 2
    assert (first['only_first_wrong'], first['only_second_wrong'],
            first['both_wrong']) == (3, 1, 2)
    assert first['p_value'] == pytest.approx(2 * (1 + 4) / 16)
    assert tests[2]['models'] == ['none', 'CAE 784-8-8-10']
    assert (tests[5]['only_first_wrong'], tests[5]['only_second_wrong']) == \
        (1, 0)


# ---- the pre-trained layer's measures ----------------------------------------

def test_pretrained_layer_measures_against_finite_differences():
    rng = numpy.random.RandomState(4)
    W = rng.normal(scale=2.0, size=(6, 5))
    b = rng.normal(size=5)
    X = rng.uniform(0, 1, (7, 6))
    measures = sca_module.pretrained_layer(W, b, X, threshold=0.1)

    def h(x):
        return 1 / (1 + numpy.exp(-(x @ W + b)))
    norms, saturated = [], 0
    for x in X:
        eps = 1e-6
        J = numpy.array([(h(x + eps * e) - h(x - eps * e)) / (2 * eps)
                         for e in numpy.eye(6)])  # (n_visible, n_hidden)
        norms.append(numpy.sqrt(numpy.sum(J ** 2)))
        saturated += sum(1 for v in h(x) if v < 0.1 or v > 0.9)
    norms = numpy.array(norms)
    assert measures['jacobian_frobenius_norm'] == \
        pytest.approx(norms.mean(), rel=1e-6)
    assert measures['jacobian_mean_square_entry'] == \
        pytest.approx(numpy.mean(norms ** 2) / 30, rel=1e-6)
    assert measures['saturated_fraction'] == pytest.approx(saturated / 35)
    assert 0 < saturated < 35  # the case tests both kinds of unit
    assert measures['saturation_threshold'] == 0.1


def test_comparison_rows():
    assert sca_module.comparison_rows(1000, False) == [
        ((1000,), 'none'), ((1000,), 'AE'), ((1000,), 'CAE')]
    assert sca_module.comparison_rows(50, True)[-1] == ((50, 50), 'CAE')


# ---- the command ------------------------------------------------------------

@pytest.mark.slow
def test_compare_command_end_to_end(tiny_mnist, tmp_path):
    out = tmp_path / 'out'
    r = run_script(['ScA.py', '--compare', '--dataset', tiny_mnist,
                    '--n-hidden', '20', '--two-layers',
                    '--pretraining-epochs', '2', '--finetune-epochs', '3',
                    '--shuffle-seed', '5', '--output-folder', str(out)])
    assert r.returncode == 0, r.stderr
    with open(out / sca_module.COMPARISON_NAME) as f:
        report = json.load(f)
    assert report['complete'] is True
    assert report['total_time'] > 0
    assert [(run['hidden_layers_sizes'], run['pretraining'])
            for run in report['runs']] == [
                ([20], 'none'), ([20], 'AE'), ([20], 'CAE'),
                ([20, 20], 'CAE')]
    settings = report['hyperparameters']
    assert settings['pretraining_epochs'] == 2
    assert settings['shuffle_seed'] == 5
    assert 'dataset' not in settings
    with open(tiny_mnist, 'rb') as f:
        assert report['dataset']['sha256'] == \
            hashlib.sha256(f.read()).hexdigest()
    # the rows differ only where they should
    ae, cae = report['runs'][1], report['runs'][2]
    assert ae['hyperparameters']['contraction_level'] == 0
    assert cae['hyperparameters']['contraction_level'] == \
        settings['contraction_level'] > 0
    for run in report['runs']:
        assert 0 <= run['test_error'] <= 1
        assert run['epochs_run'] <= 3
        low, high = run['test_error_interval']
        assert (low, high) == pytest.approx(
            wilson_interval(run['test_errors'], run['n_test']))
        assert low <= run['test_error'] <= high
        assert run['hyperparameters']['seed'] == settings['seed']
    assert '| model | pre-training | test error | 95 % interval' in r.stdout
    assert 'row 4/4: MLP 784-20-20-10, CAE pre-training' in r.stdout
    assert 'min left' in r.stdout
    assert 'total time' in r.stdout
    # the paired tests, from the digits each row got wrong, against scipy
    scipy_stats = pytest.importorskip('scipy.stats')
    assert len(report['paired_tests']) == 6
    for test in report['paired_tests']:
        a, b = (set(report['runs'][row - 1]['test_wrong_digits'])
                for row in test['rows'])
        assert (test['only_first_wrong'], test['only_second_wrong']) == \
            (len(a - b), len(b - a))
        n = len(a ^ b)
        assert test['p_value'] == pytest.approx(
            scipy_stats.binomtest(len(a - b), n, 0.5).pvalue if n else 1.0)
        assert 'paired test, %s against %s' % tuple(test['models']) in \
            r.stdout
    for run in report['runs']:
        assert len(run['test_wrong_digits']) == run['test_errors']
        layer = run['pretrained_layer']
        assert (layer is None) == (run['pretraining'] == 'none')
        if layer:
            assert 0 <= layer['saturated_fraction'] <= 1
            assert layer['jacobian_mean_square_entry'] == pytest.approx(
                layer['jacobian_frobenius_norm'] ** 2 / (784 * 20), rel=0.5)
    # the contraction curves of the one-layer pre-trained rows, up to
    # beyond the largest distance between two training digits
    curves = report['contraction']
    train_x = numpy.asarray(mnist_data.read_mnist(tiny_mnist)[0][0],
                            dtype=numpy.float64)
    gaps = train_x[:, None, :] - train_x[None, :, :]
    largest = numpy.sqrt((gaps ** 2).sum(axis=2)).max()
    assert curves['distances']['largest_training'] == \
        pytest.approx(largest, rel=1e-12)
    assert curves['radii'][-1] == pytest.approx(1.25 * largest)
    assert sorted(curves['ratios']) == ['AE', 'CAE']
    assert all(len(r) == len(curves['radii']) == 25
               for r in curves['ratios'].values())
    with PIL.Image.open(out / curves['figure']) as image:
        image.load()
        assert image.format == 'PNG' and min(image.size) > 100
    # the code that made it: this checkout's commit
    head = subprocess.run(['git', '-C', REPO, 'rev-parse', 'HEAD'],
                          stdout=subprocess.PIPE, text=True)
    if head.returncode == 0:
        assert report['code']['commit'] == head.stdout.strip()
    # no lock and no temporary files left beside the results
    assert sorted(os.listdir(out)) == sorted(
        [sca_module.COMPARISON_NAME, sca_module.CONTRACTION_FIGURE])


@pytest.mark.slow  # a process per case: the quick suite keeps one such test
@pytest.mark.parametrize('args, message', [
    (['--pretrain-batch-size', '0'], 'pretrain_batch_size'),
    (['--compare', '--finetune-lr-decay', '2'], 'finetune_lr_decay'),
    (['--two-layers'], '--two-layers needs --compare'),
    (['--n-hidden', '10'], '--n-hidden needs --compare'),
    (['--output-folder', 'x'], '--output-folder needs --compare'),
    (['--compare', '--no-pretrain'], 'not allowed with argument --compare'),
    (['--compare', '--hidden-layers-sizes', '10'],
     '--hidden-layers-sizes has no effect with --compare'),
    (['--compare', '--contraction-level', '0'], 'contraction_level'),
    (['--seed', '-1'], 'seed must be an integer from 0 to 4294967295'),
    (['--shuffle-seed', '4294967296'], 'shuffle_seed must be an integer'),
])
def test_bad_input_gives_one_error_line(tiny_mnist, args, message):
    r = run_script(['ScA.py', '--dataset', tiny_mnist] + args)
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr
    error_lines = [line for line in r.stderr.splitlines()
                   if line.startswith('error:')]
    assert len(error_lines) == 1 and message in error_lines[0], r.stderr
    assert r.stdout == ''


def test_every_flag_has_help():
    parser = commands.scA_parser(test_ScA, compare)
    for action in parser._actions:
        assert action.help, action.option_strings


def test_compare_function_writes_partial_results(tiny_datasets, tiny_mnist,
                                                 tmp_path, monkeypatch):
    # a failure in the second row leaves the first one on disk
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
                datasets=tiny_datasets, n_hidden=8,
                output_folder=str(tmp_path), log=io.StringIO())
    with open(tmp_path / sca_module.COMPARISON_NAME) as f:
        report = json.load(f)
    assert report['complete'] is False
    assert len(report['runs']) == 1 and report['runs'][0]['pretraining'] \
        == 'none'
    # the lock went with the run; the figure comes after the last row
    assert os.listdir(tmp_path) == [sca_module.COMPARISON_NAME]
