"""paper/analysis.py: its classifier, its settings and its command end to
end (the measures it runs are tests/test_jacobian.py's)."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy
import PIL.Image
import pytest

from paper import analysis
from paper.analysis import classifier_errors
from test_jacobian import brute_force_largest
from machinery import checkpoints
from machinery import cli
from machinery import commands
from machinery import mnist_data
from machinery import outputs
from machinery.checks import ConfigError
from conftest import REPO, run_script

# the file names of the two trainings (cA.output_names)
CHECKPOINT_NAME, AE_CHECKPOINT_NAME = 'cae_checkpoint.npz', 'ae_checkpoint.npz'


# ---- features for classification --------------------------------------------

@pytest.mark.slow  # compiles three classifiers: 4 to 10 s
def test_classifier_on_raw_pixels_beats_chance_and_uses_encode(tiny_mnist,
                                                               capsys):
    datasets = mnist_data.read_mnist(tiny_mnist)
    valid, test = classifier_errors(datasets, n_epochs=100, batch_size=50)
    assert test < 0.3 and valid < 0.3  # chance is 0.9
    # a code that forgets the input leaves the classifier guessing
    _, blind = classifier_errors(
        datasets, encode=lambda x: numpy.zeros((len(x), 3)), n_epochs=20,
        batch_size=50)
    assert blind > 0.6
    # without a log, the classifier's own lines go nowhere
    assert capsys.readouterr() == ('', '')


# ---- run_analysis's settings ------------------------------------------------

@pytest.mark.parametrize('name, value', [
    ('n_examples', 2.5), ('n_examples', True), ('seed', 2 ** 32),
    ('seed', -1), ('contraction_level', 0), ('min_radius_factor', 3.0),
    ('n_radii', 1),
    ('saturation_threshold', 0.5), ('classifier_batch_size', 0)])
def test_bad_settings_raise_config_error_before_anything_is_written(
        tmp_path, name, value):
    out = tmp_path / 'out'
    with pytest.raises(ConfigError, match=name):
        analysis.run_analysis(**{name: value, 'output_folder': str(out),
                                 'dataset': str(tmp_path / 'none.pkl.gz')})
    assert not out.exists()


# ---- the module and the command line ----------------------------------------

def test_importing_analysis_loads_no_stack_and_writes_nothing(tmp_path):
    # no files, no data, no compilation: neither the stack nor matplotlib
    code = ('import sys; sys.path.insert(0, %r); import paper.analysis; '
            'loaded = [m for m in ("theano", "pytensor", "matplotlib") '
            'if m in sys.modules]; assert not loaded, loaded' % REPO)
    before = sorted(os.listdir(REPO))
    r = run_script(['-c', code], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(tmp_path)) == []
    assert sorted(os.listdir(REPO)) == before


def test_every_parameter_has_a_flag_with_its_default_and_help():
    parser = commands.analysis_parser(analysis.run_analysis)
    expected = cli.defaults_of(analysis.run_analysis)
    del expected['log']  # where the lines go: the command's is stdout
    assert cli.arguments(parser, []) == expected
    for action in parser._actions:
        assert action.help, action.dest


def test_help_names_every_flag_and_touches_nothing(tmp_path):
    r = run_script([os.path.join(REPO, 'paper', 'analysis.py'), '--help'],
                   cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    for action in commands.analysis_parser(analysis.run_analysis)._actions:
        assert action.option_strings[-1] in r.stdout
    assert os.listdir(str(tmp_path)) == []


TINY_ARGS = ['--epochs', '2', '--n-hidden', '20', '--n-examples', '20',
             '--batch-size', '50', '--learning-rate', '0.1', '--n-radii', '5',
             '--classifier-epochs', '100', '--classifier-batch-size', '50']
FILES = ['analysis_spectrum.png', 'analysis_contraction.png',
         'analysis_training.png', 'analysis.json', 'cae/cae_filters.png',
         'cae/cae_checkpoint.npz', 'cae/cae_costs.npy', 'ae/ae_filters.png',
         'ae/ae_checkpoint.npz', 'ae/ae_costs.npy']


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(path, name), str(folder))
                  for path, _, names in os.walk(str(folder))
                  for name in names)


@pytest.mark.slow
def test_command_end_to_end_is_quiet_and_writes_every_file(tiny_mnist,
                                                           tmp_path):
    out = tmp_path / 'plots'
    r = run_script(['paper/analysis.py', '--dataset', tiny_mnist,
                    '--output-folder', str(out)] + TINY_ARGS)
    assert r.returncode == 0, r.stderr
    # exactly these files: no lock, no temporary left
    assert files_under(out) == sorted(FILES)
    for name in FILES:
        if name.endswith('.png'):
            with PIL.Image.open(str(out / name)) as image:
                image.load()
                assert image.format == 'PNG' and min(image.size) > 100
    with open(str(out / 'analysis.json')) as f:
        report = json.load(f)
    assert list(report) == ['settings', 'n_train', 'n_test',
                            'typical_distances', 'radii', 'models',
                            'raw_pixels', 'figures', 'total_time_s']
    assert report['settings']['classifier_batch_size'] == 50
    assert (report['n_train'], report['n_test']) == (230, 60)
    assert len(report['radii']) == 5
    # the curves reach beyond the largest distance between training digits
    train_x = mnist_data.read_mnist(tiny_mnist)[0][0].astype(numpy.float64)
    largest, pair = brute_force_largest(train_x)
    distances = report['typical_distances']
    assert distances['largest_training'] == pytest.approx(largest, rel=1e-12)
    assert distances['largest_training_pair'] == list(pair)
    assert report['radii'][-1] == pytest.approx(1.25 * largest)
    assert report['radii'][0] == pytest.approx(
        1e-3 * distances['median_nearest_neighbour'])
    cae, ae = report['models']['cae'], report['models']['ae']
    assert (cae['contraction_level'], ae['contraction_level']) == (0.1, 0.0)
    for model, key in ((cae, 'cae/cae'), (ae, 'ae/ae')):
        assert model['filters'] == str(out / (key + '_filters.png'))
        assert len(model['singular_values_mean']) == 20
        assert len(model['contraction_ratios']) == 5
        assert len(model['epoch_reconstruction_cost']) == 2
        for name in ['jacobian_frobenius_norm_mean', 'saturated_fraction',
                     'classifier_test_error', 'classifier_valid_error']:
            assert isinstance(model[name], float), name
    # the penalty makes a difference even after two epochs
    assert cae['epoch_jacobian_norm'][-1] < ae['epoch_jacobian_norm'][-1]
    assert report['raw_pixels']['classifier_test_error'] < 0.3
    # quiet: a line per step, none per classifier epoch, nothing on stderr
    lines = r.stdout.splitlines()
    assert r.stderr == ''
    assert not [l for l in lines if 'validation_error' in l]
    assert len(lines) < 50, r.stdout
    for label in ('CAE', 'AE'):
        for step in ('%s spectrum of J', '%s mean contraction ratio',
                     '%s over the 60 test digits',
                     'logistic regression on the %s code'):
            found = [l for l in lines if l.startswith(step % label)]
            assert len(found) == 1 and found[0].endswith(' s)'), step % label
    summary = r.stdout[r.stdout.index('summary'):]
    for phrase in ['ranks 1-10', 'contraction ratio', '||J||_F',
                   'saturated', 'raw pixels', 'total time']:
        assert phrase in summary


@pytest.mark.slow
def test_verbose_adds_the_classifiers_lines(tiny_mnist, tmp_path):
    r = run_script(['paper/analysis.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path / 'out'), '--verbose'] + TINY_ARGS)
    assert r.returncode == 0, r.stderr
    # the three classifiers: their looks at the validation set, their ends
    assert 'validation_error' in r.stdout
    assert r.stdout.count('done: best validation_error') == 3


# ---- bad input through the command line -------------------------------------

BAD_SETTINGS = [  # rejected before anything is loaded or written
    (['--epochs', '0'], 'training_epochs must be a positive integer'),
    (['--n-examples', '1'], 'n_examples must be at least 2'),
    (['--contraction-level', '0'], 'contraction_level must be a positive'),
    (['--contraction-level', 'nan'], 'contraction_level must be a positive'),
    (['--n-hidden', '0'], 'n_hidden must be a positive integer'),
    (['--learning-rate', 'inf'], 'learning_rate must be a positive finite'),
    (['--batch-size', '0'], 'batch_size must be a positive integer'),
    (['--seed', '-1'], 'seed must be an integer from 0 to 4294967295'),
    (['--seed', '4294967296'], 'seed must be an integer from 0 to'),
    (['--n-radii', '0'], 'n_radii must be a positive integer'),
    (['--min-radius-factor', '0'], 'min_radius_factor must be a positive'),
    (['--max-radius-factor', 'nan'], 'max_radius_factor must be a positive'),
    (['--min-radius-factor', '3'], 'min_radius_factor must be smaller'),
    (['--saturation-threshold', '0.5'],
     'saturation_threshold must be in (0, 0.5)'),
    (['--classifier-epochs', '0'], 'classifier_epochs must be a positive'),
    (['--classifier-learning-rate', '-0.1'],
     'classifier_learning_rate must be a positive finite'),
    (['--classifier-batch-size', '0'],
     'classifier_batch_size must be a positive integer'),
    (['--epochs', 'x'], "argument --epochs: invalid int value: 'x'"),
    (['--no-such-flag'], 'unrecognized arguments: --no-such-flag'),
]
BAD_DATA = [  # rejected once the data is read, before any training
    (['--n-examples', '100000'], 'n_examples 100000 is more than the 60 '
                                 'test digits'),
    (['--batch-size', '231'], 'batch_size 231 is larger than the training '
                              'set (230 examples)'),
    (['--classifier-batch-size', '231'], 'classifier_batch_size 231 is '
                                         'larger than the training set'),
    (['--dataset', 'DIR/no_such_file.pkl.gz'], 'no_such_file.pkl.gz'),
    (['--dataset', 'DIR/garbage.pkl.gz'], 'garbage.pkl.gz'),
]


def bad_argv(tiny_mnist, tmp_path, extra):
    (tmp_path / 'garbage.pkl.gz').write_bytes(b'not a gzip file')
    extra = [e.replace('DIR', str(tmp_path)) for e in extra]
    return ['--dataset', tiny_mnist, '--output-folder',
            str(tmp_path / 'out')] + TINY_ARGS + extra


def run_bad(tiny_mnist, tmp_path, extra):
    """The real command, in a new interpreter."""
    return run_script(['paper/analysis.py'] + bad_argv(tiny_mnist, tmp_path, extra))


def assert_one_error_line(code, stderr, phrase):
    assert code == 2, stderr
    assert stderr.startswith('error: ') and stderr.count('\n') == 1, stderr
    assert phrase in stderr


@pytest.mark.parametrize('extra, phrase', BAD_SETTINGS)
def test_bad_setting_is_one_line_exit_2_and_nothing_written(
        tiny_mnist, tmp_path, capsys, extra, phrase):
    # commands.analysis, what the script runs, in this
    # process: the settings are refused before the stack is imported, so a
    # new interpreter would only add its start-up time to every row
    try:
        code = commands.analysis(analysis.run_analysis,
                                 bad_argv(tiny_mnist, tmp_path, extra))
    except SystemExit as e:  # argparse's own exit
        code = e.code
    stdout, stderr = capsys.readouterr()
    assert_one_error_line(code, stderr, phrase)
    assert stdout == ''
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('extra, phrase', [
    (['--seed', '-1'], 'seed must be an integer from 0 to 4294967295'),
    (['--epochs', 'x'], "argument --epochs: invalid int value: 'x'")])
def test_the_script_turns_a_bad_setting_into_one_line_and_exit_2(
        tiny_mnist, tmp_path, extra, phrase):
    r = run_bad(tiny_mnist, tmp_path, extra)
    assert_one_error_line(r.returncode, r.stderr, phrase)
    assert r.stdout == ''
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow  # a process per case: the quick suite keeps one such test
@pytest.mark.parametrize('extra, phrase', BAD_DATA)
def test_bad_data_is_one_line_exit_2_and_nothing_written(
        tiny_mnist, tmp_path, extra, phrase):
    r = run_bad(tiny_mnist, tmp_path, extra)
    assert_one_error_line(r.returncode, r.stderr, phrase)
    assert 'epoch' not in r.stdout  # nothing trained
    assert files_under(tmp_path / 'out') == []


def test_an_output_folder_that_is_a_file_is_one_line(tiny_mnist, tmp_path):
    (tmp_path / 'out').write_text('a file, not a folder')
    r = run_bad(tiny_mnist, tmp_path, [])
    assert_one_error_line(r.returncode, r.stderr,
                          'cannot write to the output folder')
    assert (tmp_path / 'out').read_text() == 'a file, not a folder'


def test_a_folder_held_by_another_run_is_one_line(tiny_mnist, tmp_path):
    with outputs.OutputFolder(str(tmp_path / 'out')):
        r = run_bad(tiny_mnist, tmp_path, [])
    assert_one_error_line(r.returncode, r.stderr, 'another run is writing to')
    assert r.stdout == ''  # refused before reading the data
    assert files_under(tmp_path / 'out') == []


# ---- Ctrl-C -----------------------------------------------------------------

# at batch 1, each epoch of the tiny set is 230 steps: the run trains long
# enough to be interrupted in the middle of training
INTERRUPTIBLE_ARGS = ['--epochs', '10', '--batch-size', '1', '--n-hidden',
                      '20', '--n-examples', '20', '--n-radii', '5',
                      '--classifier-epochs', '5', '--classifier-batch-size',
                      '50']


def interrupt_after(line_start, dataset, out):
    """Run analysis.py, send SIGINT once a stdout line starts with
    line_start; (returncode, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, 'paper/analysis.py', '--dataset', dataset,
         '--output-folder', out] + INTERRUPTIBLE_ARGS, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(line_start):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    return proc.returncode, ''.join(seen) + out, err


