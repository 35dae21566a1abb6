"""Calibration: ECE / NLL / Brier on a hand-computed case, temperature scaling, 1 vs 8 devices."""
import math

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxnet.evaluation.calibration import CalibrationMetric, fit_temperature

# Confidences 0.9, 0.7, 0.65, 0.85, 0.88 fall in 15-bin bins 13, 10, 9, 12, 13; the last row pads.
PROBS = np.array([[0.90, 0.05, 0.05],   # label 0: right
                  [0.20, 0.70, 0.10],   # label 0: wrong
                  [0.65, 0.25, 0.10],   # label 0: right
                  [0.05, 0.10, 0.85],   # label 2: right
                  [0.88, 0.06, 0.06],   # label 1: wrong
                  [0.01, 0.01, 0.98]], np.float32)
LABELS = np.array([0, 0, 0, 2, 1, 0], np.int32)
MASK = np.array([1, 1, 1, 1, 1, 0], np.float32)


def _run(metric, probs, labels, mask):
    return metric.finalize(jax.tree.map(np.asarray, jax.jit(metric.sums)(probs, labels, mask)))


def test_hand_computed_ece_nll_brier():
    result = _run(CalibrationMetric(bins=15), PROBS, LABELS, MASK)
    # Bin 13 holds 0.9 (right) and 0.88 (wrong): accuracy 0.5, confidence 0.89, gap 0.39.
    # ECE = (2 * 0.39 + |0 - 0.7| + |1 - 0.65| + |1 - 0.85|) / 5 = 1.98 / 5.
    assert result["ece"] == pytest.approx(0.396, abs=1e-6)
    assert result["mce"] == pytest.approx(0.7, abs=1e-6)
    nll = -(math.log(0.9) + math.log(0.2) + math.log(0.65) + math.log(0.85) + math.log(0.06)) / 5
    assert result["nll"] == pytest.approx(nll, rel=1e-5)
    # Brier rows: 0.015, 1.14, 0.195, 0.035, 1.6616.
    assert result["brier"] == pytest.approx(3.0466 / 5, rel=1e-5)
    rel = result["reliability"]
    assert len(rel["bin_edges"]) == 16 and rel["bin_edges"][0] == 0 and rel["bin_edges"][-1] == 1
    assert rel["bin_count"] == [0] * 9 + [1, 1, 0, 1, 2, 0]
    assert rel["bin_accuracy"][13] == pytest.approx(0.5) and rel["bin_accuracy"][10] == 0.0
    assert rel["bin_confidence"][13] == pytest.approx(0.89, abs=1e-6)
    assert rel["bin_accuracy"][0] is None and rel["bin_confidence"][14] is None


def test_perfect_and_zero_probability():
    probs = np.eye(3, dtype=np.float32)
    result = _run(CalibrationMetric(), probs, np.arange(3, dtype=np.int32), np.ones(3, np.float32))
    assert result["ece"] == 0.0 and result["brier"] == 0.0 and result["nll"] == pytest.approx(0.0)
    assert result["reliability"]["bin_count"][-1] == 3  # confidence exactly 1: the last bin
    wrong = _run(CalibrationMetric(), probs, np.array([1, 2, 0], np.int32), np.ones(3, np.float32))
    assert math.isfinite(wrong["nll"]) and wrong["nll"] > 80  # p = 0 clipped, not inf
    assert wrong["ece"] == pytest.approx(1.0) and wrong["brier"] == pytest.approx(2.0)


def _tempered_data(n=20000, c=10, true_t=2.0, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, c)) * 3).astype(np.float32)
    p = np.asarray(jax.nn.softmax(logits / true_t, axis=-1), np.float64)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1).astype(np.int32)
    return logits, labels


def test_fit_temperature_recovers_the_true_temperature():
    logits, labels = _tempered_data()
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(2.0, rel=0.06)

    def nll(temp):
        logp = jax.nn.log_softmax(logits / temp, axis=-1)
        return -float(np.take_along_axis(np.asarray(logp), labels[:, None], 1).mean())

    grid = np.exp(np.linspace(np.log(1.0), np.log(4.0), 301))
    best = grid[np.argmin([nll(g) for g in grid])]
    assert t == pytest.approx(best, rel=0.006)  # the grid's step is 0.46%


def test_temperature_before_and_after():
    logits, labels = _tempered_data(n=4000, seed=1)
    held_out, test = slice(0, 2000), slice(2000, None)
    t = fit_temperature(logits[held_out], labels[held_out])
    probs = np.asarray(jax.nn.softmax(logits[test], axis=-1))
    mask = np.ones(len(probs), np.float32)
    result = _run(CalibrationMetric(temperature=t), probs, labels[test], mask)
    assert result["temperature"] == t
    assert result["nll_ts"] < result["nll"] and result["ece_ts"] < result["ece"]
    direct = _run(CalibrationMetric(), np.asarray(jax.nn.softmax(logits[test] / t, axis=-1)),
                  labels[test], mask)
    for key in ("ece", "nll", "brier"):
        assert result[f"{key}_ts"] == pytest.approx(direct[key], rel=1e-4, abs=1e-6), key
    assert result["reliability_ts"]["bin_count"] == direct["reliability"]["bin_count"]


def test_sharded_equals_one_device(devices):
    rng = np.random.default_rng(3)
    probs = np.asarray(jax.nn.softmax(rng.normal(size=(64, 7)) * 2, axis=-1), np.float32)
    labels = rng.integers(0, 7, 64).astype(np.int32)
    mask = (np.arange(64) < 50).astype(np.float32)
    metric = CalibrationMetric(temperature=1.5)
    one = jax.jit(metric.sums)(*(jax.device_put(x, devices[0]) for x in (probs, labels, mask)))
    sharding = NamedSharding(Mesh(np.array(devices), ("data",)), P("data"))
    eight = jax.jit(metric.sums)(*(jax.device_put(x, sharding) for x in (probs, labels, mask)))
    for key in one:
        if np.issubdtype(one[key].dtype, np.integer):
            np.testing.assert_array_equal(one[key], eight[key], err_msg=key)
        else:
            np.testing.assert_allclose(one[key], eight[key], rtol=1e-5, err_msg=key)
    assert int(one["calib_count"]) == 50 and int(np.sum(one["calib_bin_count"])) == 50
