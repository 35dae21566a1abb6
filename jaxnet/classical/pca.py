"""Principal component analysis fitted in JAX (eigendecomposition of the covariance), used to
decorrelate and shrink local descriptors before the diagonal GMM (e.g. SIFT 128 -> 64 dims)."""
import jax
import jax.numpy as jnp

from jaxnet.classical._checks import check_matrix


@jax.jit
def _covariance(x):
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    return mean, xc.T @ xc / (x.shape[0] - 1)


def fit_pca(x, dim: int, *, whiten: bool = False, eps: float = 1e-6) -> dict:
    """Fit PCA on x [n, d] and keep `dim` components.

    Returns a pytree {"mean": [d], "components": [d, dim] (orthonormal columns, by decreasing
    variance, each with its largest-magnitude entry positive), "variance": [dim], "scale": [dim]}
    where scale is 1/sqrt(variance + eps) when whitening, else ones.
    """
    x = check_matrix(x, "PCA input", min_rows=2).astype(jnp.float32)
    d = x.shape[1]
    if not 1 <= dim <= d:
        raise ValueError(f"PCA dim must be in [1, {d}] for {d}-d input, got {dim}")
    mean, cov = _covariance(x)
    var, vecs = jnp.linalg.eigh(cov)
    var, vecs = var[::-1][:dim], vecs[:, ::-1][:, :dim]
    pivot = jnp.take_along_axis(vecs, jnp.argmax(jnp.abs(vecs), axis=0)[None], axis=0)
    vecs = vecs * jnp.sign(pivot)
    var = jnp.maximum(var, 0.0)
    scale = jax.lax.rsqrt(var + eps) if whiten else jnp.ones_like(var)
    return {"mean": mean, "components": vecs, "variance": var, "scale": scale}


def pca_transform(x, pca: dict):
    """Project x [..., d] onto the components: ((x - mean) @ components) * scale -> [..., dim]."""
    return ((x - pca["mean"]) @ pca["components"]) * pca["scale"]
