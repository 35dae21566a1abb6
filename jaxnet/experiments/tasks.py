"""Other vision tasks on the story's backbones: localization (ILSVRC's single-object task) and
segmentation on Fashion-MNIST scenes, with the backbone trained from scratch or pretrained on
classification (frozen or fine-tuned), at 1%, 10% and 100% of the scene labels. The points of
jaxnet.experiments.task_study, cached in OUT/runs/tasks/."""
import shutil

from jaxnet.experiments import task_study as study
from jaxnet.experiments.context import Context, Section
from jaxnet.experiments.hardware import hardware

CLAIM = ("Many other computer vision tasks have used these foundation models: object localization,"
         " image segmentation.")
PAPER = ("qualitative (OverFeat 2013, R-CNN 2014, FCN 2015: ImageNet-pretrained backbones beat"
         " training from scratch on localization, detection and segmentation)")


def run(ctx: Context) -> Section:
    section = Section("tasks", "Beyond classification: localization and segmentation", CLAIM, PAPER)
    if ctx.dataset != "fashion_mnist":
        section.measured = f"not run on {ctx.dataset} (the scenes are made of Fashion-MNIST garments)"
        return section
    out = ctx.out / "runs" / "tasks"
    results = study.study(out, quick=ctx.quick, log=ctx.log)
    points = study.plan(out, ctx.quick)
    section.table = [["task, backbone"]
                     + [f"{study.share_label(f)} labelled" for f in study.FRACTIONS]]
    for task, (_, metric, title) in study.TASKS.items():
        for regime in study.REGIMES:
            cells = [study.value(results, points, task, regime, f) for f in study.FRACTIONS]
            section.table.append([f"{task} ({title}), {study.REGIME_TITLES[regime]}"] + [
                "" if v is None else f"{100 * v:.1f}%" if metric == "loc_err" else f"{v:.3f}"
                for v in cells])
    few = study.FRACTIONS[0]
    wins = []
    for task, (_, metric, _) in study.TASKS.items():
        scratch = study.value(results, points, task, "scratch", few)
        best = [study.value(results, points, task, r, few) for r in ("frozen", "finetune")]
        best = min(best) if metric == "loc_err" else max(best)
        wins.append(best < scratch if metric == "loc_err" else best > scratch)
        section.measured += (f"{'; ' if section.measured else ''}{task} with"
                             f" {study.share_label(few)} of the labels: {metric} {best:.3f}"
                             f" pretrained vs {scratch:.3f} from scratch")
    section.verdict = "held" if all(wins) else "partly held" if any(wins) else "did not hold"
    section.details = (
        "The scenes' ResNet-10 pretrained on Fashion-MNIST classification, then trained for"
        " localization (class + box heads) and segmentation (an FCN head) on the scenes with few"
        " or all of their boxes and masks; each point is a localize or segment run of"
        " jaxnet.methods. Full table: runs/tasks/study.md.")
    shutil.copy(out / "tasks_vs_labels.png", ctx.figure("tasks_vs_labels.png"))
    section.figures = [("tasks_vs_labels.png", "Localization error and mIoU against the share of"
                        " scene labels, per backbone start.")]
    section.commands = [f"python -m jaxnet task_study --out={out}" + (" --quick" if ctx.quick else "")]
    section.hardware = [hardware()]
    return section
