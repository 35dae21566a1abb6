"""ReaL (multi-label truth): the scorer on a hand-made case, 1 vs 8 devices, bad files."""
import json

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxnet import JaxnetError
from jaxnet.evaluation.multilabel import RealMetric, label_table, load_label_lists

LISTS = [[0], [], [1, 2], [3], [0, 4], [2]]
TOP1 = [0, 1, 2, 2, 4, 0]  # counted: 0, 2, 3, 4, 5 (1 is empty); hits: 0, 2, 4


def _batch(order):
    """Rows in `order` (split positions), padded to 8 with masked rows of bogus index."""
    index = np.array(list(order) + [-5] * (8 - len(order)), np.int32)
    scores = np.full((8, 5), 0.1, np.float32)
    for row, i in enumerate(order):
        scores[row, TOP1[i]] = 0.9
    mask = (np.arange(8) < len(order)).astype(np.float32)
    labels = np.zeros(8, np.int32)
    return scores, labels, mask, index


def test_hand_case():
    metric = RealMetric(LISTS)
    np.testing.assert_array_equal(metric.table[:3], [[0, -1], [-1, -1], [1, 2]])
    totals = None
    for order in ([3, 0, 5], [1, 4, 2]):  # two batches, shuffled
        sums = jax.jit(metric.sums)(*_batch(order))
        totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
    result = metric.finalize(jax.tree.map(np.asarray, totals))
    assert result == {"real_top1_acc": pytest.approx(0.6), "real_num_examples": 5}


def test_sharded_equals_one_device(devices):
    rng = np.random.default_rng(0)
    n, c = 200, 9
    lists = [sorted(set(rng.integers(0, c, rng.integers(0, 4)).tolist())) for _ in range(n)]
    metric = RealMetric(lists)
    index = rng.permutation(n)[:64].astype(np.int32)
    scores = rng.random((64, c)).astype(np.float32)
    mask = (np.arange(64) < 60).astype(np.float32)
    labels = np.zeros(64, np.int32)
    arrays = (scores, labels, mask, index)
    one = jax.jit(metric.sums)(*(jax.device_put(x, devices[0]) for x in arrays))
    sharding = NamedSharding(Mesh(np.array(devices), ("data",)), P("data"))
    eight = jax.jit(metric.sums)(*(jax.device_put(x, sharding) for x in arrays))
    top1 = scores.argmax(1)
    counted = [i for i in range(60) if lists[index[i]]]
    hits = sum(top1[i] in lists[index[i]] for i in counted)
    for sums in (one, eight):
        assert int(sums["real_count"]) == len(counted) and int(sums["real_hits"]) == hits


@pytest.mark.parametrize("content, message", [
    ("[[0], [1]", "is not JSON"),
    ('{"a": 1}', "expected a JSON list of label lists, got dict"),
    ("[[0], [1]]", "2 label lists, but the split has 3 examples"),
    ("[[0], 1, [2]]", "entry 1 is 1, not a list of labels"),
    ("[[0], [1.5], [2]]", "entry 1 has label 1.5, not an integer"),
    ('[[0], ["1"], [2]]', 'entry 1 has label "1", not an integer'),
    ("[[0], [true], [2]]", "entry 1 has label true, not an integer"),
    ("[[0], [1], [5]]", r"entry 2 has label 5, outside \[0, 5\)"),
    ("[[0], [-1], [2]]", "entry 1 has label -1, outside"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "labels.json"
    path.write_text(content)
    with pytest.raises(JaxnetError, match=message) as info:
        load_label_lists(path, 3, 5)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_good_file(tmp_path):
    path = tmp_path / "real.json"
    path.write_text(json.dumps([[1, 1, 0], [], [4]]))
    assert load_label_lists(path, 3, 5) == [[1, 0], [], [4]]
    with pytest.raises(JaxnetError, match="cannot read labels file"):
        load_label_lists(tmp_path / "missing.json", 3, 5)
    np.testing.assert_array_equal(label_table([[], []]), [[-1], [-1]])
    assert RealMetric.from_file(path, 3, 5).table.shape == (3, 2)
