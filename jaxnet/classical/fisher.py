"""Improved Fisher vector (Perronnin, Sanchez & Mensink 2010): the gradient of the descriptors'
log-likelihood under a diagonal GMM w.r.t. the means and variances (2 K d values), followed by
the signed square root and L2 normalisation, computed per spatial-pyramid region."""
from functools import partial

import jax
import jax.numpy as jnp

from jaxnet.classical.gmm import gmm_posteriors


@partial(jax.jit, static_argnames=("eps",))
def fisher_vector(descriptors, gmm, regions=None, eps: float = 1e-12):
    """Fisher vectors [N, R * 2 * K * d] of descriptors [N, M, d].

    regions: 0/1 membership [M, R] (see pyramid.pyramid_regions), default one region holding
    all descriptors. Each region's vector [mean part (K, d), variance part (K, d)] is power-
    (signed sqrt) and L2-normalised, then divided by sqrt(R) so the whole vector has unit norm.
    """
    n, m, d = descriptors.shape
    if regions is None:
        regions = jnp.ones((m, 1), jnp.float32)
    if regions.shape[0] != m:
        raise ValueError(f"regions has {regions.shape[0]} rows but there are {m} descriptors per image")
    x = descriptors.astype(jnp.float32)
    post = gmm_posteriors(x, gmm)  # [N, M, K]
    count = jnp.maximum(regions.sum(axis=0), 1.0)[None, :, None]  # descriptors per region
    pr = post[:, :, None, :] * regions[None, :, :, None]  # [N, M, R, K]
    s0 = pr.sum(axis=1) / count  # [N, R, K]
    s1 = jnp.einsum("nmrk,nmd->nrkd", pr, x) / count[..., None]
    s2 = jnp.einsum("nmrk,nmd->nrkd", pr, x * x) / count[..., None]
    w, mu, var = gmm["weights"][:, None], gmm["means"], gmm["vars"]
    sigma = jnp.sqrt(var)
    g_mu = (s1 - mu * s0[..., None]) / (sigma * jnp.sqrt(w))
    g_var = (s2 - 2 * mu * s1 + (mu * mu - var) * s0[..., None]) / (var * jnp.sqrt(2 * w))
    fv = jnp.concatenate([g_mu, g_var], axis=-1).reshape(n, regions.shape[1], -1)
    fv = jnp.sign(fv) * jnp.sqrt(jnp.abs(fv))
    fv = fv / jnp.maximum(jnp.linalg.norm(fv, axis=-1, keepdims=True), eps)
    return (fv / jnp.sqrt(regions.shape[1])).reshape(n, -1)


def fisher_dim(num_components: int, dim: int, num_regions: int = 1) -> int:
    return 2 * num_components * dim * num_regions
