"""Where a training step's time goes: the stack's profiler, per operation.

    .venv/bin/python benchmarks/profile_step.py --variant fused --batch-size 10
    taskset -c 0 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/profile_step.py --batch-sizes 10,100,1000

Compiles the step of cA.build_training (variant 'kernel', 'fused' or
'T.grad') with the stack's profiler on (``profile=True``), trains warm-up
minibatches of the real MNIST, then profiled ones, and prints for each
node of the graph its share of the step's time, its microseconds per call
and what it is, largest first; then the same summed by kind of operation.
The profiler's own overhead is in the totals (a few microseconds a node),
so the step itself is faster than "profiled ms/step" when the graph has
many nodes.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from machinery.backend import theano  # noqa: E402
import cA as cA_module  # noqa: E402
from logistic_sgd import load_data  # noqa: E402

N_TRAIN = 50000


def kind(node):
    """A coarse name for what the node does."""
    name = type(node.op).__name__
    if name in ('Dot22', 'Dot22Scalar', 'Gemm', 'CGemv', 'Gemv', 'Dot',
                'Ger', 'CGer', 'Dot22Scalar'):
        return 'matrix products (BLAS)'
    if name == 'CAEStep':
        return 'the kernel (kernel_op.CAEStep)'
    if name in ('Elemwise', 'Composite') or 'Elemwise' in name:
        return 'elementwise'
    if name in ('Sum', 'CAReduce', 'Max', 'Mean'):
        return 'reductions'
    if name in ('Join', 'DimShuffle', 'Alloc', 'AllocEmpty', 'Subtensor',
                'Shape_i', 'ScalarFromTensor', 'Reshape', 'Transpose',
                'SpecifyShape'):
        return 'copies, views and shapes'
    return 'other'


def describe(node):
    """The node as op(inputs), inputs by name or by the op making them."""
    def name(var):
        if var.name:
            return var.name
        if var.owner is None:
            return 'const' if hasattr(var, 'data') else '?'
        return type(var.owner.op).__name__
    op = str(node.op)
    if len(op) > 40:
        op = op[:37] + '...'
    return '%s(%s)' % (op, ', '.join(name(v) for v in node.inputs))


def profile(variant, batch_size, warmup, steps, top):
    train_set_x, _ = load_data()[0]
    gradient = {'kernel': 'kernel', 'fused': 'fused', 'tgrad': 'T.grad',
                'T.grad': 'T.grad'}[variant]
    theano.config.profile = True  # for the function build_training makes
    try:
        ca, train, _ = cA_module.build_training(
            train_set_x, batch_size, n_hidden=500, seed=123,
            contraction_level=0.1, learning_rate=0.01, gradient=gradient)
    finally:
        theano.config.profile = False
    n_batches = N_TRAIN // batch_size
    for i in range(warmup):
        train(i % n_batches)
    stats = train.profile
    # what the warm-up left in the counters, subtracted below
    before = dict(stats.apply_time), dict(stats.apply_callcount)
    for i in range(steps):
        train((warmup + i) % n_batches)
    times, calls = {}, {}
    for key, seconds in stats.apply_time.items():
        node = key[1] if isinstance(key, tuple) else key
        times[node] = times.get(node, 0) + seconds - before[0].get(key, 0)
        calls[node] = calls.get(node, 0) + (
            stats.apply_callcount.get(key, 0) - before[1].get(key, 0))
    total = sum(times.values())
    print('%s, %s, batch %d, %s: %d nodes, profiled %.3f ms/step (%d steps)'
          % (variant, theano.config.floatX, batch_size,
             theano.__name__, len(times), total / steps * 1e3, steps))
    print('%6s  %10s  %s' % ('share', 'us/call', 'node'))
    for node in sorted(times, key=times.get, reverse=True)[:top]:
        text = describe(node)
        if len(text) > 90:
            text = text[:87] + '...'
        print('%5.1f%%  %10.1f  %s' % (100 * times[node] / total,
                                       1e6 * times[node] / max(1, calls[node]),
                                       text))
    by_kind = {}
    for node, seconds in times.items():
        by_kind[kind(node)] = by_kind.get(kind(node), 0) + seconds
    print('by kind:')
    for name in sorted(by_kind, key=by_kind.get, reverse=True):
        print('%5.1f%%  %10.1f  %s' % (100 * by_kind[name] / total,
                                       1e6 * by_kind[name] / steps, name))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variant', default='fused',
                        choices=['kernel', 'fused', 'tgrad'])
    parser.add_argument('--batch-sizes', default='10,100,1000')
    parser.add_argument('--steps', type=int, default=0,
                        help='profiled minibatches (default: about 3 s)')
    parser.add_argument('--top', type=int, default=12,
                        help='nodes to list (default: %(default)s)')
    args = parser.parse_args()
    for batch in [int(b) for b in args.batch_sizes.split(',')]:
        steps = args.steps or max(5, 3000 // batch)
        profile(args.variant, batch, max(3, steps // 5), steps, args.top)
    return 0


if __name__ == '__main__':
    sys.exit(main())
