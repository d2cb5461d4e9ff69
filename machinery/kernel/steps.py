"""Which SGD step trains a cA: the class's own graph, or the kernel where it
provably computes the same thing.

``faster_equivalent(ca, cost, updates, ..., gradient)`` is the one place
where the choice is made (cA.py and ScA.py both call it, with what
``ca.get_cost_updates`` built):

- 'auto' (the default): the graph that ``ca.get_cost_updates`` builds, as
  the reader sees it. When that graph is the stock cA's (written out below
  by ``stock_graph``, independently of the class), the kernel takes over:
  it computes that very step as one compiled Op. Any edit to the class's
  cost, penalty or update makes the graphs differ, and then the graph as
  written is trained; the Step's description says what differs.
- 'T.grad': ``ca.get_cost_updates``'s graph as written, always.
- 'fused': the hand-derived gradient as a graph (fused.py).
- 'kernel': the kernel, always (it computes the stock cA's step, whatever
  the class says; for benchmarks).

The comparison is structural (difference_from_stock): the cost, after the
stack's canonical rewrites on both graphs (backend.canonical), has the same
Ops on the same inputs, constants by value, and each update is plain SGD on
that cost. So a rewrite of an equation that the stack itself puts in one form
(``T.sum(W ** 2, axis=0)``, ``(W ** 2).sum(axis=0)``, ``T.sum(T.sqr(W),
axis=0)``) is still recognised, and two graphs that compute different
numbers are never called the same. An equivalent form the rewrites do not
unify (say the column norms as a matrix product) counts as different and
trains as written, which is slower but right.
"""
import hashlib

from ..backend import (STACK, theano, T, sigmoid, Constant,
                       equal_computations, canonical, graph_inputs,
                       graph_text)
from . import fused
from . import op


class Step(object):
    """What build_training compiled: ``str(step)`` says which step and why;
    ``fingerprint`` is 'stack:sha256' of the graph that defines it (the
    class's graph after the canonical rewrites, with the --gradient
    choice), which the checkpoint records so that a resumed run trains the
    same step. The text of a graph differs between the stacks, so only
    fingerprints of one stack can be compared."""

    def __init__(self, description, gradient, defining_graph):
        self.description = description
        # the forward graph after the canonical rewrites, the updates as
        # they are (see difference_from_stock)
        forward, moves = defining_graph[:3], defining_graph[3:]
        inputs = [v for v in graph_inputs(forward)
                  if not isinstance(v, Constant)]
        text = graph_text(canonical(inputs, forward).outputs) + '\n' + \
            graph_text(moves)
        self.fingerprint = '%s:%s' % (STACK.key, hashlib.sha256(
            (gradient + '\n' + text).encode()).hexdigest())

    def __str__(self):
        return self.description


def as_constant(value):
    """A Python number as a floatX constant, as cA.as_floatX makes it."""
    return value if isinstance(value, T.Variable) else \
        T.constant(value, dtype=theano.config.floatX)


def stock_graph(x, W, b, b_prime, contraction_level, learning_rate):
    """The stock cA's cost and SGD step on (x, W, b, b_prime), built here
    and not by the class: eqs. (1)-(6) of cA.cA, then T.grad. Returns the
    list [L_rec, L_jacob, cost, new W, new b, new b_prime]."""
    lam, eta = as_constant(contraction_level), as_constant(learning_rate)
    h = sigmoid(T.dot(x, W) + b)
    z = sigmoid(T.dot(h, W.T) + b_prime)
    L_rec = -T.sum(x * T.log(z) + (1 - x) * T.log(1 - z), axis=1)
    L_jacob = T.mean(T.dot((h * (1 - h)) ** 2, T.sum(W ** 2, axis=0)))
    cost = T.mean(L_rec) + lam * L_jacob
    params = [W, b, b_prime]
    return [L_rec, L_jacob, cost] + [p - eta * g for p, g in
                                     zip(params, T.grad(cost, params))]


