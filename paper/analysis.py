"""The paper's analyses: how a contractive auto-encoder contracts its input.

Rifai et al. (ICML 2011) argue that the penalty lambda * ||J(x)||_F^2
makes the encoder h = sigmoid(x W + b) insensitive to most small moves of
x, while the reconstruction term forces it to stay sensitive along the few
directions in which the training digits actually vary (the tangent
directions of the data manifold). This script measures that, for a CAE
(``contraction_level=0.1``, test_cA's default) and, beside it, a plain
auto-encoder trained identically but with ``contraction_level=0``:

1. the spectrum of the Jacobian: the singular values of J(x) = dh/dx at
   test digits (jacobian.jacobian_singular_values). A few large values and
   a fast decay mean a few kept directions and contraction in all others;
2. contraction curves: ||h(x0 + r u) - h(x0)|| / ||r u|| for random
   directions u, as a function of the radius r (jacobian.contraction_ratios);
3. the mean Frobenius norm ||J||_F and the fraction of saturated hidden
   units (jacobian.jacobian_frobenius_norms, jacobian.saturated_fraction);
4. the hidden code as features for a logistic regression, against the
   same classifier on raw pixels (``classifier_errors``).

Run everything (trains both models, writes figures and analysis.json):

    make analysis                                     # the full run
    .venv/bin/python paper/analysis.py --help         # every option
    .venv/bin/python paper/analysis.py --epochs 1 --n-examples 50 \\
        --classifier-epochs 20                        # a quick look

(their times are in docs/analyses.md). The quick look trains each
model for one epoch and stops each logistic regression after 20 epochs:
its numbers show the trend (the CAE contracts more, saturates more and
classifies better than the AE), not the paper's values.

It prints one line per step of each model, with the time the step took;
``--verbose`` adds the logistic regressions' own progress. The two
trainings are test_cA runs in output_folder/cae and output_folder/ae;
``--resume`` goes on with them after an interrupt.

Importing this module has no side effects (no files, no data, no
compilation). The stack (Theano or PyTensor) is imported only by the
functions that read data, train or classify, and matplotlib only by the
plotting functions: ``--help`` and a mistake in the settings answer at
once.
"""
import os
import sys
import time

if __name__ == '__main__':
    # run as a file: the tutorial scripts are one folder up
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))
    from machinery import start_script
    start_script(__file__)

import numpy

from machinery import checkpoints
from machinery import checks
from machinery import commands
from machinery import mnist_data
from machinery import outputs
from machinery import reports
from machinery import resources
from machinery.checks import ConfigError
from paper import figures
from paper.jacobian import (contraction_ratios, curve_radii, encoder,
                            hidden_values, jacobian_frobenius_norms,
                            largest_distance, mean_singular_values,
                            random_directions, saturated_fraction,
                            typical_distances)

# what run_analysis writes in its output folder
FIGURES = {'spectrum': 'analysis_spectrum.png',
           'contraction': 'analysis_contraction.png',
           'training': 'analysis_training.png'}
JSON_NAME = 'analysis.json'


# ---- features for classification --------------------------------------------

def classifier_errors(datasets, encode=None, learning_rate=0.13,
                      n_epochs=1000, batch_size=600, log=None):
    """Logistic regression on a representation; (valid_error, test_error).

    datasets: [(train_x, train_y), (valid_x, valid_y), (test_x, test_y)]
        as numpy arrays (mnist_data.read_mnist's output).
    encode: numpy (N, 784) -> (N, n_features), applied to every x; None
        classifies the raw pixels.
    The features go into shared variables with logistic_sgd.shared_dataset
    and the classifier is logistic_sgd.sgd_optimization_mnist, with its
    early stopping on the validation set (nothing is written to disk); its
    progress lines go to ``log`` (None: nowhere). Errors are fractions; the
    test error is that of the model that was best on the validation set.
    """
    import logistic_sgd  # the stack: see the module docstring
    shared = [logistic_sgd.shared_dataset((x if encode is None else
                                           encode(x), y))
              for x, y in datasets]
    with open(os.devnull, 'w') as nowhere:
        valid_error, test_error, _ = logistic_sgd.sgd_optimization_mnist(
            learning_rate=learning_rate, n_epochs=n_epochs,
            batch_size=batch_size, datasets=shared, model_path=None,
            log=nowhere if log is None else log)
    return float(valid_error), float(test_error)


# ---- the whole analysis -----------------------------------------------------

