"""paper/table1.py: the comparison's rows, report, table and paired tests
on tiny data, and its command end to end."""
import hashlib
import io
import json
import os
import subprocess

import numpy
import PIL.Image
import pytest

from machinery import commands, mnist_data
from machinery.checks import ConfigError
from conftest import REPO, one_error_line, run_script
from logistic_sgd import read_data
from paper import table1
from paper.statistics import wilson_interval
from paper.table1 import compare
from ScA import test_ScA
from test_ScA import counting


@pytest.fixture(scope='module')
def tiny_datasets(tiny_mnist):
    """The tiny dataset as numpy arrays, as compare takes it."""
    return read_data(tiny_mnist)


@pytest.mark.slow
def test_compare_reads_the_test_set_once_per_row_and_names_the_data_by_hash(
        tiny_datasets, tiny_mnist, tmp_path):
    datasets = counting(tiny_datasets)
    report = compare(n_hidden=8, dataset=tiny_mnist, datasets=datasets,
                     output_folder=str(tmp_path), pretraining_epochs=1,
                     training_epochs=2, log=io.StringIO())
    test_x, test_y = datasets[2]
    assert len(report['runs']) == 3
    # the labels once per row, when the row is scored; the digits too, and
    # again for the measures of the two pre-trained layers (which decide
    # nothing) and, after every row was scored, for their contraction curves
    assert list(test_y.reads) == [3] * 60 and list(test_x.reads) == [6] * 60
    with open(tiny_mnist, 'rb') as f:
        expected = hashlib.sha256(f.read()).hexdigest()
    text = (tmp_path / table1.COMPARISON_NAME).read_text()
    written = json.loads(text)
    assert written == report
    assert written['dataset']['sha256'] == expected
    assert written['dataset']['bytes'] == os.path.getsize(tiny_mnist)
    # not the path of this machine
    assert os.path.dirname(tiny_mnist) not in text
    assert 'tiny.pkl.gz' not in text


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
    table = table1.markdown_table([run, dict(run, pretraining='none',
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


def test_paired_tests_count_the_digits_only_one_row_gets_wrong():
    runs = [{'model': '784-8-10', 'hidden_layers_sizes': [8],
             'pretraining': kind, 'test_wrong_digits': wrong}
            for kind, wrong in (('none', [0, 1, 2, 3, 9]), ('AE', [1, 2, 4]),
                                ('CAE', [2]))]
    runs.append(dict(runs[2], hidden_layers_sizes=[8, 8],
                     model='784-8-8-10', test_wrong_digits=[]))
    tests = table1.paired_tests(runs)
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


def test_comparison_rows():
    assert table1.comparison_rows(1000, False) == [
        ((1000,), 'none'), ((1000,), 'AE'), ((1000,), 'CAE')]
    assert table1.comparison_rows(50, True)[-1] == ((50, 50), 'CAE')


@pytest.mark.slow
def test_compare_command_end_to_end(tiny_mnist, tmp_path):
    out = tmp_path / 'out'
    r = run_script(['paper/table1.py', '--dataset', tiny_mnist,
                    '--n-hidden', '20', '--two-layers',
                    '--pretraining-epochs', '2', '--finetune-epochs', '3',
                    '--shuffle-seed', '5', '--output-folder', str(out)])
    assert r.returncode == 0, r.stderr
    with open(out / table1.COMPARISON_NAME) as f:
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
        [table1.COMPARISON_NAME, table1.CONTRACTION_FIGURE])


def test_a_stopped_rerun_keeps_the_finished_table_and_says_so(
        tiny_datasets, tiny_mnist, tmp_path, monkeypatch):
    """A finished comparison, then a second one into the same folder that
    stops in its second row: the first one's JSON and figure are as they
    were, byte for byte; the rows done are in the partial file; the
    second run said before it started what it would replace."""
    settings = dict(pretraining_epochs=1, training_epochs=1,
                    dataset=tiny_mnist, datasets=tiny_datasets, n_hidden=8,
                    output_folder=str(tmp_path))
    compare(log=io.StringIO(), **settings)
    finished = {name: (tmp_path / name).read_bytes() for name in
                (table1.COMPARISON_NAME, table1.CONTRACTION_FIGURE)}
    assert json.loads(finished[table1.COMPARISON_NAME])['complete'] is True
    real = table1.test_ScA
    calls = []

    def failing_second(**kwargs):
        calls.append(kwargs['pretrain'])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(**kwargs)

    monkeypatch.setattr(table1, 'test_ScA', failing_second)
    log = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        compare(log=log, **dict(settings, seed=5))
    assert log.getvalue().startswith(
        'note: this run replaces %s and %s, written ' % (
            tmp_path / table1.COMPARISON_NAME,
            tmp_path / table1.CONTRACTION_FIGURE))
    for name, data in finished.items():
        assert (tmp_path / name).read_bytes() == data, name
    with open(tmp_path / table1.PARTIAL_NAME) as f:
        report = json.load(f)
    assert report['complete'] is False
    assert report['hyperparameters']['seed'] == 5
    assert len(report['runs']) == 1 and report['runs'][0]['pretraining'] \
        == 'none'
    # the lock went with the run, and nothing half-written stays
    assert sorted(os.listdir(tmp_path)) == sorted(
        list(finished) + [table1.PARTIAL_NAME])


@pytest.mark.slow  # a process per case: the quick suite keeps one such test
@pytest.mark.parametrize('args, message', [
    (['--finetune-lr-decay', '2'], 'finetune_lr_decay'),
    (['--contraction-level', '0'], 'contraction_level'),
    (['--no-pretrain'], 'unrecognized arguments: --no-pretrain'),
    (['--hidden-layers-sizes', '10'], 'unrecognized arguments'),
])
def test_bad_input_gives_one_error_line(tiny_mnist, tmp_path, args, message):
    r = run_script(['paper/table1.py', '--dataset', tiny_mnist,
                    '--output-folder', str(tmp_path / 'out')] + args)
    one_error_line(r, message)
    assert r.stdout == '' and not (tmp_path / 'out').exists()


def test_every_flag_has_help():
    parser = commands.table1_parser(compare, test_ScA)
    for action in parser._actions:
        assert action.help, action.option_strings
