"""The NEC 2010 coding step (jaxnet.classical.coding): dense HOG / LBP descriptors, super-vector
coding and LLC against numpy references, and the pipeline's coding blocks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.classical import coding, feature_pipeline, hog, lbp, pyramid, sharding

RNG = np.random.default_rng(11)


def _images(n, size=16):
    return RNG.random((n, size, size, 1)).astype(np.float32)


def test_dense_hog_and_lbp_descriptors():
    x = _images(3)
    d = coding.dense_hog(x, cells=(4, 8))
    assert d.shape == (3, 9 + 1, 36)
    np.testing.assert_allclose(d[:, :9].reshape(3, -1), hog.hog(x, cell=4, block=2, soft=True, spatial="bilinear"))
    assert coding.dense_hog_positions(16, 16, cells=(4, 8)).shape == (10, 2)
    d = coding.dense_lbp(x, windows=(4,), step=4)  # non-overlapping windows = lbp.lbp's cells
    np.testing.assert_allclose(d.reshape(3, -1), lbp.lbp(x, cell=4), atol=1e-6)
    d = coding.dense_lbp(x, windows=(8, 6), step=2)  # overlapping windows
    assert d.shape == (3, 5 * 5 + 6 * 6, 59)
    np.testing.assert_allclose(np.asarray(d).sum(-1), 1.0, rtol=1e-5)
    assert coding.dense_lbp_positions(16, 16, windows=(8, 6), step=2).shape == (61, 2)


def _regions(m):
    pos = np.stack([np.linspace(0.01, 0.99, m), RNG.random(m)], axis=-1)
    return pyramid.pyramid_regions(pos, ((1, 1), (2, 1)))


def test_super_vector_against_numpy():
    n, m, d, k, s = 2, 30, 3, 4, 0.5
    x = RNG.normal(size=(n, m, d)).astype(np.float32)
    c = RNG.normal(size=(k, d)).astype(np.float32)
    regions = _regions(m)
    got = np.asarray(coding.super_vector(x, c, regions, s=s, budget=m * k))  # one image per step
    assert got.shape == (n, 3 * k * (d + 1))  # R K (d + 1)
    word = (((x[:, :, None] - c) ** 2).sum(-1)).argmin(-1)
    for i in range(n):
        parts = []
        for r in range(3):
            inside = regions[:, r] > 0
            v = np.zeros((k, d + 1))
            for j in range(k):
                mine = inside & (word[i] == j)
                if mine.any():
                    p = mine.sum() / inside.sum()
                    v[j] = np.sqrt(p) * np.concatenate([[s], x[i, mine].mean(0) - c[j]])
            parts.append(v.ravel() / np.linalg.norm(v) / np.sqrt(3))
        np.testing.assert_allclose(got[i], np.concatenate(parts), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


def test_llc_codes_and_pooling():
    m, d, k = 40, 3, 8
    c = RNG.normal(size=(k, d)).astype(np.float32)
    x = RNG.normal(size=(m, d)).astype(np.float32)
    index, code = coding.llc_codes(x, c, neighbours=4, beta=1e-6)
    np.testing.assert_allclose(np.asarray(code).sum(-1), 1.0, rtol=1e-4)
    d2 = ((x[:, None] - c) ** 2).sum(-1)
    np.testing.assert_array_equal(np.sort(index, -1), np.sort(np.argsort(d2, -1)[:, :4], -1))
    recon = np.einsum("mt,mtd->md", code, c[np.asarray(index)])
    err, nearest = ((recon - x) ** 2).sum(-1), d2.min(-1)
    assert np.all(err <= nearest + 1e-4)  # never worse than the nearest word alone
    # 4 words in 3-d: their affine hull is everything, so the reconstruction is (nearly) exact
    assert np.median(err) < 1e-5 and np.mean(err) < 0.01 * np.mean(nearest)
    regions = _regions(m)
    for pooling in ("max", "average"):
        got = np.asarray(coding.llc_vector(x[None], c, regions, neighbours=4, beta=1e-6, pooling=pooling))
        assert got.shape == (1, 3 * k)
        dense = np.zeros((m, k))
        np.put_along_axis(dense, np.asarray(index), np.asarray(code), -1)
        want = []
        for r in range(3):
            rows = dense[regions[:, r] > 0]
            v = np.maximum(rows.max(0), 0) if pooling == "max" else rows.mean(0)
            want.append(v / np.linalg.norm(v) / np.sqrt(3))
        np.testing.assert_allclose(got[0], np.concatenate(want), atol=1e-4)


def test_coding_pipeline_blocks(devices):
    x = (RNG.random((9, 16, 16, 1)) * 255).astype(np.uint8)
    cfg = {"hog": {"cell": 8},
           "coding": [{"descriptor": "hog", "cells": (4,), "words": 3, "pca_dim": 6, "power": 0.5},
                      {"descriptor": "lbp", "windows": (8,), "step": 4, "method": "llc", "words": 5,
                       "pyramid": ((1, 1), (2, 2))}]}
    assert feature_pipeline.needs_fit(cfg)
    state = feature_pipeline.fit_features(x, cfg, key=jax.random.PRNGKey(1), em_iters=4)
    assert [st["centres"].shape for st in state["coding"]] == [(3, 6), (5, 59)]
    f = feature_pipeline.extract_features(x, cfg, state, batch_size=9)
    d_svc, d_llc = 8 * 3 * (6 + 1), 5 * 5
    assert f.shape == (9, 36 + d_svc + d_llc)
    np.testing.assert_allclose(np.linalg.norm(f[:, 36:36 + d_svc], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(f[:, 36 + d_svc:], axis=1), 1.0, rtol=1e-5)
    sharded = feature_pipeline.extract_features(x, cfg, state, mesh=sharding.data_mesh(devices))
    np.testing.assert_allclose(sharded, f, atol=1e-5)
    traced = jax.jit(lambda im, st: feature_pipeline.traced_features(im, cfg, st))(jnp.asarray(x), state)
    np.testing.assert_allclose(traced, f, atol=1e-5)


@pytest.mark.parametrize("cfg,match", [
    ({"coding": {"method": "sparse"}}, "coding method must be one of"),
    ({"coding": {"descriptor": "hog", "windows": 4}}, "unknown coding option"),
    ({"coding": {"pooling": "min"}}, "coding pooling must be one of"),
    ({"coding": {"s": 0}}, "s must be positive"),
])
def test_bad_coding_configs(cfg, match):
    with pytest.raises(ValueError, match=match):
        feature_pipeline.parse_config(cfg)
