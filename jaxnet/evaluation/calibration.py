"""Calibration: ECE, NLL and Brier score, a reliability diagram's bins, and temperature scaling.

Definitions (N examples, p = the softmax probabilities, y = the true class):
- ECE (Guo et al. 2017): the top-1 confidence max_c p_c falls in one of `bins` equal-width bins
  (lo, hi] of [0, 1] (a confidence of exactly 0 goes to the first bin); ECE = sum over bins of
  n_b / N * |accuracy_b - mean confidence_b|.
- NLL: mean of -log p_y (p_y clipped below at float32's smallest normal, so a zero is finite).
- Brier score: mean over examples of sum_c (p_c - [c == y])^2 (the multi-class form, in [0, 2]).

Temperature scaling (before / after). Fit T on a held-out split with `fit_temperature(logits,
labels)` (held-out logits, or log-probabilities: softmax is shift-invariant). Then evaluate with
`CalibrationMetric(bins=15, temperature=T)`: since softmax(log p / T) = softmax(logits / T), the
metric rescales the probabilities it is given and reports both sets, the plain names (`ece`, `nll`,
`brier`: before) and `ece_ts`, `nll_ts`, `brier_ts` with `temperature` (after). Top-1 accuracy does
not change under a temperature. Reported T is the one fitted on held-out data, never on the test
split itself.
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

TINY = float(np.finfo(np.float32).tiny)


def _calibration_sums(probs, labels, valid, bins: int, prefix: str) -> dict:
    conf = probs.max(axis=-1)
    correct = (jnp.argmax(probs, axis=-1) == labels) & valid
    which = jnp.clip(jnp.ceil(conf * bins).astype(jnp.int32) - 1, 0, bins - 1)
    in_bin = (which[:, None] == jnp.arange(bins)[None, :]) & valid[:, None]
    p_true = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    nll = -jnp.log(jnp.maximum(p_true, TINY))
    onehot = jax.nn.one_hot(labels, probs.shape[-1], dtype=probs.dtype)
    brier = jnp.sum((probs - onehot) ** 2, axis=-1)
    return {
        f"{prefix}count": valid.sum(dtype=jnp.int32),
        f"{prefix}bin_count": in_bin.sum(axis=0, dtype=jnp.int32),
        f"{prefix}bin_correct": (in_bin & correct[:, None]).sum(axis=0, dtype=jnp.int32),
        f"{prefix}bin_conf_sum": jnp.where(in_bin, conf[:, None], 0.0).sum(axis=0),
        f"{prefix}nll_sum": jnp.where(valid, nll, 0.0).sum(),
        f"{prefix}brier_sum": jnp.where(valid, brier, 0.0).sum(),
    }


def _calibration_results(totals: Mapping, bins: int, prefix: str) -> dict:
    count = int(totals[f"{prefix}count"])
    n = np.asarray(totals[f"{prefix}bin_count"], np.float64)
    correct = np.asarray(totals[f"{prefix}bin_correct"], np.float64)
    conf = np.asarray(totals[f"{prefix}bin_conf_sum"], np.float64)
    gaps = np.abs(correct - conf)
    nonempty = n > 0
    safe = np.where(nonempty, n, 1.0)
    return {
        "ece": float(gaps.sum() / count) if count else None,
        "mce": float((gaps / safe)[nonempty].max()) if nonempty.any() else None,
        "nll": float(totals[f"{prefix}nll_sum"]) / count if count else None,
        "brier": float(totals[f"{prefix}brier_sum"]) / count if count else None,
        "reliability": {
            "bin_edges": np.linspace(0.0, 1.0, bins + 1).round(6).tolist(),
            "bin_accuracy": [float(a) if e else None for a, e in zip(correct / safe, nonempty)],
            "bin_confidence": [float(c) if e else None for c, e in zip(conf / safe, nonempty)],
            "bin_count": n.astype(np.int64).tolist(),
        },
    }


def temper(probs, temperature: float):
    """softmax(log p / T): probabilities rescaled by a temperature (same as logits / T)."""
    return jax.nn.softmax(jnp.log(jnp.maximum(probs, TINY)) / temperature, axis=-1)


class CalibrationMetric:
    """ECE / NLL / Brier and the reliability bins, in the evaluator's metric protocol.

    bins: equal-width confidence bins (15, as Guo et al.). temperature: if set (fitted on
    held-out data with `fit_temperature`), also reports `ece_ts`, `nll_ts`, `brier_ts`, `mce_ts`,
    `reliability_ts` and `temperature`.
    finalize -> {"ece", "mce", "nll", "brier": float, "reliability": {"bin_edges" (bins + 1),
    "bin_accuracy", "bin_confidence" (None for an empty bin), "bin_count"}, ...}.
    """

    def __init__(self, bins: int = 15, temperature: float | None = None):
        self.bins = int(bins)
        self.temperature = None if temperature is None else float(temperature)

    def sums(self, scores, labels, mask) -> dict:
        probs = scores.astype(jnp.float32)
        valid = mask > 0
        out = _calibration_sums(probs, labels, valid, self.bins, "calib_")
        if self.temperature is not None:
            out |= _calibration_sums(temper(probs, self.temperature), labels, valid, self.bins,
                                     "calib_ts_")
        return out

    def finalize(self, totals: Mapping) -> dict:
        out = _calibration_results(totals, self.bins, "calib_")
        if self.temperature is not None:
            after = _calibration_results(totals, self.bins, "calib_ts_")
            out |= {f"{k}_ts": v for k, v in after.items()}
            out["temperature"] = self.temperature
        return out


def fit_temperature(logits, labels, *, lower: float = 0.05, upper: float = 20.0,
                    iterations: int = 60) -> float:
    """The temperature T in [lower, upper] minimising the mean NLL of softmax(logits / T) on
    held-out (logits [N, C], labels [N]). The NLL is convex in 1/T, so it is unimodal in log T and
    a golden-section search on log T finds the minimum (to ~1e-9 in log T after 60 steps). A
    minimum at a bound returns that bound."""
    logits = jnp.asarray(logits, jnp.float32)
    labels = jnp.asarray(labels, jnp.int32)

    @jax.jit
    def nll(log_t):
        logp = jax.nn.log_softmax(logits / jnp.exp(log_t), axis=-1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=-1).mean()

    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = np.log(lower), np.log(upper)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = float(nll(c)), float(nll(d))
    for _ in range(iterations):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = float(nll(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = float(nll(d))
    return float(np.exp((a + b) / 2.0))
