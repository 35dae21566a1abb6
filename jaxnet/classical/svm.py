"""Multiclass linear SVM, full-batch solver (for features that fit in device memory).

Minimises lam/2 (|W|^2 + |b'|^2) + 1/n sum_i loss(x_i W + s b', y_i), with the bias b = s b'
regularised like liblinear's (s = intercept_scale), by L-BFGS with backtracking line search.
The hinge and Crammer-Singer losses are non-smooth: they are replaced by their smoothed
versions (Huber hinge, log-sum-exp), the smoothing shrinking 10x whenever the smoothed problem
is solved, until the certified duality gap of the *exact* problem is below tol * objective.
L-BFGS starts each step from a Nystrom preconditioner (precondition.py), which matters: image
features are far from isotropic. Every iteration costs two matmuls over the data (scores,
gradient); with a mesh the rows are sharded over its 'data' axis and XLA all-reduces the
[D, C] gradient.
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.classical import precondition, sharding
from jaxnet.classical._checks import check_labels, check_matrix
from jaxnet.classical.losses import best_scale, check_loss, loss_terms, smooth_dual_extra


def lam_from_c(c: float, n: int) -> float:
    """The lam equivalent to liblinear / scikit-learn's C for n examples: lam = 1 / (C n)."""
    return 1.0 / (c * n)


def decision_function(params, features):
    """Class scores [N, C] = features @ w + b."""
    return jnp.asarray(features, jnp.float32) @ params["w"] + params["b"]


def predict(params, features):
    """Predicted class [N] (highest score)."""
    return jnp.argmax(decision_function(params, features), axis=-1)


def _evaluate(w, x, onehot, mask, lam, mu, scale, loss):
    """One pass: smoothed objective and gradient, exact primal, and the exact and smoothed
    duals at the best rescaling of the dual point."""
    s = x @ w[:-1] + scale * w[-1]
    t = loss_terms(s, onehot, loss, mu)
    n = jnp.sum(mask)
    mean = lambda v: jnp.sum(mask * v) / n  # noqa: E731
    am = t["a"] * mask[:, None]
    g_loss = jnp.concatenate([x.T @ am, scale * jnp.sum(am, axis=0, keepdims=True)]) / n
    reg = 0.5 * lam * jnp.sum(w * w)
    quad = jnp.sum(g_loss * g_loss) / (2 * lam)  # |X^T A|^2 / (2 lam n^2)
    lin, q_exact, q_smooth = mean(t["lin"]), mean(t["quad"]) + quad, mean(t["smooth_quad"]) + quad
    theta = best_scale(loss, lin, q_exact)
    return {
        "f": reg + mean(t["smooth"]),
        "grad": lam * w - g_loss,
        "primal": reg + mean(t["exact"]),
        "dual": theta * lin - theta**2 * q_exact,
        "dual_smooth": theta * lin - theta**2 * q_smooth + mean(smooth_dual_extra(t, onehot, theta, mu)),
    }


def _direction(g, s_hist, y_hist, rho, stored, head, pre, lam):
    """L-BFGS two-loop recursion with initial inverse Hessian gamma M^-1: -H g from the last
    `stored` (s, y) pairs (circular buffer)."""
    m = rho.shape[0]

    def newest_first(i, carry):
        q, alpha = carry
        j = (head - 1 - i) % m
        a = jnp.where(i < stored, rho[j] * jnp.vdot(s_hist[j], q), 0.0)
        return q - a * y_hist[j], alpha.at[j].set(a)

    q, alpha = jax.lax.fori_loop(0, m, newest_first, (g, jnp.zeros(m, g.dtype)))
    last = (head - 1) % m
    y_pre = precondition.apply(y_hist[last], pre, lam)
    gamma = jnp.where(stored > 0, jnp.vdot(s_hist[last], y_hist[last]) / jnp.vdot(y_hist[last], y_pre), 1.0)

    def oldest_first(i, r):
        j = (head - stored + i) % m
        b = rho[j] * jnp.vdot(y_hist[j], r)
        return r + jnp.where(i < stored, alpha[j] - b, 0.0) * s_hist[j]

    return -jax.lax.fori_loop(0, m, oldest_first, gamma * precondition.apply(q, pre, lam))


