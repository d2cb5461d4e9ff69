"""What an adversarial user does, through the real command lines: links
where a run writes, files that claim more than they hold, finished work
in the folder of a new run, stop signals at awkward moments, data and
settings at their edges, a broken environment, odd paths. Each case gives
a result or one ``error:`` line, writes through no link and loses nothing.
"""
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy
import pytest

from conftest import REPO, one_error_line, run_script, synthetic_digits
from machinery import backend, checkpoints, mnist_data, npz_files, outputs

MB = 2 ** 20
TINY = ['--epochs', '2', '--n-hidden', '8', '--batch-size', '20']


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def plant_link(folder, name, target):
    """A symbolic link at folder/name to ``target``, a file of someone
    else's that holds a secret."""
    os.makedirs(folder, exist_ok=True)
    with open(target, 'w') as f:
        f.write('a secret that must stay\n')
    os.symlink(target, os.path.join(folder, name))


# ---- 1. no write through a link ---------------------------------------------

def script_writing_to(folder, tiny_mnist):
    """Each script that writes, with ``folder`` as where it writes."""
    return {
        'cA.py': ['cA.py', '--dataset', tiny_mnist, '--output-folder',
                  folder] + TINY,
        'logistic_sgd.py': ['logistic_sgd.py', '--dataset', tiny_mnist,
                            '--epochs', '1', '--batch-size', '20',
                            '--model-path', os.path.join(folder, 'm.npz')],
        'analysis.py': ['paper/analysis.py', '--dataset', tiny_mnist,
                        '--output-folder', folder, '--epochs', '1',
                        '--n-hidden', '8', '--n-examples', '5',
                        '--classifier-epochs', '1'],
        'table1.py': ['paper/table1.py', '--dataset', tiny_mnist,
                      '--output-folder', folder, '--n-hidden', '8',
                      '--pretraining-epochs', '1', '--finetune-epochs', '1'],
    }


@pytest.mark.parametrize('script', ['cA.py', 'logistic_sgd.py',
                                    'analysis.py', 'table1.py'])
@pytest.mark.parametrize('kind', ['symbolic', 'hard'])
def test_a_link_where_the_lock_goes_is_refused_and_not_written(
        tiny_mnist, tmp_path, script, kind):
    folder = str(tmp_path / 'shared')
    target = str(tmp_path / 'notes.txt')
    plant_link(folder, '.lock', target)
    if kind == 'hard':
        os.remove(os.path.join(folder, '.lock'))
        os.link(target, os.path.join(folder, '.lock'))
    before = digest(target)
    r = run_script(script_writing_to(folder, tiny_mnist)[script])
    one_error_line(r, os.path.join(folder, '.lock'),
                   'a symbolic link' if kind == 'symbolic' else
                   'a hard link (one of 2 names of a file)',
                   'never through a link')
    assert digest(target) == before
    assert r.stdout == ''  # nothing read, nothing trained


def test_the_data_command_refuses_a_link_where_its_lock_goes(tmp_path):
    path = str(tmp_path / 'mnist.pkl.gz')  # missing: it would fetch it
    target = str(tmp_path / 'notes.txt')
    plant_link(str(tmp_path), '.mnist.pkl.gz.lock', target)
    before = digest(target)
    r = run_script(['-m', 'machinery.mnist_data', path])
    one_error_line(r, '.mnist.pkl.gz.lock is a symbolic link')
    assert digest(target) == before and not os.path.exists(path)


def test_links_where_outputs_go_are_replaced_not_written_through(
        tiny_mnist, tmp_path):
    """The checkpoint, the cost history and the filters are written beside
    and renamed: a link in their place is replaced by the run's own file,
    and what it pointed to is untouched. (A link where the checkpoint is
    cannot be read as one: the run needs --restart to replace it.)"""
    folder = str(tmp_path / 'out')
    targets = {}
    for name in ('cae_checkpoint.npz', 'cae_costs.npy', 'cae_filters.png'):
        targets[name] = str(tmp_path / ('target_' + name))
        plant_link(folder, name, targets[name])
    before = {name: digest(t) for name, t in targets.items()}
    args = ['cA.py', '--dataset', tiny_mnist, '--output-folder',
            folder] + TINY
    r = run_script(args)
    one_error_line(r, 'cae_checkpoint.npz cannot be read, so it may hold '
                   'unfinished work', '--restart')
    r = run_script(args + ['--restart'])
    assert r.returncode == 0, r.stderr
    for name, target in targets.items():
        assert digest(target) == before[name], name
        path = os.path.join(folder, name)
        assert not os.path.islink(path) and os.path.getsize(path) > 0


