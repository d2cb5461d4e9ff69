"""paper/figures.py: the training curves it draws are test_cA's epoch
means, and every figure is a real PNG that Pillow opens."""
import numpy
import PIL.Image

from paper import figures


def test_epoch_curves_are_the_per_epoch_means():
    costs = numpy.array([[[10., 4.], [20., 16.]], [[5., 1.], [7., 9.]]])
    reconstruction, jacobian_norm = figures.epoch_curves(costs)
    numpy.testing.assert_allclose(reconstruction, [15, 6])
    numpy.testing.assert_allclose(jacobian_norm, [3, 2])


def test_every_figure_is_a_png(tmp_path):
    radii = numpy.array([0.01, 1.0, 2.0, 3.0])
    paths = [
        figures.plot_spectrum({'CAE': numpy.array([3.0, 1.0, 0.1])},
                              str(tmp_path / 's.png')),
        figures.plot_contraction(radii, {'CAE': [0.2, 0.3, 0.35, 0.3]},
                                 str(tmp_path / 'c.png'), {'d': 1.5}),
        figures.plot_training({'CAE': (numpy.array([3.0, 2.0]),
                                       numpy.array([1.0, 0.5]))},
                              str(tmp_path / 't.png'))]
    for path in paths:
        with PIL.Image.open(path) as image:
            image.load()
            assert image.format == 'PNG' and min(image.size) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ['c.png', 's.png',
                                                          't.png']
