"""Test protocols and ensembles (jaxnet.evaluation.protocols): crop geometry by hand, view
counts, every example exactly once under every protocol on 1 and 8 devices, invariances, the
eval files and the eval.py flags."""
import io
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest

from jaxnet.data.sources import EncodedSource
from jaxnet.data.transforms import EvalTransform
from jaxnet.evaluation import protocols
from jaxnet.evaluation.evaluator import Evaluator, Predictor
from jaxnet.mesh import create_mesh, replicated
from jaxnet.methods import evaluate, train
from tests.tiny_config import get_config

ROOT = Path(__file__).resolve().parents[1]


def test_crop_boxes_are_the_hand_computed_ones():
    assert protocols.corner_boxes(256, 224) == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
    assert protocols.corner_boxes(32, 28) == [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
    assert protocols.square_boxes(500, 375) == [(0, 0, 375, 375), (62.5, 0, 437.5, 375),
                                                (125, 0, 500, 375)]
    assert protocols.square_boxes(300, 400) == [(0, 0, 300, 300), (0, 50, 300, 350),
                                                (0, 100, 300, 400)]
    assert protocols.scaled(protocols.GOOGLENET_SIDES, 224) == (256, 288, 320, 352)
    assert protocols.scaled(protocols.MULTISCALE_SIDES, 28) == (28, 32, 48, 60, 80)
    assert protocols.aspect_bucket(500, 375) == pytest.approx(4 / 3)
    assert protocols.multiscale_canvas(500, 375, 224) == (853, 640)
    assert protocols.multiscale_canvas(375, 500, 224) == (640, 853)
    assert protocols.multiscale_canvas(400, 400, 224) == (640, 640)


def test_view_stacks_have_the_papers_counts_and_sizes():
    canvas = jnp.zeros((2, 3, 50, 50, 3), jnp.uint8)  # 3 squares at 352 x 32/224 = 50 px
    [stack] = protocols.make_views("googlenet_144", canvas, 32)
    assert stack.shape == (144, 2, 32, 32, 3)
    [stack] = protocols.make_views("googlenet_144", jnp.zeros((2, 28, 28, 1), jnp.uint8), 28)
    assert stack.shape == (48, 2, 28, 28, 1)
    [stack] = protocols.make_views("ten_crop", jnp.zeros((2, 32, 32, 1), jnp.uint8), 28)
    assert stack.shape == (10, 2, 28, 28, 1)
    stacks = protocols.make_views("multiscale", jnp.zeros((2, 80, 60, 3), jnp.uint8), 28)
    assert [s.shape[:4] for s in stacks] == [(2, 2, 37, 28), (2, 2, 43, 32), (2, 2, 64, 48),
                                             (2, 2, 80, 60), (2, 2, 107, 80)]


def test_flip_views_are_the_image_and_its_mirror():
    canvas = jnp.arange(2 * 3 * 4, dtype=jnp.uint8).reshape(2, 3, 4, 1)
    [stack] = protocols.make_views("flip", canvas, 3)
    np.testing.assert_array_equal(np.asarray(stack), np.stack([canvas, canvas[:, :, ::-1]]))


def test_ten_crop_views_are_the_corner_centre_crops_and_their_mirrors():
    canvas = jnp.arange(6 * 6, dtype=jnp.uint8).reshape(1, 6, 6, 1)
    [stack] = protocols.make_views("ten_crop", canvas, 4)
    image = np.asarray(canvas[0, ..., 0])
    want = [image[t:t + 4, l:l + 4] for t, l in [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)]]
    want += [w[:, ::-1] for w in want]
    np.testing.assert_array_equal(np.asarray(stack[:, 0, ..., 0]), np.stack(want))


class Constant:
    """In-memory images of one grey level each, labels 0..9."""

    def __init__(self, n=20, size=8):
        self.images = [np.full((size, size, 1), 20 + 10 * i, np.uint8) for i in range(n)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": np.int32(i % 10)}


def max_net(params, images):
    """A net that ignores position and flips: logits linear in the image's largest pixel."""
    top = images.astype(jnp.float32).max(axis=(1, 2, 3)) / 255.0
    return top[:, None] * params["w"][None] + params["b"][None]


def predictor(mesh, seed=0):
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=10), jnp.float32) * 5,
              "b": jnp.asarray(rng.normal(size=10), jnp.float32)}
    return Predictor(max_net, jax.device_put(params, replicated(mesh)), step=1)


