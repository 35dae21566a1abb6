"""Labelling simulated, measured: ImageNet's "several workers per image, keep the consensus" on
Fashion-MNIST's test split.

The network is the quickstart's recipe as the test-protocol section trains it (configs/
augmentation.py:crop_flip, ResNet-10, seed 0: `OUT/runs/evaluation_grid/seed0`, reused when that
section ran first). Its test-split confusion matrix shapes the simulated annotators' mistakes: an
annotator with accuracy p labels an image of class c correctly with probability p, and otherwise
as the network confuses c (shirts are called T-shirts, not bags). The pool runs from careful to
careless, plus a spammer who answers uniformly at random. Measured:

1. consensus label accuracy against the number of annotators per image (each image labelled by
   that many annotators of the pool, drawn at random), for the majority vote and Dawid-Skene
   (jaxnet.evaluation.consensus), and the annotations needed to reach 99% label accuracy;
2. ImageNet's candidate cleaning in miniature: per class, a pool of candidates at 10% precision
   (the rest drawn from the other classes as the network confuses them with the query class, as
   image search returns look-alikes), each shown to k annotators asking "is this a <class>?",
   kept on a majority of yes votes: the kept set's precision and recall against k;
3. the network re-scored (eval.py --labels_file) against the consensus of three annotators per
   image: how far its measured top-1 moves from the one against the dataset's labels.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxnet import files
from jaxnet.evaluation import consensus as cons
from jaxnet.experiments import evaluation_grid, plots
from jaxnet.experiments.context import Context, Section
from jaxnet.experiments.hardware import hardware

ACCURACIES = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6)  # careful -> careless; + a spammer
TARGET = 0.99
CLEANING_VOTES = (1, 3, 5, 7, 9)
RESCORE_ANNOTATORS = 3
PAPER = ("ImageNet (Deng 2009): candidates from image search are about 10% accurate; each is "
         "shown to several Mechanical Turk workers and kept on a consensus")


def settings(quick: bool) -> dict:
    return {"repeats": 2 if quick else 3}  # the network is the test-protocol section's


def annotator_pool(model_confusion, accuracies=ACCURACIES, spammer: bool = True) -> np.ndarray:
    """[A, K, K] (true class, given label): accuracy p on the diagonal, the rest spread as the
    model's mistakes for that class (uniform over the others where it made none); the spammer's
    rows are uniform."""
    counts = np.asarray(model_confusion, np.float64)
    k = counts.shape[0]
    off = counts * (1 - np.eye(k))
    rows = off.sum(axis=1, keepdims=True)
    errors = np.where(rows > 0, off / np.where(rows > 0, rows, 1), (1 - np.eye(k)) / (k - 1))
    pool = [p * np.eye(k) + (1 - p) * errors for p in accuracies]
    if spammer:
        pool.append(np.full((k, k), 1.0 / k))
    return np.stack(pool)


def accuracy_curve(truth, pool, repeats: int = 1, seed: int = 0) -> dict:
    """Consensus label accuracy per annotators-per-image (1..A) and method, mean over repeats."""
    per_image = list(range(1, len(pool) + 1))
    out = {"per_image": per_image, "majority": [], "dawid_skene": []}
    for n in per_image:
        scores = {m: [] for m in cons.METHODS}
        for r in range(repeats):
            ann = cons.sample_annotations(truth, pool, per_example=n, seed=seed + 100 * n + r)
            for method in cons.METHODS:
                scores[method].append(cons.label_accuracy(cons.consensus(ann, method).labels,
                                                          truth))
        for method in cons.METHODS:
            out[method].append(float(np.mean(scores[method])))
    return out


def cost_to(curve: dict, method: str, num_images: int, target: float = TARGET):
    """(annotators per image, annotations) of the first point at `target` accuracy, or None."""
    for n, acc in zip(curve["per_image"], curve[method]):
        if acc >= target:
            return n, n * num_images
    return None


def cleaning(truth, pool, model_confusion, votes=CLEANING_VOTES, precision: float = 0.10,
             seed: int = 0) -> list:
    """ImageNet's candidate cleaning: per class q, every image of q plus (1/precision - 1) times
    as many negatives drawn from the other classes in proportion to how often the network
    predicts q for them (+1 smoothing); each candidate asked "is this a q?" of k distinct
    annotators, kept when more than half say yes. Rows {votes, precision, recall, kept}."""
    rng = np.random.default_rng(seed)
    truth = np.asarray(truth)
    k_classes, a_count = pool.shape[1], pool.shape[0]
    conf = np.asarray(model_confusion, np.float64) + 1.0
    cand_true, cand_query = [], []
    for q in range(k_classes):
        pos = np.flatnonzero(truth == q)
        weights = np.where(truth == q, 0.0, conf[truth, q])
        neg = rng.choice(len(truth), size=round(len(pos) * (1 / precision - 1)),
                         p=weights / weights.sum())
        cand_true.append(truth[np.concatenate([pos, neg])])
        cand_query.append(np.full(len(pos) + len(neg), q))
    cand_true, cand_query = np.concatenate(cand_true), np.concatenate(cand_query)
    positive = cand_true == cand_query
    rows = []
    for k in votes:
        who = np.argsort(rng.random((len(cand_true), a_count)), axis=1)[:, :min(k, a_count)]
        p_yes = pool[who, cand_true[:, None], cand_query[:, None]]  # [C, k]
        yes = (rng.random(p_yes.shape) < p_yes).sum(axis=1)
        kept = yes * 2 > who.shape[1]
        rows.append({"votes": int(k), "kept": int(kept.sum()),
                     "precision": float((kept & positive).sum() / max(kept.sum(), 1)),
                     "recall": float((kept & positive).sum() / positive.sum())})
    return rows


def _evaluate(config, workdir, labels_file=None, out=None) -> dict:
    """eval.py on the network's test split (with --labels_file when given); files go to `out`."""
    from jaxnet.methods import evaluate

    return evaluate(config, workdir, split=config.eval_split, labels_file=labels_file, out=out)


