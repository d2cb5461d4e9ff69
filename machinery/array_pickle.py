"""Unpickle numpy arrays, and nothing else, in memory and time bounded by
the bytes that the pickle really holds.

``load(stream, max_bytes)`` reads one pickle from ``stream`` (a binary file
object) and returns ``(obj, n_bytes_read)``, where obj is built from
tuples, lists, dicts, numbers, strings and numpy arrays only.

Why not ``pickle.Unpickler`` with a ``find_class`` that allows only numpy's
names: the pickle still decides what numpy does. numpy's own
``_reconstruct`` allocates an array of any shape it is given before any
data arrives (a 66-byte pickle can ask for 2 GB, a 400-byte one for a
"dataset" of a million uninitialised examples), and Python's unpickler
allocates strings from the lengths the pickle states. So this module runs
the pickle itself, a small stack machine, with the opcodes that
``pickle.dump`` writes for such data with protocols 2 to 5 (and Python
2's, which wrote the tutorial's original file):

- **Names.** Only numpy's array reconstruction, by exact name, in both
  spellings (``numpy.core`` for numpy 1, ``numpy._core`` for numpy 2):
  ``multiarray._reconstruct`` and ``ndarray`` (protocols 2-4),
  ``numeric._frombuffer`` (protocol 5), ``dtype``; and the two helpers that
  Python 3's protocol 2 writes bytes with, ``_codecs.encode(text,
  'latin1')`` and ``bytes()``. Each is answered by a stand-in here that
  checks its arguments; no function of numpy's sees what the pickle says.
- **Arrays are views of bytes the pickle contains**: an array's shape and
  dtype must account for its data exactly. Dtypes are plain numbers
  (float16/32/64, int8-64, uint8-64): no objects, records or subarrays.
- **Bounds.** At most ``max_bytes`` read (a string's stated length is
  checked against what is left before anything is read, and its buffer
  grows only as bytes arrive), at most ``max_ops`` opcodes and
  ``max_arrays`` arrays. Data longer than ``SMALL`` bytes can be used once
  only: the memo forgets it, so a pickle cannot copy it again and again.
  Peak memory is thus about the data read plus a few MB.

A refusal raises ``Unsafe`` (a name that is not allowed), ``TooLarge`` (a
bound), ``Truncated`` (the data ends too soon) or ``Malformed``, all
``Refused``, with a one-line reason; what the stream itself raises (gzip
errors) passes through.
"""
import codecs
import struct

import numpy

SMALL = 256        # data up to this length may be referred to again
CHUNK = 1 << 20    # long strings are read and converted this much at a time

# dtype names that an array may have: plain numbers only
DTYPES = frozenset(('f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8',
                    'u1', 'u2', 'u4', 'u8'))
MAX_DIMS = 4
MAX_DIM = 1 << 31
MAX_DICT = 1000


class Refused(Exception):
    """The pickle is not one this module reads (one-line reason)."""


class Unsafe(Refused):
    """It names a function or class other than array reconstruction."""


class TooLarge(Refused):
    """It goes past a bound (bytes, opcodes, arrays)."""


class Truncated(Refused):
    """It ends before its STOP opcode or in the middle of an argument."""


class Malformed(Refused):
    """Anything else: an unknown opcode, wrong arguments, a broken stack."""


# ---- values that stand for what the pickle builds --------------------------

class LongText:
    """A string longer than SMALL, kept as its UTF-8 bytes: its only use is
    _codecs.encode(text, 'latin1'), which converts it in place."""

    def __init__(self, data):
        self.data = data


class _Stub:
    """An object announced by REDUCE and completed by BUILD."""
    result = None


class ArrayStub(_Stub):
    """numpy's _reconstruct(ndarray, (0,), b'b'): an array whose shape,
    dtype and data come with BUILD."""


class DTypeStub(_Stub):
    """numpy.dtype(name, False, True); BUILD gives its byte order."""

    def __init__(self, name):
        self.name = name

    def dtype(self):
        if self.result is None:  # no BUILD: native byte order
            self.result = numpy.dtype(self.name)
        return self.result


_USED = object()  # what the memo keeps of long data (see SMALL)


