"""Datasets made by an attacker, and every legitimate way of pickling the
real one, against mnist_file.read_mnist (array_pickle underneath).

Memory is measured with tracemalloc, which counts every allocation of
Python and numpy, including pages never touched (the kind that made a
43-byte pickle "allocate" 2 GB). `python tests/test_hostile_files.py`
prints the table of each hostile file's outcome, time and peak memory.
"""
import functools
import gzip
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib

import numpy
import pytest

from machinery import mnist_file
from machinery.mnist_file import DatasetError, UnsafePickleError, read_mnist
from test_mnist_data import assert_same, small_datasets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MB = 10 ** 6


# ---- pickle opcodes, by hand -------------------------------------------------

def glob(module, name):
    return b'c' + f'{module}\n{name}\n'.encode()


def ints(*values):
    return b''.join(b'J' + struct.pack('<i', v) for v in values)


def short(data):
    return b'U' + bytes([len(data)]) + data


def text(string):
    """SHORT_BINUNICODE: a str, as Python 3 pickles it."""
    data = string.encode()
    return b'\x8c' + bytes([len(data)]) + data


def binbytes8(data):
    return b'\x8e' + struct.pack('<Q', len(data)) + data


RECONSTRUCT = glob('numpy.core.multiarray', '_reconstruct') + \
    glob('numpy', 'ndarray')
PLAIN_STATE = b'(K\x03' + short(b'<') + b'NNN' + ints(-1, -1, 0) + b't'


def announce(shape, code=b'b'):
    """_reconstruct(ndarray, shape, code), as numpy's pickles start an
    array (with shape (0,) and code b'b')."""
    return RECONSTRUCT + b'(' + ints(*shape) + b't' + short(code) + b'\x87R'


def dtype(name, state=PLAIN_STATE):
    return glob('numpy', 'dtype') + short(name) + b'\x89\x88\x87R' + \
        state + b'b'


def array(shape, name, data):
    """An array as numpy pickles it, with ``data`` as its bytes."""
    return announce((0,)) + b'(K\x01(' + ints(*shape) + b't' + \
        dtype(name) + b'\x89' + binbytes8(data) + b'tb'


def p2(body):
    return b'\x80\x02' + body + b'.'


def gz(data):
    return gzip.compress(data, mtime=0)


