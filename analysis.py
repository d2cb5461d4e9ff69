"""The paper's analyses: how a contractive auto-encoder contracts its input.

Rifai et al. (ICML 2011) argue that the penalty lambda * ||J_h(x)||_F^2
makes the encoder h(x) = s(x W + b) insensitive to most small moves of x,
while the reconstruction term forces it to stay sensitive along the few
directions in which the training digits actually vary (the tangent
directions of the data manifold). This module measures that, for a CAE
(``contraction_level=0.1``, test_cA's defaults) and, beside it, a plain
auto-encoder trained identically but with ``contraction_level=0``:

1. the spectrum of the Jacobian: the singular values of J(x) = dh/dx at
   test digits (``jacobian_singular_values``). A few large values and a
   fast decay mean a few kept directions and contraction in all others;
2. contraction curves: ||h(x0 + r u) - h(x0)|| / ||r u|| for random
   directions u, as a function of the radius r (``contraction_ratios``);
3. the mean Frobenius norm ||J||_F and the fraction of saturated hidden
   units (``jacobian_frobenius_norms``, ``saturated_fraction``);
4. the hidden code as features for a logistic regression, against the
   same classifier on raw pixels (``classifier_errors``).

Run everything (trains both models, writes figures and analysis.json):

    .venv/bin/python analysis.py                # the full run on MNIST
    .venv/bin/python analysis.py --help         # every option
    .venv/bin/python analysis.py --epochs 2 --n-examples 50   # a quick look

Every function below works on numpy arrays and can be used on its own;
W is (n_visible, n_hidden) and b is (n_hidden,), as in cA.py, and X holds
one example per row. Importing this module has no side effects (no files,
no data, no compilation); matplotlib is imported only by the plotting
functions, which draw with the Agg renderer and need no display.
"""
import argparse
import inspect
import io
import json
import os
import sys
import time

import numpy
import scipy.special

from cA import test_cA
import cA as cA_module
import checks
import cli
import mnist_data
import outputs
from checks import ConfigError, is_integer
from logistic_sgd import read_data, sgd_optimization_mnist, shared_dataset
from outputs import atomic_write

# the two models of every analysis: (key, label); the key is also the
# subfolder of output_folder that holds the model's filters image
MODELS = (('cae', 'CAE'), ('ae', 'AE'))

FIGURES = {'spectrum': 'analysis_spectrum.png',
           'contraction': 'analysis_contraction.png',
           'training': 'analysis_training.png'}
JSON_NAME = 'analysis.json'


# ---- the encoder and its Jacobian -------------------------------------------

def hidden_values(W, b, X):
    """h = s(X W + b), the code of every row of X: (N, n_hidden), float64.

    s is the logistic sigmoid, computed by scipy.special.expit (no overflow
    warning for large |a|).
    """
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    return scipy.special.expit(X @ numpy.asarray(W, dtype=numpy.float64) +
                               numpy.asarray(b, dtype=numpy.float64))


def encoder(W, b, chunk_size=5000):
    """A numpy function X (n, n_visible) -> h(X) (n, n_hidden).

    It encodes chunk_size rows at a time, so that encoding the 50,000
    training digits does not build one 50,000 x 784 float64 copy.
    """
    W = numpy.asarray(W, dtype=numpy.float64)
    b = numpy.asarray(b, dtype=numpy.float64)

    def encode(X):
        X = numpy.atleast_2d(X)
        out = numpy.empty((X.shape[0], W.shape[1]))
        for start in range(0, X.shape[0], chunk_size):
            out[start:start + chunk_size] = hidden_values(
                W, b, X[start:start + chunk_size])
        return out

    return encode