def small_config():
    config = get_config()
    config.image_size, config.crop_padding, config.eval_batch_size = 8, 1, 8
    return config


@pytest.mark.parametrize("protocol", ["flip", "ten_crop", "googlenet_144", "multiscale"])
def test_a_position_and_flip_invariant_net_scores_every_protocol_like_center(protocol, devices):
    config, mesh = small_config(), create_mesh(devices)
    center = Evaluator(Constant(), config, mesh)(predictor(mesh))
    views = Evaluator(Constant(), config, mesh, protocol)(predictor(mesh))
    assert views["num_examples"] == center["num_examples"] == 20
    assert (views["top1_acc"], views["top5_acc"]) == (center["top1_acc"], center["top5_acc"])
    assert views["loss"] == pytest.approx(center["loss"], rel=1e-5)


def jpegs(sizes):
    records = []
    for i, (w, h) in enumerate(sizes):
        rng = np.random.default_rng(i)
        out = io.BytesIO()
        PIL.Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(out, "JPEG")
        records.append({"image": out.getvalue(), "label": i % 10})
    return records


def random_net(params, images):
    x = images.astype(jnp.float32).mean(axis=(1, 2)) / 255.0  # [B, 3]
    return jnp.tanh(x @ params["w"] * 4.0) + 0.1 * jnp.sin(images.astype(jnp.float32).sum((1, 2, 3)))[:, None]


@pytest.mark.parametrize("protocol", ["center", "flip", "ten_crop", "googlenet_144", "multiscale"])
def test_encoded_images_every_example_once_and_equal_on_1_and_8_devices(protocol, devices):
    sizes = [(40, 30), (30, 40), (36, 36), (48, 27), (27, 48), (40, 30), (44, 33), (30, 30),
             (50, 30), (30, 45), (41, 31)]  # buckets 4:3, 3:4, 1:1, 16:9 (incl. 5:3), 9:16, 2:3
    source = EncodedSource(jpegs(sizes), EvalTransform(16, 18), num_workers=0, name="jpegs")
    config = small_config()
    config.image_size, config.channels, config.eval_batch_size = 16, 3, 8
    params = {"w": jnp.asarray(np.random.default_rng(1).normal(size=(3, 10)), jnp.float32)}
    results = []
    for mesh in (create_mesh(devices[:1]), create_mesh(devices)):
        evaluator = Evaluator(source, config, mesh, protocol)
        seen = [b["index"][b["mask"] > 0] for b in evaluator.batches()]
        assert sorted(np.concatenate(seen).tolist()) == list(range(len(sizes)))  # exactly once
        p = Predictor(random_net, jax.device_put(params, replicated(mesh)), step=1)
        results.append(evaluator(p))
        assert evaluator.num_views() == {"center": 1, "flip": 2, "ten_crop": 10, "googlenet_144": 144,
                                         "multiscale": 10}[protocol]
    one, eight = results
    assert one["num_examples"] == eight["num_examples"] == len(sizes)
    assert (one["top1_acc"], one["top5_acc"]) == (eight["top1_acc"], eight["top5_acc"])
    assert one["loss"] == pytest.approx(eight["loss"], rel=1e-5)
    if protocol == "multiscale":
        parts = Evaluator(source, config, create_mesh(devices), protocol).parts
        assert sorted(sorted(i.tolist()) for _, i in parts) == [[0, 5, 6, 10], [1], [2, 7], [3, 8], [4], [9]]


def test_an_ensemble_of_a_model_with_itself_equals_the_model(devices):
    config, mesh = small_config(), create_mesh(devices)
    evaluator = Evaluator(Constant(), config, mesh, "ten_crop")
    p = predictor(mesh)
    alone, twice = evaluator(p), evaluator([p, p])
    assert alone == pytest.approx(twice, rel=1e-6)
    other = evaluator([p, predictor(mesh, seed=1)])
    assert other["loss"] != pytest.approx(alone["loss"], rel=1e-3)  # a real second model counts


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    config = get_config()
    config.num_epochs = 1.0
    train(config, a)
    other = get_config()
    other.num_epochs, other.model.width, other.seed = 1.0, 8, 1  # another architecture
    train(other, b)
    return config, a, b


