"""The classical pipeline as a train.py / eval.py method (jaxnet.methods.classical), on tiny
synthetic data: workdir contract, checkpoint round trip, no refit on re-run, top-5, exactly-once
evaluation, config errors, the two configs and the eval.py CLI."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.classical import feature_pipeline, sharding
from jaxnet.config import validate_config
from jaxnet.data.sources import create_source
from jaxnet.evaluation.evaluator import Evaluator
from jaxnet.loop.checkpoint import Checkpointer
from jaxnet.mesh import create_mesh
from jaxnet.methods import classical as experiment
from jaxnet.methods import evaluate, get_method
from jaxnet.methods import train as train_method

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny_classical_config.py")


def load_config(path, arg=None):
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()


def restore_fitted(workdir, step=None):
    with Checkpointer(Path(workdir) / "checkpoints", keep=1) as checkpointer:
        return experiment.restore_fitted(checkpointer, step)


def records(workdir, split):
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A HOG + LBP -> hinge SVM fit (full-batch solver) in a workdir, and its final eval."""
    workdir = tmp_path_factory.mktemp("svm_hog_lbp")
    config = load_config(TINY)
    return config, workdir, train_method(config, workdir)


def test_train_writes_the_workdir_contract(trained):
    config, workdir, metrics = trained
    assert json.loads((workdir / "config.json").read_text())["method"] == "classical"
    [train] = records(workdir, "train")
    step = train["iterations"]
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [step]
    for key in ("loss", "top1_acc", "top5_acc", "top1_err", "top5_err", "objective", "duality_gap", "fit_seconds"):
        assert np.isfinite(train[key]), key
    assert train["loss"] == train["objective"] and train["duality_gap"] >= 0
    assert train["top1_acc"] == 1.0  # 64 examples, 560 features: the SVM separates the train set
    fits = records(workdir, "fit")
    assert fits and fits[-1]["step"] == step and all(r["objective"] >= train["objective"] for r in fits)
    assert records(workdir, "test")[0] == {"step": step, "split": "test", **metrics}
    saved = json.loads((workdir / "eval" / f"test_step{step}.json").read_text())
    assert {k: saved[k] for k in metrics} == metrics and (saved["step"], saved["split"]) == (step, "test")
    assert saved["protocol"] == "center" and saved["models"] == [{"workdir": str(workdir), "step": step}]
    assert metrics["num_examples"] == 64
    assert metrics["top1_err"] == 1.0 - metrics["top1_acc"] and metrics["top5_err"] == 1.0 - metrics["top5_acc"]


def test_eval_of_restored_state_equals_training_end_exactly(trained):
    config, workdir, metrics = trained
    result = evaluate(config, workdir)
    assert {k: result[k] for k in metrics} == metrics
    assert result["step"] == records(workdir, "train")[0]["step"]
    # the checkpoint holds the SVM weights as plain arrays, and no encoder state for HOG + LBP
    _, fitted, train_record = restore_fitted(workdir)
    assert fitted["svm"]["w"].shape == (560, 8) and fitted["svm"]["b"].shape == (8,)
    logged = {k: v for k, v in records(workdir, "train")[0].items() if k not in ("step", "split")}
    assert fitted["features"]["fisher"] == [] and train_record == logged
    assert json.loads((workdir / "config.json").read_text())["classical"]["lam"] == 1e-2


def test_top1_top5_and_loss_match_a_numpy_computation(trained):
    config, workdir, metrics = trained
    _, fitted, _ = restore_fitted(workdir)
    source = create_source(config, "test")
    x = feature_pipeline.extract_features(source.images, config.classical.features).astype(np.float64)
    scores = x @ fitted["svm"]["w"] + fitted["svm"]["b"]
    ranked = np.argsort(-scores, axis=1)
    y = source.labels
    top1, top5 = np.mean(ranked[:, 0] == y), np.mean((ranked[:, :5] == y[:, None]).any(1))
    assert (metrics["top1_acc"], metrics["top5_acc"]) == (top1, top5)
    assert 0 < top1 < top5 < 1  # random labels, 8 classes: neither is trivial
    sign = 2.0 * np.eye(8)[y] - 1.0
    hinge = np.maximum(0.0, 1.0 - sign * scores).sum(1).mean()
    assert metrics["loss"] == pytest.approx(hinge, rel=1e-5)


def test_rerun_restores_instead_of_refitting(trained, monkeypatch):
    config, workdir, metrics = trained

    def refit(*args, **kwargs):
        raise AssertionError("refitted a finished workdir")

    monkeypatch.setattr(experiment, "fit_classifier", refit)
    monkeypatch.setattr(experiment, "fit_encoder", refit)
    assert train_method(config, workdir) == metrics
    assert len(records(workdir, "train")) == 1 and len(records(workdir, "test")) >= 2