def jacobian_singular_values(W, b, X, chunk_size=50):
    """The singular values of J(x) = dh/dx at every row x of X.

    With a = x W + b and h = s(a), h_j depends on x only through a_j, and
    s' = s (1 - s), so in the (n_visible, n_hidden) layout of W

        J_ij = dh_j / dx_i = W_ij h_j (1 - h_j),   J = W D,
        D = diag(h (1 - h)).

    A first-order move dx of the input moves the code by dh = dx J, so
    the singular values sigma_1 >= sigma_2 >= ... of J are the factors by
    which h stretches (sigma > 1) or contracts (sigma < 1) the input along
    its principal directions: the right singular vectors of J^T span the
    input directions the code follows, and a fast decay of the sigma_k
    means that only a few input directions change the code at all.

    Computation. When n_visible > n_hidden, W = Q R (reduced QR, Q with
    orthonormal columns, R square n_hidden x n_hidden) gives J = Q (R D),
    and multiplying by Q does not change singular values: the SVD of the
    n_hidden x n_hidden matrix R D gives the same numbers (about twice as
    fast for 784 x 500, and no squaring of J, so small values keep their
    precision). numpy.linalg.svd (compute_uv=False) runs on chunk_size
    examples at a time; 50 examples of 500 x 500 float64 are 100 MB.

    Returns an (N, min(n_visible, n_hidden)) float64 array, each row
    sorted in decreasing order.
    """
    W = numpy.asarray(W, dtype=numpy.float64)
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    n_visible, n_hidden = W.shape
    # the matrix whose columns D scales: R (same singular values) or W
    M = numpy.linalg.qr(W, mode='r') if n_visible > n_hidden else W
    out = numpy.empty((X.shape[0], min(n_visible, n_hidden)))
    for start in range(0, X.shape[0], chunk_size):
        h = hidden_values(W, b, X[start:start + chunk_size])
        # (chunk, 1, n_hidden) * (1, rows, n_hidden): M D for each example
        stack = (h * (1 - h))[:, None, :] * M[None, :, :]
        out[start:start + chunk_size] = numpy.linalg.svd(stack,
                                                         compute_uv=False)
    return out


def mean_singular_values(W, b, X, chunk_size=50):
    """The spectrum averaged over the rows of X: mean_x sigma_k(J(x)),
    (min(n_visible, n_hidden),), decreasing in k."""
    return jacobian_singular_values(W, b, X, chunk_size).mean(axis=0)


def jacobian_frobenius_norms(W, b, X):
    """||J(x)||_F for every row x of X: (N,).

    From J_ij = W_ij h_j (1 - h_j), the factor (h_j (1 - h_j))^2 does not
    depend on i, so

        ||J(x)||_F^2 = sum_ij J_ij^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2,

    one (N, n_hidden) x (n_hidden,) product (cA.py's eq. 5). Note that
    ||J||_F^2 = sum_k sigma_k^2: the norm summarises the whole spectrum.
    """
    W = numpy.asarray(W, dtype=numpy.float64)
    h = hidden_values(W, b, X)
    return numpy.sqrt(((h * (1 - h)) ** 2) @ numpy.sum(W ** 2, axis=0))


def saturated_fraction(H, threshold=0.05):
    """The fraction of the entries of H (codes, values in [0, 1]) that are
    saturated: h < threshold or h > 1 - threshold (strictly).

    Averaged over all the entries, i.e. the mean over examples of the
    fraction of each example's hidden units that are saturated. A
    saturated sigmoid unit has h (1 - h) < threshold, so its column of J
    is nearly zero: saturation is one way of contracting, and the paper
    reports that the CAE saturates many more units than an auto-encoder.
    """
    if not 0 < threshold < 0.5:
        raise ConfigError('the saturation threshold must be in (0, 0.5), '
                          'got %r' % (threshold,))
    H = numpy.asarray(H)
    return float(numpy.mean((H < threshold) | (H > 1 - threshold)))


# ---- contraction curves ----------------------------------------------------

def random_directions(n, dim, rng):
    """n directions uniform on the unit sphere of R^dim: (n, dim).

    A standard normal vector is rotation invariant, so its direction
    g / ||g|| is uniform on the sphere. rng is a numpy RandomState (or
    Generator): the same seed gives the same directions.
    """
    g = rng.standard_normal((n, dim))
    return g / numpy.linalg.norm(g, axis=1, keepdims=True)


