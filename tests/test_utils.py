"""utils.py: tile_raster_images lays out known input as expected."""
import numpy
import pytest

from utils import scale_to_unit_interval, tile_raster_images


def images(n, shape=(2, 3)):
    """n images, image k a ramp k*10 + 0..5 (so each differs)."""
    return numpy.array([k * 10 + numpy.arange(shape[0] * shape[1])
                        for k in range(n)], dtype=float)


def test_scale_to_unit_interval_spans_zero_to_one_and_copies():
    a = numpy.array([[2.0, 4.0], [6.0, 10.0]])
    s = scale_to_unit_interval(a)
    numpy.testing.assert_allclose(s, [[0, 0.25], [0.5, 1.0]], atol=1e-7)
    assert a[0, 0] == 2.0


def test_layout_positions_and_spacing_without_scaling():
    X = images(3) / 100  # values in [0, 0.26), kept as they are
    out = tile_raster_images(X, img_shape=(2, 3), tile_shape=(2, 2),
                             tile_spacing=(1, 2),
                             scale_rows_to_unit_interval=False,
                             output_pixel_vals=False)
    assert out.shape == (2 * 2 + 1, 3 * 2 + 2) and out.dtype == X.dtype
    numpy.testing.assert_array_equal(out[0:2, 0:3], X[0].reshape(2, 3))
    numpy.testing.assert_array_equal(out[0:2, 5:8], X[1].reshape(2, 3))
    numpy.testing.assert_array_equal(out[3:5, 0:3], X[2].reshape(2, 3))
    assert not out[2, :].any() and not out[:, 3:5].any()  # the spacing
    assert not out[3:5, 5:8].any()  # no 4th image: blank tile


def test_rows_are_scaled_each_to_unit_interval_then_to_uint8():
    X = images(2)
    out = tile_raster_images(X, img_shape=(2, 3), tile_shape=(1, 2),
                             tile_spacing=(0, 1))
    assert out.dtype == numpy.uint8 and out.shape == (2, 7)
    # each tile is scaled on its own, whatever its offset (k * 10): by
    # (v - min) / (max - min + eps), then truncated to uint8 like the
    # original (so the top value is 254, not 255)
    expected = numpy.floor(numpy.arange(6) / (5 + 1e-8) * 255)
    numpy.testing.assert_array_equal(out[:, 0:3].ravel(), expected)
    numpy.testing.assert_array_equal(out[:, 4:7].ravel(), expected)


def test_extra_rows_are_ignored():
    out = tile_raster_images(images(9), (2, 3), (2, 2),
                             scale_rows_to_unit_interval=False,
                             output_pixel_vals=False)
    numpy.testing.assert_array_equal(out[2:4, 3:6],
                                     images(9)[3].reshape(2, 3))


@pytest.mark.parametrize('pixel_vals', [True, False])
def test_rgba_tuple_with_missing_channels(pixel_vals):
    X = images(4) / 100
    out = tile_raster_images((X, None, X, None), (2, 3), (2, 2),
                             tile_spacing=(1, 1),
                             scale_rows_to_unit_interval=False,
                             output_pixel_vals=pixel_vals)
    assert out.shape == (5, 7, 4)
    single = tile_raster_images(X, (2, 3), (2, 2), tile_spacing=(1, 1),
                                scale_rows_to_unit_interval=False,
                                output_pixel_vals=pixel_vals)
    numpy.testing.assert_array_equal(out[:, :, 0], single)
    numpy.testing.assert_array_equal(out[:, :, 2], single)
    assert not out[:, :, 1].any()  # a missing colour is black
    opaque = 255 if pixel_vals else 1.0
    assert numpy.all(out[:, :, 3] == opaque)  # a missing alpha is opaque
    assert out.dtype == (numpy.uint8 if pixel_vals else X.dtype)