def test_the_cost_history_is_never_written_through_a_swapped_in_link(
        tmp_path):
    """Between two epochs, someone replaces the history by a link to their
    file: the next epoch's rows are refused, not written there."""
    path = str(tmp_path / 'cae_costs.npy')
    history = checkpoints.CostHistory(path, 3, 2)
    costs = numpy.ones((3, 2, 2))
    history.up_to(1, costs)
    target = str(tmp_path / 'notes.txt')
    with open(target, 'wb') as f:
        f.write(b'x' * 400)
    os.remove(path)
    os.symlink(target, path)
    with pytest.raises(outputs.OutputError, match='is a symbolic link'):
        history.up_to(2, costs)
    with open(target, 'rb') as f:
        assert f.read() == b'x' * 400


# ---- 2. what we write, we can read ------------------------------------------

def test_a_checkpoint_larger_than_any_fixed_cap_reads_back(tmp_path):
    """W of 784 x 64,000 (50 million values, above the old reader's fixed
    limit): the reader's limit is the run's own shapes."""
    path = str(tmp_path / 'cae_checkpoint.npz')
    W = numpy.zeros((784, 64000), dtype=numpy.float32)
    W[3, 5], W[-1, -1] = 1.5, -2.0
    params = {'W': W, 'b': numpy.ones(64000, numpy.float32),
              'b_prime': numpy.ones(784, numpy.float32)}
    checkpoints.save_checkpoint(path, params, 3, checkpoints.CHAIN_START, 1,
                                {'n_hidden': 64000})
    del W
    saved = checkpoints.read_checkpoint(
        path, {'n_hidden': 64000}, {n: v.shape for n, v in params.items()})
    assert saved['epoch'] == 1 and saved['params']['W'].shape == (784, 64000)
    assert saved['params']['W'][3, 5] == 1.5 and \
        saved['params']['W'][-1, -1] == -2.0
    # the shapes of another run are refused from the headers
    with pytest.raises(checkpoints.CheckpointError,
                       match=r'it holds the parameters W \(784, 64000\)'):
        checkpoints.read_checkpoint(path, None, {'W': (784, 500),
                                                 'b': (500,),
                                                 'b_prime': (784,)})


def test_a_plain_run_never_replaces_a_checkpoint_it_cannot_read(
        tiny_mnist, tmp_path):
    folder = tmp_path / 'out'
    folder.mkdir()
    checkpoint = folder / 'cae_checkpoint.npz'
    checkpoint.write_bytes(b'PK\x03\x04 half of a checkpoint')
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    str(folder)] + TINY)
    one_error_line(r, '%s cannot be read, so it may hold unfinished work'
                   % checkpoint, 'start over with --restart')
    assert checkpoint.read_bytes() == b'PK\x03\x04 half of a checkpoint'
    assert sorted(os.listdir(folder)) == ['cae_checkpoint.npz']


# ---- 3. finished work is never replaced silently ----------------------------