def pointwise_contraction_ratios(encode, X, radii, directions):
    """The contraction ratio of every point at every radius: (N, n_radii).

    For the point x0 = X[n], its direction u = directions[n] and the
    radius r = radii[k], x1 = x0 + r u and

        ratio[n, k] = ||h(x1) - h(x0)|| / ||x1 - x0||

    (the denominator is computed from x1 - x0 as stored, so it is r ||u||
    up to rounding). The same direction is used at every radius, so a
    curve over r follows one line through x0. x1 may leave [0, 1]^d, the
    range of the pixels: the encoder is defined on all of R^d, and the
    ratio measures the map, not the images.

    encode: numpy (n, d) -> (n, n_hidden). For a linear map h(x) = x A the
    ratio is ||u A|| / ||u|| at every r; for a smooth h it tends to
    ||u J(x0)|| / ||u|| as r -> 0, the Jacobian's action on u.
    """
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    directions = numpy.atleast_2d(numpy.asarray(directions,
                                                dtype=numpy.float64))
    if directions.shape != X.shape:
        raise ValueError('directions must have the shape of X, %s, got %s'
                         % (X.shape, directions.shape))
    h0 = encode(X)
    radii = numpy.asarray(radii, dtype=numpy.float64)
    ratios = numpy.empty((X.shape[0], radii.size))
    for k, r in enumerate(radii):
        x1 = X + r * directions
        ratios[:, k] = (numpy.linalg.norm(encode(x1) - h0, axis=1) /
                        numpy.linalg.norm(x1 - X, axis=1))
    return ratios


def contraction_ratios(encode, X, radii, rng, directions=None):
    """The mean contraction ratio at each radius: (n_radii,).

    For every point x0 (row of X), a direction u uniform on the unit
    sphere of R^d (``random_directions(len(X), d, rng)``; or the given
    ``directions``, one per row, in which case rng is not used), and every
    radius r:

        x1 = x0 + r u,   ratio(x0, r) = ||h(x1) - h(x0)|| / ||x1 - x0||,
        contraction_ratios[k] = mean_x0 ratio(x0, radii[k]).

    A ratio below 1 means that h brings points at distance r from x0
    closer together: the map contracts there. Random directions in R^784
    are almost all orthogonal to the few tangent directions of the data
    manifold, so for small r this measures how much the off-manifold
    directions are contracted. x1 may leave [0, 1]^d; see
    pointwise_contraction_ratios.
    """
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    if directions is None:
        directions = random_directions(X.shape[0], X.shape[1], rng)
    return pointwise_contraction_ratios(encode, X, radii,
                                        directions).mean(axis=0)


def typical_distances(X, reference, chunk_size=100):
    """Two typical Euclidean distances between digits (pixels in [0, 1]).

    Returns a dict:
      median_nearest_neighbour: the median over the rows x of X of the
          distance from x to its nearest row of ``reference`` (e.g. from a
          test digit to the closest training digit): the scale of a step
          to a neighbouring example;
      median_pairwise: the median distance between two different rows of
          X: the scale of the whole cloud.
    Distances use ||x - y||^2 = ||x||^2 + ||y||^2 - 2 x.y, chunk_size rows
    of X at a time (clipped at 0 against rounding).
    """
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    if X.shape[0] < 2:
        raise ValueError('typical_distances needs at least 2 rows in X')
    x_sq = numpy.sum(X ** 2, axis=1)
    nearest_sq = numpy.full(X.shape[0], numpy.inf)
    # the reference in chunks too: 50,000 x 784 float64 would be 300 MB
    for ref_start in range(0, len(reference), 10 * chunk_size):
        ref = numpy.asarray(reference[ref_start:ref_start + 10 * chunk_size],
                            dtype=numpy.float64)
        ref_sq = numpy.sum(ref ** 2, axis=1)
        for start in range(0, X.shape[0], chunk_size):
            stop = start + chunk_size
            sq = x_sq[start:stop, None] + ref_sq[None, :] - \
                2 * X[start:stop] @ ref.T
            nearest_sq[start:stop] = numpy.minimum(nearest_sq[start:stop],
                                                   sq.min(axis=1))
    nearest = numpy.sqrt(numpy.maximum(nearest_sq, 0))
    pair_sq = x_sq[:, None] + x_sq[None, :] - 2 * X @ X.T
    upper = numpy.triu_indices(X.shape[0], k=1)
    pairwise = numpy.sqrt(numpy.maximum(pair_sq[upper], 0))
    return {'median_nearest_neighbour': float(numpy.median(nearest)),
            'median_pairwise': float(numpy.median(pairwise))}


