"""Nothing lost, nothing trusted blindly: checkpoints, resume, interrupts,
divergence, and the README's table of bad inputs, one test per row."""
import os
import signal
import subprocess
import sys
import time

import numpy
import PIL.Image
import pytest

from machinery import backend
from machinery import checkpoints
from machinery import training
from cA import test_cA
from conftest import (REPO, run_script, saved_checkpoint,
                      write_synthetic_mnist)
from test_mnist_data import BAD_FILES, write_gz_pickle

QUIET = open(os.devnull, 'w')
CHECKPOINT_NAME = 'cae_checkpoint.npz'  # cA.output_names(0.1)[0]
TINY = dict(batch_size=20, n_hidden=30, learning_rate=0.1)
QUICK = dict(TINY, training_epochs=2)

# real training processes, killed and resumed: minutes in all
pytestmark = pytest.mark.slow


def outputs(folder):
    return sorted(os.listdir(str(folder))) if os.path.isdir(str(folder)) \
        else []


# ---- checkpoints and resume --------------------------------------------------

def test_every_epoch_leaves_a_checkpoint_that_loads_without_pickle(
        tiny_mnist, tmp_path):
    result = test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                     training_epochs=2, log=QUIET, **TINY)
    path = str(tmp_path / CHECKPOINT_NAME)
    with numpy.load(path, allow_pickle=False) as saved:
        numpy.testing.assert_array_equal(saved['param_W'],
                                         result.ca.W.get_value())
        assert int(saved['epoch']) == 2
        assert list(saved['param_names']) == ['W', 'b', 'b_prime']
    # the finished epochs' costs are in the history beside it, an .npy file
    history = numpy.load(str(tmp_path / 'cae_costs.npy'), allow_pickle=False)
    numpy.testing.assert_array_equal(history, result.costs)
    settings = checkpoints.read_checkpoint(path)['settings']
    assert settings['learning_rate'] == 0.1 and settings['n_hidden'] == 30
    assert settings['gradient'] == 'auto' and len(settings['data_sha256']) \
        == 64
    stack, digest = settings['step'].split(':')  # the step's fingerprint
    assert stack == backend.STACK.key and len(digest) == 64


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
    before = open(str(tmp_path / CHECKPOINT_NAME), 'rb').read()
    with pytest.raises(checkpoints.CheckpointError, match=phrase):
        test_cA(output_folder=str(tmp_path), resume=True, log=QUIET,
                **kwargs)
    after = open(str(tmp_path / CHECKPOINT_NAME), 'rb').read()
    assert before == after


def test_resume_without_a_checkpoint_or_from_garbage(tiny_mnist, tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match='no checkpoint'):
        test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                resume=True, log=QUIET, **TINY)
    (tmp_path / CHECKPOINT_NAME).write_bytes(b'not an npz')
    with pytest.raises(checkpoints.CheckpointError,
                       match='cannot be used .not an .npz archive .File is not a zip file'):
        test_cA(dataset=tiny_mnist, output_folder=str(tmp_path),
                resume=True, log=QUIET, **TINY)


