"""Training speed and memory: the port's graph, the original's, a plain
auto-encoder, and the PyTorch peer, side by side on the real MNIST.

    make bench                                  # the full table
    .venv/bin/python benchmarks/bench_train.py --batch-sizes 10 --dtypes float64

Each variant trains a fixed number of minibatches per block, after one
warm-up block; the seconds per minibatch are the median of the blocks. The
variants run interleaved, one process each, round after round, so that a
slow spell of this (noisy, 2-core) machine hits them all alike. Peak memory
is the process's peak resident set size (VmHWM); for the Theano variants
also the part that training added (train+MB) above what was resident once
the data was loaded and the function compiled.

Variants:
    default    test_cA's training function (cA.build_training), with the
               hand-derived step (cA.get_fused_cost_updates)
    tgrad      the same with T.grad's step (cA.get_cost_updates)
    explicit   the original's penalty, sum(get_jacobian(h, W) ** 2) / batch,
               through the (batch, n_visible, n_hidden) stack of Jacobians
    plain      a plain auto-encoder: the default step at lambda = 0, with
               no penalty computed at all
    peer       ../shared/bench/peer_torch.py, PyTorch eager on the CPU, run
               in its own virtual environment (--peer-python); skipped with
               a note when that is missing

Writes the table to stdout and every number to benchmarks/results/*.json.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEER = os.path.join(os.path.dirname(REPO), 'shared', 'bench', 'peer_torch.py')
PEER_PYTHON = os.path.join(REPO, '.venv-peer', 'bin', 'python')
N_TRAIN = 50000

# minibatches per timed block: about a second each on this machine
STEPS = {('default', 10): 200, ('default', 100): 50, ('default', 1000): 8,
         ('tgrad', 10): 200, ('tgrad', 100): 50, ('tgrad', 1000): 8,
         ('plain', 10): 200, ('plain', 100): 50, ('plain', 1000): 8,
         ('explicit', 10): 20, ('explicit', 100): 4, ('explicit', 1000): 1,
         ('peer', 10): 200, ('peer', 100): 50, ('peer', 1000): 8}


def read_status(field):
    """A VmHWM / VmRSS line of /proc/self/status, in MB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024.
    return float('nan')


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux: clear_refs 5)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


# ---- the Theano worker ------------------------------------------------------

def theano_worker(variant, batch_size, steps, blocks):
    """Run in a subprocess (floatX comes from THEANO_FLAGS)."""
    sys.path.insert(0, REPO)
    import numpy
    import cA as cA_module
    from backend import theano, T
    from logistic_sgd import load_data

    train_set_x, _ = load_data()[0]
    if variant in ('default', 'tgrad'):
        ca, train = cA_module.build_training(
            train_set_x, batch_size, n_hidden=500, seed=123,
            contraction_level=0.1, learning_rate=0.01,
            gradient='fused' if variant == 'default' else 'T.grad')
    else:
        index = T.lscalar('index')
        x = T.matrix('x')
        ca = cA_module.cA(numpy.random.RandomState(123), input=x,
                          n_visible=784, n_hidden=500,
                          n_batchsize=batch_size)
        if variant == 'explicit':
            # the original's expression, with its fixed batch size
            h = ca.get_hidden_values(x)
            z = ca.get_reconstructed_input(h)
            L_rec = T.mean(ca.get_reconstruction_cost(x, z))
            L_jacob = T.sum(ca.get_jacobian(h, ca.W) ** 2) / batch_size
            lr = numpy.asarray(0.01, dtype=theano.config.floatX)
            updates = [(p, p - lr * g) for p, g in zip(
                ca.params, T.grad(L_rec + 0.1 * L_jacob, ca.params))]
            outputs = [L_rec, L_jacob]
        else:
            # the default step at lambda = 0, without the penalty's log
            # output: Theano prunes every term of the penalty
            _, updates = ca.get_fused_cost_updates(0.0, 0.01)
            outputs = [T.mean(ca.L_rec)]
        train = theano.function(
            [index], outputs, updates=updates,
            givens={x: train_set_x[index * batch_size:
                                   (index + 1) * batch_size]})
    ops = sorted({type(node.op).__name__ + ':' + str(node.op)[:60]
                  for node in train.maker.fgraph.toposort()})

    n_batches = N_TRAIN // batch_size
    step = [0]

    def run_block():
        start = time.perf_counter()
        for _ in range(steps):
            out = train(step[0] % n_batches)
            step[0] += 1
        return (time.perf_counter() - start) / steps, out

    # the baseline: data loaded and the function compiled, before any step
    # (with allow_gc=False the steps' buffers then stay allocated)
    rss_before = read_status('VmRSS')
    reset_peak_rss()
    run_block()  # warm-up
    times = []
    for _ in range(blocks):
        seconds, out = run_block()
        times.append(seconds)
    return {'seconds_per_step': float(numpy.median(times)),
            'block_seconds_per_step': times,
            'peak_rss_mb': read_status('VmHWM'),
            'training_extra_mb': read_status('VmHWM') - rss_before,
            'last_costs': [float(o) for o in out],
            'blas_ldflags': theano.config.blas__ldflags,
            'floatX': theano.config.floatX,
            'n_ops': len(train.maker.fgraph.toposort()),
            'ops': ops}


# ---- the parent ------------------------------------------------------------

# runs the peer script as __main__, then prints the process's peak RSS
PEAK_WRAPPER = (
    'import json, runpy, sys; sys.argv = sys.argv[1:]; '
    'runpy.run_path(sys.argv[0], run_name="__main__"); '
    'hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]; '
    'print(json.dumps({"peak_rss_mb": int(hwm[0].split()[1]) / 1024.}))')


