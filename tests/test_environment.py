"""What the environment can get wrong, through the real command lines: each
failure is one line (``error:`` and exit status 2, or a note where the
run can go on), no traceback, no hang, and nothing lost.

The stack's flags go in its own variable (THEANO_FLAGS or PYTENSOR_FLAGS,
backend.STACK.flags_var); a fresh compile directory makes a flag that
breaks compilation break it now, not only for modules not yet cached.
"""
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

from machinery import backend
from machinery import checkpoints
from conftest import REPO, one_error_line, run_script

FLAGS = backend.STACK.flags_var
TINY_ARGS = ['--batch-size', '20', '--n-hidden', '30', '--learning-rate',
             '0.1']


def with_env(**changes):
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def train_tiny(dataset, folder, *extra, env=None, **kwargs):
    return run_script(['cA.py', '--dataset', dataset, '--output-folder',
                       folder, '--epochs', '2'] + TINY_ARGS + list(extra),
                      env=env, **kwargs)


# ---- the stack's settings ---------------------------------------------------

@pytest.mark.parametrize('flags, phrase', [
    ('floatX=float16', 'floatX=float16: the tutorial trains in float64'),
    ('mode=Nonsense', 'Nonsense'),
])
def test_flags_the_stack_refuses_are_one_line(tiny_mnist, tmp_path, flags,
                                              phrase):
    r = train_tiny(tiny_mnist, str(tmp_path / 'out'),
                   env=with_env(**{FLAGS: flags}))
    one_error_line(r, phrase, FLAGS)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('value', ['abc', '0', '-3', '2,x'])
def test_a_thread_count_that_is_not_one_is_one_line(tiny_mnist, tmp_path,
                                                   value):
    r = train_tiny(tiny_mnist, str(tmp_path / 'out'),
                   env=with_env(OMP_NUM_THREADS=value))
    one_error_line(r, 'OMP_NUM_THREADS=%s is not a number of threads' % value)
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_a_compiler_flag_that_does_not_work_is_one_line(tiny_mnist,
                                                        tmp_path):
    flags = 'gcc__cxxflags=-fno-such-flag-anywhere,base_compiledir=%s' % (
        tmp_path / 'compiled')
    r = train_tiny(tiny_mnist, str(tmp_path / 'out'),
                   env=with_env(**{FLAGS: flags}))
    one_error_line(r, 'compiling the C code of', '-fno-such-flag-anywhere',
                   FLAGS)
    assert 'epoch' not in r.stdout


@pytest.mark.slow
def test_a_BLAS_that_does_not_link_is_one_line(tiny_mnist, tmp_path):
    flags = 'blas__ldflags=-lno_such_blas,base_compiledir=%s' % (
        tmp_path / 'compiled')
    r = train_tiny(tiny_mnist, str(tmp_path / 'out'),
                   env=with_env(**{FLAGS: flags}))
    one_error_line(r, 'compiling the C code of', 'no_such_blas')


