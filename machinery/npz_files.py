"""Reading back an .npz file the project wrote (a checkpoint, a model)
without trusting it: what it costs in memory and time is bounded before
any data is read.

``NpzReader(path)`` opens the archive (a regular file only), reading at
most ``DIRECTORY_BYTES`` of its zip directory; then each member is read
only after its .npy header is checked against what the caller expects:

- ``array(name, shape, kinds)``: exactly that shape (from the settings of
  the run that reads it: the legitimate size, never a fixed cap);
- ``value(name, kinds)``: a single number or a short text;
- ``texts(name, max_count)``: a short list of short texts;
- ``shape(name)``: the shape its header declares, without its data.

The data read is the declared size and no more, so a file that claims
500 million characters or a billion elements is refused from its header
(a few hundred bytes read), and one whose member is not an .npy at all
(raw pickle bytes) is refused from its magic. Anything wrong raises
ValueError, one line naming the member; the caller says what to do.
"""
import zipfile
import zlib

import numpy

from . import outputs

# a zip directory of a dozen members takes a few kB; a hostile one that
# claims more is refused before it is read
DIRECTORY_BYTES = 1 << 20
# settings and names are short texts (a sha256 is 64 characters)
MAX_CHARS = 1000
# what any read can raise on a damaged or foreign archive
ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
          zlib.error, NotImplementedError, SyntaxError)


class _CappedFile(object):
    """A file whose single reads are refused above ``limit`` bytes while
    the limit is set (zipfile reads its whole directory in one read)."""

    def __init__(self, f):
        self._f = f
        self.limit = None

    def read(self, n=-1):
        if self.limit is not None:
            if n is None or n < 0:  # to the end: what is left of the file
                here = self._f.tell()
                n = self._f.seek(0, 2) - here
                self._f.seek(here)
            if n > self.limit:
                raise ValueError('its zip directory claims more than %d '
                                 'bytes' % self.limit)
        return self._f.read(n)

    def __getattr__(self, name):
        return getattr(self._f, name)


class NpzReader(object):
    """``with NpzReader(path) as npz:`` see the module docstring. Opening
    raises OSError (missing, unreadable), outputs.OutputError (not a
    regular file) or ValueError (not a zip archive)."""

    def __init__(self, path):
        self.path = path
        self._file = outputs.open_for_reading(path)
        capped = _CappedFile(self._file)
        capped.limit = DIRECTORY_BYTES
        try:
            self._zip = zipfile.ZipFile(capped)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            self._file.close()
            raise ValueError('not an .npz archive (%s)' % e) from None
        except BaseException:
            self._file.close()
            raise
        capped.limit = None
        self.names = {n[:-len('.npy')] for n in self._zip.namelist()
                      if n.endswith('.npy')}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._zip.close()
        self._file.close()
        return False

    def _header(self, f, name):
        if name not in self.names:
            raise ValueError('%s is missing' % name)
        magic = f.read(6)
        if magic != b'\x93NUMPY':
            raise ValueError('%s is not an .npy array' % name)
        version = tuple(f.read(2))
        if version != (1, 0):  # numpy writes 1.0 for headers this small
            raise ValueError('%s: unknown .npy version %s' % (name, version))
        shape, fortran, dtype = numpy.lib.format.read_array_header_1_0(f)
        return shape, fortran, dtype

    def shape(self, name):
        """The shape member ``name`` declares (its data is not read)."""
        with self._zip.open(name + '.npy') as f:
            return self._header(f, name)[0]

    def array(self, name, shape, kinds='f'):
        """Member ``name``, of exactly ``shape`` and of a numpy kind in
        ``kinds`` ('f' floats, 'iu' integers, 'U' text, 'b' booleans);
        texts of at most MAX_CHARS characters."""
        with self._zip.open(name + '.npy') as f:
            found, fortran, dtype = self._header(f, name)
            if dtype.hasobject or dtype.kind not in kinds or \
                    (dtype.kind == 'U' and dtype.itemsize > 4 * MAX_CHARS):
                raise ValueError('%s has dtype %s' % (name, dtype))
            if found != tuple(shape):
                raise ValueError('%s has shape %s where %s belongs'
                                 % (name, found, tuple(shape)))
            size = int(numpy.prod(found, dtype=numpy.int64)) * dtype.itemsize
            data = f.read(size + 1)
        if len(data) != size:
            raise ValueError('%s holds %d bytes of data where its shape '
                             'needs %d' % (name, len(data), size))
        array = numpy.frombuffer(data, dtype=dtype)
        return array.reshape(found, order='F' if fortran else 'C').copy()

    def value(self, name, kinds):
        """A single number or text (a 0-d member) as a Python value."""
        return self.array(name, (), kinds).item()

    def texts(self, name, max_count):
        """A 1-d member of at most ``max_count`` short texts, as a list."""
        shape = self.shape(name)
        if len(shape) != 1 or shape[0] > max_count:
            raise ValueError('%s has shape %s where a list of at most %d '
                             'names belongs' % (name, shape, max_count))
        return [str(t) for t in self.array(name, shape, 'U')]


def read_arrays(path, shapes):
    """{name: array} of an .npz archive that holds exactly the members of
    ``shapes`` ({name: shape}), each a float array of that shape with
    finite values. ValueError (one line) for anything else; OSError or
    outputs.OutputError when the file cannot be opened."""
    with NpzReader(path) as npz:
        if npz.names != set(shapes):
            found = sorted(npz.names)
            raise ValueError('it holds %s, not %s' % (
                ', '.join(found[:4]) + (', ...' if len(found) > 4 else '')
                or 'no arrays', ' and '.join(shapes)))
        # (array() checks each header before it reads the data)
        arrays = {name: npz.array(name, shape)
                  for name, shape in shapes.items()}
    for name, array in arrays.items():
        if not numpy.all(numpy.isfinite(array)):
            raise ValueError('%s holds NaN or infinite values' % name)
    return arrays
