"""Checkpoints, resume, interrupts and divergence for long training runs.

``TrainingRun`` is what cA.test_cA's loop calls between its steps::

    run = TrainingRun(path, resume, restart)
    run.check_can_start()              # before any data is loaded
    costs = run.start(n_epochs, n_batches, settings, shapes)
    run.restore(params)                # once they exist
    with run.stopping_on_signals():
        for epoch in run.epochs():
            for i in run.minibatches(epoch):
                costs[epoch, i] = train(i)
                run.after_minibatch(epoch, i)   # divergence, Ctrl-C
            run.save(epoch + 1)                 # the checkpoint

A checkpoint is a numpy ``.npz`` file holding everything SGD needs to go on
exactly where it stopped: the parameters, the position (the epoch under
way and the next minibatch), the costs of the epoch under way, the
hyperparameters and a fingerprint of the training data. SGD has no other
state, so a resumed run ends with the same parameters, bit for bit, as one
that never stopped. It is written atomically (outputs.atomic_write) and
read without trusting it: no pickles, every array's header checked against
the shape this run expects before its data is read, every number checked;
a file that does not pass raises CheckpointError, saying what is wrong and
that the file was left as it is.

The costs of the finished epochs are not in the checkpoint, which would
then grow with every epoch and be rewritten whole each time: they go to
the cost history beside it (``cae_costs.npy``, CostHistory), an .npy file
of all the run's epochs, each epoch's rows written in place once, before
the checkpoint that counts them. The checkpoint holds a chained sha256 of
the rows written so far, so that a history of another run is refused.
Writing a checkpoint costs the same at epoch 1 and at epoch 20,000.

Starting without ``resume`` in a folder whose checkpoint is unfinished is
refused (CheckpointError): the work it holds is not thrown away unless
``restart`` says so. A finished run's checkpoint is replaced by a new run,
as its other outputs are.

SIGINT (Ctrl-C) and SIGTERM set a flag that the loop reads after each
minibatch: the run stops between two steps, writes a checkpoint and raises
TrainingInterrupted. A second signal acts as usual (Ctrl-C twice aborts).
A NaN or infinite cost raises DivergenceError at once, leaving the last
checkpoint as it was.
"""
import contextlib
import hashlib
import io
import os
import signal
import threading
import zipfile
import zlib

import numpy

from .checks import finite_cost
from .outputs import OutputError, atomic_file, atomic_write, os_error_cause

FORMAT = 2
# every refusal ends so: nothing was changed, and how to go on
LEFT_AS_IT_IS = ('; it was left as it is: start over with --restart, or use '
                 'another --output-folder')
