"""The training step of the stock cA as one compiled Op: a maintainer's map.

What is here:

    op.py          CAEStep, the Op: make_node, perform (the step in NumPy),
                   c_code (which calls the C++ below), the in-place rewrite,
                   and op.get_cost_updates(ca, ...), the step as a graph node
    cae_step.cpp   the step in C++ (compiled as C++ by the stack, with
                   OpenMP and the stack's BLAS): three passes over W
    fused.py       eqs. (7)-(10), the gradient derived by hand, as a graph
                   of the stack's Ops (--gradient fused), and the speed
                   forms of eq. (4) and eq. (5) that the class leaves out
    steps.py       when the kernel may run: stock_graph() writes out the
                   stock cA's graph independently of the class, and
                   faster_equivalent() swaps in the kernel only where the
                   class built that graph (GRADIENTS below)

The one SGD step of the contractive auto-encoder exists in five forms, and
they change together:

    1. cA.get_cost_updates (cA.py): the cost of eqs. (1)-(6), T.grad and
       the update. The definition: everything else must equal it.
    2. steps.stock_graph: the same graph, built without the class, that
       the class's graph is compared with (its cost after the stack's
       canonical rewrites, its updates as plain SGD on that cost).
    3. fused.get_cost_updates (fused.py): the hand-derived gradient,
       eqs. (7)-(10), as a graph.
    4. CAEStep.perform (op.py): the same eqs. (7)-(10) in NumPy, run where
       no C compiler or BLAS is available, and the reference inside the
       Op.
    5. cae_step.cpp: eqs. (7)-(10) in C++, with two code paths: blocks of
       rows of W shared among the threads (minibatches under
       op.SMALL_BATCH) and one GEMM per pass over all of W (larger ones).

An edit to the model's math is an edit to 1; then 2 must follow (or the
kernel stops taking over, and the class's graph trains: slower, still
right), and 3, 4 and 5 must follow for the kernel to compute the new step.
The tests that hold them equal: tests/test_steps.py (1 against 2: the
kernel takes over for the stock class, not for an edited one),
tests/test_fused.py (3 against 1, one step and four epochs),
tests/test_cA_kernel.py (4 and both paths of 5 against a plain NumPy loop
and against 1, in float64 and float32, one thread and several).

Importing this package loads nothing of the stack; op and steps do.
"""

# the steps a script can ask for (--gradient), see steps.faster_equivalent
GRADIENTS = ('auto', 'kernel', 'fused', 'T.grad')