def run_analysis(training_epochs=20, n_examples=500,
                 dataset=mnist_data.DEFAULT_PATH, output_folder='cA_plots',
                 contraction_level=0.1, n_hidden=500, learning_rate=0.01,
                 batch_size=10, seed=123, n_radii=25, min_radius_factor=1e-3,
                 max_radius_factor=1.25, saturation_threshold=0.05,
                 classifier_epochs=1000, classifier_learning_rate=0.13,
                 classifier_batch_size=600, verbose=False, resume=False,
                 restart=False, log=None):
    """Train a CAE and a plain AE identically; run every analysis on both.

    The CAE is test_cA at contraction_level, the AE the same call at 0, each
    in its subfolder of output_folder (cae/, ae/); an unfinished checkpoint
    there is not thrown away unless ``resume`` or ``restart``. On the first
    n_examples test digits: the Jacobian's spectrum and the contraction
    curves at n_radii radii (contraction_radii; one direction per digit,
    the same for both models, from RandomState(seed)); on the whole test
    set, the mean ||J||_F and the saturated fraction; then a logistic
    regression (classifier_*) on each code and on the raw pixels.

    Writes the three figures and analysis.json (every number) atomically,
    holding output_folder for the whole run. Prints a line per step and a
    summary to ``log`` (default sys.stdout); the classifiers' own lines
    only when ``verbose``. Returns the dict written to analysis.json.
    ConfigError for a setting it cannot use, before anything is read or
    written (before any training for those that depend on the data).
    """
    settings = dict(locals())  # as given; analysis.json records them
    for name in ('verbose', 'log', 'resume', 'restart'):
        del settings[name]  # they change only the output, or how to start
    log = sys.stdout if log is None else log
    start = time.perf_counter()
    checks.analysis(training_epochs, n_examples, contraction_level, n_hidden,
                   learning_rate, batch_size, seed, n_radii,
                   min_radius_factor, max_radius_factor, saturation_threshold,
                   classifier_epochs, classifier_learning_rate,
                   classifier_batch_size)
    checkpoints.check_resume_or_restart(resume, restart)
    training = dict(training_epochs=training_epochs, dataset=dataset,
                    n_hidden=n_hidden, learning_rate=learning_rate,
                    batch_size=batch_size, seed=seed)
    classifier = dict(learning_rate=classifier_learning_rate,
                      n_epochs=classifier_epochs,
                      batch_size=classifier_batch_size,
                      log=log if verbose else None)
    with outputs.OutputFolder(output_folder) as folder:
        resumes = claim(folder, contraction_level, resume, restart, log)
        datasets = read_checked_data(dataset, n_examples, batch_size,
                                     classifier_batch_size, log)
        (train_x, _), _, (test_x, _) = datasets
        X = test_x[:n_examples].astype(numpy.float64)
        resources.check_memory(resources.analysis_needs(
            n_examples, n_radii, X.shape[1], n_hidden))
        distances, radii = contraction_radii(X, train_x, n_radii,
                                             min_radius_factor,
                                             max_radius_factor, log)
        # one direction per digit, the same for both models
        directions = random_directions(n_examples, X.shape[1],
                                       numpy.random.RandomState(seed))
        models = {}
        for key, label, level in the_two_models(contraction_level):
            W, b, models[key] = train(label, level, folder.path(key),
                                      dict(training, resume=resumes[key],
                                           restart=restart), log)
            models[key].update(measure(label, W, b, X, test_x, radii,
                                       directions, saturation_threshold, log))
            models[key].update(classify('the %s code' % label, datasets,
                                        encoder(W, b), n_hidden, classifier,
                                        log))
        raw_pixels = classify('the raw pixels', datasets, None,
                              train_x.shape[1], classifier, log)
        report = write_outputs(folder, {
            'settings': settings,
            'n_train': len(train_x), 'n_test': len(test_x),
            'typical_distances': distances,
            'radii': radii,
            'models': models,
            'raw_pixels': raw_pixels}, start, log)
    print_summary(report, log)
    return report


def claim(folder, contraction_level, resume, restart, log):
    """Before anything is read: whether each training resumes
    (check_training_folder: an unfinished checkpoint is not thrown away
    unless asked); clears what a killed analysis left half-written and
    says which earlier files this run replaces. {model key: resumes}."""
    resumes = {key: check_training_folder(folder.path(key), level, resume,
                                          restart)
               for key, _, level in the_two_models(contraction_level)}
    ours = [folder.path(name) for name in [JSON_NAME] +
            list(FIGURES.values())]
    for path in ours:
        outputs.remove_dead_temporaries(path)  # test_cA sees to its own
    outputs.note_replaced(ours, 'an earlier analysis', log)
    return resumes


