"""The tutorial's contractive auto-encoder in PyTorch: the benchmark's peer.

The same model as cA.py (tied weights, eqs. (1)-(6) of cA.cA), the same
initial W (RandomState(123), Glorot's range for sigmoids), the same data
order and hyperparameters, trained as a PyTorch user would on the CPU:

    eager      autograd and torch.optim.SGD (the default)
    --compile  the whole step (gradient and update) under torch.compile;
               compiling it and 20 warm-up steps are not timed

    .venv-peer/bin/python benchmarks/peer_torch.py --steps 1000
    .venv-peer/bin/python benchmarks/peer_torch.py --compile --batch-size 100

It prints one JSON line: the seconds per step and per epoch, and the mean
costs of the steps it ran (to check that it trains the same model).
benchmarks/bench_train.py runs it in .venv-peer/ (make bench-peer), which
has torch and numpy only: the data is read with the project's own checked
loader (machinery/mnist_file.py needs numpy alone).
"""
import argparse
import contextlib
import json
import os
import sys
import time

import numpy
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default=os.path.join(REPO, 'data',
                                                       'mnist.pkl.gz'),
                        help='the mnist.pkl.gz file (default: %(default)s)')
    parser.add_argument('--dtype', choices=['float64', 'float32'],
                        default='float64', help='(default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=10,
                        help='examples per step (default: %(default)s)')
    parser.add_argument('--n-hidden', type=int, default=500,
                        help='hidden units (default: %(default)s)')
    parser.add_argument('--learning-rate', type=float, default=0.01,
                        help='SGD step size (default: %(default)s)')
    parser.add_argument('--contraction-level', type=float, default=0.1,
                        help='lambda (default: %(default)s)')
    parser.add_argument('--steps', type=int, default=1000,
                        help='steps to time; 5000 is one epoch at batch 10 '
                             '(default: %(default)s)')
    parser.add_argument('--threads', type=int, default=0,
                        help="torch's intra-op threads; 0 keeps torch's "
                             "choice (default: %(default)s)")
    parser.add_argument('--compile', action='store_true',
                        help='time the step compiled by torch.compile')
    return parser.parse_args()


def training_set(path):
    """The training images, read by the project's checked loader."""
    sys.path.insert(0, REPO)
    from machinery.mnist_file import read_mnist
    return read_mnist(path)[0][0]


def cae_cost(W, b, b_prime, x, lam):
    """Eq. (6) of cA.cA and its two terms: mean L_rec, mean ||J||_F^2."""
    h = torch.sigmoid(x @ W + b)                                    # (1)
    z = torch.sigmoid(h @ W.t() + b_prime)                          # (3)
    L_rec = -torch.sum(x * torch.log(z) + (1 - x) * torch.log(1 - z),
                       dim=1)                                       # (4)
    column_norms = torch.sum(W * W, dim=0)
    L_jacob = torch.mean(((h * (1 - h)) ** 2) @ column_norms)       # (5)
    return torch.mean(L_rec) + lam * L_jacob, torch.mean(L_rec), L_jacob


def eager_step(params, lam, lr):
    optimizer = torch.optim.SGD(params, lr=lr)

    def step(x):
        cost, L_rec, L_jacob = cae_cost(*params, x, lam)
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()
        return L_rec, L_jacob
    return step


def compiled_step(params, lam, lr, warm_up_batches):
    """The gradient and the update as one compiled function; it is
    compiled and warmed up here, then the parameters are set back."""
    for p in params:
        p.requires_grad_(False)
    def cost_and_terms(W, b, b_prime, x):
        cost, L_rec, L_jacob = cae_cost(W, b, b_prime, x, lam)
        return cost, (L_rec, L_jacob)
    # the gradient of the cost, and its two terms from the same pass
    gradient = torch.func.grad(cost_and_terms, argnums=(0, 1, 2),
                               has_aux=True)

    @torch.compile
    def step(x):
        grads, (L_rec, L_jacob) = gradient(*params, x)
        for p, g in zip(params, grads):
            p.sub_(lr * g)
        return L_rec, L_jacob

    initial = [p.clone() for p in params]
    for x in warm_up_batches:
        step(x)
    for p, value in zip(params, initial):
        p.copy_(value)
    return step


def main():
    args = parse_arguments()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {'float64': torch.float64, 'float32': torch.float32}[args.dtype]
    X = torch.as_tensor(numpy.asarray(training_set(args.data)), dtype=dtype)
    n_visible, n_hidden, size = X.shape[1], args.n_hidden, args.batch_size
    n_batches = X.shape[0] // size
    bound = 4 * numpy.sqrt(6. / (n_visible + n_hidden))
    W0 = numpy.random.RandomState(123).uniform(low=-bound, high=bound,
                                               size=(n_visible, n_hidden))
    params = [torch.tensor(W0, dtype=dtype, requires_grad=True),
              torch.zeros(n_hidden, dtype=dtype, requires_grad=True),
              torch.zeros(n_visible, dtype=dtype, requires_grad=True)]

    def batch(k):
        k %= n_batches
        return X[k * size:(k + 1) * size]

    # the compiled step updates in place, outside autograd
    with torch.no_grad() if args.compile else contextlib.nullcontext():
        step = compiled_step(params, args.contraction_level,
                             args.learning_rate,
                             [batch(k) for k in range(20)]) \
            if args.compile else eager_step(params, args.contraction_level,
                                            args.learning_rate)
        costs = numpy.empty((args.steps, 2))
        start = time.perf_counter()
        for k in range(args.steps):
            L_rec, L_jacob = step(batch(k))
            costs[k] = L_rec.item(), L_jacob.item()
        seconds = time.perf_counter() - start

    print(json.dumps({
        'peer': 'torch-compile' if args.compile else 'torch-eager',
        'torch': torch.__version__, 'dtype': args.dtype,
        'threads': torch.get_num_threads(), 'batch_size': size,
        'steps': args.steps, 'seconds_per_step': seconds / args.steps,
        'seconds_per_epoch': seconds / args.steps * n_batches,
        'mean_reconstruction_cost': float(costs[:, 0].mean()),
        'mean_jacobian_norm': float(numpy.sqrt(costs[:, 1]).mean())}))


if __name__ == '__main__':
    main()