def log_spaced_radii(scale, min_factor=1e-3, max_factor=3.0, n_radii=13):
    """n_radii radii from min_factor * scale to max_factor * scale, evenly
    spaced in log r."""
    return numpy.logspace(numpy.log10(min_factor * scale),
                          numpy.log10(max_factor * scale), n_radii)


# ---- features for classification ---------------------------------------------

def classifier_errors(datasets, encode=None, learning_rate=0.13,
                      n_epochs=1000, batch_size=600, log=None):
    """Logistic regression on a representation; (valid_error, test_error).

    datasets: [(train_x, train_y), (valid_x, valid_y), (test_x, test_y)]
        as numpy arrays (mnist_data.read_mnist's output).
    encode: numpy (n, 784) -> (n, n_features), applied to every x; None
        classifies the raw pixels.
    The features go into shared variables with logistic_sgd.shared_dataset
    and the classifier is logistic_sgd.sgd_optimization_mnist, with its
    early stopping on the validation set (nothing is written to disk).
    Errors are fractions; the test error is that of the model that was
    best on the validation set.
    """
    shared = [shared_dataset((x if encode is None else encode(x), y))
              for x, y in datasets]
    valid_error, test_error, _ = sgd_optimization_mnist(
        learning_rate=learning_rate, n_epochs=n_epochs, batch_size=batch_size,
        datasets=shared, model_path=None, log=log)
    return float(valid_error), float(test_error)


# ---- training curves and figures ---------------------------------------------

def epoch_curves(costs):
    """Per-epoch means from test_cA's costs (epochs, n_batches, 2):
    (mean reconstruction cost, mean over minibatches of sqrt(L_jacob)),
    the two numbers of test_cA's per-epoch log line."""
    costs = numpy.asarray(costs, dtype=numpy.float64)
    return costs[:, :, 0].mean(axis=1), numpy.sqrt(costs[:, :, 1]).mean(axis=1)


def _new_figure(figsize):
    """A matplotlib Figure drawn by the Agg renderer (no display, and no
    change to pyplot's global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path):
    """Render fig as PNG into memory, then write the bytes atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png')
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
    return path


