"""Nystrom preconditioner for the SVM solvers. Image features are far from isotropic (the mean
direction alone can carry 100x the variance of the 100th component), so with a small lam the
SVM objective is badly conditioned. Both solvers scale their steps by M^-1, where M is a
low-rank-plus-floor approximation of lam I + X'^T X' / n (X' = [X, intercept_scale])."""
import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _sketch(x, mask, scale, omega):
    """G omega for G = X'^T X' / n over the rows with mask 1 (two passes over the data)."""
    xo = (x @ omega[:-1] + scale * omega[-1]) * mask[:, None]
    return jnp.concatenate([x.T @ xo, scale * jnp.sum(xo, axis=0, keepdims=True)]) / jnp.sum(mask)


def nystrom(x, mask, scale, rank: int, seed: int = 0):
    """Top eigenpairs (U [D+1, r], values [r]) of G = X'^T X' / n, r = min(rank, D + 1), by the
    randomised Nystrom method (Tropp et al. 2017). The data passes run on the device (sharded
    like x); the small dense algebra runs in float64 numpy on the host."""
    rank = min(rank, x.shape[1] + 1)
    omega, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(x.shape[1] + 1, rank)))
    y = np.asarray(_sketch(x, mask, scale, jnp.asarray(omega, jnp.float32)), np.float64)
    nu = 1e-6 * np.linalg.norm(y)  # small shift keeps the Cholesky factor well defined
    y = y + nu * omega
    chol = np.linalg.cholesky(omega.T @ y)
    u, sv, _ = np.linalg.svd(np.linalg.solve(chol, y.T).T, full_matrices=False)
    return jnp.asarray(u, jnp.float32), jnp.asarray(np.maximum(sv * sv - nu, 0.0), jnp.float32)


def apply(q, pre, lam):
    """M^-1 q for M = U diag(values + lam) U^T + (min value + lam) (I - U U^T): directions of
    large data variance get proportionally smaller steps."""
    u, values = pre
    floor = values[-1] + lam
    return q / floor + u @ ((1.0 / (values + lam) - 1.0 / floor)[:, None] * (u.T @ q))