@partial(jax.jit, static_argnames=("loss", "memory", "buffer"))
def _lbfgs(w, best, x, onehot, mask, pre, lam, mu, scale, tol, ftol, limit, loss, memory, buffer):
    """Run L-BFGS from w for at most `limit` (<= buffer) iterations on the mu-smoothed problem.

    `best` carries, across calls, the iterate with the lowest exact objective ("w", "primal")
    and the highest dual value seen ("dual"): their difference is the certified gap.
    Stops with status 1 when that relative gap <= tol, 2 when the smoothed problem's <= tol / 2,
    3 when the line search finds no decrease (float32's limit at this smoothing), 4 when the
    smoothed objective fell by <= ftol (relative) over the last 10 iterations.
    """
    ev = partial(_evaluate, x=x, onehot=onehot, mask=mask, lam=lam, mu=mu, scale=scale, loss=loss)

    def improve(best, w, e):
        better = e["primal"] < best["primal"]
        return {"w": jnp.where(better, w, best["w"]), "primal": jnp.minimum(best["primal"], e["primal"]),
                "dual": jnp.maximum(best["dual"], e["dual"])}

    def status(e, best):
        exact = best["primal"] - best["dual"] <= tol * jnp.abs(best["primal"])
        smooth = e["f"] - e["dual_smooth"] <= 0.5 * tol * jnp.abs(e["primal"])
        return jnp.where(exact, 1, jnp.where(smooth, 2, 0))

    def body(c):
        e, w = c["e"], c["w"]
        d = _direction(e["grad"], c["s"], c["y"], c["rho"], c["stored"], c["head"], pre, lam)
        slope = jnp.vdot(e["grad"], d)
        d = jnp.where(slope < 0, d, -e["grad"])
        slope = jnp.where(slope < 0, slope, -jnp.vdot(e["grad"], e["grad"]))

        def ls_cond(ls):  # backtracking (Armijo); always runs the first trial, t = 1
            t, e_new, tries = ls
            return (tries == 0) | ((e_new["f"] > e["f"] + 1e-4 * t * slope) & (tries < 30))

        def ls_body(ls):
            t, _, tries = ls
            t = jnp.where(tries == 0, 1.0, 0.5 * t)
            return t, ev(w + t * d), tries + 1

        t, e_new, _ = jax.lax.while_loop(ls_cond, ls_body, (1.0, e, 0))
        stalled = e_new["f"] > e["f"] + 1e-4 * t * slope  # no decrease: float32 precision reached
        w_new = jnp.where(stalled, w, w + t * d)
        e_new = jax.tree.map(lambda new, old: jnp.where(stalled, old, new), e_new, e)
        s, y = w_new - w, e_new["grad"] - e["grad"]
        sy = jnp.vdot(s, y)
        keep = sy > 1e-12 * jnp.vdot(y, y)  # curvature pair usable (always, barring rounding)
        head = c["head"]
        best = improve(c["best"], w_new, e_new)
        k = c["k"]
        hist = c["hist"].at[:, k].set(jnp.stack([e_new["primal"], best["primal"] - best["dual"], e_new["f"]]))
        slow = (k >= 10) & (hist[2, k - 10] - e_new["f"] <= ftol * jnp.abs(e_new["f"]))
        st = jnp.where(stalled, 3, status(e_new, best))
        return {
            "w": w_new, "e": e_new, "best": best, "k": k + 1, "hist": hist,
            "status": jnp.where((st == 0) & slow, 4, st),
            "s": jnp.where(keep, c["s"].at[head].set(s), c["s"]),
            "y": jnp.where(keep, c["y"].at[head].set(y), c["y"]),
            "rho": jnp.where(keep, c["rho"].at[head].set(1.0 / sy), c["rho"]),
            "head": jnp.where(keep, (head + 1) % memory, head),
            "stored": jnp.where(keep, jnp.minimum(c["stored"] + 1, memory), c["stored"]),
        }

    e = ev(w)
    best = improve(best, w, e)
    zeros = jnp.zeros((memory,) + w.shape, w.dtype)
    c0 = {"w": w, "e": e, "best": best, "k": 0, "hist": jnp.full((3, buffer), jnp.nan, jnp.float32),
          "status": status(e, best), "s": zeros, "y": zeros, "rho": jnp.zeros(memory, w.dtype),
          "head": 0, "stored": 0}
    c = jax.lax.while_loop(lambda c: (c["k"] < limit) & (c["status"] == 0), body, c0)
    return c["w"], c["best"], c["k"], c["status"], c["hist"]


_STOP_REASONS = {0: "max_iter", 1: "gap", 2: "smoothed gap", 3: "no progress", 4: "ftol"}


def _examples(x, labels, mesh) -> int:
    """The examples in features x: its rows, less the padding of a device array already padded
    to the mesh for these labels (a sharding.RowBuffer's)."""
    if isinstance(x, jax.Array) and np.ndim(labels) == 1 and x.shape[0] == sharding.padded_rows(len(labels), mesh):
        return len(labels)
    return x.shape[0]