def bomb(prefix, n_zeros, suffix):
    """A one-member gzip file of prefix + n_zeros zero bytes + suffix, in
    little space and time: 16 MB of zeros is compressed once, with a full
    flush on each side, so that the same bytes can be repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = 1 << 24
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    rest = c.compress(bytes(n_zeros % block)) + c.compress(suffix) + \
        c.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(n_zeros // block):
        crc = zlib.crc32(bytes(block), crc)
    crc = zlib.crc32(suffix, zlib.crc32(bytes(n_zeros % block), crc))
    size = len(prefix) + n_zeros + len(suffix)
    return (b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff' + head +
            zeros * (n_zeros // block) + rest +
            struct.pack('<II', crc, size & 0xffffffff))


def valid_pickle(protocol=2, sizes=(2, 1, 1)):
    return pickle.dumps(small_datasets(sizes), protocol=protocol)


# ---- the hostile files -------------------------------------------------------

def _hostile():
    """name -> (function making the file's bytes, phrase of the error,
    the peak memory allowed in MB)."""
    sets = b''
    for n in (1000000, 10000, 10000):
        sets += announce((n, 784), b'f4') + announce((n,), b'i8') + b'\x86'
    long_text = 'a' * (1 << 20)
    reuse = (b'(' + glob('_codecs', 'encode') + b'q\x00X' +
             struct.pack('<I', len(long_text)) + long_text.encode() +
             b'q\x01' +
             text('latin1') + b'q\x02\x86R' +
             b'h\x00h\x01h\x02\x86R' * 100 + b't')
    subarray = (b'(K\x03' + short(b'<') + b'(' + dtype(b'f8') + b'(' +
                ints(1000, 1000) + b'tt' + b'NN' + ints(8000000, 8, 16) +
                b't')
    valid = valid_pickle()
    n_bomb = 1400 * MB
    return {
        # the three files of issue 10, rebuilt
        'tiny pickle asks for 2 GB': (
            lambda: gz(p2(announce((270000000,), b'f8'))),
            'before its data', 5),
        'a million examples in 400 bytes': (
            lambda: gz(p2(sets + b'\x87')), 'before its data', 5),
        'gzip bomb: one 1.4 GB string': (
            lambda: bomb(b'\x80\x04' + b'\x8e' + struct.pack('<Q', n_bomb),
                         n_bomb, b'.'), 'too large for MNIST', 10),
        # arrays that claim more than they hold
        'state claims more data than it has': (
            lambda: gz(p2(array((1000000, 784), b'f4', bytes(16)))),
            'needs 3136000000 bytes of data, the pickle holds 16', 5),
        'protocol 5 buffer smaller than its shape': (
            lambda: gz(b'\x80\x05' + glob('numpy._core.numeric',
                                          '_frombuffer') +
                       b'(\x96' + struct.pack('<Q', 16) + bytes(16) +
                       dtype(b'f4') + b'(' + ints(1000000, 784) + b't' +
                       text('C') + b'tR.'),
            'needs 3136000000 bytes', 5),
        'negative size': (
            lambda: gz(p2(array((-1, 784), b'f4', b''))), 'shape', 5),
        # dtypes that are not plain numbers
        'object dtype': (
            lambda: gz(p2(dtype(b'O'))), "dtype 'O' is not one of", 5),
        'huge void dtype': (
            lambda: gz(p2(dtype(b'V2000000000'))), 'is not one of', 5),
        'subarray dtype state': (
            lambda: gz(p2(dtype(b'f8', subarray))),
            'not that of a plain number type', 5),
        # one array's data used many times
        'long text encoded 100 times': (
            lambda: gz(p2(reuse)), 'refers again to long data', 10),
        # size and time bombs below the declared-length check
        'gzip bomb: 100 MB strings': (
            _strings_bomb,
            'too large for MNIST', 400),
        'zeros after the pickle': (
            lambda: bomb(valid, n_bomb, b''), 'too large for MNIST', 10),
        'a million empty gzip members': (
            lambda: gz(valid) + gz(b'') * 1000000, 'second gzip member', 5),
        'too many opcodes': (
            lambda: gz(p2(b'(' + b'N' * 200000 + b't')),
            'more than 100,000 opcodes', 20),
        '99,000 nested tuples': (
            lambda: gz(p2(b')' + b'\x85' * 99000)), 'MNIST structure', 50),
        'dict with integer keys': (
            lambda: gz(p2(b'}(' + b'K\x01N' * 1000 + b'u')), 'dict key', 5),
        'integer of 200 bytes': (
            lambda: gz(p2(b'\x8a\xc8' + bytes(200))), 'integer of 200', 5),
        # names
        'numpy.ndarray called directly': (
            lambda: gz(p2(glob('numpy', 'ndarray') + b'(' + ints(10 ** 9) +
                          b't\x85R')), 'REDUCE calls numpy.ndarray', 5),
        'as_strided': (
            lambda: gz(p2(glob('numpy.lib.stride_tricks', 'as_strided'))),
            'numpy.lib.stride_tricks.as_strided', 5),
        'numpy scalar': (
            lambda: gz(p2(glob('numpy.core.multiarray', 'scalar'))),
            'numpy.core.multiarray.scalar', 5),
        'a near miss of a name': (
            lambda: gz(p2(glob('numpy.core.multiarray ', '_reconstruct'))),
            'only numpy arrays are allowed', 5),
    }


def _strings_bomb():
    """Fourteen 100 MiB strings of zeros in a 100 KB file: each is within
    the bounds until they add up past 300 MB."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    string = b'\x8e' + struct.pack('<Q', 100 << 20)
    parts = [c.compress(b'\x80\x04(') + c.flush(zlib.Z_FULL_FLUSH)]
    head = c.compress(string) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(b'\x80\x04(')
    for _ in range(14):
        parts.append(head)
        crc = zlib.crc32(string, crc)
        parts.append(zeros * 100)
        for _ in range(100):
            crc = zlib.crc32(bytes(1 << 20), crc)
    parts.append(c.compress(b't.') + c.flush(zlib.Z_FINISH))
    crc = zlib.crc32(b't.', crc)
    size = 3 + 14 * (9 + 100 * (1 << 20)) + 2
    return (b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff' + b''.join(parts) +
            struct.pack('<II', crc, size & 0xffffffff))


