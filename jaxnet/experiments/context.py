"""Where a report runs its experiments (Context), the shape of one report section (Section), and
the config files experiments start from, with the train.py command that reproduces a config."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Callable

import ml_collections

ROOT = Path(__file__).resolve().parents[2]  # the repository: configs/ and train.py live here
CONFIGS = ROOT / "configs"


@dataclasses.dataclass
class Context:
    """Where and how a report runs its experiments."""

    out: Path  # the report directory: index.html, REPORT.md, figures; runs/ holds the workdirs
    quick: bool = False  # small data, few epochs: the whole report in under an hour on 2 cores
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
