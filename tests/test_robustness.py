"""Nothing lost, nothing trusted blindly: checkpoints, resume, interrupts,
divergence, and the README's table of bad inputs, one test per row."""
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy
import PIL.Image
import pytest

import checkpoints
import cA as cA_module
from cA import test_cA
from conftest import REPO, run_script, write_synthetic_mnist
from test_mnist_data import BAD_FILES, write_gz_pickle

QUIET = open(os.devnull, 'w')
TINY = dict(batch_size=20, n_hidden=30, learning_rate=0.1)


def outputs(folder):
    return sorted(os.listdir(str(folder))) if os.path.isdir(str(folder)) \
        else []


# ---- checkpoints and resume --------------------------------------------------

def test_every_epoch_leaves_a_checkpoint_that_loads_without_pickle(
        tiny_mnist, tmp_path):
    result = test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                     training_epochs=2, log=QUIET, **TINY)
    path = str(tmp_path / cA_module.CHECKPOINT_NAME)
    with numpy.load(path, allow_pickle=False) as saved:
        numpy.testing.assert_array_equal(saved['W'], result.ca.W.get_value())
        numpy.testing.assert_array_equal(saved['costs'], result.costs)
        assert int(saved['epoch']) == 2 and int(saved['batch']) == 0
    settings = checkpoints.load_checkpoint(path)['settings']
    assert settings['learning_rate'] == 0.1 and settings['n_hidden'] == 30
    assert settings['gradient'] == 'kernel' and len(settings['data_sha256']) \
        == 64


@pytest.mark.parametrize('stop_after', [1, 2, 3])
def test_resume_after_any_epoch_is_bit_identical(tiny_mnist, tmp_path,
                                                 stop_after):
    full = test_cA(dataset=tiny_mnist, output_folder=str(tmp_path / 'full'),
                   training_epochs=4, log=QUIET, **TINY)
    folder = str(tmp_path / 'parts')
    test_cA(dataset=tiny_mnist, output_folder=folder,
            training_epochs=stop_after, log=QUIET, **TINY)
    resumed = test_cA(dataset=tiny_mnist, output_folder=folder,
                      training_epochs=4, resume=True, log=QUIET, **TINY)
    for a, b in zip(full.ca.params, resumed.ca.params):
        numpy.testing.assert_array_equal(a.get_value(), b.get_value())
    numpy.testing.assert_array_equal(full.costs, resumed.costs)


@pytest.mark.parametrize('change, phrase', [
    (dict(learning_rate=0.05), r'learning_rate 0\.1 \(checkpoint\) != 0\.05'),
    (dict(n_hidden=31), 'n_hidden'),
    (dict(seed=7), 'seed'),
    (dict(gradient='T.grad'), 'gradient'),
    (dict(dataset='other'), 'data_sha256'),
])
def test_resume_refuses_another_runs_checkpoint(tiny_mnist, tmp_path,
                                                change, phrase):
    test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
            training_epochs=1, log=QUIET, **TINY)
    kwargs = dict(TINY, dataset=tiny_mnist, training_epochs=2)
    if change.get('dataset') == 'other':
        change = dict(dataset=str(tmp_path / 'other.pkl.gz'))
        write_synthetic_mnist(change['dataset'], seed=5)
    kwargs.update(change)
    before = open(str(tmp_path / cA_module.CHECKPOINT_NAME), 'rb').read()
    with pytest.raises(checkpoints.CheckpointError, match=phrase):
        test_cA(output_folder=str(tmp_path), resume=True, log=QUIET,
                **kwargs)
    after = open(str(tmp_path / cA_module.CHECKPOINT_NAME), 'rb').read()
    assert before == after


def test_resume_without_a_checkpoint_or_from_garbage(tiny_mnist, tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match='no checkpoint'):
        test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                resume=True, log=QUIET, **TINY)
    (tmp_path / cA_module.CHECKPOINT_NAME).write_bytes(b'not an npz')
    with pytest.raises(checkpoints.CheckpointError, match='cannot be read'):
        test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                resume=True, log=QUIET, **TINY)


def test_a_checkpoint_holding_a_pickle_is_refused(tiny_mnist, tmp_path):
    path = tmp_path / cA_module.CHECKPOINT_NAME
    marker = tmp_path / 'pwned'
    numpy.savez(str(path), W=numpy.array(
        [Payload(str(marker))], dtype=object), b=0, b_prime=0, costs=0,
        epoch=0, batch=0, format=1)
    with pytest.raises(checkpoints.CheckpointError):
        test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                resume=True, log=QUIET, **TINY)
    assert not marker.exists()