def test_eval_files_name_protocol_views_and_models(trained):
    config, a, b = trained
    record = evaluate(config, a, protocol="ten_crop", ensemble=[str(b)])
    path = a / "eval" / f"test_ten_crop_ensemble2_{record['key']}_step4.json"  # keyed by its members
    assert record["path"] == str(path) and len(record["key"]) == 8
    saved = json.loads(path.read_text())
    assert saved["options"] == {"members": [{"workdir": str(b), "step": 4}]}
    assert saved["protocol"] == "ten_crop" and saved["num_views"] == 10
    assert saved["models"] == [{"workdir": str(a), "step": 4}, {"workdir": str(b), "step": 4}]
    assert saved["num_examples"] == 64 and saved["seconds"] > 0
    for key in ("loss", "top1_acc", "top5_acc", "top1_err", "top5_err"):
        assert saved[key] == record[key]
    center = json.loads((a / "eval" / "test_step4.json").read_text())  # written by train
    assert center["protocol"] == "center" and center["num_views"] == 1


def test_eval_cli_takes_protocol_and_ensemble(trained):
    _, a, b = trained
    out = subprocess.run([sys.executable, "eval.py", "--config=tests/tiny_config.py", f"--workdir={a}",
                          "--protocol=googlenet_144", f"--ensemble={b}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "googlenet_144, 48 view(s), 2 models" in out.stdout
    assert len(list((a / "eval").glob("test_googlenet_144_ensemble2_*_step4.json"))) == 1
    bad = subprocess.run([sys.executable, "eval.py", "--config=tests/tiny_config.py", f"--workdir={a}",
                          "--protocol=twelve_crop"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "unknown evaluation protocol 'twelve_crop'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_grid_is_the_seeds_table_3_layout(trained, tmp_path):
    from jaxnet.experiments.protocol_grid import grid, markdown

    _, a, b = trained
    rows = grid([str(a), str(b)], ["center", "ten_crop"])
    assert [(r["models"], r["crops"], r["cost"]) for r in rows] == [(1, 1, 1), (1, 10, 10),
                                                                    (2, 1, 2), (2, 10, 20)]
    single = json.loads((a / "eval" / "test_ten_crop_step4.json").read_text())
    assert rows[1]["top5_err"] == single["top5_err"]  # each cell is that evaluation's record
    assert rows[0]["top5_err_change"] == 0 and rows[3]["top5_err_change"] == pytest.approx(
        rows[3]["top5_err"] - rows[0]["top5_err"])
    table = markdown(rows)
    assert table.splitlines()[2].startswith("| 1 | 1 | center | 1 |") and "| base |" in table
    assert len(table.splitlines()) == 6
    # The ensemble rows (softmax of each model's pass averaged on the host) are what the
    # evaluator's own ensemble gives, and their eval files are written as eval.py writes them.
    (pair_path,) = (a / "eval").glob("test_ten_crop_ensemble2_*_step4.json")  # keyed by members
    pair = json.loads(pair_path.read_text())
    assert pair["models"] == [{"workdir": str(a), "step": 4}, {"workdir": str(b), "step": 4}]
    on_device = evaluate(get_config(), a, protocol="ten_crop", ensemble=[str(b)], report=False)
    assert on_device["path"] == str(pair_path)  # the same evaluation: the same file
    assert rows[3]["top5_err"] == on_device["top5_err"] and rows[3]["top1_err"] == on_device["top1_err"]
    assert rows[3]["loss"] == pytest.approx(on_device["loss"], rel=1e-5)
    assert rows[3]["seconds"] == pair["seconds"] > rows[1]["seconds"]  # the two models' passes
    first = grid([str(a)], ["center"], examples=10)
    assert first[0]["num_examples"] == 10


def test_grid_ensemble_metrics_by_hand():
    from jaxnet.experiments.protocol_grid import ensemble_metrics

    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.4, 0.4], [0.1, 0.1, 0.8]])
    m = ensemble_metrics(probs, np.array([0, 2, 1]))  # hit; tie lost to the lower index; 3rd
    assert m["top1_acc"] == pytest.approx(1 / 3) and m["num_examples"] == 3
    assert m["loss"] == pytest.approx(-np.log([0.5, 0.4, 0.1]).mean())
    probs6 = np.full((1, 6), 1 / 6)
    assert ensemble_metrics(probs6, np.array([5]))["top5_acc"] == 0  # ties: index order, as top_k
    assert ensemble_metrics(probs6, np.array([4]))["top5_acc"] == 1
