"""The tasks study's plumbing (python -m jaxnet task_study) with the training stubbed out: its
plan (what each backbone start trains and how long), the table, the plot, the per-point cache
and the report section's verdict."""
import json
import re

import jax
import jax.numpy as jnp
import pytest

import jaxnet.methods
from jaxnet.config import validate_config
from jaxnet.experiments import context, task_study as study
from jaxnet.methods.localize import task_model


@pytest.fixture
def fake_train(monkeypatch):
    """jaxnet.methods.train replaced by a stub: pretrained starts and more labels score better."""
    calls = []

    def train(config, workdir):
        validate_config(config)
        calls.append(str(workdir))
        labelled = config.examples_per_class / 6000 if config.examples_per_class else 1.0
        pretrained = 0.1 if config.transfer.source_workdir else 0.0
        quality = 0.5 + 0.3 * labelled + pretrained
        metrics = {"top1_acc": quality, "loss": 1.0, "split_name": "test"}
        if config.method == "localize":
            metrics["loc_err"] = 1.0 - quality
        if config.method == "segment":
            metrics["miou"] = quality - 0.1
        return metrics

    monkeypatch.setattr(jaxnet.methods, "train", train)
    return calls


def test_plan_trains_every_start_at_every_label_share_for_the_same_steps(tmp_path):
    points = study.plan(tmp_path, quick=False)
    assert [p[0] for p in points][:2] == ["pretrain", "localize_scratch_1%"] and len(points) == 19
    source = str((tmp_path / "runs" / "pretrain").absolute())
    for name, task, regime, fraction, config in points:
        validate_config(config)
        if task is None:
            assert (config.method, config.dataset, config.device_resize) == ("network", "fashion_mnist", 40)
            continue
        assert config.method == task and config.dataset == "fashion_mnist_scenes"
        assert config.examples_per_class == {0.01: 60, 0.1: 600, 1.0: 0}[fraction]
        labelled = config.examples_per_class * 10 or 60_000
        assert round(config.num_epochs * labelled / config.batch_size) == study.STEPS[fraction]
        assert config.transfer.source_workdir == ("" if regime == "scratch" else source)
        assert not config.transfer.bn_frozen  # frozen: weights only, statistics from the scenes
        assert bool(config.transfer.freeze) == (regime == "frozen")
        assert config.model == points[0][4].model  # the pretrained backbone fits


def test_frozen_start_freezes_the_backbone_and_nothing_else(tmp_path):
    for task in study.TASKS:
        config = study.task_config(task, "frozen", 0.01, "/src", quick=True)
        model = task_model(config, task)
        params = jax.eval_shape(lambda r: model.init({"params": r, "dropout": r},
                                                     jnp.zeros((1, 64, 64, 1)))["params"],
                                jax.random.PRNGKey(0))
        paths = ["/".join(str(k.key) for k in path)
                 for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
        frozen = [p for p in paths if re.search(config.transfer.freeze, p)]
        heads = sorted({p.split("/")[0] for p in paths} - {p.split("/")[0] for p in frozen})
        assert heads == ["fc", "task_head"] and len(frozen) > 10


def test_quick_study_writes_the_tables_and_plot_and_caches_points(tmp_path, fake_train):
    out = tmp_path / "study"
    results = study.study(out, quick=True, log=lambda m: None)
    points = study.plan(out, quick=True)
    assert len(fake_train) == len(points) == len(results) == 19
    text = (out / "study.md").read_text()
    assert "| from scratch | 49.7 | 47.0 | 20.0 |" in text  # localize: 1 - (0.5 + 0.3 x labelled share)
    assert "| pretrained, fine-tuned | 0.503 | 0.530 | 0.800 |" in text  # segment: mIoU
    assert (out / "tasks_vs_labels.png").stat().st_size > 10_000
    assert json.loads((out / "study.json").read_text())["segment_frozen_100%"]["miou"] == pytest.approx(0.8)
    study.study(out, quick=True, log=lambda m: None)
    assert len(fake_train) == len(points)  # every point cached


def test_tasks_section_compares_pretrained_with_scratch_at_the_fewest_labels(tmp_path, fake_train):
    from jaxnet.experiments import tasks

    section = tasks.run(context.Context(tmp_path, quick=True, log=lambda s: None))
    assert section.verdict == "held"
    assert section.measured == ("localize with 1% of the labels: loc_err 0.397 pretrained vs 0.497 from"
                                " scratch; segment with 1% of the labels: miou 0.503 pretrained vs 0.403"
                                " from scratch")
    assert section.table[1] == ["localize (localization error (%)), from scratch", "49.7%", "47.0%", "20.0%"]
    assert (tmp_path / "tasks_vs_labels.png").exists()