def say(log, message):
    print(message, file=log, flush=True)


def read_checked_data(dataset, n_examples, batch_size, classifier_batch_size,
                      log):
    """MNIST as numpy arrays (logistic_sgd.read_data); ConfigError when
    the settings ask for more test digits or larger minibatches than it
    has."""
    import logistic_sgd  # the stack: see the module docstring
    datasets = logistic_sgd.read_data(dataset, log)
    (train_x, _), _, (test_x, _) = datasets
    if n_examples > len(test_x):
        raise ConfigError('n_examples %d is more than the %d test digits'
                          % (n_examples, len(test_x)))
    if len(train_x) < 2:
        raise ConfigError('%s has %d training digits: the contraction '
                          'curves need at least 2 (their largest radius is '
                          'set by the largest distance between two)'
                          % (dataset, len(train_x)))
    checks.batch_fits(batch_size, len(train_x))
    checks.batch_fits(classifier_batch_size, len(train_x),
                      'classifier_batch_size')
    return datasets


def contraction_radii(X, train_x, n_radii, min_radius_factor,
                      max_radius_factor, log):
    """The distances that set the scale of the contraction curves, and
    their radii (curve_radii): the typical distances of the rows of X
    (typical_distances) and the largest distance between two training
    digits (largest_distance); the first radius is min_radius_factor times
    the median distance from a row of X to its nearest training digit,
    the last max_radius_factor times the largest training distance.

    Returns (distances, radii); distances is typical_distances' dict plus
    'largest_training' (and 'largest_training_pair', the two rows)."""
    start = time.perf_counter()
    distances = typical_distances(X, train_x)
    largest, pair = largest_distance(train_x)
    distances.update(largest_training=largest,
                     largest_training_pair=list(pair))
    scale = distances['median_nearest_neighbour']
    radii = curve_radii(min_radius_factor * scale,
                        max_radius_factor * largest, n_radii)
    check_radii(radii, scale, largest, min_radius_factor, max_radius_factor)
    say(log, 'distances (Euclidean, pixels in [0, 1]): median %.3f from one '
        'of the first %d test digits to the nearest of the %d training '
        'digits, median %.3f between two of those test digits, largest %.3f '
        'between two training digits (rows %d and %d) (%.1f s)'
        % (scale, len(X), len(train_x), distances['median_pairwise'],
           largest, pair[0], pair[1], time.perf_counter() - start))
    say(log, 'radii of the contraction curves: %.3g (%g x the median '
        'nearest-neighbour distance: the limit r -> 0), then %d evenly '
        'spaced up to %.3g (%g x the largest training distance); x0 + r u '
        'may leave [0, 1]^784, which the encoder accepts'
        % (radii[0], min_radius_factor, n_radii - 1, radii[-1],
           max_radius_factor))
    return distances, radii


# below this, x0 + r u rounds to nearly x0 in float64 (pixels near 1), and
# the ratio measures rounding, not the encoder
MIN_RADIUS = 1e-9
# two digits closer than this are copies (rounding leaves ~1e-7 of a
# distance of 0); two that differ by one grey level (1/256) in one pixel
# are farther
SAME_DIGIT = 1e-3


def check_radii(radii, scale, largest, min_radius_factor, max_radius_factor):
    """ConfigError, before any training, when a radius of the curves is too
    small to measure a ratio at: the test digits repeat training digits
    (the nearest-neighbour distance is 0), or a factor is too small."""
    if scale * min_radius_factor < MIN_RADIUS:
        raise ConfigError(
            'the first radius of the contraction curves, min_radius_factor '
            '%g x the median distance %.3g from a test digit to its nearest '
            'training digit, is below %g: %s' % (
                min_radius_factor, scale, MIN_RADIUS,
                'the test digits repeat training digits; use a dataset whose '
                'test digits are not copies of training digits'
                if scale < SAME_DIGIT else
                'give a larger --min-radius-factor'))
    if radii[1] < MIN_RADIUS:
        raise ConfigError(
            'the radii of the contraction curves, up to max_radius_factor %g '
            'x the largest distance %.3g between two training digits, are '
            'below %g: %s' % (
                max_radius_factor, largest, MIN_RADIUS,
                'the training digits are all the same; use a dataset of '
                'different digits' if largest < SAME_DIGIT else
                'give a larger --max-radius-factor'))


