"""The config-driven feature pipeline and an end-to-end fit on a toy problem."""
import jax
import numpy as np
import pytest

from jaxnet.classical import feature_pipeline, fisher, hog, lbp, sgd, svm

RNG = np.random.default_rng(3)


def _stripes(n, size=16):
    """Class 0: horizontal stripes, class 1: vertical, with random phase and noise (uint8)."""
    y = RNG.integers(0, 2, n)
    grid = np.arange(size)
    phase = RNG.integers(0, 4, n)
    wave = (((grid[None, :] + phase[:, None]) // 2) % 2).astype(np.float32)  # [n, size]
    img = np.where(y[:, None, None] == 0, wave[:, :, None], wave[:, None, :])
    img = img + 0.3 * RNG.random((n, size, size))
    return (img[..., None] / 1.3 * 255).astype(np.uint8), y


def test_hog_lbp_features_and_chunking():
    x, _ = _stripes(7)
    cfg = {"hog": {"cell": 4, "block": 2}, "lbp": [{"cell": 8}, {"cell": 16}]}
    got = feature_pipeline.extract_features(x, cfg, batch_size=3)
    xf = x.astype(np.float32) / 255
    want = np.concatenate([hog.hog(xf, cell=4, block=2), lbp.lbp(xf, cell=8), lbp.lbp(xf, cell=16)], -1)
    assert got.shape == (7, 3 * 3 * 36 + 4 * 59 + 59) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)
    mapped = feature_pipeline.extract_features(x, {**cfg, "kernel_map": {"order": 2, "period": 0.4}})
    assert mapped.shape == (7, got.shape[1] * 5)


def test_fisher_state_and_features():
    x, _ = _stripes(12)
    cfg = {"fisher": [{"descriptor": "sift", "bin_sizes": (2,), "step": 4, "pca_dim": 8, "components": 3},
                      {"descriptor": "colour", "bin_sizes": (2,), "step": 4, "pca_dim": 4, "components": 2,
                       "pyramid": ((1, 1),)}]}
    with pytest.raises(ValueError, match="run fit_features"):
        feature_pipeline.extract_features(x, cfg)
    state = feature_pipeline.fit_features(x, cfg, key=jax.random.PRNGKey(0), max_images=10)
    leaves = jax.tree.leaves(state)
    assert len(leaves) == 2 * 7 and all(isinstance(a, jax.Array) for a in leaves)  # pca 4 + gmm 3 arrays each
    assert state["fisher"][0]["pca"]["components"].shape == (128, 8)
    assert state["fisher"][1]["gmm"]["means"].shape == (2, 4)
    f = feature_pipeline.extract_features(x, cfg, state)
    d_sift, d_colour = fisher.fisher_dim(3, 8, 8), fisher.fisher_dim(2, 4, 1)
    assert f.shape == (12, d_sift + d_colour)
    np.testing.assert_allclose(np.linalg.norm(f[:, :d_sift], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(f[:, d_sift:], axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("cfg,match", [
    ({"hogg": {}}, "unknown feature config key"),
    ({}, "selects no features"),
    ({"fisher": {"descriptor": "surf"}}, "'sift' or 'colour'"),
    ({"fisher": {"pca": 3}}, "unknown fisher option"),
])
def test_bad_configs(cfg, match):
    with pytest.raises(ValueError, match=match):
        feature_pipeline.extract_features(np.zeros((2, 16, 16, 1), np.uint8), cfg)


def test_end_to_end_toy_problem():
    x, y = _stripes(64)
    cfg = {"hog": {"cell": 4, "block": 2, "soft": True, "spatial": "bilinear"}, "lbp": {"cell": 8}}
    f = feature_pipeline.extract_features(x, cfg)
    params, info = svm.fit_svm(f[:48], y[:48], lam=1e-3, tol=1e-3)
    assert info["converged"]
    assert np.mean(np.asarray(svm.predict(params, f[48:])) == y[48:]) == 1.0
    params, _ = sgd.fit_svm_sgd(f[:48], y[:48], lam=1e-3, epochs=5, batch_size=16)
    assert np.mean(np.asarray(svm.predict(params, f[48:])) == y[48:]) == 1.0