@pytest.mark.skipif(not os.path.exists('/proc/self/maps'),
                    reason='needs /proc to see when numpy is being loaded')
def test_ctrl_c_while_the_modules_load_ends_without_a_traceback(tiny_mnist,
                                                                tmp_path):
    proc = subprocess.Popen(
        [sys.executable, 'paper/analysis.py', '--dataset', tiny_mnist,
         '--output-folder', str(tmp_path / 'out')] + TINY_ARGS, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # numpy's libraries are mapped: analysis.py's first imports are running
    maps = '/proc/%d/maps' % proc.pid
    while proc.poll() is None:
        with open(maps) as f:
            if 'numpy' in f.read():
                break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    # killed by the signal while loading, or cli.main's line if it was done
    assert proc.returncode in (-signal.SIGINT, 130), err
    assert 'Traceback' not in err and out == ''
    assert not (tmp_path / 'out').exists()


# the moments: reading the data, compiling, training, classifying
@pytest.mark.slow
@pytest.mark.parametrize('line_start', ['reading ', 'compiling ',
                                        'epoch 1/10', 'CAE over the '])
def test_ctrl_c_at_any_step_is_one_line_and_leaves_no_partial_file(
        tiny_mnist, tmp_path, line_start):
    out = tmp_path / 'out'
    code, stdout, stderr = interrupt_after(line_start, tiny_mnist, str(out))
    assert code == 130, (stdout, stderr)
    assert 'Traceback' not in stderr and stderr.count('\n') == 1, stderr
    # the lock is released, and no temporary file is left anywhere
    assert [f for f in files_under(out)
            if f.endswith(('.tmp', outputs.LOCK_NAME))] == []
    if line_start == 'epoch 1/10':  # test_cA's own stop, with a checkpoint
        # in epoch 2, or right after epoch 1's checkpoint when the signal
        # came while it was written
        assert re.search('stopped (in epoch 2|after epoch 1)/10', stderr)
        assert 'the analysis stopped; resume with: ' in stderr
        assert ' paper/analysis.py --resume ' in stderr


def files_and_bytes(folder):
    return {f: open(os.path.join(str(folder), f), 'rb').read()
            for f in files_under(folder)}


@pytest.mark.slow
def test_an_interrupted_training_is_kept_then_resumed_or_restarted(
        tiny_mnist, tmp_path):
    out = tmp_path / 'out'
    code, _, stderr = interrupt_after('epoch 2/10', tiny_mnist, str(out))
    assert code == 130, stderr
    checkpoint = str(out / 'cae' / CHECKPOINT_NAME)
    assert checkpoints.read_checkpoint(checkpoint)['epoch'] < 10  # unfinished
    argv = ['paper/analysis.py', '--dataset', tiny_mnist, '--output-folder',
            str(out)] + INTERRUPTIBLE_ARGS
    # a plain rerun refuses, before reading anything, and changes nothing
    before = files_and_bytes(out)
    r = run_script(argv)
    assert r.returncode == 2 and r.stdout == '', r.stdout
    assert r.stderr.startswith('error: ') and r.stderr.count('\n') == 1
    assert 'unfinished run' in r.stderr and '--resume' in r.stderr
    assert files_and_bytes(out) == before
    # --resume goes on from the checkpoint, and ends as a whole run would
    r = run_script(argv + ['--resume'])
    assert r.returncode == 0, r.stderr
    assert 'resuming from %s' % checkpoint in r.stdout
    for name in ('cae/' + CHECKPOINT_NAME, 'ae/' + AE_CHECKPOINT_NAME):
        saved = checkpoints.read_checkpoint(str(out / name))
        assert saved['epoch'] == 10


@pytest.mark.slow
def test_a_cA_run_left_unfinished_in_a_model_folder_is_not_replaced(
        tiny_mnist, tmp_path):
    """cA.py trained into out/cae and was stopped: analysis.py into out
    must not throw its work away (issue: it used to, silently)."""
    out = tmp_path / 'out'
    proc = subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', tiny_mnist, '--output-folder',
         str(out / 'cae'), '--epochs', '50', '--batch-size', '1',
         '--n-hidden', '20'], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith('epoch 1/50'):
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=300)
    assert proc.returncode == 130
    before = files_and_bytes(out)
    r = run_script(['paper/analysis.py', '--dataset', tiny_mnist,
                    '--output-folder', str(out)] + INTERRUPTIBLE_ARGS)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith('error: %s holds an unfinished run' % str(
        out / 'cae' / CHECKPOINT_NAME)), r.stderr
    assert files_and_bytes(out) == before
    # --restart is the way to replace it
    r = run_script(['paper/analysis.py', '--dataset', tiny_mnist, '--output-folder',
                    str(out), '--restart'] + INTERRUPTIBLE_ARGS)
    assert r.returncode == 0, r.stderr
    saved = checkpoints.read_checkpoint(str(out / 'cae' / CHECKPOINT_NAME))
    assert saved['n_epochs'] == 10 and saved['epoch'] == 10
