"""Histogram of Oriented Gradients (Dalal & Triggs 2005), batched over NHWC images.

Gradient magnitude votes into unsigned orientation bins per cell; cells are grouped into
overlapping blocks of block x block cells, each L2-Hys normalised (L2, clip, L2 again).
With the defaults soft=False, spatial="box" it computes exactly scikit-image's
`hog(..., block_norm="L2-Hys")`; soft=True and spatial="bilinear" add the paper's
orientation and spatial interpolation (trilinear voting), which is a little more accurate.
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import pooling
from jaxnet.classical._checks import check_images
from jaxnet.classical.gradients import gradients, orientation_maps


def l2_hys(v, clip: float, eps: float, axis=-1):
    """L2-normalise, clip at `clip`, renormalise (Lowe's / Dalal-Triggs' L2-Hys) along `axis`."""
    v = v / jnp.sqrt(jnp.sum(v * v, axis=axis, keepdims=True) + eps**2)
    v = jnp.minimum(v, clip)
    return v / jnp.sqrt(jnp.sum(v * v, axis=axis, keepdims=True) + eps**2)


@partial(jax.jit, static_argnames=("cell", "block", "bins", "soft", "spatial", "transform_sqrt", "clip", "eps"))
def _hog(images, cell, block, bins, soft, spatial, transform_sqrt, clip, eps):
    n, h, w, _ = images.shape
    x = images.astype(jnp.float32)
    if transform_sqrt:
        x = jnp.sqrt(x)
    mag, angle = gradients(x)
    ay = pooling.pool_matrix(h, pooling.cell_starts(h, cell), cell, spatial) / cell
    ax = pooling.pool_matrix(w, pooling.cell_starts(w, cell), cell, spatial) / cell
    cells = pooling.pool_maps(orientation_maps(mag, angle, bins, np.pi, soft), ay, ax)  # [N, cy, cx, bins]
    cy, cx = cells.shape[1:3]
    by, bx = cy - block + 1, cx - block + 1
    blocks = jnp.stack(
        [jnp.stack([cells[:, i : i + by, j : j + bx] for j in range(block)], axis=3) for i in range(block)],
        axis=3,
    )  # [N, by, bx, block(i), block(j), bins]
    blocks = l2_hys(blocks.reshape(n, by, bx, -1), clip, eps)
    return blocks.reshape(n, -1)


def hog(images, *, cell: int = 8, block: int = 2, bins: int = 9, soft: bool = False,
        spatial: str = "box", transform_sqrt: bool = False, clip: float = 0.2, eps: float = 1e-5):
    """HOG descriptors [N, by * bx * block * block * bins] of NHWC images (grey or RGB).

    cell: cell side in pixels; block: block side in cells (stride one cell); bins: unsigned
    orientation bins over [0, 180) degrees; soft/spatial: see the module docstring.
    """
    images = check_images(images)
    h, w = images.shape[1:3]
    if min(h, w) // cell < block:
        raise ValueError(f"a {h}x{w} image has fewer than {block} cells of {cell} pixels per side")
    return _hog(images, cell, block, bins, soft, spatial, transform_sqrt, clip, eps)


def hog_dim(height: int, width: int, *, cell: int = 8, block: int = 2, bins: int = 9, **_) -> int:
    """Length of the HOG vector for an image of the given size."""
    return (height // cell - block + 1) * (width // cell - block + 1) * block * block * bins