class Payload(object):
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ('touch ' + self.marker,))


# ---- divergence --------------------------------------------------------------

def test_divergence_stops_at_once_and_keeps_the_last_checkpoint(tiny_mnist,
                                                                 tmp_path):
    test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
            training_epochs=1, log=QUIET, **TINY)
    checkpoint = tmp_path / cA_module.CHECKPOINT_NAME
    before = checkpoint.read_bytes()
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path), '--learning-rate', '1e200',
                    '--batch-size', '20', '--n-hidden', '30'])
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith('error:')]
    assert len(errors) == 1
    assert 'epoch 1, minibatch' in errors[0]
    assert 'smaller --learning-rate' in errors[0]
    assert checkpoint.read_bytes() == before
    assert 'epoch 1/' not in r.stdout  # it stopped within the first epoch


# ---- signals and kills: real subprocesses ------------------------------------

@pytest.fixture(scope='module')
def medium_mnist(tmp_path_factory):
    """2,000 training examples: a run at batch 1 takes some seconds, long
    enough to be interrupted in the middle."""
    path = str(tmp_path_factory.mktemp('medium') / 'medium.pkl.gz')
    write_synthetic_mnist(path, n_train=2000, seed=3)
    return path


MEDIUM = ['--batch-size', '1', '--n-hidden', '40', '--learning-rate',
          '0.01', '--epochs', '6']


def start_training(dataset, folder, extra=()):
    return subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', dataset, '--output-folder',
         folder] + MEDIUM + list(extra), cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, 'no %s after %d s' % (path, timeout)
        time.sleep(0.05)


@pytest.fixture(scope='module')
def uninterrupted(medium_mnist, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('uninterrupted'))
    proc = start_training(medium_mnist, folder)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return checkpoints.load_checkpoint(
        os.path.join(folder, cA_module.CHECKPOINT_NAME))


def assert_same_final_state(folder, expected):
    got = checkpoints.load_checkpoint(
        os.path.join(folder, cA_module.CHECKPOINT_NAME))
    assert (got['epoch'], got['batch']) == (6, 0)
    for name in ('W', 'b', 'b_prime', 'costs'):
        numpy.testing.assert_array_equal(got[name], expected[name])


@pytest.mark.parametrize('signum, code', [(signal.SIGINT, 130),
                                          (signal.SIGTERM, 143)])
def test_signal_writes_checkpoint_and_filters_then_resume_finishes(
        medium_mnist, uninterrupted, tmp_path, signum, code):
    folder = str(tmp_path)
    checkpoint = os.path.join(folder, cA_module.CHECKPOINT_NAME)
    proc = start_training(medium_mnist, folder)
    wait_for(checkpoint, proc)  # the end of epoch 1
    time.sleep(0.3)  # somewhere in epoch 2
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert 'Traceback' not in err
    assert 'resume with: python cA.py --resume' in err
    saved = checkpoints.load_checkpoint(checkpoint)
    assert (saved['epoch'], saved['batch']) != (1, 0)  # mid-epoch
    with PIL.Image.open(os.path.join(folder, 'cae_filters.png')) as image:
        image.load()
        assert image.size == (289, 289)
    # the command it printed, run as printed but for the dataset path
    resume = err.split('resume with: ')[1].split()
    assert resume[:3] == ['python', 'cA.py', '--resume']
    r = run_script(resume[1:])
    assert r.returncode == 0, r.stderr
    assert 'resuming from' in r.stdout
    assert_same_final_state(folder, uninterrupted)


def test_sigkill_leaves_whole_files_and_resume_finishes(medium_mnist,
                                                        uninterrupted,
                                                        tmp_path):
    folder = str(tmp_path)
    checkpoint = os.path.join(folder, cA_module.CHECKPOINT_NAME)
    proc = start_training(medium_mnist, folder)
    wait_for(checkpoint, proc)
    time.sleep(numpy.random.uniform(0.2, 1.5))
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # whatever it left is whole: the checkpoint loads, a PNG (if any) opens
    saved = checkpoints.load_checkpoint(checkpoint)
    assert saved['epoch'] >= 1
    png = os.path.join(folder, 'cae_filters.png')
    if os.path.exists(png):
        with PIL.Image.open(png) as image:
            image.load()
    r = run_script(['cA.py', '--resume', '--dataset', medium_mnist,
                    '--output-folder', folder] + MEDIUM)
    assert r.returncode == 0, r.stderr
    assert_same_final_state(folder, uninterrupted)
    assert [f for f in os.listdir(folder) if f.endswith('.tmp')] == []