def _text(value):
    """A short name or code given as str (Python 3) or bytes (Python 2)."""
    if isinstance(value, (bytes, bytearray)) and len(value) <= SMALL:
        return value.decode('latin-1')
    if isinstance(value, str):
        return value
    raise Malformed(f'expected a short string, found {_kind(value)}')


def _kind(value):
    if isinstance(value, LongText):
        return 'a long text'
    if isinstance(value, (str, bytes, bytearray)):
        return f'{type(value).__name__} of {len(value)} bytes'
    return type(value).__name__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is(value, *choices):
    """value is one of choices (numbers or strings), compared only when it
    is a plain value: an array's == would compare element by element."""
    return type(value) in (bool, int, str, bytes) and value in choices


def _single_use(value):
    """Long data, or a tuple that holds long data (REDUCE and BUILD take
    their arguments from a tuple): the memo does not keep these."""
    def long(v):
        if isinstance(v, (str, bytes, bytearray)):
            return len(v) > SMALL
        return isinstance(v, LongText)
    return long(value) or (isinstance(value, tuple) and any(map(long, value)))


def _check_shape(shape):
    if not isinstance(shape, tuple) or len(shape) > MAX_DIMS or not all(
            _is_int(d) and 0 <= d < MAX_DIM for d in shape):
        raise Malformed(f'an array shape must be a tuple of at most '
                        f'{MAX_DIMS} sizes from 0 to {MAX_DIM - 1}')
    n = 1
    for d in shape:
        n *= d
    return n


def _array(data, dtype, shape, fortran):
    """The array of ``shape`` viewing ``data``, which must hold exactly its
    elements (a copy when data is short immutable bytes, so that every
    array is writable, as numpy's unpickling gives)."""
    if not isinstance(dtype, DTypeStub):
        raise Malformed(f'an array dtype must be numpy.dtype(...), found '
                        f'{_kind(dtype)}')
    dtype = dtype.dtype()
    n = _check_shape(shape)
    if not isinstance(data, (bytes, bytearray)):
        raise Malformed(f'array data must be bytes, found {_kind(data)}')
    if len(data) != n * dtype.itemsize:
        raise Malformed(
            f'an array of shape {shape} and dtype {dtype} needs '
            f'{n * dtype.itemsize} bytes of data, the pickle holds {len(data)}')
    array = numpy.frombuffer(data, dtype=dtype, count=n) if n else \
        numpy.empty(0, dtype=dtype)
    if not array.flags.writeable:
        array = array.copy()  # at most SMALL bytes
    return array.reshape(shape, order='F' if fortran else 'C')


def _utf8_to_latin1(data):
    """Convert the UTF-8 text in bytearray ``data`` to latin-1 bytes, in
    place: each character takes at least the one byte it gives, so the
    output never overtakes the input."""
    decoder = codecs.getincrementaldecoder('utf-8')()
    done = 0
    with memoryview(data) as view:
        for start in range(0, len(data), CHUNK):
            end = min(start + CHUNK, len(data))
            out = decoder.decode(view[start:end],
                                 final=end == len(data)).encode('latin-1')
            view[done:done + len(out)] = out
            done += len(out)
    del data[done:]
    return data


# ---- the stand-ins for the names a pickle may use --------------------------

