"""The paper's analyses: how a contractive auto-encoder contracts its input.

Rifai et al. (ICML 2011) argue that the penalty lambda * ||J(x)||_F^2
makes the encoder h = sigmoid(x W + b) insensitive to most small moves of
x, while the reconstruction term forces it to stay sensitive along the few
directions in which the training digits actually vary (the tangent
directions of the data manifold). This module measures that, for a CAE
(``contraction_level=0.1``, test_cA's default) and, beside it, a plain
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

The notation is cA.py's: sigmoid(a) = 1 / (1 + exp(-a)), h = sigmoid(x W +
b) the code, s = h (1 - h) the slope of the sigmoid at each hidden unit, so
that J = W diag(s). W is (n_visible, n_hidden), b is (n_hidden,), and X
holds N examples, one per row. Every function below works on numpy arrays
and can be used on your own W and b.

Run everything (trains both models, writes figures and analysis.json):

    .venv/bin/python analysis.py                # the full run
    .venv/bin/python analysis.py --help         # every option
    .venv/bin/python analysis.py --epochs 1 --n-examples 50 \\
        --classifier-epochs 20                  # a quick look

(their times are in docs/analyses.md). The quick look trains each
model for one epoch and stops each logistic regression after 20 epochs:
its numbers show the trend (the CAE contracts more, saturates more and
classifies better than the AE), not the paper's values.

It prints one line per step of each model, with the time the step took;
``--verbose`` adds the logistic regressions' own progress. The two
trainings are test_cA runs in output_folder/cae and output_folder/ae,
which belong to the analysis: analysis.py cannot resume, so a run that was
interrupted (Ctrl-C) leaves a checkpoint there that the next run replaces,
starting both trainings over (test_cA's ``restart=True``).

Importing this module has no side effects (no files, no data, no
compilation). The stack (Theano or PyTensor) is imported only by the
functions that read data, train or classify, and matplotlib only by the
plotting functions (which draw with the Agg renderer and need no
display): ``--help`` and a mistake in the settings answer at once, and a
Ctrl-C while the stack loads ends in one line, like one at any later
moment.
"""
import os
import sys
import time

if __name__ == '__main__':
    from machinery import start_script
    start_script(__file__)

import numpy
import scipy.special

from machinery import checkpoints
from machinery import checks
from machinery import commands
from machinery import mnist_data
from machinery import outputs
from machinery import reports
from machinery.training import output_names
from machinery import resources
from machinery.checks import ConfigError

FIGURES = {'spectrum': 'analysis_spectrum.png',
           'contraction': 'analysis_contraction.png',
           'training': 'analysis_training.png'}
JSON_NAME = 'analysis.json'


# ---- the encoder and its Jacobian -------------------------------------------

def hidden_values(W, b, X):
    """h = sigmoid(X W + b), the code of every row of X: (N, n_hidden),
    float64.

    The sigmoid is scipy.special.expit (no overflow warning for large |a|).
    """
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    return scipy.special.expit(X @ numpy.asarray(W, dtype=numpy.float64) +
                               numpy.asarray(b, dtype=numpy.float64))


def encoder(W, b, chunk_size=5000):
    """A numpy function X (N, n_visible) -> h (N, n_hidden).

    It encodes chunk_size rows at a time, so that encoding the 50,000
    training digits does not build one 50,000 x 784 float64 copy.
    """
    W = numpy.asarray(W, dtype=numpy.float64)
    b = numpy.asarray(b, dtype=numpy.float64)

    def encode(X):
        X = numpy.atleast_2d(X)
        h = numpy.empty((X.shape[0], W.shape[1]))
        for start in range(0, X.shape[0], chunk_size):
            h[start:start + chunk_size] = hidden_values(
                W, b, X[start:start + chunk_size])
        return h

    return encode


