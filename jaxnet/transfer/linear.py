"""Linear models on features: standardisation and multinomial logistic regression by L-BFGS.

`fit_logistic` minimises mean softmax cross-entropy + l2/2 |W|^2 (the bias is not penalised) with
optax's L-BFGS (zoom line search) inside one jitted `while_loop`; rows are sharded over the mesh's
'data' axis (padded, masked), so XLA all-reduces the [D, C] gradient. The linear SVM alternative is
jaxnet.classical.svm.fit_svm; both give params {"w": [D, C], "b": [C]}.
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnet import JaxnetError
from jaxnet.mesh import replicated


def standardizer(features, rows: int = 4096) -> dict:
    """{"mean", "scale"} [D] of host features (array or memmap), in chunks of rows: z = (x -
    mean) * scale has unit variance per feature (constant features: scale 1)."""
    n = len(features)
    total, sq = 0.0, 0.0
    for s in range(0, n, rows):
        chunk = np.asarray(features[s:s + rows], np.float64)
        total = total + chunk.sum(0)
        sq = sq + (chunk * chunk).sum(0)
    mean = total / n
    std = np.sqrt(np.maximum(sq / n - mean * mean, 0.0))
    scale = np.where(std > 1e-6 * max(float(std.max()), 1e-30), 1.0 / np.maximum(std, 1e-30), 1.0)
    return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}


def standardize(x, norm):
    return (x - norm["mean"]) * norm["scale"]


def place_rows(features, labels, mesh, norm=None, rows: int = 4096):
    """(x [n', D] standardised, labels [n'], mask [n']) on `mesh`, rows split over 'data' and
    padded to a multiple of it (mask 0 on padding); filled from host features chunk by chunk."""
    n, d = len(labels), int(np.prod(features.shape[1:]))
    devices = mesh.shape["data"] if mesh is not None else 1
    padded = n + (-n) % devices
    x = np.zeros((padded, d), np.float32)
    for s in range(0, n, rows):
        chunk = np.asarray(features[s:s + rows], np.float32).reshape(-1, d)
        x[s:s + len(chunk)] = standardize(chunk, norm) if norm is not None else chunk
    y = np.zeros(padded, np.int32)
    y[:n] = labels
    mask = (np.arange(padded) < n).astype(np.float32)
    if mesh is None:
        return jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask)
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    return tuple(jax.device_put(a, sharding) for a in (x, y, mask))


def logistic_objective(params, x, labels, mask, l2: float):
    """Mean cross-entropy over the real rows + l2/2 |W|^2."""
    logits = x @ params["w"] + params["b"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(ce * mask) / jnp.sum(mask) + 0.5 * l2 * jnp.sum(params["w"] ** 2)


@partial(jax.jit, static_argnames=("max_iter",))
def _lbfgs(params, x, labels, mask, l2, tol, max_iter: int):
    objective = partial(logistic_objective, x=x, labels=labels, mask=mask, l2=l2)
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(params, updates), state

    def going(carry):
        _, state = carry
        count = optax.tree_utils.tree_get(state, "count")
        grad = optax.tree_utils.tree_get(state, "grad")
        return (count == 0) | ((count < max_iter) & (optax.tree_utils.tree_norm(grad) >= tol))

    params, state = jax.lax.while_loop(going, step, (params, opt.init(params)))
    grad_norm = optax.tree_utils.tree_norm(optax.tree_utils.tree_get(state, "grad"))
    return params, optax.tree_utils.tree_get(state, "count"), objective(params), grad_norm


def fit_logistic(x, labels, mask, num_classes: int, *, l2: float = 1e-4, max_iter: int = 500,
                 tol: float = 1e-5, mesh=None):
    """Multinomial logistic regression on placed rows (see place_rows). Returns (params {"w":
    [D, C], "b": [C]} as host arrays, info {"iterations", "objective", "grad_norm", "converged"})."""
    if l2 < 0 or max_iter < 1:
        raise JaxnetError(f"logistic regression needs l2 >= 0 and max_iter >= 1, got {l2}, {max_iter}")
    params = {"w": jnp.zeros((x.shape[1], num_classes), jnp.float32),
              "b": jnp.zeros((num_classes,), jnp.float32)}
    if mesh is not None:
        params = jax.device_put(params, replicated(mesh))
    params, count, value, grad_norm = _lbfgs(params, x, labels, mask, jnp.float32(l2),
                                             jnp.float32(tol), max_iter)
    value, grad_norm, count = float(value), float(grad_norm), int(count)
    if not np.isfinite(value):
        raise JaxnetError(f"the logistic probe diverged (objective {value}); check the features")
    return jax.tree.map(np.asarray, params), {"iterations": count, "objective": value,
                                              "grad_norm": grad_norm, "converged": grad_norm < tol}
