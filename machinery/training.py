"""What keeps cA.test_cA's training loop from losing work, behind four calls.

The loop in cA.py reads as the tutorial's::

    with training.SafeRun(output_folder, settings, log) as run:    # 1
        train_set_x = load_data(...)
        costs = run.start(train_set_x, n_train_batches)             # 2
        ca, train_ca = build_training(...)
        for epoch in run.epochs(ca.params, on_stop):                # 3
            for batch_index in run.minibatches(epoch):              # 4
                costs[epoch, batch_index] = train_ca(batch_index)
            print(...)  # the epoch's line

and each call does the safe thing at its moment:

1. ``SafeRun(...)``: checks every setting before anything is loaded;
   holds the output folder for this run alone (outputs.OutputFolder);
   refuses to start over an unfinished checkpoint unless ``restart``
   (``resume`` goes on from it); clears the temporaries of a killed run.
2. ``start``: checks that the minibatch fits the data, reads and checks the
   checkpoint of a resumed run against this run's settings and data before
   anything is compiled, checks that the checkpoint will fit on the disk,
   and returns the (epochs, minibatches, 2) cost history to fill in.
3. ``epochs``: sets the parameters to the checkpoint's on resume, then
   yields the epochs still to train, with SIGINT and SIGTERM turned into a
   stop between two steps (checkpoints.StopOnSignal).
4. ``minibatches``: yields the minibatches still to train in the epoch;
   after each it stops on a NaN or infinite cost (DivergenceError) or on a
   signal (a checkpoint, ``on_stop()``, then TrainingInterrupted); after
   the epoch's last, it writes the checkpoint.

``main(test_cA)`` is cA.py's command line: its flags take their defaults
from test_cA's keywords, a user's mistake is one ``error:`` line (cli.py),
and an interrupted run prints the command that resumes it.
"""
import time

from . import checkpoints
from . import checks
from . import cli
from . import outputs
from .kernel import GRADIENTS
from .mnist_file import DEFAULT_PATH as DEFAULT_DATASET

CHECKPOINT_NAME = 'cae_checkpoint.npz'
FILTERS_NAME = 'cae_filters.png'
AE_FILTERS_NAME = 'ae_filters.png'  # at contraction_level 0: a plain AE


def filters_name(contraction_level):
    return FILTERS_NAME if contraction_level > 0 else AE_FILTERS_NAME


class SafeRun(object):
    """One training run of cA.test_cA in an output folder (see the module
    docstring).

    settings: test_cA's learning_rate, training_epochs, batch_size,
    contraction_level, n_hidden, seed, gradient, resume and restart.
    """

    def __init__(self, output_folder, settings, log):
        self.settings = dict(settings)
        self.resume = self.settings.pop('resume')
        self.restart = self.settings.pop('restart')
        checks.cA_training(**self.settings)
        self.log = log
        self.folder = outputs.OutputFolder(output_folder)
        self.filters_path = self.checkpoint = None
        self.costs = None
        self.started = None
        self._signals = None  # while the epochs run: SIGINT, SIGTERM caught

    def __enter__(self):
        self.folder.__enter__()
        try:
            self.filters_path = self.folder.path(
                filters_name(self.settings['contraction_level']))
            self.checkpoint = checkpoints.TrainingRun(
                self.folder.path(CHECKPOINT_NAME), resume=self.resume,
                restart=self.restart, log=self.log)
            self.checkpoint.check_can_start()
            for path in (self.checkpoint.path, self.filters_path):
                outputs.remove_dead_temporaries(path)
        except BaseException:
            self.folder.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        self._let_signals_through()
        return self.folder.__exit__(*exc)

    def _let_signals_through(self):
        if self._signals is not None:
            signals, self._signals = self._signals, None
            signals.__exit__(None, None, None)

    def start(self, train_set_x, n_train_batches):
        """The cost history to fill in; on resume, the checkpoint's."""
        n_train, n_visible = train_set_x.get_value(borrow=True).shape
        checks.batch_fits(self.settings['batch_size'], n_train)
        s = self.settings
        shapes = {'W': (n_visible, s['n_hidden']), 'b': (s['n_hidden'],),
                  'b_prime': (n_visible,)}
        floatX = str(train_set_x.get_value(borrow=True).dtype)
        # what a resumed run must share with the checkpoint's run
        saved = dict(learning_rate=float(s['learning_rate']),
                     batch_size=int(s['batch_size']),
                     contraction_level=float(s['contraction_level']),
                     n_hidden=int(s['n_hidden']), seed=int(s['seed']),
                     gradient=s['gradient'], floatX=floatX,
                     data_sha256=checkpoints.data_fingerprint(
                         train_set_x.get_value(borrow=True)))
        self.costs = self.checkpoint.start(
            self.settings['training_epochs'], n_train_batches, saved, shapes)
        outputs.check_free_space(
            self.folder.folder, checkpoints.checkpoint_size(
                shapes, floatX, self.costs.shape), 'the checkpoint')
        return self.costs

    def epochs(self, params, on_stop=None):
        """The epochs to train; on resume, ``params`` (the shared W, b,
        b_prime) first take the checkpoint's values. on_stop: called when a
        signal stops the run, after the checkpoint; returns a phrase naming
        what it wrote."""
        self.checkpoint.restore(params, on_stop=on_stop)
        self.started = time.perf_counter()
        self._signals = self.checkpoint.stopping_on_signals()
        self._signals.__enter__()
        try:
            for epoch in self.checkpoint.epochs():
                yield epoch
        finally:
            self._let_signals_through()

    def minibatches(self, epoch):
        """The epoch's minibatches to train; the checkpoint after the last."""
        for batch_index in self.checkpoint.minibatches(epoch):
            yield batch_index
            self.checkpoint.after_minibatch(epoch, batch_index)
        self.checkpoint.save(epoch + 1)

    @property
    def epochs_trained(self):
        """Epochs this process trained (a resumed run started later)."""
        return self.settings['training_epochs'] - self.checkpoint.start_epoch

    @property
    def training_time(self):
        """Seconds since the first epoch began."""
        return time.perf_counter() - self.started


def write_image(image, path):
    """Save a PIL image as a PNG, atomically."""
    with outputs.atomic_write(path) as f:
        image.save(f, format='PNG')


def main(test_cA, argv=None):
    """cA.py's command line: parse argv, train, return the exit code."""
    parser = cli.parser_for(test_cA, 'Train a contractive auto-encoder on '
                                     'MNIST and write its filters as a PNG.')
    cli.add(parser, '--learning-rate', type=float)
    cli.add(parser, '--epochs', 'training_epochs', type=int,
            help='passes over the training set (default: %(default)s)')
    cli.add(parser, '--dataset')
    cli.add(parser, '--batch-size', type=int)
    cli.add(parser, '--output-folder',
            help='where cae_filters.png and the checkpoint are written; one '
                 'run at a time per folder (default: %(default)s)')
    cli.add(parser, '--contraction-level', type=float)
    cli.add(parser, '--n-hidden', type=int,
            help='hidden units (default: %(default)s)')
    cli.add(parser, '--seed', type=int)
    cli.add(parser, '--gradient', choices=GRADIENTS,
            help=cli.HELP['gradient'])
    cli.add(parser, '--resume', action='store_true',
            help='go on from the checkpoint in the output folder (same '
                 'settings and data); a larger --epochs trains on')
    cli.add(parser, '--restart', action='store_true',
            help='start over even though the output folder holds an '
                 'unfinished checkpoint (it is replaced)')
    return cli.main(test_cA, parser, argv, resume_flag='--resume')