def wait_for(process, path, phrase, timeout=300):
    """Wait until the file ``path`` (the process's output) holds phrase."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with open(path) as f:
            if phrase in f.read():
                return
        assert process.poll() is None, open(path).read()
        time.sleep(0.05)
    raise AssertionError('%r never came' % phrase)


def test_a_stopped_logistic_regression_leaves_the_finished_model(
        tiny_mnist, tmp_path):
    model = str(tmp_path / 'best_model.npz')
    args = [sys.executable, 'logistic_sgd.py', '--dataset', tiny_mnist,
            '--batch-size', '20', '--model-path', model]
    r = subprocess.run(args + ['--epochs', '30'], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    before = digest(model)
    log = str(tmp_path / 'log')
    with open(log, 'w') as out:
        # another step size, many epochs: it would write another model
        process = subprocess.Popen(
            args + ['--epochs', '100000', '--learning-rate', '0.01'],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(process, log, 'new best')
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        process.kill()
    with open(log) as f:
        said = f.read()
    assert said.startswith('note: this run replaces %s, written ' % model)
    assert digest(model) == before
    assert os.listdir(tmp_path) == ['best_model.npz', 'log'] or \
        sorted(n for n in os.listdir(tmp_path) if not n.startswith('.')) == \
        ['best_model.npz', 'log']
    # the next run clears what the killed one left beside the model
    r = subprocess.run(args + ['--epochs', '1'], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ['best_model.npz', 'log']


@pytest.mark.slow
def test_a_stopped_analysis_leaves_the_finished_report(tiny_mnist, tmp_path):
    folder = str(tmp_path / 'out')
    args = [sys.executable, 'paper/analysis.py', '--dataset', tiny_mnist,
            '--output-folder', folder, '--n-hidden', '8', '--n-examples',
            '5', '--classifier-epochs', '1', '--batch-size', '20',
            '--classifier-batch-size', '20']
    r = subprocess.run(args + ['--epochs', '1'], cwd=REPO,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    finished = ['analysis.json', 'analysis_spectrum.png',
                'analysis_contraction.png', 'analysis_training.png']
    before = {n: digest(os.path.join(folder, n)) for n in finished}
    log = str(tmp_path / 'log')
    with open(log, 'w') as out:
        process = subprocess.Popen(args + ['--epochs', '100000',
                                           '--restart'],
                                   cwd=REPO, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(process, log, 'epoch 3/100000')
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 128 + signal.SIGTERM
    finally:
        process.kill()
    with open(log) as f:
        said = f.read()
    assert 'note: this run replaces %s' % os.path.join(folder,
                                                       'analysis.json') \
        in said
    assert {n: digest(os.path.join(folder, n)) for n in finished} == before


# ---- 4. every file read back is bounded before its data is read -------------

def npy_header(dtype, shape):
    buffer = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(buffer, {
        'descr': numpy.lib.format.dtype_to_descr(numpy.dtype(dtype)),
        'fortran_order': False, 'shape': shape})
    return buffer.getvalue()


def hostile_checkpoint(path, member, header_only):
    """A real checkpoint whose ``member`` is replaced by a header that
    claims far more than the file holds (header_only) or by raw bytes."""
    import zipfile
    good = path + '.good.npz'
    checkpoints.save_checkpoint(
        good, {'W': numpy.zeros((784, 8)), 'b': numpy.zeros(8),
               'b_prime': numpy.zeros(784)}, 2, checkpoints.CHAIN_START, 1,
        {'gradient': 'auto'})
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, 'w') as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member + '.npy':
                data = header_only + b'\0' * (2 * MB)
            dst.writestr(info, data)
    os.remove(good)


@pytest.mark.parametrize('member, header, phrase', [
    ('setting_gradient', npy_header('<U500000000', ()),
     'setting_gradient has dtype <U500000000'),
    ('history', npy_header('<U500000000', ()), 'history has dtype'),
    ('param_names', npy_header('<U10', (10 ** 8,)),
     'param_names has shape (100000000,)'),
    ('param_W', npy_header('<f8', (10 ** 9, 784)),
     'W (1000000000, 784)'),
    ('epoch', b'\x80\x04raw pickle bytes', 'epoch is not an .npy array'),
])
def test_a_checkpoint_that_claims_too_much_costs_a_few_kB(
        tmp_path, member, header, phrase):
    path = str(tmp_path / 'cae_checkpoint.npz')
    hostile_checkpoint(path, member, header)
    tracemalloc.start()
    try:
        start = time.monotonic()
        with pytest.raises(checkpoints.CheckpointError) as caught:
            checkpoints.read_checkpoint(path, None, {
                'W': (784, 8), 'b': (8,), 'b_prime': (784,)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert phrase in str(caught.value)
    assert peak < 8 * MB and time.monotonic() - start < 5


def test_a_hostile_checkpoint_is_one_line_for_resume_and_for_a_plain_run(
        tiny_mnist, tmp_path):
    folder = tmp_path / 'out'
    folder.mkdir()
    path = str(folder / 'cae_checkpoint.npz')
    hostile_checkpoint(path, 'setting_gradient',
                       npy_header('<U500000000', ()))
    before = digest(path)
    base = ['cA.py', '--dataset', tiny_mnist, '--output-folder',
            str(folder)] + TINY
    for extra, phrase in ((['--resume'], 'cannot be used (setting_gradient '
                                         'has dtype <U500000000)'),
                          ([], 'cannot be read, so it may hold unfinished '
                               'work (setting_gradient has dtype')):
        start = time.monotonic()
        r = run_script(base + extra)
        one_error_line(r, phrase)
        assert time.monotonic() - start < 60
    assert digest(path) == before


def test_a_zip_directory_that_claims_gigabytes_is_refused_unread(tmp_path):
    """The end record of a zip archive says where its directory is and how
    large: a claim of 4 GB is refused before anything that large is read."""
    import struct
    path = str(tmp_path / 'model.npz')
    end = struct.pack('<4s4H2LH', b'PK\x05\x06', 0, 0, 1, 1, 0xFFFFFFF0,
                      0, 0)
    with open(path, 'wb') as f:
        f.write(b'\0' * 64 + end)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError):
            npz_files.NpzReader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MB


def test_a_model_whose_W_is_pickle_bytes_is_one_line(tiny_mnist, tmp_path):
    import zipfile
    model = str(tmp_path / 'best_model.npz')
    with zipfile.ZipFile(model, 'w') as z:
        z.writestr('W.npy', b'\x80\x04\x95 pickled bytes, not an array')
        z.writestr('b.npy', npy_header('<f8', (10,)) + b'\0' * 80)
    r = run_script(['logistic_sgd.py', '--predict', '--dataset', tiny_mnist,
                    '--model-path', model])
    one_error_line(r, 'is not a model of logistic_sgd.py for 784 inputs and '
                   '10 classes (W is not an .npy array)')


# ---- 5. every stop signal is honoured ---------------------------------------

@pytest.mark.parametrize('signum', [signal.SIGHUP, signal.SIGTERM])
def test_sighup_stops_like_sigterm_with_a_resume_hint_that_works(
        tiny_mnist, tmp_path, signum):
    folder = str(tmp_path / 'out')
    args = ['cA.py', '--dataset', tiny_mnist, '--output-folder', folder,
            '--n-hidden', '8', '--batch-size', '20', '--epochs', '100000']
    log = str(tmp_path / 'log')
    with open(log, 'w') as out:
        process = subprocess.Popen([sys.executable] + args, cwd=REPO,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(process, log, 'epoch 2/100000')
        process.send_signal(signum)
        assert process.wait(120) == 128 + signum
    finally:
        process.kill()
    with open(log) as f:
        last = f.read().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last.startswith(name + ': stopped ')
    assert 'filters %s' % os.path.join(folder, 'cae_filters.png') in last
    done = checkpoints.read_checkpoint(os.path.join(folder,
                                                    'cae_checkpoint.npz'))
    assert done['epoch'] >= 1
    command = last.split('; resume with: ')[1]
    assert '--resume' in command and '--epochs 100000' in command
    # the hint, with fewer epochs so that it ends: it goes on from there
    command = command.replace('--epochs 100000', '--epochs %d'
                              % (done['epoch'] + 1))
    r = subprocess.run(command, shell=True, cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert 'resuming from %s after epoch %d' % (
        os.path.join(folder, 'cae_checkpoint.npz'), done['epoch']) \
        in r.stdout


class SignalAtLine(io.StringIO):
    """A log that sends this process ``signum`` when a line holding
    ``phrase`` is written: a signal after an epoch's last minibatch, while
    its line and its checkpoint are written."""

    def __init__(self, phrase, signum=signal.SIGTERM):
        super().__init__()
        self.phrase, self.signum = phrase, signum

    def write(self, text):
        written = super().write(text)
        if self.phrase in text:
            self.phrase = '\0never'  # once
            os.kill(os.getpid(), self.signum)
        return written


@pytest.mark.parametrize('line, done', [('epoch 1/3 ', 1), ('epoch 3/3 ', 3)])
def test_a_signal_while_the_checkpoint_is_written_stops_right_after(
        tiny_mnist, tmp_path, line, done):
    import cA
    folder = str(tmp_path / 'out')
    with pytest.raises(checkpoints.TrainingInterrupted) as caught:
        cA.test_cA(dataset=tiny_mnist, output_folder=folder,
                   training_epochs=3, n_hidden=8, batch_size=20,
                   log=SignalAtLine(line))
    assert str(caught.value).startswith(
        'SIGTERM: stopped after epoch %d/3; checkpoint %s holds the %d '
        'epoch' % (done, os.path.join(folder, 'cae_checkpoint.npz'), done))
    assert checkpoints.read_checkpoint(
        os.path.join(folder, 'cae_checkpoint.npz'))['epoch'] == done
    assert os.path.exists(os.path.join(folder, 'cae_filters.png'))
    # the handlers are the usual ones again
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_signal_at_the_end_of_the_first_training_stops_the_analysis(
        tiny_mnist, tmp_path):
    from paper import analysis
    with pytest.raises(checkpoints.TrainingInterrupted,
                       match='stopped after epoch 1/1.*the analysis stopped'):
        analysis.run_analysis(
            training_epochs=1, n_examples=5, dataset=tiny_mnist,
            output_folder=str(tmp_path), n_hidden=8, batch_size=20,
            classifier_epochs=1, classifier_batch_size=20,
            log=SignalAtLine('epoch 1/1 '))
    assert not os.path.exists(tmp_path / 'ae')  # the AE never started
    assert not os.path.exists(tmp_path / 'analysis.json')


# ---- 6. no traceback on what the checks accept ------------------------------

def write_dataset(path, n_train=230, n_valid=60, n_test=60, repeat=False,
                  same=False):
    """A dataset of synthetic digits; repeat: its validation and test
    digits are copies of training digits; same: every training digit is
    the same."""
    (train, valid, test) = synthetic_digits((n_train, n_valid, n_test),
                                            numpy.random.RandomState(0))
    if repeat:
        valid = (train[0][:n_valid].copy(), train[1][:n_valid].copy())
        test = (train[0][:n_test].copy(), train[1][:n_test].copy())
    if same:
        train = (numpy.repeat(train[0][:1], n_train, axis=0), train[1])
    mnist_data.write_mnist(path, (train, valid, test))
    return path


ANALYSIS = ['paper/analysis.py', '--epochs', '1', '--n-hidden', '8',
            '--n-examples', '5', '--classifier-epochs', '1',
            '--batch-size', '1', '--classifier-batch-size', '1']


@pytest.mark.parametrize('data, extra, phrase', [
    (dict(repeat=True), [], 'the test digits repeat training digits'),
    (dict(same=True), [], 'the training digits are all the same'),
    (dict(), ['--max-radius-factor', '1e-320'],
     'give a larger --max-radius-factor'),
    (dict(), ['--min-radius-factor', '1e-300'],
     'give a larger --min-radius-factor'),
    (dict(n_train=1), [], 'has 1 training digits: the contraction curves '
                          'need at least 2'),
])
def test_analysis_refuses_data_it_cannot_measure_before_training(
        tmp_path, data, extra, phrase):
    dataset = write_dataset(str(tmp_path / 'odd.pkl.gz'), **data)
    folder = tmp_path / 'out'
    r = run_script(ANALYSIS + ['--dataset', dataset, '--output-folder',
                               str(folder)] + extra)
    one_error_line(r, phrase)
    assert 'epoch' not in r.stdout and 'RuntimeWarning' not in r.stderr
    assert not (folder / 'cae').exists()


def test_the_comparison_refuses_a_test_split_of_one_before_any_row(
        tmp_path):
    dataset = write_dataset(str(tmp_path / 'one.pkl.gz'), n_test=1)
    r = run_script(['paper/table1.py', '--dataset', dataset,
                    '--output-folder', str(tmp_path / 'out'), '--n-hidden',
                    '8', '--pretraining-epochs', '1', '--finetune-epochs',
                    '1'])
    one_error_line(r, '230 training and 1 test digits: the contraction '
                   'curves need at least 2 of each')
    assert '== row' not in r.stdout
    assert not (tmp_path / 'out' / 'ScA_comparison.partial.json').exists()


def test_a_stack_too_deep_to_compile_is_refused_before_pretraining(
        tiny_mnist):
    from machinery import checks
    depth = checks.MAX_HIDDEN_LAYERS + 1
    start = time.monotonic()
    r = run_script(['ScA.py', '--dataset', tiny_mnist,
                    '--hidden-layers-sizes'] + ['3'] * depth)
    one_error_line(r, 'hidden_layers_sizes has %d layers' % depth,
                   'at most %d' % checks.MAX_HIDDEN_LAYERS)
    assert r.stdout == '' and time.monotonic() - start < 60


@pytest.mark.slow
def test_the_deepest_stack_allowed_compiles_and_trains(tiny_mnist):
    """The measured limit holds on this stack: a stack of
    MAX_HIDDEN_LAYERS layers pre-trains, fine-tunes and is tested."""
    from machinery import checks
    r = run_script(['ScA.py', '--dataset', tiny_mnist, '--pretraining-epochs',
                    '1', '--finetune-epochs', '1', '--pretrain-batch-size',
                    '20', '--hidden-layers-sizes'] +
                   ['3'] * checks.MAX_HIDDEN_LAYERS, timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'done: best validation error' in r.stdout


# ---- 7. the environment -----------------------------------------------------

def test_a_missing_compiler_is_one_line(tiny_mnist, tmp_path):
    flags = backend.STACK.flags_var
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path / 'out')] + TINY,
                   env=dict(os.environ, **{flags: 'cxx=/nonexistent/g++'}))
    one_error_line(r, 'the C++ compiler /nonexistent/g++', 'cxx', flags)
    assert r.stdout == ''


def test_warnings_as_errors_name_their_real_cause(tiny_mnist, tmp_path):
    """Under PYTHONWARNINGS=error, the stack either loads and the run
    trains, or the one line names PYTHONWARNINGS and the warning, not the
    stack's flags (which are not set)."""
    env = dict(os.environ, PYTHONWARNINGS='error')
    env.pop(backend.STACK.flags_var, None)
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path / 'out')] + TINY, env=env)
    if r.returncode == 0:
        assert 'epoch 2/2' in r.stdout
    else:
        one_error_line(r, 'turns warnings into errors (PYTHONWARNINGS or '
                       '-W)', 'add ignore::')
        assert backend.STACK.flags_var not in r.stderr


