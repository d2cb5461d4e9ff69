"""The contractive auto-encoder's SGD step as one compiled Op: the fast kernel.

``cA.get_cost_updates`` (T.grad) and ``fused.get_cost_updates`` (the
gradient derived by hand) are the readable forms of the training step; this
module computes the same step as one node of the graph with its own C++
code (cae_step.cpp). ``steps.faster_equivalent`` puts it in place of the
class's graph where that graph is the stock one. Read those first: the
equation numbers (1)-(10) below are theirs; __init__.py maps the five
forms of the step.

Use it like get_cost_updates::

    from machinery.kernel import op
    cost, updates = op.get_cost_updates(ca, contraction_level=0.1,
                                        learning_rate=0.01)
    train = theano.function([index], [T.mean(ca.L_rec), ca.L_jacob],
                            updates=updates, givens={ca.x: ...})

Why a kernel
------------
At the tutorial's minibatch of 10, a step does little arithmetic per element
of W (784 x 500, 3.1 MB in float64, larger than a core's L2 cache) and the
graph's operations each walk the whole of W: x W, h W^T, d_z W, W**2 and
the gemv for the column norms, the column scaling of W, the update GEMM.
Each walk costs about as much as a matrix product at that minibatch; the
penalty's three (W**2, its gemv, the scaling) took 27 % of the fused
graph's step (docs/performance.md has the profiles). Theano cannot fuse a
GEMM with an elementwise loop; here one C function does the whole step and
walks W three times, in blocks of rows that stay in cache while every
product and loop that needs that block runs:

  pass 1:  h = s(x W + b)                                             (1)
           c_j = sum_i W_ij^2                                         (5)
  pass 2:  a' = h W^T + b',  z = s(a')                                (3)
           L_rec = sum_i softplus(a'_i) - x_i a'_i                    (4)
           d_z = (z - x) / B                                          (7)
           g = d_z W
  then     d_h = (g + (2 lambda / B) c s (1 - 2h)) s,  s = h (1 - h)   (8)
           m_j = mean_batch s_j^2,  L_jacob = sum_j m_j c_j           (5)
  pass 3:  W <- W diag(1 - 2 eta lambda m) - eta (x^T d_h + d_z^T h)   (9)
  and      b <- b - eta sum_batch d_h,  b' <- b' - eta sum_batch d_z (10)

Pass 1 needs all of W before h exists, pass 2 needs all of h, and pass 3
needs all of d_h, which needs g = d_z W over all rows: three passes is the
least. Within a pass, rows i0..i0+R of W are a block, and every product
and loop that needs the block runs while it is in cache: x[:, I] W[I, :]
adds into x W, with the squares for c in the same loop over the block;
h W[I, :]^T gives a'[:, I], whose d_z[:, I] then gives d_z[:, I] W[I, :];
pass 3 scales the block's rows and adds both outer products to them in one
loop. At small minibatches these products are cae_step.cpp's own
register-tiled loops (a BLAS GEMM of 10 rows spends much of its time
packing its operands); at large ones each element of W is used for B
multiply-adds per product and the BLAS's GEMMs dominate: then one block of
all V rows makes each pass a single large GEMM, and pass 3's two outer
products are one GEMM of the stacked [d_z; x] and [h; d_h].

Threads (OpenMP, as many as it has cores for, one per 2^20 multiply-adds
of a product): at small minibatches W is cut by rows into a fixed number
of chunks (cae_step.cpp's CHUNKS), which the threads share, each walking
its chunks' blocks; the chunks' partial sums of
x W, c and d_z W are added up between the passes in chunk order, so that
the step computes the same numbers, to the bit, whatever the number of
threads. At large ones the BLAS spreads each pass's GEMM over the cores
and the threads share the loops in between. backend.py makes MKL take its
threads from the same OpenMP runtime (GNU's), so that the two do not
compete for the cores.

Threads pay only when the cores are free: beside another busy program, a
step that waits at a barrier for a thread that has no core can be slower
than one thread (docs/performance.md has the measurements). So at small
minibatches the step measures: PROBE_STEPS steps with all the threads,
then as many with one, are timed with the monotonic clock, and the
threads are kept until the next probe only if they are clearly faster
(THREADS_MARGIN). The first probe comes after PROBE_FIRST steps with all
the threads, the next PROBE_EVERY steps later, or twice as long after the
last interval when the choice stayed the same (up to PROBE_EVERY_MOST). Since the result does not depend on the number of
threads, neither does the run.

The logistic sigmoid and the softplus of a' come from one exp and one
log1p per pixel: with e = exp(-|a|),  s(a) = 1/(1+e) for a >= 0 and
e/(1+e) for a < 0, and softplus(a) = max(a, 0) + log1p(e). The compiler
vectorizes these loops with glibc's vector exp and log1p where glibc has
them (x86-64, glibc 2.35 and newer), else it calls the scalar ones.

The result equals the T.grad step up to rounding: the sums are taken in
another order (tests/test_cA_kernel.py holds it to 1e-12 relative after a
step, float64).

How it composes with the graph
------------------------------
``CAEStep()(x, W, b, b_prime, lambda, eta)`` returns the new W, b, b' and
L_rec (B,), L_jacob (a scalar): a node like any other. x may be any
symbolic matrix (a slice of the training set through ``givens``, or
another layer's output in a stacked model); W, b and b' are usually shared
variables, possibly shared with an MLP layer. The Op is built out of
place: it copies W, b and b' and updates the copies. When the compiled
function's updates write those outputs back to the same shared variables,
a rewrite in the stack's in-place phase (the one that makes GEMM in-place)
replaces it with ``CAEStep(inplace=True)``, which updates the shared
variables' arrays in place. The stack's destroy handler checks the
rewrite: other nodes that read the old W are run before the step, and a
function that may not change W (no update writes it back) keeps the
copying Op.

Both stacks (Theano-PyMC and PyTensor) run the same code; the few names
that differ come from backend.py (COp, Apply, the BLAS helpers,
register_inplace_rewrite). Without a C compiler or a BLAS library, and on
PyTensor's Numba or Python linkers, the Op runs ``perform``: the same step
in NumPy. (PyTensor's Numba linker runs it through Numba's object mode,
which is slow, 80-210 ms a step: with that linker use gradient='fused'.
The C linker, backend.py's default, is the fast one.)
"""
import hashlib
import os
import platform