def test_a_compile_directory_that_cannot_be_made_is_one_line(tiny_mnist,
                                                             tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('in the way of the folder')
    flags = 'base_compiledir=%s' % (blocker / 'compiled')
    r = train_tiny(tiny_mnist, str(tmp_path / 'out'),
                   env=with_env(**{FLAGS: flags}))
    one_error_line(r, FLAGS)
    assert blocker.read_text() == 'in the way of the folder'


@pytest.mark.slow
def test_a_gpu_asked_for_is_one_plain_line_and_the_run_uses_the_cpu(
        tiny_mnist, tmp_path):
    r = train_tiny(tiny_mnist, str(tmp_path / 'out'),
                   env=with_env(**{FLAGS: 'device=cuda'}))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ('note: %s asks for device=cuda, but %s cannot use a '
                        'GPU here: the run uses the CPU\n'
                        % (FLAGS, backend.STACK.title)), r.stderr
    assert 'epoch 2/2' in r.stdout


def test_a_learning_rate_that_rounds_to_zero_in_float32_is_one_line(
        tiny_mnist, tmp_path):
    r = train_tiny(tiny_mnist, str(tmp_path / 'out'), '--learning-rate',
                   '1e-50', env=with_env(**{FLAGS: 'floatX=float32'}))
    one_error_line(r, 'learning_rate 1e-50 is 0 in float32')
    assert os.listdir(str(tmp_path / 'out')) == []


# ---- the compile lock --------------------------------------------------------

HOLD_LOCK = '''
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print('held', flush=True)
time.sleep(600)
'''


def compile_dir(env):
    """The stack's compile directory in the environment ``env``."""
    return subprocess.run(
        [sys.executable, '-c', 'from machinery.backend import theano; '
         'print(theano.config.compiledir)'], cwd=REPO, env=env,
        capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.slow
def test_a_compile_lock_held_by_a_stopped_process_is_said_at_once(
        tiny_mnist, tmp_path):
    """Another run holds the stack's compile lock and is stopped (Ctrl-Z):
    the run says at once what it waits for and who holds it, then, after
    compile__timeout, one error line."""
    flags = 'base_compiledir=%s,compile__timeout=6' % (tmp_path / 'compiled')
    env = with_env(**{FLAGS: flags})
    compiledir = compile_dir(env)
    lock_file = os.path.join(compiledir, '.lock')
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, lock_file],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        holder.send_signal(signal.SIGSTOP)
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, 'cA.py', '--dataset', tiny_mnist,
             '--output-folder', str(tmp_path / 'out')] + TINY_ARGS,
            cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        first = proc.stderr.readline()
        said_after = time.monotonic() - start
        rest = proc.communicate(timeout=300)[1]
    finally:
        holder.kill()
        holder.wait()
    assert first.startswith('note: waiting for the compile lock %s, held by '
                            'process %d (' % (lock_file, holder.pid)), first
    assert 'stopped: `kill -CONT %d` resumes it' % holder.pid in first
    assert first.endswith('(for up to 6 s)\n'), first
    assert said_after < 30
    assert proc.returncode == 2 and 'Traceback' not in rest
    assert rest.startswith('error: the compile lock %s stayed taken for 6 s'
                           % lock_file) and rest.count('\n') == 1, rest


