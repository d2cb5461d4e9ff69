"""The paper's MNIST comparison (Rifai et al., ICML 2011, Table 1): the
same MLP, one hidden layer of 1000 units, fine-tuned from its random
initialisation, after plain auto-encoder pre-training and after CAE
pre-training, each row a run of ScA.test_ScA with the same settings.

Beside each test error it gives its 95 % Wilson interval, the paper's two
columns for the pre-trained layer (the size of J = dh/dx and the share of
saturated units, jacobian.pretrained_layer), McNemar's exact test between
every two rows (they are scored on the same digits), and the contraction
curves of the pre-trained AE and CAE layers (analysis.py's). The table, the
protocol and how it differs from the paper's: docs/stacked.md.

    make scA                                  # the table
    .venv/bin/python paper/table1.py --help   # every setting
"""
import itertools
import os
import sys
import time

if __name__ == '__main__':
    # run as a file: the tutorial scripts are one folder up
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))
    from machinery import start_script
    start_script(__file__)

# the stack first: without one, this says what to do
from machinery import backend
from machinery.backend import theano
import numpy

from machinery import checks
from machinery import cli
from machinery import commands
from machinery import mnist_data
from machinery import outputs
from machinery import reports
from logistic_sgd import read_data
from ScA import PRETRAINING_NAMES, architecture, test_ScA
from paper import analysis
from paper import figures
from paper import jacobian
from paper.statistics import mcnemar_exact, wilson_interval

# what compare() writes in its output folder
COMPARISON_NAME = 'ScA_comparison.json'
CONTRACTION_FIGURE = 'ScA_contraction.png'
# the rows done so far, while the comparison runs
PARTIAL_NAME = 'ScA_comparison.partial.json'
# Rifai et al. (2011), Table 1, MNIST, one hidden layer of 1000 units: the
# test error, the column "Av. ||J_f(x)||_F" (printed in units of 1e-4; its
# scale is that of the mean squared entry of J, see
# jacobian.pretrained_layer) and SAT, the mean fraction of saturated hidden
# units, before fine-tuning
PAPER = {'CAE': {'test_error': 0.0114, 'jacobian_norm_column': 0.73e-4,
                 'saturated_fraction': 0.8636},
         'AE': {'test_error': 0.0178, 'jacobian_norm_column': 17.5e-4,
                'saturated_fraction': 0.4990}}
# a hidden unit is saturated below this or above 1 minus it (the paper's
# SAT; jacobian.saturated_fraction)
SATURATION_THRESHOLD = 0.05
# test digits around which the contraction curves are drawn
CURVE_EXAMPLES = 500
# the settings of test_ScA that every row shares, and their defaults
HYPERPARAMETERS = {name: default for name, default
                   in cli.defaults_of(test_ScA).items()
                   if name not in ('dataset', 'hidden_layers_sizes',
                                   'pretrain', 'datasets', 'log')}


# ---- one row ----------------------------------------------------------------

def row(result, hidden_layers_sizes, test_x, settings, log):
    """What the report holds of one row: test_ScA's ScAResult with its
    interval, the digits it got wrong and the pre-trained first layer's
    measures (on the test digits; they decide nothing)."""
    n_test = len(result.test_wrong)
    errors = int(result.test_wrong.sum())
    interval = wilson_interval(errors, n_test)
    measures = None if result.pretrained is None else \
        jacobian.pretrained_layer(*result.pretrained,
                                  numpy.asarray(test_x, numpy.float64),
                                  SATURATION_THRESHOLD)
    print('test error %.2f %% (%d of %d; 95 %% Wilson interval %.2f-%.2f %%)'
          % (errors / n_test * 100, errors, n_test, interval[0] * 100,
             interval[1] * 100), file=log, flush=True)
    if measures is not None:
        print('the pre-trained first layer on the %d test digits, before '
              'fine-tuning: mean ||J||_F %.3f (mean squared entry of J '
              '%.3g), saturated units (h < %g or h > %g) %.2f %%'
              % (n_test, measures['jacobian_frobenius_norm'],
                 measures['jacobian_mean_square_entry'], SATURATION_THRESHOLD,
                 1 - SATURATION_THRESHOLD,
                 measures['saturated_fraction'] * 100), file=log, flush=True)
    outcome = result.finetuning
    kind = result.pretraining
    return {
        'model': architecture(test_x.shape[1], hidden_layers_sizes),
        'hidden_layers_sizes': list(hidden_layers_sizes),
        'pretraining': kind,
        'validation_error': outcome['best_validation_error'],
        'test_error': errors / n_test,
        'test_errors': errors, 'n_test': n_test,
        'test_error_interval': list(interval),
        'test_wrong_digits': numpy.flatnonzero(result.test_wrong).tolist(),
        'pretrained_layer': measures,
        'best_epoch': outcome['best_epoch'],
        'epochs_run': outcome['epochs_run'],
        'pretraining_time': result.pretraining_time,
        'finetuning_time': outcome['finetuning_time'],
        'validation_errors': outcome['validation_errors'],
        'pretraining_costs': [c.tolist() for c in result.pretraining_costs],
        'hyperparameters': dict(
            settings, pretraining_epochs=settings['pretraining_epochs']
            if kind != 'none' else 0)}