class _Machine:
    """One load: see load()."""

    def __init__(self, stream, max_bytes, max_ops, max_arrays):
        self.stream = stream
        self.left = max_bytes
        self.max_bytes = max_bytes
        self.ops_left = max_ops
        self.max_ops = max_ops
        self.arrays_left = max_arrays
        self.max_arrays = max_arrays
        self.unfinished = 0  # arrays announced but not yet built
        self.stack, self.marks, self.memo = [], [], {}
        numpy_core = ('numpy.core', 'numpy._core')
        self.names = {
            **{(m + '.multiarray', '_reconstruct'): self.reconstruct
               for m in numpy_core},
            **{(m + '.numeric', '_frombuffer'): self.frombuffer
               for m in numpy_core},
            ('numpy', 'ndarray'): numpy.ndarray,
            ('numpy', 'dtype'): self.dtype,
            ('_codecs', 'encode'): self.encode,
            ('__builtin__', 'bytes'): self.empty_bytes,
            ('builtins', 'bytes'): self.empty_bytes,
        }
        self.callables = [f for f in self.names.values()
                          if f is not numpy.ndarray]

    # -- names --
    def find(self, module, name):
        try:
            return self.names[module, name]
        except KeyError:
            raise Unsafe(f'it asks for {module}.{name}, and only numpy '
                         f'arrays are allowed (loading it could run code)'
                         ) from None

    def new_array(self):
        if not self.arrays_left:
            raise TooLarge(f'it holds more than {self.max_arrays} arrays')
        self.arrays_left -= 1

    def reconstruct(self, subtype, shape, code):
        if subtype is not numpy.ndarray or not (
                isinstance(shape, tuple) and len(shape) == 1 and
                _is(shape[0], 0)) or not _is(code, b'b', 'b'):
            shape = f'shape {shape}' if isinstance(shape, tuple) and all(
                map(_is_int, shape)) else _kind(shape)
            raise Malformed(
                f'it asks numpy._reconstruct for an array of {shape} before '
                f'its data (numpy pickles ask for shape (0,) and then give '
                f'the shape with the data)')
        self.new_array()
        self.unfinished += 1
        return ArrayStub()

    def frombuffer(self, data, dtype, shape, order):
        if not _is(order, 'C', 'F'):
            raise Malformed('_frombuffer order must be "C" or "F"')
        self.new_array()
        return _array(data, dtype, shape, order == 'F')

    def dtype(self, name, align=False, copy=True):
        name = _text(name)
        if name not in DTYPES or not _is(align, False) or \
                not _is(copy, True):
            raise Malformed(f'dtype {name!r} is not one of '
                            f'{", ".join(sorted(DTYPES))}')
        return DTypeStub(name)

    def encode(self, text, encoding='utf-8', *more):
        if more or not isinstance(text, (str, LongText)) or \
                not isinstance(encoding, str) or \
                encoding.lower().replace('-', '').replace('_', '') not in (
                    'latin1', 'iso88591', 'l1'):
            raise Unsafe(
                f'it calls _codecs.encode with {_kind(text)}, {encoding!r}'
                f'{" and more" if more else ""}, where only latin-1 text is '
                f'allowed')
        try:
            if isinstance(text, str):
                return text.encode('latin-1')
            data, text.data = text.data, None
            if data is None:
                raise Malformed('it converts the same text twice')
            return _utf8_to_latin1(data)
        except UnicodeError as exc:
            raise Malformed(f'its array data is not latin-1 text ({exc})') \
                from None

    def empty_bytes(self, *args):
        if args:
            raise Unsafe('it calls bytes with arguments, where only bytes() '
                         'is allowed')
        return b''

    def build(self, obj, state):
        if isinstance(obj, DTypeStub) and obj.result is None:
            # (3, byte order, subarray, names, fields, item size,
            # alignment, flags) of a plain number type
            plain = (3, '', None, None, None, -1, -1, 0)
            if not (isinstance(state, tuple) and len(state) == 8 and all(
                    a is b if b is None else _is(a, b)
                    for i, (a, b) in enumerate(zip(state, plain))
                    if i != 1) and _is(_text(state[1]), '<', '>', '|', '=')):
                raise Malformed(f'the state of dtype {obj.name!r} is not '
                                f'that of a plain number type')
            dtype = numpy.dtype(obj.name)
            if _text(state[1]) in ('<', '>'):
                dtype = dtype.newbyteorder(_text(state[1]))
            obj.result = dtype
            return obj
        if isinstance(obj, ArrayStub) and obj.result is None:
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise Malformed('an array state must be a tuple (version, '
                                'shape, dtype, fortran, data)')
            if len(state) == 5:
                if not _is(state[0], 1):
                    raise Malformed('an array state of another version')
                state = state[1:]
            shape, dtype, fortran, data = state
            if not _is(fortran, True, False):
                raise Malformed('the fortran flag of an array must be a bool')
            obj.result = _array(data, dtype, shape, bool(fortran))
            self.unfinished -= 1
            return obj.result
        raise Malformed(f'BUILD on {_kind(obj)}, which takes no state')

    # -- reading --
    def read(self, n):
        """Exactly n bytes: bytes when short, else a bytearray that grows
        as the bytes arrive."""
        if n > self.left:
            raise TooLarge(f'at byte {self.max_bytes - self.left:,} it '
                           f'announces {n:,} bytes, past the '
                           f'{self.max_bytes:,} bytes allowed')
        self.left -= n
        if n <= CHUNK:
            data = self.stream.read(n)
            if len(data) != n:
                raise Truncated('the pickle ends in the middle')
            return bytearray(data) if n > SMALL else data
        data = bytearray()
        while len(data) < n:
            chunk = self.stream.read(min(CHUNK, n - len(data)))
            if not chunk:
                raise Truncated('the pickle ends in the middle')
            data += chunk
        return data

    def unpack(self, fmt):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def readline(self):
        line = b''
        while not line.endswith(b'\n'):
            if len(line) > 200:
                raise Malformed('a GLOBAL name longer than 200 characters')
            line += self.read(1)
        return line[:-1].decode('ascii', 'replace')

    # -- the stack --
    def pop(self):
        if not self.stack or (self.marks and
                              len(self.stack) == self.marks[-1]):
            raise Malformed('an opcode finds the stack empty')
        return self.stack.pop()

    def pop_mark(self):
        if not self.marks:
            raise Malformed('an opcode needs a MARK that is not there')
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def push(self, value):
        self.stack.append(value)

    def put(self, index):
        if not self.stack:
            raise Malformed('a memo entry for an empty stack')
        value = self.stack[-1]
        self.memo[index] = _USED if _single_use(value) else value

    def get(self, index):
        try:
            value = self.memo[index]
        except KeyError:
            raise Malformed(f'it refers to memo entry {index}, which was '
                            f'never stored') from None
        if value is _USED:
            raise Malformed('it refers again to long data: each array\'s '
                            'data may be used once')
        if isinstance(value, ArrayStub) and value.result is not None:
            return value.result  # the array it became
        return value

    def tuple_of(self, n):
        if len(self.stack) - (self.marks[-1] if self.marks else 0) < n:
            raise Malformed('an opcode finds the stack empty')
        items = tuple(self.stack[len(self.stack) - n:]) if n else ()
        del self.stack[len(self.stack) - n:]
        return items

    def top_container(self, kind):
        if not self.stack or not isinstance(self.stack[-1], kind) or \
                (self.marks and len(self.stack) == self.marks[-1]):
            raise Malformed(f'an opcode expects a {kind.__name__}')
        return self.stack[-1]

    def set_items(self, items):
        d = self.top_container(dict)
        if len(items) % 2 or len(d) + len(items) // 2 > MAX_DICT:
            raise Malformed(f'a dict of more than {MAX_DICT} items, or odd')
        for key, value in zip(items[::2], items[1::2]):
            if not isinstance(key, str):  # str hashes are seeded
                raise Malformed(f'a dict key of type {_kind(key)}, not '
                                f'text')
            d[key] = value

    def call(self, func, args):
        if not any(func is f for f in self.callables) or \
                not isinstance(args, tuple):
            name = next((f'{module}.{name}' for (module, name), f
                         in self.names.items() if f is func), _kind(func))
            raise Malformed(f'REDUCE calls {name}, which is not callable '
                            f'here, or without an argument tuple')
        try:
            return func(*args)
        except TypeError as exc:  # wrong number of arguments
            raise Malformed(f'a call with the wrong arguments ({exc})') \
                from None

    # -- the loop --
    def run(self):
        first = True
        while True:
            if not self.ops_left:
                raise TooLarge(f'it has more than {self.max_ops:,} '
                               f'opcodes')
            self.ops_left -= 1
            op = self.read(1)
            if first and op != b'\x80':
                raise Malformed('it does not start with a protocol 2-5 '
                                'header')
            first = False
            handler = _OPS.get(op)
            if handler is None:
                raise Malformed(f'unsupported opcode {op!r} at byte '
                                f'{self.max_bytes - self.left - 1}')
            if handler(self) is _STOP:
                if len(self.stack) != 1 or self.marks:
                    raise Malformed('STOP with a stack of '
                                    f'{len(self.stack)} items')
                if self.unfinished:
                    raise Malformed('an array was announced without its '
                                    'data')
                return self.stack.pop(), self.max_bytes - self.left


