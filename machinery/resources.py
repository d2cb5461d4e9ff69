"""What a run needs of the machine, checked before the work starts.

A training function states, from its settings, the memory its largest
arrays will take (``Need``s: the setting that sets the size, its value,
the bytes and what they are for) and calls ``check_memory``: when the sum
does not fit in the memory available now, it raises ConfigError naming
the setting that needs the most, the total and what is available, so that
a setting like ``--epochs 1000000000`` or ``--n-hidden 100000000`` is one
``error:`` line instead of a MemoryError traceback, or a machine that
swaps until it stops answering.

The estimates are upper bounds of the arrays that grow with a setting
(the data, the parameters and their copies in the step, the cost
history), plus the stack's own fixed share (STACK_BYTES); what is
available is the kernel's MemAvailable, within the cgroup's limit when
there is one (a container's).
"""
import collections
import os

from .checks import ConfigError

# what the interpreter, the stack and its compiled modules take before any
# array of the run (measured: 140 MB for cA.py on a tiny dataset), with
# room to spare
STACK_BYTES = 400 * 2 ** 20

Need = collections.namedtuple('Need', 'setting value bytes what')


def human(n_bytes):
    """'5.8 GiB', '312 MiB', '18 KiB'."""
    for unit, scale in (('TiB', 2 ** 40), ('GiB', 2 ** 30), ('MiB', 2 ** 20),
                        ('KiB', 2 ** 10)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return ('%.1f %s' if value < 100 else '%.0f %s') % (value, unit)
    return '%d bytes' % n_bytes


def _meminfo_available():
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError):
        return None


def _cgroup_room():
    """What the cgroup (v2) still allows this process to take, or None."""
    try:
        with open('/sys/fs/cgroup/memory.max') as f:
            limit = f.read().strip()
        with open('/sys/fs/cgroup/memory.current') as f:
            current = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if limit == 'max':
        return None
    try:
        return max(int(limit) - current, 0)
    except ValueError:
        return None


def available_memory():
    """Bytes of memory this process can take now without swapping, or None
    when the system does not say."""
    sizes = [n for n in (_meminfo_available(), _cgroup_room())
             if n is not None]
    return min(sizes) if sizes else None


def check_memory(needs, available=None):
    """ConfigError when the needs, with the stack's share, do not fit in
    the available memory (default: available_memory()); the message names
    the setting whose arrays need the most."""
    available = available_memory() if available is None else available
    total = STACK_BYTES + sum(need.bytes for need in needs)
    if available is None or total <= available:
        return total
    worst = max(needs, key=lambda need: need.bytes)
    raise ConfigError(
        '%s %s needs about %s of memory for %s (%s in all with the rest of '
        'the run), and %s is available: choose a smaller %s, or free some '
        'memory' % (worst.setting, worst.value, human(worst.bytes),
                    worst.what, human(total), human(available),
                    worst.setting))


# ---- what each script's runs need --------------------------------------------

# V x H arrays that an auto-encoder's run holds at once, at most: measured
# at 40,000 hidden units (W 251 MB), the peak memory above a tiny run's was
# 2.4 times W with the kernel and 4.05 times W with T.grad's graph (W, its
# update, the gradients of the two costs, W**2); one more for margin
STEP_COPIES_OF_W = 5
# a layer's weights in the stacked model: W, its gradient, its update, the
# best fine-tuning parameters kept aside, and the pre-training step's
STACKED_COPIES_OF_W = 8


def autoencoder_needs(epochs, n_batches, n_visible, n_hidden, batch_size,
                      itemsize):
    """cA.test_cA's arrays that grow with its settings."""
    return [
        Need('training_epochs', epochs, 16 * epochs * n_batches,
             'the cost of every minibatch (16 bytes each, %d minibatches '
             'an epoch)' % n_batches),
        Need('n_hidden', n_hidden, STEP_COPIES_OF_W * itemsize * n_visible *
             n_hidden, 'W (%d x %d) and its copies in the training step'
             % (n_visible, n_hidden)),
        Need('batch_size', batch_size, 8 * itemsize * batch_size *
             (n_visible + n_hidden), 'the activations of a minibatch')]


def stacked_needs(n_ins, hidden_layers_sizes, batch_sizes, itemsize):
    """ScA.test_ScA's arrays that grow with its settings (the data are
    already read); batch_sizes: {setting: examples per minibatch}."""
    sizes = [n_ins] + list(hidden_layers_sizes) + [10]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    widest = max(sizes)
    return [
        Need('hidden_layers_sizes', list(hidden_layers_sizes),
             STACKED_COPIES_OF_W * itemsize * weights,
             'the %d weights of the layers and their copies in training'
             % weights)] + [
        Need(name, batch_size, 8 * itemsize * batch_size * widest *
             len(sizes), 'the activations of a minibatch')
        for name, batch_size in batch_sizes.items()]


def analysis_needs(n_examples, n_radii, n_visible, n_hidden):
    """analysis.run_analysis's own arrays beyond its two trainings: the
    contraction ratios of both models, the Jacobians of the digits, one
    at a time, and their directions."""
    return [
        Need('n_radii', n_radii, 2 * 8 * n_examples * n_radii,
             'the contraction ratios (2 models x %d digits x %d radii)'
             % (n_examples, n_radii)),
        Need('n_examples', n_examples, 8 * n_examples *
             (4 * n_visible + 2 * n_hidden) + 8 * n_visible * n_hidden,
             'the digits, their directions and codes')]
