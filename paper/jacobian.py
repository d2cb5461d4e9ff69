"""What the paper measures of an encoder h = sigmoid(x W + b): its
Jacobian, its saturation and how it contracts the space around the data.

The notation is cA.py's: sigmoid(a) = 1 / (1 + exp(-a)), h = sigmoid(x W +
b) the code, s = h (1 - h) the slope of the sigmoid at each hidden unit, so
that J = W diag(s). W is (n_visible, n_hidden), b is (n_hidden,), and X
holds N examples, one per row. Every function here works on numpy arrays
(no stack, no files) and can be used on your own W and b; analysis.py and
table1.py beside it run them on trained models.
"""
import numpy
import scipy.special

from machinery import checks


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


# ---- the paper's Table 1 columns --------------------------------------------

def pretrained_layer(W, b, X, threshold=0.05):
    """The paper's measures of a pre-trained encoder h = sigmoid(x W + b),
    before fine-tuning, averaged over the rows x of X (the test digits):

    jacobian_frobenius_norm: the mean of ||J(x)||_F (analysis.py's
        jacobian_frobenius_norms), as cA.py and analysis.py report it;
    jacobian_mean_square_entry: the mean of ||J(x)||_F^2 / (d_x d_h), the
        mean squared entry of J (784 x 1000 entries here). The paper's
        column "Av. ||J_f(x)||_F" is of this size (CAE 0.73e-4 for a
        ||J||_F near 8), not of ||J||_F's;
    saturated_fraction: SAT, the mean fraction of hidden units with
        h < threshold or h > 1 - threshold.
    """
    norms = jacobian_frobenius_norms(W, b, X)
    return {'jacobian_frobenius_norm': float(norms.mean()),
            'jacobian_mean_square_entry':
                float(numpy.mean(norms ** 2) / W.size),
            'saturated_fraction': saturated_fraction(
                hidden_values(W, b, X), threshold),
            'saturation_threshold': threshold}