_STOP = object()


def _proto(m):
    version = m.read(1)[0]
    if not 2 <= version <= 5:
        raise Malformed(f'pickle protocol {version}: only 2 to 5 are read')


def _long1(m):
    n = m.read(1)[0]
    if n > 8:
        raise Malformed(f'an integer of {n} bytes')
    m.push(int.from_bytes(m.read(n), 'little', signed=True))


def _binstring(m):  # Python 2's str, signed length
    n = m.unpack('<i')
    if n < 0:
        raise Malformed('a negative string length')
    m.push(m.read(n))


def _unicode(m, n):
    data = m.read(n)
    if n > SMALL:
        m.push(LongText(data))
        return
    try:
        m.push(data.decode('utf-8'))
    except UnicodeDecodeError:
        raise Malformed('a string that is not UTF-8') from None


def _stack_global(m):
    name, module = m.pop(), m.pop()
    if not (isinstance(name, str) and isinstance(module, str)):
        raise Malformed('STACK_GLOBAL needs two short strings')
    m.push(m.find(module, name))


def _reduce(m):
    args = m.pop()
    m.push(m.call(m.pop(), args))


def _build(m):
    state = m.pop()
    m.push(m.build(m.pop(), state))


def _append(m):
    value = m.pop()
    m.top_container(list).append(value)


