"""The transfer study: how much does a network pretrained on other classes help, and how?

    python -m jaxnet transfer_study --out=DIR [--quick]

1. Pretrain configs/fashion_mnist_0to4.py's ResNet-10 on Fashion-MNIST classes 0-4 (T-shirt/top,
   Trouser, Pullover, Dress, Coat).
2. On classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot), with 10 / 100 / 1,000 / all (6,000)
   labelled train images per class, each tested on the 5,000 test images of those classes:
   linear probes (L-BFGS logistic regression) on every layer's average-pooled features;
   fine-tuning of the head only (backbone and BatchNorm statistics frozen) and of all layers;
   the same network trained from scratch.
3. Clustering (PCA 50 + k-means, 5 clusters, no labels) of all target train images in each
   layer's feature space and in raw pixel space: NMI / ARI / purity on the test images.

Every point is a method run through jaxnet.methods.train (the recipes of jaxnet.transfer.recipes,
the same as the configs'), in DIR/runs/<point>/ with its log in DIR/runs/<point>.log; its result
is cached in DIR/results/<point>.json (a re-run skips points whose config is unchanged). Writes
DIR/study.md (tables), DIR/study.json and the PNG plots, and prints the tables. Sized for about 20
minutes on a quiet 2-core CPU; --quick (a smaller pretraining, 10 and 100 labels per class, two
layers, clustering of 2,000 images) takes a few minutes.
"""
import shutil
from pathlib import Path

from jaxnet.experiments.study_runs import run_study

LABELS = (10, 100, 1000, 0)  # per class; 0 = all (6,000)
QUICK_LABELS = (10, 100)
# training epochs of the networks (fine-tunes, scratch) per labels-per-class point: about 60, 150,
# 390 and 936 steps
EPOCHS = {10: 60.0, 100: 50.0, 1000: 10.0, 0: 4.0}
QUICK_EPOCHS = {10: 20.0, 100: 15.0}
LAYERS = ("stem", "stage1", "stage2", "stage3", "pre_logits")  # stage4 pooled == pre_logits
QUICK_LAYERS = ("stage2", "pre_logits")


def _label(n: int) -> str:
    return "all" if n == 0 else f"{n:,}"


def _network_budget(config, labels_per_class: int, epochs: float):
    n = 5 * labels_per_class if labels_per_class else None
    config.examples_per_class = labels_per_class
    if n is not None:
        config.batch_size = min(config.batch_size, n - n % 2)
    config.num_epochs = epochs
    config.log_every_steps = 50
    return config


def plan(out: Path, quick: bool):
    """[(point name, kind, labels per class or None, layer or None, config)] in run order."""
    from jaxnet.transfer import recipes

    source_dir = str((out / "runs" / "pretrain").absolute())
    labels = QUICK_LABELS if quick else LABELS
    epochs = QUICK_EPOCHS if quick else EPOCHS
    layers = QUICK_LAYERS if quick else LAYERS
    points = []
    source = recipes.source_config()
    if quick:
        source.examples_per_class, source.num_epochs = 1000, 2.0
    points.append(("pretrain", "pretrain", None, None, source))
    for n in labels:
        for layer in layers:
            c = recipes.probe_config(source_dir, layer)
            c.examples_per_class = n
            points.append((f"probe_{layer}_n{_label(n)}", "probe", n, layer, c))
        for head_only in (True, False):
            c = _network_budget(recipes.finetune_config(source_dir, head_only), n, epochs[n])
            points.append((f"finetune_{'head' if head_only else 'all'}_n{_label(n)}",
                           "finetune head" if head_only else "finetune all", n, None, c))
        c = _network_budget(recipes.scratch_config(), n, epochs[n])
        points.append((f"scratch_n{_label(n)}", "scratch", n, None, c))
    for layer in ("pixels",) + layers:
        c = recipes.cluster_config(source_dir if layer != "pixels" else "", layer
                                   if layer != "pixels" else "pre_logits")
        if quick:
            c.examples_per_class, c.transfer.restarts = 400, 3
        points.append((f"cluster_{layer}", "cluster", None, layer, c))
    return points


