"""k-means in JAX: the visual-word codebooks of bag-of-words and of the NEC 2010 coding step.

k-means++ seeding (Arthur & Vassilvitskii 2007), then Lloyd iterations. Each iteration is one
pass over the points in blocks of rows (the [rows, K] distance matrix of a block only, about a
million values: small enough to stay in cache, which on CPU is several times faster). With a mesh, points are split over its
'data' axis: each device assigns its own rows and the per-centre sums are added over devices
(`jax.shard_map` + `psum`), so the result equals the one-device fit up to float summation order.
"""
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxnet.classical import sharding
from jaxnet.classical._checks import check_matrix

_TINY = 1e-12


def sq_distances(x, centres):
    """Squared Euclidean distances [..., K] from points x [..., d] to centres [K, d], by the
    expansion |x|^2 - 2 x.c + |c|^2 (one matmul), clamped at 0."""
    d = (jnp.sum(x * x, axis=-1, keepdims=True) - 2.0 * x @ centres.T
         + jnp.sum(centres * centres, axis=-1))
    return jnp.maximum(d, 0.0)


def scores(x, centres):
    """x.c - |c|^2 / 2 [..., K]: = (|x|^2 - |x - c|^2) / 2, so the nearest centres have the
    largest scores (one matmul and one broadcast add; |x|^2 is not needed to rank them)."""
    return x @ centres.T - 0.5 * jnp.sum(centres * centres, axis=-1)


def nearest(x, centres, k: int = 1):
    """The k nearest centres of each point: (index [..., k] int32, score [..., k], see `scores`),
    nearest first. (lax.top_k: on CPU faster than argmin / argmax over the last axis.)"""
    best, index = jax.lax.top_k(scores(x, centres), k)
    return index.astype(jnp.int32), best


def assign(x, centres):
    """Nearest centre of each point: (index [...] int32, squared distance [...])."""
    index, best = nearest(x, centres)
    return index[..., 0], jnp.maximum(jnp.sum(x * x, axis=-1) - 2.0 * best[..., 0], 0.0)


@partial(jax.jit, static_argnames=("k",))
def _plus_plus(x, mask, k, key):
    keys = jax.random.split(key, k)
    first = x[jax.random.choice(keys[0], x.shape[0], p=mask / jnp.sum(mask))]
    seeds = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    dist = jnp.sum((x - first) ** 2, axis=1) * mask

    def add(i, carry):
        seeds, dist = carry
        total = jnp.sum(dist)
        # all remaining points coincide with seeds: draw among the real points uniformly
        p = jnp.where(total > _TINY, dist / jnp.maximum(total, _TINY), mask / jnp.sum(mask))
        new = x[jax.random.choice(keys[i], x.shape[0], p=p)]
        return seeds.at[i].set(new), jnp.minimum(dist, jnp.sum((x - new) ** 2, axis=1) * mask)

    return jax.lax.fori_loop(1, k, add, (seeds, dist))[0]


def kmeans_plus_plus(x, k: int, *, key, mesh=None):
    """k-means++ seeds [k, d]: the first a uniformly drawn point, each next one a point drawn
    with probability proportional to its squared distance to the nearest seed so far (so the
    seeds are distinct points whenever x has at least k distinct rows)."""
    x = check_matrix(x, "k-means input").astype(jnp.float32)
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must be in [1, {x.shape[0]}] (the number of points), got {k}")
    xp, mask, _ = _prepare(x, mesh, block_rows=1)
    return _plus_plus(xp, mask, k, key)


def _local_stats(x, mask, centres, block):
    """Per-centre sums [K, d], counts [K] and summed squared distance of the rows x [n, d]
    (n a multiple of block) whose mask is 1, assigned to their nearest centre."""
    k, d = centres.shape
    xb, mb = x.reshape(-1, block, d), mask.reshape(-1, block)

    def one(carry, rows):
        sums, counts, inertia = carry
        xr, mr = rows
        idx, dist = assign(xr, centres)
        sums = sums + jax.ops.segment_sum(xr * mr[:, None], idx, k)
        counts = counts + jax.ops.segment_sum(mr, idx, k)
        return (sums, counts, inertia + jnp.sum(dist * mr)), None

    init = (jnp.zeros((k, d), jnp.float32), jnp.zeros((k,), jnp.float32), jnp.zeros((), jnp.float32))
    return jax.lax.scan(one, init, (xb, mb))[0]


@lru_cache(maxsize=16)
def _stats_fn(mesh, block):
    if mesh is None:
        return jax.jit(partial(_local_stats, block=block))

    def sharded(x, mask, centres):
        return jax.tree.map(lambda v: jax.lax.psum(v, sharding.DATA_AXIS), _local_stats(x, mask, centres, block))

    spec = P(sharding.DATA_AXIS)
    return jax.jit(jax.shard_map(sharded, mesh=mesh, in_specs=(spec, spec, P()), out_specs=(P(), P(), P()),
                                 check_vma=False))


def _prepare(x, mesh, block_rows):
    """Rows padded to devices x a multiple of the block (mask 0 on padding), on the mesh."""
    n, devices = x.shape[0], sharding.data_size(mesh)
    local = -(-n // devices)
    block = max(1, min(block_rows, local))
    total = devices * (-(-local // block) * block)
    mask = (jnp.arange(total) < n).astype(jnp.float32)
    xp = jnp.pad(x, ((0, total - n), (0, 0)))
    return sharding.place(xp, mesh), sharding.place(mask, mesh), block


def fit_kmeans(x, k: int, *, key, max_iter: int = 50, tol: float = 1e-4, mesh=None, block_rows: int = 4096):
    """Cluster x [n, d] into k centres: k-means++ seeds, then at most max_iter Lloyd steps,
    stopping when the mean squared distance to the nearest centre falls by less than a
    fraction tol in one step. A centre that loses all its points keeps its place.

    Returns (centres [k, d], history) with history = numpy array of the mean squared distance
    (the k-means objective per point) before each step and after the last; it never rises.
    """
    x = check_matrix(x, "k-means input").astype(jnp.float32)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (the number of points), got {k}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    centre = jnp.mean(x, axis=0)  # centring keeps |x|^2 - 2 x.c + |c|^2 accurate in float32
    block_rows = max(1, min(block_rows, (1 << 20) // k))  # a [rows, k] score block stays in cache
    xp, mask, block = _prepare(x - centre, mesh, block_rows)
    centres = _plus_plus(xp, mask, k, key)
    stats = _stats_fn(mesh, block)
    history = []
    for _ in range(max_iter):
        sums, counts, inertia = stats(xp, mask, centres)
        history.append(float(inertia) / n)
        centres = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)
        if len(history) > 1 and history[-2] - history[-1] <= tol * history[-2]:
            break
    history.append(float(stats(xp, mask, centres)[2]) / n)
    return centres + centre, np.asarray(history)