@pytest.fixture
def read_only_copy(tmp_path):
    """A read-only view of a folder (a bind mount): ``make(source)``
    returns the view's path. Skips where mounts are not allowed."""
    mounted = []

    def make(source):
        view = str(tmp_path / ('ro%d' % len(mounted)))
        os.mkdir(view)
        for command in (['mount', '--bind', source, view],
                        ['mount', '-o', 'remount,ro,bind', view]):
            if subprocess.run(command, capture_output=True).returncode != 0:
                if command[1] == '-o':
                    subprocess.run(['umount', view])
                pytest.skip('no bind mounts here (not root, or no '
                            'CAP_SYS_ADMIN)')
        mounted.append(view)
        return view
    yield make
    for view in mounted:
        subprocess.run(['umount', view])


def test_a_read_only_compile_cache_is_one_line(tiny_mnist, tmp_path,
                                               read_only_copy):
    home = tmp_path / 'home'
    cache = home / ('.' + backend.STACK.package)
    cache.mkdir(parents=True)
    # a cache another user's run made (its compile folder exists)
    compiledir = os.path.basename(str(backend.theano.config.compiledir))
    (cache / compiledir).mkdir()
    view = read_only_copy(str(home))
    env = dict(os.environ, HOME=view)
    env.pop(backend.STACK.flags_var, None)
    r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                    str(tmp_path / 'out')] + TINY, env=env)
    one_error_line(r, 'cannot make or write its compile directory',
                   'base_compiledir')


