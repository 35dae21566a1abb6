"""Plain vs residual (ResNet, Figs. 4 and 6): the degradation problem on the CIFAR nets.

configs/cifar_resnet.py:{plain,resnet}{20,56}: the same 6n+2-layer nets with and without option A
shortcuts, trained alike. Degradation means the deeper plain net has the higher *training* error
(not overfitting); the residual nets should not degrade. Curves: running training error (thin)
and test error (bold) against epochs, as the paper's Figure 6.
"""
from __future__ import annotations

from jaxnet.experiments import plots
from jaxnet.experiments.context import Context, Section, load_config
from jaxnet.experiments.formatting import pct
from jaxnet.experiments.runs import curve, run_network
from jaxnet.experiments.subsets import use_subset, variant

CONFIG = "cifar_resnet"
PAPER_TEST_ERR = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97,
                  "resnet110": 6.43}
PAPER_PARAMS = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M"}


def settings(quick: bool) -> dict:
    if quick:
        return dict(nets=("plain20", "plain56", "resnet20", "resnet56"), train=5000, test=2000,
                    epochs=4.0, eval_every=0.5, log_every=5)
    return dict(nets=("plain20", "plain32", "plain44", "plain56", "resnet20", "resnet32",
                      "resnet44", "resnet56", "resnet110"), train=None, test=None, epochs=None,
                eval_every=None, log_every=None)


def config_for(ctx: Context, net: str, s: dict):
    v = variant(net, ctx)
    config = load_config(CONFIG, v)
    if s["epochs"]:  # the paper's schedule compressed: lr / 10 at 50% and 75% of the epochs
        config.num_epochs = s["epochs"]
        config.decay_epochs = (s["epochs"] / 2, s["epochs"] * 3 / 4)
        config.eval_every_epochs = s["eval_every"]
        config.log_every_steps = s["log_every"]
        config.warmup_epochs = 0.0
    if ctx.data_dir:
        config.data_dir = ctx.data_dir
    if s["train"]:
        use_subset(config, ctx, s["train"], s["test"])
    return config, v


def train_nets(ctx: Context, nets=None) -> dict:
    """{net: RunResult} of the trained nets (cached): also what the loss landscapes start from."""
    s = settings(ctx.quick)
    out = {}
    for net in nets or s["nets"]:
        config, v = config_for(ctx, net, s)
        out[net] = run_network(ctx, config, "plain_residual", net, CONFIG, v)
    return out


def final_train_error(result, tail: int = 3):
    """Mean running training error of the last `tail` log windows."""
    _, acc = curve(result.records, "train")
    return float(1 - acc[-tail:].mean()) if acc.size else None


def run(ctx: Context) -> Section:
    s = settings(ctx.quick)
    runs = train_nets(ctx)
    panels = []
    for kind, title in (("plain", "plain nets"), ("resnet", "ResNets (option A shortcuts)")):
        series = []
        for i, net in enumerate(n for n in runs if n.startswith(kind)):
            r = runs[net]
            colour = plots.COLOURS[i]
            x, acc = curve(r.records, "train")
            series.append((f"{net}: train", x, 1 - acc, {"linewidth": 0.9, "color": colour,
                                                         "alpha": 0.8}))
            x, acc = curve(r.records, "eval")
            series.append((f"{net}: test", x, 1 - acc, {"linewidth": 2.4, "color": colour}))
        panels.append((title, series))
    fig = plots.curves(ctx.figure("plain_vs_residual.png"), None, panels=panels,
                       title="Plain vs residual CIFAR nets: training (thin) and test (bold) error",
                       xlabel="epochs", ylabel="error", ylim=(0, 1))
    rows = [["net", "params (paper)", "final train err (running)", "test err", "paper test err (CIFAR-10)"]]
    for net, r in runs.items():
        depth = int(net.removeprefix("resnet").removeprefix("plain"))
        rows.append([net, PAPER_PARAMS[depth], pct(final_train_error(r)), pct(r.metrics["top1_err"]),
                     f"{PAPER_TEST_ERR[net]:.2f}%" if net in PAPER_TEST_ERR else
                     ("higher than plain-20" if net == "plain56" else "-")])
    te = {n: final_train_error(r) for n, r in runs.items()}
    degrade = te["plain56"] > te["plain20"]
    residual_ok = te["resnet56"] <= te["resnet20"] + 0.005
    verdict = ("held" if degrade and residual_ok else "partly held" if degrade or residual_ok
               else "did not hold")
    measured = (f"final training error plain-20 {pct(te['plain20'])}, plain-56 {pct(te['plain56'])};"
                f" ResNet-20 {pct(te['resnet20'])}, ResNet-56 {pct(te['resnet56'])}")
    examples = s["train"] or "all"
    epochs = s["epochs"] or "64k iterations of"
    return Section(
        key="plain_residual", title="Plain vs residual nets (ResNet Fig. 6, CIFAR nets)",
        claim="Deeper plain nets have higher training error (the degradation problem: plain-56 is"
              " worse than plain-20), while deeper residual nets keep improving.",
        paper="CIFAR-10 test error: ResNet-20 8.75%, -32 7.51%, -44 7.17%, -56 6.97%, -110 6.43%;"
              " plain-56 above plain-20 in training and test error",
        measured=measured, verdict=verdict,
        details=(f"cifar_plainN / cifar_resnetN (16/32/64 channels, option A) on {examples}"
                 f" {ctx.dataset} training images, {epochs} epochs, SGD 0.9, lr 0.1 / 10 at 50%"
                 " and 75% of training, weight decay 1e-4, pad-crop + flip, batch 128. Final"
                 " training error: the running error of the last three log windows."),
        table=rows,
        figures=[(fig.rsplit("/", 1)[-1], "Training (thin) and test (bold) error of the plain"
                  " (left) and residual (right) nets, as the paper's Figure 6.")],
        commands=[r.command for r in runs.values()],
        hardware=sorted({r.hardware for r in runs.values()}))
