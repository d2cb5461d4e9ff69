"""The safety of cA.test_cA's training run, behind a ``with`` and a few
calls that its loop makes at their moment::

    with training.SafeRun(output_folder, checkpoint_name, filters_name,
                          settings, log) as run:                   # 1
        train_set_x = load_data(...)
        costs = run.start(train_set_x, n_train_batches)            # 2
        ca, train_ca, step = build_training(...)
        first_epoch = run.restore(ca.params, step)                 # 3
        train_ca = run.guard(train_ca, on_stop)                    # 4
        for epoch in range(first_epoch, training_epochs):
            for batch_index in range(n_train_batches):
                costs[epoch, batch_index] = train_ca(batch_index)
            print(...)  # the epoch's line
            run.checkpoint(epoch + 1)                              # 5

1. ``SafeRun(...)``: checks every setting before anything is loaded;
   holds the output folder for this run alone (outputs.OutputFolder);
   refuses to start over an unfinished checkpoint unless ``restart``
   (``resume`` goes on from it); clears the temporaries of a killed run.
2. ``start``: checks that the minibatch fits the data, reads and checks
   the checkpoint of a resumed run against this run's settings and data,
   checks that the run's arrays fit in the memory available and its
   outputs on the disk (resources.py), and returns the (epochs,
   minibatches, 2) cost history to fill in.
3. ``restore``: on resume, checks that the checkpoint holds the very
   parameters (by name and shape) and was trained by the very step that
   was just compiled, sets the parameters to its values and returns the
   first epoch to train; else returns 0.
4. ``guard``: the compiled step, wrapped: after each call it stops on a
   NaN or infinite cost (DivergenceError) and on SIGINT, SIGTERM or
   SIGHUP. A signal stops the run within one minibatch: the parameters go
   back to their values at the start of the epoch, the checkpoint of the
   epochs done is on the disk, ``on_stop()`` runs, and TrainingInterrupted
   says how far the run got. The epoch under way is trained again on resume,
   so the resumed run ends with the bits of an uninterrupted one.
5. ``checkpoint``: the cost history and the checkpoint of the epochs done;
   a signal that came after the epoch's last minibatch (while its line or
   the checkpoint was written) stops the run right after it, the same way.
"""
import time

import numpy

from . import checkpoints
from . import checks
from . import outputs
from . import resources


def describe_run(checkpoint):
    """'a finished run of 20 epochs (lambda 0.1, 500 hidden units)' for the
    checkpoint read by checkpoints.read_checkpoint."""
    done, planned = checkpoint['epoch'], checkpoint['n_epochs']
    settings = checkpoint['settings']
    return '%s run of %d epoch%s (lambda %g, %s hidden units)' % (
        'a finished' if done >= planned else 'an unfinished',
        planned, '' if planned == 1 else 's',
        settings.get('contraction_level', float('nan')),
        settings.get('n_hidden', '?'))


