"""Spatial pooling of per-pixel values into cells (HOG cells, LBP cells, SIFT bins).

Along each image axis a pooling matrix A [cells, length] holds each pixel's weight in each
cell (hard "box" cells or "bilinear" triangular weights); it handles overlapping cells,
borders and odd sizes without special cases. Dense maps (a few orientation or colour
channels) are pooled by two small matmuls; label maps with many bins (LBP's 59) by one
scatter-add per image, which on CPU is far faster than building one-hot maps.
"""
import jax
import jax.numpy as jnp
import numpy as np


def pool_matrix(length: int, starts, size: int, kind: str = "box") -> np.ndarray:
    """Weights [len(starts), length] for cells [start, start + size) along one axis.

    kind="box": 1 inside the cell (hard assignment, as scikit-image's HOG);
    kind="bilinear": triangular weight max(0, 1 - |p - centre| / size) around the cell centre,
    i.e. each pixel votes into its two nearest cells with bilinear weights (Dalal-Triggs, SIFT).
    """
    starts = np.asarray(starts, dtype=np.float64)[:, None]
    p = np.arange(length, dtype=np.float64)[None, :]
    if kind == "box":
        w = ((p >= starts) & (p < starts + size)).astype(np.float64)
    elif kind == "bilinear":
        centre = starts + (size - 1) / 2.0
        w = np.maximum(0.0, 1.0 - np.abs(p - centre) / size)
    else:
        raise ValueError(f"unknown pooling kind {kind!r}; use 'box' or 'bilinear'")
    return w.astype(np.float32)


def cell_starts(length: int, cell: int) -> np.ndarray:
    """Starts of the whole cells that tile [0, length) (a remainder at the end is dropped)."""
    if cell < 1 or cell > length:
        raise ValueError(f"cell size {cell} must be in [1, {length}] for an image side of {length}")
    return np.arange(length // cell) * cell


def window_starts(length: int, window: int, step: int) -> np.ndarray:
    """Starts of the windows of `window` pixels placed every `step` pixels inside [0, length)."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if window > length:
        raise ValueError(f"window of {window} pixels does not fit in an image side of {length}")
    return np.arange(0, length - window + 1, step)


def _assignments(a: np.ndarray):
    """Per pixel, the cells it touches: (cell index [length, J], weight [length, J]); unused
    slots point past the last cell (dropped by the scatter) with weight 0."""
    cells, length = a.shape
    j = max(1, int((a > 0).sum(axis=0).max()))
    idx = np.full((length, j), cells, np.int32)
    w = np.zeros((length, j), np.float32)
    for p in range(length):
        nz = np.flatnonzero(a[:, p] > 0)
        idx[p, : len(nz)], w[p, : len(nz)] = nz, a[nz, p]
    return idx, w


def pool_maps(maps, ay: np.ndarray, ax: np.ndarray):
    """Pool dense maps [K, N, H, W] into cells: [N, A, B, K] = ay [A, H] @ map @ ax^T [W, B]."""
    k, n, h, w = maps.shape
    rows = (maps.reshape(k * n * h, w) @ jnp.asarray(ax).T).reshape(k * n, h, -1)
    cells = jnp.einsum("ah,mhb->mab", jnp.asarray(ay), rows)
    return cells.reshape(k, n, *cells.shape[1:]).transpose(1, 2, 3, 0)


def cell_histogram(bins, votes, ay: np.ndarray, ax: np.ndarray, num_bins: int):
    """Pool votes into cells: bins (int) and votes (float) [N, H, W, T] give T (bin, amount)
    votes per pixel; ay [A, H], ax [B, W] are pooling matrices. Returns [N, A, B, num_bins]
    with out[n, a, b, k] = sum over pixels and votes with bin k of ay[a, h] ax[b, w] vote."""
    n, h, w, t = bins.shape
    na, nb = ay.shape[0], ax.shape[0]
    iy, wy = _assignments(ay)  # [H, Jy]
    ix, wx = _assignments(ax)  # [W, Jx]
    spatial = (iy[:, None, :, None] * nb + ix[None, :, None, :])  # [H, W, Jy, Jx]
    spatial = np.where((iy[:, None, :, None] < na) & (ix[None, :, None, :] < nb), spatial, na * nb)
    weight = wy[:, None, :, None] * wx[None, :, None, :]
    index = spatial[None, ..., None] * num_bins + bins[:, :, :, None, None, :]  # [N,H,W,Jy,Jx,T]
    amount = weight[None, ..., None] * votes[:, :, :, None, None, :]
    size = na * nb * num_bins

    def one(i, v):
        return jnp.zeros(size, jnp.float32).at[i.ravel()].add(v.ravel(), mode="drop")

    return jax.vmap(one)(index, amount).reshape(n, na, nb, num_bins)
