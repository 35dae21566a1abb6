"""The ILSVRC-2011 lessons the seed states for the classical pipelines: "the larger the feature
vectors, the better" and "the more training data, the better", as the curves of
jaxnet.experiments.classical_curves (Fisher vectors and bag of words on Fashion-MNIST), cached in
OUT/runs/classical_curves/ (a finished point is never measured again)."""
import shutil

from jaxnet.experiments import classical_curves as curves
from jaxnet.experiments.context import Context, Section
from jaxnet.experiments.formatting import pct
from jaxnet.experiments.hardware import hardware

CLAIM = ("ILSVRC 2011's lessons for the classical pipelines: the larger the feature vectors, the"
         " better; the more training data, the better.")
PAPER = "qualitative (the 2010-2011 entries grew their Fisher vectors and codebooks, and used all of ImageNet)"
CURVES = {"fisher_components": "Fisher vectors, GMM size", "bow_words": "bag of words, codebook size",
          "fisher_data": "Fisher vectors, training images", "bow_data": "bag of words, training images"}


def grows(points) -> bool:
    """Whether the largest setting beats the smallest by more than half a point."""
    return points[-1]["test_acc"] > points[0]["test_acc"] + 0.005


def run(ctx: Context) -> Section:
    section = Section("classical_lessons", "Classical lessons: larger features, more data (ILSVRC 2011)",
                      CLAIM, PAPER)
    if ctx.dataset != "fashion_mnist":
        section.measured = f"not run on {ctx.dataset} (the curves are measured on Fashion-MNIST)"
        return section
    out = ctx.out / "runs" / "classical_curves"
    results = curves.run(out, quick=ctx.quick, data_dir=ctx.data_dir, log=ctx.log)
    by_curve = {}
    for r in results:
        by_curve.setdefault(r["curve"], []).append(r)
    summary, held = [], []
    for curve, label in CURVES.items():
        points = sorted(by_curve.get(curve, []), key=lambda r: r["x"])
        if not points:
            continue
        first, last = points[0], points[-1]
        unit = "" if curve.endswith("_data") else f" ({first['feature_dim']:,} -> {last['feature_dim']:,} dims)"
        summary.append(f"{label} {first['size'] if not curve.endswith('_data') else first['train_examples']:,}"
                       f" -> {last['size'] if not curve.endswith('_data') else last['train_examples']:,}{unit}:"
                       f" {pct(first['test_acc'])} -> {pct(last['test_acc'])}")
        held.append(grows(points))
    section.measured = "; ".join(summary)
    section.verdict = ("held" if held and all(held) else "partly held" if any(held) else "did not hold")
    for name in ("dimension.png", "data.png"):
        shutil.copy(out / name, ctx.figure(f"classical_{name}"))
    section.figures = [("classical_dimension.png", "Test accuracy against feature dimension (labels: GMM size"
                        " or codebook size)."),
                       ("classical_data.png", "Test accuracy against training-set size (labels: time per point).")]
    section.table = [["curve", "setting", "train images", "feature dim", "test acc", "seconds"]] + [
        [r["curve"], f"{r['x']:g}", f"{r['train_examples']:,}", f"{r['feature_dim']:,}", pct(r["test_acc"]),
         f"{r['seconds']:.0f}"] for r in results]
    n_test = results[0]["test_examples"] if results else 0
    section.details = (
        f"Each point fits its encoder (PCA + GMM, or PCA + k-means), extracts dense-SIFT features, fits the"
        f" squared-hinge linear SVM and scores {n_test:,} stratified test images; the dimension curves use"
        f" {by_curve.get('fisher_components', [{}])[0].get('train_examples', 0):,} train images. The"
        " verdict asks each curve's largest setting to beat its smallest by more than half a point."
        " Details and the full-size sweep: docs/classical.md.")
    section.commands = [f"python -m jaxnet classical_curves --out {out}" + (" --quick" if ctx.quick else "")]
    section.hardware = [hardware()]
    return section
