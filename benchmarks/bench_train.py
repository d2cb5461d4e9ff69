"""Training speed: the port's steps on both stacks beside PyTorch, eager and
compiled, on the real MNIST, with the machine's peak for scale.

    make bench                                  # the full table (its time: docs/performance.md)
    .venv/bin/python benchmarks/bench_train.py --batch-sizes 10 --rounds 1
    .venv/bin/python benchmarks/bench_train.py --pytensor-choices

Each Theano variant trains a fixed number of minibatches per block, after a
warm-up block; its seconds per minibatch are the median of the blocks. The
PyTorch peers time their own steps after compiling and warming up. The
runs are interleaved, one process each, round after round (the order
rotates), so that a slow spell of the machine hits them all alike; a row
is the median of its rounds.

Stacks: every environment of the repo that has one (.venv/ and
.venv-theano/ or .venv-pytensor/; `make bench` sets up the second one
when a Python for it is installed).

Variants:
    default       test_cA's step (cA.build_training): the kernel, CAEStep
    unblocked     the same kernel with one block of all rows of W (each
                  pass one GEMM; what the blocks gain; not run by default)
    fused         machinery/kernel/fused.py, the hand-derived step as a graph
    tgrad         cA.get_cost_updates, T.grad's step
    explicit      the original's penalty through the (batch, n_visible,
                  n_hidden) stack of Jacobians (slow; not run by default)
    plain         a plain auto-encoder built the same way as default: the
                  kernel at lambda = 0, no L_jacob asked for (so none of the
                  penalty is computed)
    threads-1, threads-all
                  the kernel forced to one thread, or to all the cores,
                  where default chooses between the two as it runs (for
                  the busy-machine table)
    torch         benchmarks/peer_torch.py, PyTorch eager (autograd and
                  torch.optim.SGD), in .venv-peer/
    torch.compile the same peer with --compile (TorchInductor)

GFLOP/s counts the step's five matrix products, 5 x 2 B V H floating-point
operations (x W, h W^T, d_z W and the two outer products of the W update;
the elementwise work is not counted), for every variant alike. "% peak"
divides it by the machine's peak: the fastest large matrix product
(3000 x 3000, best of 5, all cores) that NumPy, the stacks' BLAS or torch
computes here, measured at the start of the run. --pytensor-choices
measures PyTensor's linkers and BLAS instead (C linker with MKL or
OpenBLAS, Numba linker).

After it, the roofline of the default step (roofline.py): its flops and
bytes per step, the read bandwidths of the caches and of memory measured
by bandwidth.c, the bound they give, and NumPy's product of the step's
first shape by itself.

A last table, the busy machine: the default step (batch 10, float64,
the first stack), threads-1 and threads-all, each on the idle machine and
beside one CPU-bound process (a Python loop, started before the run and
ended after it), interleaved round after round, the order rotating
(--busy-rounds, 0 skips it).

Writes the table to stdout and every number to benchmarks/results/*.json.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import roofline

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEER = os.path.join(HERE, 'peer_torch.py')
PEER_PYTHON = os.path.join(REPO, '.venv-peer', 'bin', 'python')
ENVIRONMENTS = ['.venv', '.venv-theano', '.venv-pytensor']
N_TRAIN = 50000
N_VISIBLE, N_HIDDEN = 784, 500
TITLES = {'theano': 'Theano-PyMC', 'pytensor': 'PyTensor', 'torch': 'PyTorch'}

# seconds a timed block should last; minibatches per block follow from a
# first guess of each variant's speed (ms per minibatch at batch 10, and
# how it grows with the batch)
BLOCK_SECONDS = 0.4
GUESS_MS = {'default': 0.6, 'unblocked': 0.7, 'fused': 1.5, 'tgrad': 2.0,
            'plain': 0.5, 'threads-1': 0.9, 'threads-all': 0.6,
            'explicit': 20.0, 'torch': 2.0, 'torch.compile': 1.5}
TORCH = ('torch', 'torch.compile')


def flops_per_step(batch):
    """The five matrix products of a step: 5 x 2 B V H (roofline.py)."""
    return roofline.step_flops(batch, N_VISIBLE, N_HIDDEN)


def steps_per_block(variant, batch):
    ms = GUESS_MS[variant] * max(1.0, batch / 10.0) ** 0.9
    return max(1, int(BLOCK_SECONDS * 1e3 / ms))


def read_status(field):
    """A VmHWM / VmRSS line of /proc/self/status, in MB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024.
    return float('nan')