def test_every_example_is_evaluated_exactly_once(trained, monkeypatch):
    config, workdir, _ = trained
    source = create_source(config, "test")
    seen, evaluator = [], Evaluator(source, config, create_mesh())
    read = evaluator.batches

    def spy():
        for batch in read():
            seen.append(batch)
            yield batch

    monkeypatch.setattr(evaluator, "batches", spy)
    step, fitted, _ = restore_fitted(workdir)
    metrics = evaluator(experiment.predictor(config, fitted, step, create_mesh()))
    assert metrics["num_examples"] == 64
    assert [len(b["mask"]) for b in seen] == [24, 24, 24]  # the last batch: 16 examples + 8 padding
    real = np.concatenate([b["image"][b["mask"] > 0] for b in seen])
    np.testing.assert_array_equal(real, source.images)  # each example once, in order


def test_changed_settings_are_refused(trained):
    config, workdir, _ = trained
    other = load_config(TINY)
    other.classical.lam = 1e-3
    with pytest.raises(JaxnetError, match="classical.lam: 0.01 there, 0.001 now"):
        train_method(other, workdir)
    assert evaluate(other, workdir)["num_examples"] == 64  # lam does not matter to eval
    other.classical.features = {"hog": {"cell": 8}}
    with pytest.raises(JaxnetError, match="classical.features"):
        evaluate(other, workdir)


def test_fisher_pipeline_with_sgd_streaming_from_disk(tmp_path):
    config = load_config(TINY)
    config.classical.features = {
        "hog": {"cell": 4, "block": 2}, "kernel_map": {"order": 1, "period": 0.5},
        "fisher": {"descriptor": "sift", "bin_sizes": (4,), "step": 4, "pca_dim": 8, "components": 2,
                   "pyramid": ((1, 1), (2, 2))}}
    config.classical.solver = "sgd"
    config.classical.epochs = 3
    config.classical.ftol = 0.0
    config.classical.eta0 = 0.1
    config.classical.feature_store = "disk"
    config.classical.feature_dtype = "float16"
    config.classical.encoder_images = 32
    config.classical.em_iters = 5
    metrics = train_method(config, tmp_path)
    dim = 3 * 324 + 2 * 2 * 8 * 5  # chi2 map of HOG (x3) + Fisher vector (2 K d R)
    stored = np.load(tmp_path / "features" / "train.npy", mmap_mode="r")
    assert isinstance(stored, np.memmap) and stored.shape == (64, dim) and stored.dtype == np.float16
    [train] = records(tmp_path, "train")
    assert train["iterations"] == 3 * 4 and train["feature_dim"] == dim  # 3 epochs of 64 / 16 steps
    assert [r["epoch"] for r in records(tmp_path, "fit")] == [1, 2, 3]
    _, fitted, _ = restore_fitted(tmp_path)
    [block] = fitted["features"]["fisher"]
    assert block["pca"]["components"].shape == (128, 8) and block["gmm"]["means"].shape == (2, 8)
    assert {k: v for k, v in evaluate(config, tmp_path).items() if k in metrics} == metrics


def test_stored_features_are_reused(tmp_path):
    config = load_config(TINY)
    config.classical.feature_store = "disk"
    source = create_source(config, "train")
    first, labels = experiment.stored_features(source, config, {"fisher": []}, None, tmp_path, "train", print)
    messages = []
    again, labels_again = experiment.stored_features(source, config, {"fisher": []}, None, tmp_path, "train",
                                                     messages.append)
    assert messages and "reusing" in messages[0]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(first))
    np.testing.assert_array_equal(labels_again, source.labels)


@pytest.mark.parametrize("eight", [False, True])
def test_features_written_on_device_equal_the_host_ones(devices, eight):
    config = load_config(TINY)  # 64 train images in batches of eval_batch_size
    config.eval_batch_size = 24  # batches straddle the 8 shards of 8 rows
    source = create_source(config, "train")
    mesh = sharding.data_mesh(devices) if eight else None
    host, labels = experiment.split_features(source, config, {"fisher": []}, mesh)
    dev, labels_dev = experiment.split_features(source, config, {"fisher": []}, mesh, on_device=True)
    want = sharding.place_rows(host, mesh)
    assert isinstance(dev, jax.Array) and dev.sharding.is_equivalent_to(want.sharding, 2)
    np.testing.assert_array_equal(np.asarray(dev), np.asarray(want))
    np.testing.assert_array_equal(labels_dev, labels)


