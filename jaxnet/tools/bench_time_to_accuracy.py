"""Minutes to a target accuracy: the quickstart recipe in jaxnet and, in the same run, its PyTorch
twin (jaxnet.tools.torch_recipe: same net, data, augmentation, optimizer and lr at every step).

    python -m jaxnet bench_time_to_accuracy                 # configs/fashion_mnist.py, 3 runs each
    python -m jaxnet bench_time_to_accuracy --runs=1 --torch=false --config.num_epochs=2

Runs alternate (jaxnet, PyTorch, jaxnet, ...) so both see the same machine load, each from
scratch with seed config.seed + run. Both evaluate the eval split every --eval_every_epochs and
at the end; "minutes to target" is the training time (compilation included, evaluations excluded)
at the first evaluation that reaches --target. Prints one line per run and the medians; --json_out
appends one JSON record per run. jaxnet's runs are written to WORKDIR/jaxnet_runN (--workdir,
default workdirs/time_to_accuracy), each replaced when run again.
"""
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
from absl import flags

from jaxnet import JaxnetError
from jaxnet.tools.cli import (
    CONFIG,
    WORKDIR,
    run_reporting_errors,
    start_jax,
)

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "fashion_mnist.py"
FLAGS = flags.FLAGS


def define_flags() -> None:
    """This command's flags, defined when it runs (not on import: jaxnet.tools.bench_throughput has
    flags of the same names, and a test process imports both)."""
    flags.DEFINE_integer("runs", 3, "Runs of each framework (the medians are reported).")
    flags.DEFINE_float("target", 0.93, "Target top-1 accuracy on the eval split.")
    flags.DEFINE_bool("torch", True, "Also run the PyTorch twin (when torch is installed).")
    flags.DEFINE_float("eval_every_epochs", 1.0,
                       "Evaluate this often (both frameworks); 0 = the config's cadence.")
    flags.DEFINE_string("json_out", "", "Append one JSON record per run to this file.")
    FLAGS.set_default("config", str(QUICKSTART))


def minutes_to(target: float, evals) -> float | None:
    """Training minutes at the first (step, accuracy, seconds) evaluation reaching `target`."""
    for _, accuracy, seconds in evals:
        if accuracy >= target:
            return seconds / 60
    return None


def run_jaxnet(config, workdir: Path):
    """Train `config` from scratch in `workdir`; its evaluations as (step, top1_acc, seconds)
    and the whole run's wall seconds (start-up, compilation and evaluations included)."""
    from jaxnet.methods import train

    shutil.rmtree(workdir, ignore_errors=True)
    start = time.time()
    train(config, workdir)
    wall = time.time() - start
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["top1_acc"], r["train_seconds"]) for r in records
             if r["split"] == config.eval_split and "train_seconds" in r]
    return evals, wall


def run_torch(config):
    """The PyTorch twin of `config`, on the same splits and the same lr at every step."""
    from jaxnet.data.sources import ArraySource, create_source
    from jaxnet.loop.train_loop import step_counts
    from jaxnet.mesh import usable_cores
    from jaxnet.tools import torch_recipe
    from jaxnet.training.optim import create_schedule

    torch_recipe.check_supported(config)
    check_same_net(config, torch_recipe.build_net(config))
    train = create_source(config, config.train_split)
    test = create_source(config, config.eval_split)
    if not isinstance(train, ArraySource) or not isinstance(test, ArraySource):
        raise JaxnetError("the PyTorch twin needs an in-memory dataset (e.g. Fashion-MNIST)")
    per_epoch, total, every = step_counts(config, len(train))  # as jaxnet's loop counts them
    rates = np.asarray(create_schedule(config, per_epoch)(np.arange(total)))
    evals = []

    def on_eval(step, accuracy, seconds):
        evals.append((step, accuracy, seconds))
        print(f"pytorch {config.eval_split} step {step}/{total} | epoch {step / per_epoch:.2f} |"
              f" top1_acc {accuracy:.4f} | {seconds / 60:.2f} min of training", flush=True)

    start = time.time()
    torch_recipe.train_and_evaluate(
        config, (train.images, train.labels), (test.images, test.labels), rates,
        {s for s in range(1, total + 1) if s % every == 0 or s == total}, on_eval, usable_cores())
    return evals, time.time() - start


