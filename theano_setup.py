"""Give Theano a BLAS to link before it is first imported.

Theano-PyMC 1.1.2 asks ``numpy.distutils`` for NumPy's BLAS at import time;
numpy 1.23 no longer says, and ``import theano`` fails unless the
``blas__ldflags`` option is set. ``configure()`` sets it for this process,
through ``THEANO_FLAGS``, to ``-lopenblas`` when the linker can find
OpenBLAS (Debian: ``libopenblas-dev``), and otherwise to the empty value,
which makes Theano fall back to NumPy's C-API BLAS (it says so in one line,
``WARNING (theano.tensor.blas): Using NumPy C-API based implementation``).

A user's own choice always wins: nothing is changed when ``THEANO_FLAGS``
or a theanorc file (``THEANORC``, default ``~/.theanorc``) already sets the
BLAS flags, or when Theano was imported before us.
"""
import configparser
import os
import subprocess
import sys

LDFLAGS_KEY = 'blas__ldflags'


def theanorc_files(environ):
    """The config files Theano reads, in its own order (see THEANORC)."""
    spec = environ.get('THEANORC', '~/.theanorc')
    return [os.path.expanduser(p) for p in spec.split(os.pathsep) if p]


def user_sets_ldflags(environ):
    """True when THEANO_FLAGS or a theanorc file names the BLAS flags."""
    for item in environ.get('THEANO_FLAGS', '').split(','):
        if item.split('=', 1)[0].strip() == LDFLAGS_KEY:
            return True
    parser = configparser.RawConfigParser()
    try:
        parser.read(theanorc_files(environ))
    except configparser.Error:
        return False  # Theano will report its own config file's syntax error
    return parser.has_option('blas', 'ldflags')


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


def configure(environ=os.environ):
    """Add a default ``blas__ldflags`` to THEANO_FLAGS unless the user chose."""
    if 'theano' in sys.modules or user_sets_ldflags(environ):
        return
    flags = [environ.get('THEANO_FLAGS', ''),
             LDFLAGS_KEY + '=' + openblas_ldflags()]
    environ['THEANO_FLAGS'] = ','.join(f for f in flags if f)
