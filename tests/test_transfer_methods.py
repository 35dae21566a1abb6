"""The transfer methods (probe, finetune, cluster) through jaxnet.methods.train / evaluate, the
feature-extraction command, class subsets, on tiny nets and synthetic data."""
import json

import jax
import numpy as np
import optax
import pytest

import jaxnet.methods
from jaxnet import JaxnetError
from jaxnet.config import validate_config
from jaxnet.data.sources import ArraySource, create_source
from jaxnet.methods import cluster, evaluate, finetune, train
from jaxnet.tools.extract import main as extract_main
from jaxnet.training.optim import create_schedule
from jaxnet.training.state import build_model, init_variables
from jaxnet.transfer import clustering
from jaxnet.transfer.extract import image_features
from jaxnet.transfer.source import load_source, read_workdir_variables, write_workdir
from tests.tiny_config import get_config


def records(workdir, split):
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny ResNet (10 classes, 8x8 grey synthetic images) with random weights and BatchNorm
    statistics, written as a network workdir: the source network."""
    workdir = tmp_path_factory.mktemp("transfer") / "source"
    config = get_config()
    model = build_model(config)
    variables = jax.jit(lambda r: init_variables(r, model, (1, 8, 8, 1)))(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    stats = jax.tree.map(lambda v: rng.uniform(0.5, 1.5, v.shape).astype(np.float32),
                         variables["batch_stats"])
    write_workdir(workdir, config, {"params": variables["params"], "batch_stats": stats})
    return workdir


def probe_config(source, **transfer):
    c = get_config()
    c.method = "probe"
    c.transfer.source_workdir = str(source)
    c.transfer.update(transfer)
    return c


def test_probe_fits_separable_features_and_a_rerun_restores(source, tmp_path, monkeypatch):
    # the stem's 8x8x4 map, flattened: 256 dims for 64 examples, so every labelling is separable
    config = probe_config(source, layer="stem", pool="none", l2=1e-6)
    final = train(config, tmp_path / "probe")
    fit = records(tmp_path / "probe", "train")
    assert len(fit) == 1 and fit[0]["top1_acc"] == 1.0 and fit[0]["converged"]
    assert (tmp_path / "probe" / "features" / "train_stem_none.npy").exists()
    # the predictor is backbone features then the head: evaluate() gives the training's numbers
    record = evaluate(config, tmp_path / "probe", report=False)
    assert record["top1_acc"] == final["top1_acc"] and record["loss"] == pytest.approx(final["loss"])

    def refit(*args):
        raise AssertionError("a finished probe must not be refitted")

    monkeypatch.setattr(jaxnet.methods.probe, "_fit", refit)
    assert train(config, tmp_path / "probe") == final
    assert len(records(tmp_path / "probe", "train")) == 1


def test_svm_probe_and_bad_layer_names(source, tmp_path):
    config = probe_config(source, layer="stem", pool="none", probe_solver="svm", l2=1e-6)
    train(config, tmp_path / "svm")
    assert records(tmp_path / "svm", "train")[0]["top1_acc"] == 1.0
    with pytest.raises(JaxnetError) as e:
        train(probe_config(source, layer="block9"), tmp_path / "bad")
    message = str(e.value)
    assert "\n" not in message and "unknown layer 'block9'" in message
    assert "stem, stage1, stage2, pre_logits, logits" in message


def test_extraction_command_streams_features_and_labels(source, tmp_path, capsys):
    out = tmp_path / "features"
    assert extract_main([f"--workdir={source}", "--layer=stage2", f"--out={out}", "--split=test",
                         "--batch_size=24"]) == 0
    feats = np.load(out / "test_stage2.npy", mmap_mode="r")
    labels = np.load(out / "test_labels.npy")
    record = json.loads((out / "test_stage2.json").read_text())
    assert feats.shape == (64, 8) and record["shape"] == [64, 8] and record["layer"] == "stage2"
    net = load_source(source)
    data = create_source(net.config, "test")
    direct = jax.jit(image_features(net, "stage2"))(net.variables, data.images)
    np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, data.labels)
    capsys.readouterr()
    assert extract_main([f"--workdir={source}", "--list_layers"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed[:2] == ["stem", "8x8x4"] and "pre_logits" in listed
    assert extract_main([f"--workdir={source}", "--layer=conv9", f"--out={out}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown layer 'conv9'" in err and "stage1" in err


def finetune_config(source, **transfer):
    c = get_config()
    c.method = "finetune"
    c.num_classes = 5
    c.transfer.source_workdir = str(source)
    c.transfer.update(transfer)
    return c


def split_params(variables):
    flat = jax.tree_util.tree_flatten_with_path(variables)[0]
    head = {jax.tree_util.keystr(k): v for k, v in flat if "'fc'" in jax.tree_util.keystr(k)}
    body = {jax.tree_util.keystr(k): v for k, v in flat if "'fc'" not in jax.tree_util.keystr(k)}
    return head, body


def test_finetune_head_only_leaves_the_backbone_bitwise_unchanged(source, tmp_path):
    _, before, _ = read_workdir_variables(source)
    config = finetune_config(source, freeze="^(?!fc/)", bn_frozen=True)
    assert train(config, tmp_path / "head", stop_at_step=4) is None  # and resumed (no source read)
    assert train(config, tmp_path / "head")["num_examples"] == 64
    assert [r["step"] for r in records(tmp_path / "head", "train")] == [2, 4, 6, 8]
    _, after, _ = read_workdir_variables(tmp_path / "head")
    head, body = split_params(after["params"])
    _, body_before = split_params(before["params"])
    assert body.keys() == body_before.keys()
    assert all(body[k].tobytes() == body_before[k].tobytes() for k in body)
    for a, b in zip(jax.tree.leaves(after["batch_stats"]), jax.tree.leaves(before["batch_stats"])):
        assert a.tobytes() == b.tobytes()
    assert head["['fc']['kernel']"].shape == (8, 5)  # the new 5-way head, trained
    assert np.abs(head["['fc']['kernel']"]).sum() > 0
    # BatchNorm statistics not frozen, stage 2 trained: the statistics move, the frozen stem
    # and stage 1 do not
    train(finetune_config(source, freeze="^(stem|stage1)", head_lr_mult=5.0), tmp_path / "stats")
    _, moved, _ = read_workdir_variables(tmp_path / "stats")
    _, body = split_params(moved["params"])
    assert all((body[k].tobytes() == v.tobytes()) == ("stage2" not in k) for k, v in body_before.items())
    assert any(a.tobytes() != b.tobytes() for a, b in zip(
        jax.tree.leaves(moved["batch_stats"]), jax.tree.leaves(before["batch_stats"])))
    other = finetune_config(source)
    other.model.width = 8
    with pytest.raises(JaxnetError, match="not the source network's"):
        train(other, tmp_path / "other")


def test_finetune_per_group_learning_rates():
    config = finetune_config("unused", freeze="stage1_block1/conv1", head_lr_mult=10.0)
    config.momentum, config.weight_decay, config.warmup_epochs, config.schedule = 0.0, 0.0, 0.0, "constant"
    params = {"fc": {"kernel": np.ones((2, 3), np.float32)},
              "stage1_block1": {"conv1": {"kernel": np.ones(2, np.float32)},
                                "conv2": {"kernel": np.ones(2, np.float32)}}}
    groups = finetune.param_groups(params, config.transfer.freeze, {"fc"})
    assert groups == {"fc": {"kernel": "head"}, "stage1_block1": {"conv1": {"kernel": "frozen"},
                                                                  "conv2": {"kernel": "backbone"}}}
    tx = finetune.finetune_optimizer(config, create_schedule(config, 4), groups)
    updates, _ = tx.update(jax.tree.map(np.ones_like, params), tx.init(params), params)
    lr = config.base_lr * config.batch_size / 256
    np.testing.assert_allclose(updates["stage1_block1"]["conv2"]["kernel"], -lr, rtol=1e-6)
    np.testing.assert_allclose(updates["fc"]["kernel"], -10 * lr, rtol=1e-6)
    np.testing.assert_array_equal(updates["stage1_block1"]["conv1"]["kernel"], 0.0)
    assert isinstance(tx, optax.GradientTransformation)


def blobs(n, num_classes, seed):
    """8x8 grey images: class c is a constant 30 c + 20 plus small noise (clusters in pixel space)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    images = (30 * labels[:, None, None, None] + 20 + rng.integers(0, 6, (n, 8, 8, 1))).astype(np.uint8)
    return ArraySource(images, labels)


