"""k-means (jaxnet.classical.kmeans): k-means++ seeds, Lloyd steps, sharded == unsharded."""
import jax
import numpy as np
import pytest

from jaxnet.classical import kmeans, sharding

RNG = np.random.default_rng(0)


def _blobs(n, k=4, d=3, spread=0.3):
    centres = np.stack([np.eye(d)[i % d] * 10 * (1 + i // d) for i in range(k)])  # far apart
    label = RNG.integers(0, k, n)
    return (centres[label] + spread * RNG.normal(size=(n, d))).astype(np.float32), label, centres


def test_recovers_separated_clusters():
    x, label, centres = _blobs(403)
    got, history = kmeans.fit_kmeans(x, 4, key=jax.random.PRNGKey(1))
    got = np.asarray(got)
    match = np.argmin(((got[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert sorted(match) == [0, 1, 2, 3]  # one centre per cluster
    means = np.stack([x[label == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(got, means[match], atol=1e-4)  # each centre is its cluster's mean
    index, dist = kmeans.assign(x, got)
    assert np.array_equal(match[np.asarray(index)], label)
    assert np.all(np.diff(history) <= 1e-6 * history[0])  # the objective never rises
    np.testing.assert_allclose(history[-1], np.mean(np.asarray(dist)), rtol=1e-5)


def test_plus_plus_picks_distinct_points():
    x, _, _ = _blobs(200, k=6)
    seeds = np.asarray(kmeans.kmeans_plus_plus(x, 6, key=jax.random.PRNGKey(0)))
    rows = [np.flatnonzero((x == s).all(axis=1)) for s in seeds]
    assert all(len(r) >= 1 for r in rows)  # every seed is a data point
    assert len({int(r[0]) for r in rows}) == 6  # ... and they are distinct
    # far-apart clusters: k-means++ puts one seed in each
    _, _, centres = _blobs(1, k=6)
    nearest = np.argmin(((seeds[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert sorted(nearest) == list(range(6))
    # with fewer distinct points than seeds asked for, seeds repeat but stay data points
    dup = np.repeat(x[:2], 5, axis=0)
    seeds = np.asarray(kmeans.kmeans_plus_plus(dup, 4, key=jax.random.PRNGKey(2)))
    assert all((dup == s).all(axis=1).any() for s in seeds)


def test_sharded_equals_unsharded(devices):
    x, _, _ = _blobs(1001, k=5, d=4, spread=2.0)  # 1001 rows: padding on 8 devices
    key = jax.random.PRNGKey(3)
    one, h1 = kmeans.fit_kmeans(x, 7, key=key, max_iter=8, block_rows=64)
    mesh = sharding.data_mesh(devices)
    eight, h8 = kmeans.fit_kmeans(x, 7, key=key, max_iter=8, block_rows=64, mesh=mesh)
    assert len(h1) == len(h8)
    np.testing.assert_allclose(h1, h8, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(one), np.asarray(eight), atol=1e-4)
    np.testing.assert_array_equal(kmeans.assign(x, one)[0], kmeans.assign(x, eight)[0])


def test_sq_distances_and_errors():
    x, c = RNG.normal(size=(5, 3)).astype(np.float32), RNG.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(kmeans.sq_distances(x, c), ((x[:, None] - c[None]) ** 2).sum(-1), atol=1e-5)
    with pytest.raises(ValueError, match="k must be in"):
        kmeans.fit_kmeans(x, 6, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="NaN"):
        kmeans.fit_kmeans(np.full((4, 2), np.nan, np.float32), 2, key=jax.random.PRNGKey(0))
