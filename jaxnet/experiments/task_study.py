"""The tasks study: does a backbone pretrained on Fashion-MNIST classification help localization
and segmentation, and how much when scene labels (boxes, masks) are few?

    python -m jaxnet task_study --out=DIR [--quick]

1. Pretrain the scenes' backbone (configs/localize_fashion_mnist.py's ResNet-10) on Fashion-MNIST
   classification: the 60,000 train garments resized on the device to 40 px, about the scenes'
   garment size.
2. For localization (configs/localize_fashion_mnist.py) and segmentation
   (configs/segment_fashion_mnist.py), with 1%, 10% and 100% of the 60,000 train scenes
   labelled (class balanced), train the backbone
   (a) from scratch,
   (b) from the pretrained network, frozen: only the class head and the box or mask head learn
       (the BatchNorm statistics are re-estimated on the scenes),
   (c) from the pretrained network, fine-tuned (backbone at a tenth of the heads' learning rate),
   each for the same number of steps per label fraction, and test on the test scenes
   (`loc_err` and `miou`).

Every point is a method run through jaxnet.methods.train (cached like the transfer study's:
jaxnet.experiments.study_runs.run_point), in DIR/runs/<point>/. Writes DIR/study.md,
DIR/study.json and DIR/tasks_vs_labels.png, and prints the table. Sized for about two hours on a
quiet 2-core CPU; --quick (one epoch of pretraining, fewer steps, 2,000 test scenes)
takes under 30 minutes.
"""
from pathlib import Path

from jaxnet.experiments.context import load_config
from jaxnet.experiments.study_runs import run_study

TASKS = {"localize": ("localize_fashion_mnist", "loc_err", "localization error (%)"),
         "segment": ("segment_fashion_mnist", "miou", "mIoU")}
FRACTIONS = (0.01, 0.1, 1.0)  # of the train scenes' labels
REGIMES = ("scratch", "frozen", "finetune")
REGIME_TITLES = {"scratch": "from scratch", "frozen": "pretrained, frozen",
                 "finetune": "pretrained, fine-tuned"}
STEPS = {0.01: 600, 0.1: 1200, 1.0: 3748}  # training steps per label share (1.0: 4 epochs)
QUICK_STEPS = {0.01: 150, 0.1: 250, 1.0: 400}
PRETRAIN_SIZE = 40  # px: Fashion-MNIST resized on the device to about the scenes' garment size


def share_label(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def pretrain_config(quick: bool):
    """Fashion-MNIST classification with the scenes' backbone (the quickstart's recipe)."""
    from jaxnet.presets import fashion_mnist_config, quickstart_recipe

    scenes = load_config(TASKS["localize"][0])
    c = quickstart_recipe(fashion_mnist_config())
    c.model = scenes.model.copy_and_resolve_references()
    c.device_resize = PRETRAIN_SIZE
    c.num_epochs = 1.0 if quick else 3.0
    c.log_every_steps = 100
    c.eval_every_epochs = 0.0
    c.checkpoint_every_steps = 1000
    return c


def task_config(task: str, regime: str, fraction: float, source_dir: str, quick: bool):
    """The task's config file with `fraction` of the train scenes labelled (class balanced),
    trained for the share's steps, its backbone started as `regime` says."""
    c = load_config(TASKS[task][0])
    train_scenes = c.scenes.train_size or 60_000  # 0: one scene per train garment
    c.examples_per_class = round(fraction * train_scenes / c.num_classes) if fraction < 1 else 0
    labelled = c.examples_per_class * c.num_classes or train_scenes
    steps = (QUICK_STEPS if quick else STEPS)[fraction]
    c.num_epochs = steps * c.batch_size / labelled
    c.warmup_epochs = min(c.warmup_epochs, 0.1 * c.num_epochs)
    if quick:
        c.scenes.test_size = 2000
    if regime != "scratch":
        from jaxnet.transfer.tasks import HEAD

        c.transfer.source_workdir = source_dir
        if regime == "frozen":  # every backbone weight; BatchNorm statistics re-estimated on
            c.transfer.freeze = f"^(?!fc/|{HEAD}/)"  # the scenes, whose textured background
            c.transfer.bn_frozen = False  # plain Fashion-MNIST never showed
        else:
            c.base_lr = c.base_lr / 10  # the backbone; the heads learn at the full rate
            c.transfer.head_lr_mult = 10.0
    return c


def plan(out: Path, quick: bool):
    """[(point name, task, regime, fraction, config)] in run order, the pretraining first."""
    source_dir = str((out / "runs" / "pretrain").absolute())
    points = [("pretrain", None, None, None, pretrain_config(quick))]
    for task in TASKS:
        for fraction in FRACTIONS:
            for regime in REGIMES:
                points.append((f"{task}_{regime}_{share_label(fraction)}", task, regime, fraction,
                               task_config(task, regime, fraction, source_dir, quick)))
    return points


def value(results, points, task, regime, fraction):
    """The point's headline metric (loc_err or miou), or None when it has not run."""
    name = next(n for n, t, r, f, _ in points if (t, r, f) == (task, regime, fraction))
    return results[name][TASKS[task][1]] if name in results else None


def tables(results, points) -> str:
    lines = []
    for task, (_, metric, title) in TASKS.items():
        percent = metric == "loc_err"
        lines += [f"{task}: test {title} on the test scenes ({'lower' if percent else 'higher'} is"
                  " better), by the share of train scenes labelled:", "",
                  "| backbone | " + " | ".join(share_label(f) for f in FRACTIONS) + " |",
                  "|---" * (len(FRACTIONS) + 1) + "|"]
        for regime in REGIMES:
            cells = []
            for fraction in FRACTIONS:
                v = value(results, points, task, regime, fraction)
                cells.append("" if v is None else f"{100 * v:.1f}" if percent else f"{v:.3f}")
            lines.append(f"| {REGIME_TITLES[regime]} | " + " | ".join(cells) + " |")
        lines.append("")
    src = results.get("pretrain")
    if src:
        lines.append(f"Pretrained backbone: {100 * src['top1_acc']:.2f}% test top-1 on Fashion-MNIST"
                     f" ({PRETRAIN_SIZE} px).")
    return "\n".join(lines) + "\n"


def plot(results, points, path: Path) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    xs = [100 * f for f in FRACTIONS]
    for i, (task, (_, metric, title)) in enumerate(TASKS.items()):
        ax = fig.add_subplot(1, 2, i + 1)
        scale = 100 if metric == "loc_err" else 1
        for regime, style in zip(REGIMES, ("x-", "s-", "^-")):
            ys = [value(results, points, task, regime, f) for f in FRACTIONS]
            ax.plot(xs, [float("nan") if y is None else scale * y for y in ys], style,
                    label=REGIME_TITLES[regime])
        ax.set_xscale("log")
        ax.set_xticks(xs, [share_label(f) for f in FRACTIONS])
        ax.set_xlabel("train scenes labelled")
        ax.set_ylabel(f"test {title}")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return str(path)


def study(out, quick: bool = False, log=print) -> dict:
    """Run (or reuse) every point; write the table and the plot; return {point: metrics}."""
    out = Path(out)
    points = plan(out, quick)
    return run_study("task_study", out, quick, points, lambda r: tables(r, points),
                     lambda r: [plot(r, points, out / "tasks_vs_labels.png")], log)
