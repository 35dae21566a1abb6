"""The lessons-as-curves command (jaxnet.experiments.classical_curves) on a tiny synthetic problem: points,
table, plots, and a re-run that redoes nothing."""
import json

import numpy as np
import pytest

from jaxnet.experiments import classical_curves as curves

RNG = np.random.default_rng(7)


def _stripes(n, size=16):
    y = RNG.integers(0, 2, n)
    wave = (((np.arange(size)[None, :] + RNG.integers(0, 4, n)[:, None]) // 2) % 2).astype(np.float32)
    img = np.where(y[:, None, None] == 0, wave[:, :, None], wave[:, None, :]) + 0.3 * RNG.random((n, size, size))
    return (img[..., None] / 1.3 * 255).astype(np.uint8), y.astype(np.int32)


def test_stratified_keeps_class_shares():
    labels = np.repeat(np.arange(4), [100, 50, 30, 2])
    idx = curves.stratified(labels, 18, seed=0)
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx], minlength=4).tolist() == [10, 5, 3, 1]  # >= 1 per class
    assert len(curves.stratified(labels, 10_000)) == len(labels)


TINY = {"bow": lambda w: {"bow": {"bin_sizes": (2,), "step": 4, "pca_dim": 4, "words": w, "pyramid": ((1, 1),)},
                          "kernel_map": {"order": 1}}}


def test_sweep_writes_outputs_and_caches(tmp_path, monkeypatch):
    # two real points of the same shapes (one compilation): the sweep's measurement, outputs and cache
    monkeypatch.setattr(curves, "RECIPES", TINY)
    monkeypatch.setattr(curves, "QUICK", {"bow_words": ("bow", (3,)), "bow_data": ("bow", (1.0,))})
    monkeypatch.setattr(curves, "QUICK_MID", {"bow": 3})
    xtr, ytr = _stripes(40)
    xte, yte = _stripes(40)
    lines = []
    results = curves.run(tmp_path, quick=True, data=(xtr, ytr, xte, yte), log=lines.append)
    assert [r["name"] for r in results] == ["bow_words_3", "bow_data_1"]
    assert [r["feature_dim"] for r in results] == [3 * 3] * 2  # the chi2 map triples
    assert [r["train_examples"] for r in results] == [40, 40]
    assert all(r["test_examples"] == 40 and 0.5 <= r["test_acc"] <= 1.0 for r in results)
    assert all(r["seconds"] >= r["svm_seconds"] > 0 for r in results)
    assert any("[1/2] bow_words_3" in line for line in lines)  # progress
    for name in ("curves.md", "curves.json", "dimension.png", "data.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "dimension.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "curves.md").read_text()
    assert table.count("\n| bow_data |") == 1 and "100% of the train pool (3 words)" in table
    assert "dimension.png" in curves.report_section(tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("a cached point was measured again")

    monkeypatch.setattr(curves, "measure", fail)
    again = curves.run(tmp_path, quick=True, data=(xtr, ytr, xte, yte), log=lines.append)
    assert json.dumps(again) == json.dumps(results)
    with pytest.raises(AssertionError, match="measured again"):  # other settings: not the cached points
        curves.run(tmp_path, quick=True, data=(xtr, ytr, xte[:10], yte[:10]), log=lines.append)


def test_data_curves_subsample_and_plot(tmp_path, monkeypatch):
    # the training-set-size points get stratified subsets of the pool (measure replaced: no fitting)
    seen = []

    def fake_measure(method, size, xtr, ytr, xte, yte, **kwargs):
        seen.append((method, size, np.bincount(ytr, minlength=2).tolist(), len(xte)))
        acc = 0.5 + 0.01 * len(ytr)
        return {"test_acc": acc, "feature_dim": 9 * size, "train_examples": len(ytr), "test_examples": len(yte),
                "encoder_seconds": 1.0, "train_feature_seconds": 1.0, "svm_seconds": 1.0, "svm_iterations": 3,
                "test_seconds": 1.0, "seconds": 4.0}

    monkeypatch.setattr(curves, "RECIPES", {**TINY, "fisher": TINY["bow"]})
    monkeypatch.setattr(curves, "QUICK", {"bow_words": ("bow", (2, 4)), "fisher_data": ("fisher", (0.5, 1.0)),
                                          "bow_data": ("bow", (0.5, 1.0))})
    monkeypatch.setattr(curves, "QUICK_MID", {"bow": 3, "fisher": 5})
    monkeypatch.setattr(curves, "measure", fake_measure)
    xtr, ytr = _stripes(40)
    xte, yte = _stripes(40)
    results = curves.run(tmp_path, quick=True, data=(xtr, ytr, xte, yte), log=lambda s: None)
    assert [r["train_examples"] for r in results] == [40, 40, 20, 40, 20, 40]
    assert [r["size"] for r in results] == [2, 4, 5, 5, 3, 3]  # the data curves use the mid size
    counts = np.bincount(ytr, minlength=2)
    assert seen[2][2] == [int(round(c / 2)) for c in counts]  # class shares kept
    table = (tmp_path / "curves.md").read_text()
    assert "50% of the train pool (K = 5)" in table and "50% of the train pool (3 words)" in table
    for name in ("dimension.png", "data.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
