"""Dropout on/off in AlexNet's fc layers: the train/test gap, and steps to fixed accuracies.

configs/alexnet_dropout.py:on|off. The training split is evaluated after training like the test
split (dropout off, no augmentation), so the gap is accuracy on images the net was fitted to
minus accuracy on new ones. "Steps to" counts optimizer steps until the running training accuracy
(over each log window), or the test accuracy (each evaluation), first reaches a fixed level.
"""
from __future__ import annotations

from jaxnet.experiments import plots
from jaxnet.experiments.context import Context, Section, load_config
from jaxnet.experiments.formatting import fmt, pct
from jaxnet.experiments.runs import curve, first_crossing, run_network
from jaxnet.experiments.subsets import use_subset, variant

CONFIG = "alexnet_dropout"


def settings(quick: bool) -> dict:
    if quick:  # AlexNet is the slowest net here: 1,000 images, narrower fc layers, and no
        # augmentation, so that overfitting shows within ~140 steps
        return dict(train=1000, test=1000, epochs=20.0, fc=1024, eval_every=2.0, log_every=7,
                    train_bar=0.9, test_bar=0.7, augment="none")
    return dict(train=None, test=None, epochs=30.0, fc=4096, eval_every=1.0, log_every=50,
                train_bar=0.95, test_bar=0.90, augment=None)


def run(ctx: Context) -> Section:
    s = settings(ctx.quick)
    results = {}
    for mode in ("on", "off"):
        v = variant(mode, ctx)
        config = load_config(CONFIG, v)
        config.num_epochs, config.eval_every_epochs = s["epochs"], s["eval_every"]
        config.log_every_steps = s["log_every"]
        config.model.fc_features = s["fc"]
        if s["augment"]:
            config.augment = s["augment"]
        if ctx.data_dir:
            config.data_dir = ctx.data_dir
        if s["train"]:
            use_subset(config, ctx, s["train"], s["test"])
        r = run_network(ctx, config, "dropout", f"dropout_{mode}", CONFIG, v, extra_splits=("train",))
        examples = s["train"] or (60_000 if ctx.dataset == "fashion_mnist" else 50_000)
        steps_per_epoch = examples // config.batch_size
        tr_epochs, tr_acc = curve(r.records, "train")
        te_epochs, te_acc = curve(r.records, "eval")
        to_train = first_crossing(tr_epochs, tr_acc, s["train_bar"], below=False)
        to_test = first_crossing(te_epochs, te_acc, s["test_bar"], below=False)
        results[mode] = dict(
            run=r, tr=(tr_epochs, tr_acc), te=(te_epochs, te_acc),
            train_acc=r.extra["train"]["top1_acc"], test_acc=r.metrics["top1_acc"],
            steps_train=None if to_train is None else round(to_train * steps_per_epoch),
            steps_test=None if to_test is None else round(to_test * steps_per_epoch),
            test_loss=r.metrics["loss"], best_test=float(te_acc.max()) if te_acc.size else None)
    panels = []
    for mode in ("on", "off"):
        res = results[mode]
        panels.append((f"dropout {'0.5 (the paper)' if mode == 'on' else 'off'}", [
            ("training error (running, training mode)", res["tr"][0], 1 - res["tr"][1],
             {"linewidth": 1.0}),
            ("test error", res["te"][0], 1 - res["te"][1], {"linewidth": 2.2, "marker": "o",
                                                          "markersize": 3})]))
    fig = plots.curves(ctx.figure("dropout_curves.png"), None, panels=panels,
                       title="AlexNet with and without dropout in fc6/fc7",
                       xlabel="epochs", ylabel="error", ylim=(0, 1))
    rows = [["dropout", "train acc (eval mode)", "test acc", "train - test gap", "test loss",
             f"steps to {s['train_bar']:.0%} running train acc",
             f"steps to {s['test_bar']:.0%} test acc"]]
    for mode in ("on", "off"):
        res = results[mode]
        rows.append(["0.5" if mode == "on" else "0", pct(res["train_acc"]), pct(res["test_acc"]),
                     pct(res["train_acc"] - res["test_acc"]), f"{res['test_loss']:.3f}",
                     fmt(res["steps_train"], "d"), fmt(res["steps_test"], "d")])
    on, off = results["on"], results["off"]
    gap_on, gap_off = on["train_acc"] - on["test_acc"], off["train_acc"] - off["test_acc"]
    slower = (on["steps_train"] / off["steps_train"]
              if on["steps_train"] and off["steps_train"] else None)
    less_overfit = gap_on < gap_off
    verdict = ("held" if less_overfit and slower and slower >= 1.5 else
               "partly held" if less_overfit or (slower and slower > 1.1) else "did not hold")
    bar = f"{s['train_bar']:.0%} running train accuracy"
    if slower:
        speed = f"steps to {bar} x{slower:.2f} with dropout"
    elif on["steps_train"] or off["steps_train"]:
        speed = (f"only the run {'with' if on['steps_train'] else 'without'} dropout reached {bar}"
                 f" (step {on['steps_train'] or off['steps_train']})")
    else:
        speed = f"neither run reached {bar}"
    measured = f"gap {100 * gap_on:.2f} points with dropout, {100 * gap_off:.2f} without; {speed}"
    runs = [results[m]["run"] for m in ("on", "off")]
    examples = s["train"] or "all"
    return Section(
        key="dropout", title="Dropout in AlexNet's fully connected layers",
        claim="Without dropout, our network exhibits substantial overfitting. Dropout roughly doubles"
              " the number of iterations required to converge.",
        paper="qualitative: less overfitting, ~2x the iterations",
        measured=measured, verdict=verdict,
        details=(f"Two-column AlexNet (He init, fc width {s['fc']}) on {examples} {ctx.dataset}"
                 f" training images upsampled to 67 px, {s['epochs']:g} epochs, constant lr 0.01,"
                 " SGD 0.9, weight decay 5e-4, "
                 + ("no augmentation" if s["augment"] == "none" else "crop + flip")
                 + ". Train accuracy: the training images evaluated after training (dropout off,"
                 " centre view)."),
        table=rows,
        figures=[(fig.rsplit("/", 1)[-1], "Training (thin) and test (bold) error with and"
                  " without dropout.")],
        commands=[r.command for r in runs], hardware=sorted({r.hardware for r in runs}))
