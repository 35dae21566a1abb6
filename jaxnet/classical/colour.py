"""Local colour statistics (the colour descriptor of the 2011 ILSVRC pipeline, Perronnin et al.):
on the same dense grid as SIFT, a patch of 4 x 4 sub-regions of `bin_size` pixels is described
by the mean and standard deviation of each channel in each sub-region (96-d for RGB)."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import pooling
from jaxnet.classical._checks import check_images
from jaxnet.classical.sift import SPATIAL_BINS, pool_descriptors


@partial(jax.jit, static_argnames=("bin_sizes", "step"))
def _colour_stats(images, bin_sizes, step):
    n, h, w, c = images.shape
    x = images.astype(jnp.float32)
    maps = jnp.moveaxis(jnp.concatenate([x, x * x], axis=-1), -1, 0)  # pooled: E[x], E[x^2]
    out = []
    for b in bin_sizes:
        m = pool_descriptors(maps / (b * b), b, step, "box")
        m = m.reshape(n, -1, SPATIAL_BINS * SPATIAL_BINS, 2 * c)
        mean, sq = m[..., :c], m[..., c:]
        std = jnp.sqrt(jnp.maximum(sq - mean * mean, 0.0))
        out.append(jnp.stack([mean, std], axis=-1).reshape(n, m.shape[1], -1))
    return jnp.concatenate(out, axis=1)


def colour_stats(images, *, bin_sizes=(4,), step: int = 2):
    """Descriptors [N, M, 4 * 4 * C * 2] (y bin, x bin, channel, (mean, std)) at the positions
    `sift.dsift_positions` gives for the same bin_sizes and step."""
    images = check_images(images)
    bin_sizes = tuple(int(b) for b in np.atleast_1d(bin_sizes))
    for b in bin_sizes:
        pooling.window_starts(min(images.shape[1:3]), SPATIAL_BINS * b, step)
    return _colour_stats(images, bin_sizes, int(step))
