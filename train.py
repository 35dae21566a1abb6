"""Train any method: python train.py --config=configs/NAME.py [--config.FIELD=VALUE ...] [--workdir=DIR].

Re-running the same command with the same workdir resumes from its latest checkpoint.
"""
import jax
from absl import app, flags

from jaxnet.tools.cli import (CONFIG, parse_flags, run_reporting_errors, start_jax,
                        workdir_or_default)

ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir although config fields changed that affect"
    " the result (batch size, learning rate, ...); the changes are recorded in"
    " WORKDIR/config_history.jsonl. Extending num_epochs or changing the logging, evaluation or"
    " checkpoint cadence needs no flag.")


def main(argv):
    del argv  # the program name only: jaxnet.tools.cli.parse_flags refused any other argument
    start_jax(CONFIG.value)  # before any other JAX call
    from jaxnet.methods import train

    metrics = run_reporting_errors(lambda: train(
        CONFIG.value, workdir_or_default(), allow_config_change=ALLOW_CONFIG_CHANGE.value))
    if jax.process_index() == 0:  # one summary line per job, not per host
        print(f"final {CONFIG.value.eval_split}: top-1 {metrics['top1_acc']:.4f}, "
              f"top-5 {metrics['top5_acc']:.4f}, loss {metrics['loss']:.4f}"
              + "".join(f", {k} {metrics[k]:.4f}" for k in ("loc_err", "loc_err_top5", "mean_iou",
                                                             "miou", "pixel_acc") if k in metrics))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