def test_a_checkpoint_holding_a_pickle_is_refused(tiny_mnist, tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    marker = tmp_path / 'pwned'
    numpy.savez(str(path), param_W=numpy.array(
        [Payload(str(marker))], dtype=object), param_names=['W'], epoch=0,
        n_epochs=1, format=3, history='0' * 64)
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
    checkpoint = tmp_path / CHECKPOINT_NAME
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
    return saved_checkpoint(os.path.join(folder, CHECKPOINT_NAME))


def assert_same_final_state(folder, expected):
    got = saved_checkpoint(os.path.join(folder, CHECKPOINT_NAME))
    assert got['epoch'] == 6
    assert list(got['params']) == ['W', 'b', 'b_prime']
    for name in ('W', 'b', 'b_prime'):
        numpy.testing.assert_array_equal(got['params'][name],
                                         expected['params'][name])
    assert got['history'] == expected['history']  # the same costs, chained


@pytest.mark.parametrize('signum, code', [(signal.SIGINT, 130),
                                          (signal.SIGTERM, 143)])
def test_signal_writes_checkpoint_and_filters_then_resume_finishes(
        medium_mnist, uninterrupted, tmp_path, signum, code):
    folder = str(tmp_path)
    checkpoint = os.path.join(folder, CHECKPOINT_NAME)
    proc = start_training(medium_mnist, folder)
    wait_for(checkpoint, proc)  # the end of epoch 1: the signal comes in 2
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert 'Traceback' not in err
    saved = checkpoints.read_checkpoint(checkpoint)
    assert saved['epoch'] == 1  # the epoch done; the second trains again
    assert 'stopped in epoch 2/6 after minibatch ' in err
    with PIL.Image.open(os.path.join(folder, 'cae_filters.png')) as image:
        image.load()
        assert image.size == (289, 289)
    # the command it printed, pasted into a shell in the same folder
    hint = err.split('resume with: ')[1].strip()
    assert ' cA.py --resume ' in hint
    r = subprocess.run(hint, shell=True, cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'resuming from' in r.stdout
    assert_same_final_state(folder, uninterrupted)
    # what the resumed process says it trained: epochs 2-6, the second
    # from its start
    epoch_lines = [l for l in r.stdout.splitlines() if l.startswith('epoch ')]
    assert [l.split()[1] for l in epoch_lines] == ['%d/6' % e
                                                    for e in range(2, 7)]
    assert 'trained 5 epochs in' in r.stdout


def interrupt_then_paste_the_hint(proc, folder, cwd, env):
    """Ctrl-C to the training ``proc`` once its first checkpoint is in
    ``folder``, then the resume command it printed, pasted into a shell in
    ``cwd`` with ``env``; returns the resumed run (CompletedProcess)."""
    wait_for(os.path.join(folder, CHECKPOINT_NAME), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    hint = err.split('resume with: ')[1].strip()
    r = subprocess.run(hint, shell=True, cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (hint, r.stderr)
    return r


def path_with(situation):
    """PATH as a user's shell may have it: this environment activated, the
    interpreter it was made from first (pyenv's shell, or that Python's
    bin/ on PATH), or neither."""
    venv_bin = os.path.dirname(os.path.abspath(sys.executable))
    base_bin = os.path.dirname(os.path.realpath(sys.executable))
    rest = os.environ.get('PATH', '')
    return {'activated': venv_bin + os.pathsep + rest,
            'base first': base_bin + os.pathsep + rest,
            'neither': '/usr/bin:/bin'}[situation]


@pytest.mark.slow
@pytest.mark.parametrize('situation', ['activated', 'base first', 'neither'])
def test_the_resume_hint_runs_whatever_comes_first_on_path(
        medium_mnist, uninterrupted, tmp_path, situation):
    env = dict(os.environ, PATH=path_with(situation))
    if situation == 'activated':
        env['VIRTUAL_ENV'] = os.path.dirname(os.path.dirname(sys.executable))
    folder = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', medium_mnist,
         '--output-folder', folder] + MEDIUM, cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r = interrupt_then_paste_the_hint(proc, folder, REPO, env)
    assert 'resuming from' in r.stdout
    assert_same_final_state(folder, uninterrupted)


def edited_cA(folder, old, new):
    """A copy of cA.py in ``folder`` with one edit, as a learner makes it
    (the rest of the repository stays on PYTHONPATH)."""
    source = open(os.path.join(REPO, 'cA.py')).read()
    for a, b in zip(old, new):
        assert source.count(a) == 1, a
        source = source.replace(a, b)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'cA.py'), 'w') as f:
        f.write(source)
    return dict(os.environ, PYTHONPATH=REPO)


UNTIED = (['        self.W_prime = self.W.T\n',
           '        self.params = [self.W, self.b, self.b_prime]\n'],
          ["        self.W_prime = theano.shared(\n"
           "            self.W.get_value().T.copy(), name='W_prime')\n",
           '        self.params = [self.W, self.b, self.b_prime, '
           'self.W_prime]\n'])


def test_an_untied_decoder_is_checkpointed_and_resumes_bit_for_bit(
        medium_mnist, tmp_path):
    """A learner's class that trains a parameter of its own: interrupted
    in its second epoch and resumed, it ends with every parameter of an
    uninterrupted run, W_prime included."""
    code = str(tmp_path / 'code')
    env = edited_cA(code, *UNTIED)
    args = [sys.executable, 'cA.py', '--dataset', medium_mnist] + MEDIUM[:-1]
    whole, parts = str(tmp_path / 'whole'), str(tmp_path / 'parts')
    r = subprocess.run(args + ['3', '--output-folder', whole], cwd=code,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'the kernel does not take over: it trains W, b, b_prime, ' \
        'W_prime' in r.stdout
    proc = subprocess.Popen(args + ['3', '--output-folder', parts], cwd=code,
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    interrupt_then_paste_the_hint(proc, parts, code, env)
    expected = saved_checkpoint(os.path.join(whole,
                                                        CHECKPOINT_NAME))
    got = saved_checkpoint(os.path.join(parts, CHECKPOINT_NAME))
    assert list(got['params']) == ['W', 'b', 'b_prime', 'W_prime']
    assert got['epoch'] == 3
    for name, value in expected['params'].items():
        numpy.testing.assert_array_equal(got['params'][name], value)
    # the decoder trained: it is no longer the transpose of W
    assert not numpy.allclose(got['params']['W_prime'],
                              got['params']['W'].T)


def test_resume_after_an_edit_of_the_cost_is_refused(tiny_mnist, tmp_path):
    folder = str(tmp_path / 'out')
    argv = ['--dataset', tiny_mnist, '--output-folder', folder,
            '--batch-size', '20', '--n-hidden', '30']
    assert run_script(['cA.py', '--epochs', '1'] + argv).returncode == 0
    before = open(os.path.join(folder, CHECKPOINT_NAME), 'rb').read()
    code = str(tmp_path / 'code')
    written = ('        return -T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), '
               'axis=1)\n')
    env = edited_cA(code, [written], [written.replace('-T.sum',
                                                      '-2 * T.sum')])
    r = run_script(['cA.py', '--resume', '--epochs', '2'] + argv, cwd=code,
                   env=env)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr == (
        'error: cannot resume from %s: it was trained by another step (the '
        'cost, penalty or update that get_cost_updates builds has changed '
        'since); it was left as it is: start over with --restart, or use '
        'another --output-folder\n' % os.path.join(folder, CHECKPOINT_NAME))
    assert open(os.path.join(folder, CHECKPOINT_NAME), 'rb').read() == before
    assert 'epoch 2/2' not in r.stdout
    # the way on: --restart trains the edited class from the start
    r = run_script(['cA.py', '--restart', '--epochs', '2'] + argv, cwd=code,
                   env=env)
    assert r.returncode == 0, r.stderr


# when the kill comes after the first checkpoint, in epochs of this run (its
# second line measures one): during a training step, the epoch's end or a
# checkpoint write, wherever this machine's speed puts it, and always
# before the run's last epoch
@pytest.mark.parametrize('delay', [0.0, 0.3, 0.95])
def test_sigkill_leaves_whole_files_and_resume_finishes(
        medium_mnist, uninterrupted, tmp_path, delay):
    folder = str(tmp_path)
    checkpoint = os.path.join(folder, CHECKPOINT_NAME)
    proc = start_training(medium_mnist, folder)
    wait_for(checkpoint, proc)
    for line in proc.stdout:
        if line.startswith('epoch 1/'):  # '... 0.4 s': the epoch's seconds
            time.sleep(delay * float(line.split()[-2]))
            break
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # whatever it left is whole: the checkpoint loads, a PNG (if any) opens
    saved = checkpoints.read_checkpoint(checkpoint)
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


# ---- one run per folder, and no resumable work thrown away ------------------

LONG = ['--batch-size', '1', '--n-hidden', '40', '--epochs', '500']


def test_a_second_run_into_the_same_folder_is_refused_at_once(medium_mnist,
                                                              tmp_path):
    folder = str(tmp_path)
    checkpoint = os.path.join(folder, CHECKPOINT_NAME)
    first = subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', medium_mnist,
         '--output-folder', folder] + LONG, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(checkpoint, first)
        before = open(checkpoint, 'rb').read()
        second = run_script(['cA.py', '--dataset', 'no/such/data.pkl.gz',
                             '--output-folder', folder])
        assert second.returncode == 2 and 'Traceback' not in second.stderr
        assert second.stderr.startswith(
            'error: another run is writing to %s (pid %d: cA.py'
            % (folder, first.pid))
        assert second.stderr.count('\n') == 1
        # refused before loading the data (which does not even exist)
        assert second.stdout == ''
        assert first.poll() is None  # the first run goes on, untouched
        saved = checkpoints.read_checkpoint(checkpoint)
        assert saved['epoch'] >= 1
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    # it kept the epochs done, and trained on after the second run's try
    assert checkpoints.read_checkpoint(checkpoint)['epoch'] >= saved['epoch']
    assert before


class StopAfterFirstEpoch(object):
    """A log that stops the run (as Ctrl-C would, outside the loop's
    signal handling) at the second epoch's line, after the first epoch's
    checkpoint: what it leaves is a real, unfinished checkpoint."""

    def write(self, text):
        if text.startswith('epoch 2/'):
            raise KeyboardInterrupt

    def flush(self):
        pass


def unfinished_run(dataset, folder):
    with pytest.raises(KeyboardInterrupt):
        test_cA(dataset=dataset, output_folder=folder, training_epochs=3,
                log=StopAfterFirstEpoch(), **TINY)
    return os.path.join(folder, CHECKPOINT_NAME)


def test_a_fresh_start_does_not_throw_away_an_unfinished_run(tiny_mnist,
                                                             tmp_path):
    folder = str(tmp_path)
    checkpoint = unfinished_run(tiny_mnist, folder)
    before = open(checkpoint, 'rb').read()
    argv = ['cA.py', '--dataset', tiny_mnist, '--output-folder', folder,
            '--batch-size', '20', '--n-hidden', '30', '--learning-rate',
            '0.1', '--epochs', '3']
    r = run_script(argv)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr == ('error: %s holds an unfinished run (1 of 3 epochs '
                        'done): resume it with --resume, or start over with '
                        '--restart, which replaces it\n' % checkpoint)
    assert open(checkpoint, 'rb').read() == before
    # --resume finishes it; --restart starts over
    assert run_script(argv + ['--resume']).returncode == 0
    unfinished_run(tiny_mnist, folder)
    r = run_script(argv + ['--restart'])
    assert r.returncode == 0, r.stderr
    assert 'resuming' not in r.stdout
    assert checkpoints.read_checkpoint(checkpoint)['epoch'] == 3
    # a finished run's checkpoint is replaced by a new run without a word
    assert run_script(argv).returncode == 0


def test_resume_and_restart_together_are_refused(tiny_mnist, tmp_path):
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path), '--resume', '--restart'])
    assert r.returncode == 2
    assert r.stderr == 'error: --resume and --restart exclude each other: ' \
                       'give one\n'


