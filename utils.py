"""The tutorial series' helpers for looking at filters.

``scale_to_unit_interval`` and ``tile_raster_images`` keep the signatures
and behaviour of the series' ``utils.py``. (Writing files safely, which the
original did not do, lives in outputs.py.)
"""
import numpy


def scale_to_unit_interval(ndar, eps=1e-8):
    """Shift and scale ``ndar`` (a copy) so that its values span [0, 1]."""
    ndar = ndar.copy()
    ndar -= ndar.min()
    ndar *= 1.0 / (ndar.max() + eps)
    return ndar


def tile_raster_images(X, img_shape, tile_shape, tile_spacing=(0, 0),
                       scale_rows_to_unit_interval=True,
                       output_pixel_vals=True):
    """Lay the rows of ``X`` out as a grid of images, for viewing filters.

    X: a 2-D array, one flattened image per row (row-major, ``img_shape``);
       or a 4-tuple of such arrays (or None) for the R, G, B, A channels.
    img_shape: (height, width) of one image.
    tile_shape: (rows, columns) of the grid; extra rows of X are ignored,
       missing ones leave their tile blank.
    tile_spacing: (vertical, horizontal) blank pixels between tiles.
    scale_rows_to_unit_interval: scale each image to [0, 1] before laying
       it out (each image gets its own contrast).
    output_pixel_vals: True gives uint8 pixels in 0..255 (for PIL), False
       gives values of X's dtype in [0, 1].

    Returns an array of shape (H, W) for a 2-D X, (H, W, 4) for a tuple,
    with H = (img_h + spacing_h) * rows - spacing_h, and W alike.
    """
    assert len(img_shape) == 2
    assert len(tile_shape) == 2
    assert len(tile_spacing) == 2
    out_shape = [(ishp + tsp) * tshp - tsp for ishp, tshp, tsp
                 in zip(img_shape, tile_shape, tile_spacing)]

    if isinstance(X, tuple):
        assert len(X) == 4
        dtype = 'uint8' if output_pixel_vals else X[0].dtype
        out_array = numpy.zeros(out_shape + [4], dtype=dtype)
        # a missing channel is black, but a missing alpha is opaque
        fill = [0, 0, 0, 255 if output_pixel_vals else 1.]
        for channel, X_channel in enumerate(X):
            if X_channel is None:
                out_array[:, :, channel] = fill[channel]
            else:
                out_array[:, :, channel] = tile_raster_images(
                    X_channel, img_shape, tile_shape, tile_spacing,
                    scale_rows_to_unit_interval, output_pixel_vals)
        return out_array

    H, W = img_shape
    Hs, Ws = tile_spacing
    dtype = 'uint8' if output_pixel_vals else X.dtype
    out_array = numpy.zeros(out_shape, dtype=dtype)
    scale = 255 if output_pixel_vals else 1
    for tile_row in range(tile_shape[0]):
        for tile_col in range(tile_shape[1]):
            index = tile_row * tile_shape[1] + tile_col
            if index >= X.shape[0]:
                continue
            image = X[index].reshape(img_shape)
            if scale_rows_to_unit_interval:
                image = scale_to_unit_interval(image)
            top, left = tile_row * (H + Hs), tile_col * (W + Ws)
            out_array[top:top + H, left:left + W] = image * scale
    return out_array