def the_two_models(contraction_level):
    """(key, label, contraction_level) of the CAE and of the plain AE; the
    key names the model in analysis.json and its output subfolder."""
    return (('cae', 'CAE', contraction_level), ('ae', 'AE', 0.0))


def check_training_folder(folder, contraction_level, resume, restart):
    """Whether the training in ``folder`` resumes: with ``resume``, when
    it holds a checkpoint (test_cA then checks that it is of this run's
    settings and data). Without ``resume`` or
    ``restart``, CheckpointError when it holds one (test_cA's rule,
    checked before the analysis reads anything)."""
    import cA  # the stack: see the module docstring
    path = os.path.join(folder, cA.output_names(contraction_level)[0])
    if resume:
        # a finished one too: it then trains no epoch (or the more asked)
        return os.path.exists(path)
    checkpoints.check_can_start(path, False, restart, None)
    return False


def train(label, contraction_level, output_folder, training, log):
    """test_cA with the shared ``training`` settings (and resume or
    restart, as check_training_folder decided). Returns the trained W and b
    (float64) and what analysis.json records of the training."""
    import cA  # the stack: see the module docstring
    say(log, '%s: contraction_level %g, %d hidden units, %d epoch%s, in %s'
        % (label, contraction_level, training['n_hidden'],
           training['training_epochs'],
           '' if training['training_epochs'] == 1 else 's', output_folder))
    try:
        trained = cA.test_cA(contraction_level=contraction_level,
                             output_folder=output_folder, log=log,
                             **training)
    except checkpoints.TrainingInterrupted as e:
        raise checkpoints.TrainingInterrupted(
            '%s; the analysis stopped' % e, e.signum) from None
    reconstruction, jacobian_norm = figures.epoch_curves(trained.costs)
    return (trained.ca.W.get_value().astype(numpy.float64),
            trained.ca.b.get_value().astype(numpy.float64),
            {'label': label,
             'contraction_level': contraction_level,
             'training_time_s': trained.training_time,
             'filters': trained.filters_path,
             'epoch_reconstruction_cost': reconstruction,
             'epoch_jacobian_norm': jacobian_norm})


def measure(label, W, b, X, test_x, radii, directions, saturation_threshold,
            log):
    """The analyses of one trained encoder: the spectrum and the
    contraction curves at the rows of X, the mean ||J||_F and the
    saturated fraction over all of test_x."""
    start = time.perf_counter()
    spectrum = mean_singular_values(W, b, X)
    say(log, '%s spectrum of J = dh/dx at %d test digits: mean singular '
        'values of ranks 1-5 %s (%.1f s)' % (label, len(X), _fmt(spectrum[:5]),
                                            time.perf_counter() - start))
    start = time.perf_counter()
    ratios = contraction_ratios(encoder(W, b), X, radii, None,
                                directions=directions)
    say(log, '%s mean contraction ratio ||h(x1) - h(x0)|| / ||x1 - x0||: '
        '%.4g at r = %.3g, %.4g at r = %.3g (%.1f s)'
        % (label, ratios[0], radii[0], ratios[-1], radii[-1],
           time.perf_counter() - start))
    start = time.perf_counter()
    frobenius = float(jacobian_frobenius_norms(W, b, test_x).mean())
    saturated = saturated_fraction(hidden_values(W, b, test_x),
                                   saturation_threshold)
    say(log, '%s over the %d test digits: mean ||J||_F %.4g; saturated '
        'units (h < %g or h > %g) %.2f %% (%.1f s)'
        % (label, len(test_x), frobenius, saturation_threshold,
           1 - saturation_threshold, 100 * saturated,
           time.perf_counter() - start))
    return {'singular_values_mean': spectrum,
            'contraction_ratios': ratios,
            'jacobian_frobenius_norm_mean': frobenius,
            'saturated_fraction': saturated}


def classify(what, datasets, encode, n_features, classifier, log):
    """classifier_errors on ``what`` (encode's features, or the raw pixels
    when encode is None), saying what it found and how long it took."""
    start = time.perf_counter()
    valid_error, test_error = classifier_errors(datasets, encode,
                                                **classifier)
    say(log, 'logistic regression on %s (%d features): test error '
        '%.2f %%, validation error %.2f %% (%.1f s)'
        % (what, n_features, 100 * test_error, 100 * valid_error,
           time.perf_counter() - start))
    return {'classifier_valid_error': valid_error,
            'classifier_test_error': test_error}


