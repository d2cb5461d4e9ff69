"""The Theano that the tutorial runs on, and the names its code uses.

The tutorial is Theano code. It runs on one of two stacks:

- **Theano-PyMC 1.1.2**, the faithful one, on Python 3.9 to 3.11 (it needs
  ``distutils`` and numpy < 1.24, so it cannot run on newer Pythons);
- **PyTensor**, Theano's maintained successor (Theano-PyMC -> Aesara ->
  PyTensor), on Python 3.12 and newer with numpy 2: the same programming
  model (``shared``, ``function`` with ``givens`` and ``updates``,
  ``grad``) under another package name.

Every other module imports the framework from here::

    from machinery.backend import theano, T, sigmoid, softplus, softmax

``theano`` is the package (``theano`` or ``pytensor``), ``T`` its tensor
module, and the three functions are the few names that moved (Theano-PyMC
has them in ``T.nnet``, PyTensor at the top of ``pytensor.tensor``). The
rest reads as Theano code on both stacks.

Which stack (Theano-PyMC when it is installed, else PyTensor; the
environment variable ``CA_BACKEND`` forces one) and the flags it starts
with are decided in stack.py, which imports no stack. Importing this
module applies them (``os.environ`` only) and imports the stack; nothing
is changed when the stack was imported before.

What the environment asks for is checked as the stack starts, each failure
one line: a CA_BACKEND or OMP_NUM_THREADS that cannot be used, flags or a
config file the stack refuses, a floatX other than float32 or float64
(``error:``, exit 2); a GPU device asked for (a note: the run uses the
CPU); a wait for the compile lock (a note at once, naming who holds it).
The command lines (cli.py) turn a failed C compilation or a compile lock
that stays taken into one ``error:`` line (compile_failure, lock_timeout).
"""
import importlib
import logging
import os
import re
import shutil
import sys

from . import stack_hook
from .stack import (BackendError, check_thread_setting, choose_stack,
                    configure, drop_gpu_device)


def _import(stack):
    """(package, tensor module, sigmoid, softplus, softmax) of the stack."""
    package = importlib.import_module(stack.package)
    tensor = importlib.import_module(stack.package + '.tensor')
    if stack.key == 'theano':
        nnet = tensor.nnet
        return package, tensor, nnet.sigmoid, nnet.softplus, nnet.softmax
    def softmax(x):
        # row by row, as Theano's nnet.softmax; PyTensor's softmax takes
        # the whole array unless told the axis
        return tensor.special.softmax(x, axis=-1)
    return package, tensor, tensor.sigmoid, tensor.softplus, softmax


def _one_line(error):
    """The last line of an exception's message, which names the problem."""
    lines = [line.strip() for line in str(error).splitlines()
             if line.strip()]
    return lines[-1] if lines else type(error).__name__


def compile_failure(error):
    """A one-line description of a failed C compilation (a compiler or
    BLAS flag that does not work, a compile directory that cannot be
    made), or None when ``error`` is something else."""
    text = str(error)
    if 'compiledir' in text and ('Unable to create' in text or
                                 'not writable' in text or
                                 'permissions' in text):
        # the stack makes its compile directory when it first compiles
        return ('%s cannot make or write its compile directory (%s): set '
                'base_compiledir in %s to a folder you can write, or unset '
                'it' % (NAME, _one_line(error)[:300], STACK.flags_var))
    if 'Compilation failed' not in text:
        return None
    text = text.replace('\\n', '\n')
    found = re.search(r"cannot find -l[^\s'\"]+", text) or \
        re.search(r"error: [^'\"\n]+", text)
    detail = found.group(0).strip(' .') if found else _one_line(error)
    return 'compiling the C code of %s failed (%s): check the compiler and ' \
        'BLAS options in %s or its config file, or unset them' % (
            NAME, detail[:300],
            STACK.flags_var)


def lock_holder(lock_file):
    """'process 1234 (python cA.py ..., stopped)' for the process that holds
    an flock on ``lock_file`` (from /proc/locks), or 'another process'."""
    try:
        inode = os.stat(lock_file).st_ino
        with open('/proc/locks') as f:
            # '1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF'
            fields = [line.split() for line in f]
        pids = [int(words[4]) for words in fields if len(words) > 5 and
                words[5].endswith(':%d' % inode)]
    except (OSError, ValueError):
        pids = []
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                command = ' '.join(f.read().replace(b'\0', b' ').decode(
                    errors='replace').split())
            with open('/proc/%d/stat' % pid) as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        stopped = state in 'Tt'
        return 'process %d (%s%s)' % (pid, command[:80], ', stopped: '
                                      '`kill -CONT %d` resumes it, `kill %d` '
                                      'ends it' % (pid, pid) if stopped
                                      else '')
    return 'another process'


