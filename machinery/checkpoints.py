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
``restart`` says so (nor one that cannot be read). ``StopOnSignal`` turns
SIGINT, SIGTERM and SIGHUP into a flag that the training loop reads after
each minibatch and after each checkpoint.
"""
import hashlib
import io
import os
import signal
import threading

import numpy

from . import npz_files
from .outputs import (OutputError, atomic_file, atomic_write,
                      open_for_reading, open_in_place, os_error_cause)

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
    """A checkpoint that is missing, unreadable or of another run;
    ``reason``, for one that cannot be read, says what is wrong with it."""

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason


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
        self.inode = None

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
            # the file this process made: the rows go into it alone
            self.inode = os.lstat(self.path).st_ino
            return digest
        if epochs_done > self.done:
            try:
                with open_in_place(self.path, inode=self.inode) as f:
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
            with open_for_reading(self.path) as f:
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
        except (OSError, ValueError, SyntaxError, OutputError) as e:
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

# a checkpoint's names of parameters (a cA has three; a subclass may add)
MAX_PARAMS = 100


def read_checkpoint(path, settings=None, params=None):
    """The contents of a checkpoint: {'epoch', 'n_epochs': ints, 'history':
    str, 'settings': dict, 'params': {name: array} in the order the run
    trained them, or None}.

    settings: this run's, which the checkpoint's must match (checked before
    any parameter is read); None reads them as they are (to look at the
    checkpoint before the data is loaded). params: {name: shape} of the
    parameters this run trains: they are read only when given, and only
    when the checkpoint holds exactly those names and shapes, so what is
    read is never more than the run's own arrays (npz_files). None reads
    none: a look at the checkpoint costs a few kB whatever it claims.
    CheckpointError names what is wrong.
    """
    try:
        with npz_files.NpzReader(path) as npz:
            missing = [n for n in ('param_names', 'history') + SCALARS
                       if n not in npz.names]
            if missing:
                raise ValueError('it is not a checkpoint of cA.py (missing '
                                 '%s)' % ', '.join(missing))
            contents = {n: npz.value(n, 'iu') for n in SCALARS}
            if contents['format'] != FORMAT:
                raise ValueError('it is of another format (%d, not %d)'
                                 % (contents['format'], FORMAT))
            saved_settings = {
                name[len('setting_'):]: npz.value(name, 'iufbU')
                for name in sorted(npz.names) if name.startswith('setting_')}
            if settings is not None:
                check_settings_match(path, saved_settings, settings)
            contents['history'] = str(npz.value('history', 'U'))
            names = npz.texts('param_names', MAX_PARAMS)
            absent = [n for n in names if PARAM_PREFIX + n not in npz.names]
            if absent or not names:
                raise ValueError('its parameters %s are not all in it'
                                 % ', '.join(names))
            contents['params'] = None
            if params is not None:
                stored = {n: npz.shape(PARAM_PREFIX + n) for n in names}
                if stored != {n: tuple(s) for n, s in params.items()}:
                    raise CheckpointError(
                        'cannot resume from %s: it holds the parameters %s '
                        'where this cA trains %s%s' % (
                            path, describe_shapes(stored),
                            describe_shapes(params), LEFT_AS_IT_IS))
                contents['params'] = {n: npz.array(PARAM_PREFIX + n,
                                                   stored[n])
                                      for n in names}
    except FileNotFoundError:
        raise CheckpointError('no checkpoint at %s to resume from: run '
                              'without --resume to start training' % path)
    except (OutputError,) + npz_files.ERRORS as e:
        reason = ' '.join(str(e).split())
        raise CheckpointError('the checkpoint %s cannot be used (%s)%s' % (
            path, reason, LEFT_AS_IT_IS), reason) from None
    return _checked(path, contents, saved_settings)


def describe_shapes(shapes):
    """'W (784, 500), b (500,)' for {name: shape}."""
    return ', '.join('%s %s' % (name, tuple(shape))
                     for name, shape in shapes.items())


def _checked(path, contents, settings):
    """CheckpointError for numbers no run of cA.py writes."""
    def refuse(what):
        raise CheckpointError('the checkpoint %s cannot be used (%s)%s'
                              % (path, what, LEFT_AS_IT_IS), what)
    epoch, n_epochs = int(contents['epoch']), int(contents['n_epochs'])
    if len(contents['history']) != 64 or \
            set(contents['history']) - set('0123456789abcdef'):
        refuse('its history digest is not a sha256')
    if not 0 <= epoch <= n_epochs:
        refuse('it has %d epochs done of its %d' % (epoch, n_epochs))
    for name, value in (contents['params'] or {}).items():
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
    """Within ``with StopOnSignal() as stop:``, SIGINT, SIGTERM and SIGHUP
    (a closed terminal, a dropped ssh session) set ``stop.signum`` instead
    of interrupting; a second signal acts as usual (Ctrl-C twice aborts at
    once). The previous handlers come back on exit. Outside the main
    thread, where Python cannot catch signals, it does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

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
    away one that is unfinished or cannot be read (whatever the reason,
    the work it holds is replaced only when ``restart`` says so)."""
    check_resume_or_restart(resume, restart)
    if resume:
        read_checkpoint(path)  # it exists, and it reads
    if resume or restart or not os.path.lexists(path):
        return
    try:
        saved = read_checkpoint(path)
    except CheckpointError as e:
        raise CheckpointError(
            '%s cannot be read, so it may hold unfinished work (%s): start '
            'over with --restart, which replaces it, or use another '
            '--output-folder' % (path, e.reason or e)) from None
    if saved['epoch'] < saved['n_epochs']:
        raise CheckpointError(
            '%s holds an unfinished run (%d of %d epochs done): resume it '
            'with --resume, or start over with --restart, which replaces it'
            % (path, saved['epoch'], saved['n_epochs']))


def check_resume_or_restart(resume, restart):
    """--resume goes on from a checkpoint, --restart replaces it: a script
    that takes both refuses the pair."""
    if resume and restart:
        raise CheckpointError('--resume and --restart exclude each other: '
                              'give one')
