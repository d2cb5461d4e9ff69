"""The checkpoint file of a training run and its cost history, written
atomically and read back without trusting them.

A checkpoint is a numpy ``.npz`` file written after every finished epoch
(training.SafeRun.checkpoint): every parameter the model trains, by name
(``param_<name>``, whatever the class or a subclass put in ``params``),
how many epochs are done, the hyperparameters, a fingerprint of the
training data and one of the training step that was compiled
(``setting_step``). SGD has no other state and the minibatches of an epoch
come in a fixed order, so a run resumed from the start of an epoch ends
with the same parameters, bit for bit, as one that never stopped. It is
read without trusting it: no pickles, every array's header checked before
its data is read, every number checked; a file that does not pass raises
CheckpointError, saying what is wrong and that the file was left as it is.

The costs of the finished epochs are not in the checkpoint, which would
then grow with every epoch and be rewritten whole each time: they go to
the cost history beside it (``cae_costs.npy``, CostHistory), an .npy file
of all the run's epochs, each epoch's rows written in place once, before
the checkpoint that counts them. The checkpoint holds a chained sha256 of
the rows written so far, so that a history of another run is refused.
Writing a checkpoint costs the same at epoch 1 and at epoch 20,000.

``check_can_start`` refuses a start without ``resume`` in a folder whose
checkpoint is unfinished: the work it holds is not thrown away unless
``restart`` says so. ``StopOnSignal`` turns SIGINT and SIGTERM into a flag
that the training loop reads after each minibatch.
"""
import hashlib
import io
import os
import signal
import threading
import zipfile
import zlib

import numpy

from .outputs import OutputError, atomic_file, atomic_write, os_error_cause

FORMAT = 3
# every refusal ends so: nothing was changed, and how to go on
LEFT_AS_IT_IS = ('; it was left as it is: start over with --restart, or use '
                 'another --output-folder')
# each parameter is stored as param_<its name>
PARAM_PREFIX = 'param_'
SCALARS = ('epoch', 'format', 'n_epochs')
# the chained sha256 of no rows at all
CHAIN_START = hashlib.sha256(b'').hexdigest()


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or of another run."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training within a minibatch; the
    checkpoint of the epochs done was written (see the message)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


def data_fingerprint(array):
    """sha256 of an array's dtype, shape and bytes: the same data, or not."""
    array = numpy.ascontiguousarray(array)
    digest = hashlib.sha256(('%s %s' % (array.dtype.str, array.shape))
                            .encode())
    digest.update(memoryview(array).cast('B'))
    return digest.hexdigest()


def checkpoint_size(shapes, dtype):
    """An upper bound of a checkpoint's size in bytes: the parameters of
    the given shapes and dtype and room for the headers and settings. It
    does not depend on the number of epochs."""
    n_values = sum(int(numpy.prod(shape)) for shape in shapes.values())
    return n_values * numpy.dtype(dtype).itemsize + 64 * 1024


def history_path(checkpoint_path):
    """The cost history beside a checkpoint: cae_checkpoint.npz ->
    cae_costs.npy."""
    folder, name = os.path.split(checkpoint_path)
    stem = name[:-len('_checkpoint.npz')] if \
        name.endswith('_checkpoint.npz') else name
    return os.path.join(folder, stem + '_costs.npy')


def history_size(n_epochs, n_batches):
    """The cost history's size in bytes (float64 rows, a 128-byte header)."""
    return 128 + 16 * n_epochs * n_batches


def epoch_bytes(rows):
    """One epoch's (n_batches, 2) costs as the history stores them."""
    return numpy.ascontiguousarray(rows, numpy.float64).tobytes()


def chain(previous, data):
    """The chained sha256 after ``data`` (epoch_bytes of one epoch) was
    added to a history whose chained sha256 was ``previous``: the work
    does not grow with the history."""
    return hashlib.sha256(bytes.fromhex(previous) + data).hexdigest()


