"""The stock cA's SGD step with its gradient derived by hand, as a graph
(``--gradient fused``): the derivation the kernel (op.py, cae_step.cpp)
computes, written with the stack's own Ops. tests/test_fused.py holds it
to cA.get_cost_updates (T.grad).

With n rows in the minibatch, a = x W + b and h = sigmoid(a) (eq. (1) of
cA.cA), a' = h W' + b' and z = sigmoid(a') (eq. (3)), s = h (1 - h) (the
slope of the sigmoid at a) and c_j = sum_i W_ij^2 (eq. (5)), the chain rule
through eqs. (1)-(6) gives

    dcost/da'  = (z - x) / n =: d_z                                    (7)
    dcost/da   = (d_z W + (2 lambda / n) c s (1 - 2h)) s =: d_h         (8)
    dcost/dW   = x^T d_h + d_z^T h + 2 lambda W diag(m),
                 m_j = mean over the batch of s_j^2                    (9)
    dcost/db   = sum_batch d_h,   dcost/db' = sum_batch d_z            (10)

(7) is the familiar sigmoid-with-cross-entropy gradient; in (8) the first
term comes through the reconstruction, the second through the penalty's
factor (h (1 - h))^2; in (9) W appears in h, in z (as W') and in c. The
SGD step on W is then

    W <- W (1 - 2 eta lambda m) - eta [x; d_z]^T [d_h; h]

with the two outer products of (9) stacked into one matrix product over
2n rows, which the stack runs as a single in-place GEMM on W.

Two more forms that are faster than the class's plainest ones and compute
the same numbers: L_rec as sum_k softplus(a'_k) - x_k a'_k, equal to eq.
(4) since log z = -softplus(-a') and softplus(-a') = softplus(a') - a'
(one softplus per pixel instead of two logarithms), and the column norms
c as the product ones . W**2, a BLAS gemv, which reads W about 15 % of a
training step faster than a Sum over its rows.
"""
from ..backend import theano, T, sigmoid, softplus


def column_norms(W):
    """c_j = sum_i W_ij^2 as a gemv: (n_hidden,)."""
    # ones (n_visible,) . W**2 (n_visible, n_hidden)
    return T.dot(T.ones_like(W[:, 0]), W ** 2)


def get_cost_updates(ca, contraction_level, learning_rate):
    """The cost and SGD step of ca.get_cost_updates for the stock cA,
    eqs. (7)-(10) above. Sets ca.L_rec (batch,) and ca.L_jacob (a scalar)
    as get_cost_updates does. Returns (cost, updates)."""
    lam, eta = [v if isinstance(v, T.Variable)
                else T.constant(v, dtype=theano.config.floatX)
                for v in (contraction_level, learning_rate)]
    x, W = ca.x, ca.W
    n = T.cast(x.shape[0], theano.config.floatX)
    h = sigmoid(T.dot(x, W) + ca.b)
    a_prime = T.dot(h, W.T) + ca.b_prime
    z = sigmoid(a_prime)
    s = h * (1 - h)
    c = column_norms(W)
    ca.L_rec = T.sum(softplus(a_prime) - x * a_prime, axis=1)
    ca.L_jacob = T.mean(T.dot(s ** 2, c))  # eq. (5), averaged
    cost = T.mean(ca.L_rec) + lam * ca.L_jacob
    d_z = (z - x) / n  # (7)
    d_h = (T.dot(d_z, W) + (2 * lam / n) * c * s * (1 - 2 * h)) * s  # (8)
    m = T.mean(s ** 2, axis=0)
    # (n_visible, 2n) . (2n, n_hidden): both outer products of eq. (9)
    outer = T.dot(T.concatenate([x, d_z]).T, T.concatenate([d_h, h]))
    updates = [(W, W * (1 - 2 * eta * lam * m) - eta * outer),
               (ca.b, ca.b - eta * T.sum(d_h, axis=0)),  # (10)
               (ca.b_prime, ca.b_prime - eta * T.sum(d_z, axis=0))]
    return cost, updates
