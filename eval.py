"""Evaluate a trained workdir: python eval.py --workdir=DIR [--config=configs/NAME.py] [--split=test]
[--step=N] [--protocol=center|flip|ten_crop|googlenet_144|multiscale] [--ensemble=DIR,DIR]
[--labels_file=real.json] [--noreport] [--out=DIR].

Reports loss, top-1/top-5 accuracy and error over the whole split under the chosen test protocol
(of one model, or the softmax average of an ensemble), with the metrics beyond top-k, and
writes WORKDIR/eval/*.json with per-class results, figures and an HTML report beside it.
"""
import jax
from absl import app, flags

from jaxnet import JaxnetError
from jaxnet.loop.workdir import load_config
from jaxnet.tools.cli import (CONFIG, parse_flags, run_reporting_errors, start_jax,
                              workdir_or_default)

SPLIT = flags.DEFINE_string("split", None, "Split to evaluate (default: config.eval_split).")
STEP = flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
PROTOCOL = flags.DEFINE_string(
    "protocol", None, "Test protocol: center, flip, ten_crop, googlenet_144 or multiscale (default:"
    " config.eval_protocol); see jaxnet/evaluation/protocols.py.")
LABELS_FILE = flags.DEFINE_string(
    "labels_file", None, "Multi-label truth (ImageNet-ReaL's real.json format: one list of"
    " acceptable labels per example in split order; empty lists left out), also what the report"
    " page exports: adds real_top1_acc.")
REPORT = flags.DEFINE_bool(
    "report", True, "Also write per-class results, figures and the HTML report beside the JSON.")
OUT = flags.DEFINE_string(
    "out", None, "Write the eval JSON, per-class results, figures and report here instead of"
    " WORKDIR/eval/ (e.g. for a read-only workdir).")
ENSEMBLE = flags.DEFINE_list(
    "ensemble", [], "Other trained workdirs whose softmax is averaged with this one's (each"
    " restored with its own config.json, at its latest checkpoint).")


def workdir_config():
    """--config, else the config the workdir was trained with (its config.json)."""
    if CONFIG.value is not None:
        return CONFIG.value
    if not flags.FLAGS.workdir:
        raise JaxnetError("give --workdir=DIR (evaluated with its config.json), or --config too")
    return load_config(flags.FLAGS.workdir)


def main(argv):
    del argv  # the program name only: jaxnet.tools.cli.parse_flags refused any other argument
    config = run_reporting_errors(workdir_config)
    start_jax(config)  # before any other JAX call
    from jaxnet.methods import evaluate

    m = run_reporting_errors(lambda: evaluate(
        config, workdir_or_default(), SPLIT.value, STEP.value, PROTOCOL.value, ENSEMBLE.value,
        LABELS_FILE.value, REPORT.value, OUT.value))
    if jax.process_index() == 0:  # process 0 wrote the file; one report per job
        how = (f"{m['protocol']}, {m['num_views']} view(s)"
               + (f", {len(m['models'])} models" if len(m["models"]) > 1 else ""))
        print(f"{m['split']} at step {m['step']} ({m['num_examples']:,} examples; {how}): "
              f"loss {m['loss']:.4f} | top-1 {m['top1_acc']:.4f} (err {m['top1_err']:.4f}) | "
              f"top-5 {m['top5_acc']:.4f} (err {m['top5_err']:.4f})")
        for key in ("loc_err", "loc_err_top5", "mean_iou", "miou", "pixel_acc", "real_top1_acc",
                    "hier_cost_top5", "mistake_severity", "ece"):
            if m.get(key) is not None:
                print(f"  {key} {m[key]:.4f}")
        if m["path"]:
            print(f"written to {m['path']}" + (f" (report: {m['files']['page']})" if "files" in m else ""))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
