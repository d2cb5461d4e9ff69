"""cA_notebook.ipynb: it runs on this stack, computes what independent
numpy references compute, and its committed outputs are this code's."""
import base64
import io
import json
import os
import sys

import PIL.Image
import pytest

from conftest import REPO

NOTEBOOK = os.path.join(REPO, 'cA_notebook.ipynb')

# Run in the notebook's kernel after its own cells: the same training as a
# plain numpy loop with the hand-derived gradient of eq. (6), the
# Jacobian's singular values from W diag(s) built in numpy, the contraction
# curves from a numpy encoder with the same random directions.
CHECKS = r'''
import numpy

def numpy_training(X, W, b, b_prime, lam, epochs=10, batch_size=10, eta=0.01):
    costs = numpy.zeros((epochs, len(X) // batch_size, 2))
    for epoch in range(epochs):
        for k in range(len(X) // batch_size):
            x = X[k * batch_size:(k + 1) * batch_size]
            n = len(x)
            h = 1 / (1 + numpy.exp(-(x @ W + b)))
            z = 1 / (1 + numpy.exp(-(h @ W.T + b_prime)))
            s = h * (1 - h)
            c = numpy.sum(W ** 2, axis=0)
            costs[epoch, k] = (
                -numpy.sum(x * numpy.log(z) + (1 - x) * numpy.log(1 - z),
                           axis=1).mean(), (s ** 2 @ c).mean())
            d_z = (z - x) / n
            d_h = (d_z @ W + (2 * lam / n) * c * s * (1 - 2 * h)) * s
            m = numpy.mean(s ** 2, axis=0)
            W, b, b_prime = (W - eta * (x.T @ d_h + d_z.T @ h + 2 * lam * W * m),
                             b - eta * d_h.sum(axis=0),
                             b_prime - eta * d_z.sum(axis=0))
    return W, costs

X = train_x.get_value()
W0 = numpy.random.RandomState(123).uniform(
    low=-4 * numpy.sqrt(6. / 884), high=4 * numpy.sqrt(6. / 884),
    size=(784, 100))
for model, costs, lam in ((cae, cae_costs, 0.1), (ae, ae_costs, 0.0)):
    W, reference = numpy_training(X, W0, numpy.zeros(100), numpy.zeros(784), lam)
    numpy.testing.assert_allclose(costs, reference, rtol=1e-7)
    numpy.testing.assert_allclose(model.W.get_value(), W, rtol=1e-6, atol=1e-9)

for model, found in ((cae, cae_spectrum), (ae, ae_spectrum)):
    W, b = model.W.get_value(), model.b.get_value()
    s = 1 / (1 + numpy.exp(-(test_x @ W + b)))
    s = s * (1 - s)
    expected = numpy.mean([numpy.linalg.svd(W * row, compute_uv=False)
                           for row in s], axis=0)
    numpy.testing.assert_allclose(found, expected, rtol=1e-8)

for model, label in ((cae, 'CAE, lambda 0.1'), (ae, 'AE, lambda 0')):
    W, b = model.W.get_value(), model.b.get_value()
    g = numpy.random.RandomState(0).standard_normal(test_x.shape)
    u = g / numpy.linalg.norm(g, axis=1, keepdims=True)
    h0 = 1 / (1 + numpy.exp(-(test_x @ W + b)))
    expected = []
    for r in radii:
        x1 = test_x + r * u
        h1 = 1 / (1 + numpy.exp(-(x1 @ W + b)))
        expected.append(numpy.mean(numpy.linalg.norm(h1 - h0, axis=1) /
                                   numpy.linalg.norm(x1 - test_x, axis=1)))
    numpy.testing.assert_allclose(curves[label], expected, rtol=1e-9)
# the penalty's effect, as the notebook's text says it
assert curves['CAE, lambda 0.1'][0] < curves['AE, lambda 0'][0]
assert cae_costs[-1, :, 1].mean() < ae_costs[-1, :, 1].mean()
assert ae_costs[-1, :, 1].mean() > ae_costs[4, :, 1].mean()
'''


def code_cells(notebook):
    return [cell for cell in notebook['cells'] if cell['cell_type'] == 'code']


def texts(cell):
    """The text a cell printed on stdout."""
    return ''.join(''.join(o['text']) for o in cell['outputs']
                   if o['output_type'] == 'stream' and o['name'] == 'stdout')


def pngs(notebook):
    return [base64.b64decode(o['data']['image/png'])
            for cell in code_cells(notebook) for o in cell['outputs']
            if 'image/png' in o.get('data', {})]


def test_the_committed_notebook_shows_its_outputs():
    """A code host renders the committed file: every code cell ran, in
    order, without an error, and its 4 figures are real PNG images."""
    with open(NOTEBOOK) as f:
        notebook = json.load(f)
    cells = code_cells(notebook)
    assert [c['execution_count'] for c in cells] == \
        list(range(1, len(cells) + 1))
    assert not [o for c in cells for o in c['outputs']
                if o['output_type'] == 'error']
    images = [PIL.Image.open(io.BytesIO(data)) for data in pngs(notebook)]
    assert len(images) == 4
    assert all(image.format == 'PNG' and image.size[0] > 300
               for image in images)


@pytest.mark.slow
def test_the_notebook_runs_and_computes_what_numpy_computes():
    nbformat = pytest.importorskip('nbformat')
    sys.path.insert(0, os.path.join(REPO, 'tools'))
    import run_notebook
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    committed = [texts(c) for c in code_cells(notebook)]
    notebook.cells.append(nbformat.v4.new_code_cell(CHECKS))
    run_notebook.execute(notebook)
    fresh = [texts(c) for c in code_cells(notebook)][:-1]
    # every number the committed file shows is what this code prints now
    # (the first cell names the stack, which differs between the stacks)
    assert fresh[1:] == committed[1:]
    assert len(pngs(notebook)) == 4
