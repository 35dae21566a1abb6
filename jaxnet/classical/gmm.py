"""Diagonal-covariance Gaussian mixture fitted by expectation-maximisation in JAX: the
vocabulary of the Fisher vector encoder. Each EM step cannot lower the data log-likelihood
(the variance floor is the exact M-step under the constraint var >= floor)."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical._checks import check_matrix

_TINY = 1e-10


def _component_log_probs(x, gmm):
    """log(w_k N(x | mu_k, diag var_k)) [n, K] from the expansion of the squared distance."""
    inv = 1.0 / gmm["vars"]
    quad = (x * x) @ inv.T - 2.0 * x @ (gmm["means"] * inv).T + jnp.sum(gmm["means"] ** 2 * inv, axis=1)
    log_det = jnp.sum(jnp.log(2 * jnp.pi * gmm["vars"]), axis=1)
    return jnp.log(gmm["weights"]) - 0.5 * (quad + log_det)


def gmm_posteriors(x, gmm):
    """Soft assignments [..., K] of points x [..., d] to the components."""
    lp = _component_log_probs(x.reshape(-1, x.shape[-1]), gmm)
    return jax.nn.softmax(lp, axis=-1).reshape(*x.shape[:-1], -1)


@jax.jit
def gmm_log_likelihood(x, gmm):
    """Mean log-likelihood per point of x [n, d] under the mixture."""
    return jnp.mean(jax.nn.logsumexp(_component_log_probs(x, gmm), axis=-1))


@jax.jit
def _em_step(x, gmm, var_floor):
    lp = _component_log_probs(x, gmm)
    ll = jnp.mean(jax.nn.logsumexp(lp, axis=-1))
    post = jax.nn.softmax(lp, axis=-1)  # E-step
    nk = post.sum(axis=0)
    safe = jnp.maximum(nk, _TINY)[:, None]
    means = post.T @ x / safe
    vars_ = post.T @ (x * x) / safe - means**2
    alive = (nk > _TINY)[:, None]  # an empty component keeps its old parameters
    new = {
        "weights": jnp.maximum(nk / x.shape[0], _TINY),
        "means": jnp.where(alive, means, gmm["means"]),
        "vars": jnp.where(alive, jnp.maximum(vars_, var_floor), gmm["vars"]),
    }
    return new, ll


@partial(jax.jit, static_argnames=("k",))
def _kmeans_pp(x, k, key):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each new seed is a data point drawn with
    probability proportional to its squared distance to the nearest seed so far."""
    keys = jax.random.split(key, k)
    first = x[jax.random.randint(keys[0], (), 0, x.shape[0])]
    seeds = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    dist = jnp.sum((x - first) ** 2, axis=1)

    def add(i, carry):
        seeds, dist = carry
        p = dist / jnp.maximum(jnp.sum(dist), _TINY)
        new = x[jax.random.choice(keys[i], x.shape[0], p=p)]
        return seeds.at[i].set(new), jnp.minimum(dist, jnp.sum((x - new) ** 2, axis=1))

    return jax.lax.fori_loop(1, k, add, (seeds, dist))[0]


def fit_gmm(x, num_components: int, *, key, max_iter: int = 100, tol: float = 1e-5,
            var_floor: float = 1e-3):
    """Fit a K-component diagonal GMM to x [n, d] by EM.

    Starts from k-means++ seeds as means, the data variance and equal weights; stops
    when the mean log-likelihood gains less than tol * max(1, |ll|) or after max_iter steps.
    var_floor is relative to the per-dimension data variance. Returns (gmm, history) with
    gmm = {"weights": [K], "means": [K, d], "vars": [K, d]} in the data's coordinates and
    history = numpy array of the mean log-likelihood before each step and after the last.
    """
    x = check_matrix(x, "GMM input").astype(jnp.float32)
    n = x.shape[0]
    if not 1 <= num_components <= n:
        raise ValueError(f"num_components must be in [1, {n}] (the number of points), got {num_components}")
    centre = jnp.mean(x, axis=0)
    xc = x - centre  # centring keeps E[x^2] - mean^2 accurate in float32
    data_var = jnp.maximum(jnp.var(xc, axis=0), _TINY)
    gmm = {
        "weights": jnp.full((num_components,), 1.0 / num_components, jnp.float32),
        "means": _kmeans_pp(xc, num_components, key),
        "vars": jnp.tile(data_var, (num_components, 1)),
    }
    floor = var_floor * data_var
    history = []
    for _ in range(max_iter):
        gmm, ll = _em_step(xc, gmm, floor)
        history.append(float(ll))
        if len(history) > 1 and history[-1] - history[-2] < tol * max(1.0, abs(history[-1])):
            break
    history.append(float(gmm_log_likelihood(xc, gmm)))
    gmm = {**gmm, "means": gmm["means"] + centre}
    return gmm, np.asarray(history)