import numpy
import scipy.special

from .. import backend
from ..backend import theano, T

HERE = os.path.dirname(os.path.abspath(__file__))
C_SOURCE = os.path.join(HERE, 'cae_step.cpp')

# the two instantiations of cae_step.cpp: (dtype, C type, BLAS GEMM, the
# suffix of libm's functions)
_REALS = [('float64', 'double', 'dgemm_', ''), ('float32', 'float', 'sgemm_',
                                               'f')]

# Rows of W per block at small minibatches (pass 1-3 above): a block of
# BLOCK_BYTES stays in the core's L2 cache (1-2 MB on current x86 cores)
# with room for the rest. At SMALL_BATCH examples or more, the GEMMs
# dominate and one block of all rows is faster.
BLOCK_BYTES = 128 * 1024
SMALL_BATCH = 64
# A thread per PARALLEL_WORK multiply-adds of a product (B V H), up to the
# cores OpenMP has: with less work each, waking and waiting for the threads
# costs more than they save (batch 10 on 784 x 500: 3 threads at most).
PARALLEL_WORK = 1 << 20
# At small minibatches, whether those threads pay is measured as the run
# goes: at each probe, PROBE_STEPS steps with them, then as many with one
# thread; the threads are kept only if their median step is THREADS_MARGIN
# faster (see "Threads" above). The margin is there because the two medians
# are noisy on a busy machine (at batch 10, one thread takes about 1.8
# times as long as two on an idle machine, far beyond the margin, and two
# about 1.4 times as long as one beside a busy program).
PROBE_EVERY = 1024
PROBE_STEPS = 16
# each probe that confirms the choice doubles the interval to the next, up
# to PROBE_EVERY_MOST steps (about 10 s at batch 10): a steady machine
# pays for almost no probes, a change of load is seen within seconds
PROBE_EVERY_MOST = 16384
THREADS_MARGIN = 0.15
# the first probe waits for PROBE_FIRST steps with all the threads: the
# first steps of a process are slow (the team of threads starting, the
# workspace's pages touched for the first time, caches cold), and a probe
# that timed them chose one thread for the first PROBE_EVERY steps (on a
# run of 2,000 steps, up to 14 % of its time)
PROBE_FIRST = 64


