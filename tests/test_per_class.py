"""Per-class results: counts, hit rates and confused pairs; 8 sharded devices equal 1 device."""
import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxnet.evaluation.per_class import PerClassMetric


def _one_and_eight(metric, devices, *arrays):
    one = jax.jit(metric.sums)(*(jax.device_put(x, devices[0]) for x in arrays))
    sharding = NamedSharding(Mesh(np.array(devices), ("data",)), P("data"))
    sharded = [jax.device_put(x, sharding) for x in arrays]
    assert len(sharded[0].sharding.device_set) == 8
    eight = jax.jit(metric.sums)(*sharded)
    return jax.tree.map(np.asarray, one), jax.tree.map(np.asarray, eight)


def test_counts_sum_to_totals_on_one_and_eight_devices(devices):
    rng = np.random.default_rng(0)
    num_classes, batch, real = 12, 128, 117  # the last 11 rows are padding
    scores = rng.random((batch, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch).astype(np.int32)
    labels[real:] = 0  # padding rows carry arbitrary labels
    mask = (np.arange(batch) < real).astype(np.float32)
    metric = PerClassMetric(num_classes)
    one, eight = _one_and_eight(metric, devices, scores, labels, mask)
    for key in one:
        np.testing.assert_array_equal(one[key], eight[key], err_msg=key)
        assert np.issubdtype(one[key].dtype, np.integer)

    confusion = one["per_class_confusion"]
    assert confusion.sum() == real
    np.testing.assert_array_equal(confusion.sum(axis=1),
                                  np.bincount(labels[:real], minlength=num_classes))
    pred = scores.argmax(1)
    expected = np.zeros((num_classes, num_classes), int)
    np.add.at(expected, (labels[:real], pred[:real]), 1)
    np.testing.assert_array_equal(confusion, expected)
    top5 = np.argsort(-scores, axis=1)[:, :5]
    hit5 = (top5 == labels[:, None]).any(1)[:real]
    np.testing.assert_array_equal(one["per_class_topk_hits"],
                                  np.bincount(labels[:real], weights=hit5, minlength=num_classes))

    result = metric.finalize(one)
    assert result["num_examples"] == real
    assert sum(c["count"] for c in result["classes"]) == real
    assert result["top1_acc"] == pytest.approx((pred[:real] == labels[:real]).mean())
    assert result["top5_acc"] == pytest.approx(hit5.mean())
    per_class_hits = sum(c["top1_acc"] * c["count"] for c in result["classes"] if c["count"])
    assert per_class_hits == pytest.approx(np.trace(confusion))


def test_hand_case_names_and_most_confused():
    names = ["cat", "dog", "fox"]
    # true -> predicted: cat->cat x2, cat->dog x1, dog->cat x3, dog->dog x1, fox->dog x1
    pairs = [(0, 0), (0, 0), (0, 1), (1, 0), (1, 0), (1, 0), (1, 1), (2, 1)]
    labels = np.array([t for t, _ in pairs], np.int32)
    scores = np.full((len(pairs), 3), 0.1, np.float32)
    scores[np.arange(len(pairs)), [p for _, p in pairs]] = 0.8
    metric = PerClassMetric(3, names, top_pairs=2)
    sums = jax.jit(metric.sums)(scores, labels, np.ones(len(pairs), np.float32))
    result = metric.finalize(jax.tree.map(np.asarray, sums))
    assert [c["count"] for c in result["classes"]] == [3, 4, 1]
    assert [c["top1_acc"] for c in result["classes"]] == pytest.approx([2 / 3, 1 / 4, 0.0])
    assert [c["top5_acc"] for c in result["classes"]] == [1.0, 1.0, 1.0]  # 3 classes: top-3
    assert result["confusion"] == [[2, 1, 0], [3, 1, 0], [0, 1, 0]]
    assert result["most_confused"] == [
        {"true": 1, "true_name": "dog", "pred": 0, "pred_name": "cat", "count": 3,
         "share_of_true": 0.75},
        {"true": 0, "true_name": "cat", "pred": 1, "pred_name": "dog", "count": 1,
         "share_of_true": pytest.approx(1 / 3)}]
    assert result["mean_class_top1_acc"] == pytest.approx((2 / 3 + 1 / 4 + 0) / 3)
    unseen = PerClassMetric(4, names + ["owl"]).finalize(
        {k: np.pad(np.asarray(v), [(0, 1)] * np.ndim(v)) for k, v in sums.items()})
    assert unseen["classes"][3] == {"class": 3, "name": "owl", "count": 0, "top1_acc": None,
                                    "top5_acc": None}
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        PerClassMetric(3, names[:2])
