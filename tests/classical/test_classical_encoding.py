"""PCA, GMM, Fisher vectors, spatial pyramid and the chi-squared kernel map."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.classical import fisher, gmm, kernel_map, pca, pyramid

RNG = np.random.default_rng(1)


def test_pca_matches_svd():
    x = (RNG.normal(size=(300, 6)) * [5, 3, 2, 1, 0.5, 0.1] + 4) @ np.linalg.qr(RNG.normal(size=(6, 6)))[0]
    x = x.astype(np.float32)
    p = pca.fit_pca(x, 3)
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(np.asarray(p["variance"]), s[:3] ** 2 / 299, rtol=1e-3)
    comps = np.asarray(p["components"])
    np.testing.assert_allclose(np.abs(comps.T @ vt[:3].T), np.eye(3), atol=1e-3)  # same axes
    assert np.all(np.abs(comps).argmax(0) == np.argmax(comps, 0))  # sign convention
    z = np.asarray(pca.pca_transform(x, p))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(z.var(0, ddof=1), s[:3] ** 2 / 299, rtol=1e-3)
    zw = np.asarray(pca.pca_transform(x, pca.fit_pca(x, 3, whiten=True)))
    np.testing.assert_allclose(zw.var(0, ddof=1), 1.0, rtol=1e-3)


def test_pca_bad_inputs():
    with pytest.raises(ValueError, match="dim must be"):
        pca.fit_pca(np.ones((5, 3)), 4)
    with pytest.raises(ValueError, match="NaN"):
        pca.fit_pca(np.array([[1.0, np.nan], [0.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="2-D"):
        pca.fit_pca(np.ones(5), 1)


def _mixture(n=600):
    means = np.array([[0, 0, 0], [6, 0, 2], [0, 7, -3]], np.float32)
    comp = RNG.integers(0, 3, n)
    return (means[comp] + RNG.normal(size=(n, 3)) * [[1.0, 0.5, 2.0]]).astype(np.float32), means


def test_gmm_em_log_likelihood_rises_every_step():
    x, means = _mixture()
    g, hist = gmm.fit_gmm(x, 3, key=jax.random.PRNGKey(0), max_iter=60, tol=0.0)
    assert 5 <= len(hist) <= 61  # stops once a step gains nothing
    steps = np.diff(hist)
    assert np.all(steps >= -1e-5 * np.abs(hist[1:])), steps.min()  # float32 rounding only
    assert hist[-1] - hist[0] > 0.5
    np.testing.assert_allclose(float(gmm.gmm_log_likelihood(jnp.asarray(x), g)), hist[-1], rtol=1e-5)
    # the fitted means are the true ones, in some order
    found = np.asarray(g["means"])
    dist = np.linalg.norm(found[:, None] - means[None], axis=-1)
    assert np.all(dist.min(0) < 0.5)
    np.testing.assert_allclose(np.sort(np.asarray(g["weights"])).sum(), 1.0, rtol=1e-5)
    post = np.asarray(gmm.gmm_posteriors(jnp.asarray(x), g))
    np.testing.assert_allclose(post.sum(-1), 1.0, rtol=1e-5)


def test_gmm_bad_inputs():
    with pytest.raises(ValueError, match="num_components"):
        gmm.fit_gmm(np.ones((4, 2), np.float32), 5, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="NaN"):
        gmm.fit_gmm(np.full((4, 2), np.nan, np.float32), 2, key=jax.random.PRNGKey(0))


def _ref_fisher(desc, w, mu, var):
    """Per-descriptor loop over the formulas of Perronnin et al. 2010 (one region)."""
    m, d = desc.shape
    k = len(w)
    g_mu, g_var = np.zeros((k, d)), np.zeros((k, d))
    for x in desc:
        logp = np.log(w) - 0.5 * np.sum(np.log(2 * np.pi * var) + (x - mu) ** 2 / var, axis=1)
        post = np.exp(logp - logp.max())
        post /= post.sum()
        for j in range(k):
            z = (x - mu[j]) / np.sqrt(var[j])
            g_mu[j] += post[j] * z / (m * np.sqrt(w[j]))
            g_var[j] += post[j] * (z**2 - 1) / (m * np.sqrt(2 * w[j]))
    v = np.concatenate([g_mu, g_var], -1).ravel()
    v = np.sign(v) * np.sqrt(np.abs(v))
    return v / np.linalg.norm(v)


def test_fisher_vector_matches_reference():
    k, d, m = 3, 4, 10
    g = {"weights": jnp.asarray([0.5, 0.3, 0.2]), "means": jnp.asarray(RNG.normal(size=(k, d)), jnp.float32),
         "vars": jnp.asarray(RNG.uniform(0.5, 2.0, (k, d)), jnp.float32)}
    desc = RNG.normal(size=(2, m, d)).astype(np.float32)
    got = np.asarray(fisher.fisher_vector(jnp.asarray(desc), g))
    want = np.stack([_ref_fisher(x, *(np.asarray(g[n], np.float64) for n in ("weights", "means", "vars"))) for x in desc])
    assert got.shape == (2, fisher.fisher_dim(k, d)) == (2, 24)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_fisher_vector_with_pyramid():
    k, d = 4, 3
    pos = np.stack(np.meshgrid(np.arange(6) / 6 + 1 / 12, np.arange(6) / 6 + 1 / 12, indexing="ij"), -1).reshape(-1, 2)
    regions = pyramid.pyramid_regions(pos)
    assert regions.shape == (36, 8)
    np.testing.assert_array_equal(regions.sum(0), [36, 9, 9, 9, 9, 12, 12, 12])
    np.testing.assert_array_equal(regions.sum(1), 3)  # one region per level
    assert regions[0].tolist() == [1, 1, 0, 0, 0, 1, 0, 0]  # top-left: quadrant 0, top stripe
    x = RNG.normal(size=(500, d)).astype(np.float32)
    g, _ = gmm.fit_gmm(x, k, key=jax.random.PRNGKey(1), max_iter=10)
    desc = jnp.asarray(RNG.normal(size=(3, 36, d)), jnp.float32)
    fv = np.asarray(fisher.fisher_vector(desc, g, jnp.asarray(regions)))
    assert fv.shape == (3, fisher.fisher_dim(k, d, 8)) == (3, 2 * k * d * 8)
    np.testing.assert_allclose(np.linalg.norm(fv, axis=-1), 1.0, rtol=1e-5)
    per_region = np.linalg.norm(fv.reshape(3, 8, -1), axis=-1)
    np.testing.assert_allclose(per_region, 1 / np.sqrt(8), rtol=1e-5)
    # the 1x1 region is the plain Fisher vector of all descriptors
    whole = np.asarray(fisher.fisher_vector(desc, g))
    np.testing.assert_allclose(fv.reshape(3, 8, -1)[:, 0] * np.sqrt(8), whole, atol=1e-5)


def test_chi2_map_matches_kernel_and_scikit_learn():
    x = RNG.uniform(0.05, 1.0, (6, 5)).astype(np.float32)
    x[0, 0] = 0.0
    psi = np.asarray(kernel_map.chi2_map(x, order=3, period=0.4))
    assert psi.shape == (6, 5 * 7)
    exact = np.array([[np.sum(2 * a * b / np.maximum(a + b, 1e-12)) for b in x] for a in x])
    np.testing.assert_allclose(psi @ psi.T, exact, rtol=0.02, atol=0.01)
    assert np.all(psi[0, :7] == 0)
    import sklearn.kernel_approximation as approx
    sk = approx.AdditiveChi2Sampler(sample_steps=4, sample_interval=0.4).fit_transform(x)
    # scikit-learn lays out [sqrt | cos_1 sin_1 | cos_2 sin_2 ...] per block of all features
    sk = sk.reshape(6, 7, 5).transpose(0, 2, 1)[:, :, [0, 1, 3, 5, 2, 4, 6]].reshape(6, -1)
    np.testing.assert_allclose(psi, sk, atol=1e-6)


def test_chi2_map_rejects_negative_values():
    with pytest.raises(ValueError, match="non-negative"):
        kernel_map.chi2_map(np.array([[0.5, -0.1]]))


def test_pyramid_bad_positions():
    with pytest.raises(ValueError, match=r"\[M, 2\]"):
        pyramid.pyramid_regions(np.zeros((4, 3)))