def test_kill_during_a_write_leaves_the_old_file(tmp_path):
    """A process killed inside atomic_write, after writing half of the new
    file: the old file is untouched."""
    path = tmp_path / 'out.bin'
    path.write_bytes(b'old contents')
    code = ('import os, sys\n'
            'from utils import atomic_write\n'
            'with atomic_write(sys.argv[1]) as f:\n'
            '    f.write(b"half of the new")\n'
            '    f.flush()\n'
            '    os.kill(os.getpid(), 9)\n')
    r = run_script(['-c', code, str(path)])
    assert r.returncode == -signal.SIGKILL
    assert path.read_bytes() == b'old contents'


# ---- the table of bad inputs (README), through the command line --------------

def bad_dataset(name):
    def write(folder):
        path = folder / 'bad.pkl.gz'
        BAD_FILES[name][0](path)
        return str(path)
    return write


def malicious_dataset(folder):
    path = folder / 'evil.pkl.gz'
    write_gz_pickle(path, Payload(str(folder / 'pwned')))
    return str(path)


# row of the README table -> (dataset maker or None, extra flags, phrase)
TABLE = {
    'dataset missing': (lambda f: str(f / 'nowhere.pkl.gz'), [],
                        'does not exist'),
    'not gzip': (bad_dataset('not gzip'), [], 'is not a gzip file'),
    'truncated': (bad_dataset('truncated'), [], 'is truncated'),
    'wrong structure': (bad_dataset('dict'), [], 'MNIST structure'),
    'wrong shape': (bad_dataset('783 columns'), [], 'expected (n, 784)'),
    'wrong dtype': (bad_dataset('integer x'), [], 'floating type'),
    'labels do not match': (bad_dataset('length mismatch'), [],
                            'images but'),
    'values outside [0, 1]': (bad_dataset('above 1'), [], 'outside [0, 1]'),
    'NaN in the data': (bad_dataset('NaN'), [], 'NaN'),
    'pickle that runs code': (malicious_dataset, [], 'only numpy arrays'),
    'batch size 0': (None, ['--batch-size', '0'],
                     'batch_size must be a positive integer'),
    'epochs 0': (None, ['--epochs', '0'], 'training_epochs must be'),
    'hidden units -3': (None, ['--n-hidden', '-3'], 'n_hidden must be'),
    'batch larger than the training set': (None, ['--batch-size', '100000'],
                                           'larger than the training set'),
    'negative contraction level': (None, ['--contraction-level', '-0.1'],
                                   'contraction_level must be'),
    'learning rate 0': (None, ['--learning-rate', '0'],
                        'learning_rate must be a positive finite'),
    'learning rate nan': (None, ['--learning-rate', 'nan'],
                          'learning_rate must be a positive finite'),
    'learning rate inf': (None, ['--learning-rate', 'inf'],
                          'learning_rate must be a positive finite'),
    'output folder not writable': (None, ['--output-folder', 'FILE/plots'],
                                   'cannot write to the output folder'),
    'resume without a checkpoint': (None, ['--resume'], 'no checkpoint'),
}


@pytest.mark.parametrize('row', sorted(TABLE))
def test_bad_input_gives_one_line_exit_2_and_loses_nothing(
        row, tiny_mnist, tmp_path):
    make, extra, phrase = TABLE[row]
    dataset = make(tmp_path) if make else tiny_mnist
    a_file = tmp_path / 'a_file'
    a_file.write_text('a file, not a folder')
    out = tmp_path / 'out'
    extra = [e.replace('FILE', str(a_file)) for e in extra]
    argv = ['cA.py', '--dataset', dataset, '--output-folder', str(out)]
    r = run_script(argv + extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert 'Traceback' not in r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith('error:')]
    assert len(errors) == 1 and phrase in errors[0], r.stderr
    # nothing compiled, trained or written
    assert 'epoch' not in r.stdout
    assert [f for f in outputs(out) if not f.startswith('.')] == []
    assert not (tmp_path / 'pwned').exists()
