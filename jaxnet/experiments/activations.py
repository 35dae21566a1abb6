"""ReLU vs saturating units (AlexNet, Figure 1): epochs to 25% training error per unit type.

Every activation of configs/relu_vs_tanh.py (relu, leaky_relu, maxout, tanh, sigmoid) is trained
at each learning rate of a small sweep; each is then shown at its best rate (the fewest epochs to
25% training error, as the paper picked "the learning rates for each network ... to make
training as fast as possible"; a rate that never gets there ranks by its final training error).
Training error is the running error of the training batches over each log window.
"""
from __future__ import annotations

import math

from jaxnet.experiments import plots
from jaxnet.experiments.context import Context, Section, load_config
from jaxnet.experiments.formatting import fmt, pct
from jaxnet.experiments.runs import curve, first_crossing, run_network, seconds_to
from jaxnet.experiments.subsets import use_subset, variant

CONFIG = "relu_vs_tanh"
ACTIVATIONS = ("relu", "leaky_relu", "maxout", "tanh", "sigmoid")
THRESHOLD = 0.25  # the paper's: 25% training error
SECOND_THRESHOLD = 0.15  # Fashion-MNIST is easier than CIFAR-10: a harder bar too


def settings(quick: bool) -> dict:
    if quick:
        return dict(lrs=(0.01, 0.03, 0.1), train=8000, test=2000, epochs=3.0, log_every=3)
    return dict(lrs=(0.003, 0.01, 0.03, 0.1, 0.3), train=None, test=None, epochs=10.0,
                log_every=10)


def config_for(ctx: Context, activation: str, lr: float, s: dict):
    v = variant(f"{activation},{lr}", ctx)
    config = load_config(CONFIG, v)
    config.num_epochs = s["epochs"]
    config.log_every_steps = s["log_every"]
    config.eval_every_epochs = s["epochs"]  # the test error only at the end
    if ctx.data_dir:
        config.data_dir = ctx.data_dir
    if s["train"]:
        use_subset(config, ctx, s["train"], s["test"])
    return config, v


def train_examples(s: dict, ctx: Context) -> int:
    return s["train"] or (60_000 if ctx.dataset == "fashion_mnist" else 50_000)


def run(ctx: Context) -> Section:
    s = settings(ctx.quick)
    examples = train_examples(s, ctx)
    results = {}
    for activation in ACTIVATIONS:
        for lr in s["lrs"]:
            config, v = config_for(ctx, activation, lr, s)
            r = run_network(ctx, config, "activations", f"{activation}_lr{lr:g}", CONFIG, v,
                            allow_divergence=True)
            epochs, acc = curve(r.records, "train")
            err = 1.0 - acc
            to25 = first_crossing(epochs, err, THRESHOLD)
            results[activation, lr] = dict(
                run=r, epochs=epochs, err=err, to25=to25,
                to15=first_crossing(epochs, err, SECOND_THRESHOLD),
                sec25=seconds_to(r.records, to25, examples),
                final=math.inf if "diverged" in r.metrics else float(err[-1]) if err.size
                else math.nan)

    def rank(item):  # fewest epochs to 25%; never reaching it ranks by the final error
        return (0, item["to25"]) if item["to25"] is not None else (1, item["final"])

    best = {a: min(((lr, results[a, lr]) for lr in s["lrs"]), key=lambda p: rank(p[1]))
            for a in ACTIVATIONS}

    series = [(f"{a} (lr {lr:g})", res["epochs"], res["err"],
               {"linestyle": "-" if a in ("relu", "leaky_relu", "maxout") else "--"})
              for a, (lr, res) in best.items()]
    fig1 = plots.curves(ctx.figure("fig1_relu_vs_tanh.png"), series,
                        title="Training error of the four-layer CNN, each unit at its best lr",
                        xlabel=f"epochs ({examples:,} training images each)",
                        ylabel="training error (running)", hline=THRESHOLD,
                        hline_label="25% (the paper's bar)", ylim=(0, 0.92))
    sweep = [(a, list(s["lrs"]),
              [results[a, lr]["to25"] if results[a, lr]["to25"] is not None else math.nan
               for lr in s["lrs"]], {"marker": "o"}) for a in ACTIVATIONS]
    fig_sweep = plots.curves(ctx.figure("fig1_lr_sweep.png"), sweep,
                             title="Learning-rate sweep: epochs to 25% training error (gaps: never)",
                             xlabel="learning rate (SGD, momentum 0.9)", ylabel="epochs to 25%")

    rows = [["activation", "best lr", "epochs to 25% train err", "train seconds to 25%",
             "epochs to 15%", "final train err", "test err", "x relu's epochs to 25%"]]
    relu25 = best["relu"][1]["to25"]
    for a, (lr, res) in best.items():
        ratio = (res["to25"] / relu25) if (res["to25"] and relu25) else None
        rows.append([a, f"{lr:g}", fmt(res["to25"], ".3f"), fmt(res["sec25"], ".1f"),
                     fmt(res["to15"], ".3f"), pct(res["final"]),
                     pct(res["run"].metrics.get("top1_err")), fmt(ratio, ".1f", "-")])
    tanh25 = best["tanh"][1]["to25"]
    if relu25 and tanh25:
        factor = tanh25 / relu25
        verdict = "held" if factor >= 4 else ("partly held" if factor > 1.2 else "did not hold")
        measured = (f"ReLU reached 25% training error in {relu25:.3f} epochs, tanh in"
                    f" {tanh25:.3f}: {factor:.1f}x")
    else:
        factor, verdict = None, "did not hold" if relu25 is None else "held"
        measured = (f"ReLU reached 25% in {fmt(relu25, '.3f')} epochs, tanh in"
                    f" {fmt(tanh25, '.3f')}")
    runs = [res["run"] for res in results.values()]
    return Section(
        key="activations", title="ReLU vs saturating units (AlexNet Fig. 1)",
        claim="A four-layer CNN with ReLUs reaches 25% training error on CIFAR-10 six times faster"
              " than an equivalent network with tanh neurons.",
        paper="6x fewer epochs to 25% training error (Fig. 1, CIFAR-10)",
        measured=measured, verdict=verdict,
        details=(f"small_cnn on {examples:,} {ctx.dataset} training images, {s['epochs']:g} epochs"
                 f" per run, batch 128, SGD 0.9 at a constant lr, no regularisation; lr swept over"
                 f" {', '.join(f'{lr:g}' for lr in s['lrs'])} for each of {len(ACTIVATIONS)} unit"
                 " types. Training error is the running error over each log window of "
                 f"{s['log_every']} batches, so crossings are known to about"
                 f" {s['log_every'] * 128 / examples:.3f} epochs."),
        table=rows,
        figures=[(fig1.rsplit("/", 1)[-1], "Training error vs epochs, one line per unit type at"
                  " its best learning rate (the paper's Figure 1)."),
                 (fig_sweep.rsplit("/", 1)[-1], "Epochs to 25% training error per learning rate.")],
        commands=[r.command for r in runs],
        hardware=sorted({r.hardware for r in runs}))