def write_outputs(folder, report, start, log):
    """The figures and analysis.json of ``report`` in the output folder
    (outputs.OutputFolder), which replace an earlier analysis's together,
    at the end; the total time counts from ``start``. Returns what was
    written to analysis.json."""
    paths = {name: folder.path(file_name)
             for name, file_name in FIGURES.items()}
    json_path = folder.path(JSON_NAME)
    with outputs.Staged(list(paths.values()) + [json_path]) as stage:
        report['figures'] = write_figures(
            stage, paths, report['radii'], report['typical_distances'],
            report['models'], log)
        report['total_time_s'] = time.perf_counter() - start
        return write_report(stage, json_path, report, log)


def write_figures(stage, paths, radii, distances, models, log):
    """The three figures, at ``paths`` ({name: path}) once ``stage``
    (outputs.Staged) puts them in place; returns paths."""
    start = time.perf_counter()
    figures.plot_spectrum({m['label']: m['singular_values_mean']
                           for m in models.values()},
                          stage.path(paths['spectrum']))
    figures.plot_contraction(radii, {m['label']: m['contraction_ratios']
                                     for m in models.values()},
                             stage.path(paths['contraction']),
                             figures.figure_distances(distances))
    figures.plot_training({m['label']: (m['epoch_reconstruction_cost'],
                                        m['epoch_jacobian_norm'])
                           for m in models.values()},
                          stage.path(paths['training']))
    say(log, 'wrote %s (%.1f s)' % (', '.join(paths.values()),
                                    time.perf_counter() - start))
    return paths


def write_report(stage, path, report, log):
    """Write analysis.json at ``path`` (once ``stage`` puts it in place);
    returns what was written."""
    report = reports.write_json(stage.path(path), report)
    say(log, 'wrote %s' % path)
    return report


def _fmt(values, spec='%.3g'):
    return ' '.join(_num(v, spec) for v in values)


def _num(value, spec):
    """A number of the report, or 'n/a' where it was not finite (JSON
    null)."""
    return 'n/a' if value is None else spec % value


def print_summary(report, log):
    """The numbers of a run_analysis report, as a few readable lines."""
    models = list(report['models'].values())
    labels = [m['label'] for m in models]
    s = report['settings']
    d = report['typical_distances']
    say(log, '')
    say(log, 'summary (%d test digits; Euclidean distances, pixels in [0, 1])'
        % s['n_examples'])
    say(log, '  distances: median to the nearest training digit %.3f, '
        'median between two test digits %.3f, largest between two training '
        'digits %.3f' % (d['median_nearest_neighbour'], d['median_pairwise'],
                         d['largest_training']))
    say(log, '  mean singular values of J = dh/dx, ranks 1-10:')
    for m in models:
        say(log, '    %-4s %s' % (m['label'], _fmt(
            m['singular_values_mean'][:10], '%.4g')))
    say(log, '  mean contraction ratio ||h(x1) - h(x0)|| / ||x1 - x0||:')
    say(log, '    %10s  %s' % ('radius r', '  '.join('%8s' % l
                                                      for l in labels)))
    for k, r in enumerate(report['radii']):
        say(log, '    %10.4g  %s' % (r, '  '.join(
            '%8s' % _num(m['contraction_ratios'][k], '%.4g')
            for m in models)))
    say(log, '  mean ||J||_F over the %d test digits: %s'
        % (report['n_test'], '  '.join('%s %s' % (
            m['label'], _num(m['jacobian_frobenius_norm_mean'], '%.4g'))
            for m in models)))
    t = s['saturation_threshold']
    say(log, '  saturated hidden units (h < %g or h > %g): %s'
        % (t, 1 - t, '  '.join('%s %.2f %%' % (
            m['label'], 100 * m['saturated_fraction']) for m in models)))

    def percent(error):
        return 'n/a' if error is None else '%.2f %%' % (100 * error)

    say(log, '  logistic regression test error: %s  raw pixels %s'
        % ('  '.join('%s code %s' % (m['label'],
                                     percent(m['classifier_test_error']))
                     for m in models),
           percent(report['raw_pixels']['classifier_test_error'])))
    total = report['total_time_s']
    say(log, '  total time %.2f min (%.1f s)' % (total / 60, total))



if __name__ == '__main__':
    sys.exit(commands.analysis(run_analysis))