# what each of the compared outputs is called in a description, the most
# specific first: an edit of L_rec changes the cost and every update too
OUTPUT_NAMES = ('L_rec (eq. 4)', 'L_jacob (eq. 5)', 'the cost (eq. 6)',
                'the update of W', 'the update of b', 'the update of b_prime')


def class_graph(ca, cost, updates):
    """[L_rec, L_jacob, cost, new values...] as ca.get_cost_updates built
    them."""
    return [ca.L_rec, ca.L_jacob, cost] + [new for _, new in updates]


def difference_from_stock(ca, cost, updates, contraction_level,
                          learning_rate):
    """None when (cost, updates) and ca.L_rec, ca.L_jacob, as
    ca.get_cost_updates built them, are the stock cA's step on the same
    input and parameters with the same settings; else a phrase saying what
    differs.

    Two checks: the forward graph (L_rec, L_jacob and the cost) equals
    stock_graph's after the canonical rewrites, and each update is plain
    SGD on that cost, param - learning_rate * T.grad(cost, param), node
    for node. Equal costs have equal gradients, so the step is the stock
    one. (The gradient graphs themselves are not rewritten: on some graphs
    the canonical rewrites of a gradient do not settle.)"""
    trained = [p for p, _ in updates]
    if trained != [ca.W, ca.b, ca.b_prime]:
        return 'it trains %s, not W, b, b_prime' % ', '.join(
            str(p) for p in trained)
    inputs = [ca.x, ca.W, ca.b, ca.b_prime]
    ours = class_graph(ca, cost, updates)
    # ca.x may be another layer's output: the graph is read from it on
    reads = [v for v in graph_inputs(ours, blockers=inputs)
             if v not in inputs and not isinstance(v, Constant)]
    if reads:
        return 'it reads %s besides x, W, b and b_prime' % ', '.join(
            sorted(str(v) for v in reads))
    ref = canonical(inputs, stock_graph(*inputs, contraction_level,
                                        learning_rate)[:3])
    got = canonical(inputs, ours[:3])
    for name, mine, stock in zip(OUTPUT_NAMES, got.outputs, ref.outputs):
        if not equal_computations([mine], [stock], got.inputs, ref.inputs):
            return ("%s is not the stock cA's, even after the stack's "
                    "canonical rewrites" % name)
    eta = as_constant(learning_rate)
    sgd = [p - eta * g for p, g in zip(trained, T.grad(cost, trained))]
    for name, (_, mine), stock in zip(OUTPUT_NAMES[3:], updates, sgd):
        if not equal_computations([mine], [stock]):
            return ("%s is not the stock cA's (plain SGD on the cost, step "
                    "%g)" % (name, learning_rate))
    return None


def faster_equivalent(ca, cost, updates, contraction_level, learning_rate,
                      gradient='auto'):
    """The updates to compile for ``ca``, whose get_cost_updates built
    (cost, updates), and the Step they are (see the module docstring for
    ``gradient``). Where another step is chosen, ca.L_rec and ca.L_jacob
    become that step's, as get_cost_updates sets them."""
    defining = class_graph(ca, cost, updates)
    if gradient == 'T.grad':
        return updates, Step("get_cost_updates's graph as written "
                             "(--gradient T.grad)", gradient, defining)
    if gradient == 'fused':
        _, updates = fused.get_cost_updates(ca, contraction_level,
                                            learning_rate)
        return updates, Step('the hand-derived gradient as a graph '
                             '(--gradient fused)', gradient,
                             class_graph(ca, cost, updates))
    if gradient == 'kernel':
        _, updates = op.get_cost_updates(ca, contraction_level, learning_rate)
        return updates, Step('the kernel (--gradient kernel)', gradient,
                             class_graph(ca, cost, updates))
    why_not = difference_from_stock(ca, cost, updates, contraction_level,
                                    learning_rate)
    if why_not:
        return updates, Step("get_cost_updates's graph as written (the "
                             "kernel does not take over: %s)" % why_not,
                             gradient, defining)
    _, updates = op.get_cost_updates(ca, contraction_level, learning_rate)
    return updates, Step('the kernel (get_cost_updates built the stock '
                         'graph, whose step the kernel computes as one Op)',
                         gradient, defining)