def paired_tests(runs):
    """McNemar's exact test (mcnemar_exact) between every two rows of a
    comparison, from the test digits each got wrong: a list of dicts."""
    tests = []
    for (a, run_a), (b, run_b) in itertools.combinations(enumerate(runs), 2):
        wrong_a, wrong_b = (set(run['test_wrong_digits'])
                            for run in (run_a, run_b))
        only_a, only_b = len(wrong_a - wrong_b), len(wrong_b - wrong_a)
        tests.append({'rows': [a + 1, b + 1],
                      'models': [row_name(run_a), row_name(run_b)],
                      'only_first_wrong': only_a,
                      'only_second_wrong': only_b,
                      'both_wrong': len(wrong_a & wrong_b),
                      'p_value': mcnemar_exact(only_a, only_b)})
    return tests


def row_name(run):
    """How a row of the table is called in its other lines: 'CAE', 'AE',
    'none', with the architecture when it has more than one layer."""
    if len(run['hidden_layers_sizes']) == 1:
        return run['pretraining']
    return '%s %s' % (run['pretraining'], run['model'])




# ---- the table ----------------------------------------------------------------

def comparison_rows(n_hidden, two_layers):
    """(hidden_layers_sizes, pretraining kind) of each row of the table."""
    rows = [((n_hidden,), kind) for kind in ('none', 'AE', 'CAE')]
    if two_layers:
        rows.append(((n_hidden, n_hidden), 'CAE'))
    return rows


def percent_interval(run):
    low, high = run['test_error_interval']
    return '%.2f-%.2f %%' % (low * 100, high * 100)


def in_units_of_1e4(value):
    """A mean squared entry of J as the paper prints its column."""
    return '%.2fe-4' % (value * 1e4)


def layer_columns(measures):
    """The table's norm of J, mean J_ij^2 and SAT cells of one row."""
    if measures is None:
        return ['', '', '']
    return ['%.2f' % measures['jacobian_frobenius_norm'],
            in_units_of_1e4(measures['jacobian_mean_square_entry']),
            '%.2f %%' % (measures['saturated_fraction'] * 100)]


