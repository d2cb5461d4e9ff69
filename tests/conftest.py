"""Shared fixtures: a small synthetic dataset in the real mnist.pkl.gz
format, and numpy references for the model's math."""
import os
import subprocess
import sys

import numpy
import pytest

from machinery import backend  # the stack, configured before any test imports it
from machinery import mnist_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def py_mode():
    """A mode for graphs built on ``scan`` (the stack's ``jacobian``):
    Theano-PyMC's C code for scan does not compile on Python 3.11, so it
    runs in Python there; PyTensor's default mode runs it."""
    if backend.STACK.key == 'theano':
        return backend.theano.compile.Mode(linker='py')
    return None


def synthetic_digits(sizes, rng):
    """One (images, labels) pair per size: 784 pixels in [0, 1), labels
    0-9. Each class is a pattern of random blobs (the same in every set)
    plus noise, so a classifier can learn it and an auto-encoder has
    structure to find."""
    prototypes = numpy.zeros((10, 28, 28))
    for k in range(10):
        for _ in range(6):
            r, c = rng.randint(4, 24, size=2)
            prototypes[k, r - 3:r + 3, c - 3:c + 3] = 1.0
    sets = []
    for n in sizes:
        labels = rng.randint(0, 10, size=n)
        images = 0.6 * prototypes[labels].reshape(n, 784) + \
            0.4 * rng.uniform(size=(n, 784))
        sets.append((numpy.clip(images, 0, 255 / 256.).astype(numpy.float32),
                     labels.astype(numpy.int64)))
    return tuple(sets)


def write_synthetic_mnist(path, n_train=230, n_valid=60, n_test=60, seed=0):
    datasets = synthetic_digits((n_train, n_valid, n_test),
                                numpy.random.RandomState(seed))
    mnist_data.write_mnist(path, datasets)
    return datasets


@pytest.fixture(scope='session')
def tiny_mnist(tmp_path_factory):
    """Path of a small synthetic dataset (230 / 60 / 60 examples). 230 is
    not a multiple of the batch sizes the tests use: the last batch is
    short."""
    path = str(tmp_path_factory.mktemp('data') / 'tiny.pkl.gz')
    write_synthetic_mnist(path)
    return path


@pytest.fixture(scope='session')
def real_mnist():
    """The real MNIST (make test fetches it first)."""
    if not os.path.exists(mnist_data.DEFAULT_PATH):
        pytest.fail('%s is missing: run `make data` (make test does)'
                    % mnist_data.DEFAULT_PATH)
    return mnist_data.DEFAULT_PATH


# what a script says on stderr while another program on the machine holds
# the stack's compile lock (machinery/backend.py): a wait, not a failure
LOCK_NOTE = 'note: waiting for the compile lock '


def without_lock_notes(stderr):
    """stderr without the lines that say a script waited for the compile
    lock, which depend on the other programs of the machine."""
    return ''.join(line for line in stderr.splitlines(keepends=True)
                   if not line.startswith(LOCK_NOTE))


def run_script(args, cwd=None, **kwargs):
    """Run a repo script in a fresh interpreter; returns CompletedProcess,
    its stderr without_lock_notes."""
    kwargs.setdefault('timeout', 600)
    r = subprocess.run([sys.executable] + list(args), cwd=cwd or REPO,
                       capture_output=True, text=True, **kwargs)
    if isinstance(r.stderr, str):
        r.stderr = without_lock_notes(r.stderr)
    return r


def saved_checkpoint(path):
    """A checkpoint the tests' own runs wrote, with its parameters (the
    shapes from its own headers, which a run never trusts:
    checkpoints.read_checkpoint takes them from the model)."""
    from machinery import checkpoints, npz_files
    with npz_files.NpzReader(path) as npz:
        shapes = {name: npz.shape(checkpoints.PARAM_PREFIX + name)
                  for name in npz.texts('param_names',
                                        checkpoints.MAX_PARAMS)}
    return checkpoints.read_checkpoint(path, None, shapes)


def one_error_line(r, *phrases):
    """A user's mistake, as every script reports it: exit 2, one line
    that starts with ``error:`` and holds each phrase, no traceback."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.startswith('error: ') and r.stderr.count('\n') == 1, \
        r.stderr
    for phrase in phrases:
        assert phrase in r.stderr, r.stderr


# ---- independent numpy references ----------------------------------------

def sigmoid(a):
    return 1 / (1 + numpy.exp(-a))


def reference_costs(x, W, b, b_prime):
    """(mean L_rec, mean ||J||_F^2) of a minibatch, with each example's
    Jacobian built as an explicit matrix, one example at a time."""
    L_rec, L_jacob = [], []
    for row in x:
        h = sigmoid(row @ W + b)
        z = sigmoid(h @ W.T + b_prime)
        L_rec.append(-numpy.sum(row * numpy.log(z) +
                                (1 - row) * numpy.log(1 - z)))
        J = numpy.empty_like(W)  # J[i, j] = dh_j / dx_i
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                J[i, j] = h[j] * (1 - h[j]) * W[i, j]
        L_jacob.append(numpy.sum(J ** 2))
    return numpy.mean(L_rec), numpy.mean(L_jacob)


def reference_cost(x, W, b, b_prime, contraction_level):
    L_rec, L_jacob = reference_costs(x, W, b, b_prime)
    return L_rec + contraction_level * L_jacob


def numpy_sgd(train_x, n_hidden, learning_rate, lam, batch_size, epochs,
              seed=123):
    """Plain numpy SGD on eq. (6), with the gradient of eqs. (7)-(10), from
    cA's initial W of RandomState(seed); returns the per-minibatch [mean
    L_rec, L_jacob] before each step, and the trained W."""
    rng = numpy.random.RandomState(seed)
    n_visible = train_x.shape[1]
    bound = 4 * numpy.sqrt(6. / (n_visible + n_hidden))
    W = rng.uniform(-bound, bound, (n_visible, n_hidden))
    b, b_prime = numpy.zeros(n_hidden), numpy.zeros(n_visible)
    costs = []
    for _ in range(epochs):
        for start in range(0, len(train_x), batch_size):
            x = train_x[start:start + batch_size]
            n = len(x)
            h = sigmoid(x @ W + b)
            z = sigmoid(h @ W.T + b_prime)
            s = h * (1 - h)
            c = (W ** 2).sum(axis=0)
            L_rec = -numpy.sum(x * numpy.log(z) + (1 - x) * numpy.log(1 - z),
                               axis=1).mean()
            costs.append([L_rec, (s ** 2 @ c).mean()])
            d_z = (z - x) / n
            d_h = (d_z @ W + 2 * lam / n * c * s * (1 - 2 * h)) * s
            grad_W = x.T @ d_h + d_z.T @ h + 2 * lam * W * (s ** 2).mean(0)
            W = W - learning_rate * grad_W
            b = b - learning_rate * d_h.sum(axis=0)
            b_prime = b_prime - learning_rate * d_z.sum(axis=0)
    return numpy.array(costs), W


def finite_difference_gradient(f, value, eps=1e-6):
    """Central differences of the scalar f at array `value` (copied)."""
    value = numpy.array(value, dtype=numpy.float64)
    grad = numpy.zeros_like(value)
    for idx in numpy.ndindex(*value.shape):
        old = value[idx]
        value[idx] = old + eps
        up = f(value)
        value[idx] = old - eps
        down = f(value)
        value[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad
