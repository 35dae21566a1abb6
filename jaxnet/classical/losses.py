"""Multiclass linear-SVM losses with their Fenchel duals, shared by both solvers.

Primal: P(W) = lam/2 |W|^2 + 1/n sum_i loss(s_i, y_i) with scores s_i = x_i W.
For dual variables a_i in the loss conjugate's domain, D(A) = 1/n sum_i -loss*(-a_i) -
|X^T A|^2 / (2 lam n^2) <= P(W*) <= P(W), so P(W) - D(A) bounds the suboptimality of W.
Each loss has a smoothed version (width mu > 0) whose negative score-gradient is such an A:
one pass over the data gives the smoothed objective, its gradient and a certified gap. The dual
point is also rescaled by the best theta (A -> theta A, a 1-D maximisation in closed form),
which keeps the gap informative far from the optimum.
"""
import jax
import jax.numpy as jnp

LOSSES = ("hinge", "squared_hinge", "crammer_singer")


def check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown SVM loss {loss!r}; choose one of {LOSSES}")


def _entropy(p):
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)


def loss_terms(scores, onehot, loss: str, mu):
    """Per-example terms for scores [n, C] and one-hot labels [n, C] (mu = 0: no smoothing,
    subgradients). Returns a dict with exact [n] (the loss), smooth [n] (the smoothed loss),
    a [n, C] (minus the smoothed loss's score-gradient: a feasible dual point) and the dual
    value of theta * a written as theta * lin - theta^2 * quad (+ the smoothing term)."""
    if loss == "crammer_singer":
        margin = scores + 1.0 - onehot  # Delta_c + s_c
        true = jnp.sum(onehot * scores, axis=-1)
        exact = jnp.max(margin, axis=-1) - true
        safe_mu = jnp.maximum(mu, 1e-12)
        p = jnp.where(mu > 0, jax.nn.softmax(margin / safe_mu, axis=-1),
                      jax.nn.one_hot(jnp.argmax(margin, axis=-1), scores.shape[-1]))
        smooth = jnp.where(mu > 0, safe_mu * jax.nn.logsumexp(margin / safe_mu, axis=-1) - true, exact)
        lin = 1.0 - jnp.sum(p * onehot, axis=-1)
        return {"exact": exact, "smooth": smooth, "a": onehot - p, "lin": lin, "quad": jnp.zeros_like(lin),
                "smooth_quad": jnp.zeros_like(lin), "p": p}
    sign = 2.0 * onehot - 1.0
    gap = 1.0 - sign * scores  # 1 - y_c s_c, one-vs-rest
    viol = jnp.maximum(gap, 0.0)
    if loss == "squared_hinge":
        beta = 2.0 * viol
        sq = jnp.sum(viol * viol, axis=-1)
        quad = 0.25 * jnp.sum(beta * beta, axis=-1)
        return {"exact": sq, "smooth": sq, "a": sign * beta, "lin": jnp.sum(beta, axis=-1), "quad": quad,
                "smooth_quad": quad}
    safe_mu = jnp.maximum(mu, 1e-12)
    beta = jnp.where(mu > 0, jnp.clip(gap / safe_mu, 0.0, 1.0), (gap > 0).astype(scores.dtype))
    huber = jnp.where(gap >= safe_mu, gap - 0.5 * safe_mu, 0.5 * viol * viol / safe_mu)
    smooth = jnp.where(mu > 0, jnp.sum(huber, axis=-1), jnp.sum(viol, axis=-1))
    zero = jnp.zeros_like(smooth)
    return {"exact": jnp.sum(viol, axis=-1), "smooth": smooth, "a": sign * beta, "lin": jnp.sum(beta, axis=-1),
            "quad": zero, "smooth_quad": 0.5 * mu * jnp.sum(beta * beta, axis=-1)}


def best_scale(loss: str, lin, quad):
    """theta maximising theta * lin - theta^2 * quad over the dual's feasible scales."""
    theta = lin / jnp.maximum(2.0 * quad, 1e-30)
    hi = jnp.inf if loss == "squared_hinge" else 1.0  # theta * a stays feasible
    return jnp.clip(theta, 0.0, hi)


def smooth_dual_extra(terms, onehot, theta, mu):
    """Crammer-Singer's smoothing term mu * H(theta p + (1 - theta) y) per example (0 otherwise)."""
    if "p" not in terms:
        return jnp.zeros_like(terms["lin"])
    return mu * _entropy(theta * terms["p"] + (1.0 - theta) * onehot)
