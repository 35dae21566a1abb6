"""Explicit feature map of the additive chi-squared kernel k(x, y) = sum_i 2 x_i y_i / (x_i + y_i)
(Vedaldi & Zisserman 2010, homogeneous kernel map): psi(x) . psi(y) ~ k(x, y), so a linear SVM
on psi(x) approximates a chi-squared kernel SVM at linear cost. Each non-negative input value
becomes 2 * order + 1 values: the kernel's spectrum sech(pi lambda) sampled every `period`."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical._checks import _is_concrete


def chi2_map(x, *, order: int = 1, period: float = 0.5):
    """Map x [..., d] (non-negative) to [..., d * (2 * order + 1)]; zeros map to zeros.

    Per value: sqrt(x L) and sqrt(2 x L sech(pi j L)) * (cos, sin)(j L log x) for j = 1..order
    (the same sampling as scikit-learn's AdditiveChi2Sampler with sample_steps = order + 1).
    """
    if order < 0 or period <= 0:
        raise ValueError(f"need order >= 0 and period > 0, got order={order}, period={period}")
    if _is_concrete(x) and bool(jnp.any(jnp.asarray(x) < 0)):
        raise ValueError("the chi-squared kernel map needs non-negative features")
    return _chi2_map(jnp.asarray(x, jnp.float32), order, float(period))


@partial(jax.jit, static_argnames=("order", "period"))
def _chi2_map(x, order, period):
    j = np.arange(1, order + 1)
    amp = jnp.asarray(np.sqrt(2 * period / np.cosh(np.pi * j * period)), jnp.float32)  # [order]
    logx = jnp.log(jnp.where(x > 0, x, 1.0))[..., None]
    root = jnp.sqrt(x)[..., None]
    phase = logx * jnp.asarray(j * period, jnp.float32)
    parts = [root * np.sqrt(period), root * amp * jnp.cos(phase), root * amp * jnp.sin(phase)]
    return jnp.concatenate(parts, axis=-1).reshape(*x.shape[:-1], -1)
