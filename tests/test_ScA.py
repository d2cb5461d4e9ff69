"""ScA.py: the shared storage of the stacked cAs, the shuffled
minibatches, the two training phases on tiny data, the test set read once,
and the command's one-line errors."""
import io

import numpy
import pytest

from machinery.backend import theano, T
import ScA as sca_module
from ScA import ScA, pretrain_layers, test_ScA
from machinery import commands
from machinery.checks import ConfigError
from conftest import one_error_line, run_script, sigmoid
from logistic_sgd import read_data, shared_dataset


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


def test_the_seed_alone_sets_the_initial_weights():
    """Every row of paper/table1.py starts from the same weights: two
    stacks of the same seed start alike, one of another seed does not."""
    a, b, c = (ScA(numpy.random.RandomState(seed), 784, [12, 8], 10)
               for seed in (5, 5, 6))
    for p, q, r in zip(a.params, b.params, c.params):
        numpy.testing.assert_array_equal(p.get_value(), q.get_value())
    assert not numpy.array_equal(a.params[0].get_value(),
                                 c.params[0].get_value())


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
    plain, cae = results[False], results[True]
    assert plain.pretraining == 'none' and cae.pretraining == 'CAE'
    assert plain.pretraining_time == 0 and cae.pretraining_time > 0
    assert plain.pretrained is None and cae.pretrained[0].shape == (784, 25)
    assert len(cae.pretraining_costs) == 1
    for result in (plain, cae):
        s = result.finetuning
        assert 0 <= result.test_error <= 1
        assert s['best_validation_error'] == min(s['validation_errors'])
        assert s['best_validation_error'] < 0.5
        assert 1 <= s['best_epoch'] <= s['epochs_run'] <= 4
    # the returned model holds the parameters of the best validation error
    _, (valid_x, valid_y), (test_x, test_y) = tiny_datasets
    assert cae.sca.count_errors(valid_x, valid_y) / 60 == \
        pytest.approx(cae.finetuning['best_validation_error'])
    assert cae.test_error == cae.sca.count_errors(test_x, test_y) / 60


def test_test_ScA_reads_the_test_set_once(tiny_datasets):
    datasets = counting(tiny_datasets)
    result = test_ScA(pretraining_epochs=1, training_epochs=3,
                      hidden_layers_sizes=[15], seed=1, shuffle_seed=3,
                      datasets=datasets, log=io.StringIO())
    (valid_x, _), (test_x, test_y) = datasets[1], datasets[2]
    # once, at the end, after the validation set picked the epoch
    assert list(test_x.reads) == [1] * 60 and list(test_y.reads) == [1] * 60
    # the validation set, once per epoch
    epochs = result.finetuning['epochs_run']
    assert list(valid_x.reads) == [epochs] * 60
    assert len(result.test_wrong) == 60
    assert result.test_error == result.test_wrong.sum() / 60


def test_batch_larger_than_training_set(tiny_datasets):
    with pytest.raises(ConfigError, match='finetune_batch_size 1000 is '
                                          'larger than the training set'):
        test_ScA(finetune_batch_size=1000, hidden_layers_sizes=[5],
                 datasets=tiny_datasets, log=io.StringIO())


@pytest.mark.slow  # a process per case: the quick suite keeps one such test
@pytest.mark.parametrize('args, message', [
    (['--pretrain-batch-size', '0'], 'pretrain_batch_size'),
    (['--finetune-lr-decay', '2'], 'finetune_lr_decay'),
    (['--compare'], 'unrecognized arguments: --compare'),
    (['--seed', '-1'], 'seed must be an integer from 0 to 4294967295'),
    (['--shuffle-seed', '4294967296'], 'shuffle_seed must be an integer'),
])
def test_bad_input_gives_one_error_line(tiny_mnist, args, message):
    r = run_script(['ScA.py', '--dataset', tiny_mnist] + args)
    one_error_line(r, message)
    assert r.stdout == ''


def test_every_flag_has_help():
    parser = commands.scA_parser(test_ScA)
    for action in parser._actions:
        assert action.help, action.option_strings
