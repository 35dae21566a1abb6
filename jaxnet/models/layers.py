"""Layers the older papers use: local response normalisation, maxout, and the activation table.

`ACTIVATIONS` maps a config name to a function on NHWC (or [N, C]) arrays. Maxout (Goodfellow et
al. 2013) is the one that changes shapes: it takes the max over groups of `MAXOUT_PIECES` adjacent
channels, so the layer feeding it must produce that many times the channels. Models ask
`get_activation(name)` for `(fn, widen)` and build the layer before each activation with
`widen * features` outputs; for every other activation `widen` is 1 and nothing changes.
"""
from functools import partial
from typing import Callable, Tuple

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

MAXOUT_PIECES = 2


def lrn(x, *, k: float = 2.0, n: int = 5, alpha: float = 1e-4, beta: float = 0.75):
    """Local response normalisation across channels, as written in Krizhevsky et al. 2012 (3.3).

    b_i = a_i / (k + alpha * sum_{j=max(0, i-n//2)}^{min(C-1, i+n//2)} a_j^2) ** beta.
    Unlike Caffe/PyTorch, alpha is not divided by n. The sum is taken in float32 whatever the
    input dtype (bfloat16 squares summed in bfloat16 lose the small alpha term); the result keeps
    the input dtype.
    """
    a = x.astype(jnp.float32)
    window = (1,) * (a.ndim - 1) + (n,)
    pad = ((0, 0),) * (a.ndim - 1) + ((n // 2, (n - 1) // 2),)
    sq_sum = lax.reduce_window(a * a, 0.0, lax.add, window, (1,) * a.ndim, pad)
    return (a / (k + alpha * sq_sum) ** beta).astype(x.dtype)


def maxout(x, pieces: int = MAXOUT_PIECES):
    """Max over groups of `pieces` adjacent channels: [..., C] -> [..., C // pieces]."""
    c = x.shape[-1]
    if c % pieces:
        raise ValueError(f"maxout with {pieces} pieces needs channels divisible by {pieces}, got {c}")
    return jnp.max(x.reshape(*x.shape[:-1], c // pieces, pieces), axis=-1)


ACTIVATIONS = {
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
    "tanh": jnp.tanh,
    "leaky_relu": partial(nn.leaky_relu, negative_slope=0.1),
    "maxout": maxout,
}

# How many times the channels the layer feeding each activation must produce (default 1).
_WIDEN = {"maxout": MAXOUT_PIECES}


def get_activation(name: str) -> Tuple[Callable, int]:
    """`(fn, widen)` for activation `name`: build the preceding layer with `widen * features`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name], _WIDEN.get(name, 1)