def test_cluster_on_separated_blobs_scores_one_and_restores(tmp_path, monkeypatch):
    monkeypatch.setattr(jaxnet.methods, "create_source",
                        lambda config, split: blobs(60, 5, 0 if split == "train" else 1))
    config = get_config()
    config.method, config.num_classes = "cluster", 5
    config.transfer.update(source_workdir="", clusters=5, pca_dim=3, restarts=3)
    final = train(config, tmp_path / "cluster")
    assert final["nmi"] == 1.0 and final["ari"] == 1.0 and final["purity"] == 1.0
    assert final["top1_acc"] == 1.0  # each cluster named after its majority label
    fit = records(tmp_path / "cluster", "train")[0]
    assert fit["nmi"] == 1.0 and fit["top1_acc"] == 1.0
    assert records(tmp_path / "cluster", "test")[0]["nmi"] == 1.0
    eval_file = json.loads(next((tmp_path / "cluster" / "eval").glob("test_step*.json")).read_text())
    assert eval_file["nmi"] == 1.0 and eval_file["purity"] == 1.0
    assert (tmp_path / "cluster" / "cluster_scatter_test.png").stat().st_size > 10_000

    def refit(*args, **kwargs):
        raise AssertionError("a finished clustering must not be refitted")

    monkeypatch.setattr(clustering, "fit_clusters", refit)
    assert train(config, tmp_path / "cluster") == final
    assert evaluate(config, tmp_path / "cluster", report=False)["top1_acc"] == 1.0