# C: where an output W, b or b' goes
OUTPUT_HELPER = r"""
/* the median of n values (sorted in place; n small) */
static double cae_median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && v[k - 1] > v[k]; k--) {
            double t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* *out becomes `in` itself when the Op is in place and `in` can be updated
 * there (C-contiguous, aligned, writeable); else a copy of `in`, in the
 * previous call's output array when that fits. 0 on success. */
static int cae_output(PyArrayObject **out, PyArrayObject *in, int inplace)
{
    if (inplace && PyArray_IS_C_CONTIGUOUS(in) && PyArray_ISALIGNED(in) &&
        PyArray_ISWRITEABLE(in)) {
        if (*out != in) {
            Py_XDECREF(*out);
            *out = in;
            Py_INCREF(in);
        }
        return 0;
    }
    if (!*out || *out == in || !PyArray_IS_C_CONTIGUOUS(*out) ||
        !PyArray_SAMESHAPE(*out, in) ||
        PyArray_TYPE(*out) != PyArray_TYPE(in)) {
        Py_XDECREF(*out);
        *out = (PyArrayObject *) PyArray_EMPTY(PyArray_NDIM(in),
            PyArray_DIMS(in), PyArray_TYPE(in), 0);
        if (!*out)
            return -1;
    }
    return PyArray_CopyInto(*out, in);
}
"""


def _c_source():
    with open(C_SOURCE) as f:
        return f.read()