def _bytearray8(m):
    data = m.read(m.unpack('<Q'))
    m.push(data if isinstance(data, bytearray) else bytearray(data))


def _appends(m):
    items = m.pop_mark()
    m.top_container(list).extend(items)


def _frame(m):
    n = m.unpack('<Q')
    if n > m.left:
        raise TooLarge(f'at byte {m.max_bytes - m.left:,} it announces a '
                       f'frame of {n:,} bytes, past the {m.max_bytes:,} '
                       f'bytes allowed')


def _dict(m):
    items = m.pop_mark()
    m.push({})
    m.set_items(items)


_OPS = {
    b'\x80': _proto,
    b'\x95': _frame,
    b'.': lambda m: _STOP,
    b'(': lambda m: m.marks.append(len(m.stack)),
    b'N': lambda m: m.push(None),
    b'\x88': lambda m: m.push(True),
    b'\x89': lambda m: m.push(False),
    b'J': lambda m: m.push(m.unpack('<i')),
    b'K': lambda m: m.push(m.read(1)[0]),
    b'M': lambda m: m.push(m.unpack('<H')),
    b'\x8a': _long1,
    b'G': lambda m: m.push(m.unpack('>d')),
    b'X': lambda m: _unicode(m, m.unpack('<I')),
    b'\x8c': lambda m: _unicode(m, m.read(1)[0]),
    b'\x8d': lambda m: _unicode(m, m.unpack('<Q')),
    b'T': _binstring,
    b'U': lambda m: m.push(m.read(m.read(1)[0])),
    b'B': lambda m: m.push(m.read(m.unpack('<I'))),
    b'C': lambda m: m.push(m.read(m.read(1)[0])),
    b'\x8e': lambda m: m.push(m.read(m.unpack('<Q'))),
    b'\x96': _bytearray8,
    b')': lambda m: m.push(()),
    b'\x85': lambda m: m.push(m.tuple_of(1)),
    b'\x86': lambda m: m.push(m.tuple_of(2)),
    b'\x87': lambda m: m.push(m.tuple_of(3)),
    b't': lambda m: m.push(tuple(m.pop_mark())),
    b']': lambda m: m.push([]),
    b'l': lambda m: m.push(m.pop_mark()),
    b'a': _append,
    b'e': _appends,
    b'}': lambda m: m.push({}),
    b'd': _dict,
    b's': lambda m: m.set_items([m.pop(), m.pop()][::-1]),
    b'u': lambda m: m.set_items(m.pop_mark()),
    b'c': lambda m: m.push(m.find(m.readline(), m.readline())),
    b'\x93': _stack_global,
    b'R': _reduce,
    b'b': _build,
    b'q': lambda m: m.put(m.read(1)[0]),
    b'r': lambda m: m.put(m.unpack('<I')),
    b'\x94': lambda m: m.put(len(m.memo)),
    b'h': lambda m: m.push(m.get(m.read(1)[0])),
    b'j': lambda m: m.push(m.get(m.unpack('<I'))),
}


def load(stream, max_bytes, max_ops=100_000, max_arrays=6):
    """Read one pickle from ``stream``: ``(obj, bytes read)``; see the
    module docstring. Raises Refused (or what ``stream.read`` raises)."""
    return _Machine(stream, max_bytes, max_ops, max_arrays).run()