def test_kmeans_restarts_and_scores():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 6)) * 20
    labels = np.repeat(np.arange(4), 50)
    x = centres[labels] + rng.normal(size=(200, 6))
    fitted = clustering.fit_clusters(x, 4, pca_dim=2, restarts=4, seed=1)
    assert len(fitted["objectives"]) == 4 and fitted["objective"] == min(fitted["objectives"])
    z = (x - fitted["pca"]["mean"]) @ fitted["pca"]["components"]
    found = np.asarray(clustering.assign(z, fitted["centres"]))
    assert clustering.nmi(found, labels) == 1.0 and clustering.ari(found, labels) == 1.0
    assert clustering.nmi([0, 0, 1, 1], [0, 1, 0, 1]) == 0.0
    assert clustering.purity([0, 0, 0, 1], [0, 0, 1, 1]) == 0.75
    assert clustering.ari([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    np.testing.assert_array_equal(clustering.majority_labels([0, 0, 1, 1, 1], [2, 2, 0, 1, 1], 3, 3),
                                  [2, 1, 1])  # cluster 2 is empty: the most frequent label overall


def test_class_subsets_and_labels_per_class():
    config = get_config()
    config.classes, config.num_classes, config.examples_per_class = (7, 2, 5), 3, 4
    validate_config(config)
    train_split = create_source(config, "train")
    assert np.bincount(train_split.labels).tolist() == [4, 4, 4]
    whole = get_config()
    whole.num_classes = 8  # the synthetic dataset as config.classes sees it: ids 0..7
    everything = create_source(whole, "train")
    test_split = create_source(config, "test")
    full_test = create_source(whole, "test")
    kept = np.isin(full_test.labels, (7, 2, 5))
    np.testing.assert_array_equal(test_split.images, full_test.images[kept])
    np.testing.assert_array_equal(test_split.labels, [{7: 0, 2: 1, 5: 2}[v] for v in full_test.labels[kept]])
    assert len(everything) == 64
    for bad in [dict(classes=(1, 1, 2)), dict(classes=(1, 2)), dict(examples_per_class=-1)]:
        c = get_config()
        c.num_classes = 3
        c.update(bad)
        with pytest.raises(JaxnetError):
            validate_config(c)
    c = get_config()
    c.transfer.nonsense = 1
    with pytest.raises(JaxnetError, match="unknown config.transfer field"):
        validate_config(c)
    c = get_config()
    c.method, c.transfer.source_workdir = "finetune", ""
    with pytest.raises(JaxnetError, match="source_workdir is empty"):
        jaxnet.methods.get_method("finetune").check_config(c)
    c.method = "cluster"
    c.transfer.pool = "max"
    with pytest.raises(JaxnetError, match="pool"):
        cluster.check_config(c)
