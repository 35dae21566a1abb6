"""Bag of visual words (Csurka et al. 2004; Lazebnik et al. 2006's spatial pyramid): each local
descriptor votes for its nearest visual word of a k-means codebook (hard assignment), or for
its `neighbours` nearest words with Gaussian-kernel weights (the kernel codebook of van Gemert
et al. 2008, localised as in Liu et al. 2011; neighbours=0 spreads over all words), and the
votes are counted per spatial-pyramid region: [N, R, K] histograms, then fractions per region.

Images are processed a few at a time inside the jitted computation (`jax.lax.map`), so the
[descriptors, words] score matrix stays near `budget` values whatever the batch size (about a
million: in cache, 5x faster on CPU than one [batch x descriptors, words] matrix).
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical.kmeans import nearest, scores

ASSIGNMENTS = ("hard", "soft")
NORMALIZATIONS = ("l1", "none")


def region_table(regions) -> np.ndarray:
    """Per descriptor, the regions it belongs to: int [M, J] (J = most regions of one
    descriptor), unused slots = R (past the last region, dropped by the scatter)."""
    regions = np.asarray(regions)
    m, r = regions.shape
    j = max(1, int((regions > 0).sum(axis=1).max()))
    table = np.full((m, j), r, np.int32)
    for i in range(m):
        nz = np.flatnonzero(regions[i] > 0)
        table[i, : len(nz)] = nz
    return table


def assignments(desc, centres, *, assign: str = "hard", neighbours: int = 0, sigma=1.0):
    """Votes of descriptors [..., M, d] for the words centres [K, d]: (word index [..., M, T],
    weight [..., M, T]), each descriptor's weights summing to 1. hard: T = 1, the nearest word;
    soft: weights proportional to exp(-|x - c|^2 / (2 sigma^2)) over the `neighbours` nearest
    words (T = neighbours), or over all K words (neighbours = 0, T = K)."""
    k = centres.shape[0]
    if assign == "hard":
        index, _ = nearest(desc, centres)
        return index, jnp.ones(index.shape, jnp.float32)
    if assign != "soft":
        raise ValueError(f"assign must be one of {ASSIGNMENTS}, got {assign!r}")
    # -|x - c|^2 / (2 sigma^2) = score / sigma^2 - |x|^2 / (2 sigma^2): the last term cancels
    if neighbours and neighbours < k:
        index, best = nearest(desc, centres, neighbours)
    else:
        best = scores(desc, centres)
        index = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), best.shape)
    return index, jax.nn.softmax(best / jnp.square(sigma), axis=-1)


def histograms(index, weight, regions, num_words: int):
    """Vote counts [N, R, K] per region: index, weight [N, M, T] (from `assignments`) and the
    0/1 region membership [M, R] (a concrete array, e.g. pyramid.pyramid_regions). Every
    region's counts add up to its number of descriptors (weights summing to 1 per descriptor)."""
    table = region_table(regions)  # [M, J]
    r = np.asarray(regions).shape[1]
    flat = table[None, :, :, None] * num_words + index[:, :, None, :]  # [N, M, J, T]
    votes = jnp.broadcast_to(weight[:, :, None, :], flat.shape)
    size = r * num_words

    def one(i, v):
        return jnp.zeros(size, jnp.float32).at[i.ravel()].add(v.ravel(), mode="drop")

    return jax.vmap(one)(flat, votes).reshape(index.shape[0], r, num_words)


def bow_vector(desc, centres, regions, *, assign: str = "hard", neighbours: int = 0, sigma=1.0,
               normalize: str = "l1", budget: int = 1 << 20):
    """Bag-of-words vectors [N, R * K] of descriptors [N, M, d]: pyramid histograms of word
    votes, each region divided by its descriptor count when normalize="l1" (fractions summing
    to 1 per region), raw counts with "none". `regions` must be concrete ([M, R] 0/1)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    n, m, _ = desc.shape
    k = centres.shape[0]
    regions = np.asarray(regions, np.float32)
    if regions.shape[0] != m:
        raise ValueError(f"regions has {regions.shape[0]} rows but there are {m} descriptors per image")

    dense = assign == "soft" and not 0 < neighbours < k

    def one(d):  # one image's descriptors [M, d] -> [R, K]
        index, weight = assignments(d[None], centres, assign=assign, neighbours=neighbours, sigma=sigma)
        if dense:  # votes for every word: a matmul, not a scatter of M x K votes
            return jnp.asarray(regions).T @ weight[0]
        return histograms(index, weight, regions, k)[0]

    per_call = max(1, budget // max(1, m * k))  # images per step: ~budget distances in memory
    hist = jax.lax.map(one, desc, batch_size=min(per_call, n))  # [N, R, K]
    if normalize == "l1":
        hist = hist / jnp.maximum(jnp.asarray(regions.sum(axis=0)), 1.0)[None, :, None]
    return hist.reshape(n, -1)