def tables(results, points, quick: bool) -> str:
    labels = QUICK_LABELS if quick else LABELS
    layers = QUICK_LAYERS if quick else LAYERS
    head = "| method | " + " | ".join(f"{_label(n)} labels/class" for n in labels) + " |"
    lines = ["Test top-1 (%) on the 5,000 test images of classes 5-9:", "", head,
             "|---" * (len(labels) + 1) + "|"]
    rows = [(f"linear probe, {layer}", "probe", layer) for layer in layers]
    rows += [("fine-tune head only", "finetune head", None), ("fine-tune all layers", "finetune all", None),
             ("from scratch", "scratch", None)]
    for title, kind, layer in rows:
        cells = []
        for n in labels:
            hit = [name for name, k, m, lay, _ in points if k == kind and m == n and lay == layer]
            cells.append(f"{100 * results[hit[0]]['top1_acc']:.2f}" if hit and hit[0] in results else "")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "Clustering (PCA 50 + k-means, 5 clusters, no labels) of the classes 5-9 train images;"
              " scores on the test images (top-1: each cluster named after its majority train label):",
              "", "| features | NMI | ARI | purity | top-1 (%) |", "|---|---|---|---|---|"]
    for name, kind, _, layer, _ in points:
        if kind == "cluster" and name in results:
            r = results[name]
            lines.append(f"| {'raw pixels' if layer == 'pixels' else layer} | {r['nmi']:.3f} |"
                         f" {r['ari']:.3f} | {r['purity']:.3f} | {100 * r['top1_acc']:.2f} |")
    src = results.get("pretrain")
    if src:
        lines += ["", f"Source network (classes 0-4): {100 * src['top1_acc']:.2f}% test top-1."]
    return "\n".join(lines) + "\n"


def plots(results, points, out: Path, quick: bool):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = QUICK_LABELS if quick else LABELS
    layers = QUICK_LAYERS if quick else LAYERS
    xs = [n if n else 6000 for n in labels]

    def value(kind, n, layer=None):
        hit = [name for name, k, m, lay, _ in points if k == kind and m == n and lay == layer]
        return 100 * results[hit[0]]["top1_acc"] if hit and hit[0] in results else float("nan")

    files = []
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    curves = [("probe, pre_logits", "probe", "pre_logits", "o-"),
              ("probe, best layer", "probe", "best", "o--"),
              ("fine-tune head", "finetune head", None, "s-"),
              ("fine-tune all", "finetune all", None, "^-"), ("from scratch", "scratch", None, "x-")]
    for title, kind, layer, style in curves:
        if layer == "best":
            ys = [max(value("probe", n, lay) for lay in layers) for n in labels]
        else:
            ys = [value(kind, n, layer) for n in labels]
        ax.plot(xs, ys, style, label=title)
    ax.set_xscale("log")
    ax.set_xticks(xs, [_label(n) for n in labels])
    ax.set_xlabel("labelled train images per class (classes 5-9)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("Transfer from Fashion-MNIST classes 0-4 to 5-9")
    ax.grid(alpha=0.3)
    ax.legend()
    files.append(_save(fig, out / "accuracy_vs_labels.png", FigureCanvasAgg))

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for n in labels:
        ax.plot(range(len(layers)), [value("probe", n, lay) for lay in layers], "o-",
                label=f"{_label(n)} labels/class")
    ax.set_xticks(range(len(layers)), layers)
    ax.set_xlabel("layer (average-pooled features)")
    ax.set_ylabel("linear probe test top-1 (%)")
    ax.set_title("Linear probes per layer")
    ax.grid(alpha=0.3)
    ax.legend()
    files.append(_save(fig, out / "probe_per_layer.png", FigureCanvasAgg))

    names = [(name, layer) for name, kind, _, layer, _ in points if kind == "cluster" and name in results]
    if names:
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.add_subplot()
        width = 0.27
        for i, metric in enumerate(("nmi", "ari", "purity")):
            ax.bar([j + (i - 1) * width for j in range(len(names))],
                   [results[name][metric] for name, _ in names], width, label=metric.upper()
                   if metric != "purity" else "purity")
        ax.set_xticks(range(len(names)), ["raw pixels" if lay == "pixels" else lay for _, lay in names])
        ax.set_ylim(0, 1)
        ax.set_ylabel("score on the test images")
        ax.set_title("k-means (5 clusters) of classes 5-9: features vs raw pixels")
        ax.grid(alpha=0.3, axis="y")
        ax.legend()
        files.append(_save(fig, out / "clustering.png", FigureCanvasAgg))
    for name, _ in names:
        scatter = out / "runs" / name / "cluster_scatter_test.png"
        if scatter.exists() and name in ("cluster_pixels", "cluster_pre_logits"):
            files.append(str(shutil.copyfile(scatter, out / f"{name}_scatter_test.png")))
    return files


def _save(fig, path, canvas):
    canvas(fig)
    fig.savefig(path, dpi=100)
    return str(path)


def study(out, quick: bool = False, log=print) -> dict:
    """Run (or reuse) every point; write the tables and plots; return {point: metrics}."""
    out = Path(out)
    points = plan(out, quick)
    return run_study("transfer_study", out, quick, points, lambda r: tables(r, points, quick),
                     lambda r: plots(r, points, out, quick), log)
