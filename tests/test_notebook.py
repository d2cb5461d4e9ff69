"""cA_notebook.ipynb: it runs on this stack, computes what independent
numpy references compute, and its committed outputs are this code's."""
import base64
import io
import json
import os
import sys

import nbformat
import numpy
import PIL.Image
import pytest

from conftest import REPO, numpy_sgd, sigmoid

sys.path.insert(0, os.path.join(REPO, 'tools'))
import run_notebook  # noqa: E402

NOTEBOOK = os.path.join(REPO, 'cA_notebook.ipynb')

# Run in the notebook's kernel after its own cells: what it computed, saved
# for the checks below (the kernel is another process)
SAVE = """
import numpy
numpy.savez({path!r}, train_x=train_x.get_value(), test_x=test_x, radii=radii,
            cae_costs=cae_costs, ae_costs=ae_costs,
            cae_W=cae.W.get_value(), cae_b=cae.b.get_value(),
            ae_W=ae.W.get_value(), ae_b=ae.b.get_value(),
            cae_spectrum=cae_spectrum, ae_spectrum=ae_spectrum,
            cae_curve=curves['CAE, lambda 0.1'], ae_curve=curves['AE, lambda 0'])
"""


def encode(W, b, X):
    return sigmoid(X @ W + b)


def check_against_numpy(found):
    """The notebook's training against a plain numpy SGD loop, its
    spectra against numpy SVDs of W diag(s), its contraction curves
    against a numpy encoder with the same random directions."""
    X, test_x = found['train_x'], found['test_x']
    for model, lam in (('cae', 0.1), ('ae', 0.0)):
        costs, W = numpy_sgd(X, 100, 0.01, lam, batch_size=10, epochs=10)
        numpy.testing.assert_allclose(found[model + '_costs'].reshape(-1, 2),
                                      costs, rtol=1e-7)
        numpy.testing.assert_allclose(found[model + '_W'], W, rtol=1e-6,
                                      atol=1e-9)
        W, b = found[model + '_W'], found[model + '_b']
        h = encode(W, b, test_x)
        spectrum = numpy.mean([numpy.linalg.svd(W * s, compute_uv=False)
                               for s in h * (1 - h)], axis=0)
        numpy.testing.assert_allclose(found[model + '_spectrum'], spectrum,
                                      rtol=1e-8)
        g = numpy.random.RandomState(0).standard_normal(test_x.shape)
        u = g / numpy.linalg.norm(g, axis=1, keepdims=True)
        curve = []
        for r in found['radii']:
            moved = test_x + r * u
            curve.append(numpy.mean(
                numpy.linalg.norm(encode(W, b, moved) - h, axis=1) /
                numpy.linalg.norm(moved - test_x, axis=1)))
        numpy.testing.assert_allclose(found[model + '_curve'], curve,
                                      rtol=1e-9)
    # the penalty's effect, as the notebook's text says it
    assert found['cae_curve'][0] < found['ae_curve'][0]
    assert found['cae_costs'][-1, :, 1].mean() < \
        found['ae_costs'][-1, :, 1].mean()
    assert found['ae_costs'][-1, :, 1].mean() > \
        found['ae_costs'][4, :, 1].mean()


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
def test_the_notebook_runs_and_computes_what_numpy_computes(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    committed = [texts(c) for c in code_cells(notebook)]
    saved = str(tmp_path / 'found.npz')
    notebook.cells.append(nbformat.v4.new_code_cell(SAVE.format(path=saved)))
    run_notebook.execute(notebook)
    fresh = [texts(c) for c in code_cells(notebook)][:-1]
    # every number the committed file shows is what this code prints now
    # (the first cell names the stack, which differs between the stacks)
    assert fresh[1:] == committed[1:]
    assert len(pngs(notebook)) == 4
    with numpy.load(saved) as found:
        check_against_numpy(dict(found))