@pytest.mark.parametrize("field, value, message", [
    ("solver", "newton", "config.classical.solver must be one of full_batch, sgd"),
    ("loss", "logistic", "config.classical.loss must be one of hinge"),
    ("lam", 0.0, "config.classical.lam must be positive"),
    ("feature_store", "cloud", "config.classical.feature_store must be one of memory, disk"),
    ("epochs", 0, "config.classical.epochs must be at least 1"),
    ("ftol", -1.0, "config.classical.ftol must be >= 0"),
    ("features", {"sift": {}}, r"config.classical.features: unknown feature config key\(s\) \['sift'\]"),
    ("features", {"hog": {"cel": 4}}, "config.classical.features: .*cel"),
])
def test_bad_classical_values_give_clear_errors(tmp_path, field, value, message):
    config = load_config(TINY)
    config.classical[field] = value
    with pytest.raises(JaxnetError, match=message):
        train_method(config, tmp_path)


def test_unknown_classical_fields_and_methods_are_rejected():
    config = load_config(TINY)
    config.classical.lamda = 1e-3
    with pytest.raises(JaxnetError, match="unknown config.classical field.*lamda"):
        validate_config(config)
    config = load_config(TINY)
    config.method = "kernel"
    with pytest.raises(JaxnetError, match="config.method must be one of network, classical, probe, finetune, cluster, localize, segment, got 'kernel'"):
        get_method(config.method)


def test_missing_class_and_missing_checkpoint_give_clear_errors(tmp_path):
    config = load_config(TINY)
    with pytest.raises(JaxnetError, match="train first"):
        evaluate(config, tmp_path)
    config.num_classes = 100  # 64 examples cannot cover 100 classes
    with pytest.raises(JaxnetError, match=r"SVM fit: class\(es\) .* have no examples"):
        train_method(config, tmp_path)


@pytest.mark.parametrize("name", ["svm_hog_lbp", "svm_fisher"])
def test_configs_resolve_in_both_variants(name):
    path = ROOT / "configs" / f"{name}.py"
    small, large = load_config(path, None), load_config(path, "imagenet")
    for config in (small, large):
        validate_config(config)
        experiment.check_config(config)
        assert config.method == "classical"
    assert (small.dataset, small.classical.solver, small.classical.feature_store) == ("fashion_mnist", "full_batch", "memory")
    assert (large.dataset, large.num_classes, large.channels) == ("imagenet2012", 1000, 3)
    assert (large.classical.solver, large.classical.feature_store) == ("sgd", "disk")
    assert large.batch_size % 8 == 0  # the SGD minibatch splits over 8 devices
    with pytest.raises(ValueError, match="unknown variant"):
        load_config(path, "cifar10")


def test_eval_cli_prints_the_cnn_line(trained):
    config, workdir, metrics = trained
    out = subprocess.run([sys.executable, "eval.py", f"--config={TINY}", f"--workdir={workdir}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    step = records(workdir, "train")[0]["step"]
    assert (f"test at step {step} (64 examples; center, 1 view(s)): loss {metrics['loss']:.4f} | top-1 {metrics['top1_acc']:.4f}"
            f" (err {metrics['top1_err']:.4f}) | top-5 {metrics['top5_acc']:.4f} (err {metrics['top5_err']:.4f})"
            in out.stdout)


def test_imagenet_source_with_sift_and_colour_fisher_blocks(tmp_path):
    """The ImageNet path: JPEGs decoded + centre-cropped by the EncodedSource (also for the
    encoder's random sample), RGB dense SIFT and colour-statistics Fisher vectors."""
    from tests import mini_imagenet

    (tmp_path / "ilsvrc").mkdir()
    data_dir = mini_imagenet.prepare_mini(tmp_path / "ilsvrc")[0]
    config = load_config(TINY)
    config.dataset, config.data_dir, config.eval_split = "imagenet2012", str(data_dir), "validation"
    config.num_classes, config.channels, config.num_workers = len(mini_imagenet.CLASSES), 3, 0
    config.mean, config.std = (127.5,) * 3, (64.0,) * 3
    config.eval_batch_size = 8
    fisher = {"bin_sizes": (4,), "step": 4, "pca_dim": 8, "components": 2, "pyramid": ((1, 1),)}
    config.classical.features = {"fisher": [{"descriptor": "sift", **fisher}, {"descriptor": "colour", **fisher}]}
    config.classical.encoder_images = 6
    config.classical.em_iters = 5
    metrics = train_method(config, tmp_path / "run")
    assert metrics["num_examples"] == 5 and metrics["top5_acc"] == 1.0  # 3 classes: top-5 holds them all
    _, fitted, _ = restore_fitted(tmp_path / "run")
    sift_block, colour_block = fitted["features"]["fisher"]
    assert sift_block["pca"]["components"].shape == (128, 8)
    assert colour_block["pca"]["components"].shape == (4 * 4 * 3 * 2, 8)  # mean + std per RGB sub-cell
    assert fitted["svm"]["w"].shape == (2 * (2 * 2 * 8), 3)
    assert evaluate(config, tmp_path / "run")["top1_acc"] == metrics["top1_acc"]