# ---- checkpoints are read without trusting them --------------------------------

def rewrite(path, **changes):
    """The checkpoint at path with some arrays replaced (numpy.savez)."""
    with numpy.load(path, allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays.update(changes)
    numpy.savez(path, **arrays)


def flip_a_byte(path):
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0x10  # in W's data, inside the zip archive
    open(path, 'wb').write(bytes(data))


def truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])


def change_history(path, epoch):
    """Change one cost of the history beside the checkpoint at path, in
    a finished epoch (epoch) or cut the file short (None)."""
    history = checkpoints.history_path(path)
    data = bytearray(open(history, 'rb').read())
    if epoch is None:
        data = data[:200]
    else:
        data[128 + 16 * 12 * (epoch - 1) + 3] ^= 0x01
    open(history, 'wb').write(bytes(data))


def foreign(path):
    numpy.savez(path, weights=numpy.ones((3, 3)))


CORRUPT = {
    'truncated': (truncate, 'File is not a zip file'),
    'a flipped bit': (flip_a_byte, 'Bad CRC-32'),
    'another program\'s npz': (foreign, 'not a checkpoint of cA.py'),
    'W that does not fit b': (lambda p: rewrite(
        p, param_W=numpy.zeros((784, 29))), 'it holds the parameters W '
        '(784, 29), b (30,), b_prime (784,) where this cA trains W (784, 30)'),
    'another number of hidden units': (lambda p: rewrite(
        p, param_W=numpy.zeros((784, 29)), param_b=numpy.zeros(29)),
        'where this cA trains W (784, 30), b (30,), b_prime (784,)'),
    'a parameter of another cA': (lambda p: rewrite(
        p, param_names=numpy.asarray(['W', 'b', 'b_prime', 'V']),
        param_V=numpy.zeros(3)), 'where this cA trains W (784, 30)'),
    'a parameter missing': (lambda p: rewrite(
        p, param_names=numpy.asarray(['W', 'b', 'b_prime', 'V'])),
        'its parameters W, b, b_prime, V are not all in it'),
    'integer W': (lambda p: rewrite(p, param_W=numpy.zeros((784, 30),
                                                           'int64')),
                  'param_W has dtype int64'),
    'NaN in W': (lambda p: rewrite(p, param_W=numpy.full((784, 30),
                                                         numpy.nan)),
                 'W holds NaN'),
    'an epoch out of range': (lambda p: rewrite(p, epoch=numpy.asarray(99)),
                              'it has 99 epochs done of its 3'),
    'a negative epoch': (lambda p: rewrite(p, epoch=numpy.asarray(-4)),
                         'it has -4 epochs done of its 3'),
    'another step': (lambda p: rewrite(
        p, setting_step=numpy.asarray(backend.STACK.key + ':' + '0' * 64)),
        'it was trained by another step'),
    'a history that is not a sha256': (lambda p: rewrite(
        p, history=numpy.asarray('x' * 64)), 'history digest is not'),
    'a cost history changed': (lambda p: change_history(p, 1),
                               'is not the one of the checkpoint'),
    'a cost history cut short': (lambda p: change_history(p, None),
                                 'cut short'),
    'a cost history missing': (lambda p: os.remove(checkpoints.history_path(
        p)), 'of the checkpoint is missing'),
    'a string epoch': (lambda p: rewrite(p, epoch=numpy.asarray('1')),
                       'epoch has dtype <U1'),
}