class CAEStep(backend.COp):
    """One SGD step of the contractive auto-encoder (see the module
    docstring): (x, W, b, b_prime, lambda, eta) -> (W', b', b_prime',
    L_rec, L_jacob).

    inplace: update W, b and b_prime in their own arrays (outputs 0-2 are
    then inputs 1-3, destroyed); the in-place rewrite sets it.
    block_rows: rows of W per block; None picks them from the minibatch
    size and BLOCK_BYTES (a number forces one, for the tests).
    norms: compute L_jacob (and the column norms it needs) also when lambda
    is 0. The in-place rewrite turns it off for a plain auto-encoder whose
    L_jacob no one uses, which then skips the penalty entirely (L_jacob is
    NaN); with lambda > 0 the step needs the norms anyway.
    threads: None lets the step choose, at small minibatches, between all
    the threads that pay and one, by timing both now and then (see "Threads"
    in the module docstring); a number forces that many (at most), for the
    tests and the benchmark. The result does not depend on it.
    """

    __props__ = ('inplace', 'block_rows', 'norms', 'threads')

    def __init__(self, inplace=False, block_rows=None, norms=True,
                 threads=None):
        self.inplace = inplace
        self.block_rows = block_rows
        self.norms = norms
        self.threads = threads
        if inplace:
            self.destroy_map = {0: [1], 1: [2], 2: [3]}

    def make_node(self, x, W, b, b_prime, contraction_level, learning_rate):
        x, W, b, b_prime = [T.as_tensor_variable(v)
                            for v in (x, W, b, b_prime)]
        if (x.ndim, W.ndim, b.ndim, b_prime.ndim) != (2, 2, 1, 1):
            raise TypeError('CAEStep needs x and W matrices, b and b_prime '
                            'vectors; got ndim %d, %d, %d, %d' % (
                                x.ndim, W.ndim, b.ndim, b_prime.ndim))
        dtype = W.type.dtype
        if dtype not in ('float32', 'float64') or any(
                v.type.dtype != dtype for v in (x, b, b_prime)):
            raise TypeError('CAEStep needs x, W, b and b_prime of one dtype, '
                            'float32 or float64; got %s, %s, %s, %s' % (
                                x.type.dtype, W.type.dtype, b.type.dtype,
                                b_prime.type.dtype))
        scalars = [T.cast(T.as_tensor_variable(v), dtype)
                   for v in (contraction_level, learning_rate)]
        if any(v.ndim != 0 for v in scalars):
            raise TypeError('the contraction level and the learning rate '
                            'must be scalars')
        outputs = [W.type(), b.type(), b_prime.type(),
                   T.vector(dtype=dtype), T.scalar(dtype=dtype)]
        return backend.Apply(self, [x, W, b, b_prime] + scalars, outputs)

    def infer_shape(self, *args):
        # (fgraph, node, shapes) on Theano-PyMC, (node, shapes) on PyTensor
        node, shapes = args[-2:]
        x, W, b, b_prime = shapes[:4]
        return [W, b, b_prime, (x[0],), ()]

    def grad(self, inputs, output_grads):
        raise NotImplementedError(
            'CAEStep is an SGD step, not a differentiable expression; for '
            'gradients of the cost build it with cA.get_cost_updates')

    # ---- the step in NumPy: the reference within the Op ------------------

    def perform(self, node, inputs, outputs):
        x, W, b, b_prime, lam, eta = inputs
        if not self.inplace:
            W, b, b_prime = W.copy(), b.copy(), b_prime.copy()
        n = x.shape[0]
        if (x.shape[1], b.shape[0], b_prime.shape[0]) != (
                W.shape[0], W.shape[1], W.shape[0]):
            raise ValueError('CAEStep: shapes do not fit: x %s, W %s, b %s, '
                             'b_prime %s' % (x.shape, W.shape, b.shape,
                                             b_prime.shape))
        if n == 0:
            raise ValueError('CAEStep: the minibatch is empty')
        h = scipy.special.expit(x @ W + b)                             # (1)
        s = h * (1 - h)
        c = numpy.sum(W ** 2, axis=0)                                  # (5)
        m = numpy.mean(s ** 2, axis=0)
        a_prime = h @ W.T + b_prime                                    # (3)
        z = scipy.special.expit(a_prime)
        L_rec = numpy.sum(numpy.logaddexp(0, a_prime) - x * a_prime,
                          axis=1)                                      # (4)
        L_jacob = numpy.dot(m, c) if self.norms or lam != 0 else numpy.nan
        d_z = (z - x) / n                                              # (7)
        d_h = (d_z @ W + (2 * lam / n) * c * s * (1 - 2 * h)) * s      # (8)
        W *= 1 - 2 * eta * lam * m                                     # (9)
        W -= eta * (x.T @ d_h + d_z.T @ h)
        b -= eta * numpy.sum(d_h, axis=0)                              # (10)
        b_prime -= eta * numpy.sum(d_z, axis=0)
        dtype = node.outputs[0].type.dtype
        for storage, value in zip(outputs, [W, b, b_prime, L_rec, L_jacob]):
            storage[0] = numpy.asarray(value, dtype=dtype)

    # ---- the step in C ----------------------------------------------------

    def c_support_code(self, **kwargs):
        # glibc's libmvec has vector versions of exp and log1p (and the
        # float ones) for x86-64 from glibc 2.35: declared under other names
        # with the `simd` attribute, calls in a loop become calls on 4 or 8
        # values at once. glibc's own <math.h> declares them so only under
        # -ffast-math, which a module must not use (on this gcc it would
        # also set the process's flush-to-zero mode).
        vector_math = r"""
#if defined(__x86_64__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define CAE_SIMD __attribute__((simd("notinbranch"), const, nothrow))
extern "C" double cae_exp(double) __asm__("exp") CAE_SIMD;
extern "C" double cae_log1p(double) __asm__("log1p") CAE_SIMD;
extern "C" float cae_expf(float) __asm__("expf") CAE_SIMD;
extern "C" float cae_log1pf(float) __asm__("log1pf") CAE_SIMD;
#else
#define cae_exp exp
#define cae_log1p log1p
#define cae_expf expf
#define cae_log1pf log1pf
#endif
"""
        code = ['#ifdef _OPENMP\n#include <omp.h>\n#endif',
                backend.blas_header_text(), vector_math, OUTPUT_HELPER]
        body = _c_source()
        for dtype, real, gemm, f in _REALS:
            code.append('\n'.join([
                '#define real %s' % real,
                '#define GEMM %s' % gemm,
                '#define FN(name) name##_%s' % dtype,
                '#define EXP cae_exp%s' % f,
                '#define LOG1P cae_log1p%s' % f,
                '#define FABS fabs%s' % f,
                body,
                '#undef real', '#undef GEMM', '#undef FN', '#undef EXP',
                '#undef LOG1P', '#undef FABS']))
        return '\n'.join(code)

    def c_headers(self, **kwargs):
        return ['<limits.h>', '<math.h>', '<stdlib.h>', '<string.h>',
                '<time.h>']

    def c_libraries(self, **kwargs):
        return backend.blas_ldflags() + ['m']

    def c_lib_dirs(self, **kwargs):
        return backend.blas_ldflags(libs=False, libs_dir=True)

    def c_header_dirs(self, **kwargs):
        return backend.blas_ldflags(libs=False, include_dir=True)

    def c_compile_args(self, **kwargs):
        # -fopenmp: threads, and the `#pragma omp simd` of the loops;
        # -fno-math-errno: exp and log1p as pure functions, vectorizable
        args = backend.blas_ldflags(libs=False, flags=True)
        args += ['-O3', '-fopenmp', '-fno-math-errno']
        if platform.machine() in ('x86_64', 'AMD64'):
            # 512-bit vectors where the CPU has them (the default is 256)
            args.append('-mprefer-vector-width=512')
        return args

    def c_code_cache_version(self):
        # the hash of the C++ source and of this file (which writes the C of
        # c_code): an edit to either is compiled anew
        with open(os.path.abspath(__file__)) as f:
            digest = hashlib.sha1((_c_source() + f.read()).encode())
        return (2, digest.hexdigest()[:12]) + \
            tuple(backend.blas_header_version())

    def c_support_code_struct(self, node, name):
        # the workspace, kept between calls (allocating it each call would
        # cost page faults at large minibatches); and what the choice of
        # threads has measured (calls so far, the probes' seconds with many
        # threads and with one, the choice)
        steps = PROBE_STEPS
        return ('void *work_%(name)s; size_t work_bytes_%(name)s;\n'
                'long calls_%(name)s, probe_start_%(name)s, period_%(name)s;\n'
                'double probe_%(name)s[2][%(steps)d];\n'
                'int alone_%(name)s;' % locals())

    def c_init_code_struct(self, node, name, sub):
        every = PROBE_EVERY
        # as if a probe had begun PROBE_EVERY - PROBE_FIRST steps ago
        first = PROBE_FIRST - PROBE_EVERY
        return ('work_%(name)s = NULL; work_bytes_%(name)s = 0;\n'
                'calls_%(name)s = 0; probe_start_%(name)s = %(first)d;\n'
                'period_%(name)s = %(every)d; alone_%(name)s = 0;' % locals())

    def c_cleanup_code_struct(self, node, name):
        return 'free(work_%(name)s);' % locals()

    def c_code(self, node, name, inputs, outputs, sub):
        if not backend.blas_ldflags():
            # No BLAS library linked: the stacks' fallback GEMM (NumPy's,
            # through its C API) does not link into every module; the
            # stacks' own products run in Python then, and so does this
            raise NotImplementedError('CAEStep: no BLAS library linked')
        x, W, b, bp, lam, eta = inputs
        W_out, b_out, bp_out, L_rec, L_jacob = outputs
        dtype = node.inputs[1].type.dtype
        real = dict((d, r) for d, r, _, _ in _REALS)[dtype]
        typenum = {'float64': 'NPY_FLOAT64', 'float32': 'NPY_FLOAT32'}[dtype]
        inplace = int(self.inplace)
        norms = int(self.norms)
        block_rows = self.block_rows or 0
        block_bytes, small_batch = BLOCK_BYTES, SMALL_BATCH
        parallel_work = PARALLEL_WORK
        threads = self.threads or 0
        probe_every, probe_steps = PROBE_EVERY, PROBE_STEPS
        probe_most = PROBE_EVERY_MOST
        keep_many = 1.0 + THREADS_MARGIN
        fail = sub['fail']
        return r"""
{
    const npy_intp B = PyArray_DIMS(%(x)s)[0];
    const npy_intp V = PyArray_DIMS(%(W)s)[0];
    const npy_intp H = PyArray_DIMS(%(W)s)[1];
    const npy_intp elsize = sizeof(%(real)s);
    PyArrayObject *x_rows = NULL;
    npy_intp ldx;
    int R, nthreads = 1, probing;
    long phase = 0;
    size_t bytes;
    struct timespec started;

    if (PyArray_DIMS(%(x)s)[1] != V || PyArray_DIMS(%(b)s)[0] != H ||
        PyArray_DIMS(%(bp)s)[0] != V) {
        PyErr_Format(PyExc_ValueError,
            "CAEStep: shapes do not fit: x (%%ld, %%ld), W (%%ld, %%ld), "
            "b (%%ld,), b_prime (%%ld,)",
            (long) B, (long) PyArray_DIMS(%(x)s)[1], (long) V, (long) H,
            (long) PyArray_DIMS(%(b)s)[0], (long) PyArray_DIMS(%(bp)s)[0]);
        %(fail)s
    }
    if (B < 1) {
        PyErr_SetString(PyExc_ValueError, "CAEStep: the minibatch is empty");
        %(fail)s
    }
    if (B > INT_MAX / (V > H ? V : H)) {
        PyErr_SetString(PyExc_ValueError, "CAEStep: too large for BLAS");
        %(fail)s
    }

    /* x: BLAS takes rows at any stride (a slice of the training set), but
     * the elements of a row must be contiguous; else a contiguous copy */
    ldx = B == 1 ? V : PyArray_STRIDES(%(x)s)[0] / elsize;
    if ((V > 1 && PyArray_STRIDES(%(x)s)[1] != elsize) ||
        (B > 1 && (PyArray_STRIDES(%(x)s)[0] %% elsize != 0 || ldx < V)) ||
        !PyArray_ISALIGNED(%(x)s)) {
        x_rows = (PyArrayObject *) PyArray_FromAny((PyObject *) %(x)s, NULL,
            2, 2, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
        if (!x_rows)
            %(fail)s
        ldx = V;
    } else {
        x_rows = %(x)s;
        Py_INCREF(x_rows);
    }
    if (ldx < 1)
        ldx = 1;

    /* W, b, b': in place, the inputs' own arrays; else copies */
    if (cae_output(&%(W_out)s, %(W)s, %(inplace)s) ||
        cae_output(&%(b_out)s, %(b)s, %(inplace)s) ||
        cae_output(&%(bp_out)s, %(bp)s, %(inplace)s)) {
        Py_DECREF(x_rows);
        %(fail)s
    }

    if (!%(L_rec)s || PyArray_DIMS(%(L_rec)s)[0] != B) {
        npy_intp dims[1] = {B};
        Py_XDECREF(%(L_rec)s);
        %(L_rec)s = (PyArrayObject *) PyArray_EMPTY(1, dims, %(typenum)s, 0);
        if (!%(L_rec)s) {
            Py_DECREF(x_rows);
            %(fail)s
        }
    }
    if (!%(L_jacob)s) {
        %(L_jacob)s = (PyArrayObject *) PyArray_EMPTY(0, NULL, %(typenum)s,
                                                      0);
        if (!%(L_jacob)s) {
            Py_DECREF(x_rows);
            %(fail)s
        }
    }

#ifdef _OPENMP
    /* the cores OpenMP has (OMP_NUM_THREADS), one per PARALLEL_WORK */
    {
        double most = (double) B * V * H / %(parallel_work)s;
        nthreads = omp_get_max_threads();
        if (nthreads > most)
            nthreads = most < 1 ? 1 : (int) most;
        if (%(threads)s > 0 && nthreads > %(threads)s)
            nthreads = %(threads)s;
    }
#endif
    bytes = workspace_size_%(dtype)s(B, V, H);
    if (bytes > work_bytes_%(name)s) {
        free(work_%(name)s);
        work_%(name)s = malloc(bytes);
        work_bytes_%(name)s = work_%(name)s ? bytes : 0;
        if (!work_%(name)s) {
            Py_DECREF(x_rows);
            PyErr_NoMemory();
            %(fail)s
        }
    }

    /* rows per block: all of them at large minibatches, else as many as
     * fit in BLOCK_BYTES (see op.py) */
    R = %(block_rows)s;
    if (R <= 0) {
        R = B >= %(small_batch)s ? (int) V
                                 : (int) (%(block_bytes)s / (H * elsize));
        if (R < 8)
            R = 8;
    }
    if (R > V)
        R = (int) V;
    if (R < 1)
        R = 1;

    /* at small minibatches, threads only where they pay: at each probe
     * (every period_ steps), PROBE_STEPS steps with nthreads then as many
     * with one are timed (but the first of each, which wakes or lets go
     * the threads); the threads are kept until the next probe only if
     * their median is THREADS_MARGIN below one thread's (with another busy
     * program, one thread can be the faster, and the medians are noisy) */
    probing = 0;
    if (%(threads)s == 0 && nthreads > 1 && R < V) {
        if (calls_%(name)s - probe_start_%(name)s >= period_%(name)s)
            probe_start_%(name)s = calls_%(name)s;
        phase = calls_%(name)s - probe_start_%(name)s;
        if (phase < 2 * %(probe_steps)s) {
            probing = phase < %(probe_steps)s ? 1 : 2;  /* 1 many, 2 one */
            if (phase %% %(probe_steps)s == 0)
                probing = -probing;                  /* not timed */
        }
        if (probing == 2 || probing == -2 ||
                (!probing && alone_%(name)s))
            nthreads = 1;
        calls_%(name)s++;
        clock_gettime(CLOCK_MONOTONIC, &started);
    }

    cae_sgd_step_%(dtype)s((int) B, (int) V, (int) H,
        (const %(real)s *) PyArray_DATA(x_rows), (int) ldx,
        (%(real)s *) PyArray_DATA(%(W_out)s),
        (%(real)s *) PyArray_DATA(%(b_out)s),
        (%(real)s *) PyArray_DATA(%(bp_out)s),
        ((%(real)s *) PyArray_DATA(%(lam)s))[0],
        ((%(real)s *) PyArray_DATA(%(eta)s))[0],
        (%(real)s *) PyArray_DATA(%(L_rec)s),
        (%(real)s *) PyArray_DATA(%(L_jacob)s),
        work_%(name)s, %(norms)s, R, nthreads);
    Py_DECREF(x_rows);

    if (probing > 0) {
        /* the step's seconds; after the last probe, the medians decide */
        struct timespec ended;
        clock_gettime(CLOCK_MONOTONIC, &ended);
        probe_%(name)s[probing - 1][phase %% %(probe_steps)s] =
            (ended.tv_sec - started.tv_sec) +
            1e-9 * (ended.tv_nsec - started.tv_nsec);
        if (phase == 2 * %(probe_steps)s - 1) {
            int alone = %(keep_many)r *
                        cae_median(probe_%(name)s[0] + 1,
                                   %(probe_steps)s - 1) >=
                        cae_median(probe_%(name)s[1] + 1,
                                   %(probe_steps)s - 1);
            /* the same choice again: probe half as often (up to
             * PROBE_EVERY_MOST); another: as often as at first */
            period_%(name)s = alone == alone_%(name)s ?
                (period_%(name)s < %(probe_most)s / 2 ?
                 2 * period_%(name)s : %(probe_most)s) : %(probe_every)s;
            alone_%(name)s = alone;
        }
    }
}
""" % locals()


