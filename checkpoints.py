"""Checkpoints and interrupts for long training runs (used by cA.test_cA).

A checkpoint is a numpy ``.npz`` file, written atomically (temporary file,
fsync, rename: utils.atomic_write) and read with ``allow_pickle=False``, so
that loading one can run no code. It holds everything SGD needs to go on
exactly where it stopped: the parameters, the position (the epoch under
way and the next minibatch), the cost history, the hyperparameters and a
fingerprint of the training data. SGD has no other state, so a resumed run
ends with the same parameters, bit for bit, as one that never stopped.

``StopOnSignal`` turns SIGINT (Ctrl-C) and SIGTERM into a flag that the
training loop reads after each minibatch, so that it stops between two
steps, never in the middle of one.
"""
import hashlib
import signal
import threading

import numpy

from utils import atomic_write

FORMAT = 1
PARAMS = ('W', 'b', 'b_prime')
ARRAYS = PARAMS + ('costs',)
SCALARS = ('epoch', 'batch')


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable or of another run."""


def data_fingerprint(array):
    """sha256 of an array's dtype, shape and bytes: the same data, or not."""
    array = numpy.ascontiguousarray(array)
    digest = hashlib.sha256(('%s %s' % (array.dtype.str, array.shape))
                            .encode())
    digest.update(memoryview(array).cast('B'))
    return digest.hexdigest()


def save_checkpoint(path, params, costs, epoch, batch, settings):
    """Write a checkpoint atomically.

    params: {'W': ..., 'b': ..., 'b_prime': ...} numpy arrays.
    costs: the (training_epochs, n_batches, 2) cost history so far.
    epoch, batch: where training goes on: epoch `epoch` (0-based) from its
        minibatch `batch`; (training_epochs, 0) once training is done.
    settings: {name: number or string}: the hyperparameters and the data
        fingerprint, which a resumed run must match.
    """
    arrays = {name: numpy.asarray(params[name]) for name in PARAMS}
    arrays['costs'] = numpy.asarray(costs)
    arrays['epoch'] = numpy.asarray(epoch)
    arrays['batch'] = numpy.asarray(batch)
    arrays['format'] = numpy.asarray(FORMAT)
    for name, value in settings.items():
        arrays['setting_' + name] = numpy.asarray(value)
    with atomic_write(path) as f:
        numpy.savez(f, **arrays)


def load_checkpoint(path):
    """Read a checkpoint: a dict with the arrays of ARRAYS, the ints of
    SCALARS and 'settings'. CheckpointError if it cannot be used."""
    fix = 'delete it to start afresh, or resume from another folder'
    try:
        with numpy.load(path, allow_pickle=False) as saved:
            contents = {name: saved[name] for name in saved.files}
    except FileNotFoundError:
        raise CheckpointError('no checkpoint at %s to resume from: run '
                              'without --resume to start training' % path)
    except (OSError, ValueError, EOFError) as e:
        raise CheckpointError('the checkpoint %s cannot be read (%s): %s'
                              % (path, str(e).splitlines()[0], fix))
    missing = [name for name in ARRAYS + SCALARS + ('format',)
               if name not in contents]
    if missing or int(contents['format']) != FORMAT:
        raise CheckpointError('%s is not a checkpoint of this version of '
                              'cA.py (%s): %s'
                              % (path, 'missing ' + ', '.join(missing)
                                 if missing else 'another format', fix))
    checkpoint = {name: contents[name] for name in ARRAYS}
    checkpoint.update({name: int(contents[name]) for name in SCALARS})
    checkpoint['settings'] = {
        name[len('setting_'):]: value.item()
        for name, value in contents.items() if name.startswith('setting_')}
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
            'with the same settings, or start afresh without --resume'
            % (path, '; '.join(differ)))


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