@pytest.mark.parametrize('damage', sorted(CORRUPT))
def test_a_damaged_checkpoint_is_one_line_and_left_as_it_is(
        damage, tiny_mnist, tmp_path):
    folder = str(tmp_path)
    checkpoint = unfinished_run(tiny_mnist, folder)
    damage_it, phrase = CORRUPT[damage]
    damage_it(checkpoint)
    before = open(checkpoint, 'rb').read()
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    folder, '--batch-size', '20', '--n-hidden', '30',
                    '--learning-rate', '0.1', '--epochs', '3', '--resume'])
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.count('\n') == 1, r.stderr
    assert r.stderr.startswith('error: ') and phrase in r.stderr, r.stderr
    assert 'left as it is' in r.stderr and '--restart' in r.stderr
    assert open(checkpoint, 'rb').read() == before
    assert 'epoch' not in r.stdout


# ---- full disks ----------------------------------------------------------------

@pytest.fixture
def tmpfs():
    """mount(size): a tmpfs of that size, mounted for the test (root)."""
    mounted = []

    def mount(size, folder):
        if os.geteuid() != 0:
            pytest.skip('mounting a tmpfs needs root')
        os.makedirs(folder)
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s' % size,
                            'tmpfs', folder], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip('cannot mount a tmpfs here: %s' % r.stderr.strip())
        mounted.append(folder)
        return folder
    yield mount
    for folder in mounted:
        subprocess.run(['umount', '-l', folder], check=True)


