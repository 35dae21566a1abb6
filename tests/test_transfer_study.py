"""The transfer study's plumbing (python -m jaxnet transfer_study) with the training stubbed out:
its plan, the per-point cache (a changed config reruns), the tables and the plots."""
import json

import pytest

import jaxnet.methods
from jaxnet.config import validate_config
from jaxnet.experiments import transfer_study as study


@pytest.fixture
def fake_train(monkeypatch):
    """jaxnet.methods.train replaced by a stub whose accuracy depends on the point's config."""
    calls = []

    def train(config, workdir):
        validate_config(config)
        calls.append(str(workdir))
        acc = {"probe": 0.8, "finetune": 0.85, "network": 0.7, "cluster": 0.6}[config.method]
        acc += 0.01 * (config.examples_per_class > 0) - 0.001 * len(config.transfer.layer)
        metrics = {"top1_acc": acc, "loss": 1.0, "split_name": "test"}
        if config.method == "cluster":
            metrics.update(nmi=0.5 if config.transfer.source_workdir else 0.3, ari=0.4, purity=0.7)
        return metrics

    monkeypatch.setattr(jaxnet.methods, "train", train)
    return calls


def test_plan_covers_every_comparison(tmp_path):
    points = study.plan(tmp_path, quick=False)
    names = [p[0] for p in points]
    assert names[0] == "pretrain" and len(names) == len(set(names))
    assert {p[0] for p in points if p[1] == "probe"} == {
        f"probe_{layer}_n{n}" for layer in study.LAYERS for n in ("10", "100", "1,000", "all")}
    kinds = {(p[1], p[2]) for p in points}
    for n in study.LABELS:
        assert {("finetune head", n), ("finetune all", n), ("scratch", n)} <= kinds
    assert [p[3] for p in points if p[1] == "cluster"] == ["pixels", *study.LAYERS]
    for name, kind, n, _, config in points:
        validate_config(config)
        if kind in ("finetune head", "finetune all", "scratch") and n:
            assert config.batch_size <= 5 * n and config.batch_size % 2 == 0
        if kind in ("probe", "finetune head", "finetune all", "cluster") and name != "cluster_pixels":
            assert config.transfer.source_workdir.endswith("runs/pretrain")
        assert config.classes == ((0, 1, 2, 3, 4) if kind == "pretrain" else (5, 6, 7, 8, 9))
    head = [p[4] for p in points if p[1] == "finetune head"][0]
    assert head.transfer.freeze == "^(?!fc/)" and head.transfer.bn_frozen


def test_quick_study_caches_points_and_writes_tables_and_plots(tmp_path, fake_train):
    out = tmp_path / "study"
    results = study.study(out, quick=True, log=lambda m: None)
    points = study.plan(out, quick=True)
    assert len(fake_train) == len(points) == len(results)
    text = (out / "study.md").read_text()
    assert "| linear probe, pre_logits | 80.00 | 80.00 |" in text
    assert "| raw pixels | 0.300 | 0.400 | 0.700 |" in text
    for png in ("accuracy_vs_labels.png", "probe_per_layer.png", "clustering.png"):
        assert (out / png).stat().st_size > 10_000
    assert json.loads((out / "study.json").read_text())["pretrain"]["top1_acc"] == 0.7
    # a second run reuses every cached point; a changed config reruns only its point
    study.study(out, quick=True, log=lambda m: None)
    assert len(fake_train) == len(points)
    cached = json.loads((out / "results" / "scratch_n10.json").read_text())
    cached["config"]["base_lr"] = 123.0
    (out / "results" / "scratch_n10.json").write_text(json.dumps(cached))
    study.study(out, quick=True, log=lambda m: None)
    assert fake_train[len(points):] == [str(out / "runs" / "scratch_n10")]
