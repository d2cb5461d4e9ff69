"""The tutorial's dataset file, ``mnist.pkl.gz``: read it without trusting
it, and write it.

The file is a gzipped pickle (protocol 2, first written by Python 2) of
``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``: each x a
float32 array of shape (n, 784), pixels in [0, 1], each y an int64 array
of n labels 0-9; 50,000 / 10,000 / 10,000 examples.

``read_mnist(path)`` loads it with array_pickle, which builds numpy arrays
and nothing else and holds no more memory than the bytes the file really
contains, within the bounds below; then checks the result (structure,
shapes, dtypes, sizes, value ranges). Every problem raises DatasetError,
one line saying what is wrong and what to do. ``write_mnist`` writes the
format. Getting the file in the first place is mnist_data.py's job.

Bounds, from the real file (222 MB of pickle once decompressed, 17.6 MB
gzipped, 70,000 examples):

- MAX_PICKLE_BYTES, 300 MB decompressed: the real data in any pickle
  protocol 2-5, with room for ~35% more examples; a float64 copy of the
  whole of MNIST (440 MB) does not fit: convert it to float32;
- MAX_EXAMPLES, 70,000 per set: all of MNIST's images (so another split
  of them, e.g. a 60,000-example training set, still loads);
- MAX_FILE_BYTES: the gzip file itself (a gzip is never much larger than
  what it holds), so that a file that decompresses to nothing cannot keep
  the reader busy either;
- six arrays, 100,000 pickle opcodes (the real file has 200).

So a hostile file is refused with about as much memory and time as the
real file takes, or much less: reading the real one takes about 220 MB
and 2 s here.
"""
import gzip
import os
import pickle
import zlib

import numpy

from . import array_pickle
from .outputs import atomic_write, special_kind
from .shell import shell_quote

# Where the dataset lives unless --dataset says otherwise. A checkout (or
# make's editable install of one) keeps it in data/ beside the tutorial
# scripts; an installed copy (pip install) in a folder of the user's:
# $CA_DATA_DIR when set, else $XDG_DATA_HOME/theano-contractive-autoencoder
# (~/.local/share/theano-contractive-autoencoder by default).
DATA_DIR_VAR = 'CA_DATA_DIR'
_TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_CHECKOUT = all(os.path.isfile(os.path.join(_TOP, name))
                  for name in ('setup.cfg', 'cA.py'))


def default_path(environ=os.environ):
    """(path of the dataset when none is given, the same path as --help
    shows it)."""
    if environ.get(DATA_DIR_VAR):
        path = os.path.join(os.path.abspath(os.path.expanduser(
            environ[DATA_DIR_VAR])), 'mnist.pkl.gz')
        return path, path
    if IN_CHECKOUT:
        return os.path.join(_TOP, 'data', 'mnist.pkl.gz'), 'data/mnist.pkl.gz'
    folder = os.path.join(
        environ.get('XDG_DATA_HOME') or os.path.join('~', '.local', 'share'),
        'theano-contractive-autoencoder')
    return (os.path.join(os.path.expanduser(folder), 'mnist.pkl.gz'),
            os.path.join(folder, 'mnist.pkl.gz'))


DEFAULT_PATH, SHOWN_PATH = default_path()

N_PIXELS = 784
SET_NAMES = ('train', 'valid', 'test')

MAX_PICKLE_BYTES = 300 * 10 ** 6
MAX_FILE_BYTES = MAX_PICKLE_BYTES + MAX_PICKLE_BYTES // 100
MAX_EXAMPLES = 70000
MAX_OPCODES = 100000
MAX_ARRAYS = 6


class DatasetError(Exception):
    """A problem with the data a user can cause or fix (missing, corrupt or
    wrong file, failed download). The message is always one line."""

    def __init__(self, message):
        super().__init__(' '.join(str(message).split()))


class DatasetMissingError(DatasetError):
    """The dataset file does not exist."""


class UnsafePickleError(DatasetError):
    """The pickle asked for something other than numpy arrays."""


def download_command(path):
    """The command that downloads MNIST to ``path``."""
    if os.path.abspath(path) == DEFAULT_PATH:
        return 'python -m machinery.mnist_data'
    return 'python -m machinery.mnist_data ' + shell_quote(path)


def _megabytes(n):
    return f'{n / 1e6:.0f} MB'


def _gzip_problem(exc, name, fix):
    if isinstance(exc, EOFError):
        return DatasetError(f'{name} is truncated ({exc}){fix}')
    return DatasetError(
        f'{name} is corrupt ({type(exc).__name__}: {exc}){fix}')


