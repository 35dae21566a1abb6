"""Dense SIFT (Lowe 2004 descriptors on a regular grid, as VLFeat's dsift), batched over images.

A descriptor covers 4 x 4 spatial bins of `bin_size` pixels. Every pixel's gradient magnitude
votes into 8 orientation bins over [0, 360) degrees (linear interpolation between bin centres)
and into the spatial bins around it with bilinear weights; the 128 values are L2-normalised,
clipped at 0.2 and renormalised. Descriptors sit every `step` pixels; several bin sizes give
several scales. No Gaussian window or pre-smoothing (VLFeat's "fast" flat-window variant).
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import pooling
from jaxnet.classical._checks import check_images
from jaxnet.classical.gradients import gradients, orientation_maps
from jaxnet.classical.hog import l2_hys

SPATIAL_BINS = 4
ORIENTATIONS = 8


def bin_layout(length, bin_size, step):
    """Along one axis: the distinct spatial-bin starts [U] and, per descriptor and bin, the
    index [K, 4] into them (neighbouring descriptors share bins when step divides bin_size)."""
    starts = pooling.window_starts(length, SPATIAL_BINS * bin_size, step)
    starts = starts[:, None] + bin_size * np.arange(SPATIAL_BINS)[None, :]
    unique, index = np.unique(starts, return_inverse=True)
    return unique, index.reshape(starts.shape)


def pool_descriptors(maps, bin_size, step, kind):
    """Pool dense maps [K, N, H, W] into the spatial bins of every descriptor:
    [N, descriptors, 4 * 4 * K], (y bin, x bin, map) row-major."""
    _, n, h, w = maps.shape
    uy, iy = bin_layout(h, bin_size, step)
    ux, ix = bin_layout(w, bin_size, step)
    ay, ax = pooling.pool_matrix(h, uy, bin_size, kind), pooling.pool_matrix(w, ux, bin_size, kind)
    cells = pooling.pool_maps(maps, ay, ax)  # [N, Uy, Ux, K]
    d = cells[:, iy[:, None, :, None], ix[None, :, None, :]]  # [N, Ky, Kx, 4, 4, num_bins]
    return d.reshape(n, iy.shape[0] * ix.shape[0], -1)


def dsift_positions(height: int, width: int, *, bin_sizes=(4,), step: int = 2) -> np.ndarray:
    """Descriptor centres [M, 2] as (y, x) fractions of the image size, in output order."""
    out = []
    for b in bin_sizes:
        cy = pooling.window_starts(height, SPATIAL_BINS * b, step) + (SPATIAL_BINS * b - 1) / 2
        cx = pooling.window_starts(width, SPATIAL_BINS * b, step) + (SPATIAL_BINS * b - 1) / 2
        yy, xx = np.meshgrid(cy / height, cx / width, indexing="ij")
        out.append(np.stack([yy.ravel(), xx.ravel()], axis=-1))
    return np.concatenate(out).astype(np.float32)


@partial(jax.jit, static_argnames=("bin_sizes", "step", "clip", "eps"))
def _dsift(images, bin_sizes, step, clip, eps):
    mag, angle = gradients(images)
    maps = orientation_maps(mag, angle, ORIENTATIONS, 2 * np.pi, soft=True)
    out = [pool_descriptors(maps, b, step, "bilinear") for b in bin_sizes]
    return l2_hys(jnp.concatenate(out, axis=1), clip, eps)


def dsift(images, *, bin_sizes=(4,), step: int = 2, clip: float = 0.2, eps: float = 1e-5):
    """Dense SIFT descriptors [N, M, 128] (M over all scales, ordered as `dsift_positions`);
    each descriptor is (y bin, x bin, orientation) row-major."""
    images = check_images(images)
    bin_sizes = tuple(int(b) for b in np.atleast_1d(bin_sizes))
    for b in bin_sizes:
        pooling.window_starts(min(images.shape[1:3]), SPATIAL_BINS * b, step)
    return _dsift(images, bin_sizes, int(step), clip, eps)