PARAMS = ('W', 'b', 'b_prime')
SCALARS = ('epoch', 'batch', 'format', 'n_epochs')
# the chained sha256 of no rows at all
CHAIN_START = hashlib.sha256(b'').hexdigest()


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or of another run."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training after a minibatch; a checkpoint
    was written (see the message)."""

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


def checkpoint_size(shapes, dtype, n_batches):
    """An upper bound of a checkpoint's size in bytes: the parameters of
    the given shapes and dtype, one epoch's float64 costs, and room for the
    headers and settings. It does not depend on the number of epochs."""
    n_values = sum(int(numpy.prod(shape)) for shape in shapes.values())
    return n_values * numpy.dtype(dtype).itemsize + 16 * n_batches + \
        64 * 1024


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


def save_checkpoint(path, params, n_epochs, epoch_costs, history, epoch,
                    batch, settings):
    """Write a checkpoint atomically.

    params: {'W': ..., 'b': ..., 'b_prime': ...} numpy arrays.
    n_epochs: the epochs the run trains in all.
    epoch_costs: the (n_batches, 2) costs of epoch ``epoch`` so far (zeros
        once training is done).
    history: the chained sha256 of the cost history's first ``epoch``
        epochs (CostHistory).
    epoch, batch: where training goes on: epoch ``epoch`` (0-based) from its
        minibatch ``batch``; (n_epochs, 0) once training is done.
    settings: {name: number or string}: the hyperparameters and the data
        fingerprint, which a resumed run must match.
    """
    arrays = {name: numpy.asarray(params[name]) for name in PARAMS}
    arrays['epoch_costs'] = numpy.asarray(epoch_costs, dtype=numpy.float64)
    arrays.update(epoch=numpy.asarray(epoch), batch=numpy.asarray(batch),
                  format=numpy.asarray(FORMAT),
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


def read_checkpoint(path, shapes=None, settings=None):
    """The contents of a checkpoint: {'W', 'b', 'b_prime', 'epoch_costs':
    arrays, 'epoch', 'batch', 'n_epochs': ints, 'history': str, 'settings':
    dict}.

    shapes: {name: shape} that this run needs (W, b, b_prime,
    epoch_costs);
    None reads whatever shapes the file has (to look at it before the data
    is loaded). settings: this run's, which the checkpoint's must match
    (checked before any array is read). CheckpointError names what is
    wrong.
    """
    shapes = shapes or {}
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n[:-len('.npy')] for n in archive.namelist()
                     if n.endswith('.npy')}
            missing = [n for n in PARAMS + ('epoch_costs', 'history') +
                       SCALARS if n not in names]
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
            costs_shape = shapes.get('epoch_costs')
            contents['epoch_costs'] = _read_member(
                archive, 'epoch_costs', costs_shape, 'f') if costs_shape \
                else _read_any(archive, 'epoch_costs', 2)
            for name in PARAMS:
                contents[name] = _read_member(archive, name, shapes[name]) \
                    if name in shapes else _read_any(archive, name, None)
    except FileNotFoundError:
        raise CheckpointError('no checkpoint at %s to resume from: run '
                              'without --resume to start training' % path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
            zlib.error, NotImplementedError) as e:
        raise CheckpointError('the checkpoint %s cannot be used (%s)%s' % (
            path, ' '.join(str(e).split()), LEFT_AS_IT_IS))
    return _checked(path, contents, saved_settings)


def _read_any(archive, name, ndim):
    """A member whose shape is not known in advance (ndim checked)."""
    with archive.open(name + '.npy') as f:
        numpy.lib.format.read_magic(f)
        shape = numpy.lib.format.read_array_header_1_0(f)[0]
    if ndim is not None and len(shape) != ndim:
        raise ValueError('%s has %d dimensions, not %d'
                         % (name, len(shape), ndim))
    # a checkpoint of this project is a few MB; refuse a huge header
    if int(numpy.prod(shape)) > 50_000_000:
        raise ValueError('%s claims %s elements' % (name, shape))
    return _read_member(archive, name, shape)


def _checked(path, contents, settings):
    """CheckpointError for numbers no run of cA.py writes."""
    def refuse(what):
        raise CheckpointError('the checkpoint %s cannot be used (%s)%s'
                              % (path, what, LEFT_AS_IT_IS))
    costs = contents['epoch_costs']
    if costs.ndim != 2 or costs.shape[1] != 2:
        refuse('its costs of an epoch have shape %s' % (costs.shape,))
    n_batches = costs.shape[0]
    epoch, batch = int(contents['epoch']), int(contents['batch'])
    n_epochs = int(contents['n_epochs'])
    if len(contents['history']) != 64 or \
            set(contents['history']) - set('0123456789abcdef'):
        refuse('its history digest is not a sha256')
    # batch == n_batches: a signal came after the epoch's last minibatch
    if not (0 <= epoch <= n_epochs and 0 <= batch <= n_batches) or \
            (epoch == n_epochs and batch != 0):
        refuse('its position, epoch %d minibatch %d, is outside its %d '
               'epochs of %d minibatches' % (epoch, batch, n_epochs,
                                             n_batches))
    for name in PARAMS:
        if not numpy.all(numpy.isfinite(contents[name])):
            refuse('%s holds NaN or infinite values' % name)
    W, b, b_prime = (contents[name] for name in PARAMS)
    if W.ndim != 2 or b.shape != W.shape[1:] or b_prime.shape != W.shape[:1]:
        refuse('W, b and b_prime have shapes %s, %s, %s that do not fit '
               'together' % (W.shape, b.shape, b_prime.shape))
    checkpoint = {name: contents[name]
                  for name in PARAMS + ('epoch_costs', 'history')}
    checkpoint.update(epoch=epoch, batch=batch, n_epochs=n_epochs,
                      settings=settings)
    return checkpoint


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


# ---- the run -------------------------------------------------------------------

class TrainingRun(object):
    """The machinery that keeps a training loop safe (see the module
    docstring for how a loop uses it).

    path: the checkpoint file. resume: go on from it. restart: replace it
    even when it is unfinished. log: where the resume line goes.
    """

    def __init__(self, path, resume=False, restart=False, log=None):
        self.path = path
        self.resume, self.restart = resume, restart
        self.log = log
        self.params = self.costs = self.settings = self.on_stop = None
        self._saved_params = None
        self.n_epochs = self.n_batches = 0
        self.start_epoch, self.start_batch = 0, 0
        self._stop = None

    def check_can_start(self):
        """Before any data is loaded: CheckpointError when there is no
        checkpoint to resume, or when a fresh start would throw away an
        unfinished one."""
        if self.resume and self.restart:
            raise CheckpointError('--resume and --restart exclude each '
                                  'other: give one')
        if self.resume:
            read_checkpoint(self.path)  # it exists, and it reads
        if self.resume or self.restart or not os.path.exists(self.path):
            return
        try:
            saved = read_checkpoint(self.path)
        except CheckpointError as e:
            print('note: %s will be replaced: %s' % (self.path, e),
                  file=self.log, flush=True)
            return
        planned = saved['n_epochs']
        if saved['epoch'] < planned:
            raise CheckpointError(
                '%s holds an unfinished run (%d of %d epochs done): resume '
                'it with --resume, or start over with --restart, which '
                'replaces it' % (self.path, saved['epoch'], planned))

    def start(self, n_epochs, n_batches, settings, shapes):
        """The cost history (n_epochs, n_batches, 2) for the loop to fill
        in. settings: the hyperparameters and data fingerprint, which a
        resumed run must match; shapes: {'W': ..., 'b': ..., 'b_prime': ...}
        of this run's parameters. On resume, the checkpoint and its cost
        history are read and checked against both before anything is
        compiled, and the history is restored (the parameters are restored
        by ``restore``)."""
        self.settings = settings
        self.n_epochs, self.n_batches = n_epochs, n_batches
        self.costs = numpy.zeros((n_epochs, n_batches, 2))
        self.history = CostHistory(history_path(self.path), n_epochs,
                                   n_batches)
        if not self.resume:
            return self.costs
        shapes = dict(shapes, epoch_costs=(n_batches, 2))
        saved = read_checkpoint(self.path, shapes, settings)
        if saved['epoch'] > n_epochs:
            raise CheckpointError('%s has %d epochs done: ask for at least '
                                  'as many (--epochs %d)%s' % (
                                      self.path, saved['epoch'],
                                      saved['epoch'], LEFT_AS_IT_IS))
        done = saved['epoch']
        self.costs[:done] = self.history.read(done, saved['history'])
        if done < n_epochs:
            self.costs[done] = saved['epoch_costs']
        self._saved_params = {name: saved[name] for name in PARAMS}
        self.start_epoch, self.start_batch = saved['epoch'], saved['batch']
        return self.costs

    def restore(self, params, on_stop=None):
        """Take the parameters (shared variables W, b, b_prime) that the
        loop trains; on resume, set them to the checkpoint's. on_stop: called
        after the checkpoint when a signal stops the run; returns a phrase
        naming what it wrote (the filters)."""
        self.params, self.on_stop = params, on_stop
        if not self.resume:
            return
        for name, param in zip(PARAMS, params):
            param.set_value(self._saved_params[name].astype(param.dtype))
        print('resuming from %s at epoch %d, minibatch %d'
              % (self.path, self.start_epoch + 1, self.start_batch + 1),
              file=self.log, flush=True)

    def epochs(self):
        return range(self.start_epoch, self.n_epochs)

    def minibatches(self, epoch):
        first = self.start_batch if epoch == self.start_epoch else 0
        return range(first, self.n_batches)

    @contextlib.contextmanager
    def stopping_on_signals(self):
        with StopOnSignal() as self._stop:
            yield
        self._stop = None

    def after_minibatch(self, epoch, batch):
        """Raise DivergenceError on a NaN or infinite cost; on a signal,
        save and raise TrainingInterrupted."""
        finite_cost(self.costs[epoch, batch], 'the cost at epoch %d, '
                    'minibatch %d' % (epoch + 1, batch + 1),
                    '--learning-rate', self.settings['learning_rate'],
                    '; the last checkpoint, if any, is intact')
        if self._stop is not None and self._stop.signum is not None:
            self.save(epoch, batch + 1)
            wrote = self.on_stop() if self.on_stop else ''
            raise TrainingInterrupted(
                '%s: stopped at epoch %d/%d after minibatch %d/%d; '
                'checkpoint %s%s' % (self._stop.name, epoch + 1,
                                     self.n_epochs, batch + 1,
                                     self.n_batches, self.path,
                                     ', ' + wrote if wrote else ''),
                self._stop.signum)

    def save(self, epoch, batch=0):
        """Write the checkpoint: training goes on at (epoch, batch). The
        cost history gets the finished epochs first."""
        history = self.history.up_to(epoch, self.costs)
        epoch_costs = self.costs[epoch] if epoch < self.n_epochs else \
            numpy.zeros((self.n_batches, 2))
        save_checkpoint(self.path, {name: p.get_value(borrow=True)
                                    for name, p in zip(PARAMS, self.params)},
                        self.n_epochs, epoch_costs, history, epoch, batch,
                        self.settings)