class _SayWhenWaiting(logging.Handler):
    """Says at once, in one line on stderr, that compiling waits for the
    stack's compile lock, and for whom (the stack itself waits in silence
    for up to compile__timeout seconds)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.said = set()

    def emit(self, record):
        if record.levelno >= logging.WARNING:
            # filelock's own warnings, to wherever the user's logging sends
            # them (this logger does not propagate its debug records)
            logging.getLogger().handle(record)
            return
        if not str(record.msg).startswith('Lock %s not acquired'):
            return
        lock_file = str(record.args[1])
        if lock_file in self.said:
            return
        self.said.add(lock_file)
        print('note: waiting for the compile lock %s, held by %s (for up to '
              '%s s)' % (lock_file, lock_holder(lock_file),
                         _lock_timeout_seconds()),
              file=sys.stderr, flush=True)


def lock_timeout(error):
    """A one-line description of a compile lock that stayed taken, or None
    when ``error`` is something else."""
    lock_file = getattr(error, 'lock_file', None)
    if type(error).__name__ != 'Timeout' or lock_file is None:
        return None
    return ('the compile lock %s stayed taken for %s s, by %s: let that run '
            'finish, or end it, then run again' % (
                lock_file, _lock_timeout_seconds(), lock_holder(lock_file)))


def _lock_timeout_seconds():
    return getattr(theano.config, 'compile__timeout', '?')


def _start():
    # the stack is configured below: an installed copy's hook steps aside
    # (even choose_stack's look for the packages would set it off)
    stack_hook.uninstall()
    try:
        check_thread_setting()
        stack = choose_stack()
    except BackendError as e:
        # no stack means no command can run: say so in one line, as every
        # command line of the project does for a user's mistake
        print('error: %s' % e, file=sys.stderr)
        raise SystemExit(2)
    drop_gpu_device(stack)
    configure(stack)
    try:
        imported = _import(stack)
    except Warning as e:  # PYTHONWARNINGS=error, or python -W error
        print('error: %s raised a warning while it loaded, and this Python '
              'turns warnings into errors (PYTHONWARNINGS or -W): %s; run '
              'without that setting, or add ignore::%s to it' % (
                  stack.title, ' '.join(str(e).split('. ')[0].split())[:200],
                  type(e).__name__), file=sys.stderr)
        raise SystemExit(2)
    except Exception as e:  # a flag or config file the stack refuses
        print('error: %s cannot start with the settings of %s or its config '
              'file (%s): fix them, or unset them' % (
                  stack.title, stack.flags_var,
                  ' '.join(str(e).split())[:300] or type(e).__name__),
              file=sys.stderr)
        raise SystemExit(2)
    waits = logging.getLogger('filelock')
    waits.addHandler(_SayWhenWaiting())
    waits.setLevel(logging.DEBUG)  # the wait is a debug record of filelock
    waits.propagate = False
    cxx = imported[0].config.cxx
    if cxx and shutil.which(cxx) is None:
        # (an empty cxx is the stack's own choice when it found none)
        print('error: the C++ compiler %s that %s is set to compile with '
              '(cxx) does not exist: install g++, or set cxx in %s to a '
              'compiler that exists' % (cxx, stack.title, stack.flags_var),
              file=sys.stderr)
        raise SystemExit(2)
    floatX = imported[0].config.floatX
    if floatX not in ('float32', 'float64'):
        print('error: floatX=%s: the tutorial trains in float64 (the '
              'default) or float32; set floatX to one of them in %s, or '
              'unset it' % (floatX, stack.flags_var), file=sys.stderr)
        raise SystemExit(2)
    return (stack,) + imported


STACK, theano, T, sigmoid, softplus, softmax = _start()
NAME = '%s %s' % (STACK.title, theano.__version__)


# ---- for an Op with C code (machinery/kernel) ------------------------------
#
# COp and Apply: the base class of an Op with C code and the graph node;
# blas_header_text() / blas_header_version(): the C declarations of the
# stack's Fortran BLAS (dgemm_, sgemm_, ...; a NumPy-based fallback when no
# BLAS is linked) and their version; blas_ldflags(libs=True, flags=False,
# libs_dir=False, include_dir=False): the compiler and linker flags of that
# BLAS; register_inplace_rewrite(name, op_class, rewrite): make `rewrite`
# one of the stack's rewrites that turn Ops into their in-place versions.

# equal_computations(xs, ys, in_xs, in_ys): whether two lists of graphs
# compute the same thing node for node (the same Ops on corresponding
# inputs; constants by value); graph_inputs(outputs): the variables a graph
# reads, Constants among them; FunctionGraph and _Query: see canonical().
if STACK.key == 'theano':
    from theano.graph.basic import (Apply, Constant, equal_computations,
                                    graph_inputs)
    from theano.graph.fg import FunctionGraph
    from theano.graph.optdb import Query as _Query
    from theano.graph.op import COp
    from theano.graph.opt import local_optimizer as _node_rewriter
    from theano.graph.opt import in2out as _walking_rewriter
    from theano.tensor.blas import ldflags as blas_ldflags
    from theano.tensor.blas_headers import (blas_header_text,
                                            blas_header_version)
    # beside the in-place BLAS rewrites (70.0), after the destroy handler
    # (49.5) and before the elementwise ones (75)
    _INPLACE_POSITION = 70.1
else:
    from pytensor.graph.basic import Apply, Constant, equal_computations
    from pytensor.graph.traversal import graph_inputs
    from pytensor.graph.fg import FunctionGraph
    from pytensor.graph.rewriting.db import RewriteDatabaseQuery as _Query
    from pytensor.link.c.op import COp
    from pytensor.graph.rewriting.basic import node_rewriter as _node_rewriter
    from pytensor.graph.rewriting.basic import (
        dfs_rewriter as _walking_rewriter)
    from pytensor.tensor.blas import ldflags as blas_ldflags
    from pytensor.tensor.blas.c_code.blas_headers import (
        blas_header_text, blas_header_version)
    # beside the in-place BLAS rewrites (50.2), after the destroy handler
    # (49.5) and before the elementwise ones (70.5)
    _INPLACE_POSITION = 50.3


def register_inplace_rewrite(name, op_class, rewrite):
    """Run rewrite(fgraph, node) on every node whose op is an op_class, in
    the stack's in-place phase (mode FAST_RUN, tags 'fast_run' and
    'inplace'); it returns the replacement outputs, or None. The stack's
    destroy handler then checks every replacement: a graph that still needs
    a destroyed input after the node keeps the original node."""
    walker = _walking_rewriter(_node_rewriter([op_class], inplace=True)(
        rewrite), name=name)
    if STACK.key == 'theano':
        theano.compile.optdb.register(name, walker, _INPLACE_POSITION,
                                      'fast_run', 'inplace')
    else:
        theano.compile.optdb.register(name, walker, 'fast_run', 'inplace',
                                      position=_INPLACE_POSITION)


# the stack's rewrites that put a graph in a standard form without
# choosing an implementation: x ** 2 and sqr(x) become one Op, a sum is
# written one way
CANONICAL_TAGS = ('canonicalize', 'stabilize', 'specialize')


def canonical(inputs, outputs):
    """A copy of the graph from ``inputs`` to ``outputs`` after the stack's
    canonical rewrites (CANONICAL_TAGS): a FunctionGraph whose .inputs and
    .outputs two such graphs can be compared with equal_computations. The
    graph given is not changed."""
    graph = FunctionGraph(list(inputs), list(outputs), clone=True)
    rewrites = theano.compile.optdb.query(_Query(include=list(
        CANONICAL_TAGS)))
    # a rewrite that fails (constant folding compiles C code, which a
    # broken compile directory stops) raises, for the command line to
    # report in one line, rather than being logged with its traceback
    log = logging.getLogger('theano.graph.opt' if STACK.key == 'theano'
                            else 'pytensor.graph.rewriting.basic')
    log.disabled = True
    try:
        with theano.config.change_flags(on_opt_error='raise'):
            if STACK.key == 'theano':
                rewrites.optimize(graph)
            else:
                rewrites.rewrite(graph)
    finally:
        log.disabled = False
    return graph


def graph_text(outputs):
    """The graph of ``outputs`` as text, the same in every process (the
    stack's debugprint: Ops, names, constants, types)."""
    return theano.printing.debugprint(list(outputs), file='str',
                                      print_type=True)
