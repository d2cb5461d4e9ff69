"""Which stack runs the tutorial, and the flags it starts with, decided
before the stack is imported (backend.py imports it).

Two stacks run the tutorial's Theano code: **Theano-PyMC 1.1.2** on Python
3.9 to 3.11, and **PyTensor** on Python 3.12 and newer (backend.py says
more). ``choose_stack`` picks one: Theano-PyMC when it is installed, else
PyTensor; the environment variable ``CA_BACKEND`` (``theano`` or
``pytensor``) forces one where both are installed.

``configure(stack)`` gives the stack, before its first import, the flags
that make this model train fast, for every option the user has not set
(``THEANO_FLAGS`` or a theanorc file for Theano-PyMC; ``PYTENSOR_FLAGS``
or a pytensorrc file for PyTensor; the user's own setting always wins):

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

It sets those flags (and the two variables) in ``os.environ``, nothing
else. The same settings reach a program that imports the stack itself,
before any module of ours (``import theano`` first, then ``from cA import
cA``): an installed copy of the tutorial puts a ``.pth`` file into the
environment's site-packages that calls ``stack_hook.install()`` as Python
starts (tools/build_backend.py adds it to the wheel), and the hook runs
``configure`` just before the stack is first imported.

Importing this module imports no stack and changes nothing.
"""
import configparser
import importlib.util
import logging
import os
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
