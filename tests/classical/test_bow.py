"""Bag of visual words (jaxnet.classical.bow) and its pipeline blocks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.classical import bow, feature_pipeline, pyramid, sharding, sift

RNG = np.random.default_rng(5)


def _images(n, size=16):
    return (RNG.random((n, size, size, 1)) * 255).astype(np.uint8)


def test_assignments_hard_and_soft():
    x = RNG.normal(size=(2, 9, 4)).astype(np.float32)
    c = RNG.normal(size=(6, 4)).astype(np.float32)
    d2 = ((x[..., None, :] - c) ** 2).sum(-1)
    index, weight = bow.assignments(x, c)
    np.testing.assert_array_equal(index[..., 0], d2.argmin(-1))
    np.testing.assert_array_equal(weight, 1.0)
    index, weight = bow.assignments(x, c, assign="soft", neighbours=3, sigma=0.7)
    np.testing.assert_allclose(np.asarray(weight).sum(-1), 1.0, rtol=1e-6)  # rows sum to 1
    np.testing.assert_array_equal(np.sort(index, -1), np.sort(np.argsort(d2, -1)[..., :3], -1))
    near = np.take_along_axis(d2, np.asarray(index), -1)
    want = np.exp(-(near - near.min(-1, keepdims=True)) / (2 * 0.7**2))
    np.testing.assert_allclose(weight, want / want.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6)
    index, weight = bow.assignments(x, c, assign="soft", neighbours=0, sigma=0.7)  # all words
    assert index.shape == (2, 9, 6)
    np.testing.assert_allclose(np.asarray(weight).sum(-1), 1.0, rtol=1e-6)


def test_pyramid_histograms_count_descriptors():
    pos = sift.dsift_positions(16, 16, bin_sizes=(2,), step=2)  # 5 x 5 descriptors
    regions = pyramid.pyramid_regions(pos)  # 1x1 + 2x2 + 3x1 = 8 regions
    m, k = pos.shape[0], 5
    index = RNG.integers(0, k, (3, m, 1)).astype(np.int32)
    counts = np.asarray(bow.histograms(jnp.asarray(index), jnp.ones((3, m, 1)), regions, k))
    assert counts.shape == (3, 8, k)
    np.testing.assert_allclose(counts.sum(-1), np.broadcast_to(regions.sum(0), (3, 8)))  # = descriptors per region
    want = np.einsum("nmk,mr->nrk", np.eye(k)[index[..., 0]], regions)
    np.testing.assert_allclose(counts, want)
    x = RNG.normal(size=(3, m, 4)).astype(np.float32)
    c = RNG.normal(size=(k, 4)).astype(np.float32)
    for kw in ({"assign": "hard"}, {"assign": "soft", "neighbours": 2}):
        v = np.asarray(bow.bow_vector(x, c, regions, budget=2 * m * k, **kw)).reshape(3, 8, k)  # 2 images a step
        np.testing.assert_allclose(v.sum(-1), 1.0, rtol=1e-5)  # fractions per region
    dense = bow.bow_vector(x, c, regions, assign="soft", neighbours=0, sigma=0.5)
    all_k = bow.bow_vector(x, c, regions, assign="soft", neighbours=k, sigma=0.5)  # scatter path, all words
    np.testing.assert_allclose(dense, all_k, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dense).reshape(3, 8, k).sum(-1), 1.0, rtol=1e-5)


CFG = {"bow": [{"descriptor": "sift", "bin_sizes": (2,), "step": 4, "pca_dim": 8, "words": 6},
               {"descriptor": "lbp", "windows": (8,), "step": 4, "words": 4, "assign": "soft",
                "neighbours": 2, "pyramid": ((1, 1),)}]}


def test_bow_pipeline_state_features_and_sharding(devices):
    x = _images(10)
    assert feature_pipeline.needs_fit(CFG) and not feature_pipeline.needs_fit({"hog": {"cell": 4}})
    with pytest.raises(ValueError, match="run fit_features"):
        feature_pipeline.extract_features(x, CFG)
    state = feature_pipeline.fit_features(x, CFG, key=jax.random.PRNGKey(0), max_images=8, em_iters=5)
    assert state["fisher"] == [] and "coding" not in state
    assert state["bow"][0]["centres"].shape == (6, 8) and state["bow"][0]["pca"]["components"].shape == (128, 8)
    assert state["bow"][1]["centres"].shape == (4, 59) and "pca" not in state["bow"][1]
    assert float(state["bow"][0]["scale"]) > 0
    f = feature_pipeline.extract_features(x, CFG, state, batch_size=5)
    assert f.shape == (10, 8 * 6 + 4)
    np.testing.assert_allclose(f[:, :48].reshape(10, 8, 6).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(f[:, 48:].sum(-1), 1.0, rtol=1e-5)
    mesh = sharding.data_mesh(devices)
    np.testing.assert_allclose(feature_pipeline.extract_features(x, CFG, state, mesh=mesh), f, atol=1e-6)
    traced = jax.jit(lambda im, st: feature_pipeline.traced_features(im, CFG, st))(jnp.asarray(x), state)
    np.testing.assert_allclose(traced, f, atol=1e-6)  # (the chi2 map over bow: tests/classical/test_curves.py)


@pytest.mark.parametrize("cfg,match", [
    ({"bow": {"descriptor": "surf"}}, "bow descriptor must be one of"),
    ({"bow": {"descriptor": "sift", "cells": 4}}, "unknown bow option"),
    ({"bow": {"assign": "fuzzy"}}, "bow assign must be one of"),
    ({"bow": {"words": 0}}, "words must be an integer >= 1"),
    ({"bow": {"sigma": -1.0}}, "sigma must be positive"),
])
def test_bad_bow_configs(cfg, match):
    with pytest.raises(ValueError, match=match):
        feature_pipeline.parse_config(cfg)


def test_too_few_descriptors_for_the_words():
    with pytest.raises(ValueError, match="words need at least"):
        feature_pipeline.fit_features(_images(2), {"bow": {"bin_sizes": (2,), "step": 4, "words": 100}},
                              key=jax.random.PRNGKey(0))
