"""The localize and segment methods on tiny backbones and tiny scenes: trained by
jaxnet.methods.train, evaluated by evaluate() with the same numbers, started from another
network with frozen layers, and the task heads on every backbone family."""
import json
import os

import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.evaluation import localization
from jaxnet.methods import evaluate, train
from jaxnet.models import create_model
from jaxnet.transfer import tasks
from jaxnet.training.state import build_model, init_variables
from jaxnet.transfer.source import read_workdir_variables, write_workdir
from tests.test_scenes import scene_config


def task_config(method, **scenes):
    c = scene_config(**scenes)
    c.method = method
    c.image_size = c.scenes.canvas = 16
    c.model = ml_collections.ConfigDict({"name": "small_cnn", "features": (4, 4, 8)})  # cheap to compile
    c.num_epochs = 1.0  # 3 steps of 16
    c.eval_every_epochs = 1.0
    c.eval_batch_size = 8
    c.task.seg_width = 8
    return c


def source_workdir(config, path):
    """A network workdir of `config`'s backbone with random weights: a source to start from."""
    model = build_model(config)
    variables = jax.jit(lambda r: init_variables(r, model, (1, 16, 16, 1)))(jax.random.PRNGKey(1))
    network = config.copy_and_resolve_references()
    network.method = "network"
    write_workdir(path, network, variables)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A localize run started from a source network with conv1 frozen, stopped after 2 steps
    and resumed to its end (3 steps), and a segment run from scratch; with final metrics."""
    out = {}
    for method in ("localize", "segment"):
        workdir = tmp_path_factory.mktemp(method)
        config = task_config(method, objects=1 if method == "localize" else 2)
        if method == "localize":
            config.transfer.source_workdir = str(source_workdir(config, workdir.parent / "source"))
            config.transfer.freeze = "^conv1/"
            assert train(config, workdir, stop_at_step=2) is None
        out[method] = (config, workdir, train(config, workdir))
    return out


def test_localize_reports_the_ilsvrc_metrics_and_eval_agrees(trained):
    config, workdir, final = trained["localize"]
    for key in ("loc_err", "loc_err_top5", "mean_iou", "iou50_given_class", "top1_err"):
        assert 0.0 <= final[key] <= 1.0, key
    assert final["loc_err"] >= final["top1_err"]  # a wrong class is a wrong localization
    assert final["loc_err"] >= final["loc_err_top5"] and final["num_examples"] == 20
    record = evaluate(config, workdir)
    for key in ("loc_err", "loc_err_top5", "mean_iou", "top1_acc"):
        assert record[key] == pytest.approx(final[key], abs=1e-6), key
    assert os.path.getsize(record["files"]["localize_failures"]) > 1000  # boxes drawn
    saved = json.loads(open(record["path"]).read())
    assert saved["loc_err"] == record["loc_err"] and "per_class_iou" not in saved
    train_logs = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert any("box_loss" in r for r in train_logs if r["split"] == "train")


def test_segment_reports_miou_and_the_per_class_file(trained):
    config, workdir, final = trained["segment"]
    assert 0.0 <= final["miou"] <= 1.0 and 0.0 <= final["pixel_acc"] <= 1.0
    record = evaluate(config, workdir)
    assert record["miou"] == pytest.approx(final["miou"], abs=1e-6)
    per_class = json.loads(open(record["files"]["per_class"]).read())
    ious = per_class["per_class_iou"]
    assert len(ious) == 11 and ious[0]["class"] == "background"
    present = [c["iou"] for c in ious if c["iou"] is not None]
    assert record["miou"] == pytest.approx(np.mean(present))
    picture = record["files"]["segment_failures"]  # masks over the most confident failures
    assert picture.endswith("_mask_failures.png")
    assert "Segmentation: the most confident failures" in open(record["files"]["page"]).read()
    assert os.path.getsize(picture) > 1000


def test_whole_image_methods_refuse_crop_protocols(trained):
    config, workdir, _ = trained["segment"]
    with pytest.raises(JaxnetError, match="whole images.*ten_crop would move"):
        evaluate(config, workdir, protocol="ten_crop", report=False)
    with pytest.raises(JaxnetError, match="an ensemble"):
        evaluate(config, workdir, ensemble=[workdir], report=False)


def bright_pixels_net(params, images):
    """A mirror-equivariant net: the box and mask of the pixels above 128, classes by their count."""
    bright = images[..., 0] > 128  # [B, H, W]
    h, w = bright.shape[1:]

    def span(any_of, n):  # first index, last index + 1 of the True entries, over n
        idx = jnp.arange(n)
        return (jnp.min(jnp.where(any_of, idx, n), -1) / n, (jnp.max(jnp.where(any_of, idx, -1), -1) + 1) / n)

    (ymin, ymax), (xmin, xmax) = span(bright.any(2), h), span(bright.any(1), w)
    box = jnp.stack([ymin, xmin, ymax, xmax], -1)
    count = bright.sum((1, 2)).astype(jnp.float32)
    return {"logits": jnp.stack([count, -count, 0.5 * count], -1),
            "boxes": jnp.broadcast_to(box[:, None], box.shape[:1] + (3, 4)),
            "masks": 5.0 * jnp.stack([~bright, bright], -1).astype(jnp.float32)}


def test_flip_averages_with_the_mirror_image_mirrored_back():
    np.testing.assert_allclose(localization.mirror_boxes(jnp.array([[0.1, 0.0, 0.5, 0.25]])),
                               [[0.1, 0.75, 0.5, 1.0]])
    images = np.zeros((2, 8, 8, 1), np.uint8)
    images[0, 1:4, 0:3] = 255  # a blob at the left edge
    images[1, 2:7, 5:7] = 200
    images = jnp.asarray(images)
    straight = bright_pixels_net(None, images)
    np.testing.assert_allclose(straight["boxes"][:, 0], [[1 / 8, 0, 4 / 8, 3 / 8],
                                                        [2 / 8, 5 / 8, 7 / 8, 7 / 8]])
    flipped = localization.mirrored_outputs(bright_pixels_net, None, images)
    np.testing.assert_allclose(flipped["boxes"], straight["boxes"], atol=1e-6)  # equivariant: unchanged
    np.testing.assert_allclose(flipped["logits"], jax.nn.log_softmax(straight["logits"]), atol=1e-5)
    np.testing.assert_allclose(flipped["masks"], jax.nn.log_softmax(straight["masks"]), atol=1e-5)

    def blind(params, images):  # the same box whatever the image: the mirror's comes back mirrored
        return {"logits": jnp.zeros((images.shape[0], 3)),
                "boxes": jnp.broadcast_to(jnp.array([0.0, 0.0, 0.5, 0.25]), (images.shape[0], 3, 4))}
    np.testing.assert_allclose(localization.mirrored_outputs(blind, None, images)["boxes"][0, 0],
                               [0.0, 0.375, 0.5, 0.625])


def test_flip_protocol_evaluates_boxes_and_masks(trained):
    for method in ("localize", "segment"):
        config, workdir, _ = trained[method]
        record = evaluate(config, workdir, protocol="flip", report=False)
        assert (record["protocol"], record["num_views"], record["num_examples"]) == ("flip", 2, 20)
        center = evaluate(config, workdir, report=False)
        assert record["loss"] != center["loss"]  # the mirrored view counts
        for key in ("loc_err", "mean_iou") if method == "localize" else ("miou", "pixel_acc"):
            assert 0.0 <= record[key] <= 1.0, key


def test_the_frozen_layers_keep_the_source_and_the_run_resumed(trained):
    config, workdir, _ = trained["localize"]
    before = read_workdir_variables(config.transfer.source_workdir)[1]["params"]
    after = read_workdir_variables(workdir)[1]["params"]
    np.testing.assert_array_equal(after["conv1"]["kernel"], before["conv1"]["kernel"])
    assert not np.array_equal(after["conv2"]["kernel"], before["conv2"]["kernel"])
    assert tasks.HEAD in after
    steps = [json.loads(x)["step"] for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert 2 in steps and max(steps) == 3  # stopped at step 2 (logged), resumed to the end


def test_localize_needs_one_object_and_boxes():
    with pytest.raises(JaxnetError, match="objects"):
        train(task_config("localize", objects=2), "/nonexistent/never")
    config = task_config("segment")
    config.dataset = "fashion_mnist"
    with pytest.raises(JaxnetError, match="needs a dataset with masks"):
        train(config, "/nonexistent/never")


@pytest.mark.parametrize("name,options,size", [
    ("resnet18", {"width": 4, "stage_sizes": (1, 1, 1, 1)}, 64),
    ("cifar_resnet20", {}, 32),
    ("small_cnn", {}, 32),
    ("alexnet_onegpu", {}, 96),
])
def test_heads_on_every_backbone_family(name, options, size):
    backbone = create_model(name, num_classes=10, **options)
    for task in tasks.TASKS:
        model = tasks.TaskModel(backbone, task, 10, seg_levels=2, seg_width=4)
        x = jnp.zeros((2, size, size, 3))
        variables = jax.eval_shape(lambda r: model.init({"params": r, "dropout": r}, x),
                                   jax.random.PRNGKey(0))
        out = jax.eval_shape(lambda v: model.apply(v, x), variables)
        assert out["logits"].shape == (2, 10)
        if task == "localize":
            assert out["boxes"].shape == (2, 10, 4)
        else:
            assert out["masks"].shape == (2, size, size, 11)
        assert tasks.HEAD in variables["params"] and model.head_modules(x.shape) >= {tasks.HEAD}
