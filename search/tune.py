"""Hyperparameter search for issue 12 (validation error only).

The test set is dropped as soon as MNIST is read: nothing here can score it.

    tune.py pretrain --lam 0.1 --lr 0.01 --batch 10 --epochs 10 --out X.npz
    tune.py finetune --init random|X.npz --lr 0.1 --batch 10 --momentum 0 \
        --decay 0.95 --epochs 30

Every run appends one line to search/results.tsv (all settings, the best
validation error, its epoch, the wall time, the cores used) and its
per-epoch log to search/logs/.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import numpy  # noqa: E402

import sca_frozen as scA_module  # noqa: E402  (a copy of ScA.py at the start of the search; sets the BLAS flags)
from logistic_sgd import read_data  # noqa: E402

import theano  # noqa: E402
import theano.tensor as T  # noqa: E402

RESULTS = os.path.join(HERE, 'results.tsv')
SEED = 89677  # the comparison's weight seed


def load_train_valid():
    (train, valid, _test) = read_data(os.path.join(ROOT, 'data',
                                                   'mnist.pkl.gz'))
    del _test  # never scored during the search
    floatX = theano.config.floatX
    out = []
    for x, y in (train, valid):
        out.append((theano.shared(numpy.asarray(x, dtype=floatX),
                                  borrow=True),
                    theano.shared(numpy.asarray(y, dtype='int32'),
                                  borrow=True)))
    return out


def cores():
    return len(os.sched_getaffinity(0))


def log_result(row):
    header = ['time', 'phase', 'tag', 'settings', 'best_valid_%',
              'best_epoch', 'epochs_run', 'wall_s', 's_per_epoch', 'cores',
              'extra']
    new = not os.path.exists(RESULTS)
    with open(RESULTS, 'a') as f:
        if new:
            f.write('\t'.join(header) + '\n')
        f.write('\t'.join(str(row.get(h, '')) for h in header) + '\n')


def build_model(hidden=(1000,)):
    return scA_module.ScA(numpy_rng=numpy.random.RandomState(SEED),
                          n_ins=784, hidden_layers_sizes=hidden, n_outs=10)


def batch_givens(order, data, i, size):
    return data[order[i * size:(i + 1) * size]]


def pretrain(args):
    (train_x, _train_y), _ = load_train_valid()
    n = train_x.get_value(borrow=True).shape[0]
    sca = build_model()
    ca = sca.cA_layers[0]
    if args.init:  # continue an earlier pre-training
        saved = numpy.load(args.init)
        for p, k in ((ca.W, 'W'), (ca.b, 'b'), (ca.b_prime, 'b_prime')):
            p.set_value(saved[k])
    floatX = theano.config.floatX
    index = T.lscalar('index')
    order = theano.shared(numpy.arange(n, dtype='int64'), name='order')
    lr = theano.shared(numpy.asarray(args.lr, dtype=floatX))
    cost, updates = ca.get_fused_cost_updates(
        contraction_level=args.lam, learning_rate=lr)
    train = theano.function(
        [index], [cost, T.mean(ca.L_rec), ca.L_jacob], updates=updates,
        givens={sca.x: batch_givens(order, train_x, index, args.batch)})
    n_batches = -(-n // args.batch)
    rng = numpy.random.RandomState(args.shuffle_seed)
    logf = open(os.path.join(HERE, 'logs', args.tag + '.log'), 'w')
    start = time.perf_counter()
    costs = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        if args.shuffle_seed >= 0:
            order.set_value(rng.permutation(n).astype('int64'))
        c = numpy.mean([train(i) for i in range(n_batches)], axis=0)
        costs.append(c.tolist())
        msg = ('pretrain %s epoch %d cost %.3f rec %.3f jac %.3f  %.1f s'
               % (args.tag, epoch, c[0], c[1], c[2],
                  time.perf_counter() - t0))
        print(msg, file=logf, flush=True)
        print(msg, flush=True)
        if epoch in args.save_at or epoch == args.epochs:
            out = args.out if epoch == args.epochs else \
                args.out.replace('.npz', '_e%d.npz' % epoch)
            numpy.savez(out, W=ca.W.get_value(), b=ca.b.get_value(),
                        b_prime=ca.b_prime.get_value(),
                        costs=numpy.array(costs))
    wall = time.perf_counter() - start
    settings = ('lam=%g lr=%g batch=%d epochs=%d shuffle=%d init=%s'
                % (args.lam, args.lr, args.batch, args.epochs,
                   args.shuffle_seed, os.path.basename(args.init)))
    log_result({'time': time.strftime('%H:%M'), 'phase': 'pretrain',
                'tag': args.tag, 'settings': settings,
                'epochs_run': args.epochs, 'wall_s': '%.0f' % wall,
                's_per_epoch': '%.1f' % (wall / args.epochs),
                'cores': cores(),
                'extra': 'final cost %.3f rec %.3f jac %.3f'
                         % tuple(costs[-1])})


def finetune(args):
    (train_x, train_y), (valid_x, valid_y) = load_train_valid()
    n = train_x.get_value(borrow=True).shape[0]
    sca = build_model()
    if args.init != 'random':
        saved = numpy.load(args.init)
        sca.sigmoid_layers[0].W.set_value(saved['W'])
        sca.sigmoid_layers[0].b.set_value(saved['b'])
    floatX = theano.config.floatX
    index = T.lscalar('index')
    order = theano.shared(numpy.arange(n, dtype='int64'), name='order')
    lr = theano.shared(numpy.asarray(args.lr, dtype=floatX))
    mu = T.constant(args.momentum, dtype=floatX)
    grads = T.grad(sca.finetune_cost, sca.params)
    updates = []
    for p, g in zip(sca.params, grads):
        if args.momentum > 0:
            v = theano.shared(numpy.zeros_like(p.get_value()))
            v_new = mu * v - lr * g
            updates += [(v, v_new), (p, p + v_new)]
        else:
            updates.append((p, p - lr * g))
    train = theano.function(
        [index], sca.finetune_cost, updates=updates,
        givens={sca.x: batch_givens(order, train_x, index, args.batch),
                sca.y: batch_givens(order, train_y, index, args.batch)})
    n_wrong = T.sum(T.neq(sca.logLayer.y_pred, sca.y))
    count = theano.function([index], n_wrong, givens={
        sca.x: valid_x[index * 1000:(index + 1) * 1000],
        sca.y: valid_y[index * 1000:(index + 1) * 1000]})
    n_valid = valid_x.get_value(borrow=True).shape[0]

    def valid_error():
        return sum(int(count(i)) for i in range(n_valid // 1000)) / n_valid

    n_batches = -(-n // args.batch)
    rng = numpy.random.RandomState(args.shuffle_seed)
    logf = open(os.path.join(HERE, 'logs', args.tag + '.log'), 'w')
    best, best_epoch, curve = 1.0, 0, []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        if args.schedule == 'exp':
            eta = args.lr * args.decay ** (epoch - 1)
        elif args.schedule == 'linear':  # to lr * final at the last epoch
            frac = (epoch - 1) / max(args.epochs - 1, 1)
            eta = args.lr * (1 - frac * (1 - args.final))
        elif args.schedule == 'inv':  # lr / (1 + (epoch-1)/tau)
            eta = args.lr / (1 + (epoch - 1) / args.tau)
        lr.set_value(numpy.asarray(eta, dtype=floatX))
        if args.shuffle_seed >= 0:
            order.set_value(rng.permutation(n).astype('int64'))
        nll = numpy.mean([train(i) for i in range(n_batches)])
        err = valid_error()
        curve.append(err)
        if err < best:
            best, best_epoch = err, epoch
        msg = ('finetune %s epoch %d nll %.4f valid %.2f %% lr %.4g  %.1f s'
               % (args.tag, epoch, nll, err * 100, eta,
                  time.perf_counter() - t0))
        print(msg, file=logf, flush=True)
        print(msg, flush=True)
        if not numpy.isfinite(nll):
            break
    wall = time.perf_counter() - start
    settings = ('init=%s lr=%g batch=%d mom=%g sched=%s decay=%g final=%g '
                'tau=%g epochs=%d shuffle=%d'
                % (os.path.basename(args.init), args.lr, args.batch,
                   args.momentum, args.schedule, args.decay, args.final,
                   args.tau, args.epochs, args.shuffle_seed))
    log_result({'time': time.strftime('%H:%M'), 'phase': 'finetune',
                'tag': args.tag, 'settings': settings,
                'best_valid_%': '%.2f' % (best * 100),
                'best_epoch': best_epoch, 'epochs_run': len(curve),
                'wall_s': '%.0f' % wall,
                's_per_epoch': '%.1f' % (wall / len(curve)),
                'cores': cores(),
                'extra': 'final nll %.4f; curve %s'
                         % (nll, ' '.join('%.2f' % (100 * c)
                                          for c in curve))})


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('pretrain')
    a.add_argument('--lam', type=float, default=0.1)
    a.add_argument('--lr', type=float, default=0.01)
    a.add_argument('--batch', type=int, default=10)
    a.add_argument('--epochs', type=int, default=10)
    a.add_argument('--shuffle-seed', type=int, default=-1)
    a.add_argument('--save-at', type=int, nargs='*', default=[])
    a.add_argument('--out', required=True)
    a.add_argument('--init', default='')
    a.add_argument('--tag', required=True)
    f = sub.add_parser('finetune')
    f.add_argument('--init', default='random')
    f.add_argument('--lr', type=float, default=0.1)
    f.add_argument('--batch', type=int, default=10)
    f.add_argument('--momentum', type=float, default=0.0)
    f.add_argument('--schedule', default='exp',
                   choices=['exp', 'linear', 'inv'])
    f.add_argument('--decay', type=float, default=1.0)
    f.add_argument('--final', type=float, default=0.0)
    f.add_argument('--tau', type=float, default=10.0)
    f.add_argument('--epochs', type=int, default=30)
    f.add_argument('--shuffle-seed', type=int, default=-1)
    f.add_argument('--tag', required=True)
    args = p.parse_args()
    os.makedirs(os.path.join(HERE, 'logs'), exist_ok=True)
    {'pretrain': pretrain, 'finetune': finetune}[args.cmd](args)


if __name__ == '__main__':
    main()
