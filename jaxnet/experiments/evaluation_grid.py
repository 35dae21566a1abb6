"""GoogLeNet's Table 3 in miniature: more crops and more models lower the error, at a cost.

Three runs of the augmentation ablation's crop + flip recipe (configs/augmentation.py:crop_flip,
the quickstart's ResNet-10), differing only in their seed, evaluated by
jaxnet.experiments.protocol_grid under 1, 10 and 144 crops, alone and as ensembles of 2 and 3.
"""
from __future__ import annotations

from jaxnet.experiments import protocol_grid as grid
from jaxnet.experiments.context import Context, Section, load_config
from jaxnet.experiments.hardware import hardware
from jaxnet.experiments.runs import run_network
from jaxnet.experiments.subsets import for_dataset, use_subset, variant

CONFIG = "augmentation"
PROTOCOLS = ("center", "ten_crop", "googlenet_144")
SEEDS = (0, 1, 2)
PAPER = ("GoogLeNet, ILSVRC-2014 val, top-5 error: 1 model 1 crop 10.07%, 10 crops 9.15%, 144 crops"
         " 7.89%; 7 models 144 crops 6.67%")


def settings(quick: bool) -> dict:
    if quick:
        return dict(train=2000, test=2000, epochs=10.0, examples=500)
    return dict(train=None, test=None, epochs=None, examples=0)


def seed_run(ctx: Context, seed: int):
    """(config, RunResult) of the crop + flip ResNet-10 with this seed (trained once, cached;
    the labelling section reuses seed 0)."""
    s = settings(ctx.quick)
    v = variant("crop_flip", ctx)
    config = load_config(CONFIG, v)
    config.seed = seed
    if s["epochs"]:
        config.num_epochs = config.eval_every_epochs = s["epochs"]
        config.log_every_steps = 20
    for_dataset(config, ctx)
    if s["train"]:
        use_subset(config, ctx, s["train"], s["test"])
    return config, run_network(ctx, config, "evaluation_grid", f"seed{seed}", CONFIG, v)


def run(ctx: Context) -> Section:
    s = settings(ctx.quick)
    runs = [seed_run(ctx, seed)[1] for seed in SEEDS]
    workdirs = [str(r.workdir) for r in runs]
    ctx.log(f"[evaluation_grid] {len(workdirs)} models x {', '.join(PROTOCOLS)}")
    rows = grid.grid(workdirs, list(PROTOCOLS), examples=s["examples"])
    cell = {(r["models"], r["protocol"]): r for r in rows}
    base, best = cell[1, "center"], min(rows, key=lambda r: r["top1_err"])
    one_10, one_144, three_1 = cell[1, "ten_crop"], cell[1, "googlenet_144"], cell[len(SEEDS), "center"]
    measured = (f"top-1 error {100 * base['top1_err']:.2f}% (1 model, 1 crop); 10 crops"
                f" {100 * one_10['top1_err']:.2f}%, 144 crops {100 * one_144['top1_err']:.2f}%,"
                f" {len(SEEDS)} models {100 * three_1['top1_err']:.2f}%; best {100 * best['top1_err']:.2f}%"
                f" ({best['models']} model(s), {best['protocol']}, {best['relative_wall']:.0f}x the"
                " evaluation time)")
    gains = [base["top1_err"] - r["top1_err"] for r in (one_10, one_144, three_1)]
    verdict = "held" if all(g > 0 for g in gains) else "partly held" if any(g > 0 for g in gains) else "did not hold"
    table = [["models", "crops", "cost", "top-5 err", "top-1 err", "top-1 vs base", "eval s", "time vs base"]]
    for r in rows:
        table.append([str(r["models"]), str(r["crops"]), str(r["cost"]), f"{100 * r['top5_err']:.2f}%",
                      f"{100 * r['top1_err']:.2f}%", f"{100 * (r['top1_err'] - base['top1_err']):+.2f}",
                      f"{r['seconds']:.1f}", f"{r['relative_wall']:.1f}x"])
    n = base["num_examples"]
    return Section(
        key="evaluation_grid", title="Test protocols and ensembles (GoogLeNet Table 3)",
        claim="Averaging over more crops of each test image, and over several independently trained"
              " models, lowers the error; 144 crops and 7 models gave GoogLeNet its best result, at"
              " a large inference cost.",
        paper=PAPER, measured=measured, verdict=verdict,
        details=(f"{len(SEEDS)} ResNet-10s (the quickstart's recipe, crop + flip) differing only in"
                 f" their seed, scored on {n:,} test images; the 28 px images have each protocol's"
                 " small-image equivalent (docs/evaluation.md). On Fashion-MNIST top-5 error is near"
                 " zero, so the table's headline is top-1. Cost: forward passes per image relative"
                 " to one model and one crop."),
        table=table,
        commands=[r.command for r in runs] + [
            f"python -m jaxnet grid --workdirs={','.join(workdirs)} --protocols={','.join(PROTOCOLS)}"
            + (f" --examples={s['examples']}" if s["examples"] else "")],
        hardware=[hardware()])