def check_same_net(config, torch_net) -> None:
    """The twin must have exactly jaxnet's parameters (BatchNorm statistics aside)."""
    import jax

    from jaxnet.training.state import (
        build_model,
        count_params,
        init_variables,
        input_shape,
    )

    shapes = jax.eval_shape(lambda: init_variables(jax.random.PRNGKey(0), build_model(config),
                                                   input_shape(config)))
    ours, theirs = count_params(shapes["params"]), sum(p.numel() for p in torch_net.parameters())
    if ours != theirs:
        raise JaxnetError(f"the PyTorch twin has {theirs:,} parameters, jaxnet's net {ours:,}")


def describe(name, run, evals, wall, target):
    to_target = minutes_to(target, evals)
    reached = f"{to_target:.2f} min to {target:.1%}" if to_target else f"never reached {target:.1%}"
    return (f"{name} run {run}: {reached}; final {evals[-1][1]:.2%} after {evals[-1][2] / 60:.2f}"
            f" min of training ({wall / 60:.2f} min in all)")


def main(argv):
    del argv
    config = CONFIG.value
    start_jax(config)
    from jaxnet.experiments.hardware import hardware

    if FLAGS.eval_every_epochs:
        config.eval_every_epochs = FLAGS.eval_every_epochs
    use_torch = FLAGS.torch
    if use_torch:
        try:
            import torch

            print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
        except ImportError:
            print("torch is not installed (pip install torch torchvision): jaxnet only")
            use_torch = False
    print(f"hardware: {hardware()}", flush=True)
    results, first_seed = {"jaxnet": [], "pytorch": []}, config.seed
    workdir = Path(WORKDIR.value or "workdirs/time_to_accuracy")  # runs in WORKDIR/jaxnet_runN
    for run in range(FLAGS.runs):
        config.seed = first_seed + run
        frameworks = [("jaxnet", lambda: run_jaxnet(config, workdir / f"jaxnet_run{run}"))]
        if use_torch:
            frameworks.append(("pytorch", lambda: run_torch(config)))
        for name, fn in frameworks:
            evals, wall = run_reporting_errors(fn)
            final_accuracy, final_minutes = evals[-1][1], evals[-1][2] / 60
            results[name].append((minutes_to(FLAGS.target, evals), final_accuracy, final_minutes))
            print(describe(name, run, evals, wall, FLAGS.target), flush=True)
            if FLAGS.json_out:
                with open(FLAGS.json_out, "a") as f:
                    f.write(json.dumps({"framework": name, "run": run, "seed": config.seed,
                                        "target": FLAGS.target, "evals": evals,
                                        "minutes_to_target": results[name][-1][0],
                                        "wall_seconds": wall, "hardware": hardware()}) + "\n")
    summary(results, FLAGS.target)


def median_minutes(times):
    """The median minutes to target, counting a run that never got there as infinitely slow."""
    value = statistics.median([t if t is not None else float("inf") for t in times])
    return None if value == float("inf") else value


def summary(results, target: float) -> None:
    """Per framework, the medians over its runs of (minutes to target, final top-1, minutes of
    training), and the ratios between the frameworks."""
    medians = {}
    for name, runs in results.items():
        if not runs:
            continue
        to_target, final, minutes = zip(*runs)
        medians[name] = (median_minutes(to_target), statistics.median(final),
                         statistics.median(minutes))
        shown = f"{medians[name][0]:.2f} min" if medians[name][0] is not None else "not reached"
        print(f"{name}: medians over {len(runs)} run(s): {shown} to {target:.1%}; final top-1"
              f" {medians[name][1]:.2%} after {medians[name][2]:.2f} min of training")
    if "jaxnet" in medians and "pytorch" in medians:
        ours, theirs = medians["jaxnet"], medians["pytorch"]
        print(f"jaxnet / PyTorch minutes of training: {ours[2] / theirs[2]:.2f}x")
        if ours[0] and theirs[0]:
            print(f"jaxnet / PyTorch minutes to {target:.1%}: {ours[0] / theirs[0]:.2f}x")
