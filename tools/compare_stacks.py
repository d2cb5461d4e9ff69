"""Train the same cA on several stacks and compare what they computed.

    python tools/compare_stacks.py PYTHON [PYTHON ...] [--epochs 1] [...]

Each PYTHON is an interpreter with its own stack (for example .venv/bin/python
made with Python 3.11, Theano-PyMC, and another made with Python 3.13,
PyTensor; CA_BACKEND may force one). Each trains cA.test_cA with the same
settings (float64 unless the flags say otherwise) in a fresh process; then
this prints, for every stack against the first one, the largest relative
difference of the per-minibatch costs and of the trained W, and whether
the filters PNGs have the same pixels. It exits with 1 when a cost differs
by more than --rtol, else 0.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# what each interpreter runs: train, then save what it computed
TRAIN = '''
import json, os, sys
import numpy, PIL.Image
import cA
from machinery import backend
settings = json.loads(sys.argv[1])
folder = sys.argv[2]
result = cA.test_cA(output_folder=folder, log=sys.stderr, **settings)
with PIL.Image.open(result.filters_path) as image:
    pixels = numpy.asarray(image)
numpy.savez(os.path.join(folder, 'computed.npz'), costs=result.costs,
            W=result.ca.W.get_value(), pixels=pixels)
print(json.dumps({'stack': backend.NAME, 'floatX':
                  backend.theano.config.floatX,
                  'python': sys.version.split()[0],
                  'seconds': result.training_time}))
'''


def train_on(python, settings, folder):
    """Run TRAIN with ``python``; (description dict, arrays)."""
    r = subprocess.run([python, '-c', TRAIN, json.dumps(settings), folder],
                       cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError('%s failed:\n%s' % (python, r.stderr))
    with numpy.load(os.path.join(folder, 'computed.npz')) as saved:
        arrays = {name: saved[name] for name in saved.files}
    return json.loads(r.stdout.splitlines()[-1]), arrays


def relative_difference(a, b):
    """max |a - b| / max |b|, elementwise over the arrays."""
    return float(numpy.max(numpy.abs(a - b)) / numpy.max(numpy.abs(b)))


def compare(pythons, settings):
    """[(description, cost difference, W difference, same pixels)] of each
    stack against the first."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        results = [train_on(python, settings,
                            os.path.join(scratch, str(k)))
                   for k, python in enumerate(pythons)]
    _, first = results[0]
    for description, arrays in results:
        per_minibatch = numpy.abs(arrays['costs'] - first['costs']) / \
            numpy.abs(first['costs'])
        rows.append((description, float(per_minibatch.max()),
                     relative_difference(arrays['W'], first['W']),
                     bool(numpy.array_equal(arrays['pixels'],
                                            first['pixels']))))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pythons', nargs='+', metavar='PYTHON',
                        help='interpreters, each with its own stack')
    parser.add_argument('--dataset', default=os.path.join(
        REPO, 'data', 'mnist.pkl.gz'), help='the dataset (default: the '
        'real MNIST in data/)')
    parser.add_argument('--epochs', type=int, default=1,
                        help='epochs to train (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=10,
                        help='minibatch size (default: %(default)s)')
    parser.add_argument('--n-hidden', type=int, default=500,
                        help='hidden units (default: %(default)s)')
    parser.add_argument('--learning-rate', type=float, default=0.01,
                        help='SGD step size (default: %(default)s)')
    parser.add_argument('--rtol', type=float, default=1e-10,
                        help='the largest relative difference of a '
                             "minibatch's costs that counts as equal "
                             '(default: %(default)s)')
    args = parser.parse_args(argv)
    settings = dict(dataset=os.path.abspath(args.dataset),
                    training_epochs=args.epochs, batch_size=args.batch_size,
                    n_hidden=args.n_hidden, learning_rate=args.learning_rate)
    rows = compare(args.pythons, settings)
    worst = 0.0
    for description, costs, W, pixels in rows:
        worst = max(worst, costs)
        print('%-22s Python %-7s %s  %6.1f s training  per-minibatch costs '
              'within %.2g relative of the first, W within %.2g, filters '
              'PNG pixels %s' % (description['stack'], description['python'],
                                 description['floatX'],
                                 description['seconds'], costs, W,
                                 'identical' if pixels else 'DIFFERENT'))
    return 0 if worst <= args.rtol else 1


if __name__ == '__main__':
    sys.exit(main())
