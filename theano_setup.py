"""Give Theano a BLAS to link before it is first imported.

Theano-PyMC 1.1.2 asks ``numpy.distutils`` for NumPy's BLAS at import time;
numpy 1.23 no longer says, and ``import theano`` fails unless the
``blas__ldflags`` option is set. ``configure()`` sets it for this process,
through ``THEANO_FLAGS``, to the first of:

- Intel's MKL, when the ``mkl`` wheel is installed in this environment
  (``<sys.prefix>/lib/libmkl_rt.so.3``; setup.cfg pins it on x86-64),
  linked with an rpath so that the compiled modules find it at run time;
- OpenBLAS, when the linker can find it (Debian: ``libopenblas-dev``);
- the empty value, which makes Theano fall back to NumPy's C-API BLAS (it
  says so in one line, ``WARNING (theano.tensor.blas): Using NumPy C-API
  based implementation for BLAS functions``).

It also sets ``allow_gc=False`` (see ``configure``). A user's own choice
always wins: an option that ``THEANO_FLAGS`` or a theanorc file
(``THEANORC``, default ``~/.theanorc``) already sets is left alone, and
nothing is changed when Theano was imported before us.
"""
import configparser
import logging
import os
import subprocess
import sys

LDFLAGS_KEY = 'blas__ldflags'


def theanorc_files(environ):
    """The config files Theano reads, in its own order (see THEANORC)."""
    spec = environ.get('THEANORC', '~/.theanorc')
    return [os.path.expanduser(p) for p in spec.split(os.pathsep) if p]


def user_sets(environ, key):
    """True when THEANO_FLAGS or a theanorc file sets the option ``key``
    ('section__option', or 'option' for the [global] section)."""
    for item in environ.get('THEANO_FLAGS', '').split(','):
        if item.split('=', 1)[0].strip() == key:
            return True
    section, option = key.rsplit('__', 1) if '__' in key else ('global', key)
    parser = configparser.RawConfigParser()
    try:
        parser.read(theanorc_files(environ))
    except configparser.Error:
        return False  # Theano will report its own config file's syntax error
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

    THEANO_FLAGS splits on commas, so the rpath is passed as
    ``-Xlinker -rpath=DIR`` rather than ``-Wl,-rpath,DIR``; Theano splits
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


def configure(environ=os.environ):
    """Add our defaults to THEANO_FLAGS for the options the user left unset:
    the BLAS flags, and allow_gc=False (Theano then keeps each function's
    intermediate buffers between calls instead of freeing and allocating
    them again: a training step runs 100,000 times on arrays of the same
    shapes, and this made it about 10 % faster here)."""
    if 'theano' in sys.modules:
        return
    defaults = [(LDFLAGS_KEY, default_ldflags), ('allow_gc', lambda: 'False')]
    added = [key + '=' + value() for key, value in defaults
             if not user_sets(environ, key)]
    if any(flag.startswith(LDFLAGS_KEY + '=-L') for flag in added):
        # Theano looks for lib<name>.so beside -L and warns that it did not
        # find "lib:libmkl_rt.so.3.so"; the library links all the same
        logging.getLogger('theano.tensor.blas').addFilter(
            lambda record: 'did not find a dynamic library' not in
            record.getMessage())
    if added:
        flags = [environ.get('THEANO_FLAGS', '')] + added
        environ['THEANO_FLAGS'] = ','.join(f for f in flags if f)