HOSTILE = _hostile()


@functools.lru_cache(maxsize=None)
def hostile_bytes(name):
    return HOSTILE[name][0]()


def measure(path):
    """(outcome, seconds, peak MB) of read_mnist(path)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        read_mnist(path)
        outcome = None
    except DatasetError as exc:
        outcome = exc
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
    return outcome, seconds, peak


@pytest.mark.parametrize('name', sorted(HOSTILE))
def test_hostile_file_is_refused_in_bounded_memory_and_time(tmp_path, name):
    _, phrase, max_mb = HOSTILE[name]
    path = tmp_path / 'mnist.pkl.gz'
    path.write_bytes(hostile_bytes(name))
    error, seconds, peak = measure(path)
    assert error is not None, 'loaded'
    message = str(error)
    assert '\n' not in message and str(path) in message
    assert phrase in message, message
    assert peak < max_mb, f'{peak:.1f} MB'
    assert seconds < 10


def test_hostile_files_are_small():
    sizes = {name: len(hostile_bytes(name)) for name in HOSTILE
             if name != 'a million empty gzip members'}
    assert max(sizes.values()) < 1.5 * MB, sizes
    assert len(hostile_bytes('tiny pickle asks for 2 GB')) < 100
    assert len(gzip.decompress(hostile_bytes(
        'a million examples in 400 bytes'))) < 500


def test_gzip_bombs_hold_what_they_claim():
    """The bomb builder makes real gzip files (checked on a small one)."""
    data = bomb(b'head', 3 * (1 << 24) + 5, b'tail')
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        out = f.read()
    assert out == b'head' + bytes(3 * (1 << 24) + 5) + b'tail'


def test_unsafe_names_are_unsafe_pickle_errors(tmp_path):
    path = tmp_path / 'm.pkl.gz'
    path.write_bytes(hostile_bytes('as_strided'))
    with pytest.raises(UnsafePickleError):
        read_mnist(path)


# ---- legitimate pickles ------------------------------------------------------

def respell(data, old, new):
    """The pickle ``data`` with the module ``old`` renamed ``new``
    (numpy.core <-> numpy._core), FRAME opcodes removed (they only group
    bytes) so that lengths can change."""
    import pickletools
    out = io.BytesIO()
    ops = list(pickletools.genops(data))
    for (op, arg, pos), nxt in zip(ops, ops[1:] + [(None, None, len(data))]):
        raw = data[pos:nxt[2]]
        if op.name == 'FRAME':
            continue
        if op.name == 'GLOBAL' and arg.startswith(old + '.'):
            raw = b'c' + (new + arg[len(old):]).replace(' ', '\n').encode() \
                + b'\n'
        if op.name == 'SHORT_BINUNICODE' and arg.startswith(old + '.'):
            name = (new + arg[len(old):]).encode()
            raw = b'\x8c' + bytes([len(name)]) + name
        out.write(raw)
    return out.getvalue()


@pytest.mark.parametrize('spelling', ['numpy.core', 'numpy._core'])
@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
def test_every_protocol_and_both_numpy_spellings_load(tmp_path, protocol,
                                                      spelling):
    datasets = small_datasets((5, 3, 2), seed=protocol)
    data = pickle.dumps(datasets, protocol=protocol)
    for other in ('numpy.core', 'numpy._core'):
        if other != spelling:
            data = respell(data, other, spelling)
    names = b'_frombuffer' if protocol == 5 else b'_reconstruct'
    assert (spelling + '.').encode() in data and names in data
    path = tmp_path / 'm.pkl.gz'
    path.write_bytes(gz(data))
    assert_same(read_mnist(path), datasets)


def test_fortran_order_and_big_endian_arrays_load(tmp_path):
    (tx, ty), (vx, vy), (sx, sy) = small_datasets((5, 3, 2))
    datasets = ((numpy.asfortranarray(tx), ty.astype('>i8')),
                (vx.astype('>f4'), vy), (sx, sy.astype(numpy.uint8)))
    for protocol in (2, 5):
        path = tmp_path / f'p{protocol}.pkl.gz'
        path.write_bytes(gz(pickle.dumps(datasets, protocol=protocol)))
        loaded = read_mnist(path)
        for (a, b), (c, d) in zip(loaded, datasets):
            numpy.testing.assert_array_equal(a, c)
            numpy.testing.assert_array_equal(b, d)
        assert loaded[0][0].flags.f_contiguous


@pytest.mark.slow
def test_real_mnist_in_every_protocol(real_mnist, tmp_path):
    """The real data written with protocols 2-5 by this numpy loads, equal,
    in far less than a gigabyte (about 240 MB traced)."""
    datasets = read_mnist(real_mnist)
    for protocol in (2, 3, 4, 5):
        path = tmp_path / f'p{protocol}.pkl.gz'
        with gzip.open(path, 'wb', compresslevel=1) as f:
            pickle.dump(datasets, f, protocol=protocol)
        tracemalloc.start()
        loaded = read_mnist(path)
        peak = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
        assert_same(loaded, datasets)
        assert peak < 400, (protocol, peak)
        del loaded
        os.remove(path)


def test_bounds_are_what_the_docstring_says():
    """The module docstring states each bound; the constants must agree."""
    doc = mnist_file.__doc__
    pickle_mb = int(re.search(r'MAX_PICKLE_BYTES, (\d+) MB', doc).group(1))
    examples = int(re.search(r'MAX_EXAMPLES, ([\d,]+) per set',
                             doc).group(1).replace(',', ''))
    arrays, opcodes = re.search(r'- (\w+) arrays, ([\d,]+) pickle opcodes',
                                doc).groups()
    assert mnist_file.MAX_PICKLE_BYTES == pickle_mb * MB
    assert mnist_file.MAX_EXAMPLES == examples
    assert mnist_file.MAX_ARRAYS == ['one', 'two', 'three', 'four', 'five',
                                     'six', 'seven'].index(arrays) + 1
    assert mnist_file.MAX_OPCODES == int(opcodes.replace(',', ''))
    # "a gzip is never much larger than what it holds"
    assert mnist_file.MAX_PICKLE_BYTES < mnist_file.MAX_FILE_BYTES < \
        1.02 * mnist_file.MAX_PICKLE_BYTES


def test_more_examples_than_all_of_mnist_is_refused(tmp_path):
    x = numpy.zeros((70001, 784), numpy.float16)  # 110 MB: within bytes
    y = numpy.zeros(70001, numpy.uint8)
    small = small_datasets((2, 1, 1))
    path = tmp_path / 'm.pkl.gz'
    with gzip.open(path, 'wb', compresslevel=1) as f:
        pickle.dump(((x, y), small[1], small[2]), f, protocol=4)
    with pytest.raises(DatasetError) as excinfo:
        read_mnist(path)
    assert 'has 70001 examples, more than the 70000' in str(excinfo.value)


# ---- fuzzing -------------------------------------------------------------------

FUZZ_SEED = 20261201


def _bases():
    """Small valid pickles: each protocol, and Python 2's str for data."""
    bases = [valid_pickle(p, (2, 1, 1)) for p in (2, 3, 4, 5)]
    bases.append(respell(valid_pickle(2, (1, 1, 1)), 'numpy._core',
                         'numpy.core'))
    return bases