# ---- the workers (each in its own process) ---------------------------------

def theano_worker(variant, batch_size, steps, blocks, clock=time.perf_counter):
    """Time one variant; floatX and the stack's flags come from the
    environment the parent set."""
    sys.path.insert(0, REPO)
    import numpy
    from machinery import backend
    import cA as cA_module
    from machinery.kernel import op as kernel_op
    from machinery.backend import theano, T
    from logistic_sgd import load_data

    train_set_x, _ = load_data()[0]
    if variant in ('default', 'fused', 'tgrad'):
        ca, train, _ = cA_module.build_training(
            train_set_x, batch_size, n_hidden=N_HIDDEN, seed=123,
            contraction_level=0.1, learning_rate=0.01,
            gradient={'default': 'auto', 'fused': 'fused',
                      'tgrad': 'T.grad'}[variant])
    else:
        index = T.lscalar('index')
        x = T.matrix('x')
        ca = cA_module.cA(numpy.random.RandomState(123), input=x,
                          n_visible=N_VISIBLE, n_hidden=N_HIDDEN)
        if variant == 'unblocked':
            _, updates = kernel_op.get_cost_updates(ca, 0.1, 0.01,
                                                    block_rows=N_VISIBLE)
            outputs = [T.mean(ca.L_rec), ca.L_jacob]
        elif variant in ('threads-1', 'threads-all'):
            threads = 1 if variant == 'threads-1' else os.cpu_count()
            _, updates = kernel_op.get_cost_updates(ca, 0.1, 0.01,
                                                    threads=threads)
            outputs = [T.mean(ca.L_rec), ca.L_jacob]
        elif variant == 'explicit':
            # the original's expression, with its fixed batch size
            h = ca.get_hidden_values(x)
            z = ca.get_reconstructed_input(h)
            L_rec = T.mean(ca.get_reconstruction_cost(x, z))
            L_jacob = T.sum(ca.get_jacobian(h, ca.W) ** 2) / batch_size
            lr = numpy.asarray(0.01, dtype=theano.config.floatX)
            updates = [(p, p - lr * g) for p, g in zip(
                ca.params, T.grad(L_rec + 0.1 * L_jacob, ca.params))]
            outputs = [L_rec, L_jacob]
        else:  # plain: the kernel at lambda = 0, without L_jacob
            _, updates = kernel_op.get_cost_updates(ca, 0.0, 0.01)
            outputs = [T.mean(ca.L_rec)]
        train = theano.function(
            [index], outputs, updates=updates,
            givens={x: train_set_x[index * batch_size:
                                   (index + 1) * batch_size]})
    nodes = train.maker.fgraph.toposort()

    n_batches = N_TRAIN // batch_size
    step = [0]

    def run_block():
        start = clock()
        for _ in range(steps):
            out = train(step[0] % n_batches)
            step[0] += 1
        return (clock() - start) / steps, out

    run_block()  # warm-up
    times = []
    for _ in range(blocks):
        seconds, out = run_block()
        times.append(seconds)
    return {'seconds_per_step': float(numpy.median(times)),
            'block_seconds_per_step': times,
            'steps_per_block': steps,
            'peak_rss_mb': read_status('VmHWM'),
            'last_costs': [float(o) for o in out],
            'stack': backend.NAME,
            'linker': str(theano.config.linker),
            'mode': str(theano.config.mode),
            'blas_ldflags': theano.config.blas__ldflags,
            'floatX': theano.config.floatX,
            'n_ops': len(nodes),
            'small_batch': kernel_op.SMALL_BATCH,
            'ops': sorted({type(node.op).__name__ for node in nodes})}


def peak_worker(batches, clock=time.perf_counter):
    """GFLOP/s of a 3000 x 3000 matrix product by NumPy and by the stack's
    BLAS (a compiled T.dot), float64 and float32, best of 5; and of NumPy's
    product of the step's first shape, (B x V) (V x H), for each B."""
    sys.path.insert(0, REPO)
    import numpy
    from machinery import backend
    from machinery.backend import theano, T
    n, result = 3000, {'stack': backend.NAME}
    for dtype in ('float64', 'float32'):
        rng = numpy.random.RandomState(0)
        a, b = [rng.uniform(size=(n, n)).astype(dtype) for _ in range(2)]
        A, B = theano.shared(a), theano.shared(b)
        f = theano.function([], T.dot(A, B))
        for name, run in [('numpy %s (%s)' % (numpy.__version__,
                                               backend.NAME), lambda: a @ b),
                          (backend.NAME, f)]:
            run()
            best = min(timed(run, clock) for _ in range(5))
            result['%s %s' % (name, dtype)] = 2.0 * n ** 3 / best / 1e9
        W = rng.uniform(size=(N_VISIBLE, N_HIDDEN)).astype(dtype)
        for batch in batches:
            x = rng.uniform(size=(batch, N_VISIBLE)).astype(dtype)
            reps = max(1, int(2e8 / (batch * N_VISIBLE * N_HIDDEN)))

            def products():
                for _ in range(reps):
                    x @ W
            products()
            best = min(timed(products, clock) for _ in range(5)) / reps
            result['shape %d %s' % (batch, dtype)] = \
                2.0 * batch * N_VISIBLE * N_HIDDEN / best / 1e9
    return result


TORCH_PEAK = (
    'import json, time, torch\n'
    'n, out = 3000, {}\n'
    'for dt in ("float64", "float32"):\n'
    '    a, b = [torch.rand(n, n, dtype=getattr(torch, dt)) for _ in "ab"]\n'
    '    a @ b\n'
    '    best = 1e9\n'
    '    for _ in range(5):\n'
    '        start = time.CLOCK()\n'
    '        a @ b\n'
    '        best = min(best, time.CLOCK() - start)\n'
    '    out["torch %s %s" % (torch.__version__, dt)] = 2.0 * n ** 3 / best / 1e9\n'
    'print(json.dumps(out))\n')


def timed(f, clock=time.perf_counter):
    start = clock()
    f()
    return clock() - start


# ---- the parent ------------------------------------------------------------

# runs the peer script as __main__, then prints the process's peak RSS;
# with --cpu-time the script's clock is the process's CPU time
PEAK_RSS_WRAPPER = (
    'import json, runpy, sys, time; sys.argv = sys.argv[1:]; '
    'time.perf_counter = time.process_time if CPU_TIME else '
    'time.perf_counter; '
    'runpy.run_path(sys.argv[0], run_name="__main__"); '
    'hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]; '
    'print(json.dumps({"peak_rss_mb": int(hwm[0].split()[1]) / 1024.}))')

# extra settings of --pytensor-choices: (label, flags)
PYTENSOR_CHOICES = [
    ('C linker, MKL', ''),
    ('C linker, OpenBLAS', 'blas__ldflags=-lopenblas'),
    ('C linker, NumPy BLAS', 'blas__ldflags='),
    ('Numba linker', 'linker=auto,mode=NUMBA'),
]


