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

Which stack: Theano-PyMC when it is installed, else PyTensor. The
environment variable ``CA_BACKEND`` (``theano`` or ``pytensor``) forces
one where both are installed.

Before the first import, the stack gets the flags that make this model
train fast, for every option the user has not set (``THEANO_FLAGS`` or a
theanorc file for Theano-PyMC; ``PYTENSOR_FLAGS`` or a pytensorrc file for
PyTensor; the user's own setting always wins):

- ``blas__ldflags``: Intel's MKL from the ``mkl`` wheel in this environment
  when it is there, else OpenBLAS when gcc can link it, else empty (NumPy's
  C-API BLAS, slower). Theano-PyMC cannot even be imported without this
  option under numpy 1.23;
- ``allow_gc=False``: each compiled function keeps its intermediate buffers
  between calls instead of freeing and allocating them again (a training
  step runs 100,000 times on arrays of the same shapes; about 10 % faster);
- on PyTensor, ``linker=cvm``: its C linker (with the FAST_RUN rewrites),
  faster for this model than the Numba linker that PyTensor 3 picks by
  default (docs/performance.md has the measurements);
- with the mkl wheel, ``MKL_THREADING_LAYER=GNU`` (unless set): MKL's
  threads come from GNU OpenMP, as the training kernel's do (machinery/kernel);
- ``GOMP_SPINCOUNT=3000`` (unless it or ``OMP_WAIT_POLICY`` is set): GNU
  OpenMP's threads spin only briefly before they sleep at a barrier, so
  the kernel's threads stay fast when another program is busy too.

Importing this module sets those flags (and the two variables) in
``os.environ`` (nothing else) and imports the stack; nothing is changed
when the stack was imported before.

What the environment asks for is checked as the stack starts, each failure
one line: a CA_BACKEND or OMP_NUM_THREADS that cannot be used, flags or a
config file the stack refuses, a floatX other than float32 or float64
(``error:``, exit 2); a GPU device asked for (a note: the run uses the
CPU); a wait for the compile lock (a note at once, naming who holds it).
The command lines (cli.py) turn a failed C compilation or a compile lock
that stays taken into one ``error:`` line (compile_failure, lock_timeout).
"""
import configparser
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys

ENV_VAR = 'CA_BACKEND'


class Stack(object):
    """What differs between the two stacks, short of the code itself."""

    def __init__(self, key, package, title, flags_var, rc_var, rc_default,
                 own_defaults):
        self.key = key                    # the value of CA_BACKEND
        self.package = package            # what to import
        self.title = title                # for people
        self.flags_var = flags_var        # THEANO_FLAGS or PYTENSOR_FLAGS
        self.rc_var = rc_var              # THEANORC or PYTENSORRC
        self.rc_default = rc_default
        self.own_defaults = own_defaults  # [(option, value)] of this stack

    def installed(self):
        return importlib.util.find_spec(self.package) is not None


STACKS = {
    'theano': Stack('theano', 'theano', 'Theano-PyMC', 'THEANO_FLAGS',
                    'THEANORC', '~/.theanorc', []),
    'pytensor': Stack('pytensor', 'pytensor', 'PyTensor', 'PYTENSOR_FLAGS',
                      'PYTENSORRC', '~/.pytensorrc', [('linker', 'cvm')]),
}


def choose_stack(environ=os.environ):
    """The Stack to use: CA_BACKEND's, else Theano-PyMC when installed,
    else PyTensor. Raises BackendError when that cannot be imported."""
    forced = environ.get(ENV_VAR, '').strip().lower()
    if forced:
        if forced not in STACKS:
            raise BackendError('%s=%s is not a stack: use %s=theano or %s='
                               'pytensor, or unset it' % (
                                   ENV_VAR, environ[ENV_VAR], ENV_VAR,
                                   ENV_VAR))
        stack = STACKS[forced]
        if not stack.installed():
            raise BackendError('%s=%s, but %s is not installed for %s: '
                               'unset %s, or install it (make venv sets up '
                               'the stack that suits your Python)' % (
                                   ENV_VAR, forced, stack.title,
                                   sys.executable, ENV_VAR))
        return stack
    for stack in STACKS.values():
        if stack.installed():
            return stack
    raise BackendError(
        'neither Theano-PyMC nor PyTensor is installed for %s: run `make '
        'run` once (it sets up .venv/), then use .venv/bin/python, or '
        '`source .venv/bin/activate`' % sys.executable)


class BackendError(ImportError):
    """No stack can be imported (a one-line message says what to do)."""


# ---- flags -----------------------------------------------------------------

def rc_files(stack, environ):
    """The config files the stack reads, in its own order."""
    spec = environ.get(stack.rc_var, stack.rc_default)
    return [os.path.expanduser(p) for p in spec.split(os.pathsep) if p]


def user_sets(stack, environ, key):
    """True when the stack's flags variable or rc file sets ``key``
    ('section__option', or 'option' for the [global] section)."""
    for item in environ.get(stack.flags_var, '').split(','):
        if item.split('=', 1)[0].strip() == key:
            return True
    section, option = key.rsplit('__', 1) if '__' in key else ('global', key)
    parser = configparser.RawConfigParser()
    try:
        parser.read(rc_files(stack, environ))
    except configparser.Error:
        return False  # the stack will report its own config file's error
    return parser.has_option(section, option)


def openblas_ldflags():
    """'-lopenblas' when gcc's linker finds libopenblas.so, else ''."""
    try:
        found = subprocess.run(
            ['gcc', '-print-file-name=libopenblas.so'], capture_output=True,
            text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''
    # gcc echoes the bare name back when the library is not on its path
    return '-lopenblas' if os.path.isabs(found) else ''


def mkl_ldflags(prefix=sys.prefix):
    """Flags that link the mkl wheel's libmkl_rt.so.3 under prefix, or ''.

    The flags variables split on commas, so the rpath is passed as
    ``-Xlinker -rpath=DIR`` rather than ``-Wl,-rpath,DIR``; the stacks split
    the flags on spaces, so a folder with a space in its name is skipped.
    """
    lib = os.path.join(prefix, 'lib')
    if ' ' in lib or ',' in lib or not os.path.exists(
            os.path.join(lib, 'libmkl_rt.so.3')):
        return ''
    return '-L%s -l:libmkl_rt.so.3 -Xlinker -rpath=%s' % (lib, lib)


def default_ldflags():
    """MKL's flags, else OpenBLAS's, else '' (see the module docstring)."""
    return mkl_ldflags() or openblas_ldflags()


def configure(stack, environ=os.environ):
    """Add our defaults to the stack's flags variable for the options the
    user left unset (see the module docstring); nothing once the stack has
    been imported."""
    if stack.package in sys.modules:
        return
    defaults = [('blas__ldflags', default_ldflags),
                ('allow_gc', lambda: 'False')]
    defaults += [(key, lambda value=value: value)
                 for key, value in stack.own_defaults]
    added = [key + '=' + value() for key, value in defaults
             if not user_sets(stack, environ, key)]
    # Theano-PyMC looks for lib<name>.so beside each -L folder and warns
    # that it did not find "lib:libmkl_rt.so.3.so" for the MKL flags (ours,
    # or the ones a parent process passed on); the library links all the
    # same, and a library that is really missing fails the link loudly
    logging.getLogger(stack.package + '.tensor.blas').addFilter(
        lambda record: 'did not find a dynamic library' not in
        record.getMessage())
    if any(flag.startswith('blas__ldflags=-L') for flag in added):
        # MKL's threads from GNU OpenMP (libgomp), the runtime the kernel's
        # threads come from (machinery/kernel), rather than Intel's: with two
        # runtimes, each one's idle threads spin on the cores that the
        # other's need
        environ.setdefault('MKL_THREADING_LAYER', 'GNU')
    if not {'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT'} & set(environ):
        # OpenMP threads that wait at a barrier spin a little, then sleep.
        # GNU OpenMP's default spin (300,000 rounds) made a step of the kernel
        # at batch 10 take 12-26 ms instead of 1.2 when another program's
        # threads also spun on the 2 cores; sleeping at once
        # (OMP_WAIT_POLICY=PASSIVE) cost 40-80 % on an idle machine; 3,000
        # rounds are as fast as spinning there (docs/performance.md)
        environ['GOMP_SPINCOUNT'] = '3000'
    if added:
        flags = [environ.get(stack.flags_var, '')] + added
        environ[stack.flags_var] = ','.join(f for f in flags if f)


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


# ---- what the environment asks for, checked --------------------------------

def check_thread_setting(environ=os.environ):
    """BackendError when OMP_NUM_THREADS is set to something that is not a
    number of threads (OpenMP, and Theano-PyMC, read it)."""
    value = environ.get('OMP_NUM_THREADS')
    if value is None:
        return
    parts = value.split(',')
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise BackendError('OMP_NUM_THREADS=%s is not a number of threads: '
                           'set it to a positive integer (1 for one thread), '
                           'or unset it' % value)


def drop_gpu_device(stack, environ=os.environ, log=sys.stderr):
    """A GPU device asked for in the stack's flags variable: no GPU can be
    used by these stacks here (Theano-PyMC's needs pygpu, which is not
    installed; PyTensor has none), so the flag is dropped with one line
    saying that the run uses the CPU."""
    items = environ.get(stack.flags_var, '').split(',')
    devices = [item for item in items
               if item.split('=', 1)[0].strip() in ('device', 'init_gpu_device')
               and item.split('=', 1)[-1].strip() not in ('cpu', '')]
    if not devices:
        return
    print('note: %s asks for %s, but %s cannot use a GPU here: the run uses '
          'the CPU' % (stack.flags_var, ', '.join(d.strip() for d in devices),
                       stack.title), file=log, flush=True)
    environ[stack.flags_var] = ','.join(i for i in items if i not in devices)


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