INTERESTING = (0, 1, 0x7f, 0x80, 0xff, ord('('), ord('.'), ord('h'),
               ord('R'), ord('b'), 0x8e, 0x96)


def mutate(data, rng):
    """One random change to ``data``: bit flips, a byte set, a cut, an
    insertion, a duplicated or deleted run (opcodes repeated or lost), a
    large number written over a length, a run copied elsewhere."""
    data = bytearray(data)
    n = len(data)
    at = int(rng.integers(n))
    kind = int(rng.integers(8))
    if kind == 0:
        for _ in range(int(rng.integers(1, 5))):
            data[int(rng.integers(n))] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        data[at] = int(rng.choice(INTERESTING)) if rng.random() < .5 \
            else int(rng.integers(256))
    elif kind == 2:
        del data[at:]
    elif kind == 3:
        data[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)),
                                   dtype=numpy.uint8).tobytes()
    elif kind == 4:
        data[at:at] = data[at:at + int(rng.integers(1, 33))]
    elif kind == 5:
        del data[at:at + int(rng.integers(1, 33))]
    elif kind == 6:
        size = int(rng.choice([4, 8]))
        value = int(rng.integers(1, 1 << 62)) >> int(rng.integers(0, 60))
        data[at:at + size] = (value % (1 << 8 * size)).to_bytes(size,
                                                                'little')
    else:
        run = data[at:at + int(rng.integers(1, 65))]
        dest = int(rng.integers(n))
        data[dest:dest + len(run)] = run
    return bytes(data)