def jacobian_singular_values(W, b, X, chunk_size=50):
    """The singular values of J(x) = dh/dx at every row x of X.

    h_j depends on x only through a_j = sum_i x_i W_ij + b_j, and
    sigmoid'(a) = sigmoid(a) (1 - sigmoid(a)), so in the (n_visible,
    n_hidden) layout of W (cA.py's eq. 2)

        J_ij = dh_j / dx_i = W_ij s_j,   J = W diag(s),   s = h (1 - h).

    A first-order move dx of the input (a row) moves the code by dh = dx J,
    so the singular values sigma_1 >= sigma_2 >= ... of J are the factors
    by which h stretches (sigma > 1) or contracts (sigma < 1) the input
    along its principal directions (the left singular vectors of J), and a
    fast decay of the sigma_k means that only a few input directions
    change the code at all.

    Computation. When n_visible > n_hidden, W = Q R (reduced QR, Q with
    orthonormal columns, R square n_hidden x n_hidden) gives J = Q (R
    diag(s)), and multiplying by Q does not change singular values: the SVD
    of the n_hidden x n_hidden matrix R diag(s) gives the same numbers
    (about twice as fast for 784 x 500, and no squaring of J, so small
    values keep their precision). numpy.linalg.svd (compute_uv=False) runs
    on chunk_size examples at a time; 50 examples of 500 x 500 float64 are
    100 MB.

    Returns an (N, min(n_visible, n_hidden)) float64 array, each row
    sorted in decreasing order.
    """
    W = numpy.asarray(W, dtype=numpy.float64)
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    n_visible, n_hidden = W.shape
    # the matrix whose columns s scales: R (same singular values) or W
    M = numpy.linalg.qr(W, mode='r') if n_visible > n_hidden else W
    sigma = numpy.empty((X.shape[0], min(n_visible, n_hidden)))
    for start in range(0, X.shape[0], chunk_size):
        h = hidden_values(W, b, X[start:start + chunk_size])
        s = h * (1 - h)
        # (chunk, 1, n_hidden) * (1, rows, n_hidden): M diag(s), per example
        stack = s[:, None, :] * M[None, :, :]
        sigma[start:start + chunk_size] = numpy.linalg.svd(stack,
                                                           compute_uv=False)
    return sigma


def mean_singular_values(W, b, X, chunk_size=50):
    """The spectrum averaged over the rows of X: mean_x sigma_k(J(x)),
    (min(n_visible, n_hidden),), decreasing in k."""
    return jacobian_singular_values(W, b, X, chunk_size).mean(axis=0)


def jacobian_frobenius_norms(W, b, X):
    """||J(x)||_F for every row x of X: (N,).

    From J_ij = W_ij s_j, the factor s_j^2 does not depend on i, so

        ||J(x)||_F^2 = sum_ij J_ij^2 = sum_j s_j^2 sum_i W_ij^2,

    one (N, n_hidden) x (n_hidden,) product (cA.py's eq. 5). Note that
    ||J||_F^2 = sum_k sigma_k^2: the norm summarises the whole spectrum.
    """
    W = numpy.asarray(W, dtype=numpy.float64)
    h = hidden_values(W, b, X)
    s = h * (1 - h)
    return numpy.sqrt((s ** 2) @ numpy.sum(W ** 2, axis=0))


def saturated_fraction(H, threshold=0.05):
    """The fraction of the entries of H (codes, values in [0, 1]) that are
    saturated: h < threshold or h > 1 - threshold (strictly).

    Averaged over all the entries, i.e. the mean over examples of the
    fraction of each example's hidden units that are saturated. A
    saturated unit has a slope s = h (1 - h) < threshold, so its column of
    J = W diag(s) is nearly zero: saturation is one way of contracting,
    and the paper reports that the CAE saturates many more units than an
    auto-encoder. ConfigError unless 0 < threshold < 0.5.
    """
    checks.check_saturation_threshold(threshold)
    H = numpy.asarray(H)
    return float(numpy.mean((H < threshold) | (H > 1 - threshold)))


# ---- contraction curves -----------------------------------------------------

