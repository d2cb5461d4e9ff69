"""The paper's figures, drawn with matplotlib's Agg renderer (no display,
and no change to pyplot's global backend) and written atomically."""
import numpy

from machinery import outputs


def epoch_curves(costs):
    """Per-epoch means from test_cA's costs (epochs, n_batches, 2):
    (mean reconstruction cost, mean over minibatches of sqrt(L_jacob)),
    the two numbers of test_cA's per-epoch log line."""
    costs = numpy.asarray(costs, dtype=numpy.float64)
    return costs[:, :, 0].mean(axis=1), numpy.sqrt(costs[:, :, 1]).mean(axis=1)


def _new_figure(figsize):
    """A matplotlib Figure drawn by the Agg renderer (no display, and no
    change to pyplot's global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path):
    """Render fig as a PNG at path, atomically (outputs.atomic_write)."""
    with outputs.atomic_write(path) as f:
        fig.savefig(f, format='png')
    return path


def plot_spectrum(spectra, path):
    """Mean singular value of J against its rank, log scale on the values.

    spectra: {label: (K,) mean singular values, decreasing}.
    """
    from matplotlib.ticker import MaxNLocator
    fig = _new_figure((7, 4.5))
    ax = fig.add_subplot()
    for label, values in spectra.items():
        ax.semilogy(numpy.arange(1, len(values) + 1), values, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel('rank k of the singular value')
    ax.set_ylabel('mean singular value of J = dh/dx')
    ax.set_title('Spectrum of the Jacobian at test digits')
    ax.grid(True, which='major', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_contraction(radii, ratios, path, distances=None, title=None):
    """Mean contraction ratio against the radius r, on a linear axis.

    ratios: {label: (n_radii,)}; distances: {name: value} drawn as
    vertical lines (the typical distances between digits, the largest
    distance between training digits). radii[0] is the limit r -> 0
    (curve_radii): each curve's value there is drawn as a short dotted
    line across the left edge.
    """
    fig = _new_figure((7, 4.5))
    ax = fig.add_subplot()
    for label, values in ratios.items():
        line, = ax.plot(radii[1:], values[1:], marker='o', markersize=3,
                        label=label)
        ax.plot([0, radii[1]], [values[0], values[0]], linestyle=':',
                color=line.get_color())
        ax.plot([radii[0]], [values[0]], marker='o', markersize=3,
                color=line.get_color())
    styles = iter(['--', ':', '-.', (0, (5, 1, 1, 1))])
    for name, value in (distances or {}).items():
        ax.axvline(value, color='grey', linestyle=next(styles, '--'),
                   label='%s = %.2f' % (name, value))
    ax.set_xlabel('radius r = ||x1 - x0|| (pixels in [0, 1]); dotted: '
                  'the limit r -> 0')
    ax.set_ylabel('mean ||h(x1) - h(x0)|| / ||x1 - x0||')
    ax.set_title(title or 'Contraction curves: random directions around '
                 'test digits')
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, which='major', alpha=0.3)
    ax.legend(fontsize='small')
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training(curves, path):
    """Per-epoch mean reconstruction cost and mean ||J||_F of each model.

    curves: {label: (reconstruction, jacobian_norm)}, each (epochs,), as
    epoch_curves gives them.
    """
    from matplotlib.ticker import MaxNLocator
    fig = _new_figure((10, 4))
    ax_rec, ax_jac = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for label, (reconstruction, jacobian_norm) in curves.items():
        epochs = numpy.arange(1, len(reconstruction) + 1)
        ax_rec.plot(epochs, reconstruction, marker='o', markersize=3,
                    label=label)
        ax_jac.plot(epochs, jacobian_norm, marker='o', markersize=3,
                    label=label)
    ax_rec.set_ylabel('mean reconstruction cross-entropy (nats / digit)')
    ax_jac.set_ylabel('mean ||J||_F = mean sqrt(L_jacob)')
    for ax in (ax_rec, ax_jac):
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle('Training curves (means over each epoch\'s minibatches)')
    fig.tight_layout()
    return save_figure(fig, path)


def figure_distances(distances):
    """The vertical lines of a contraction figure: {name: distance}."""
    return {'median test-to-nearest-training distance':
                distances['median_nearest_neighbour'],
            'median distance between test digits':
                distances['median_pairwise'],
            'largest distance between training digits':
                distances['largest_training']}
