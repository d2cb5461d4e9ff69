"""Replay ScA.finetune's early stopping on the logged validation curves:
where would the tutorial's patience rule have stopped each run, and which
epoch would it have kept? (Only meaningful for constant or exponentially
decayed step sizes, whose first epochs do not depend on the budget.)"""
import csv
import sys


def replay(curve, budget):
    patience, best, best_epoch = 10, float('inf'), 0
    epoch = 0
    while epoch < min(budget, len(curve)) and epoch < patience:
        epoch += 1
        v = curve[epoch - 1]
        if v < best:
            if v < best * 0.995:
                patience = max(patience, 2 * epoch)
            best, best_epoch = v, epoch
    return best, best_epoch, epoch


if __name__ == '__main__':
    budget = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with open('search/results.tsv') as f:
        for row in csv.DictReader(f, delimiter='\t'):
            if row['phase'] != 'finetune' or 'curve' not in row['extra']:
                continue
            curve = [float(x) for x in row['extra'].split('curve ')[1].split()]
            best, e, run = replay(curve, budget)
            print('%-40s best %.2f at %2d, stops after %2d of %d'
                  % (row['tag'], best, e, run, len(curve)))