def random_directions(N, dim, rng):
    """N directions uniform on the unit sphere of R^dim: (N, dim).

    A standard normal vector g is rotation invariant, so its direction
    g / ||g|| is uniform on the sphere. rng is a numpy RandomState (or
    Generator): the same seed gives the same directions.
    """
    g = rng.standard_normal((N, dim))
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

    encode: numpy (N, d) -> (N, n_hidden). For a linear map h(x) = x A the
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
    sphere of R^d (``random_directions(N, d, rng)``; or the given
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


def largest_distance(X, chunk_size=500):
    """The largest Euclidean distance between two rows of X, and the pair
    of rows (i, j), i < j, at that distance.

    Exact, without the N^2 / 2 distances of a brute-force search: with the
    squared norms n_i = ||x_i||^2, every distance obeys

        ||x_i - x_j||^2 = n_i + n_j - 2 x_i.x_j <= (sqrt(n_i) + sqrt(n_j))^2,

    and n_i + n_j when no product x_i.x_j is negative (pixels in [0, 1]).
    The rows are visited in decreasing norm, chunk_size at a time, each
    against the later rows whose bound can still beat the best distance
    found; the search ends when no pair left can. For MNIST's 50,000
    training digits it computes the distances of a few thousand rows.
    """
    X = numpy.atleast_2d(numpy.asarray(X, dtype=numpy.float64))
    if X.shape[0] < 2:
        raise ValueError('largest_distance needs at least 2 rows in X')
    norms_sq = numpy.sum(X ** 2, axis=1)
    order = numpy.argsort(-norms_sq, kind='stable')
    sorted_sq = norms_sq[order]
    nonnegative = bool(numpy.all(X >= 0))

    def bound(a_sq, b_sq):  # the most ||x - y||^2 can be, from the norms
        if nonnegative:
            return a_sq + b_sq
        return (numpy.sqrt(a_sq) + numpy.sqrt(b_sq)) ** 2

    best_sq, pair = -1.0, (0, 1)
    for start in range(0, len(order), chunk_size):
        if bound(sorted_sq[start], sorted_sq[start]) <= best_sq:
            break  # later pairs have smaller norms still
        # the later rows j whose pair with the chunk's largest row may win
        # (a prefix: the bound falls with j)
        stop = start + int(numpy.sum(bound(sorted_sq[start],
                                           sorted_sq[start:]) > best_sq))
        rows = order[start:min(start + chunk_size, stop)]
        others = order[start:stop]
        sq = norms_sq[rows, None] + norms_sq[None, others] - \
            2 * X[rows] @ X[others].T  # (chunk, candidates)
        k = numpy.unravel_index(numpy.argmax(sq), sq.shape)
        if sq[k] > best_sq:
            best_sq, pair = sq[k], (rows[k[0]], others[k[1]])
    i, j = sorted(int(n) for n in pair)
    # the winner's distance without the cancellation of the expansion
    return float(numpy.linalg.norm(X[i] - X[j])), (i, j)


def curve_radii(small_radius, largest_radius, n_radii):
    """The radii of a contraction curve: small_radius (the ratio's limit
    r -> 0, where it is ||u J||), then n_radii - 1 >= 1 radii evenly spaced
    up to largest_radius, which the plot shows on a linear axis: the region
    where the ratio is only the Jacobian's action takes one point at its
    left edge, and the rest of the curve the finite moves."""
    step = largest_radius / (n_radii - 1)
    return numpy.concatenate([[small_radius],
                              step * numpy.arange(1, n_radii)])


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


# ---- training curves and figures --------------------------------------------

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
    """Render fig as a PNG at path, atomically (outputs.atomic_write)."""
    with outputs.atomic_write(path) as f:
        fig.savefig(f, format='png')
    return path


def plot_spectrum(spectra, path):
    """Mean singular value of J against its rank, log scale on the values.

    spectra: {label: (K,) mean singular values, decreasing}.
    """
    from matplotlib.ticker import MaxNLocator
    fig = _new_figure((7, 4.5))
    ax = fig.add_subplot()
    for label, values in spectra.items():
        ax.semilogy(numpy.arange(1, len(values) + 1), values, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel('rank k of the singular value')
    ax.set_ylabel('mean singular value of J = dh/dx')
    ax.set_title('Spectrum of the Jacobian at test digits')
    ax.grid(True, which='major', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_contraction(radii, ratios, path, distances=None, title=None):
    """Mean contraction ratio against the radius r, on a linear axis.

    ratios: {label: (n_radii,)}; distances: {name: value} drawn as
    vertical lines (the typical distances between digits, the largest
    distance between training digits). radii[0] is the limit r -> 0
    (curve_radii): each curve's value there is drawn as a short dotted
    line across the left edge.
    """
    fig = _new_figure((7, 4.5))
    ax = fig.add_subplot()
    for label, values in ratios.items():
        line, = ax.plot(radii[1:], values[1:], marker='o', markersize=3,
                        label=label)
        ax.plot([0, radii[1]], [values[0], values[0]], linestyle=':',
                color=line.get_color())
        ax.plot([radii[0]], [values[0]], marker='o', markersize=3,
                color=line.get_color())
    styles = iter(['--', ':', '-.', (0, (5, 1, 1, 1))])
    for name, value in (distances or {}).items():
        ax.axvline(value, color='grey', linestyle=next(styles, '--'),
                   label='%s = %.2f' % (name, value))
    ax.set_xlabel('radius r = ||x1 - x0|| (pixels in [0, 1]); dotted: '
                  'the limit r -> 0')
    ax.set_ylabel('mean ||h(x1) - h(x0)|| / ||x1 - x0||')
    ax.set_title(title or 'Contraction curves: random directions around '
                 'test digits')
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, which='major', alpha=0.3)
    ax.legend(fontsize='small')
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training(curves, path):
    """Per-epoch mean reconstruction cost and mean ||J||_F of each model.

    curves: {label: (reconstruction, jacobian_norm)}, each (epochs,), as
    epoch_curves gives them.
    """
    from matplotlib.ticker import MaxNLocator
    fig = _new_figure((10, 4))
    ax_rec, ax_jac = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for label, (reconstruction, jacobian_norm) in curves.items():
        epochs = numpy.arange(1, len(reconstruction) + 1)
        ax_rec.plot(epochs, reconstruction, marker='o', markersize=3,
                    label=label)
        ax_jac.plot(epochs, jacobian_norm, marker='o', markersize=3,
                    label=label)
    ax_rec.set_ylabel('mean reconstruction cross-entropy (nats / digit)')
    ax_jac.set_ylabel('mean ||J||_F = mean sqrt(L_jacob)')
    for ax in (ax_rec, ax_jac):
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle('Training curves (means over each epoch\'s minibatches)')
    fig.tight_layout()
    return save_figure(fig, path)


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

    The CAE is test_cA with contraction_level (0.1), the AE the same call
    with contraction_level=0: same data order, same initial W (seed), same
    learning rate, epochs and batch size. Each trains in a subfolder of
    output_folder, which holds its filters and checkpoint: cae/
    (cae_filters.png) and ae/ (ae_filters.png). An unfinished checkpoint
    there (an interrupted analysis's, or cA.py's) is not thrown away: the
    analysis refuses to start, before reading anything, unless ``resume``
    (go on with it) or ``restart`` (replace it).

    On the first n_examples test digits: the Jacobian's spectrum and the
    contraction curves (one direction per digit, the same for both models,
    drawn from RandomState(seed)) at n_radii radii: the first
    min_radius_factor times the median distance from a test digit to its
    nearest training digit (the limit r -> 0), the others evenly spaced up
    to max_radius_factor times the largest distance between two training
    digits (contraction_radii). On the whole test set:
    the mean ||J||_F and the fraction of saturated units (h < threshold or
    h > 1 - threshold). Then a logistic regression (classifier_* settings,
    early stopping on the validation set) on each model's code and on the
    raw pixels.

    Writes output_folder/analysis_spectrum.png, analysis_contraction.png,
    analysis_training.png and analysis.json (every number), atomically,
    holding output_folder for the whole run (outputs.OutputFolder). Prints
    a line per step, with its time, and a summary to ``log`` (default
    sys.stdout); the classifiers' own lines only when ``verbose``. Returns
    the dict written to analysis.json. A setting it cannot use raises
    ConfigError before anything is read or written (before any training
    for those that depend on the data); a bad dataset DatasetError.
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
    training = dict(training_epochs=training_epochs, dataset=dataset,
                    n_hidden=n_hidden, learning_rate=learning_rate,
                    batch_size=batch_size, seed=seed)
    classifier = dict(learning_rate=classifier_learning_rate,
                      n_epochs=classifier_epochs,
                      batch_size=classifier_batch_size,
                      log=log if verbose else None)
    with outputs.OutputFolder(output_folder) as folder:
        # the trainings' checkpoints, before anything is read: an
        # unfinished one is not thrown away (CheckpointError) unless asked
        resumes = {key: check_training_folder(folder.path(key), level, resume,
                                              restart)
                   for key, _, level in the_two_models(contraction_level)}
        ours = [folder.path(name) for name in [JSON_NAME] +
                list(FIGURES.values())]
        for path in ours:
            # what a killed analysis left half-written (test_cA sees to
            # its own files)
            outputs.remove_dead_temporaries(path)
        outputs.note_replaced(ours, 'an earlier analysis', log)
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
        figures = write_figures(folder, radii, distances, models, log)
        report = write_report(folder.path(JSON_NAME), {
            'settings': settings,
            'n_train': len(train_x), 'n_test': len(test_x),
            'typical_distances': distances,
            'radii': radii,
            'models': models,
            'raw_pixels': raw_pixels,
            'figures': figures,
            'total_time_s': time.perf_counter() - start}, log)
    print_summary(report, log)
    return report


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
    path = os.path.join(folder, output_names(contraction_level)[0])
    if resume:
        # a finished one too: it then trains no epoch (or the more asked)
        return os.path.exists(path)
    checkpoints.TrainingRun(path, restart=restart).check_can_start()
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
    reconstruction, jacobian_norm = epoch_curves(trained.costs)
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


def write_figures(folder, radii, distances, models, log):
    """The three figures, in the output folder; {name: path}."""
    start = time.perf_counter()
    paths = {name: folder.path(file_name)
             for name, file_name in FIGURES.items()}
    plot_spectrum({m['label']: m['singular_values_mean']
                   for m in models.values()}, paths['spectrum'])
    plot_contraction(radii, {m['label']: m['contraction_ratios']
                             for m in models.values()},
                     paths['contraction'],
                     figure_distances(distances))
    plot_training({m['label']: (m['epoch_reconstruction_cost'],
                                m['epoch_jacobian_norm'])
                   for m in models.values()}, paths['training'])
    say(log, 'wrote %s (%.1f s)' % (', '.join(paths.values()),
                                    time.perf_counter() - start))
    return paths


def figure_distances(distances):
    """The vertical lines of a contraction figure: {name: distance}."""
    return {'median test-to-nearest-training distance':
                distances['median_nearest_neighbour'],
            'median distance between test digits':
                distances['median_pairwise'],
            'largest distance between training digits':
                distances['largest_training']}


def write_report(path, report, log):
    """Write analysis.json; returns what was written."""
    report = reports.write_json(path, report)
    say(log, 'wrote %s' % path)
    return report


def _fmt(values, spec='%.3g'):
    return ' '.join(spec % v for v in values)


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
            '%8.4g' % m['contraction_ratios'][k] for m in models)))
    say(log, '  mean ||J||_F over the %d test digits: %s'
        % (report['n_test'], '  '.join('%s %.4g' % (
            m['label'], m['jacobian_frobenius_norm_mean']) for m in models)))
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