def run_child(argv, env):
    """Run argv in the repo; its stdout lines that are JSON, as dicts."""
    proc = subprocess.run(argv, capture_output=True, env=env, text=True,
                          cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError('%s failed: %s' % (' '.join(argv[:4]),
                                              proc.stderr.strip()[-2000:]))
    return [json.loads(line) for line in proc.stdout.splitlines()
            if line.startswith('{')]


def measure(variant, dtype, batch_size, blocks, peer_python):
    steps = STEPS[(variant, batch_size)]
    env = dict(os.environ)
    if variant == 'peer':
        argv = [peer_python, PEER, '--data',
                os.path.join(REPO, 'data', 'mnist.pkl.gz'),
                '--dtype', dtype, '--batch-size', str(batch_size),
                '--steps', str(steps * (blocks + 1))]
        result, peak = run_child([peer_python, '-c', PEAK_WRAPPER] +
                                 argv[1:], env)
        result.update(peak)
        return result
    env['THEANO_FLAGS'] = ','.join(
        f for f in [env.get('THEANO_FLAGS', ''), 'floatX=' + dtype] if f)
    argv = [sys.executable, os.path.abspath(__file__), '--worker', variant,
            '--batch-sizes', str(batch_size), '--steps', str(steps),
            '--blocks', str(blocks)]
    return run_child(argv, env)[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants',
                        default='default,tgrad,explicit,plain,peer',
                        help='comma-separated (default: %(default)s)')
    parser.add_argument('--dtypes', default='float64,float32',
                        help='comma-separated floatX values '
                             '(default: %(default)s)')
    parser.add_argument('--batch-sizes', default='10,100,1000',
                        help='comma-separated (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=2,
                        help='interleaved rounds; each variant runs once '
                             'per round (default: %(default)s)')
    parser.add_argument('--blocks', type=int, default=5,
                        help='timed blocks per run, after a warm-up block '
                             '(default: %(default)s)')
    parser.add_argument('--steps', type=int, default=None,
                        help='minibatches per block (default: per variant '
                             'and batch size, about 1 s)')
    parser.add_argument('--peer-python', default=PEER_PYTHON,
                        help='the Python of the virtual environment with '
                             'torch (default: .venv-peer/bin/python)')
    parser.add_argument('--output', default=os.path.join(
        HERE, 'results', 'bench_train.json'),
        help='where the JSON goes (default: %(default)s)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        result = theano_worker(args.worker, int(args.batch_sizes),
                               args.steps, args.blocks)
        print(json.dumps(result))
        return 0

    variants = args.variants.split(',')
    if 'peer' in variants and not (os.path.exists(args.peer_python) and
                                   os.path.exists(PEER)):
        print('note: the PyTorch peer is skipped: %s or %s is missing '
              '(make bench-peer sets it up)' % (args.peer_python, PEER))
        variants.remove('peer')
    configs = [(v, d, int(b)) for d in args.dtypes.split(',')
               for b in args.batch_sizes.split(',') for v in variants]
    runs = {c: [] for c in configs}
    for round_ in range(args.rounds):
        # rotate the order each round, so that no variant always goes first
        shift = round_ % len(configs)
        for config in configs[shift:] + configs[:shift]:
            result = measure(*config, blocks=args.blocks,
                             peer_python=args.peer_python)
            runs[config].append(result)
            print('  round %d  %-8s %-7s batch %4d  %.3f ms/minibatch'
                  % (round_ + 1, *config, result['seconds_per_step'] * 1e3),
                  file=sys.stderr, flush=True)
    import statistics
    rows = []
    for (variant, dtype, batch), results in runs.items():
        sps = statistics.median(r['seconds_per_step'] for r in results)
        rows.append({
            'variant': variant, 'dtype': dtype, 'batch_size': batch,
            'seconds_per_minibatch': sps,
            'seconds_per_epoch': sps * -(-N_TRAIN // batch),
            'examples_per_second': batch / sps,
            'peak_rss_mb': max(r['peak_rss_mb'] for r in results),
            'training_extra_mb': max(r.get('training_extra_mb', float('nan'))
                                     for r in results),
            'runs': results})
    by_key = {(r['variant'], r['dtype'], r['batch_size']): r for r in rows}
    for row in rows:
        peer = by_key.get(('peer', row['dtype'], row['batch_size']))
        row['speedup_over_peer'] = (peer['seconds_per_minibatch'] /
                                    row['seconds_per_minibatch']
                                    if peer else None)

    header = ('variant   dtype    batch  ms/minibatch  s/epoch  '
              'examples/s  peak MB  train+MB  vs peer')
    print(header)
    print('-' * len(header))
    for r in rows:
        print('%-9s %-8s %5d  %12.3f  %7.1f  %10.0f  %7.0f  %8s  %7s' % (
            r['variant'], r['dtype'], r['batch_size'],
            r['seconds_per_minibatch'] * 1e3, r['seconds_per_epoch'],
            r['examples_per_second'], r['peak_rss_mb'],
            '%.0f' % r['training_extra_mb']
            if r['training_extra_mb'] == r['training_extra_mb'] else '-',
            '%.2fx' % r['speedup_over_peer']
            if r['speedup_over_peer'] else '-'))
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    sys.path.insert(0, REPO)
    from outputs import atomic_write
    with atomic_write(args.output, 'w') as f:
        json.dump({'machine': {'python': platform.python_version(),
                               'cpus': os.cpu_count(),
                               'processor': platform.processor()},
                   'rounds': args.rounds, 'blocks': args.blocks,
                   'rows': rows}, f, indent=1)
    print('wrote %s' % os.path.relpath(args.output, REPO))
    return 0


if __name__ == '__main__':
    sys.exit(main())
