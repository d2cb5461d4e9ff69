"""Hyperparameter search for issue 17 (validation error only).

The test set is dropped as soon as MNIST is read: nothing here scores it.

    python search/tune.py pretrain --tag T --lam 0.1 --lr 0.05 --batch 10 \
        --epochs 100 --save-at 20 50 100
    python search/tune.py finetune --tag T --init search/weights/X.npz \
        --lr 0.6 --batch 20 --decay 1 --epochs 30

Runs use ScA.py's own pretrain_layers and finetune (the code of the
table), on the comparison's initial weights (seed 89677). Each run appends
a line to search/results.tsv and its per-epoch log to search/logs/.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import numpy  # noqa: E402

import ScA as sca_module  # noqa: E402
from logistic_sgd import read_data, shared_dataset  # noqa: E402

RESULTS = os.path.join(HERE, 'results.tsv')
SEED = 89677


def train_valid():
    train, valid, test = read_data(os.path.join(ROOT, 'data', 'mnist.pkl.gz'),
                                   open(os.devnull, 'w'))
    del test
    return train, valid


def measures(W, b, x):
    """mean ||J||_F and SAT (fraction of h < 0.05 or > 0.95) on rows x."""
    h = 1 / (1 + numpy.exp(-(x @ W + b)))
    d = (h * (1 - h)) ** 2
    jf = numpy.sqrt(d @ (W ** 2).sum(axis=0))
    sat = numpy.mean((h < 0.05) | (h > 0.95))
    return float(jf.mean()), float(sat)


def log_result(fields):
    new = not os.path.exists(RESULTS)
    with open(RESULTS, 'a') as f:
        if new:
            f.write('time\tphase\ttag\tsettings\tbest_valid_%\tbest_epoch\t'
                    'epochs_run\twall_s\tcurve\n')
        f.write('\t'.join(str(v) for v in fields) + '\n')


def pretrain(a):
    (tx, ty), (vx, vy) = train_valid()
    sca = sca_module.ScA(numpy.random.RandomState(SEED), 784, (1000,), 10)
    ca = sca.cA_layers[0]
    rng = numpy.random.RandomState(a.shuffle)
    if a.init:
        s = numpy.load(a.init)
        ca.W.set_value(s['W']); ca.b.set_value(s['b'])
        ca.b_prime.set_value(s['b_prime'])
        for _ in range(int(s['epochs'])):  # the same order as one long run
            rng.permutation(len(ty))
    done = int(numpy.load(a.init)['epochs']) if a.init else 0
    train_x = shared_dataset((tx, ty))[0]
    logf = open(os.path.join(HERE, 'logs', a.tag + '.log'), 'a')
    start = time.perf_counter()
    epoch = done
    for target in sorted(a.save_at):
        if target <= epoch:
            continue
        costs, _ = sca_module.pretrain_layers(
            sca, train_x, a.batch, target - epoch, a.lam, a.lr, rng, logf)
        epoch = target
        W, b = ca.W.get_value(), ca.b.get_value()
        jf, sat = measures(W, b, vx)
        out = os.path.join(HERE, 'weights', '%s_e%d.npz' % (a.tag, epoch))
        numpy.savez(out, W=W, b=b, b_prime=ca.b_prime.get_value(),
                    epochs=epoch)
        line = ('%s epoch %d saved: last cost %s  valid ||J||_F %.3f SAT '
                '%.3f  %.0f s' % (a.tag, epoch, costs[0][-1].round(3), jf,
                                  sat, time.perf_counter() - start))
        print(line, file=logf, flush=True)
        print(line, flush=True)
        log_result([time.strftime('%H:%M'), 'pretrain', a.tag,
                    'lam=%g lr=%g batch=%d epochs=%d shuffle=%d' % (
                        a.lam, a.lr, a.batch, epoch, a.shuffle),
                    '', '', epoch, '%.0f' % (time.perf_counter() - start),
                    'cost %s jf %.3f sat %.3f' % (costs[0][-1].round(3), jf,
                                                   sat)])


def variant_step(sca, l2, w1_scale):
    """Replace sca.finetuning_function by SGD on NLL + l2 * sum of squared
    weights (W_1 and V, as the tutorial series' mlp.py), with layer 1's
    step multiplied by w1_scale."""
    from machinery.backend import theano, T
    from ScA import minibatch

    def finetuning_function(train_set, batch_size, learning_rate, order=None):
        train_x, train_y = train_set
        index = T.lscalar('index')
        weights = [sca.sigmoid_layers[0].W, sca.logLayer.W]
        cost = sca.finetune_cost + l2 * sum((w ** 2).sum() for w in weights)
        gparams = T.grad(cost, sca.params)
        first = set(sca.sigmoid_layers[0].params)
        updates = [(p, p - learning_rate * (w1_scale if p in first else 1) * g)
                   for p, g in zip(sca.params, gparams)]
        return theano.function(
            [index], sca.finetune_cost, updates=updates,
            givens={sca.x: minibatch(train_x, index, batch_size, order),
                    sca.y: minibatch(train_y, index, batch_size, order)})
    sca.finetuning_function = finetuning_function


def score_averaged(sca, k):
    """Make sca.count_errors score the mean of the parameters after the
    last k epochs (the validation error finetune records each epoch),
    leaving the training parameters as they are."""
    snapshots = []
    count = sca.count_errors

    def averaged_count(x, y):
        snapshots.append([p.get_value() for p in sca.params])
        del snapshots[:-k]
        current = snapshots[-1]
        for i, p in enumerate(sca.params):
            p.set_value(numpy.mean([s[i] for s in snapshots], axis=0))
        errors = count(x, y)
        for p, v in zip(sca.params, current):
            p.set_value(v)
        return errors
    sca.count_errors = averaged_count


def finetune(a):
    (tx, ty), valid = train_valid()
    sca = sca_module.ScA(numpy.random.RandomState(SEED), 784, (1000,), 10)
    if a.l2 or a.w1_scale != 1:
        variant_step(sca, a.l2, a.w1_scale)
    if a.average > 1:
        score_averaged(sca, a.average)
    if a.init != 'random':
        s = numpy.load(a.init)
        sca.sigmoid_layers[0].W.set_value(s['W'])
        sca.sigmoid_layers[0].b.set_value(s['b'])
    logf = open(os.path.join(HERE, 'logs', a.tag + '.log'), 'w')
    out = sca_module.finetune(sca, shared_dataset((tx, ty)), valid, a.batch,
                              a.lr, a.decay, a.epochs,
                              numpy.random.RandomState(a.shuffle), logf)
    curve = ' '.join('%.2f' % (v * 100) for v in out['validation_errors'])
    log_result([time.strftime('%H:%M'), 'finetune', a.tag,
                'init=%s lr=%g decay=%g batch=%d epochs=%d shuffle=%d '
                'l2=%g w1_scale=%g average=%d' % (
                    os.path.basename(a.init), a.lr, a.decay, a.batch,
                    a.epochs, a.shuffle, a.l2, a.w1_scale, a.average),
                '%.2f' % (out['best_validation_error'] * 100),
                out['best_epoch'], out['epochs_run'],
                '%.0f' % out['finetuning_time'], curve])
    print(a.tag, 'best %.2f %% at %d' % (out['best_validation_error'] * 100,
                                         out['best_epoch']))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    q = sub.add_parser('pretrain')
    q.add_argument('--tag', required=True)
    q.add_argument('--lam', type=float, required=True)
    q.add_argument('--lr', type=float, required=True)
    q.add_argument('--batch', type=int, default=10)
    q.add_argument('--save-at', type=int, nargs='+', required=True)
    q.add_argument('--shuffle', type=int, default=1)
    q.add_argument('--init', default='')
    f = sub.add_parser('finetune')
    f.add_argument('--tag', required=True)
    f.add_argument('--init', required=True)
    f.add_argument('--lr', type=float, default=0.6)
    f.add_argument('--decay', type=float, default=1.0)
    f.add_argument('--batch', type=int, default=20)
    f.add_argument('--epochs', type=int, default=30)
    f.add_argument('--shuffle', type=int, default=1)
    f.add_argument('--l2', type=float, default=0.0)
    f.add_argument('--w1-scale', type=float, default=1.0)
    f.add_argument('--average', type=int, default=1,
                   help='score the mean parameters of the last K epochs')
    a = p.parse_args()
    pretrain(a) if a.cmd == 'pretrain' else finetune(a)


if __name__ == '__main__':
    main()