class _Gunzip:
    """The bytes inside a gzip file of one member, ``read(n)`` at a time.

    zlib checks the gzip header and trailer (CRC and size). Unlike the
    gzip module, it does not go on to read further members: a file of
    millions of empty members would take minutes. Output comes 64 KB at a
    time, whatever a few input bytes expand to. EOFError when the file
    ends too soon, zlib.error when it is corrupt."""

    def __init__(self, f):
        self.f = f
        self.z = zlib.decompressobj(wbits=31)
        self.out, self.pos = b'', 0

    def read(self, n):
        parts = []
        while n:
            if self.pos == len(self.out):
                self.out, self.pos = self._more(), 0
                if not self.out:
                    break  # the end of the member
            part = self.out[self.pos:self.pos + n]
            self.pos += len(part)
            n -= len(part)
            parts.append(part)
        return b''.join(parts)

    def _more(self):
        while not self.z.eof:
            data = self.z.unconsumed_tail
            if not data:
                out = self.z.decompress(b'', 1 << 16)  # what zlib holds
                if out:
                    return out
                data = self.f.read(1 << 16)
                if not data:
                    raise EOFError('the gzip data ends before its end '
                                   'marker')
            out = self.z.decompress(data, 1 << 16)
            if out:
                return out
        return b''

    def extra(self):
        """Whether anything follows the gzip member (read to its end)."""
        return bool(self.z.unused_data or self.f.read(1))


def _drain(gz, limit):
    """Read ``gz`` to its end, at most ``limit`` bytes: (bytes left,
    exception or None)."""
    left = 0
    try:
        while left <= limit:
            chunk = gz.read(min(1 << 20, limit + 1 - left))
            if not chunk:
                return left, None
            left += len(chunk)
        return left, None
    except (OSError, EOFError, zlib.error) as exc:
        return left, exc


def _open(path, name, fix):
    """The open file at ``path``, once it looks like a gzip file of an
    allowed size."""
    kind = special_kind(path)
    if kind:
        # opening a FIFO would wait for a writer, forever; reading a
        # device would not end
        raise DatasetError(f'{name} is {kind}, not a dataset file: give the '
                           f'path of mnist.pkl.gz (a regular file)')
    try:
        f = open(path, 'rb')
    except FileNotFoundError:
        make = (' (or `make data`)' if IN_CHECKOUT and
                os.path.abspath(path) == DEFAULT_PATH else '')
        raise DatasetMissingError(
            f'{name} does not exist: run `{download_command(path)}` to '
            f'download MNIST{make}, or put mnist.pkl.gz there by hand'
        ) from None
    except IsADirectoryError:
        raise DatasetError(f'{name} is a folder, not a dataset file: give '
                           f'the path of mnist.pkl.gz') from None
    except OSError as exc:
        raise DatasetError(
            f'cannot read {name} ({exc.strerror}){fix}') from None
    try:
        size = os.fstat(f.fileno()).st_size
        magic = f.read(2)
        f.seek(0)
    except OSError as exc:
        f.close()
        raise DatasetError(f'cannot read {name} ({exc.strerror}){fix}') \
            from None
    problem = None
    if not magic:
        problem = f'{name} is empty{fix}'
    elif magic != b'\x1f\x8b':
        problem = f'{name} is not a gzip file (it starts with {magic!r}){fix}'
    elif size > MAX_FILE_BYTES:
        problem = (f'{name} has {_megabytes(size)}, more than any MNIST file '
                   f'({_megabytes(MAX_FILE_BYTES)} at most){fix}')
    if problem:
        f.close()
        raise DatasetError(problem)
    return f


def load_pickle(path, name, fix):
    """Unpickle the gzipped file at ``path`` (arrays only, within the
    bounds); ``name`` names it in messages, ``fix`` (': what to do') ends
    them."""
    with _open(path, name, fix) as f:
        gz = _Gunzip(f)
        try:
            obj, used = array_pickle.load(gz, MAX_PICKLE_BYTES,
                                          MAX_OPCODES, MAX_ARRAYS)
        except array_pickle.Unsafe as exc:
            raise UnsafePickleError(f'{name} is not a plain MNIST pickle: '
                                    f'{exc}{fix}') from None
        except (EOFError, OSError, zlib.error) as exc:
            # gzip's own complaints, including a file cut short
            raise _gzip_problem(exc, name, fix) from None
        except MemoryError:
            raise  # never expected within the bounds: not the file's fault
        except Exception as exc:  # a broken pickle, or what corrupts it
            _, gz_exc = _drain(gz, MAX_PICKLE_BYTES)
            if gz_exc is not None:
                raise _gzip_problem(gz_exc, name, fix) from None
            if isinstance(exc, array_pickle.TooLarge):
                raise DatasetError(
                    f'{name} is too large for MNIST: {exc} (the real MNIST '
                    f'is a 222 MB pickle of 6 arrays){fix}') from None
            if isinstance(exc, array_pickle.Truncated):
                raise DatasetError(f'{name} is truncated ({exc}){fix}') \
                    from None
            reason = str(exc) if isinstance(exc, array_pickle.Refused) \
                else f'{type(exc).__name__}: {exc}'
            raise DatasetError(
                f'{name} is not a valid pickle ({reason}){fix}') from None
        left, gz_exc = _drain(gz, MAX_PICKLE_BYTES - used)
        if gz_exc is not None:
            raise _gzip_problem(gz_exc, name, fix)
        if left > MAX_PICKLE_BYTES - used:
            raise DatasetError(
                f'{name} is too large for MNIST: it decompresses to more '
                f'than {_megabytes(MAX_PICKLE_BYTES)} (the real MNIST: 222 '
                f'MB){fix}')
        if left:
            raise DatasetError(
                f'{name} has {left} bytes of extra data after the pickle{fix}')
        if gz.extra():
            raise DatasetError(f'{name} has data after its gzip stream (a '
                               f'second gzip member){fix}')
    return obj


