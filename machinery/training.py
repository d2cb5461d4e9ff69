"""What keeps cA.test_cA's training loop from losing work, behind four calls.

The loop in cA.py reads as the tutorial's::

    with training.SafeRun(output_folder, settings, log) as run:    # 1
        train_set_x = load_data(...)
        costs = run.start(train_set_x, n_train_batches)             # 2
        ca, train_ca, step = build_training(...)
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
   anything is compiled, checks that the run's arrays fit in the memory
   available and its outputs on the disk (resources.py), and returns the
   (epochs, minibatches, 2) cost history to fill in.
3. ``epochs``: sets the parameters to the checkpoint's on resume, then
   yields the epochs still to train, with SIGINT and SIGTERM turned into a
   stop between two steps (checkpoints.StopOnSignal).
4. ``minibatches``: yields the minibatches still to train in the epoch;
   after each it stops on a NaN or infinite cost (DivergenceError) or on a
   signal (a checkpoint, ``on_stop()``, then TrainingInterrupted); after
   the epoch's last, it writes the checkpoint.

``main(test_cA)`` runs cA.py's command line (its flags are in
commands.py): a user's mistake is one ``error:`` line (cli.py), and an
interrupted run prints the command that resumes it.
"""
import time

from . import checkpoints
from . import checks
from . import cli
from . import commands
from . import outputs
from . import resources
from .mnist_file import DEFAULT_PATH

# test_cA's dataset: data/mnist.pkl.gz at the top of the repository
DEFAULT_DATASET = DEFAULT_PATH

# what a run writes in its output folder; at contraction_level 0, a plain
# auto-encoder, its files say so (ae_...)
CHECKPOINT_NAME = 'cae_checkpoint.npz'
FILTERS_NAME = 'cae_filters.png'
AE_CHECKPOINT_NAME = 'ae_checkpoint.npz'
AE_FILTERS_NAME = 'ae_filters.png'


def output_names(contraction_level):
    """(checkpoint, filters) file names of a run at this lambda."""
    if contraction_level > 0:
        return CHECKPOINT_NAME, FILTERS_NAME
    return AE_CHECKPOINT_NAME, AE_FILTERS_NAME


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
        self.started = None
        self.minibatches_trained = 0  # by this process, resumed or not
        self._signals = None  # while the epochs run: SIGINT, SIGTERM caught

    def __enter__(self):
        self.folder.__enter__()
        try:
            checkpoint_name, filters_name = output_names(
                self.settings['contraction_level'])
            self.filters_path = self.folder.path(filters_name)
            self.checkpoint = checkpoints.TrainingRun(
                self.folder.path(checkpoint_name), resume=self.resume,
                restart=self.restart, log=self.log)
            self.checkpoint.check_can_start()
            self.history_path = checkpoints.history_path(
                self.checkpoint.path)
            for path in self.output_paths:
                outputs.remove_dead_temporaries(path)
            if not self.resume:
                self._say_what_it_replaces()
        except BaseException:
            self.folder.__exit__(None, None, None)
            raise
        return self

    def _say_what_it_replaces(self):
        try:
            whose = describe_run(checkpoints.read_checkpoint(
                self.checkpoint.path))
            paths = self.output_paths
        except checkpoints.CheckpointError:  # check_can_start said so
            whose, paths = 'an earlier run', self.output_paths[1:]
        outputs.note_replaced(paths, whose, self.log)

    @property
    def output_paths(self):
        """The checkpoint, its cost history and the filters."""
        return [self.checkpoint.path, self.history_path, self.filters_path]

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
        for name in ('learning_rate', 'contraction_level'):
            checks.representable(name, s[name], floatX)
        # what a resumed run must share with the checkpoint's run
        saved = dict(learning_rate=float(s['learning_rate']),
                     batch_size=int(s['batch_size']),
                     contraction_level=float(s['contraction_level']),
                     n_hidden=int(s['n_hidden']), seed=int(s['seed']),
                     gradient=s['gradient'], floatX=floatX,
                     data_sha256=checkpoints.data_fingerprint(
                         train_set_x.get_value(borrow=True)))
        check_means(s, n_visible, n_train_batches, floatX, self.folder,
                    shapes)
        return self.checkpoint.start(
            self.settings['training_epochs'], n_train_batches, saved, shapes)

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
            self.minibatches_trained += 1
            self.checkpoint.after_minibatch(epoch, batch_index)
        self.checkpoint.save(epoch + 1)

    def partial(self, epoch):
        """For the epoch's line: a note when this process trained only the
        end of the epoch (it resumed in the middle), else ''."""
        run = self.checkpoint
        if epoch != run.start_epoch or run.start_batch == 0:
            return ''
        if run.start_batch >= run.n_batches:
            return '  (resumed after its last minibatch)'
        return '  (resumed: minibatches %d-%d of %d)' % (
            run.start_batch + 1, run.n_batches, run.n_batches)

    @property
    def epochs_trained(self):
        """'20 epochs', '1 epoch', '19.15 epochs': what this process
        trained (a resumed run started later, perhaps mid-epoch)."""
        n = self.minibatches_trained / max(self.checkpoint.n_batches, 1)
        return ('%d epoch%s' % (n, '' if n == 1 else 's') if n == int(n)
                else '%.2f epochs' % n)

    @property
    def training_time(self):
        """Seconds since the first epoch began."""
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
        2 * checkpoints.checkpoint_size(shapes, floatX, n_batches) +
        checkpoints.history_size(epochs, n_batches) + 2 * FILTERS_BYTES,
        'the checkpoint (twice, to replace it), the cost history and the '
        'filters')


def write_image(image, path):
    """Save a PIL image as a PNG, atomically."""
    with outputs.atomic_write(path) as f:
        image.save(f, format='PNG')


def main(test_cA, argv=None):
    """cA.py's command line (commands.cA_parser): parse argv, train, and
    return the exit code; an interrupted run prints how to resume it."""
    return cli.main(test_cA, commands.cA_parser(test_cA), argv,
                    resume_flag='--resume')
