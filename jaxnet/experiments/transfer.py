"""The foundation-model uses that followed AlexNet: a network trained on some classes reused for
others, by a linear probe on its features, by fine-tuning, or by clustering its features; against
the same network trained from scratch. The points of jaxnet.experiments.transfer_study, cached in
OUT/runs/transfer/ (a finished point is never run again)."""
import shutil

from jaxnet.experiments import transfer_study as study
from jaxnet.experiments.context import Context, Section
from jaxnet.experiments.hardware import hardware

CLAIM = ("Features learned on one set of classes transfer to others: a linear classifier on a"
         " pretrained network's features, or fine-tuning it, beats training from scratch when"
         " labels are few.")
PAPER = ("qualitative (DeCAF / OverFeat / Razavian et al. 2013-14: ImageNet features + a linear"
         " classifier beat hand-designed pipelines on other datasets)")


def run(ctx: Context) -> Section:
    section = Section("transfer", "Transfer: probes, fine-tuning, clustering", CLAIM, PAPER)
    if ctx.dataset != "fashion_mnist":
        section.measured = f"not run on {ctx.dataset} (the study splits Fashion-MNIST's classes)"
        return section
    out = ctx.out / "runs" / "transfer"
    results = study.study(out, quick=ctx.quick, log=ctx.log)
    points = study.plan(out, ctx.quick)
    labels = study.QUICK_LABELS if ctx.quick else study.LABELS

    def acc(kind, n, layer=None):
        hit = [name for name, k, m, lay, _ in points if k == kind and m == n and lay == layer]
        return results[hit[0]]["top1_acc"] if hit and hit[0] in results else None

    layers = study.QUICK_LAYERS if ctx.quick else study.LAYERS
    rows = [(f"linear probe, {layer}", "probe", layer) for layer in layers]
    rows += [("fine-tune head only", "finetune head", None), ("fine-tune all layers", "finetune all", None),
             ("from scratch", "scratch", None)]
    section.table = [["method"] + [f"{n or 'all'} labels/class" for n in labels]] + [
        [title] + [f"{100 * a:.2f}%" if (a := acc(kind, n, layer)) is not None else "" for n in labels]
        for title, kind, layer in rows]
    few = labels[0]
    transferred = max(a for a in [acc("probe", few, layer) for layer in layers]
                      + [acc("finetune all", few), acc("finetune head", few)] if a is not None)
    scratch = acc("scratch", few)
    section.measured = (f"with {few} labels per class: best transfer {100 * transferred:.2f}% vs"
                        f" {100 * scratch:.2f}% from scratch (test top-1, classes 5-9)")
    section.verdict = "held" if transferred > scratch + 0.01 else "did not hold"
    section.details = (
        "A ResNet-10 pretrained on Fashion-MNIST classes 0-4, reused on classes 5-9 with few labelled"
        " images per class; each method runs through jaxnet.methods (probe, finetune, cluster)."
        " Clustering scores (NMI / ARI / purity) and the full tables: runs/transfer/study.md.")
    names = [f for f in ("accuracy_vs_labels.png", "probe_per_layer.png", "clustering.png") if (out / f).exists()]
    for name in names:
        shutil.copy(out / name, ctx.figure(f"transfer_{name}"))
    captions = {"accuracy_vs_labels.png": "Test top-1 against labels per class, per method.",
                "probe_per_layer.png": "Linear probes on each layer's features.",
                "clustering.png": "Clustering of each layer's features (no labels)."}
    section.figures = [(f"transfer_{n}", captions[n]) for n in names]
    section.commands = [f"python -m jaxnet transfer_study --out={out}" + (" --quick" if ctx.quick else "")]
    section.hardware = [hardware()]
    return section
