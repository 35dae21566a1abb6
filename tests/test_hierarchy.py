"""Class hierarchies: WordNet parsing, LCA heights, and the hierarchy metric (1 and 8 devices)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxnet import JaxnetError
from jaxnet.evaluation.hierarchy import (
    VIRTUAL_ROOT,
    ClassTree,
    HierarchyMetric,
    hypernym_path,
    hypernym_paths,
    wordnet_lemmas,
    wordnet_name,
    wordnet_synset,
)

DOG = "n02084071"
DOG_CHAIN = [  # entity -> ... -> dog, along WordNet 3.0's first-listed hypernyms
    ("n00001740", "entity"), ("n00001930", "physical entity"), ("n00002684", "object"),
    ("n00003553", "whole"), ("n00004258", "living thing"), ("n00004475", "organism"),
    ("n00015388", "animal"), ("n01466257", "chordate"), ("n01471682", "vertebrate"),
    ("n01861778", "mammal"), ("n01886756", "placental"), ("n02075296", "carnivore"),
    ("n02083346", "canine"), ("n02084071", "dog")]

# A hand-made tree; "fish" and "tuna" are outside the classes and must not count in heights.
#   root ── animal ── dog(0), cat(1), bird ── sparrow(2); animal ── fish ── tuna ── bluefin
#        └─ vehicle ── car(3)
HAND = {"classes": ["dog", "cat", "sparrow", "car"],
        "parent": {"dog": "animal", "cat": "animal", "bird": "animal", "sparrow": "bird",
                   "fish": "animal", "tuna": "fish", "bluefin": "tuna",
                   "animal": "root", "vehicle": "root", "car": "vehicle"}}
HAND_HEIGHTS = np.array([[0, 2, 2, 3], [2, 0, 2, 3], [2, 2, 0, 3], [3, 3, 3, 0]])


def test_wordnet_dog_chain_and_lemmas():
    assert hypernym_path(DOG) == [w for w, _ in DOG_CHAIN]
    assert [wordnet_name(w) for w, _ in DOG_CHAIN] == [n for _, n in DOG_CHAIN]
    assert wordnet_lemmas(DOG) == ["dog", "domestic dog", "Canis familiaris"]
    assert wordnet_name("n01440764") == "tench"  # ImageNet class 0
    synset = wordnet_synset(DOG)
    assert synset["hypernyms"] == ["n02083346", "n01317541"]  # canine, domestic animal
    assert wordnet_name("n01317541") == "domestic animal"
    assert synset["gloss"].startswith("a member of the genus Canis")


def test_wordnet_multiple_inheritance_and_instance_hypernyms():
    paths = hypernym_paths(DOG)
    assert len(paths) == 2
    assert all(p[0] == "n00001740" and p[-1] == DOG for p in paths)
    assert [w for w, _ in DOG_CHAIN] in paths
    assert any("n01317541" in p for p in paths)
    # `@i`: Hegira is an instance of escape (n00058743).
    assert wordnet_synset("n00060548")["hypernyms"] == ["n00058743"]
    assert hypernym_path("n00060548")[-2:] == ["n00058743", "n00060548"]


def test_wordnet_bad_ids():
    with pytest.raises(JaxnetError, match="not a WordNet noun id"):
        wordnet_synset("dog")
    with pytest.raises(JaxnetError, match="no synset at that offset"):
        wordnet_synset("n02084072")  # one byte into dog's line


def test_wordnet_tree_lca():
    chihuahua, japanese_spaniel, tabby, tench = "n02085620", "n02085782", "n02123045", "n01440764"
    tree = ClassTree.from_wordnet([chihuahua, japanese_spaniel, tabby, tench, DOG])
    heights = tree.lca_height_matrix()
    assert (heights == heights.T).all() and (np.diag(heights) == 0).all()
    assert tree.height[chihuahua] == 0 and tree.height[DOG] == 2  # dog -> toy dog -> chihuahua
    assert heights[0, 1] == 1  # both toy dogs
    assert heights[0, 4] == 2  # a class under another: LCA is dog, height 2
    # Chihuahua vs tabby: carnivore (height 4: carnivore -> canine -> dog -> toy dog ->
    # chihuahua) is a common ancestor, but so is "domestic animal" (dog and domestic cat are
    # both), of height 3 (-> dog -> toy dog -> chihuahua): the lowest one counts.
    assert tree.height["n02075296"] == 4 and tree.height["n01317541"] == 3
    assert {"n02075296", "n01317541"} <= tree.ancestors(tabby) & tree.ancestors(chihuahua)
    assert heights[0, 2] == 3
    assert heights[2, 3] == tree.height["n01471682"]  # tabby vs tench: vertebrate
    assert tree.path_names(0)[:3] == ["entity", "physical entity", "object"]
    assert tree.path_names(0)[-3:] == ["dog", "toy dog", "Chihuahua"]


def test_hand_tree_heights_and_restriction(tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(HAND))
    tree = ClassTree.load(path)
    assert tree.height["animal"] == 2 and tree.height["root"] == 3  # tuna/bluefin not counted
    assert "fish" not in tree.nodes
    np.testing.assert_array_equal(tree.lca_height_matrix(), HAND_HEIGHTS)
    assert tree.path_names(2) == ["root", "animal", "bird", "sparrow"]
    within = tree.within_parent_matrix()
    assert within[0, 1] and within[0, 2] and not within[0, 3] and not within[2, 0]
    tree.save(tmp_path / "again.json")
    again = ClassTree.load(tmp_path / "again.json")
    np.testing.assert_array_equal(again.lca_height_matrix(), HAND_HEIGHTS)


def test_multiple_inheritance_takes_the_lowest_common_ancestor():
    # dog is a canine and a pet; hamster is a rodent and a pet.
    parents = {"dog": ["canine", "pet"], "wolf": "canine", "hamster": ["rodent", "pet"],
               "canine": "animal", "rodent": "animal", "pet": "root", "animal": "root"}
    tree = ClassTree(["dog", "wolf", "hamster"], parents)
    assert tree.height == {"dog": 0, "wolf": 0, "hamster": 0, "canine": 1, "rodent": 1,
                           "pet": 1, "animal": 2, "root": 3}
    heights = tree.lca_height_matrix()
    assert heights[0, 2] == 1  # common ancestors pet (1), animal (2), root (3): pet
    assert heights[1, 2] == 2  # wolf and hamster: animal
    assert heights[0, 1] == 1  # canine
    within = tree.within_parent_matrix()
    assert within[0, 2] and within[0, 1] and not within[1, 2] and within[2, 0]


def test_tree_errors_and_virtual_root(tmp_path):
    with pytest.raises(JaxnetError, match="cycle"):
        ClassTree(["a", "b"], {"a": "x", "b": "x", "x": "y", "y": "x"})
    with pytest.raises(JaxnetError, match="'typo' has no parent"):
        ClassTree(["a", "typo"], {"a": "x"})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(JaxnetError, match="not JSON"):
        ClassTree.load(bad)
    bad.write_text(json.dumps({"classes": ["a"], "parent": {"a": 3}}))
    with pytest.raises(JaxnetError, match="parent of 'a'"):
        ClassTree.load(bad)
    forest = ClassTree(["a", "b", "c"], {"a": "x", "b": "x", "c": "y"})
    assert forest.parents["x"] == [VIRTUAL_ROOT] and forest.parents["y"] == [VIRTUAL_ROOT]
    np.testing.assert_array_equal(forest.lca_height_matrix(), [[0, 1, 2], [1, 0, 2], [2, 2, 0]])
    assert forest.path_names(2) == ["y", "c"]


def test_fashion_mnist_tree():
    tree = ClassTree.builtin("fashion_mnist")
    assert tree.class_names() == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    heights = tree.lca_height_matrix()
    assert heights[0, 6] == 1 and heights[2, 4] == 1  # T-shirt/Shirt; Pullover/Coat
    assert heights[5, 7] == heights[7, 9] == 1  # footwear
    assert heights[0, 2] == 2 and heights[0, 1] == 3 and heights[0, 7] == 4 and heights[8, 5] == 4
    assert tree.path_names(9) == ["fashion item", "footwear", "Ankle boot"]
    with pytest.raises(JaxnetError, match="no built-in class tree"):
        ClassTree.builtin("nope")


def _hand_batch():
    """Rankings per row (most probable first); the last row is padding."""
    rankings = [[3, 1, 0, 2], [1, 0, 2, 3], [0, 2, 1, 3], [0, 1, 2, 3], [1, 0, 2, 3],
                [3, 2, 1, 0]]
    labels = np.array([0, 1, 2, 3, 0, 0], np.int32)
    scores = np.zeros((len(rankings), 4), np.float32)
    for row, ranking in enumerate(rankings):
        scores[row, ranking] = [0.6, 0.25, 0.1, 0.05]
    mask = np.array([1, 1, 1, 1, 1, 0], np.float32)
    return scores, labels, mask


def test_hierarchy_metric_hand_case():
    tree = ClassTree(HAND["classes"], HAND["parent"])
    metric = HierarchyMetric.from_tree(tree, k=2)  # 4 classes: top-2 keeps the min informative
    scores, labels, mask = _hand_batch()
    sums = jax.jit(metric.sums)(scores, labels, mask)
    result = metric.finalize(jax.tree.map(np.asarray, sums))
    # top-1 LCA heights 3, 0, 2, 3, 2; min over top 2: 2, 0, 0, 3, 0.
    assert result["hier_cost_top5"] == pytest.approx(1.0)
    assert result["hier_cost_top1"] == pytest.approx(2.0)
    assert result["num_mistakes"] == 4
    assert result["mistake_severity"] == pytest.approx(2.5)
    assert result["mistake_within_parent"] == pytest.approx(0.25)  # only dog -> cat
    empty = metric.finalize({k: np.zeros_like(v) for k, v in jax.tree.map(np.asarray,
                                                                         sums).items()})
    assert empty["hier_cost_top5"] is None and empty["mistake_severity"] is None


def test_hierarchy_metric_sharded_equals_one_device(devices):
    tree = ClassTree.builtin("fashion_mnist")
    metric = HierarchyMetric.from_tree(tree)
    rng = np.random.default_rng(0)
    scores = rng.random((64, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 64).astype(np.int32)
    mask = (np.arange(64) < 57).astype(np.float32)
    one = jax.jit(metric.sums)(*(jax.device_put(x, devices[0]) for x in (scores, labels, mask)))
    sharding = NamedSharding(Mesh(np.array(devices), ("data",)), P("data"))
    eight = jax.jit(metric.sums)(*(jax.device_put(x, sharding) for x in (scores, labels, mask)))
    for key in one:
        assert int(one[key]) == int(eight[key]), key
    heights = tree.lca_height_matrix()
    top5 = np.argsort(-scores, axis=1)[:57, :5]
    expected = heights[labels[:57, None], top5].min(axis=1).sum()
    assert int(one["hier_cost_top5_sum"]) == expected and int(one["hier_count"]) == 57
    assert jnp.issubdtype(one["hier_count"].dtype, jnp.integer)
