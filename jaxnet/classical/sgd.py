"""Multiclass linear SVM by minibatch averaged SGD (the NEC 2010 ILSVRC solver), for features
that are streamed from host memory (or a memory map) rather than held on the device.

Same objective as svm.fit_svm (lam/2 |W|^2 + mean loss, liblinear-style regularised bias).
Step t uses the minibatch (sub)gradient with eta_t = eta0 (1 + lam eta0 t)^(-2/3); from
`average_from` epochs on, the returned weights are the running average of the iterates
(Polyak-Ruppert), which converges at the rate of the full-batch optimum's noise. Each epoch
visits the data in shuffled chunks; within a chunk, minibatches run in one jitted scan whose
batch rows are sharded over the mesh's 'data' axis. After each epoch one more streamed pass
computes the objective and a certified duality gap of the averaged weights; training stops
when the relative gap is <= tol.
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import precondition, sharding
from jaxnet.classical._checks import check_finite, check_labels
from jaxnet.classical.losses import best_scale, check_loss, loss_terms


def _scores(w, x, scale):
    return x @ w[:-1] + scale * w[-1]


def _loss_grad(w, x, onehot, mask, scale, loss, mu):
    """Minus the minibatch mean loss gradient, [D + 1, C]."""
    am = loss_terms(_scores(w, x, scale), onehot, loss, mu)["a"] * mask[:, None]
    g = jnp.concatenate([x.T @ am, scale * jnp.sum(am, axis=0, keepdims=True)])
    return g / jnp.maximum(jnp.sum(mask), 1.0)


@partial(jax.jit, static_argnames=("loss",), donate_argnums=(0,))
def _run_chunk(state, x, onehot, mask, pre, lam, eta0, avg_from, scale, loss):
    """Scan the minibatches x [steps, B, D] (one-hot [steps, B, C], mask [steps, B])."""

    def step(state, batch):
        w, w_avg, t = state
        xb, yb, mb = batch
        active = jnp.sum(mb) > 0  # an all-padding batch changes nothing
        eta = eta0 * (1.0 + lam * eta0 * t) ** (-2.0 / 3.0)
        g = lam * w - _loss_grad(w, xb, yb, mb, scale, loss, 0.0)
        if pre is not None:
            g = precondition.apply(g, pre, lam)
        w_new = jnp.where(active, w - eta * g, w)
        t_new = t + active
        k = t_new - avg_from  # number of averaged iterates
        w_avg = jnp.where(k > 0, w_avg + (w_new - w_avg) / jnp.maximum(k, 1.0), w_new)
        return (w_new, w_avg, t_new), None

    return jax.lax.scan(step, state, (x, onehot, mask))[0]


@partial(jax.jit, static_argnames=("loss",))
def _eval_chunk(w, x, onehot, mask, scale, loss, mu):
    """Sums over a chunk for the objective and the dual: (loss, lin, quad, X'^T A, count)."""
    t = loss_terms(_scores(w, x, scale), onehot, loss, mu)
    am = t["a"] * mask[:, None]
    xta = jnp.concatenate([x.T @ am, scale * jnp.sum(am, axis=0, keepdims=True)])
    return (jnp.sum(mask * t["exact"]), jnp.sum(mask * t["lin"]), jnp.sum(mask * t["quad"]), xta, jnp.sum(mask))


class _Stream:
    """Chunks of (features, one-hot labels, mask) laid out as [steps, batch, ...] on the mesh."""

    def __init__(self, features, labels, num_classes, batch_size, chunk_steps, mesh):
        self.x, self.labels, self.c = features, labels, num_classes
        self.b, self.rows, self.mesh = batch_size, batch_size * chunk_steps, mesh

    def chunks(self, rng=None, rows=None):
        """Yield placed chunks of all rows (or of the sorted subset `rows`). With rng, chunks
        come in random order and are shuffled inside: reads stay contiguous, so a memory map
        streams efficiently."""
        n = self.x.shape[0] if rows is None else len(rows)
        starts = np.arange(0, n, self.rows)
        for s in starts if rng is None else rng.permutation(starts):
            part = slice(s, min(s + self.rows, n))
            idx = part if rows is None else rows[part]
            x, y = np.asarray(self.x[idx], np.float32), self.labels[idx]
            if rng is not None:
                perm = rng.permutation(len(y))
                x, y = x[perm], y[perm]
            yield self._place(x, y)

    def _place(self, x, y):
        onehot = np.eye(self.c, dtype=np.float32)[y]
        mask = np.ones(len(y), np.float32)
        x, onehot, mask = (sharding.pad_rows(a, self.b) for a in (x, onehot, mask))
        steps = x.shape[0] // self.b
        x, onehot, mask = (a.reshape(steps, self.b, *a.shape[1:]) for a in (x, onehot, mask))
        return tuple(sharding.place(a, self.mesh, axis=1) for a in (x, onehot, mask))


def _objective(stream, w, lam, scale, loss, mu, rows=None):
    """(objective, dual value at the best rescaling of the smoothed dual point) for weights w."""
    tot = None
    for x, onehot, mask in stream.chunks(rows=rows):
        part = _eval_chunk(w, x.reshape(-1, x.shape[-1]), onehot.reshape(-1, onehot.shape[-1]),
                           mask.reshape(-1), scale, loss, mu)
        tot = part if tot is None else jax.tree.map(jnp.add, tot, part)
    loss_sum, lin, quad, xta, n = (np.asarray(v, np.float64) for v in tot)
    primal = 0.5 * lam * float(np.sum(np.square(np.asarray(w, np.float64)))) + loss_sum / n
    if not np.isfinite(primal):
        return np.inf, -np.inf
    q = quad / n + np.sum(np.square(xta / n)) / (2 * lam)
    theta = float(best_scale(loss, lin / n, q))
    return float(primal), float(theta * lin / n - theta**2 * q)


def _initial_state(num_features, num_classes, mesh):
    """(weights, averaged weights, step) at zero; separate buffers, as the scan donates them."""
    zeros = lambda: jnp.zeros((num_features + 1, num_classes), jnp.float32)  # noqa: E731
    return sharding.replicate((zeros(), zeros(), jnp.zeros((), jnp.float32)), mesh)


def _calibrate(stream, rows, num_features, num_classes, pre, lam, scale, loss, mesh, candidates):
    """Bottou's eta0 choice: one plain-SGD pass over a sample per candidate; the lowest
    objective on the sample wins."""
    best, best_obj = None, np.inf
    for eta0 in candidates:
        state = _initial_state(num_features, num_classes, mesh)
        for x, onehot, mask in stream.chunks(rng=np.random.default_rng(0), rows=rows):
            state = _run_chunk(state, x, onehot, mask, pre, lam, eta0, jnp.inf, scale, loss)
        obj, _ = _objective(stream, state[0], lam, scale, loss, 0.0, rows=rows)
        if np.isfinite(obj) and obj < best_obj:
            best, best_obj = eta0, obj
    if best is None:
        raise ValueError("SGD diverged for every eta0 candidate; scale the features or set eta0")
    return best


def fit_svm_sgd(features, labels, *, num_classes=None, lam: float = 1e-4, loss: str = "hinge",
                fit_intercept: bool = True, intercept_scale: float = 1.0, epochs: int = 10,
                batch_size: int = 256, eta0=None, average_from: float = 1.0, tol: float = 1e-3,
                ftol=None, gap_smoothing: float = 0.1, chunk_steps: int = 64, precondition_rank: int = 64,
                precondition_rows: int = 16384, seed: int = 0, mesh=None, eval_every: int = 1,
                callback=None):
    """Fit a multiclass linear SVM by averaged minibatch SGD on host features [n, D].

    features may be a numpy array or memmap: only chunks of batch_size * chunk_steps rows are
    on the device at a time. eta0=None picks it from (10^-2 .. 10^2) on a 2048-example sample.
    average_from: epoch after which iterates are averaged. Steps are preconditioned like the
    full-batch solver's (precondition_rank=0 turns that off). After every eval_every epochs the
    averaged weights' objective and certified gap are computed (one more streamed pass); the
    fit stops when gap <= tol * objective, or when the objective fell by <= ftol (relative)
    since the last evaluation (ftol=None: never). gap_smoothing only picks the dual point of
    the gap. With a mesh, batch_size must divide by its 'data' axis size. callback (optional)
    is called after each evaluated epoch with {"epoch", "iterations", "objective", "gap"}.
    Returns (params, info) like svm.fit_svm, with info["epochs"], info["eta0"], and
    info["objective"] / info["gap"] per evaluated epoch.
    """
    check_loss(loss)
    if lam <= 0:
        raise ValueError(f"lam must be positive, got {lam}")
    if not hasattr(features, "ndim") or features.ndim != 2:
        raise ValueError(f"features must be 2-D [examples, features], got shape {np.shape(features)}")
    labels, num_classes = check_labels(labels, features.shape[0], num_classes)
    size = sharding.data_size(mesh)
    if batch_size % size:
        raise ValueError(f"batch_size {batch_size} must be a multiple of the mesh's data axis ({size})")
    n, d = features.shape
    stream = _Stream(features, labels, num_classes, batch_size, chunk_steps, mesh)
    for s in range(0, n, stream.rows):  # NaN check, one host chunk at a time
        check_finite(np.asarray(features[s : s + stream.rows]), "features")
    scale = float(intercept_scale) if fit_intercept else 0.0
    rng = np.random.default_rng(seed)
    pre = None
    if precondition_rank:
        rows = np.sort(rng.choice(n, min(n, precondition_rows), replace=False))
        xs = sharding.place(sharding.pad_rows(np.asarray(features[rows], np.float32), size), mesh)
        ms = sharding.place(sharding.pad_rows(np.ones(len(rows), np.float32), size), mesh)
        pre = sharding.replicate(precondition.nystrom(xs, ms, scale, precondition_rank, seed), mesh)
    if eta0 is None:
        sample = np.sort(rng.choice(n, min(n, 2048), replace=False))
        eta0 = _calibrate(stream, sample, d, num_classes, pre, lam, scale, loss, mesh, 10.0 ** np.arange(-2, 3))
    steps_per_epoch = -(-n // batch_size)
    state = _initial_state(d, num_classes, mesh)
    objective, gaps, best_dual, stopped_by = [], [], -np.inf, "epochs"
    for epoch in range(1, epochs + 1):
        for x, onehot, mask in stream.chunks(rng=rng):
            state = _run_chunk(state, x, onehot, mask, pre, lam, float(eta0), average_from * steps_per_epoch,
                               scale, loss)
        if epoch % eval_every == 0 or epoch == epochs:
            obj, dual = _objective(stream, state[1], lam, scale, loss, gap_smoothing)
            best_dual = max(best_dual, dual)
            objective.append(obj)
            gaps.append(obj - best_dual)
            if callback is not None:
                callback({"epoch": epoch, "iterations": epoch * steps_per_epoch, "objective": obj, "gap": gaps[-1]})
            if gaps[-1] <= tol * abs(obj):
                stopped_by = "gap"
            elif ftol is not None and len(objective) > 1 and objective[-2] - obj <= ftol * abs(obj):
                stopped_by = "ftol"
            if stopped_by != "epochs":
                break
    w_avg = state[1]
    params = {"w": w_avg[:-1], "b": scale * w_avg[-1]}
    info = {"objective": np.asarray(objective), "gap": np.asarray(gaps), "epochs": epoch,
            "converged": stopped_by == "gap", "stopped_by": stopped_by, "eta0": float(eta0),
            "iterations": int(state[2]), "primal": objective[-1], "dual": best_dual}
    return params, info