def _make_inplace(fgraph, node):
    """The in-place rewrite: CAEStep -> CAEStep(inplace=True); norms=False
    too when lambda is the constant 0 and no one uses L_jacob."""
    op = node.op
    if not isinstance(op, CAEStep) or op.inplace:
        return None
    lam = node.inputs[4]
    unused = not fgraph.clients[node.outputs[4]]
    zero = isinstance(lam, T.TensorConstant) and numpy.all(lam.data == 0)
    new_op = CAEStep(inplace=True, block_rows=op.block_rows,
                     threads=op.threads,
                     norms=op.norms and not (unused and zero))
    return new_op(*node.inputs, return_list=True)


backend.register_inplace_rewrite('cae_step_inplace', CAEStep, _make_inplace)


def get_cost_updates(ca, contraction_level, learning_rate, block_rows=None,
                     threads=None):
    """The cost of eq. (6) and the SGD step of cA.get_cost_updates, by one
    CAEStep node. Sets ca.L_rec (batch,) and ca.L_jacob (a scalar) as
    get_cost_updates does; returns (cost, updates)."""
    dtype = ca.W.type.dtype
    lam, eta = [T.constant(v, dtype=dtype)
                if not isinstance(v, T.Variable) else v
                for v in (contraction_level, learning_rate)]
    W, b, b_prime, L_rec, L_jacob = CAEStep(block_rows=block_rows,
                                            threads=threads)(
        ca.x, ca.W, ca.b, ca.b_prime, lam, eta)
    ca.L_rec, ca.L_jacob = L_rec, L_jacob
    cost = T.mean(L_rec) + lam * L_jacob
    return cost, [(ca.W, W), (ca.b, b), (ca.b_prime, b_prime)]