def save_checkpoint(path, params, n_epochs, history, epoch, settings):
    """Write a checkpoint atomically.

    params: {name: numpy array}, every parameter the run trains, in the
        model's order (dicts keep it).
    n_epochs: the epochs the run trains in all; epoch: the epochs done.
    history: the chained sha256 of the cost history's first ``epoch``
        epochs (CostHistory).
    settings: {name: number or string}: the hyperparameters and the
        fingerprints of the data and of the step, which a resumed run must
        match.
    """
    arrays = {PARAM_PREFIX + name: numpy.asarray(value)
              for name, value in params.items()}
    arrays.update(param_names=numpy.asarray(list(params), dtype=str),
                  epoch=numpy.asarray(epoch), format=numpy.asarray(FORMAT),
                  n_epochs=numpy.asarray(n_epochs),
                  history=numpy.asarray(history))
    for name, value in settings.items():
        arrays['setting_' + name] = numpy.asarray(value)
    with atomic_write(path) as f:
        numpy.savez(f, **arrays)


class CostHistory(object):
    """The per-minibatch costs of a run's finished epochs, at ``path``: an
    .npy file of shape (n_epochs, n_batches, 2), float64, whose first rows
    are the epochs done (numpy.load reads it; the rest is zeros, reserved
    on the disk).

    ``up_to`` writes it whole the first time a process calls it
    (atomically, with the epochs done so far), then only the new epochs'
    rows, in place, flushed to the disk before the checkpoint that counts
    them is written. ``read`` gives the rows back on resume, checked
    against the checkpoint's chained sha256 of them.
    """

    def __init__(self, path, n_epochs, n_batches):
        self.path = path
        self.shape = (n_epochs, n_batches, 2)
        self.done = None  # epochs in the file this process wrote
        self.digest = CHAIN_START
        self.offset = 0  # where the rows start, after the .npy header

    def _header(self):
        buffer = io.BytesIO()
        numpy.lib.format.write_array_header_1_0(buffer, {
            'descr': '<f8', 'fortran_order': False, 'shape': self.shape})
        return buffer.getvalue()

    def up_to(self, epochs_done, costs):
        """Make the file hold costs[:epochs_done] (written whole the first
        time, then only the new epochs); returns their chained sha256."""
        if self.done is None:
            digest = CHAIN_START
            header = self._header()
            n_epochs, n_batches = self.shape[:2]
            with atomic_file(self.path, reserve=16 * n_batches *
                             (n_epochs - epochs_done)) as f:
                f.write(header)
                for epoch in range(epochs_done):
                    data = epoch_bytes(costs[epoch])
                    f.write(data)
                    digest = chain(digest, data)
            self.offset = len(header)
            self.done, self.digest = epochs_done, digest
            return digest
        if epochs_done > self.done:
            try:
                with open(self.path, 'r+b') as f:
                    for epoch in range(self.done, epochs_done):
                        data = epoch_bytes(costs[epoch])
                        f.seek(self.offset + epoch * len(data))
                        f.write(data)
                        self.digest = chain(self.digest, data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                raise OutputError('cannot write %s: %s' % (
                    self.path, os_error_cause(e))) from None
            self.done = epochs_done
        return self.digest

    def read(self, epochs_done, digest):
        """The first ``epochs_done`` epochs' costs, (epochs_done, n_batches,
        2), checked against the checkpoint's chained sha256."""
        n_batches = self.shape[1]
        try:
            with open(self.path, 'rb') as f:
                version = numpy.lib.format.read_magic(f)
                if version != (1, 0):
                    raise ValueError('unknown .npy version %s' % (version,))
                shape, fortran, dtype = \
                    numpy.lib.format.read_array_header_1_0(f)
                if dtype != numpy.float64 or fortran or len(shape) != 3 or \
                        shape[1:] != (n_batches, 2) or \
                        shape[0] < epochs_done:
                    raise ValueError('it holds %s %s, not the %d epochs of '
                                     '%d minibatches of the checkpoint' % (
                                         dtype, shape, epochs_done,
                                         n_batches))
                data = f.read(16 * n_batches * epochs_done)
        except FileNotFoundError:
            raise CheckpointError(
                'cannot resume: the cost history %s of the checkpoint is '
                'missing%s' % (self.path, LEFT_AS_IT_IS)) from None
        except (OSError, ValueError) as e:
            raise CheckpointError('cannot resume: the cost history %s cannot '
                                  'be used (%s)%s' % (self.path, e,
                                                      LEFT_AS_IT_IS)) from None
        if len(data) != 16 * n_batches * epochs_done:
            raise CheckpointError('cannot resume: the cost history %s is cut '
                                  'short%s' % (self.path, LEFT_AS_IT_IS))
        rows = numpy.frombuffer(data, numpy.float64).reshape(
            epochs_done, n_batches, 2)
        found = CHAIN_START
        for epoch_rows in rows:
            found = chain(found, epoch_bytes(epoch_rows))
        if found != digest:
            raise CheckpointError(
                'cannot resume: the cost history %s is not the one of the '
                'checkpoint (another run wrote it, or it was changed)%s'
                % (self.path, LEFT_AS_IT_IS))
        return rows


# ---- reading, without trusting the file -------------------------------------

def _read_member(archive, name, shape=None, kinds='f'):
    """The array ``name`` of the npz archive, with its header checked before
    its data is read: of the given shape (None: any), of a numpy kind in
    ``kinds``, small enough for that shape. ValueError says what is off."""
    with archive.open(name + '.npy') as f:
        version = numpy.lib.format.read_magic(f)
        read_header = {(1, 0): numpy.lib.format.read_array_header_1_0,
                       (2, 0): numpy.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError('%s: unknown .npy version %s' % (name, version))
        found_shape, fortran, dtype = read_header[version](f)
        if dtype.hasobject or dtype.kind not in kinds:
            raise ValueError('%s has dtype %s' % (name, dtype))
        if shape is not None and found_shape != tuple(shape):
            raise ValueError('%s has shape %s where this run needs %s'
                             % (name, found_shape, tuple(shape)))
        if shape is None and len(found_shape) > 0:
            raise ValueError('%s has shape %s where a single value belongs'
                             % (name, found_shape))
        count = int(numpy.prod(found_shape))
        data = f.read(count * dtype.itemsize + 1)
    if len(data) != count * dtype.itemsize:
        raise ValueError('%s holds %d bytes of data where its shape needs %d'
                         % (name, len(data), count * dtype.itemsize))
    array = numpy.frombuffer(data, dtype=dtype)
    return array.reshape(found_shape, order='F' if fortran else 'C').copy()


def read_checkpoint(path, settings=None):
    """The contents of a checkpoint: {'params': {name: array}, in the order
    the run trained them, 'epoch', 'n_epochs': ints, 'history': str,
    'settings': dict}.

    settings: this run's, which the checkpoint's must match (checked before
    any parameter is read); None reads it as it is (to look at it before
    the data is loaded). CheckpointError names what is wrong.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n[:-len('.npy')] for n in archive.namelist()
                     if n.endswith('.npy')}
            missing = [n for n in ('param_names', 'history') + SCALARS
                       if n not in names]
            if missing:
                raise ValueError('it is not a checkpoint of cA.py (missing '
                                 '%s)' % ', '.join(missing))
            contents = {n: _read_member(archive, n, kinds='iu')
                        for n in SCALARS}
            if int(contents['format']) != FORMAT:
                raise ValueError('it is of another format (%d, not %d)'
                                 % (contents['format'], FORMAT))
            saved_settings = {
                name[len('setting_'):]: _read_member(
                    archive, name, kinds='iufbU').item()
                for name in sorted(names) if name.startswith('setting_')}
            if settings is not None:
                check_settings_match(path, saved_settings, settings)
            contents['history'] = str(_read_member(archive, 'history',
                                                   kinds='U').item())
            param_names = [str(n) for n in _read_any(
                archive, 'param_names', 1, kinds='U')]
            absent = [n for n in param_names if PARAM_PREFIX + n not in names]
            if absent or not param_names:
                raise ValueError('its parameters %s are not all in it'
                                 % ', '.join(param_names))
            contents['params'] = {n: _read_any(archive, PARAM_PREFIX + n,
                                               None)
                                  for n in param_names}
    except FileNotFoundError:
        raise CheckpointError('no checkpoint at %s to resume from: run '
                              'without --resume to start training' % path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
            zlib.error, NotImplementedError) as e:
        raise CheckpointError('the checkpoint %s cannot be used (%s)%s' % (
            path, ' '.join(str(e).split()), LEFT_AS_IT_IS))
    return _checked(path, contents, saved_settings)


def _read_any(archive, name, ndim, kinds='f'):
    """A member whose shape is not known in advance (ndim checked, when
    given)."""
    with archive.open(name + '.npy') as f:
        numpy.lib.format.read_magic(f)
        shape = numpy.lib.format.read_array_header_1_0(f)[0]
    if ndim is not None and len(shape) != ndim:
        raise ValueError('%s has %d dimensions, not %d'
                         % (name, len(shape), ndim))
    # a checkpoint of this project is a few MB; refuse a huge header
    if int(numpy.prod(shape)) > 50_000_000:
        raise ValueError('%s claims %s elements' % (name, shape))
    return _read_member(archive, name, shape, kinds)


def _checked(path, contents, settings):
    """CheckpointError for numbers no run of cA.py writes."""
    def refuse(what):
        raise CheckpointError('the checkpoint %s cannot be used (%s)%s'
                              % (path, what, LEFT_AS_IT_IS))
    epoch, n_epochs = int(contents['epoch']), int(contents['n_epochs'])
    if len(contents['history']) != 64 or \
            set(contents['history']) - set('0123456789abcdef'):
        refuse('its history digest is not a sha256')
    if not 0 <= epoch <= n_epochs:
        refuse('it has %d epochs done of its %d' % (epoch, n_epochs))
    for name, value in contents['params'].items():
        if not numpy.all(numpy.isfinite(value)):
            refuse('%s holds NaN or infinite values' % name)
    return {'params': contents['params'], 'history': contents['history'],
            'epoch': epoch, 'n_epochs': n_epochs, 'settings': settings}


def check_settings_match(path, saved, current):
    """CheckpointError naming every setting that differs between the
    checkpoint's run and this one."""
    differ = ['%s %r (checkpoint) != %r (now)' % (name, saved.get(name),
                                                  current[name])
              for name in sorted(current) if saved.get(name) != current[name]]
    if differ:
        raise CheckpointError(
            'cannot resume from %s: it belongs to another run: %s; resume '
            'with the same settings%s' % (path, '; '.join(differ),
                                          LEFT_AS_IT_IS))


# ---- signals -----------------------------------------------------------------

class StopOnSignal(object):
    """Within ``with StopOnSignal() as stop:``, SIGINT and SIGTERM set
    ``stop.signum`` instead of interrupting; a second signal acts as usual
    (Ctrl-C twice aborts at once). The previous handlers come back on exit.
    Outside the main thread, where Python cannot catch signals, it does
    nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self.previous = {}

    def _handle(self, signum, frame):
        self.signum = signum
        signal.signal(signum, self.previous[signum])

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False

    @property
    def name(self):
        return signal.Signals(self.signum).name


# ---- before a run starts ------------------------------------------------------

def check_can_start(path, resume, restart, log):
    """Before any data is loaded: CheckpointError when there is no
    checkpoint at ``path`` to resume, or when a fresh start would throw
    away an unfinished one."""
    if resume and restart:
        raise CheckpointError('--resume and --restart exclude each other: '
                              'give one')
    if resume:
        read_checkpoint(path)  # it exists, and it reads
    if resume or restart or not os.path.exists(path):
        return
    try:
        saved = read_checkpoint(path)
    except CheckpointError as e:
        print('note: %s will be replaced: %s' % (path, e), file=log,
              flush=True)
        return
    if saved['epoch'] < saved['n_epochs']:
        raise CheckpointError(
            '%s holds an unfinished run (%d of %d epochs done): resume it '
            'with --resume, or start over with --restart, which replaces it'
            % (path, saved['epoch'], saved['n_epochs']))
