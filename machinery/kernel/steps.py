"""Which SGD step trains a cA: the class's own graph, or the kernel where it
provably computes the same thing.

``faster_equivalent(ca, cost, updates, ..., gradient)`` is the one place
where the choice is made (cA.py and ScA.py both call it, with what
``ca.get_cost_updates`` built):

- 'auto' (the default): the graph that ``ca.get_cost_updates`` builds, as
  the reader sees it. When that graph is, node for node, the graph of the
  stock cA (written out below by ``stock_graph``, independently of the
  class), the kernel takes over: it computes that very step as one
  compiled Op. Any edit to the class's cost, penalty or update makes the
  graphs differ, and then the graph as written is trained. This is what
  the stack's own optimizer does when it swaps a subgraph for a faster
  equivalent, done once on the whole step.
- 'T.grad': ``ca.get_cost_updates``'s graph as written, always.
- 'fused': ``ca.get_fused_cost_updates``, the hand-derived gradient as a
  graph.
- 'kernel': the kernel, always (it computes the stock cA's step, whatever
  the class says; for benchmarks).

The comparison is structural (``equal_computations``: the same Ops on the
same inputs, constants by value), so it never calls two different graphs
the same; two graphs that compute the same numbers in another form count
as different, and train as written.
"""
from ..backend import theano, T, sigmoid, equal_computations
from . import op


def stock_graph(x, W, b, b_prime, contraction_level, learning_rate):
    """The stock cA's cost and SGD step on (x, W, b, b_prime), built here
    and not by the class: eqs. (1)-(6) of cA.cA, then T.grad. Returns
    (cost, updates, L_rec, L_jacob) in the form cA.get_cost_updates builds
    them, so that the two can be compared node for node."""
    lam, eta = [v if isinstance(v, T.Variable)
                else T.constant(v, dtype=theano.config.floatX)
                for v in (contraction_level, learning_rate)]
    h = sigmoid(T.dot(x, W) + b)
    z = sigmoid(T.dot(h, W.T) + b_prime)
    L_rec = -T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), axis=1)
    column_norms = T.dot(T.ones_like(W[:, 0]), W ** 2)
    L_jacob = T.mean(T.dot((h * (1 - h)) ** 2, column_norms))
    cost = T.mean(L_rec) + lam * L_jacob
    params = [W, b, b_prime]
    updates = [(p, p - eta * g) for p, g in zip(params, T.grad(cost, params))]
    return cost, updates, L_rec, L_jacob


def is_stock_step(ca, cost, updates, contraction_level, learning_rate):
    """Whether (cost, updates) and ca.L_rec, ca.L_jacob, as
    ca.get_cost_updates built them, are the stock cA's graph on the same
    input and parameters with the same settings."""
    if len(updates) != 3 or [p for p, _ in updates] != [ca.W, ca.b,
                                                        ca.b_prime]:
        return False
    ref_cost, ref_updates, ref_L_rec, ref_L_jacob = stock_graph(
        ca.x, ca.W, ca.b, ca.b_prime, contraction_level, learning_rate)
    return equal_computations(
        [cost, ca.L_rec, ca.L_jacob] + [new for _, new in updates],
        [ref_cost, ref_L_rec, ref_L_jacob] + [new for _, new in ref_updates])


def faster_equivalent(ca, cost, updates, contraction_level, learning_rate,
                      gradient='auto'):
    """The updates to compile for ``ca``, whose get_cost_updates built
    (cost, updates), and a phrase saying which step they are and why (see
    the module docstring for ``gradient``). Where another step is chosen,
    ca.L_rec and ca.L_jacob become that step's, as get_cost_updates sets
    them."""
    if gradient == 'T.grad':
        return updates, ("get_cost_updates's graph as written "
                         "(--gradient T.grad)")
    if gradient == 'fused':
        _, updates = ca.get_fused_cost_updates(contraction_level,
                                               learning_rate)
        return updates, "get_fused_cost_updates's graph (--gradient fused)"
    if gradient == 'kernel':
        _, updates = op.get_cost_updates(ca, contraction_level, learning_rate)
        return updates, 'the kernel (--gradient kernel)'
    if not is_stock_step(ca, cost, updates, contraction_level, learning_rate):
        return updates, ("get_cost_updates's graph as written (it differs "
                         "from the stock graph, so the kernel does not take "
                         "over)")
    _, updates = op.get_cost_updates(ca, contraction_level, learning_rate)
    return updates, ('the kernel (get_cost_updates built the stock graph, '
                     'whose step the kernel computes as one Op)')