def plot_spectrum(spectra, path):
    """Mean singular value of J against its rank, log scale on the values.

    spectra: {label: (K,) mean singular values, decreasing}.
    """
    fig = _new_figure((7, 4.5))
    ax = fig.add_subplot()
    for label, values in spectra.items():
        ax.semilogy(numpy.arange(1, len(values) + 1), values, label=label)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel('rank k of the singular value')
    ax.set_ylabel('mean singular value of J = dh/dx')
    ax.set_title('Spectrum of the Jacobian at test digits')
    ax.grid(True, which='major', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_contraction(radii, ratios, path, distances=None):
    """Mean contraction ratio against the radius r, log scale on r.

    ratios: {label: (n_radii,)}; distances: {name: value} drawn as
    vertical lines (the typical distances between digits).
    """
    fig = _new_figure((7, 4.5))
    ax = fig.add_subplot()
    for label, values in ratios.items():
        ax.semilogx(radii, values, marker='o', markersize=3, label=label)
    styles = iter(['--', ':', '-.'])
    for name, value in (distances or {}).items():
        ax.axvline(value, color='grey', linestyle=next(styles, '--'),
                   label='%s = %.2f' % (name.replace('_', ' '), value))
    ax.set_xlabel('radius r = ||x1 - x0|| (pixels in [0, 1])')
    ax.set_ylabel('mean ||h(x1) - h(x0)|| / ||x1 - x0||')
    ax.set_title('Contraction curves: random directions around test digits')
    ax.set_ylim(bottom=0)
    ax.grid(True, which='major', alpha=0.3)
    ax.legend(fontsize='small')
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training(costs, path):
    """Per-epoch mean reconstruction cost and mean ||J||_F of each model.

    costs: {label: test_cA's costs array (epochs, n_batches, 2)}.
    """
    fig = _new_figure((10, 4))
    ax_rec, ax_jac = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for label, c in costs.items():
        reconstruction, jacobian_norm = epoch_curves(c)
        epochs = numpy.arange(1, len(reconstruction) + 1)
        ax_rec.plot(epochs, reconstruction, marker='o', markersize=3,
                    label=label)
        ax_jac.plot(epochs, jacobian_norm, marker='o', markersize=3,
                    label=label)
    ax_rec.set_ylabel('mean reconstruction cross-entropy (nats / digit)')
    ax_jac.set_ylabel('mean ||J||_F = mean sqrt(L_jacob)')
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_rec, ax_jac):
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle('Training curves (means over each epoch\'s minibatches)')
    fig.tight_layout()
    return save_figure(fig, path)


# ---- the whole analysis --------------------------------------------------------

def check_settings(n_examples, n_radii, min_radius_factor, max_radius_factor,
                   saturation_threshold, classifier_epochs,
                   classifier_learning_rate, classifier_batch_size):
    """Raise ConfigError for values the analysis cannot use."""
    if not is_integer(n_examples) or n_examples < 2:
        raise ConfigError('n_examples must be an integer >= 2, got %r'
                          % (n_examples,))
    for name, value in [('n_radii', n_radii),
                        ('classifier_epochs', classifier_epochs),
                        ('classifier_batch_size', classifier_batch_size)]:
        if not is_integer(value) or value < 1:
            raise ConfigError('%s must be a positive integer, got %r'
                              % (name, value))
    if not (numpy.isfinite(min_radius_factor) and
            numpy.isfinite(max_radius_factor) and
            0 < min_radius_factor < max_radius_factor):
        raise ConfigError('the radius factors must be finite with 0 < '
                          'min_radius_factor < max_radius_factor, got %r '
                          'and %r' % (min_radius_factor, max_radius_factor))
    if not 0 < saturation_threshold < 0.5:
        raise ConfigError('saturation_threshold must be in (0, 0.5), got %r'
                          % (saturation_threshold,))
    if not (numpy.isfinite(classifier_learning_rate) and
            classifier_learning_rate > 0):
        raise ConfigError('classifier_learning_rate must be a positive '
                          'finite number, got %r'
                          % (classifier_learning_rate,))


