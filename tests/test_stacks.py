"""The same numbers on every stack this machine has.

The stacks are this interpreter's (Theano-PyMC or PyTensor) and those of
the interpreters named in CA_STACK_PYTHONS (paths separated by ':'; CI sets
it to the other stack's .venv/bin/python). Each trains the same small cA;
their per-minibatch costs must agree to 1e-10 relative, their filters PNGs
pixel for pixel, and the first one must agree with an SGD loop written in
plain numpy from the equations of cA's docstring.
"""
import json
import os
import subprocess
import sys

import numpy
import pytest

from conftest import REPO, numpy_sgd, saved_checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'tools'))
import compare_stacks  # noqa: E402
from machinery import mnist_data  # noqa: E402

SETTINGS = dict(training_epochs=2, batch_size=20, n_hidden=30,
                learning_rate=0.1)


def stack_pythons():
    others = [p for p in os.environ.get('CA_STACK_PYTHONS', '').split(
        os.pathsep) if p]
    return [sys.executable] + others


def other_stacks_or_skip():
    """The interpreters to compare with this one; the test is skipped,
    saying so, when CA_STACK_PYTHONS names none."""
    pythons = stack_pythons()
    if len(pythons) == 1:
        pytest.skip('one stack only (%s): set CA_STACK_PYTHONS to another '
                    "stack's .venv/bin/python to compare them"
                    % sys.executable)
    return pythons


@pytest.mark.slow
def test_every_stack_computes_the_same_training(tiny_mnist):
    pythons = other_stacks_or_skip()
    settings = dict(SETTINGS, dataset=tiny_mnist)
    rows = compare_stacks.compare(pythons, settings)
    for description, costs, W, same_pixels in rows:
        assert costs <= 1e-10, description
        assert W <= 1e-10, description
        assert same_pixels, description


@pytest.mark.slow
def test_this_stack_trains_as_plain_numpy_sgd(tiny_mnist, tmp_path):
    settings = dict(SETTINGS, dataset=tiny_mnist)
    (train_x, _), _, _ = mnist_data.read_mnist(tiny_mnist)
    expected, _ = numpy_sgd(train_x.astype(numpy.float64),
                            SETTINGS['n_hidden'], SETTINGS['learning_rate'],
                            0.1, SETTINGS['batch_size'],
                            SETTINGS['training_epochs'])
    _, arrays = compare_stacks.train_on(sys.executable, settings,
                                        str(tmp_path / 'again'))
    numpy.testing.assert_allclose(arrays['costs'].reshape(-1, 2), expected,
                                  rtol=1e-9)


RESUME = '''
import json, sys
import cA
settings = json.loads(sys.argv[1])
cA.test_cA(output_folder=sys.argv[2], log=sys.stderr, **settings)
'''


@pytest.mark.slow
def test_a_checkpoint_from_one_stack_resumes_on_another(tiny_mnist,
                                                        tmp_path):
    """Epoch 1 on the first stack, epoch 2 resumed on the last one: the
    costs of an uninterrupted run, to 1e-10. (Resuming on one stack is
    tested in test_robustness.py.)"""
    pythons = other_stacks_or_skip()
    settings = dict(SETTINGS, dataset=tiny_mnist)
    whole, parts = str(tmp_path / 'whole'), str(tmp_path / 'parts')
    for python, folder, extra in [
            (pythons[0], whole, {}),
            (pythons[0], parts, dict(training_epochs=1)),
            (pythons[-1], parts, dict(resume=True))]:
        r = subprocess.run([python, '-c', RESUME,
                            json.dumps(dict(settings, **extra)), folder],
                           cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    expected = saved_checkpoint(os.path.join(whole, 'cae_checkpoint.npz'))
    got = saved_checkpoint(os.path.join(parts, 'cae_checkpoint.npz'))
    assert got['epoch'] == 2
    numpy.testing.assert_allclose(
        numpy.load(os.path.join(parts, 'cae_costs.npy')),
        numpy.load(os.path.join(whole, 'cae_costs.npy')), rtol=1e-10)
    numpy.testing.assert_allclose(got['params']['W'],
                                  expected['params']['W'], rtol=1e-10,
                                  atol=1e-14)