def test_a_disk_that_fills_up_mid_run_keeps_the_last_checkpoint(
        tiny_mnist, tmp_path, tmpfs):
    """The disk has room for the run when it starts; another program fills
    it while the run is stopped after epoch 2: its checkpoint cannot be
    written, and the last one, of epoch 1, stays whole."""
    folder = tmpfs('4m', str(tmp_path / 'disk'))
    proc = subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', tiny_mnist, '--output-folder',
         folder, '--batch-size', '20', '--n-hidden', '30', '--learning-rate',
         '0.1', '--epochs', '3'], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith('epoch 2/3'):  # epoch 1's checkpoint is written
            proc.send_signal(signal.SIGSTOP)
            break
    with open(os.path.join(folder, 'filler'), 'wb', buffering=0) as filler:
        with pytest.raises(OSError):
            while True:
                filler.write(b'x' * 4096)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=300)
    checkpoint = os.path.join(folder, CHECKPOINT_NAME)
    assert proc.returncode == 2 and 'Traceback' not in err
    assert err == ('error: cannot write %s: no space left on the device; the '
                   'previous file is unchanged\n' % checkpoint)
    assert 'epoch 3/3' not in out
    saved = checkpoints.read_checkpoint(checkpoint)  # whole, and usable
    assert saved['epoch'] == 1
    assert sorted(os.listdir(folder)) == [CHECKPOINT_NAME,
                                          'cae_costs.npy', 'filler']