def prepare(features, labels, num_classes, mesh):
    """Validate and place (x [n', D], one-hot labels [n', C], mask [n']) on the mesh (rows
    padded to a multiple of its 'data' axis; padding rows have mask 0). Host features (numpy,
    memmap) are copied over in blocks of rows (sharding.place_rows); device features are used
    as they are, also when already padded to the mesh (sharding.RowBuffer: n' rows for n labels)."""
    x = features
    if not hasattr(x, "ndim") or x.ndim != 2:
        raise ValueError(f"features must be 2-D [examples, features], got shape {np.shape(x)}")
    k = sharding.data_size(mesh)
    labels, num_classes = check_labels(labels, _examples(x, labels, mesh), num_classes)
    check_matrix(x, "features")
    if isinstance(x, jax.Array):
        x = sharding.place(sharding.pad_rows(x.astype(jnp.float32), k), mesh)
    else:
        x = sharding.place_rows(x, mesh)
    onehot = sharding.pad_rows(np.eye(num_classes, dtype=np.float32)[labels], k)
    mask = sharding.pad_rows(np.ones(len(labels), np.float32), k)
    return x, sharding.place(onehot, mesh), sharding.place(mask, mesh), num_classes


def fit_svm(features, labels, *, num_classes=None, lam: float = 1e-4, loss: str = "hinge",
            fit_intercept: bool = True, intercept_scale: float = 1.0, tol: float = 1e-3,
            ftol: float = 0.0, max_iter: int = 1000, smoothing: float = 1.0, min_smoothing: float = 1e-6,
            memory: int = 30, precondition_rank: int = 64, precondition_rows: int = 16384,
            seed: int = 0, mesh=None, callback=None):
    """Fit a multiclass linear SVM on features [n, D] and integer labels [n]. Features may be a
    host array, a memmap or a device array (also one already padded to the mesh's 'data' axis,
    [n', D], like a sharding.RowBuffer's: used without a copy).

    loss: "hinge" (one-vs-rest), "squared_hinge" (one-vs-rest) or "crammer_singer".
    lam: L2 weight (lam_from_c converts scikit-learn's C).
    tol: stop when the certified relative duality gap (P - D) / P <= tol ("converged").
    ftol: a smoothing level also ends when its objective fell by <= ftol (relative) over 10
    iterations; at the last level (min_smoothing) that stops the fit. The certified gap is
    loose when lam is small (it scales with the condition number), so on large problems ftol
    (e.g. 1e-3) is the practical criterion and the gap a guarantee.
    smoothing / min_smoothing: first and last smoothing widths of the non-smooth losses.
    precondition_rank / precondition_rows: Nystrom rank and the rows sampled to build it.
    mesh: optional jax.sharding.Mesh with a 'data' axis to shard the examples over.
    callback: called after each smoothing level with {"iterations", "objective", "gap",
    "smoothing"} (totals so far, the last iteration's values), for progress logs.
    Returns (params, info): params = {"w": [D, C], "b": [C]} (the iterate with the lowest
    objective); info = {"objective", "gap" (per iteration, exact problem, gap certified),
    "smoothing" (per iteration), "iterations", "converged", "stopped_by", "primal", "dual"}.
    """
    check_loss(loss)
    if lam <= 0:
        raise ValueError(f"lam must be positive, got {lam}")
    x, onehot, mask, num_classes = prepare(features, labels, num_classes, mesh)
    scale = float(intercept_scale) if fit_intercept else 0.0
    w = sharding.replicate(jnp.zeros((x.shape[1] + 1, num_classes), jnp.float32), mesh)
    stride = max(1, x.shape[0] // precondition_rows)
    sample = sharding.strided_rows(x, stride), sharding.strided_rows(mask, stride)  # on one device
    pre = sharding.replicate(precondition.nystrom(*sample, scale, precondition_rank, seed), mesh)
    del sample
    mu = 0.0 if loss == "squared_hinge" else float(smoothing)
    inf = jnp.asarray(np.inf, jnp.float32)  # not a Python float: a weak type would recompile
    best = sharding.replicate({"w": w, "primal": inf, "dual": -inf}, mesh)
    objective, gaps, mus, done = [], [], [], 0
    while True:
        w, best, k, status, hist = _lbfgs(w, best, x, onehot, mask, pre, lam, mu, scale, tol, ftol,
                                          max_iter - done, loss, memory, max_iter)
        k, status, hist = int(k), int(status), np.asarray(hist)
        objective += hist[0, :k].tolist()
        gaps += hist[1, :k].tolist()
        mus += [mu] * k
        done += k
        if callback is not None and k:
            callback({"iterations": done, "objective": objective[-1], "gap": gaps[-1], "smoothing": mu})
        if status in (1, 3) or done >= max_iter or mu <= min_smoothing:
            break
        mu = max(mu * 0.1, min_smoothing)
    params = {"w": best["w"][:-1], "b": scale * best["w"][-1]}
    info = {
        "objective": np.asarray(objective), "gap": np.asarray(gaps), "smoothing": np.asarray(mus),
        "iterations": done, "converged": status == 1, "stopped_by": _STOP_REASONS[status],
        "primal": float(best["primal"]), "dual": float(best["dual"]),
    }
    return params, info
