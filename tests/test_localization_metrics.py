"""IoU, the ILSVRC localization rule and mask IoU on hand-made cases; the evaluator's box and
mask sums exactly once over a split on 1 and 8 devices."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.data.scenes import INK
from jaxnet.data.sources import create_source
from jaxnet.evaluation import localization as loc
from jaxnet.evaluation.evaluator import Evaluator, Predictor
from jaxnet.mesh import create_mesh
from tests.test_scenes import scene_config


def test_box_iou_by_hand():
    a = jnp.array([0.0, 0.0, 0.5, 0.5])
    others = jnp.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75],
                        [0.5, 0.5, 1.0, 1.0],  # touching corners
                        [0.0, 0.0, 0.5, 1.0]])
    np.testing.assert_allclose(jax.jit(loc.box_iou)(a, others), [1.0, 0.0625 / 0.4375, 0.0, 0.5],
                               rtol=1e-6)
    assert float(jax.jit(loc.box_iou)(jnp.zeros(4), jnp.zeros(4))) == 0.0  # empty: 0, not NaN


def test_the_ilsvrc_rule_needs_the_class_and_iou_at_least_half():
    true_boxes = jnp.array([[[0.0, 0.0, 0.5, 0.5]]] * 4)
    true_labels = jnp.array([[1], [1], [1], [1]])
    labels = jnp.array([1, 1, 1, 1])
    good, half, poor = [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.5, 1.01]
    boxes = np.zeros((4, 6, 4), np.float32)
    scores = np.zeros((4, 6), np.float32)
    scores[0, 1], boxes[0, 1] = 5, good  # right class, right box: right at top-1
    scores[1, 1], boxes[1, 1] = 5, poor  # right class, IoU just under 0.5: wrong
    scores[2, 2], scores[2, 1] = 5, 4  # wrong top-1 class with a perfect box; class 1 second,
    boxes[2, 2], boxes[2, 1] = good, half  # with IoU exactly 0.5: right at top-5 only
    scores[3, 1], boxes[3, 1] = 5, half  # IoU 0.5 counts
    s = jax.jit(loc.box_sums)(jnp.asarray(scores), jnp.asarray(boxes), true_boxes, true_labels, labels,
                     jnp.array([1.0, 1.0, 1.0, 0.0]))  # the last row is padding
    assert float(s["loc_correct1"]) == 1 and float(s["loc_correct5"]) == 2
    assert float(s["class_right"]) == 2 and float(s["iou50_and_class"]) == 1
    assert float(s["box_iou"]) == pytest.approx(1.0 + 0.25 / 0.505 + 1.0)  # top-1 boxes
    m = loc.finalize_boxes({**jax_to_np(s), "count": 3.0})
    assert m["loc_err"] == pytest.approx(2 / 3) and m["loc_err_top5"] == pytest.approx(1 / 3)
    assert m["iou50_given_class"] == pytest.approx(0.5)


def test_a_guess_may_match_any_true_object_of_its_class():
    true_boxes = jnp.array([[[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0]]])
    hits = jax.jit(loc.guess_hits)(jnp.array([[3, 4]]), jnp.array([[[0.5, 0.5, 1.0, 1.0]] * 2]), true_boxes,
                          jnp.array([[4, 3]]))
    np.testing.assert_array_equal(hits, [[1.0, 0.0]])  # class 3's box is the second object's
    none = jax.jit(loc.guess_hits)(jnp.array([[3]]), jnp.array([[[0.0, 0.0, 1.0, 1.0]]]),
                          jnp.array([[[0.0, 0.0, 1.0, 1.0]]]), jnp.array([[-1]]))
    assert float(none[0, 0]) == 0.0  # no object: nothing to match


def jax_to_np(tree):
    return {k: np.asarray(v) for k, v in tree.items()}


def test_mask_iou_by_hand():
    truth = np.array([[[0, 1], [1, 1]], [[0, 0], [2, 2]]])  # 2 images, 2x2
    pred = np.array([[[0, 1], [0, 1]], [[0, 0], [2, 0]]])
    scores = np.eye(4)[pred]  # one-hot scores over 4 classes (class 3 never appears)
    s = jax_to_np(jax.jit(loc.mask_sums)(jnp.asarray(scores), jnp.asarray(truth), jnp.ones(2)))
    # background: truth {(0,0,0), (1,0,0), (1,0,1)}, pred adds (0,1,0) and (1,1,1): 3 / 5
    # class 1: truth 3 pixels, pred 2 of them: 2 / 3; class 2: truth 2, pred 1: 1 / 2
    m = loc.finalize_masks(s)
    np.testing.assert_allclose([c["iou"] for c in m["per_class_iou"][:3]], [3 / 5, 2 / 3, 1 / 2])
    assert m["per_class_iou"][3]["iou"] is None  # absent everywhere: not averaged
    assert m["miou"] == pytest.approx((3 / 5 + 2 / 3 + 1 / 2) / 3)
    assert m["pixel_acc"] == pytest.approx(6 / 8)
    padded = jax.jit(loc.mask_sums)(jnp.asarray(scores), jnp.asarray(truth), jnp.array([1.0, 0.0]))
    assert float(padded["pixel_count"]) == 4 and float(padded["pixel_correct"]) == 3


def bright_box_predictor(num_classes=10):
    """Boxes and masks read off the image: the box of the pixels above INK (for every class),
    class 3 first; mask: class 3 (index 4) where bright, background elsewhere."""
    def predict(params, images):
        bright = images[..., 0] > INK
        h, w = bright.shape[1:]
        rows, cols = bright.any(2), bright.any(1)
        first = lambda a: jnp.argmax(a, 1)  # noqa: E731
        last = lambda a: a.shape[1] - jnp.argmax(a[:, ::-1], 1)  # noqa: E731
        box = jnp.stack([first(rows) / h, first(cols) / w, last(rows) / h, last(cols) / w], -1)
        logits = jnp.broadcast_to(-jnp.arange(num_classes, dtype=jnp.float32) + 10 * (jnp.arange(num_classes) == 3),
                                  (len(images), num_classes)) + params
        masks = jnp.stack([jnp.full(bright.shape, 0.5)] * 4 + [bright.astype(jnp.float32)]
                          + [jnp.zeros(bright.shape)] * 6, -1)
        return {"logits": logits, "boxes": jnp.broadcast_to(box[:, None], (len(images), num_classes, 4)),
                "masks": masks}
    return predict


def expected(source):
    """The bright_box_predictor's metrics, in numpy."""
    bright = source.images[..., 0] > INK
    hits1 = hits5 = ious = 0.0
    inter, union = np.zeros(11), np.zeros(11)
    for i in range(len(source)):
        rows, cols = np.flatnonzero(bright[i].any(1)), np.flatnonzero(bright[i].any(0))
        box = np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]) / 32
        iou = float(loc.box_iou(jnp.asarray(box), jnp.asarray(source.boxes[i, 0])))
        label = source.labels[i]
        hits1 += label == 3 and iou >= 0.5
        hits5 += label in (3, 0, 1, 2, 4) and iou >= 0.5
        ious += iou
        pred = np.where(bright[i], 4, 0)
        for c in range(11):
            inter[c] += ((pred == c) & (source.masks[i] == c)).sum()
            union[c] += ((pred == c) | (source.masks[i] == c)).sum()
    n = len(source)
    iou = inter[union > 0] / union[union > 0]
    return {"loc_err": 1 - hits1 / n, "loc_err_top5": 1 - hits5 / n, "mean_iou": ious / n,
            "miou": iou.mean()}


def test_box_and_mask_sums_exactly_once_on_1_and_8_devices(devices):
    config = scene_config(texture=0.0)
    config.eval_batch_size = 8  # 20 test scenes: 2 full batches and one padded
    source = create_source(config, "test")
    want = expected(source)
    for mesh in (create_mesh(devices[:1]), create_mesh(devices)):
        predictor = Predictor(bright_box_predictor(), jnp.zeros(()), 0, task="localize")
        got = Evaluator(source, config, mesh)(predictor)
        assert got["num_examples"] == 20
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-6), key
        assert got["top1_acc"] == pytest.approx(np.mean(source.labels == 3))
    with pytest.raises(JaxnetError, match="center"):
        Evaluator(source, config, create_mesh(devices[:1]), protocol="ten_crop")(predictor)