def disk_need(n_hidden=30, epochs=20, n_batches=12):
    """What cA.py asks of the disk for the tiny runs (SafeRun's check)."""
    shapes = {'W': (784, n_hidden), 'b': (n_hidden,), 'b_prime': (784,)}
    return 2 * checkpoints.checkpoint_size(shapes, 'float64') + \
        checkpoints.history_size(epochs, n_batches) + \
        2 * training.FILTERS_BYTES


@pytest.mark.parametrize('room', ['64k', 'one checkpoint and a half'])
def test_a_disk_too_small_for_the_outputs_is_refused_before_training(
        tiny_mnist, tmp_path, tmpfs, room):
    """Replacing a checkpoint atomically needs room for two: a disk with
    1.5 times a checkpoint free is refused before training, not after its
    first epoch."""
    shapes = {'W': (784, 30), 'b': (30,), 'b_prime': (784,)}
    size = '%dk' % (1.5 * checkpoints.checkpoint_size(shapes, 'float64')
                    // 1024) if room != '64k' else room
    folder = tmpfs(size, str(tmp_path / 'disk'))
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    folder, '--batch-size', '20', '--n-hidden', '30'])
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.startswith(
        'error: not enough space in %s for the checkpoint (twice, to replace '
        'it), the cost history and the filters: it needs %.1f MB'
        % (folder, disk_need() / 1e6)), r.stderr
    assert 'epoch' not in r.stdout
    assert os.listdir(folder) == []


def test_a_disk_with_the_room_asked_for_is_enough(tiny_mnist, tmp_path,
                                                  tmpfs):
    """The other side of the estimate: with what the check asks for and
    no more (rounded up to the tmpfs's pages), the run writes everything."""
    folder = tmpfs('%dk' % (disk_need(epochs=3) // 1024 + 8),
                   str(tmp_path / 'disk'))
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    folder, '--batch-size', '20', '--n-hidden', '30',
                    '--learning-rate', '0.1', '--epochs', '3'])
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(folder)) == [CHECKPOINT_NAME,
                                          'cae_costs.npy', 'cae_filters.png']


def test_the_checkpoint_does_not_grow_with_the_epochs(tiny_mnist, tmp_path):
    """What a checkpoint holds, and the work of writing it, is the same at
    epoch 1 and at epoch 8; the costs of the finished epochs go to the
    history beside it, once each."""
    sizes = {}
    for epochs in (1, 8):
        folder = tmp_path / str(epochs)
        test_cA(dataset=tiny_mnist, output_folder=str(folder),
                training_epochs=epochs, log=QUIET, **TINY)
        sizes[epochs] = os.path.getsize(str(folder / 'cae_checkpoint.npz'))
        history = numpy.load(str(folder / 'cae_costs.npy'))
        assert history.shape == (epochs, 12, 2) and numpy.all(history > 0)
    assert sizes[1] == sizes[8]


@pytest.mark.parametrize('script, args, phrase', [
    ('cA.py', ['--epochs', str(10 ** 12)],
     'training_epochs 1000000000000 needs about 335 TiB of memory for the '
     'cost of every minibatch (16 bytes each, 23 minibatches an epoch)'),
    ('cA.py', ['--n-hidden', str(10 ** 9)],
     'n_hidden 1000000000 needs about 28.5 TiB of memory for W (784 x '
     '1000000000) and its copies'),
    ('ScA.py', ['--hidden-layers-sizes', str(10 ** 8), '--pretraining-epochs',
                '1', '--finetune-epochs', '1'],
     'hidden_layers_sizes [100000000] needs about'),
    ('paper/analysis.py', ['--n-radii', str(10 ** 6)],
     'n_radii must be at most 1000'),
])
def test_settings_beyond_the_machine_are_refused_before_any_work(
        tiny_mnist, tmp_path, script, args, phrase):
    out = str(tmp_path / 'out')
    folder = ['--output-folder', out] if script != 'ScA.py' else []
    start = time.monotonic()
    r = run_script([script, '--dataset', tiny_mnist] + folder + args)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.startswith('error: ' + phrase) and \
        r.stderr.count('\n') == 1, r.stderr
    if 'needs about' in phrase:
        assert 'is available: choose a smaller' in r.stderr
    assert 'epoch' not in r.stdout and 'compiling' not in r.stdout
    assert not os.path.exists(out) or os.listdir(out) == []
    assert time.monotonic() - start < 120


