"""The coding step of NEC-UIUC's ILSVRC-2010 system (Lin et al. 2011): dense local HOG and LBP
descriptors, coded against a k-means codebook and pooled over a spatial pyramid.

- Local descriptors: `dense_hog` (every HOG block of 2 x 2 cells is one 36-d descriptor, at one
  or several cell sizes) and `dense_lbp` (uniform-LBP label histograms of overlapping windows).
- Super-vector coding (Zhou, Yu, Zhang & Huang 2010): a descriptor x whose nearest word is v_k
  is coded as [s, x - v_k] in block k of a K (d + 1) vector; a region's codes are averaged with
  the weight 1 / sqrt(p_k) (p_k: the fraction of the region's descriptors in word k), i.e. block
  k = sqrt(p_k) [s, mean_k(x) - v_k]. A hard-assignment, first-order relative of the Fisher vector.
- Local coordinate coding (Yu, Zhang & Gong 2009) by its fast approximation, locality-
  constrained linear coding (LLC, Wang et al. 2010): x is reconstructed from its `neighbours`
  nearest words, min |x - B^T c|^2 + beta |c|^2 s.t. sum(c) = 1 (closed form), then the codes
  are max-pooled (or averaged) per region: [R * K].
Each region's pooled vector may be power-normalised (signed |v|^power) and is L2-normalised,
then divided by sqrt(R) so the whole vector has unit norm (as fisher.fisher_vector).
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import pooling, hog, lbp
from jaxnet.classical.bow import region_table
from jaxnet.classical.kmeans import nearest

METHODS = ("super_vector", "llc")
POOLINGS = ("max", "average")


# ---- dense local descriptors -----------------------------------------------------------------

def dense_hog(images, *, cells=(4,), block: int = 2, bins: int = 9, soft: bool = True, spatial: str = "bilinear"):
    """HOG blocks as local descriptors [N, M, block * block * bins]: every block position
    (stride one cell) of hog.hog at each cell size in `cells`, in `dense_hog_positions` order."""
    out = []
    for cell in np.atleast_1d(cells):
        f = hog.hog(images, cell=int(cell), block=block, bins=bins, soft=soft, spatial=spatial)
        out.append(f.reshape(f.shape[0], -1, block * block * bins))
    return jnp.concatenate(out, axis=1)


def dense_hog_positions(height: int, width: int, *, cells=(4,), block: int = 2, **_) -> np.ndarray:
    """Block centres [M, 2] as (y, x) fractions of the image size."""
    out = []
    for cell in np.atleast_1d(cells):
        cy = (np.arange(height // int(cell) - block + 1) * cell + block * cell / 2) / height
        cx = (np.arange(width // int(cell) - block + 1) * cell + block * cell / 2) / width
        yy, xx = np.meshgrid(cy, cx, indexing="ij")
        out.append(np.stack([yy.ravel(), xx.ravel()], axis=-1))
    return np.concatenate(out).astype(np.float32)


def dense_lbp(images, *, windows=(8,), step: int = 4, p: int = 8, r: float = 1.0):
    """Uniform-LBP histograms of square windows of each size in `windows`, placed every `step`
    pixels: local descriptors [N, M, P(P-1) + 3], label fractions summing to 1 per window."""
    labels = lbp.lbp_labels(images, p=p, r=r)[..., None]  # [N, H, W, 1]
    n, h, w = labels.shape[:3]
    ones = jnp.ones(labels.shape, jnp.float32)
    out = []
    for win in np.atleast_1d(windows):
        win = int(win)
        ay = pooling.pool_matrix(h, pooling.window_starts(h, win, step), win) / win
        ax = pooling.pool_matrix(w, pooling.window_starts(w, win, step), win) / win
        hist = pooling.cell_histogram(labels, ones, ay, ax, lbp.num_labels(p))
        out.append(hist.reshape(n, -1, hist.shape[-1]))
    return jnp.concatenate(out, axis=1)


def dense_lbp_positions(height: int, width: int, *, windows=(8,), step: int = 4, **_) -> np.ndarray:
    """Window centres [M, 2] as (y, x) fractions of the image size."""
    out = []
    for win in np.atleast_1d(windows):
        cy = (pooling.window_starts(height, int(win), step) + win / 2) / height
        cx = (pooling.window_starts(width, int(win), step) + win / 2) / width
        yy, xx = np.meshgrid(cy, cx, indexing="ij")
        out.append(np.stack([yy.ravel(), xx.ravel()], axis=-1))
    return np.concatenate(out).astype(np.float32)


# ---- coding and pooling ----------------------------------------------------------------------

def _finish(pooled, power: float, eps: float = 1e-12):
    """Per-region power and L2 normalisation of [N, R, D], / sqrt(R); -> [N, R * D]."""
    if power != 1.0:
        pooled = jnp.sign(pooled) * jnp.abs(pooled) ** power
    pooled = pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), eps)
    return (pooled / np.sqrt(pooled.shape[1])).reshape(pooled.shape[0], -1)


def _scatter(table, index, values, r, k, reduce):
    """Per image: zeros [R * K, ...] with values [M, T, ...] added (or maxed) at region * K + word
    for each region of the descriptor (table [M, J], slots = R dropped)."""
    size = r * k
    flat = table[:, :, None] * k + index[:, None, :]  # [M, J, T]
    vals = jnp.broadcast_to(values[:, None], flat.shape + values.shape[2:])
    out = jnp.zeros((size,) + values.shape[2:], jnp.float32)
    flat, vals = flat.reshape(-1), vals.reshape((-1,) + values.shape[2:])
    return out.at[flat].max(vals, mode="drop") if reduce == "max" else out.at[flat].add(vals, mode="drop")


def super_vector(desc, centres, regions, *, s: float = 1.0, power: float = 1.0, budget: int = 1 << 20):
    """Super-vector codes [N, R * K * (d + 1)] of descriptors [N, M, d] (hard assignment to the
    codebook centres [K, d]; regions: concrete 0/1 [M, R]). Block k of a region holds
    sqrt(p_k) [s, mean of its descriptors in word k - v_k] (zeros for an empty word)."""
    n, m, d = desc.shape
    k = centres.shape[0]
    regions = np.asarray(regions, np.float32)
    r = regions.shape[1]
    table = region_table(regions)
    count = jnp.asarray(np.maximum(regions.sum(axis=0), 1.0))[:, None]  # [R, 1]

    def one(x):  # [M, d] -> [R, K, d + 1]
        word = nearest(x, centres)[0]  # [M, 1]
        rows = jnp.concatenate([jnp.ones((m, 1), jnp.float32), x], axis=-1)[:, None]  # [M, 1, d + 1]
        sums = _scatter(table, word, rows, r, k, "add").reshape(r, k, d + 1)
        num = sums[..., 0]  # descriptors of each word in each region
        mean = sums[..., 1:] / jnp.maximum(num, 1.0)[..., None]
        root_p = jnp.sqrt(num / count)[..., None]
        diff = jnp.where(num[..., None] > 0, mean - centres[None], 0.0)
        return jnp.concatenate([s * root_p, root_p * diff], axis=-1)

    per_call = max(1, budget // max(1, m * k))
    pooled = jax.lax.map(one, desc, batch_size=min(per_call, n))
    return _finish(pooled.reshape(n, r, -1), power)


def llc_codes(x, centres, *, neighbours: int = 5, beta: float = 1e-4):
    """LLC codes of descriptors x [M, d]: (word index [M, T], code [M, T]) over the T =
    neighbours nearest words, each code summing to 1 (Wang et al. 2010's analytic solution:
    C = (B - x)(B - x)^T + beta trace(C) I, c = C^-1 1 / (1^T C^-1 1))."""
    centres = jnp.asarray(centres)  # indexed by traced word indices below
    t = min(neighbours, centres.shape[0])
    index = nearest(x, centres, t)[0]  # [M, T]
    z = centres[index] - x[:, None, :]  # [M, T, d]
    c = z @ jnp.swapaxes(z, 1, 2)  # [M, T, T]
    c = c + (beta * jnp.trace(c, axis1=1, axis2=2) + 1e-10)[:, None, None] * jnp.eye(t)
    w = _spd_solve_ones(c)
    return index.astype(jnp.int32), w / jnp.sum(w, axis=-1, keepdims=True)


def _spd_solve_ones(c):
    """x with c x = 1 for a batch of small symmetric positive definite matrices c [B, T, T], by
    an unrolled Cholesky factorisation (elementwise ops only: XLA's CPU LAPACK calls inside the
    jitted loops of llc_vector stalled under load)."""
    t = c.shape[-1]
    low = [[None] * t for _ in range(t)]
    for j in range(t):
        diag = c[:, j, j] - sum((low[j][k] ** 2 for k in range(j)), jnp.zeros_like(c[:, 0, 0]))
        low[j][j] = jnp.sqrt(jnp.maximum(diag, 1e-30))
        for i in range(j + 1, t):
            off = c[:, i, j] - sum((low[i][k] * low[j][k] for k in range(j)), jnp.zeros_like(c[:, 0, 0]))
            low[i][j] = off / low[j][j]
    y = []
    for i in range(t):  # L y = 1
        y.append((1.0 - sum((low[i][k] * y[k] for k in range(i)), jnp.zeros_like(c[:, 0, 0]))) / low[i][i])
    x = [None] * t
    for i in reversed(range(t)):  # L^T x = y
        x[i] = (y[i] - sum((low[k][i] * x[k] for k in range(i + 1, t)), jnp.zeros_like(c[:, 0, 0]))) / low[i][i]
    return jnp.stack(x, axis=-1)


def llc_vector(desc, centres, regions, *, neighbours: int = 5, beta: float = 1e-4, pooling: str = "max",
               power: float = 1.0, budget: int = 1 << 20):
    """LLC codes of descriptors [N, M, d], pooled per region: [N, R * K]. pooling="max" keeps
    each word's largest code in the region (0 if none is positive), "average" their mean."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    n, m, _ = desc.shape
    k = centres.shape[0]
    regions = np.asarray(regions, np.float32)
    r = regions.shape[1]
    table = region_table(regions)
    count = jnp.asarray(np.maximum(regions.sum(axis=0), 1.0))[:, None]

    def one(x):  # [M, d] -> [R, K]
        index, code = llc_codes(x, centres, neighbours=neighbours, beta=beta)
        pooled = _scatter(table, index, code, r, k, "max" if pooling == "max" else "add").reshape(r, k)
        return pooled if pooling == "max" else pooled / count

    per_call = max(1, budget // max(1, m * k))
    pooled = jax.lax.map(one, desc, batch_size=min(per_call, n))
    return _finish(pooled, power)