def _describe(obj):
    if isinstance(obj, (tuple, list, dict)):
        items = 'item' if len(obj) == 1 else 'items'
        return f'a {type(obj).__name__} of {len(obj)} {items}'
    if isinstance(obj, numpy.ndarray):
        return f'an array of shape {obj.shape}'
    return f'a {type(obj).__name__}'


def check_datasets(obj, name, fix=''):
    """Check that ``obj`` is MNIST-shaped data; return it as nested tuples.
    ``name`` and ``fix`` as for load_pickle."""
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise DatasetError(
            f'{name} does not have the MNIST structure: expected a tuple '
            f'(train, valid, test) of (x, y) pairs, found {_describe(obj)}'
            f'{fix}')
    datasets = []
    for set_name, pair in zip(SET_NAMES, obj):
        where = f'{name}: the {set_name} set'
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DatasetError(
                f'{where} is not an (x, y) pair (found {_describe(pair)})'
                f'{fix}')
        x, y = pair
        for part, value in (('x', x), ('y', y)):
            if not isinstance(value, numpy.ndarray):
                raise DatasetError(
                    f'{where}: {part} is not a numpy array (found '
                    f'{_describe(value)}){fix}')
        if x.ndim != 2 or x.shape[1] != N_PIXELS:
            raise DatasetError(
                f'{where}: x has shape {x.shape}, expected (n, {N_PIXELS}) '
                f'(one 28x28 image per row){fix}')
        if x.dtype.kind != 'f':
            raise DatasetError(
                f'{where}: x has dtype {x.dtype}, expected a floating type '
                f'(float32){fix}')
        if y.ndim != 1 or y.dtype.kind not in 'iu':
            raise DatasetError(
                f'{where}: y is a {y.dtype} array of shape {y.shape}, '
                f'expected a 1-D integer array of labels{fix}')
        if len(x) != len(y):
            raise DatasetError(
                f'{where} has {len(x)} images but {len(y)} labels{fix}')
        if len(x) == 0:
            raise DatasetError(f'{where} has no examples{fix}')
        if len(x) > MAX_EXAMPLES:
            raise DatasetError(
                f'{where} has {len(x)} examples, more than the {MAX_EXAMPLES}'
                f' images of all MNIST{fix}')
        low, high = x.min(), x.max()
        if not (numpy.isfinite(low) and numpy.isfinite(high)):
            raise DatasetError(
                f'{where}: x contains NaN or infinite values{fix}')
        if low < 0 or high > 1:
            raise DatasetError(
                f'{where}: x has values outside [0, 1] (from {low} to '
                f'{high}){fix}')
        if y.min() < 0 or y.max() > 9:
            raise DatasetError(
                f'{where}: y has labels outside 0..9 (from {y.min()} to '
                f'{y.max()}){fix}')
        datasets.append((x, y))
    return tuple(datasets)


def read_checked(path, name, fix=''):
    """load_pickle then check_datasets."""
    return check_datasets(load_pickle(path, name, fix), name, fix)


def read_mnist(path=DEFAULT_PATH):
    """Load and check the dataset at ``path`` (a gzipped pickle).

    Returns ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``:
    2-D floating arrays of 784 columns with values in [0, 1], and 1-D
    integer arrays of labels 0-9 of the same lengths.

    Raises DatasetMissingError when there is no file, UnsafePickleError when
    the pickle asks for anything but numpy arrays, and DatasetError for any
    other problem with the file, including one that goes past the bounds
    of the module docstring.
    """
    path = os.fspath(path)
    fix = (f': delete it and run `{download_command(path)}` to download '
           f'MNIST again')
    return read_checked(path, path, fix)


def write_mnist(path, datasets):
    """Write ``datasets`` to ``path`` as a gzipped protocol-2 pickle, the
    format read_mnist reads; atomically (a complete file or none). The data
    is written as given, unchecked (tests write broken files with it)."""
    path = os.fspath(path)
    inner = os.path.basename(path)
    if inner.endswith('.gz'):
        inner = inner[:-3]
    with atomic_write(path, 'wb') as f:
        with gzip.GzipFile(filename=inner, mode='wb', fileobj=f,
                           compresslevel=6, mtime=0) as gz:
            pickle.dump(datasets, gz, protocol=2)