@pytest.mark.parametrize('seed', ['-1', '4294967296'])
def test_a_seed_numpy_cannot_take_is_one_line(tiny_mnist, tmp_path, seed):
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path), '--seed', seed])
    assert r.returncode == 2
    assert r.stderr == ('error: seed must be an integer from 0 to '
                        '4294967295, got %s\n' % seed)
    assert os.listdir(str(tmp_path)) == []


# ---- Ctrl-C at any moment --------------------------------------------------------

def wait_until_loading(proc, library='numpy'):
    """Return once the process has mapped ``library``: its imports run."""
    maps = '/proc/%d/maps' % proc.pid
    while proc.poll() is None:
        with open(maps) as f:
            if library in f.read():
                return


@pytest.mark.skipif(not os.path.exists('/proc/self/maps'),
                    reason='needs /proc to see when numpy is being loaded')
@pytest.mark.parametrize('script, args', [
    ('cA.py', ['--output-folder', 'OUT']),
    ('logistic_sgd.py', ['--model-path', 'OUT/best.npz']),
    ('ScA.py', []),
    ('-m machinery.mnist_data', ['OUT/mnist.pkl.gz']),
])
def test_ctrl_c_while_the_modules_load_ends_without_a_traceback(
        tiny_mnist, tmp_path, script, args):
    out = str(tmp_path / 'out')
    dataset = [] if 'mnist_data' in script else ['--dataset', tiny_mnist]
    proc = subprocess.Popen(
        [sys.executable] + script.split() + dataset +
        [a.replace('OUT', out) for a in args], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_loading(proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    # ended by the signal while loading, or cli.main's line if it was done
    assert proc.returncode in (-signal.SIGINT, 130), stderr
    assert 'Traceback' not in stderr
    assert not os.path.exists(out) or os.listdir(out) == []


def test_ctrl_c_while_compiling_is_one_line(tiny_mnist, tmp_path):
    """With an empty compile cache, so that the stack really compiles C."""
    env = dict(os.environ, **{backend.STACK.flags_var: 'base_compiledir=%s'
                              % (tmp_path / 'cache')})
    proc = subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', tiny_mnist, '--output-folder',
         str(tmp_path / 'out'), '--n-hidden', '30'], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith('reading ')
    assert proc.stdout.readline().startswith('compiling the training step')
    time.sleep(1.0)  # well into compiling C, which takes many seconds
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr == 'interrupted (Ctrl-C); nothing was left half-written\n'
    assert os.listdir(str(tmp_path / 'out')) == []


# ---- what a run replaces ------------------------------------------------------

def test_a_plain_autoencoders_files_say_so_and_a_cae_run_leaves_them(
        tiny_mnist, tmp_path):
    quiet = open(os.devnull, 'w')
    test_cA(dataset=tiny_mnist, output_folder=str(tmp_path), log=quiet,
            contraction_level=0.0, **QUICK)
    assert sorted(os.listdir(str(tmp_path))) == ['ae_checkpoint.npz',
                                                 'ae_costs.npy',
                                                 'ae_filters.png']
    test_cA(dataset=tiny_mnist, output_folder=str(tmp_path), log=quiet,
            **QUICK)
    assert sorted(os.listdir(str(tmp_path))) == [
        'ae_checkpoint.npz', 'ae_costs.npy', 'ae_filters.png',
        'cae_checkpoint.npz', 'cae_costs.npy', 'cae_filters.png']


def test_a_run_that_replaces_another_says_so_in_one_line(tiny_mnist,
                                                         tmp_path):
    import io
    first, second = io.StringIO(), io.StringIO()
    test_cA(dataset=tiny_mnist, output_folder=str(tmp_path), log=first,
            **QUICK)
    assert 'note:' not in first.getvalue()
    test_cA(dataset=tiny_mnist, output_folder=str(tmp_path), log=second,
            **dict(QUICK, training_epochs=1))
    notes = [l for l in second.getvalue().splitlines()
             if l.startswith('note:')]
    assert len(notes) == 1
    assert str(tmp_path / 'cae_checkpoint.npz') in notes[0]
    assert str(tmp_path / 'cae_filters.png') in notes[0]
    assert 'a finished run of %d epochs (lambda 0.1, 30 hidden units)' % \
        QUICK['training_epochs'] in notes[0]