def run_child(argv, env):
    """Run argv in the repo; its stdout lines that are JSON, as dicts."""
    proc = subprocess.run(argv, capture_output=True, env=env, text=True,
                          cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError('%s failed: %s' % (' '.join(argv[:4]),
                                              proc.stderr.strip()[-2000:]))
    return [json.loads(line) for line in proc.stdout.splitlines()
            if line.startswith('{')]


def find_stacks():
    """{stack key: python} of the repo's environments, the first of each."""
    found = {}
    for folder in ENVIRONMENTS:
        python = os.path.join(REPO, folder, 'bin', 'python')
        if not os.path.exists(python):
            continue
        proc = subprocess.run(
            [python, '-c', 'from machinery import backend; print(backend.STACK.key)'],
            capture_output=True, text=True, cwd=REPO)
        key = proc.stdout.strip().splitlines()[-1:] if proc.returncode == 0 \
            else []
        if key and key[0] not in found:
            found[key[0]] = python
    return found


def stack_env(stack, dtype, flags='', base=os.environ):
    env = dict(base)
    var = {'theano': 'THEANO_FLAGS', 'pytensor': 'PYTENSOR_FLAGS'}[stack]
    env[var] = ','.join(f for f in [env.get(var, ''), 'floatX=' + dtype,
                                    flags] if f)
    env['CA_BACKEND'] = stack
    return env


def measure(config, blocks, pythons, peer_python, steps=None, threads=0,
            cpu_time=False):
    stack, variant, dtype, batch, choice = config
    n = steps or steps_per_block(variant, batch)
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    if stack == 'torch':
        wrapper = PEAK_RSS_WRAPPER.replace('CPU_TIME', str(cpu_time))
        argv = [peer_python, '-c', wrapper, PEER,
                '--data', os.path.join(REPO, 'data', 'mnist.pkl.gz'),
                '--dtype', dtype, '--batch-size', str(batch),
                '--steps', str(n * blocks), '--threads', str(threads)]
        if variant == 'torch.compile':
            argv.append('--compile')
        result, peak = run_child(argv, env)
        result.update(peak)
        return result
    flags = dict(PYTENSOR_CHOICES).get(choice, '')
    env.update(stack_env(stack, dtype, flags, env))
    argv = [pythons[stack], os.path.abspath(__file__), '--worker', variant,
            '--batch-sizes', str(batch), '--steps', str(n),
            '--blocks', str(blocks)] + (['--cpu-time'] if cpu_time else [])
    return run_child(argv, env)[-1]


def measure_peaks(pythons, peer_python, batches, threads=0,
                  cpu_time=False):
    peaks = {}
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
        env['OPENBLAS_NUM_THREADS'] = str(threads)
    for stack, python in sorted(pythons.items()):
        found = run_child([python, os.path.abspath(__file__),
                           '--peak-worker', '--batch-sizes',
                           ','.join(map(str, batches))] +
                          (['--cpu-time'] if cpu_time else []),
                          stack_env(stack, 'float64', '', env))[-1]
        # the step's shapes: NumPy's, once (the first stack's)
        peaks.update((k, v) for k, v in found.items()
                     if not (k.startswith('shape ') and k in peaks))
    if peer_python:
        code = TORCH_PEAK.replace(
            'CLOCK', 'process_time' if cpu_time else 'perf_counter')
        if threads:
            code = 'import torch; torch.set_num_threads(%d)\n' % threads + code
        peaks.update(run_child([peer_python, '-c', code], env)[-1])
    peaks.pop('stack', None)
    return peaks


def roofline_table(rows, peak, shapes, bandwidths, threads):
    """The roofline of the default step (benchmarks/roofline.py), one line
    per dtype and batch of the first stack's rows; returns the lines."""
    lines = ['roofline of the default step (%s): read bandwidth, %d '
             'threads: %s' % (
                 'benchmarks/roofline.py', threads,
                 ', '.join('%s %.0f GB/s' % (k, v / 1e9)
                           for k, v in bandwidths.items()) or
                 'not measured (no C compiler)'),
             'peak: ' + ', '.join('%s %.0f GFLOP/s' % (d, p)
                                  for d, p in peak.items())]
    header = ('dtype    batch  GFLOP/step  MB/step  flop/byte  from   '
              'bound GFLOP/s  xW alone  step GFLOP/s  %peak')
    lines += [header, '-' * len(header)]
    first = None
    for r in rows:
        if r['variant'] != 'default' or r['choice']:
            continue
        first = first or r['stack']
        if r['stack'] != first:
            continue
        B, dtype = r['batch_size'], r['dtype']
        blocked = B < r['runs'][0].get('small_batch', 0)
        moved, level = roofline.step_traffic(
            B, N_VISIBLE, N_HIDDEN, 8 if dtype == 'float64' else 4,
            blocked, threads)
        flops = flops_per_step(B)
        bound = min(peak[dtype], flops / moved * bandwidths[level] / 1e9) \
            if level in bandwidths else peak[dtype]
        shape = shapes.get('shape %d %s' % (B, dtype))
        lines.append('%-8s %5d  %10.3f  %7.2f  %9.1f  %-5s  %13.0f  %8s  '
                     '%12.1f  %4.0f%%' % (
                         dtype, B, flops / 1e9, moved / 1e6, flops / moved,
                         level, bound,
                         '%.0f' % shape if shape else '-', r['gflops'],
                         100 * r['fraction_of_peak']))
        r['roofline'] = {'flops': flops, 'bytes': moved, 'from': level,
                         'bound_gflops': bound, 'x_W_alone_gflops': shape}
    lines.append('(bound: the peak, or the level\'s bandwidth x flop/byte '
                 'if less; xW alone: GFLOP/s of NumPy\'s product of the '
                 'step\'s first shape, (B x 784) (784 x 500), by itself)')
    return lines if first else []


BUSY_VARIANTS = ('default', 'threads-1', 'threads-all')
BUSY_STEPS = 2048  # per block: two periods of the default's thread probes


def busy_machine(stack, pythons, rounds, blocks):
    """The busy-machine table: BUSY_VARIANTS at batch 10, float64, idle and
    beside one CPU-bound process, interleaved; prints it, returns its
    rows."""
    print('measuring the busy machine...', file=sys.stderr, flush=True)
    runs = {(v, busy): [] for busy in (False, True) for v in BUSY_VARIANTS}
    for round_ in range(rounds):
        # the order rotates, so that no variant always follows a busy run
        # (the machine can stay slower for a while after one)
        order = list(runs)[round_ % len(runs):] + \
            list(runs)[:round_ % len(runs)]
        for variant, busy in order:
            load = subprocess.Popen([sys.executable, '-c', 'while True: pass'
                                     ]) if busy else None
            try:
                result = measure((stack, variant, 'float64', 10, ''), blocks,
                                 pythons, None, BUSY_STEPS)
            finally:
                if load:
                    load.kill()
                    load.wait()
            runs[(variant, busy)].append(result)
            print('  round %d  %-11s %-5s %.3f ms' % (
                round_ + 1, variant, 'busy' if busy else 'idle',
                result['seconds_per_step'] * 1e3), file=sys.stderr,
                flush=True)
    rows = [{'variant': v, 'busy': busy, 'seconds_per_minibatch':
             statistics.median(r['seconds_per_step'] for r in results),
             'runs': results} for (v, busy), results in runs.items()]
    print()
    print('the busy machine: %s, batch 10, float64, ms per minibatch '
          '(median of %d rounds); busy = one CPU-bound process beside it'
          % (TITLES[stack], rounds))
    print('%-12s %8s %8s' % ('step', 'idle', 'busy'))
    for v in BUSY_VARIANTS:
        idle, busy = [r['seconds_per_minibatch'] * 1e3 for r in rows
                      if r['variant'] == v]
        print('%-12s %8.3f %8.3f' % (v, idle, busy))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants',
                        default='default,fused,tgrad,plain,torch,'
                                'torch.compile',
                        help='comma-separated (default: %(default)s; also '
                             'unblocked, explicit)')
    parser.add_argument('--stacks', default='theano,pytensor',
                        help='comma-separated, those with an environment '
                             '(default: %(default)s)')
    parser.add_argument('--dtypes', default='float64,float32',
                        help='comma-separated floatX values '
                             '(default: %(default)s)')
    parser.add_argument('--batch-sizes', default='10,100,1000',
                        help='comma-separated (default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=3,
                        help='interleaved rounds; each run once per round '
                             '(default: %(default)s)')
    parser.add_argument('--blocks', type=int, default=5,
                        help='timed blocks per run, after a warm-up block '
                             '(default: %(default)s)')
    parser.add_argument('--steps', type=int, default=None,
                        help='minibatches per block (default: about %g s '
                             'per block)' % BLOCK_SECONDS)
    parser.add_argument('--threads', type=int, default=0,
                        help='threads of every run (OMP_NUM_THREADS, '
                             'MKL_NUM_THREADS, torch.set_num_threads); '
                             'default: all cores')
    parser.add_argument('--cpu-time', action='store_true',
                        help="time with the process's CPU time instead of "
                             "the wall clock: with --threads 1 (and taskset "
                             "-c 0), a single-core comparison that other "
                             "jobs on the machine disturb less")
    parser.add_argument('--pytensor-choices', action='store_true',
                        help="PyTensor's linkers and BLAS instead: the "
                             "default and fused steps with the C linker "
                             "(MKL, OpenBLAS, NumPy's BLAS) and the Numba "
                             "linker")
    parser.add_argument('--peer-python', default=PEER_PYTHON,
                        help='the Python of the virtual environment with '
                             'torch (default: .venv-peer/bin/python)')
    parser.add_argument('--output', default=None,
                        help='where the JSON goes (default: benchmarks/'
                             'results/bench_train.json, or bench_pytensor_'
                             'choices.json)')
    parser.add_argument('--busy-rounds', type=int, default=6,
                        help='rounds of the busy-machine table (0: none; '
                             'default: %(default)s)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--peak-worker', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.peak_worker:
        print(json.dumps(peak_worker(
            [int(b) for b in args.batch_sizes.split(',')],
            time.process_time if args.cpu_time else time.perf_counter)))
        return 0
    if args.worker:
        result = theano_worker(args.worker, int(args.batch_sizes),
                               args.steps, args.blocks,
                               time.process_time if args.cpu_time
                               else time.perf_counter)
        print(json.dumps(result))
        return 0

    found = find_stacks()
    pythons = {s: found[s] for s in args.stacks.split(',') if s in found}
    for s in args.stacks.split(','):
        if s not in found:
            print('note: no environment with %s (make bench sets one up '
                  'when a Python for it is installed); its rows are '
                  'skipped' % TITLES.get(s, s))
    variants = args.variants.split(',')
    peer_python = args.peer_python
    if not (os.path.exists(peer_python) and os.path.exists(PEER)):
        print('note: the PyTorch peers are skipped: %s or %s is missing '
              '(make bench-peer sets it up)' % (peer_python, PEER))
        peer_python = None
    dtypes = args.dtypes.split(',')
    batches = [int(b) for b in args.batch_sizes.split(',')]
    configs = []
    for dtype in dtypes:
        for batch in batches:
            if args.pytensor_choices:
                # the kernel has no Numba implementation: under the Numba
                # linker it runs its NumPy perform (minutes, GBs to compile)
                configs += [('pytensor', v, dtype, batch, choice)
                            for choice, _ in PYTENSOR_CHOICES
                            for v in (('fused',) if 'Numba' in choice
                                      else ('default', 'fused'))
                            if 'pytensor' in pythons]
                continue
            for stack in pythons:
                configs += [(stack, v, dtype, batch, '') for v in variants
                            if v not in TORCH]
            if peer_python:
                configs += [('torch', v, dtype, batch, '') for v in variants
                            if v in TORCH]
    if not configs:
        print('error: nothing to measure', file=sys.stderr)
        return 2

    print('measuring the peak (3000 x 3000 matrix products)...',
          file=sys.stderr, flush=True)
    peaks = measure_peaks(pythons, peer_python, batches, args.threads,
                          args.cpu_time)
    shapes = {k: peaks.pop(k) for k in list(peaks) if k.startswith('shape ')}
    peak = {d: max(v for k, v in peaks.items() if k.endswith(d))
            for d in dtypes}
    print('measuring the read bandwidths (benchmarks/bandwidth.c)...',
          file=sys.stderr, flush=True)
    threads = args.threads or os.cpu_count()
    bandwidths = roofline.read_bandwidths(threads)
    runs = {c: [] for c in configs}
    started = time.time()
    for round_ in range(args.rounds):
        # rotate the order each round, so that no run always goes first
        shift = round_ * len(configs) // max(1, args.rounds)
        for config in configs[shift:] + configs[:shift]:
            result = measure(config, args.blocks, pythons, peer_python,
                             args.steps, args.threads, args.cpu_time)
            runs[config].append(result)
            print('  round %d  %-8s %-13s %-7s batch %4d %s %.3f ms'
                  % (round_ + 1, config[0], config[1], config[2], config[3],
                     config[4], result['seconds_per_step'] * 1e3),
                  file=sys.stderr, flush=True)

    rows = []
    for config, results in runs.items():
        stack, variant, dtype, batch, choice = config
        sps = statistics.median(r['seconds_per_step'] for r in results)
        gflops = flops_per_step(batch) / sps / 1e9
        rows.append({
            'stack': stack, 'variant': variant, 'dtype': dtype,
            'batch_size': batch, 'choice': choice,
            'seconds_per_minibatch': sps,
            'seconds_per_epoch': sps * -(-N_TRAIN // batch),
            'examples_per_second': batch / sps,
            'gflops': gflops, 'fraction_of_peak': gflops / peak[dtype],
            'peak_rss_mb': max(r['peak_rss_mb'] for r in results),
            'runs': results})
    by_key = {(r['stack'], r['variant'], r['dtype'], r['batch_size'],
               r['choice']): r for r in rows}
    for row in rows:
        for peer in TORCH:
            other = by_key.get(('torch', peer, row['dtype'],
                                row['batch_size'], ''))
            row['speedup_over_' + peer] = (
                other['seconds_per_minibatch'] / row['seconds_per_minibatch']
                if other else None)

    def ratio(value):
        return '%.2fx' % value if value else '-'

    header = ('stack        variant        dtype    batch  ms/minibatch  '
              's/epoch  GFLOP/s  %peak  vs torch  vs compile  peak MB')
    print()
    print('peak (3000 x 3000 matrix product, best of 5, GFLOP/s): ' +
          ', '.join('%s %.0f' % (k, v) for k, v in sorted(peaks.items())))
    print()
    print(header)
    print('-' * len(header))
    for r in rows:
        print('%-12s %-14s %-8s %5d  %12.3f  %7.1f  %7.1f  %4.0f%%  %8s  '
              '%10s  %7.0f' % (
                  TITLES[r['stack']], r['variant'], r['dtype'],
                  r['batch_size'],
                  r['seconds_per_minibatch'] * 1e3, r['seconds_per_epoch'],
                  r['gflops'], 100 * r['fraction_of_peak'],
                  ratio(r['speedup_over_torch']),
                  ratio(r['speedup_over_torch.compile']), r['peak_rss_mb']))
        if r['choice']:
            print('%-12s   (%s)' % ('', r['choice']))
    penalty = []
    for r in rows:
        plain = by_key.get((r['stack'], 'plain', r['dtype'], r['batch_size'],
                            r['choice']))
        if r['variant'] == 'default' and plain:
            penalty.append((r, r['seconds_per_minibatch'] /
                            plain['seconds_per_minibatch'] - 1))
    if penalty:
        print()
        print('the penalty: default over plain (the same kernel at lambda '
              '= 0, no penalty computed)')
        for r, extra in penalty:
            print('  %-12s %-8s batch %4d  %+.0f %%' % (
                TITLES[r['stack']], r['dtype'], r['batch_size'],
                100 * extra))
            r['penalty_over_plain'] = extra

    lines = roofline_table(rows, peak, shapes, bandwidths, threads)
    if lines:
        print()
        print('\n'.join(lines))

    busy = []
    if args.busy_rounds and not args.pytensor_choices and pythons:
        busy = busy_machine(next(iter(pythons)), pythons, args.busy_rounds,
                            args.blocks)

    name = ('bench_pytensor_choices.json' if args.pytensor_choices
            else 'bench_train.json')
    output = args.output or os.path.join(HERE, 'results', name)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    sys.path.insert(0, REPO)
    from machinery.outputs import atomic_write
    with atomic_write(output, 'w') as f:
        json.dump({'machine': {'python': platform.python_version(),
                               'cpus': os.cpu_count(),
                               'processor': platform.processor(),
                               'load_average': os.getloadavg()},
                   'environments': pythons, 'peaks': peaks,
                   'peak': peak, 'rounds': args.rounds,
                   'threads': args.threads or 'all',
                   'clock': 'cpu' if args.cpu_time else 'wall',
                   'blocks': args.blocks,
                   'minutes': (time.time() - started) / 60,
                   'read_bandwidths': bandwidths,
                   'step_shape_gflops': shapes,
                   'rows': rows, 'busy_machine': busy}, f, indent=1)
    print('wrote %s' % os.path.relpath(output, REPO))
    return 0


if __name__ == '__main__':
    sys.exit(main())