class SafeRun(object):
    """One training run of cA.test_cA in an output folder (see the module
    docstring).

    checkpoint_name, filters_name: the file names of the checkpoint and
    the filters in the folder; the cost history goes beside the checkpoint
    (checkpoints.history_path).
    settings: test_cA's learning_rate, training_epochs, batch_size,
    contraction_level, n_hidden, seed, gradient, resume and restart.
    """

    def __init__(self, output_folder, checkpoint_name, filters_name,
                 settings, log):
        self.settings = dict(settings)
        self.resume = self.settings.pop('resume')
        self.restart = self.settings.pop('restart')
        checks.cA_training(**self.settings)
        self.log = log
        self.folder = outputs.OutputFolder(output_folder)
        self.names = checkpoint_name, filters_name
        self.path = self.history_path = self.filters_path = None
        self.saved = self.params = self.costs = self.history = None
        self.fingerprints = {}  # what the checkpoint records of the run
        self.epochs_done = self.first_epoch = 0
        self.minibatches_trained = 0  # by this process
        self.started = None
        self._at_epoch_start = None  # the parameters, as last checkpointed
        self._signals = None  # while training: SIGINT, SIGTERM, SIGHUP
        self._on_stop = None

    def __enter__(self):
        self.folder.__enter__()
        try:
            self.path, self.filters_path = map(self.folder.path, self.names)
            self.history_path = checkpoints.history_path(self.path)
            checkpoints.check_can_start(self.path, self.resume, self.restart,
                                        self.log)
            for path in self.output_paths:
                outputs.remove_dead_temporaries(path)
            if not self.resume:
                self._say_what_it_replaces()
        except BaseException:
            self.folder.__exit__(None, None, None)
            raise
        return self

    @property
    def output_paths(self):
        """The checkpoint, its cost history and the filters."""
        return [self.path, self.history_path, self.filters_path]

    def _say_what_it_replaces(self):
        try:
            whose = describe_run(checkpoints.read_checkpoint(self.path))
            paths = self.output_paths
        except checkpoints.CheckpointError:  # check_can_start said so
            whose, paths = 'an earlier run', self.output_paths[1:]
        outputs.note_replaced(paths, whose, self.log)

    def __exit__(self, *exc):
        self._let_signals_through()
        return self.folder.__exit__(*exc)

    def _let_signals_through(self):
        if self._signals is not None:
            signals, self._signals = self._signals, None
            signals.__exit__(None, None, None)

    def start(self, train_set_x, n_train_batches):
        """The cost history to fill in; on resume, with the checkpoint's
        epochs, checked against this run's settings and data."""
        data = train_set_x.get_value(borrow=True)
        n_train, n_visible = data.shape
        s = self.settings
        checks.batch_fits(s['batch_size'], n_train)
        floatX = str(data.dtype)
        for name in ('learning_rate', 'contraction_level'):
            checks.representable(name, s[name], floatX)
        # what a resumed run must share with the checkpoint's run
        self.fingerprints = dict(
            learning_rate=float(s['learning_rate']),
            batch_size=int(s['batch_size']),
            contraction_level=float(s['contraction_level']),
            n_hidden=int(s['n_hidden']), seed=int(s['seed']),
            gradient=s['gradient'], floatX=floatX,
            data_sha256=checkpoints.data_fingerprint(data))
        shapes = {'W': (n_visible, s['n_hidden']), 'b': (s['n_hidden'],),
                  'b_prime': (n_visible,)}
        check_means(s, n_visible, n_train_batches, floatX, self.folder,
                    shapes)
        n_epochs = s['training_epochs']
        self.costs = numpy.zeros((n_epochs, n_train_batches, 2))
        self.history = checkpoints.CostHistory(self.history_path, n_epochs,
                                               n_train_batches)
        if self.resume:
            # the settings and epochs; the parameters once restore() knows
            # their names and shapes
            self.saved = checkpoints.read_checkpoint(self.path,
                                                     self.fingerprints)
            done = self.saved['epoch']
            if done > n_epochs:
                raise checkpoints.CheckpointError(
                    '%s has %d epochs done: ask for at least as many '
                    '(--epochs %d)%s' % (self.path, done, done,
                                         checkpoints.LEFT_AS_IT_IS))
            self.costs[:done] = self.history.read(done, self.saved['history'])
        return self.costs

    def restore(self, params, step):
        """The first epoch to train. params: the shared variables the step
        trains; step: what build_training compiled (its fingerprint goes
        in the checkpoint). On resume, the parameters take the
        checkpoint's values, after checking that they and the step are
        the checkpoint's."""
        self.params = list(params)
        names = [p.name for p in self.params]
        if None in names or len(set(names)) != len(names):
            raise checks.ConfigError(
                'the parameters the cA trains need names of their own to be '
                'checkpointed (they are %s): give each shared variable in '
                'ca.params a name' % names)
        self.fingerprints['step'] = step.fingerprint
        if self.resume:
            # the settings were checked by start(); the step is compared
            # by _restore_from, which says what an edit changed
            settings = dict(self.fingerprints)
            del settings['step']
            self._restore_from(checkpoints.read_checkpoint(
                self.path, settings,
                {p.name: p.get_value(borrow=True).shape
                 for p in self.params}))
        self._at_epoch_start = [p.get_value() for p in self.params]
        self.first_epoch = self.epochs_done
        return self.first_epoch

    def _restore_from(self, saved):
        def refuse(what):
            raise checkpoints.CheckpointError(
                'cannot resume from %s: %s%s' % (self.path, what,
                                                 checkpoints.LEFT_AS_IT_IS))
        step = str(saved['settings'].get('step'))
        if step.split(':')[0] != self.fingerprints['step'].split(':')[0]:
            print('note: %s was written with the other stack, whose graphs '
                  'cannot be compared with this one\'s: its step is taken to '
                  'be this run\'s' % self.path, file=self.log, flush=True)
        elif step != self.fingerprints['step']:
            refuse('it was trained by another step (the cost, penalty or '
                   'update that get_cost_updates builds has changed since)')
        for param in self.params:
            param.set_value(saved['params'][param.name].astype(param.dtype))
        self.epochs_done = saved['epoch']
        print('resuming from %s after epoch %d' % (self.path,
                                                   self.epochs_done),
              file=self.log, flush=True)

    def guard(self, train, on_stop=None):
        """train, stopping on a diverging cost and on a stop signal (see
        the module docstring); on_stop() returns a phrase naming what it
        wrote (the filters)."""
        self.started = time.perf_counter()
        self._on_stop = on_stop
        self._signals = checkpoints.StopOnSignal()
        self._signals.__enter__()

        def guarded(batch_index):
            costs = train(batch_index)
            self.minibatches_trained += 1
            checks.finite_cost(
                costs, 'the cost at epoch %d, minibatch %d' % (
                    self.epochs_done + 1, batch_index + 1),
                '--learning-rate', self.settings['learning_rate'],
                '; the last checkpoint, if any, is intact')
            if self._signalled:
                self._stop(batch_index)
            return costs
        return guarded

    @property
    def _signalled(self):
        """A stop signal came while training."""
        return self._signals is not None and self._signals.signum is not None

    def _stop(self, batch_index):
        signals = self._signals
        self._let_signals_through()
        for param, value in zip(self.params, self._at_epoch_start):
            param.set_value(value)
        self.minibatches_trained -= batch_index + 1  # trained again later
        self.checkpoint(self.epochs_done)
        raise self._interrupted(
            signals, 'in epoch %d/%d after minibatch %d/%d' % (
                self.epochs_done + 1, self.settings['training_epochs'],
                batch_index + 1, self.costs.shape[1]),
            ' (the epoch under way trains again on resume)')

    def _interrupted(self, signals, where, note):
        """The TrainingInterrupted of a stop signal: where the run stopped,
        the checkpoint of the epochs done, what on_stop() wrote."""
        wrote = self._on_stop() if self._on_stop else ''
        done = self.epochs_done
        return checkpoints.TrainingInterrupted(
            '%s: stopped %s; checkpoint %s holds the %d epoch%s done%s%s' % (
                signals.name, where, self.path, done,
                '' if done == 1 else 's', note,
                ', ' + wrote if wrote else ''),
            signals.signum)

    def checkpoint(self, epochs_done):
        """Write the cost history's finished epochs, then the checkpoint of
        the parameters after ``epochs_done`` epochs."""
        history = self.history.up_to(epochs_done, self.costs)
        checkpoints.save_checkpoint(
            self.path, {p.name: p.get_value(borrow=True)
                        for p in self.params},
            self.settings['training_epochs'], history, epochs_done,
            self.fingerprints)
        self.epochs_done = epochs_done
        if epochs_done < self.settings['training_epochs']:
            self._at_epoch_start = [p.get_value() for p in self.params]
        if self._signalled:
            # it came after the epoch's last minibatch (while its line or
            # this checkpoint was written): stop here, nothing to redo
            signals = self._signals
            self._let_signals_through()
            n_epochs = self.settings['training_epochs']
            raise self._interrupted(
                signals, 'after epoch %d/%d' % (epochs_done, n_epochs),
                ' (training is finished)' if epochs_done >= n_epochs
                else '')

    @property
    def epochs_trained(self):
        """'20 epochs', '1 epoch': what this process trained."""
        n = self.epochs_done - self.first_epoch
        return '%d epoch%s' % (n, '' if n == 1 else 's')

    @property
    def training_time(self):
        """Seconds since training began."""
        return time.perf_counter() - self.started


# bytes of the filters PNG at most (100 tiles of 28 x 28, 8-bit grey)
FILTERS_BYTES = 2 ** 20


def check_means(settings, n_visible, n_batches, floatX, folder, shapes):
    """ConfigError or OutputError, before anything is allocated or
    compiled, when the run's arrays cannot fit in the memory available or
    its outputs on the disk (machinery/resources.py)."""
    epochs = settings['training_epochs']
    resources.check_memory(resources.autoencoder_needs(
        epochs, n_batches, n_visible, settings['n_hidden'],
        settings['batch_size'], int(floatX[-2:]) // 8))
    # a checkpoint is replaced atomically: the old one stays until the new
    # one is whole, so both must fit; likewise the filters
    outputs.check_free_space(
        folder.folder,
        2 * checkpoints.checkpoint_size(shapes, floatX) +
        checkpoints.history_size(epochs, n_batches) + 2 * FILTERS_BYTES,
        'the checkpoint (twice, to replace it), the cost history and the '
        'filters')
