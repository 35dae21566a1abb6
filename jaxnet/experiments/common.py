"""What every experiment shares: the run cache, the config files, data subsets, the hardware line
and the shape of a report section.

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
import gzip
import importlib.util
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Callable

import jax
import ml_collections
import numpy as np

import jaxnet
from jaxnet.data.sources import FASHION_MNIST_FILES, load_fashion_mnist
from jaxnet.loop.training import TrainingDiverged
from jaxnet.loop.workdir import changed_fields, eval_file
from jaxnet.mesh import usable_cores

ROOT = Path(__file__).resolve().parents[2]  # the repository: configs/ and train.py live here
CONFIGS = ROOT / "configs"


@dataclasses.dataclass
class Context:
    """Where and how a report runs its experiments."""

    out: Path  # the report directory: index.html, REPORT.md, figures; runs/ holds the workdirs
    quick: bool = False  # small data, few epochs: the whole report in under 45 minutes on 2 cores
    dataset: str = "fashion_mnist"  # or cifar10 (where the user has it prepared)
    data_dir: str = ""
    log: Callable[[str], None] = print
    train_fn: Callable | None = None  # (config, workdir) -> metrics; default jaxnet.methods.train
    evaluate_fn: Callable | None = None  # (config, workdir, split) -> record; jaxnet.methods.evaluate

    def __post_init__(self):
        self.out = Path(self.out)

    def workdir(self, experiment: str, name: str) -> Path:
        return self.out / "runs" / experiment / name

    def figure(self, name: str) -> Path:
        """Path of a figure file, beside index.html."""
        return self.out / name


@dataclasses.dataclass
class Section:
    """One claim of the seed as the report shows it."""

    key: str
    title: str
    claim: str  # the seed's claim, in its words where possible
    paper: str  # the seed's numbers
    measured: str = ""  # one line: what jaxnet measured
    verdict: str = "not measured"  # held | partly held | did not hold | not measured
    details: str = ""  # a paragraph: how it was measured, what to make of it
    table: list = dataclasses.field(default_factory=list)  # rows of strings, the header first
    figures: list = dataclasses.field(default_factory=list)  # (file name beside index.html, caption)
    commands: list = dataclasses.field(default_factory=list)  # commands that give the numbers
    hardware: list = dataclasses.field(default_factory=list)  # where the numbers were measured
    seconds: float = 0.0  # this report's time on the section (cached runs cost ~0)
    error: str = ""  # set when the section failed; the report goes on with the others


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


# --- config files -------------------------------------------------------------------------

def config_path(name: str) -> Path:
    """configs/NAME.py, or a path to a config file relative to the repository (`tests/x.py`)."""
    return ROOT / name if name.endswith(".py") else CONFIGS / f"{name}.py"


def load_config(name: str, variant: str | None = None) -> ml_collections.ConfigDict:
    """configs/NAME.py's get_config(variant), as `--config=configs/NAME.py:VARIANT` loads it."""
    path = config_path(name)
    spec = importlib.util.spec_from_file_location(f"jaxnet_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant) if variant is not None else module.get_config()


def flatten(tree, prefix="") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _flag_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "'(" + ", ".join(str(v) for v in value) + (",)'" if len(value) == 1 else ")'")
    if isinstance(value, str):
        return value if value and " " not in value else repr(value)
    return str(value)


def train_command(config, name: str, variant: str | None, workdir) -> str:
    """The train.py command that trains `config`: the config file (and variant) plus a
    `--config.FIELD=VALUE` for every field that differs from the file's."""
    base = flatten(json.loads(load_config(name, variant).to_json()))
    now = flatten(json.loads(config.to_json()))
    flags = [f"--config.{k}={_flag_value(v)}" for k, v in sorted(now.items()) if base.get(k) != v]
    target = str(config_path(name).relative_to(ROOT)) + (f":{variant}" if variant is not None else "")
    return " ".join(["python train.py", f"--config={target}", *flags, f"--workdir={workdir}"])


# --- hardware -----------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> str:
    """CPU model and cores, the JAX devices, and the versions: where a number was measured."""
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    return (f"{cpu_model()}, {os.cpu_count()} cores ({usable_cores()} usable); {len(devices)} JAX"
            f" {devices[0].platform} device(s) ({', '.join(kinds)}); jax {jax.__version__},"
            f" jaxnet {jaxnet.__version__}")


# --- data subsets -------------------------------------------------------------------------

def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def balanced_indices(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` indices, as many per class as possible (a seeded random choice), in random order."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    take = [p[: count // len(classes) + (i < count % len(classes))] for i, p in enumerate(per)]
    return rng.permutation(np.concatenate(take))


def fashion_mnist_subset(ctx: Context, train: int, test: int) -> str:
    """A data_dir holding `train` training and `test` test images of Fashion-MNIST (class
    balanced, seeded), written once under OUT/data as IDX files; returns the directory."""
    target = ctx.out / "data" / f"fashion_mnist_{train}_{test}"
    done = target / "done"
    if done.exists():
        return str(target)
    target.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        source = load_fashion_mnist(split, ctx.data_dir)
        keep = np.sort(balanced_indices(source.labels, min(count, len(source))))
        image_file, label_file = FASHION_MNIST_FILES[split]
        _write_idx(target / image_file, source.images[keep, :, :, 0])
        _write_idx(target / label_file, source.labels[keep].astype(np.uint8))
    done.write_text("ok\n")
    return str(target)


def use_subset(config, ctx: Context, train: int, test: int) -> None:
    """Train on `train` and evaluate on `test` examples of the config's dataset (evaluated in
    batches of 256: any power-of-two device count up to 256 divides them)."""
    config.eval_batch_size = 256
    if config.dataset == "fashion_mnist":
        config.data_dir = fashion_mnist_subset(ctx, train, test)
    else:  # tfds datasets take split slices
        config.train_split = f"{config.train_split}[:{train}]"
        config.eval_split = f"{config.eval_split}[:{test}]"


def for_dataset(config, ctx: Context) -> None:
    """Point a config at the report's data directory (the dataset itself is the variant's)."""
    if ctx.data_dir and not config.data_dir:
        config.data_dir = ctx.data_dir


def variant(base: str, ctx: Context) -> str:
    """A config variant with the report's dataset appended (`resnet20` -> `resnet20,cifar10`)."""
    return base if ctx.dataset == "fashion_mnist" else f"{base},{ctx.dataset}"


# --- running networks, cached -------------------------------------------------------------

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
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return RunResult(name, workdir, metrics, read_records(workdir), seconds, command,
                     result["hardware"], False, extra)


def finished_train_run(config, config_name: str, workdir) -> RunResult | None:
    """A run of `config` (from configs/CONFIG_NAME.py) that `python train.py` finished in
    `workdir` (its config.json differing at most in the evaluation-only fields a resumed run may
    change, such as eval_protocol; an evaluation at the config's last epoch), read like a cached
    report run: for recipes too long for the report to train, trained once by hand. Its
    `seconds` are the training's (the log's train_seconds: compilation in, evaluations out; a
    resumed run restarts that clock, so the sessions' last readings are added). None otherwise."""
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
        seconds += previous if now < previous else 0.0  # a resumed session started from 0
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


# --- reading curves -----------------------------------------------------------------------

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


def fmt(value, spec=".2f", none="never") -> str:
    return none if value is None else format(value, spec)


def pct(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return "diverged" if np.isinf(value) else f"{100 * value:.{digits}f}%"