def markdown_table(runs):
    """The comparison as a Markdown table (errors in %, times in min), with
    the paper's rows (Table 1) under ours. The norm of J (the mean of
    ||J(x)||_F; a header cannot hold the bars), mean J_ij^2 and SAT are
    those of the pre-trained first layer on the test digits, before
    fine-tuning (pretrained_layer)."""
    lines = ['| model | pre-training | test error | 95 % interval (Wilson) | '
             'validation error | norm of J | mean J_ij^2 | SAT | '
             'pre-training time | fine-tuning time | best epoch / run |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for run in runs:
        lines.append('| MLP %s | %s | %.2f %% | %s | %.2f %% | %s | %.1f min '
                     '| %.1f min | %d / %d |'
                     % (run['model'], run['pretraining'],
                        run['test_error'] * 100, percent_interval(run),
                        run['validation_error'] * 100,
                        ' | '.join(layer_columns(run['pretrained_layer'])),
                        run['pretraining_time'] / 60,
                        run['finetuning_time'] / 60, run['best_epoch'],
                        run['epochs_run']))
    for kind, paper in PAPER.items():
        lines.append('| the paper, Table 1 | %s | %.2f %% | | | | %s | '
                     '%.2f %% | | | |'
                     % (kind, paper['test_error'] * 100,
                        in_units_of_1e4(paper['jacobian_norm_column']),
                        paper['saturated_fraction'] * 100))
    return '\n'.join(lines)


def curve_scale(datasets, n_examples, log):
    """The points and radii of the contraction curves (analysis.py's
    figure, from its defaults: the limit r -> 0, then up to 1.25 x the
    largest distance between two training digits), around the first
    n_examples test digits: (X, distances, radii). Computed before any
    row trains, so that data they cannot be drawn on (too few digits,
    test digits that repeat training digits) is one line at the start."""
    (train_x, _), _, (test_x, _) = datasets
    if len(test_x) < 2 or len(train_x) < 2:
        raise checks.ConfigError(
            'the dataset has %d training and %d test digits: the '
            'contraction curves need at least 2 of each' % (len(train_x),
                                                             len(test_x)))
    X = numpy.asarray(test_x[0:n_examples], dtype=numpy.float64)
    curve = cli.defaults_of(analysis.run_analysis)  # its figure's radii
    distances, radii = analysis.contraction_radii(
        X, train_x, curve['n_radii'], curve['min_radius_factor'],
        curve['max_radius_factor'], log)
    return X, distances, radii


def contraction_curves(results, scale, seed, log):
    """The contraction curves (analysis.py's) of the pre-trained first
    layers of the one-layer rows, before fine-tuning, at the points and
    radii ``scale`` (curve_scale), with the same direction per point for
    every model, drawn from RandomState(seed). results: [(row,
    ScAResult)]. A dict for the report."""
    start = time.perf_counter()
    X, distances, radii = scale
    directions = jacobian.random_directions(
        len(X), X.shape[1], numpy.random.RandomState(seed))
    curves = {}
    for summary, result in results:
        if result.pretrained is None or \
                len(summary['hidden_layers_sizes']) > 1:
            continue
        curves[summary['pretraining']] = jacobian.contraction_ratios(
            jacobian.encoder(*result.pretrained), X, radii, None,
            directions=directions).tolist()
    print('contraction curves of the pre-trained layers at %d test digits '
          '(%.1f s)' % (len(X), time.perf_counter() - start), file=log,
          flush=True)
    return {'n_examples': len(X), 'distances': distances,
            'radii': radii.tolist(), 'ratios': curves}


def new_report(dataset, datasets, settings):
    """The report before any row: what the table is of and how it is
    computed; compare() fills in the rest."""
    n_train, n_valid, n_test = (len(y) for _, y in datasets)
    return {
        'dataset': {'sha256': reports.file_sha256(dataset),
                    'bytes': os.path.getsize(dataset),
                    'n_train': n_train, 'n_valid': n_valid,
                    'n_test': n_test},
        'code': reports.code_version(),
        'hyperparameters': settings,
        'interval': '95 % Wilson score interval of the test error, '
                    'binomial over the n_test test examples',
        'paired_test': "McNemar's exact test between two rows: two-sided "
                       'binomial (n, 1/2) p-value of the digits only one '
                       'of the two gets wrong',
        'paper': dict(PAPER, source='Rifai et al., ICML 2011, Table 1, '
                      'MNIST, one hidden layer of 1000 units; '
                      'jacobian_norm_column is the column "Av. '
                      '||J_f(x)||_F", of the size of a mean squared '
                      'entry of J'),
        'runs': [], 'paired_tests': [], 'contraction': None,
        'complete': False, 'total_time': None,
        'machine': reports.machine(backend.NAME, theano.config.floatX)}


def checked_settings(n_hidden, settings):
    """test_ScA's defaults with ``settings`` over them; ConfigError for
    one that no row can use."""
    unknown = sorted(set(settings) - set(HYPERPARAMETERS))
    if unknown:
        raise TypeError('compare() got unexpected keywords %s'
                        % ', '.join(unknown))
    settings = dict(HYPERPARAMETERS, **settings)
    checks.positive_int('n_hidden', n_hidden)
    checks.stacked_training(hidden_layers_sizes=(n_hidden,), **settings)
    # without them, a row would be a copy of another
    checks.positive_int('pretraining_epochs', settings['pretraining_epochs'])
    checks.positive_number('contraction_level',
                           settings['contraction_level'])
    return settings


def compare(n_hidden=1000, two_layers=False, output_folder='cA_plots',
            dataset=mnist_data.DEFAULT_PATH, datasets=None, log=None,
            **settings):
    """The table of docs/stacked.md: one MLP with a hidden layer of
    n_hidden units, fine-tuned from its random initialisation, after plain
    auto-encoder pre-training (lambda 0) and after CAE pre-training; with
    two_layers, also a CAE-pre-trained stack of two such layers.

    Every row is test_ScA with the same settings (test_ScA's defaults, or
    those given as keywords: finetune_lr, contraction_level, ...): the same
    initial weights, the same order of the examples, the same fine-tuning
    budget. The AE row differs from the CAE row only by lambda: it shows
    what the penalty itself buys.

    Holds output_folder (outputs.OutputFolder). After every row, the
    report so far goes to ScA_comparison.partial.json (``complete``
    false); at the end, ScA_comparison.json and ScA_contraction.png
    replace those of an earlier comparison together, and the partial file
    goes: a stopped or failed run leaves the earlier finished table as it
    was. Prints the Markdown table at the end. Returns the report (a
    dict).
    """
    log = sys.stdout if log is None else log
    settings = checked_settings(n_hidden, settings)
    rows = comparison_rows(n_hidden, two_layers)
    start = time.perf_counter()
    with outputs.OutputFolder(output_folder) as folder:
        path, figure, partial = map(folder.path, (
            COMPARISON_NAME, CONTRACTION_FIGURE, PARTIAL_NAME))
        for name in (path, figure, partial):
            outputs.remove_dead_temporaries(name)
        outputs.note_replaced([path, figure], 'an earlier comparison (they '
                              'stay until this one is complete)', log)
        if datasets is None:
            datasets = read_data(dataset, log)
        scale = curve_scale(datasets, CURVE_EXAMPLES, log)
        report = new_report(dataset, datasets, dict(
            settings, n_hidden=n_hidden, two_layers=two_layers))
        results = []
        for number, (sizes, kind) in enumerate(rows, 1):
            print('\n== row %d/%d: MLP %s, %s ==' % (
                number, len(rows), architecture(datasets[0][0].shape[1],
                                                sizes),
                PRETRAINING_NAMES[kind]), file=log, flush=True)
            row_settings = dict(settings, contraction_level=0.0) \
                if kind == 'AE' else settings
            result = test_ScA(hidden_layers_sizes=sizes,
                              pretrain=kind != 'none', datasets=datasets,
                              log=log, **row_settings)
            report['runs'].append(row(result, sizes, datasets[2][0],
                                      row_settings, log))
            results.append((report['runs'][-1], result))
            report['paired_tests'] = paired_tests(report['runs'])
            report['total_time'] = time.perf_counter() - start
            reports.write_json(partial, report)
            print('row %d/%d done; %.1f min so far; the rows so far are in '
                  '%s' % (number, len(rows), report['total_time'] / 60,
                          partial), file=log, flush=True)
        with outputs.Staged([path, figure]) as stage:
            # after every row is scored: what pre-training made of the
            # layers
            report['contraction'] = draw_contraction(
                results, scale, settings['seed'], n_hidden,
                stage.path(figure), log)
            report['complete'] = True
            report['total_time'] = time.perf_counter() - start
            reports.write_json(stage.path(path), report)
        os.remove(partial)
    print_table(report, path, log)
    return report


def draw_contraction(results, scale, seed, n_hidden, figure, log):
    """contraction_curves, drawn at ``figure``; the report's dict."""
    contraction = contraction_curves(results, scale, seed, log)
    figures.plot_contraction(
        contraction['radii'], {'%s (pre-trained, %d units)' % (
            kind, n_hidden): ratios
            for kind, ratios in contraction['ratios'].items()},
        figure, figures.figure_distances(contraction['distances']),
        title='Contraction curves of the pre-trained %d-unit layers '
              '(ScA.py)' % n_hidden)
    return dict(contraction, figure=CONTRACTION_FIGURE)


def print_table(report, path, log):
    s = report['hyperparameters']
    print('\n' + markdown_table(report['runs']), file=log)
    print('\npre-training: %d epochs per layer, SGD lr %g, batch %d, '
          'lambda %g (0 in the AE row); fine-tuning: SGD lr %g x %g^(epoch-1),'
          ' batch %d, at most %d epochs, the parameters of the best '
          'validation error kept; initial weights seed %d, data order '
          'reshuffled every epoch, seed %d'
          % (s['pretraining_epochs'], s['pretrain_lr'],
             s['pretrain_batch_size'], s['contraction_level'],
             s['finetune_lr'], s['finetune_lr_decay'],
             s['finetune_batch_size'], s['training_epochs'], s['seed'],
             s['shuffle_seed']), file=log)
    print('norm of J (the mean of ||J(x)||_F), mean J_ij^2 (of ||J(x)||_F^2 '
          '/ (d_x d_h), the scale of the paper\'s column) and SAT (h < %g or '
          'h > %g): the pre-trained first layer on the test digits, before '
          'fine-tuning'
          % (SATURATION_THRESHOLD, 1 - SATURATION_THRESHOLD), file=log)
    for test in report['paired_tests']:
        print('paired test, %s against %s (McNemar, exact): %d test digits '
              'only the first gets wrong, %d only the second, p = %.3g'
              % (test['models'][0], test['models'][1],
                 test['only_first_wrong'], test['only_second_wrong'],
                 test['p_value']), file=log)
    contraction = report['contraction']
    if contraction:
        radii = contraction['radii']
        # the limit r -> 0, the largest training distance, the last radius
        shown = (radii[0], contraction['distances']['largest_training'],
                 radii[-1])
        print('contraction ratio of the pre-trained layers (%s): %s'
              % (', '.join('r = %.3g' % r for r in shown),
                 '; '.join('%s %s' % (kind, ' '.join(
                     '%.3f' % numpy.interp(r, radii, ratios) for r in shown))
                     for kind, ratios in contraction['ratios'].items())),
              file=log)
    print('total time %.1f min (%.0f s); results written to %s and %s'
          % (report['total_time'] / 60, report['total_time'], path,
             os.path.join(os.path.dirname(path), contraction['figure'])
             if contraction else '(no figure)'),
          file=log, flush=True)


if __name__ == '__main__':
    sys.exit(commands.table1(compare, test_ScA))