def test_make_in_a_read_only_clone_is_one_line(tmp_path, read_only_copy):
    clone = tmp_path / 'clone'
    subprocess.run(['git', 'clone', '-q', REPO, str(clone)], check=True)
    view = read_only_copy(str(clone))
    r = subprocess.run(['sh', 'tools/venv.sh'], cwd=view,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stderr
    assert r.stderr.startswith('error: this folder (%s) cannot be written'
                               % view)
    assert 'clone the repository to a folder you can write' in r.stderr


@pytest.mark.slow
def test_make_repairs_a_venv_whose_stack_was_removed(tmp_path):
    """A .venv/ that venv.sh left ready, then pip uninstall of the stack:
    the next make says so and installs it again."""
    venv = tmp_path / 'venv'
    env = dict(os.environ, VENV=str(venv))
    first = subprocess.run(['sh', 'tools/venv.sh', sys.executable],
                           cwd=REPO, capture_output=True, text=True,
                           env=env, timeout=1800)
    assert first.returncode == 0, first.stderr
    package = {'theano': 'theano-pymc', 'pytensor': 'pytensor'}[
        backend.STACK.key]
    subprocess.run([str(venv / 'bin' / 'python'), '-m', 'pip', 'uninstall',
                    '-y', '-q', package], check=True)
    r = subprocess.run(['sh', 'tools/venv.sh', sys.executable], cwd=REPO,
                       capture_output=True, text=True, env=env,
                       timeout=1800)
    assert r.returncode == 0, r.stderr
    assert 'lacks the stack or a package it needs (removed since?): ' \
        'installing them again' in r.stdout
    assert subprocess.run([str(venv / 'bin' / 'python'), '-c',
                           'import ' + backend.STACK.package]).returncode == 0


# ---- 8. paths and flags -----------------------------------------------------

@pytest.mark.parametrize('args, phrase', [
    (['cA.py', '--dataset', ''], 'the dataset path is empty'),
    (['ScA.py', '--dataset', ''], 'the dataset path is empty'),
    (['paper/analysis.py', '--dataset', ''], 'the dataset path is empty'),
    (['paper/table1.py', '--dataset', ''], 'the dataset path is empty'),
    (['logistic_sgd.py', '--dataset', ''], 'the dataset path is empty'),
    (['-m', 'machinery.mnist_data', ''], 'the dataset path is empty'),
    (['logistic_sgd.py', '--model-path', ''], '--model-path is empty'),
    (['logistic_sgd.py', '--model-path', 'OUT/sub/'],
     '--model-path OUT/sub/ names a folder'),
    (['cA.py', '--dataset', 'OUT/'], 'OUT/ is a folder'),
    (['cA.py', '--resume', '--restart'],
     '--resume and --restart exclude each other'),
    (['paper/analysis.py', '--resume', '--restart'],
     '--resume and --restart exclude each other'),
])
def test_empty_and_folder_like_paths_and_clashing_flags_are_refused(
        tmp_path, args, phrase):
    out = str(tmp_path / 'o')
    args = [a.replace('OUT', out) for a in args]
    # wherever a script would write, a folder of this test's
    if args[0] == 'logistic_sgd.py' and '--model-path' not in args:
        args += ['--model-path', os.path.join(out, 'm.npz')]
    elif args[0] in ('cA.py', 'paper/analysis.py', 'paper/table1.py'):
        args += ['--output-folder', out]
    r = run_script(args)
    one_error_line(r, phrase.replace('OUT', out))
    assert 'epoch' not in r.stdout
    assert not os.path.exists(os.path.join(out, 'sub'))
