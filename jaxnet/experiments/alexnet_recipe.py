"""AlexNet's recipe on Fashion-MNIST with the plateau rule fixed (configs/alexnet_fashion_mnist.py).

2-4 hours on a 2-core CPU (30 epochs at 4-8 minutes each), minutes on a GPU: the full report
trains it; --quick reports a finished run already in OUT/runs/alexnet_recipe or, failing that, one
that `python train.py --config=configs/alexnet_fashion_mnist.py` finished in its default workdir
(TRAIN_WORKDIR) with the same config, and otherwise only the recipe.
"""
from __future__ import annotations

from jaxnet.experiments import plots
from jaxnet.experiments.context import ROOT, Context, Section, load_config
from jaxnet.experiments.formatting import pct
from jaxnet.experiments.runs import (
    curve,
    evaluated_once,
    finished_train_run,
    run_network,
)

CONFIG = "alexnet_fashion_mnist"
TRAIN_WORKDIR = ROOT / "workdirs" / CONFIG  # train.py's default workdir, run from the repository


def lr_drops(records) -> list:
    """(epoch, lr) for each fall of the learning rate: the epoch of the evaluation that caused it
    and the lr it settled at. The log's lr is a window's mean, so a drop inside a window shows in
    two records (0.01, 0.0046, 0.001): a fall right after a fall is the same drop."""
    eval_epochs, _ = curve(records, "eval")
    drops, prev, falling = [], None, False
    for r in records:
        if r.get("split") != "train" or "lr" not in r:
            continue
        fell = prev is not None and r["lr"] < prev["lr"] * 0.5
        if fell and falling:
            drops[-1] = (drops[-1][0], r["lr"])
        elif fell:
            # an evaluation at a record's own step changes the lr only for the steps after it
            at = [e for e in eval_epochs if prev["epoch"] - 1e-9 <= e < r["epoch"] - 1e-9]
            drops.append((at[0] if at else r["epoch"], r["lr"]))
        falling, prev = fell, r
    return drops


def run(ctx: Context) -> Section:
    config = load_config(CONFIG)
    workdir = ctx.workdir("alexnet_recipe", "alexnet_fashion_mnist")
    rows = [["epoch", "test top-1", "lr after"]]
    section = Section(
        key="alexnet_recipe", title="AlexNet's recipe on Fashion-MNIST (plateau rule fixed)",
        claim="Divide the learning rate by 10 when the validation error rate stops improving"
              " with the current learning rate (3 times in ~90 epochs).",
        paper="ILSVRC-2010 top-1 error 37.5% (1 model, 10 patches); target here: >= 92% on"
              " Fashion-MNIST",
        details=(f"configs/{CONFIG}.py: plateau patience {config.plateau_patience} evaluations"
                 f" (one per {config.eval_every_epochs:g} epoch), rtol {config.plateau_rtol},"
                 f" {config.num_epochs:g} epochs, lr {config.base_lr} down to"
                 f" {config.base_lr * config.plateau_min_scale:g}."))
    if ctx.quick and not (workdir / "result.json").exists():
        r, timed = finished_train_run(config, CONFIG, TRAIN_WORKDIR), "h of training"
        if r is None:
            section.measured = ("not run with --quick (2-4 hours on a 2-core CPU; a run that"
                                f" train.py finished in {TRAIN_WORKDIR} is reported)")
            section.commands = [f"python train.py --config=configs/{CONFIG}.py --cpu_devices=1"]
            return section
        paper_test = evaluated_once(ctx, config, r, config.eval_split)
    else:
        r = run_network(ctx, config, "alexnet_recipe", "alexnet_fashion_mnist", CONFIG, None,
                        extra_splits=(config.eval_split,))
        timed, paper_test = "h", r.extra[config.eval_split]
    epochs, acc = curve(r.records, "eval")
    drops = lr_drops(r.records)
    for e, a in zip(epochs, acc):
        after = [lr for de, lr in drops if de <= e + 1e-9]
        rows.append([f"{e:g}", pct(a), f"{after[-1]:g}" if after else f"{config.base_lr:g}"])
    final, paper = r.metrics["top1_acc"], paper_test["top1_acc"]
    train_epochs, train_acc = curve(r.records, "train")
    where = ", ".join(f"{e:.1f}" for e, _ in drops) or "none"
    top = max(0.95, float(max(acc.max(), train_acc.max(), paper)) + 0.01)
    plots.curves(ctx.figure("alexnet_recipe.png"),
                 [("test, one view", epochs, acc, {"marker": "o", "markersize": 3}),
                  ("train (running, dropout on)", train_epochs, train_acc, {}),
                  (f"test, the paper's 10 patches ({pct(paper)})", [epochs[-1]], [paper],
                   {"marker": "*", "markersize": 12, "linestyle": "none"})],
                 title=f"AlexNet's recipe on Fashion-MNIST (lr / 10 at epochs {where})",
                 xlabel="epochs", ylabel="top-1 accuracy", hline=0.92, hline_label="target 92%",
                 ylim=(min(0.8, float(acc.min()) - 0.02), top))  # cuts the first epoch's climb
    section.figures = [("alexnet_recipe.png", "Top-1 accuracy against epochs (the star: the last"
                        " checkpoint under the paper's test); the learning rate was divided by 10"
                        " at the epochs in the title.")]
    section.table = rows
    section.measured = (f"{pct(paper)} test top-1 after {config.num_epochs:g} epochs with the"
                        f" paper's test ({config.eval_protocol}: 4 corner + centre crops and their"
                        f" mirrors, averaged), {pct(final)} with one view (the training loop's)"
                        f" ({r.seconds / 3600:.2f} {timed}); lr drops at epochs {where}")
    section.verdict = "held" if paper >= 0.92 else "did not hold"
    section.commands = [r.command, f"python eval.py --config=configs/{CONFIG}.py"
                                   f" --workdir={r.workdir}  # the paper's test"]
    section.hardware = [r.hardware]
    return section