def fuzz(n_cases, seed, folder):
    """Load n_cases mutated files; return the summary (a dict). Raises
    AssertionError naming the case when loading neither succeeds with
    valid arrays nor raises DatasetError."""
    rng = numpy.random.default_rng(seed)
    bases = _bases()
    path = os.path.join(folder, 'fuzz.pkl.gz')
    outcomes = {'loaded': 0, 'refused': 0}
    worst_mb = worst_s = 0.0
    tracemalloc.start()
    for case in range(n_cases):
        base = bases[int(rng.integers(len(bases)))]
        if rng.random() < 0.3:  # the gzip bytes
            data = mutate(gz(base), rng)
        else:  # the pickle inside; sometimes twice
            data = mutate(base, rng)
            if rng.random() < 0.3:
                data = mutate(data, rng)
            data = gz(data)
        with open(path, 'wb') as f:
            f.write(data)
        tracemalloc.reset_peak()
        start = time.perf_counter()
        try:
            datasets = read_mnist(path)
        except DatasetError as exc:
            assert '\n' not in str(exc), (case, str(exc))
            outcomes['refused'] += 1
        except BaseException as exc:
            raise AssertionError(f'case {case} (seed {seed}): '
                                 f'{type(exc).__name__}: {exc}') from exc
        else:
            mnist_file.check_datasets(datasets, path)
            outcomes['loaded'] += 1
            del datasets
        worst_s = max(worst_s, time.perf_counter() - start)
        worst_mb = max(worst_mb, tracemalloc.get_traced_memory()[1] / MB)
    tracemalloc.stop()
    return dict(outcomes, cases=n_cases, worst_mb=round(worst_mb, 2),
                worst_s=round(worst_s, 3))


FUZZ_RUNNER = '''
import json, resource, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import test_hostile_files as t
# a hard cap on the address space: what is mapped now and 1 GB more
with open('/proc/self/status') as f:
    vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmSize'))
resource.setrlimit(resource.RLIMIT_AS, (vm + 2 ** 30, vm + 2 ** 30))
print(json.dumps(t.fuzz(int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
'''


@pytest.mark.parametrize('n_cases, seed', [
    (500, FUZZ_SEED),
    pytest.param(5000, FUZZ_SEED + 1, marks=pytest.mark.slow),
])
def test_fuzzed_files_load_or_fail_with_one_line(tmp_path, n_cases, seed):
    """n_cases seeded mutations of small valid files (every protocol), in
    a process whose address space is capped at 1 GB above what it has
    mapped after its imports: each loads as valid arrays or raises
    DatasetError, within 50 MB and a second."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, '-c', FUZZ_RUNNER, HERE, ROOT, str(n_cases),
         str(seed), str(tmp_path)], capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.splitlines()[-1])
    print(summary, f'{time.perf_counter() - start:.1f} s')
    assert summary['cases'] == n_cases
    assert summary['loaded'] > 0 and summary['refused'] > 0
    assert summary['worst_mb'] < 50 and summary['worst_s'] < 1


if __name__ == '__main__':  # the table for a report
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        for name in HOSTILE:
            path = os.path.join(folder, 'mnist.pkl.gz')
            with open(path, 'wb') as f:
                f.write(hostile_bytes(name))
            error, seconds, peak = measure(path)
            print(f'{name:42} {len(hostile_bytes(name)):>9,} B  '
                  f'{seconds:5.2f} s  {peak:7.1f} MB  '
                  f'{str(error).replace(path, "FILE")[:150]}')
