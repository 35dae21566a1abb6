"""Uniform local binary patterns (Ojala, Pietikainen & Maenpaa 2002), batched over NHWC images.

Each pixel compares P neighbours on a circle of radius R (bilinearly interpolated, zero outside
the image) with itself; the P-bit code is mapped to one of P(P-1) + 3 labels: the P(P-1) + 2
"uniform" codes (at most two 0/1 transitions around the circle) each get their own label and
all other codes share the last one (59 labels for P=8). Labels are numbered as scikit-image's
`local_binary_pattern(..., method="nri_uniform")`. Histograms are pooled over a grid of cells.
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import pooling
from jaxnet.classical._checks import check_images


def uniform_label_table(p: int) -> np.ndarray:
    """Label [2**p] of every P-bit code: 0 = all zeros, 1 + (ones - 1) * P + rotation for a single
    circular run of ones starting at bit s (rotation = (P - s) mod P), P(P-1) + 1 = all ones, and
    P(P-1) + 2 for non-uniform codes."""
    table = np.empty(2**p, dtype=np.int32)
    for code in range(2**p):
        bits = [(code >> i) & 1 for i in range(p)]
        ones = sum(bits)
        changes = sum(bits[i] != bits[(i + 1) % p] for i in range(p))
        if changes > 2:
            table[code] = p * (p - 1) + 2
        elif ones == 0:
            table[code] = 0
        elif ones == p:
            table[code] = p * (p - 1) + 1
        else:
            start = next(i for i in range(p) if bits[i] and not bits[i - 1])
            table[code] = 1 + (ones - 1) * p + (p - start) % p
    return table


def num_labels(p: int) -> int:
    return p * (p - 1) + 3


def _neighbours(x, p, r):
    """Bilinearly interpolated values [N, H, W, P] of the P circle neighbours at radius r."""
    pad = int(np.ceil(r)) + 1
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    h, w = x.shape[1:]
    out = []
    for i in range(p):
        dy = np.round(-r * np.sin(2 * np.pi * i / p), 5)
        dx = np.round(r * np.cos(2 * np.pi * i / p), 5)
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0

        def at(oy, ox):
            return xp[:, pad + oy : pad + oy + h, pad + ox : pad + ox + w]

        top = (1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1) if fx else at(y0, x0)
        if fy:
            bottom = (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1) if fx else at(y0 + 1, x0)
            top = (1 - fy) * top + fy * bottom
        out.append(top)
    return jnp.stack(out, axis=-1)


@partial(jax.jit, static_argnames=("p", "r"))
def _lbp_labels(images, p, r):
    x = images.astype(jnp.float32)
    if x.shape[-1] == 3:
        x = x @ jnp.array([0.2125, 0.7154, 0.0721], jnp.float32)  # scikit-image's rgb2gray weights
    else:
        x = x[..., 0]
    bits = (_neighbours(x, p, r) >= x[..., None]).astype(jnp.int32)
    codes = jnp.sum(bits << jnp.arange(p), axis=-1)
    return jnp.asarray(uniform_label_table(p))[codes]


def lbp_labels(images, *, p: int = 8, r: float = 1.0):
    """Uniform LBP label [N, H, W] of every pixel (values in [0, P(P-1) + 3))."""
    if not 1 <= p <= 16:
        raise ValueError(f"p must be in [1, 16], got {p}")
    return _lbp_labels(check_images(images), p, float(r))


@partial(jax.jit, static_argnames=("p", "r", "cell"))
def _lbp(images, p, r, cell):
    labels = _lbp_labels(images, p, r)
    h, w = labels.shape[1:]
    ay = pooling.pool_matrix(h, pooling.cell_starts(h, cell), cell) / cell
    ax = pooling.pool_matrix(w, pooling.cell_starts(w, cell), cell) / cell
    ones = jnp.ones(labels.shape + (1,), jnp.float32)
    hist = pooling.cell_histogram(labels[..., None], ones, ay, ax, num_labels(p))
    return hist.reshape(labels.shape[0], -1)


def lbp(images, *, cell: int = 7, p: int = 8, r: float = 1.0):
    """Uniform-LBP histograms [N, cy * cx * (P(P-1) + 3)]: one per cell of `cell` pixels, each
    holding the fraction of the cell's pixels with each label (sums to 1 per cell)."""
    images = check_images(images)
    if not 1 <= p <= 16:
        raise ValueError(f"p must be in [1, 16], got {p}")
    pooling.cell_starts(min(images.shape[1:3]), cell)
    return _lbp(images, p, float(r), cell)