def _split_labels(config) -> np.ndarray:
    """The evaluation split's labels, in split order (what a labels file is indexed by)."""
    from jaxnet.data.sources import create_source

    source = create_source(config, config.eval_split)
    labels = getattr(source, "labels", None)
    if labels is None:
        labels = [source[i]["label"] for i in range(len(source))]
    return np.asarray(labels, np.int64).reshape(-1)


def _write_labels(path: Path, labels) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(files.write_text(path, json.dumps(labels) + "\n"))


def run(ctx: Context) -> Section:
    s = settings(ctx.quick)
    config, net = evaluation_grid.seed_run(ctx, 0)
    base = _evaluate(config, net.workdir, out=ctx.out / "labelling" / "eval")
    confusion = np.asarray(base["confusion"], np.int64)
    truth = _split_labels(config)
    pool = annotator_pool(confusion)
    ctx.log(f"[labelling] {len(truth):,} images, {len(pool)} simulated annotators")
    curve = accuracy_curve(truth, pool, repeats=s["repeats"])
    cost = {m: cost_to(curve, m, len(truth)) for m in cons.METHODS}
    clean = cleaning(truth, pool, confusion)

    # Re-score the network against the consensus of three annotators per image.
    ann = cons.sample_annotations(truth, pool, per_example=RESCORE_ANNOTATORS, seed=7)
    rescored = {}
    for method in cons.METHODS:
        result = cons.consensus(ann, method)
        path = _write_labels(ctx.out / "labelling" / f"consensus_{method}.json", result.labels)
        record = _evaluate(config, net.workdir, labels_file=path,
                           out=ctx.out / "labelling" / f"eval_{method}")
        rescored[method] = {"label_accuracy": cons.label_accuracy(result.labels, truth),
                            "real_top1_acc": record["real_top1_acc"],
                            "top1_acc": record["top1_acc"], "ties": result.ties,
                            "kappa": cons.fleiss_kappa(ann)}

    fig_curve = plots.curves(
        ctx.figure("labelling_consensus.png"),
        [("majority vote", curve["per_image"], np.array(curve["majority"]) * 100, {"marker": "o"}),
         ("Dawid-Skene", curve["per_image"], np.array(curve["dawid_skene"]) * 100,
          {"marker": "s"})],
        title=f"Consensus label accuracy, {len(truth):,} Fashion-MNIST test images",
        xlabel="annotators per image (drawn from the pool: careful, careless, a spammer)",
        ylabel="label accuracy (%)", hline=100 * TARGET, hline_label="99%")
    votes = [r["votes"] for r in clean]
    fig_clean = plots.curves(
        ctx.figure("labelling_cleaning.png"),
        [("precision of the kept set", votes, [100 * r["precision"] for r in clean],
          {"marker": "o"}),
         ("recall", votes, [100 * r["recall"] for r in clean], {"marker": "s"})],
        title="Cleaning a 10%-precision candidate pool by majority of k yes/no votes",
        xlabel="votes per candidate (k)", ylabel="%", hline=10.0, hline_label="pool precision")

    def acc_at(method, n):
        return curve[method][curve["per_image"].index(n)]

    def cost_text(method):
        c = cost[method]
        return (f"{c[0]} per image ({c[1]:,} annotations)" if c else
                f"not reached with {len(pool)} per image")

    ds3, mv3 = rescored["dawid_skene"], rescored["majority"]
    top1 = ds3["top1_acc"]
    measured = (f"3 annotators per image: majority {100 * acc_at('majority', 3):.2f}%, Dawid-Skene"
                f" {100 * acc_at('dawid_skene', 3):.2f}% label accuracy; 99% takes "
                f"{cost_text('dawid_skene')} with Dawid-Skene, {cost_text('majority')} with the "
                f"majority; cleaning a 10% pool with {clean[2]['votes']} votes: precision "
                f"{100 * clean[2]['precision']:.1f}%, recall {100 * clean[2]['recall']:.1f}%; "
                f"re-scored top-1 {100 * top1:.2f}% -> {100 * ds3['real_top1_acc']:.2f}% "
                f"(Dawid-Skene labels)")
    better = all(d >= m - 1e-9 for d, m in zip(curve["dawid_skene"][2:], curve["majority"][2:]))
    verdict = "held" if clean[-1]["precision"] > 0.9 and better else "partly held"
    table = [["annotators per image", "majority vote", "Dawid-Skene", "annotations"]]
    table += [[str(n), f"{100 * m:.2f}%", f"{100 * d:.2f}%", f"{n * len(truth):,}"]
              for n, m, d in zip(curve["per_image"], curve["majority"], curve["dawid_skene"])]
    table += [["votes per candidate", "kept precision", "kept recall", "kept"]]
    table += [[str(r["votes"]), f"{100 * r['precision']:.1f}%", f"{100 * r['recall']:.1f}%",
               f"{r['kept']:,}"] for r in clean]
    table += [["re-scored against", "label accuracy (ties)", "model top-1", "move"],
              ["the dataset's labels", "100%", f"{100 * top1:.2f}%", ""]]
    table += [[f"{name} of {RESCORE_ANNOTATORS}",
               f"{100 * r['label_accuracy']:.2f}% ({r['ties']:,})",
               f"{100 * r['real_top1_acc']:.2f}%", f"{100 * (r['real_top1_acc'] - top1):+.2f}"]
              for name, r in (("majority", mv3), ("Dawid-Skene", ds3))]
    summary = {"curve": curve, "cost": cost, "cleaning": clean, "rescored": rescored,
               "accuracies": list(ACCURACIES) + ["spammer (uniform)"],
               "num_images": len(truth)}
    (ctx.out / "labelling").mkdir(parents=True, exist_ok=True)
    files.write_text(ctx.out / "labelling" / "labelling.json", json.dumps(summary, indent=1) + "\n")
    return Section(
        key="labelling", title="Labels by many people (ImageNet's consensus, simulated)",
        claim="Image search alone gives about 10% correct candidates; asking several people per "
              "image and keeping their consensus makes a clean dataset. Weighing each person by "
              "how reliable they are (Dawid-Skene) needs fewer of them than a plain vote.",
        paper=PAPER, measured=measured, verdict=verdict,
        details=(f"Simulated annotators on the {len(truth):,} test images: accuracies "
                 f"{', '.join(f'{a:.2f}' for a in ACCURACIES)} and a uniform spammer; a mistake "
                 "follows the network's confusion of the true class (the test-protocol section's"
                 f" seed-0 ResNet-10, top-1 {100 * top1:.2f}%). Each point draws that many "
                 f"distinct annotators per image at random ({s['repeats']} repeats averaged). "
                 "Cleaning: majority of k yes/no votes (ImageNet adapted the number of votes to "
                 "each class's difficulty; this keeps it fixed). The re-scoring uses the ReaL "
                 "metric: a tie keeps every tied label and any of them counts as a hit, which "
                 "flatters the network where the majority vote ties; the annotators' mistakes "
                 "follow the network's own confusions, so noisy labels can agree with its "
                 "mistakes too."),
        table=table,
        figures=[(Path(fig_curve).name, "Consensus label accuracy against annotators per image"),
                 (Path(fig_clean).name, ("Candidate cleaning: kept precision and recall against "
                                        "votes"))],
        commands=[net.command, f"python -m jaxnet labelling --out={ctx.out}"
                  + (" --quick" if ctx.quick else "")],
        hardware=[hardware()])