@pytest.mark.slow
def test_a_run_while_another_program_takes_and_releases_the_lock(
        tiny_mnist, tmp_path):
    """Another program holds the compile lock for a few seconds while a
    run starts (its own compile directory, so that the run must compile):
    the run waits, says so in a note, and then trains as usual."""
    flags = 'base_compiledir=%s' % (tmp_path / 'compiled')
    env = with_env(**{FLAGS: flags})
    compiledir = compile_dir(env)
    holder = subprocess.Popen(
        [sys.executable, '-c', HOLD_LOCK.replace('600', '4'),
         os.path.join(compiledir, '.lock')], stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        r = run_script(['cA.py', '--dataset', tiny_mnist, '--output-folder',
                        str(tmp_path / 'out')] + TINY_ARGS, env=env)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 0 and r.stderr == '', r.stderr
    assert 'epoch 2/2' in r.stdout


# ---- the standard output ---------------------------------------------------------

@pytest.mark.slow
def test_a_closed_standard_output_stops_the_run_in_one_line(tiny_mnist,
                                                           tmp_path):
    """``cA.py ... | head -1``: the reader ends after the first line."""
    folder = str(tmp_path / 'out')
    proc = subprocess.Popen(
        [sys.executable, 'cA.py', '--dataset', tiny_mnist, '--output-folder',
         folder, '--epochs', '3'] + TINY_ARGS, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=300)
    assert proc.returncode == 128 + signal.SIGPIPE, err
    assert err.startswith('stopped: the standard output was closed') and \
        err.count('\n') == 1, err
    assert 'Traceback' not in err and 'Exception ignored' not in err
    assert not [f for f in os.listdir(folder) if f.endswith('.tmp') or
                f == '.lock']


@pytest.mark.slow
def test_a_full_standard_output_stops_the_run_in_one_line(tiny_mnist,
                                                         tmp_path):
    folder = str(tmp_path / 'out')
    with open('/dev/full', 'w') as full:
        r = subprocess.run(
            [sys.executable, 'cA.py', '--dataset', tiny_mnist,
             '--output-folder', folder, '--epochs', '3'] + TINY_ARGS,
            cwd=REPO, stdout=full, stderr=subprocess.PIPE, text=True,
            timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr == ('stopped: the standard output cannot be written (no '
                        'space left on the device); the files written so '
                        'far are whole (a checkpoint it wrote goes on with '
                        '--resume)\n'), r.stderr


# ---- paths -------------------------------------------------------------------------

def test_a_dataset_that_is_a_fifo_is_refused_without_waiting(tmp_path):
    fifo = str(tmp_path / 'mnist.pkl.gz')
    os.mkfifo(fifo)
    r = run_script(['cA.py', '--dataset', fifo, '--output-folder',
                    str(tmp_path / 'out')], timeout=120)
    one_error_line(r, '%s is a FIFO (named pipe), not a dataset file' % fifo)
    assert 'delete it' not in r.stderr


@pytest.mark.slow
def test_a_folder_name_that_is_not_text_works(tiny_mnist, tmp_path):
    """A path of bytes that are not UTF-8 (the file system takes any
    bytes): the run works, prints it with escapes and leaves no lock."""
    folder = os.path.join(os.fsencode(str(tmp_path)), b'out\xff')
    r = subprocess.run([sys.executable, 'cA.py', '--dataset', tiny_mnist,
                        '--output-folder', folder, '--epochs', '1'] +
                       TINY_ARGS, cwd=REPO, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert b'out\\udcff' in r.stdout  # (backslashreplace's escape)
    assert sorted(os.listdir(folder)) == [b'cae_checkpoint.npz',
                                          b'cae_costs.npy',
                                          b'cae_filters.png']


# ---- models that are not models -----------------------------------------------------

def test_predict_with_a_cA_checkpoint_is_one_line(tiny_mnist, tmp_path):
    path = str(tmp_path / 'cae_checkpoint.npz')
    checkpoints.save_checkpoint(
        path, {'W': numpy.zeros((784, 30)), 'b': numpy.zeros(30),
               'b_prime': numpy.zeros(784)}, 3, checkpoints.CHAIN_START, 0,
        {'seed': 1})
    r = run_script(['logistic_sgd.py', '--predict', '--model-path', path,
                    '--dataset', tiny_mnist])
    one_error_line(r, '%s is not a model of logistic_sgd.py for 784 inputs '
                   'and 10 classes (it holds epoch, format, history, '
                   'n_epochs, ..., not W and b)' % path)
    assert 'predicted' not in r.stdout


def test_predict_with_a_model_of_another_shape_is_one_line(tiny_mnist,
                                                           tmp_path):
    path = str(tmp_path / 'model.npz')
    numpy.savez(path, W=numpy.zeros((784, 5)), b=numpy.zeros(5))
    r = run_script(['logistic_sgd.py', '--predict', '--model-path', path,
                    '--dataset', tiny_mnist])
    one_error_line(r, 'is not a model of logistic_sgd.py for 784 inputs and '
                   '10 classes (W has shape (784, 5) where (784, 10) '
                   'belongs)')


@pytest.mark.parametrize('kind', ['folder', 'fifo'])
def test_a_model_path_that_cannot_be_a_file_is_refused_before_training(
        tiny_mnist, tmp_path, kind):
    path = str(tmp_path / 'model')
    if kind == 'folder':
        os.makedirs(path)
    else:
        os.mkfifo(path)
    start = time.monotonic()
    r = run_script(['logistic_sgd.py', '--model-path', path, '--dataset',
                    tiny_mnist])
    one_error_line(r, '--model-path %s' % path)
    assert 'reading' not in r.stdout and 'epoch' not in r.stdout
    assert time.monotonic() - start < 60
    assert os.path.isdir(path) if kind == 'folder' else \
        not os.path.isfile(path)


@pytest.mark.parametrize('path', [b'/tmp/out\xff', b"it's \xfe\\x.npz",
                                  b'plain/path.npz', "caf\u00e9".encode()])
def test_a_printed_path_reads_back_in_bash_as_the_same_bytes(path):
    """Commands printed for the user (resume hints, the download command)
    quote paths with cli.shell_quote; bash must read back the very bytes,
    those that are not UTF-8 too."""
    from machinery.cli import shell_quote
    r = subprocess.run(['bash', '-c', 'printf %s ' +
                        shell_quote(os.fsdecode(path))], capture_output=True)
    assert r.stdout == path
