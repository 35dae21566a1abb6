"""The experiments' run cache, and reading a run's records (curves, crossings, times).

A network run is `jaxnet.methods.train(config, workdir)` (the same code path as train.py) in
`OUT/runs/EXPERIMENT/NAME`; when it finishes, `result.json` beside its checkpoints records the
resolved config, the final metrics, the wall time, the equivalent train.py command and the
hardware. A later report finds that file with the same config and reads it instead of training
again; a run whose config changed is deleted and redone; an unfinished run resumes from its
latest checkpoint.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from jaxnet import files
from jaxnet.experiments.context import Context, train_command
from jaxnet.experiments.hardware import cpu_model, hardware
from jaxnet.loop.train_loop import TrainingDiverged
from jaxnet.loop.workdir import changed_fields, eval_file


@dataclasses.dataclass
class RunResult:
    name: str
    workdir: Path
    metrics: dict  # the final evaluation (eval split)
    records: list  # metrics.jsonl
    seconds: float  # the training command's wall time when it ran
    command: str
    hardware: str
    cached: bool
    extra: dict  # other splits evaluated after training, e.g. {"train": {...}}


def read_records(workdir) -> list:
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def numbers(record: dict) -> dict:
    """The numeric entries of a metrics or eval record (no paths, names or lists)."""
    return {k: v for k, v in record.items() if isinstance(v, (int, float))}


def _config_json(config) -> dict:
    return json.loads(config.to_json())


def run_network(ctx: Context, config, experiment: str, name: str, config_name: str,
                config_variant: str | None, extra_splits=(), allow_divergence=False) -> RunResult:
    """Train `config` in OUT/runs/EXPERIMENT/NAME unless a finished run of the same config is
    there; then evaluate `extra_splits` (e.g. "train") once. `config_name`/`config_variant` name
    the config file it came from, for the train.py command. With `allow_divergence`, a run whose
    loss became NaN or inf (a too-large learning rate in a sweep) is a result too: its metrics are
    {"diverged": message}."""
    workdir = ctx.workdir(experiment, name)
    result_file = workdir / "result.json"
    want = _config_json(config)
    if result_file.exists():
        saved = json.loads(result_file.read_text())
        if saved["config"] == want and set(extra_splits) <= set(saved.get("extra", {})):
            return RunResult(name, workdir, saved["metrics"], read_records(workdir),
                             saved["seconds"], saved["command"], saved["hardware"], True,
                             saved.get("extra", {}))
        if saved["config"] != want:
            ctx.log(f"[{experiment}/{name}] the config changed: training again")
            shutil.rmtree(workdir)
    elif (workdir / "config.json").exists() and json.loads(
            (workdir / "config.json").read_text()) != want:
        shutil.rmtree(workdir)  # an unfinished run of another config
    command = train_command(config, config_name, config_variant, workdir)
    if result_file.exists():  # finished, only extra splits are missing
        saved = json.loads(result_file.read_text())
        metrics, seconds, extra = saved["metrics"], saved["seconds"], saved.get("extra", {})
    else:
        ctx.log(f"[{experiment}/{name}] {command}")
        train_fn = ctx.train_fn or _default_train
        start = time.time()
        try:
            metrics = train_fn(config, workdir)
        except TrainingDiverged as e:
            if not allow_divergence:
                raise
            metrics = {"diverged": str(e)}
            ctx.log(f"[{experiment}/{name}] diverged")
        seconds, extra = time.time() - start, {}
    for split in extra_splits:
        if split not in extra:
            evaluate_fn = ctx.evaluate_fn or _default_evaluate
            record = evaluate_fn(config, workdir, split)
            extra[split] = numbers(record)
    result = {"config": want, "metrics": metrics, "seconds": seconds, "command": command,
              "hardware": hardware(), "extra": extra,
              "finished": datetime.datetime.now().isoformat(timespec="seconds")}
    if result_file.exists():  # keep where and when the training ran
        saved = json.loads(result_file.read_text())
        result.update(hardware=saved["hardware"], finished=saved["finished"])
    files.write_text(result_file, json.dumps(result, indent=2) + "\n")
    return RunResult(name, workdir, metrics, read_records(workdir), seconds, command,
                     result["hardware"], False, extra)


def finished_train_run(config, config_name: str, workdir) -> RunResult | None:
    """A run of `config` (from configs/CONFIG_NAME.py) that `python train.py` finished in
    `workdir` (its config.json differing at most in the evaluation-only fields a resumed run may
    change, such as eval_protocol; an evaluation at the config's last epoch), read like a cached
    report run: for recipes too long for the report to train, trained once by hand. Its
    `seconds` are the training's (the log's train_seconds: compilation in, evaluations out; a
    resumed run restarts that clock, so each process's last reading is added). None otherwise."""
    workdir = Path(workdir)
    if not (workdir / "config.json").is_file():
        return None
    records = read_records(workdir)
    evals = [r for r in records if "top1_err" in r and "epoch" in r]
    finished = evals and abs(evals[-1]["epoch"] - config.num_epochs) < 1e-6
    changes = changed_fields(workdir, config) + changed_fields(workdir, config, ["num_epochs"])
    if changes or not finished:
        return None
    seconds, previous = 0.0, 0.0
    for r in evals:
        now = r.get("train_seconds", 0.0)
        seconds += previous if now < previous else 0.0  # a resumed run's clock started from 0
        previous = now
    metrics = numbers(evals[-1])
    return RunResult(workdir.name, workdir, metrics, records, seconds + previous,
                     train_command(config, config_name, None, workdir),
                     f"{cpu_model()}, {os.cpu_count()} cores (the report's machine; trained by"
                     f" train.py in {workdir})", True, {})


def evaluated_once(ctx: Context, config, run: RunResult, split: str) -> dict:
    """`split`'s metrics for the last checkpoint of a run from finished_train_run under
    config.eval_protocol: read from the eval file that eval.py (or an earlier report) wrote in
    WORKDIR/eval/, else evaluated now, which writes that file."""
    path = eval_file(run.workdir, split, run.metrics["step"], config.eval_protocol)
    if path.exists():
        record = json.loads(path.read_text())
    else:
        ctx.log(f"[{run.name}] evaluating {split} under {config.eval_protocol}")
        record = (ctx.evaluate_fn or _default_evaluate)(config, run.workdir, split)
    return numbers(record)


def _default_train(config, workdir):
    from jaxnet.methods import train

    return train(config, workdir)


def _default_evaluate(config, workdir, split):
    from jaxnet.methods import evaluate

    return evaluate(config, workdir, split=split)


def curve(records, split: str, key: str = "top1_acc"):
    """(epochs, values) of the records of `split` (train: running means over each log window;
    "eval": the evaluations during training, whatever the eval split's name)."""
    if split == "eval":
        rows = [r for r in records if "top1_err" in r and key in r and "epoch" in r]
    else:
        rows = [r for r in records if r.get("split") == split and key in r and "epoch" in r]
    return np.array([r["epoch"] for r in rows]), np.array([r[key] for r in rows])


def first_crossing(x, y, threshold: float, below: bool = True):
    """The first x where y <= threshold (or >= with below=False); None if never."""
    hit = np.flatnonzero(y <= threshold if below else y >= threshold)
    return float(x[hit[0]]) if hit.size else None


def seconds_to(records, epoch, examples: int) -> float | None:
    """Training seconds until the train record at `epoch` (an epoch = `examples` images), summed
    from each log window's images/sec: compilation and evaluations are left out."""
    if epoch is None:
        return None
    total, prev = 0.0, 0.0
    for r in records:
        if r.get("split") != "train" or "images_per_sec" not in r:
            continue
        total += (r["epoch"] - prev) * examples / max(r["images_per_sec"], 1e-9)
        prev = r["epoch"]
        if r["epoch"] >= epoch - 1e-9:
            return total
    return None
