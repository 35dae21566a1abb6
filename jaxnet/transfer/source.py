"""The network a transfer method starts from, and imported weights as a workdir.

`load_source(path)` reads a jaxnet workdir (trained by train.py, or written by `python -m
jaxnet.weights import --workdir`) or a weight file (.msgpack / .pth / .safetensors, for the
config's model) as a `SourceNet`: the config it was trained with (its model, its input
normalisation), the flax module and its eval variables (the Polyak averages when it kept them) as
host arrays. `write_workdir` / `read_workdir_variables` are the two directions of a workdir that
holds only model variables (checkpoint step 0, item "variables" laid out as
jaxnet.training.state.split_state does), which eval.py evaluates like any trained network.
"""
import copy
import dataclasses
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxnet import JaxnetError
from jaxnet.config import validate_config
from jaxnet.loop.checkpoint import Checkpointer
from jaxnet.loop.workdir import load_config, prepare_workdir
from jaxnet.training.state import build_model, eval_variables

NETWORK_METHODS = ("network", "finetune", "localize", "segment")  # checkpoints hold model "variables"
# (localize and segment: the backbone's own names, plus their task head, which a new task replaces)
WEIGHT_FILES = (".msgpack", ".pth", ".pt", ".safetensors")


@dataclasses.dataclass
class SourceNet:
    config: ml_collections.ConfigDict  # what the network was trained with (model, mean/std, ...)
    model: Any  # the flax module
    variables: dict  # {"params", "batch_stats"?}: what model.apply takes, host numpy arrays
    step: int  # the checkpoint step (0 for a weight file)
    origin: str  # the workdir or file it came from


def _host(tree):
    return jax.tree.map(np.asarray, tree)


def read_workdir_variables(workdir, step=None):
    """(config, {"params", "batch_stats", "ema_params"} as host arrays, step) of a network
    workdir's checkpoint `step` (None: the latest)."""
    workdir = Path(workdir)
    config = load_config(workdir)
    validate_config(config)
    if config.method not in NETWORK_METHODS:
        raise JaxnetError(f"{workdir} is a {config.method!r} workdir; a source network must be one of"
                          f" method {', '.join(NETWORK_METHODS)} (trained by train.py or imported with"
                          " python -m jaxnet weights import --workdir)")
    if not (workdir / "checkpoints").is_dir():
        raise JaxnetError(f"{workdir} has no checkpoints/ directory")
    with Checkpointer(workdir / "checkpoints", config.keep_checkpoints, read_only=True) as checkpointer:
        step, restored = checkpointer.restore_newest(
            lambda s: checkpointer.restore(s, {"variables": None}), step)
        variables = restored["variables"]
    variables = dict(_host(variables))
    variables.setdefault("batch_stats", {})
    variables.setdefault("ema_params", {})
    return config, variables, step


def load_source(path, step=None, config=None) -> SourceNet:
    """The network at `path`: a workdir (its checkpoint `step`, None or -1 = the latest) or a
    weight file of `config.model` (flax msgpack variables, or a torchvision state dict)."""
    if not path:
        raise JaxnetError("config.transfer.source_workdir is empty: set it to a trained or imported"
                          " workdir (or a weight file)")
    path = Path(path)
    step = None if step is None or step < 0 else step
    if path.is_dir():
        source_config, variables, step = read_workdir_variables(path, step)
        model = build_model(source_config)
        return SourceNet(source_config, model, eval_variables(variables), step, str(path))
    if path.suffix.lower() in WEIGHT_FILES and path.is_file():
        if config is None:
            raise JaxnetError(f"{path} is a weight file: its model comes from a config")
        from jaxnet.weights import import_file, load_variables

        if path.suffix.lower() == ".msgpack":
            variables = load_variables(path)
        else:
            variables = import_file(path, config.model.name)
        source_config = copy.deepcopy(config)
        source_config.method = "network"
        source_config.num_classes = head_classes(variables["params"])
        variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
        return SourceNet(source_config, build_model(source_config), eval_variables(
            {**variables, "ema_params": {}}), 0, str(path))
    raise JaxnetError(f"source {path} is neither a jaxnet workdir nor a weight file"
                      f" ({', '.join(WEIGHT_FILES)})")


def head_classes(params) -> int:
    """The output size of the last Dense layer in `params` (the classifier), by the model's own
    order of top-level modules ("fc", "fc8", "classifier", ...)."""
    for name in ("fc", "fc8", "classifier"):
        if name in params and "kernel" in params[name]:
            return int(np.shape(params[name]["kernel"])[-1])
    raise JaxnetError("cannot find the classifier (params fc / fc8 / classifier) in the variables")


def write_workdir(workdir, config, variables, meta=None) -> Path:
    """A workdir holding `variables` ({"params", "batch_stats"?}) of `config`'s model as its
    checkpoint at step 0 (item "variables" = params, batch_stats, ema_params {}); refuses a
    workdir that already has checkpoints."""
    workdir = Path(workdir)
    if (workdir / "checkpoints").is_dir() and any((workdir / "checkpoints").iterdir()):
        raise JaxnetError(f"{workdir} already holds checkpoints; import into a new --workdir")
    validate_config(config)
    prepare_workdir(workdir, config, ())
    item = {"params": _host(variables["params"]),
            "batch_stats": _host(variables.get("batch_stats", {})), "ema_params": {}}
    with Checkpointer(workdir / "checkpoints", config.keep_checkpoints) as checkpointer:
        checkpointer.save(0, {"variables": item}, meta={"method": "network", **(meta or {})})
        checkpointer.wait()
    return workdir
