"""Installed, the tutorial imports from any folder and in any order: the
editable install that make puts into .venv/, and a wheel of this checkout
installed into a new environment."""
import os
import shutil
import signal
import subprocess
import sys
import sysconfig

import numpy
import pytest

from machinery import backend
from machinery import stack, stack_hook
from conftest import REPO, one_error_line, reference_costs

# Python started as a user would: no PYTHONPATH, no pytest's sys.path, and
# none of the flags that this process's own import of the stack set
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ('PYTHONPATH', 'CA_DATA_DIR', 'XDG_DATA_HOME',
                          'THEANO_FLAGS', 'PYTENSOR_FLAGS')}


def site_packages(python):
    """Where ``python`` installs packages."""
    return subprocess.run([python, '-c', 'import sysconfig; print('
                           'sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


# A learner's script, as the Theano tutorials begin: the stack first, under
# its own name, then the tutorial's class. One SGD step from fixed data;
# prints the cost before the step and W after it, as repr()s.
LEARNER = '''
import {package} as theano
import {package}.tensor as T
import numpy
from cA import cA

rng = numpy.random.RandomState(7)
data = rng.uniform(size=(10, 784))
x = T.matrix('x')
ca = cA(numpy_rng=numpy.random.RandomState(123), input=x, n_visible=784,
        n_hidden=20, n_batchsize=10)
cost, updates = ca.get_cost_updates(contraction_level=0.1, learning_rate=0.01)
step = theano.function([x], cost, updates=updates)
W0 = ca.W.get_value().copy()
numpy.save('W0.npy', W0)
print(repr(float(step(data))))
numpy.save('W1.npy', ca.W.get_value())
print(theano.config.allow_gc, theano.config.blas__ldflags != '')
'''

# the same, with the project's own import first (what python cA.py does)
OURS_FIRST = 'from cA import cA\n' + LEARNER


def run_learner(python, folder, source):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'learner.py'), 'w') as f:
        f.write(source.format(package=backend.STACK.package))
    r = subprocess.run([python, 'learner.py'], cwd=folder, env=CLEAN_ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return (r.stdout.split('\n'), numpy.load(os.path.join(folder, 'W0.npy')),
            numpy.load(os.path.join(folder, 'W1.npy')))


def assert_one_true_step(result):
    """The learner's cost is eq. (6) of the numpy reference."""
    lines, W0, _ = result
    data = numpy.random.RandomState(7).uniform(size=(10, 784))
    L_rec, L_jacob = reference_costs(data, W0, numpy.zeros(20),
                                     numpy.zeros(784))
    assert float(lines[0]) == pytest.approx(L_rec + 0.1 * L_jacob,
                                            rel=1e-12)


def test_the_stack_imported_first_then_cA_in_any_folder(tmp_path):
    """import theano (or pytensor) before cA, from a folder outside the
    checkout, with no PYTHONPATH: the stack gets the project's settings
    (allow_gc off, a BLAS linked) and the step is the one cA imported
    first computes, to the bit."""
    theirs = run_learner(sys.executable, str(tmp_path / 'a'), LEARNER)
    ours = run_learner(sys.executable, str(tmp_path / 'b'), OURS_FIRST)
    assert theirs[0][1] == 'False True'
    assert theirs[0][:2] == ours[0][:2]
    numpy.testing.assert_array_equal(theirs[2], ours[2])
    assert_one_true_step(theirs)


def test_the_hook_knows_the_packages_of_the_stacks():
    """stack_hook writes the names out, to import nothing at start-up."""
    assert set(stack_hook.PACKAGES) == {s.package
                                        for s in stack.STACKS.values()}


def test_our_own_import_configures_the_chosen_stack_once(tmp_path):
    """python cA.py's way (backend first): the hook steps aside, so the
    stack is configured once, and the other stack, which choose_stack
    only looks for, not at all."""
    code = ('import logging, os\n'
            'from machinery import backend, stack\n'
            'other, = [s for s in stack.STACKS.values() '
            'if s is not backend.STACK]\n'
            'print(len(logging.getLogger(backend.STACK.package + '
            '".tensor.blas").filters), other.flags_var in os.environ)\n')
    r = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                       env=CLEAN_ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['1', 'False']


def test_a_copy_of_cA_py_runs_in_another_folder(tmp_path, tiny_mnist):
    folder = tmp_path / 'mine'
    folder.mkdir()
    (folder / 'cA.py').write_text(open(os.path.join(REPO, 'cA.py')).read())
    r = subprocess.run(
        [sys.executable, 'cA.py', '--dataset', tiny_mnist, '--epochs', '1',
         '--n-hidden', '20', '--batch-size', '20'], cwd=str(folder),
        env=CLEAN_ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (folder / 'cA_plots' / 'cae_filters.png').exists()


def test_a_resume_hint_carries_the_pythonpath_the_run_had(tmp_path,
                                                          tiny_mnist):
    """PYTHONPATH=<checkout> .venv/bin/python <checkout>/cA.py ...,
    stopped with Ctrl-C: the printed command, pasted into a shell that has
    no PYTHONPATH of its own, resumes the run."""
    folder = str(tmp_path / 'run')
    checkpoint = os.path.join(folder, 'cae_checkpoint.npz')

    def start(command, env):
        return subprocess.Popen(command, cwd=str(tmp_path), env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def stop_once_trained(proc):
        """Ctrl-C after the first epoch line; returns stdout, stderr."""
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith('epoch '):
                break
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        return ''.join(lines) + out, err

    proc = start([sys.executable, os.path.join(REPO, 'cA.py'), '--dataset',
                  tiny_mnist, '--epochs', '100000', '--n-hidden', '20',
                  '--output-folder', folder],
                 dict(CLEAN_ENV, PYTHONPATH=REPO))
    _, err = stop_once_trained(proc)
    assert proc.returncode == 130, err
    assert os.path.exists(checkpoint)
    hint = err.split('resume with: ')[1].strip()
    assert hint.startswith('PYTHONPATH=')
    resumed = start(['sh', '-c', hint], CLEAN_ENV)
    out, err = stop_once_trained(resumed)
    assert 'resuming from %s' % checkpoint in out, (hint, err)
    assert resumed.returncode in (130, -signal.SIGINT), err


def test_the_data_command_shows_the_default_the_scripts_show():
    r = subprocess.run([sys.executable, '-m', 'machinery.mnist_data',
                        '--help'], cwd=REPO, env=CLEAN_ENV,
                       capture_output=True, text=True)
    assert 'default: data/mnist.pkl.gz' in r.stdout
    r = subprocess.run([sys.executable, 'cA.py', '--help'], cwd=REPO,
                       env=CLEAN_ENV, capture_output=True, text=True)
    assert 'data/mnist.pkl.gz' in ' '.join(r.stdout.split())


# ---- a wheel of this checkout in a new environment -------------------------

@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """A new virtual environment with this checkout's wheel installed
    (pip's own build, through pyproject.toml) and, for its dependencies,
    this environment's packages and libraries on its path: the stack is
    not downloaded again. Returns its python."""
    top = tmp_path_factory.mktemp('installed')
    # pip builds in the source folder: a copy, so that the checkout
    # gains no build/ folder
    source = top / 'source'
    shutil.copytree(REPO, str(source), ignore=shutil.ignore_patterns(
        '.venv*', '.git', 'data', 'cA_plots', 'build', '*.egg-info',
        'benchmarks', 'docs', '__pycache__'))
    wheels = top / 'wheels'
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                        '--quiet', '-w', str(wheels), str(source)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    venv = top / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    with open(os.path.join(site_packages(python), 'dependencies.pth'),
              'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    # the mkl wheel's libraries, where pip would have put them (prefix/lib,
    # where machinery/stack.py looks): links to this environment's
    lib = os.path.join(sys.prefix, 'lib')
    for name in os.listdir(lib):
        if name.startswith('lib') and '.so' in name:
            os.symlink(os.path.join(lib, name), str(venv / 'lib' / name))
    wheel, = wheels.iterdir()
    r = subprocess.run([sys.executable, '-m', 'pip', '--python', python,
                        'install', '--no-deps', '--no-index', '--quiet',
                        str(wheel)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    return python


@pytest.mark.slow
def test_installed_the_stack_first_then_cA_trains_a_step(installed,
                                                         tmp_path):
    python = installed
    here = run_learner(sys.executable, str(tmp_path / 'here'), LEARNER)
    there = run_learner(python, str(tmp_path / 'there'), LEARNER)
    assert there[0][1].split()[0] == 'False'  # allow_gc: ours
    numpy.testing.assert_array_equal(there[1], here[1])
    # another BLAS (the new environment has no mkl of its own) may round
    # differently in the last bits
    numpy.testing.assert_allclose(there[2], here[2], rtol=1e-12, atol=1e-15)
    assert_one_true_step(there)


@pytest.mark.slow
def test_installed_python_m_cA_trains_with_data_in_the_users_folder(
        installed, tmp_path, tiny_mnist):
    python = installed
    r = subprocess.run([python, '-m', 'machinery.mnist_data', '--help'],
                       env=CLEAN_ENV, cwd=str(tmp_path),
                       capture_output=True, text=True)
    default = '~/.local/share/theano-contractive-autoencoder/mnist.pkl.gz'
    assert default in ''.join(r.stdout.split()), r.stdout
    # CA_DATA_DIR names the folder; the file there is what trains
    data_dir = tmp_path / 'my data'
    data_dir.mkdir()
    os.link(tiny_mnist, str(data_dir / 'mnist.pkl.gz'))
    env = dict(CLEAN_ENV, CA_DATA_DIR=str(data_dir))
    r = subprocess.run([python, '-m', 'cA', '--epochs', '1', '--n-hidden',
                        '20', '--batch-size', '20'], env=env,
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert 'reading my data/mnist.pkl.gz' in r.stdout  # (below cwd)
    assert 'epoch 1/1  reconstruction ' in r.stdout
    assert (tmp_path / 'cA_plots' / 'cae_filters.png').exists()
    # without the file, the message names the user's folder and the fix
    r = subprocess.run([python, '-m', 'cA', '--dataset', str(tmp_path /
                        'none.pkl.gz'), '--epochs', '1'], env=env,
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=600)
    one_error_line(r, 'none.pkl.gz does not exist', 'python -m '
                   'machinery.mnist_data')


@pytest.mark.slow
def test_uninstalled_nothing_is_left(installed, tmp_path):
    python = installed
    site = site_packages(python)
    assert os.path.exists(os.path.join(site,
                                       'theano_contractive_autoencoder.pth'))
    r = subprocess.run([sys.executable, '-m', 'pip', '--python', python,
                        'uninstall', '--yes', '--quiet',
                        'theano-contractive-autoencoder'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(site)) == ['dependencies.pth']
