"""Labels by many people: Fleiss' kappa, the majority vote, Dawid-Skene, the consensus CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.evaluation import consensus as cons
from jaxnet.evaluation.multilabel import load_label_lists
from jaxnet.tools import main as jaxnet_main

# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters each, 5 categories.
FLEISS_TABLE = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def _from_table(table):
    """Annotations with rater r giving subject i the r-th rating of its row of counts."""
    per_rater = [[] for _ in range(sum(table[0]))]
    for row in table:
        ratings = [c for c, n in enumerate(row) for _ in range(n)]
        for r, label in enumerate(ratings):
            per_rater[r].append([label])
    return cons.annotations_from_lists(per_rater, len(table[0]))


def test_fleiss_kappa_against_hand_computed_cases():
    # P = 688/1820 = 0.37802, P_e = 4170/19600 = 0.21276, kappa = 0.20993.
    assert cons.fleiss_kappa(_from_table(FLEISS_TABLE)) == pytest.approx(0.20993, abs=1e-5)
    # Two raters on three subjects: agree, agree, disagree -> P = 2/3, P_e = 1/2, kappa = 1/3;
    # a subject with one rating and one with none are left out.
    two = cons.annotations_from_lists([[[0], [1], [0], [1], []], [[0], [1], [1], [], []]], 2)
    assert cons.fleiss_kappa(two) == pytest.approx(1 / 3)
    assert cons.fleiss_kappa(cons.annotations_from_lists([[[0], [1]], [[0], [1]]], 3)) == 1.0
    # Systematic disagreement is below chance: kappa = -1 for two raters always differing.
    assert cons.fleiss_kappa(cons.annotations_from_lists([[[0], [1]], [[1], [0]]], 2)) == -1.0
    assert cons.fleiss_kappa(cons.annotations_from_lists([[[0], []], [[], [1]]], 2)) is None


def test_majority_vote_ties_unannotated_and_lists():
    lists = [[[0], [1], [2], [], [3], [1, 3]],
             [[0], [2], [], [], [1], [3]],
             [[1], [2], [], [], [], []]]
    ann = cons.annotations_from_lists(lists, 4)
    assert ann.per_annotator().tolist() == [5, 4, 2]
    result = cons.majority_vote(ann)
    # example 5: annotator 0 gives two labels (half a vote each), annotator 1 one -> 3 wins.
    assert result.labels == [[0], [2], [2], [], [1, 3], [3]]
    assert result.ties == 1 and result.unannotated == 1
    np.testing.assert_allclose(result.confidence, [2 / 3, 2 / 3, 1, np.nan, 0.5, 0.75])
    # agreement with the consensus: annotator 0 = (1 + 0 + 1 + 0.5 + 0.5 * 0 + 0.5 * 1) / 5
    np.testing.assert_allclose(result.accuracy, [3 / 5, (1 + 1 + 0.5 + 1) / 4, 1 / 2], rtol=1e-6)
    assert cons.label_accuracy(result.labels, np.array([0, 2, 2, 0, 3, 3])) == pytest.approx(
        (1 + 1 + 1 + 0 + 0.5 + 1) / 6)


def _confusion(accuracy, k=10, concentrated=0.7):
    """Right with `accuracy`; a mistake goes to the confusable partner class (k ^ 1) with
    probability `concentrated`, otherwise to any other class."""
    m = np.full((k, k), (1 - accuracy) * (1 - concentrated) / (k - 2))
    for c in range(k):
        m[c, c], m[c, c ^ 1] = accuracy, (1 - accuracy) * concentrated
    return m


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, 10_000)
    confusions = np.stack([_confusion(p) for p in (0.9, 0.8, 0.7, 0.6, 0.35)])
    return truth, confusions, cons.sample_annotations(truth, confusions, seed=1)


def test_dawid_skene_recovers_annotators_and_beats_the_majority(simulated):
    truth, confusions, ann = simulated
    majority, ds = cons.majority_vote(ann), cons.dawid_skene(ann)
    acc_mv, acc_ds = (cons.label_accuracy(r.labels, truth) for r in (majority, ds))
    assert acc_ds >= acc_mv + 0.01, (acc_ds, acc_mv)
    assert acc_ds > 0.93 and ds.converged and ds.ties == 0 and ds.unannotated == 0
    true_acc = np.array([(ann.label[ann.annotator == a] == truth).mean() for a in range(5)])
    assert np.abs(ds.accuracy - true_acc).max() < 0.05, (ds.accuracy, true_acc)
    assert np.abs(ds.confusion - confusions).max() < 0.05
    np.testing.assert_allclose(ds.priors, np.bincount(truth, minlength=10) / len(truth),
                               atol=0.01)
    # The majority's "accuracy" is agreement with itself: the spammer looks far better than 0.35.
    assert majority.accuracy[4] > 0.42


def test_dawid_skene_sparse_with_unannotated_examples():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, 2000)
    confusions = np.stack([_confusion(p, k=4, concentrated=0.5) for p in (0.95, 0.9, 0.85,
                                                                          0.8, 0.6, 0.5)])
    full = cons.sample_annotations(truth, confusions, per_example=3, seed=2)
    keep = full.example >= 100  # nobody annotated the first 100 examples
    ann = cons.Annotations(full.example[keep], full.annotator[keep], full.label[keep],
                           full.weight[keep], 2000, 6, 4)
    assert (ann.example == 100).sum() == 3  # three annotators per example
    ds = cons.dawid_skene(ann)
    assert ds.unannotated == 100 and ds.labels[:100] == [[]] * 100
    assert np.isnan(ds.confidence[:100]).all() and (ds.confidence[100:] > 0.3).all()
    assert cons.label_accuracy(ds.labels[100:], truth[100:]) > 0.9
    assert ds.examples_annotated.sum() == 1900 * 3


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


def test_consensus_cli_end_to_end(tmp_path, capsys):
    a = _write(tmp_path / "a.json", [[0], [1], [2], [], [3], [1, 3]])
    b = _write(tmp_path / "b.json", {"annotator": "bob", "labels": [[0], [2], [], [], [1], [3]]})
    c = _write(tmp_path / "c.json", [[1], [2], [], [], [], []])
    out = tmp_path / "merged" / "consensus.json"
    assert jaxnet_main(["consensus", a, b, c, "--num_classes=4", "--method=majority",
                        f"--out={out}"]) == 0
    assert json.loads(out.read_text()) == [[0], [2], [2], [], [1, 3], [3]]
    assert load_label_lists(out, 6, 4)[4] == [1, 3]  # usable as eval.py --labels_file
    record = json.loads((tmp_path / "merged" / "consensus_agreement.json").read_text())
    assert record["method"] == "majority" and record["ties"] == 1 and record["unannotated"] == 1
    assert [x["file"] for x in record["annotators"]] == [a, b, c]
    assert [x["name"] for x in record["annotators"]] == [None, "bob", None]
    assert [x["examples_annotated"] for x in record["annotators"]] == [5, 4, 2]
    assert record["annotators"][0]["estimated_accuracy"] == pytest.approx(0.6)
    assert record["confidence"][3] is None and record["confidence"][4] == 0.5
    assert isinstance(record["fleiss_kappa"], float)
    assert sorted(p.name for p in (tmp_path / "merged").iterdir()) == [
        "consensus.json", "consensus_agreement.json"]  # no temporary file left behind

    assert jaxnet_main(["consensus", a, b, c, "--num_classes=4", f"--out={out}"]) == 0
    record = json.loads((tmp_path / "merged" / "consensus_agreement.json").read_text())
    assert record["method"] == "dawid_skene" and record["iterations"] >= 2
    assert len(record["annotators"][1]["confusion"]) == 4
    assert "EM iteration" in capsys.readouterr().out


@pytest.mark.parametrize("files, flags, message", [
    ([[[0], [1]], [[0]]], [], "has 1 label lists but"),
    ([[[0], [9]]], [], "entry 1 has label 9, outside [0, 4)"),
    ([[[0], "x"]], [], "entry 1 is \"x\", not a list"),
    ([[[0], [1]]], ["--num_examples=3"], "2 label lists, but the split has 3"),
    (["{not json"], [], "is not JSON"),
    ([{"annotator": "x"}], [], "expected a JSON list"),
    ([[[0], [1]]], ["--num_classes=0"], "--num_classes=0: must be at least 1"),
    ([[[0], [1]]], ["--out=merged.txt"], "must end in .json"),
])
def test_consensus_cli_one_line_errors(tmp_path, capsys, files, flags, message):
    paths = []
    for i, obj in enumerate(files):
        path = tmp_path / f"in{i}.json"
        path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
        paths.append(str(path))
    defaults = {"--num_classes": "--num_classes=4", "--out": f"--out={tmp_path / 'o.json'}"}
    for flag in flags:
        defaults[flag.split("=")[0]] = flag
    argv = ["consensus", *paths, *defaults.values(), *[f for f in flags if f.split("=")[0]
                                                       not in defaults]]
    assert jaxnet_main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.json").exists()


def test_consensus_cli_missing_file_from_the_shell(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jaxnet", "consensus", str(tmp_path / "no.json"),
                           "--num_classes=3", f"--out={tmp_path / 'o.json'}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot read labels file {tmp_path / 'no.json'} (No such file or directory)"]


def test_annotations_reject_bad_indices():
    with pytest.raises(JaxnetError, match="label index outside"):
        cons.Annotations(np.array([0], np.int32), np.array([0], np.int32),
                         np.array([5], np.int32), np.ones(1, np.float32), 1, 1, 5)
    with pytest.raises(JaxnetError, match="unknown consensus method"):
        cons.consensus(cons.annotations_from_lists([[[0]]], 2), "vote")


def test_simulated_labelling_pool_and_candidate_cleaning():
    from jaxnet.experiments.labelling import annotator_pool, cleaning, cost_to

    # A network that confuses class 0 with 1 (and never 0 with 2): annotators do the same.
    model = np.array([[80, 20, 0], [10, 90, 0], [1, 1, 98]])
    pool = annotator_pool(model, accuracies=(0.9, 0.6))
    np.testing.assert_allclose(pool.sum(axis=-1), 1.0)
    np.testing.assert_allclose(pool[0, 0], [0.9, 0.1, 0.0])
    np.testing.assert_allclose(pool[1, 2], [0.2, 0.2, 0.6])
    np.testing.assert_allclose(pool[2], np.full((3, 3), 1 / 3))  # the spammer
    truth = np.random.default_rng(0).integers(0, 3, 3000)
    rows = cleaning(truth, annotator_pool(model, accuracies=(0.95, 0.9, 0.85, 0.8)), model,
                    votes=(1, 3, 5))
    assert [r["votes"] for r in rows] == [1, 3, 5]
    assert rows[0]["precision"] < rows[1]["precision"] < rows[2]["precision"]
    assert rows[2]["precision"] > 0.8 and rows[2]["recall"] > 0.9
    curve = {"per_image": [1, 2, 3], "majority": [0.9, 0.95, 0.991], "dawid_skene": [0.9, 0.99, 1]}
    assert cost_to(curve, "majority", 100) == (3, 300)
    assert cost_to(curve, "dawid_skene", 100) == (2, 200)
    assert cost_to({"per_image": [1], "majority": [0.5]}, "majority", 10) is None


def test_consensus_cli_merges_page_exports_over_the_reviewed_examples(tmp_path, capsys):
    """Three people reviewed examples 1-3 of a page (the rest carry the page's labels): only
    the reviewed ones are judgements; the others keep their labels and are counted."""
    base = [[0], [1], [2], [3], [], [1]]

    def export(name, changes):
        labels = [list(x) for x in base]
        for i, v in changes.items():
            labels[i] = v
        return _write(tmp_path / f"marks-{name}.json",
                      {"annotator": name, "reviewed": [1, 2, 3], "labels": labels})

    files = [export("ada", {1: [2]}), export("bo", {1: [2], 2: [0]}), export("cy", {})]
    out = tmp_path / "round1.json"
    assert jaxnet_main(["consensus", *files, "--num_classes=4", "--method=majority",
                        f"--out={out}"]) == 0
    assert json.loads(out.read_text()) == [[0], [2], [2], [3], [], [1]]
    record = json.loads((tmp_path / "round1_agreement.json").read_text())
    assert record["carried_over"] == 2 and record["unannotated"] == 1  # 0 and 5; 4 is []
    assert [a["examples_annotated"] for a in record["annotators"]] == [3, 3, 3]
    assert [a["name"] for a in record["annotators"]] == ["ada", "bo", "cy"]
    assert [a["estimated_accuracy"] for a in record["annotators"]] == pytest.approx(
        [1, 2 / 3, 2 / 3])
    assert record["confidence"][0] is None and record["confidence"][1] == pytest.approx(2 / 3, abs=1e-5)
    # By hand over the reviewed examples: P_i = 1/3, 1/3, 1 -> P = 5/9; ratings of class 2, 3,
    # 1, 0: 4, 3, 1, 1 of 9 -> P_e = 27/81 = 1/3; kappa = (5/9 - 1/3) / (2/3) = 1/3.
    assert record["fleiss_kappa"] == pytest.approx(1 / 3, abs=1e-6)
    bad = _write(tmp_path / "bad.json", {"annotator": "x", "reviewed": [9], "labels": base})
    assert jaxnet_main(["consensus", bad, "--num_classes=4", f"--out={out}"]) == 1
    assert "'reviewed' must list example indices in [0, 6)" in capsys.readouterr().err