def _jsonable(value):
    """value with numpy types turned into Python ones and NaN into None."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, numpy.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (numpy.integer,)):
        return int(value)
    if isinstance(value, (float, numpy.floating)):
        return float(value) if numpy.isfinite(value) else None
    return value


def _fmt(values, spec='%.3g'):
    return ' '.join(spec % v for v in values)


def run_analysis(training_epochs=20, n_examples=500,
                 dataset=mnist_data.DEFAULT_PATH, output_folder='cA_plots',
                 contraction_level=0.1, n_hidden=500, learning_rate=0.01,
                 batch_size=10, seed=123, n_radii=13, min_radius_factor=1e-3,
                 max_radius_factor=3.0, saturation_threshold=0.05,
                 classifier_epochs=1000, classifier_learning_rate=0.13,
                 classifier_batch_size=600, log=None):
    """Train a CAE and a plain AE identically; run every analysis on both.

    The CAE is test_cA with contraction_level (0.1), the AE the same call
    with contraction_level=0: same data order, same initial W (seed), same
    learning rate, epochs and batch size. Their filters go to
    output_folder/cae/cae_filters.png and output_folder/ae/cae_filters.png.

    On the first n_examples test digits: the Jacobian's spectrum and the
    contraction curves (one direction per digit, the same for both models,
    drawn from RandomState(seed)); radii are log-spaced from
    min_radius_factor to max_radius_factor times the median distance from
    a test digit to its nearest training digit. On the whole test set:
    the mean ||J||_F and the fraction of saturated units (h < threshold or
    h > 1 - threshold). Then a logistic regression (classifier_* settings,
    early stopping on the validation set) on each model's code and on the
    raw pixels.

    Writes output_folder/analysis_spectrum.png, analysis_contraction.png,
    analysis_training.png and analysis.json (every number), atomically,
    prints progress and a summary to ``log`` (default sys.stdout), and
    returns the dict written to analysis.json. Bad settings raise
    cA.ConfigError, a bad dataset mnist_data.DatasetError.
    """
    log = sys.stdout if log is None else log
    start = time.perf_counter()
    arguments = locals()
    settings = {name: arguments[name]
                for name in inspect.signature(run_analysis).parameters
                if name != 'log'}

    def say(message):
        print(message, file=log, flush=True)

    cA_module.check_settings(learning_rate, training_epochs, batch_size,
                             contraction_level, n_hidden, seed, 'fused')
    check_settings(n_examples, n_radii, min_radius_factor, max_radius_factor,
                   saturation_threshold, classifier_epochs,
                   classifier_learning_rate, classifier_batch_size)
    folder = outputs.OutputFolder(output_folder)
    folder.__enter__()
    datasets = read_data(dataset)
    (train_x, _), _, (test_x, _) = datasets
    if n_examples > len(test_x):
        raise ConfigError('n_examples %d is more than the %d test digits'
                          % (n_examples, len(test_x)))
    X = test_x[:n_examples].astype(numpy.float64)

    say('typical distances (Euclidean, pixels in [0, 1]) of the first %d '
        'test digits...' % n_examples)
    distances = typical_distances(X, train_x)
    scale = distances['median_nearest_neighbour']
    radii = log_spaced_radii(scale, min_radius_factor, max_radius_factor,
                             n_radii)
    say('  median distance to the nearest of the %d training digits %.3f; '
        'median distance between two test digits %.3f'
        % (len(train_x), scale, distances['median_pairwise']))
    say('  %d radii from %.3g to %.3g (%g to %g x the nearest-neighbour '
        'distance); x0 + r u may leave [0, 1]^784, which the encoder '
        'accepts' % (n_radii, radii[0], radii[-1], min_radius_factor,
                     max_radius_factor))
    directions = random_directions(n_examples, X.shape[1],
                                   numpy.random.RandomState(seed))

    levels = {'cae': contraction_level, 'ae': 0.0}
    results = {}
    costs = {}
    for key, label in MODELS:
        say('training the %s (contraction_level=%g, %d epochs, %d hidden '
            'units)...' % (label, levels[key], training_epochs, n_hidden))
        trained = test_cA(learning_rate=learning_rate,
                          training_epochs=training_epochs, dataset=dataset,
                          batch_size=batch_size,
                          output_folder=os.path.join(output_folder, key),
                          contraction_level=levels[key], n_hidden=n_hidden,
                          seed=seed, log=log)
        W = trained.ca.W.get_value().astype(numpy.float64)
        b = trained.ca.b.get_value().astype(numpy.float64)
        encode = encoder(W, b)
        costs[label] = trained.costs
        reconstruction, jacobian_norm = epoch_curves(trained.costs)

        t = time.perf_counter()
        spectrum = mean_singular_values(W, b, X)
        say('  %s Jacobian spectrum over %d test digits (%.1f s): mean '
            'singular values, ranks 1-5: %s'
            % (label, n_examples, time.perf_counter() - t,
               _fmt(spectrum[:5])))
        ratios = contraction_ratios(encode, X, radii, None,
                                    directions=directions)
        say('  %s contraction ratio at r = %.3g: %.4g, at r = %.3g: %.4g'
            % (label, radii[0], ratios[0], radii[-1], ratios[-1]))
        frobenius = float(jacobian_frobenius_norms(W, b, test_x).mean())
        saturated = saturated_fraction(hidden_values(W, b, test_x),
                                       saturation_threshold)
        say('  %s over the %d test digits: mean ||J||_F %.4g; saturated '
            'units %.2f %%' % (label, len(test_x), frobenius,
                               100 * saturated))
        say('  logistic regression on the %s code (%d features)...'
            % (label, n_hidden))
        valid_error, test_error = classifier_errors(
            datasets, encode, classifier_learning_rate, classifier_epochs,
            classifier_batch_size, log)
        results[key] = {
            'label': label,
            'contraction_level': levels[key],
            'training_time_s': trained.training_time,
            'filters': trained.filters_path,
            'epoch_reconstruction_cost': reconstruction,
            'epoch_jacobian_norm': jacobian_norm,
            'singular_values_mean': spectrum,
            'contraction_ratios': ratios,
            'jacobian_frobenius_norm_mean': frobenius,
            'saturated_fraction': saturated,
            'classifier_valid_error': valid_error,
            'classifier_test_error': test_error,
        }

    say('logistic regression on the raw pixels (784 features)...')
    raw_valid, raw_test = classifier_errors(
        datasets, None, classifier_learning_rate, classifier_epochs,
        classifier_batch_size, log)

    figures = {name: os.path.join(output_folder, file_name)
               for name, file_name in FIGURES.items()}
    plot_spectrum({results[k]['label']: results[k]['singular_values_mean']
                   for k, _ in MODELS}, figures['spectrum'])
    plot_contraction(radii, {results[k]['label']:
                             results[k]['contraction_ratios']
                             for k, _ in MODELS},
                     figures['contraction'],
                     {'median nearest-neighbour distance': scale,
                      'median pairwise distance':
                          distances['median_pairwise']})
    plot_training(costs, figures['training'])
    for path in figures.values():
        say('wrote %s' % path)

    total = time.perf_counter() - start
    report = {
        'settings': settings,
        'n_train': len(train_x), 'n_test': len(test_x),
        'typical_distances': distances,
        'radii': radii,
        'models': results,
        'raw_pixels': {'classifier_valid_error': raw_valid,
                       'classifier_test_error': raw_test},
        'figures': figures,
        'total_time_s': total,
    }
    report = _jsonable(report)
    json_path = os.path.join(output_folder, JSON_NAME)
    with atomic_write(json_path, 'w') as f:
        json.dump(report, f, indent=1, allow_nan=False)
        f.write('\n')
    say('wrote %s' % json_path)
    print_summary(report, log)
    return report


run_analysis.__test__ = False


def print_summary(report, log):
    """The numbers of a run_analysis report, as a few readable lines."""
    def say(message=''):
        print(message, file=log, flush=True)

    models = [report['models'][key] for key, _ in MODELS]
    labels = [m['label'] for m in models]
    s = report['settings']
    d = report['typical_distances']
    say()
    say('summary (%d test digits; Euclidean distances, pixels in [0, 1])'
        % s['n_examples'])
    say('  typical distance: median to the nearest training digit %.3f, '
        'median between two test digits %.3f'
        % (d['median_nearest_neighbour'], d['median_pairwise']))
    say('  mean singular values of J = dh/dx, ranks 1-10:')
    for m in models:
        say('    %-4s %s' % (m['label'], _fmt(m['singular_values_mean'][:10],
                                              '%.4g')))
    say('  mean contraction ratio ||h(x1) - h(x0)|| / ||x1 - x0||:')
    say('    %10s  %s' % ('radius', '  '.join('%8s' % l for l in labels)))
    for k, r in enumerate(report['radii']):
        say('    %10.4g  %s' % (r, '  '.join('%8.4g' % m['contraction_ratios'][k]
                                            for m in models)))
    say('  mean ||J||_F over the %d test digits: %s'
        % (report['n_test'], '  '.join('%s %.4g' % (
            m['label'], m['jacobian_frobenius_norm_mean']) for m in models)))
    t = s['saturation_threshold']
    say('  saturated hidden units (h < %g or h > %g): %s'
        % (t, 1 - t, '  '.join('%s %.2f %%' % (
            m['label'], 100 * m['saturated_fraction']) for m in models)))

    def percent(error):
        return 'n/a' if error is None else '%.2f %%' % (100 * error)

    say('  logistic regression test error: %s  raw pixels %s'
        % ('  '.join('%s code %s' % (m['label'],
                                     percent(m['classifier_test_error']))
                     for m in models),
           percent(report['raw_pixels']['classifier_test_error'])))
    total = report['total_time_s']
    say('  total time %.2f min (%.1f s)' % (total / 60, total))


# ---- command line ----------------------------------------------------------------

def parse_args(argv=None):
    """The command line; every default comes from run_analysis's signature."""
    defaults = {name: p.default for name, p
                in inspect.signature(run_analysis).parameters.items()}
    parser = argparse.ArgumentParser(
        description='Train a contractive auto-encoder and a plain '
                    'auto-encoder identically on MNIST, then write the '
                    "paper's analyses: the Jacobian's spectrum, contraction "
                    'curves, ||J||_F, saturation and the code as features '
                    'for a logistic regression (figures and analysis.json).')

    def add(flag, dest, kind, text):
        parser.add_argument(flag, dest=dest, type=kind,
                            default=defaults[dest],
                            help=text + ' (default: %(default)s)')

    add('--epochs', 'training_epochs', int,
        'training epochs of each auto-encoder')
    add('--n-examples', 'n_examples', int,
        'test digits for the spectrum and the contraction curves (the '
        'first ones of the test set)')
    parser.add_argument('--dataset', default=defaults['dataset'],
                        help='the mnist.pkl.gz file; fetched when missing '
                             '(default: data/mnist.pkl.gz)')
    add('--output-folder', 'output_folder', str,
        'where the figures, analysis.json and the cae/ and ae/ filter '
        'images are written')
    add('--contraction-level', 'contraction_level', float,
        "the CAE's lambda (the plain auto-encoder always has 0)")
    add('--n-hidden', 'n_hidden', int, 'hidden units of each auto-encoder')
    add('--learning-rate', 'learning_rate', float,
        'SGD step size of the auto-encoders')
    add('--batch-size', 'batch_size', int,
        'minibatch size of the auto-encoders')
    add('--seed', 'seed', int,
        'seed of the initial W (the same for both models) and of the '
        'random directions')
    add('--n-radii', 'n_radii', int, 'radii of the contraction curves')
    add('--min-radius-factor', 'min_radius_factor', float,
        'smallest radius, as a multiple of the median nearest-neighbour '
        'distance')
    add('--max-radius-factor', 'max_radius_factor', float,
        'largest radius, as a multiple of the median nearest-neighbour '
        'distance')
    add('--saturation-threshold', 'saturation_threshold', float,
        'a unit is saturated when h < t or h > 1 - t')
    add('--classifier-epochs', 'classifier_epochs', int,
        'most epochs of each logistic regression (it stops early on the '
        'validation set)')
    add('--classifier-learning-rate', 'classifier_learning_rate', float,
        'SGD step size of the logistic regressions')
    add('--classifier-batch-size', 'classifier_batch_size', int,
        'minibatch size of the logistic regressions')
    return parser.parse_args(argv)


def main(argv=None):
    args = vars(parse_args(argv))
    return cli.main(lambda **_: run_analysis(**args), cli.ArgumentParser(), [])


if __name__ == '__main__':
    sys.exit(main())
