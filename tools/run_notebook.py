"""Execute cA_notebook.ipynb with a kernel of this Python, from the
repository's top folder, and write it back with its outputs:

    .venv/bin/python tools/run_notebook.py     (after an edit of the notebook
                                                or of the code it runs)

The committed notebook keeps its outputs so that a code host shows them;
tests/test_notebook.py checks that they are what the code prints now.
"""
import json
import os
import sys
import tempfile

import nbclient
import nbformat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, 'cA_notebook.ipynb')
KERNEL_NAME = 'cae-notebook'


def execute(notebook, timeout=600):
    """Run every cell of ``notebook`` (an nbformat object, changed in
    place) in a fresh kernel of this very interpreter, whatever kernels
    the user's Jupyter knows."""
    with tempfile.TemporaryDirectory() as folder:
        kernel = os.path.join(folder, 'kernels', KERNEL_NAME)
        os.makedirs(kernel)
        with open(os.path.join(kernel, 'kernel.json'), 'w') as f:
            json.dump({'argv': [sys.executable, '-m', 'ipykernel_launcher',
                                '-f', '{connection_file}'],
                       'display_name': 'Python (this environment)',
                       'language': 'python'}, f)
        old = os.environ.get('JUPYTER_PATH')
        os.environ['JUPYTER_PATH'] = folder
        try:
            nbclient.NotebookClient(
                notebook, timeout=timeout, kernel_name=KERNEL_NAME,
                record_timing=False,
                resources={'metadata': {'path': REPO}}).execute()
        finally:
            if old is None:
                del os.environ['JUPYTER_PATH']
            else:
                os.environ['JUPYTER_PATH'] = old
    for cell in notebook.cells:
        if cell.cell_type == 'code':
            cell.outputs = coalesced(cell.outputs)
    # the file names the kernel every Jupyter has, not this one's
    notebook.metadata['kernelspec'] = {
        'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    return notebook


def coalesced(outputs):
    """The outputs with consecutive prints to the same stream joined: how
    the kernel split them depends on timing, and the file should not."""
    joined = []
    for output in outputs:
        if output.output_type == 'stream' and joined and \
                joined[-1].output_type == 'stream' and \
                joined[-1].name == output.name:
            joined[-1].text += output.text
        else:
            joined.append(output)
    return joined


def main():
    notebook = execute(nbformat.read(NOTEBOOK, as_version=4))
    nbformat.write(notebook, NOTEBOOK)
    print('executed and wrote %s' % os.path.relpath(NOTEBOOK))


if __name__ == '__main__':
    main()
