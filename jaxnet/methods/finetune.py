"""config.method = "finetune": a network trained further from another one's weights.

The starting point is config.transfer.source_workdir (a workdir trained by train.py or written by
`python -m jaxnet weights import --workdir`, or a weight file of config.model); config.model must be
the source's model. Everything but the classifier (and GoogLeNet's auxiliary heads) starts from the
source's parameters and BatchNorm statistics; the classifier is new, initialised for
config.num_classes. Parameters whose path ("stage1_block1/conv1/kernel", "fc/bias", ...) matches the
regex config.transfer.freeze are not trained (no update, no weight decay); the new head learns at
config.transfer.head_lr_mult x the schedule's rate, the rest at the schedule's rate (optax
multi_transform over the config's SGD). With config.transfer.bn_frozen, BatchNorm layers use the
source's running statistics in training too and keep them unchanged (the net runs in eval mode,
so dropout is off as well). Training itself is jaxnet.loop.train_loop.train_loop's (checkpoints,
resume, evaluation, divergence checks), and its checkpoints are a network's: eval.py, feature
extraction and `python -m jaxnet weights export --workdir` read them like any other.
"""
import functools
import json
import re

import jax
import numpy as np
import optax
from flax import traverse_util

from jaxnet import JaxnetError
from jaxnet.evaluation.evaluator import Predictor
from jaxnet.loop.train_loop import train_loop
from jaxnet.methods import network
from jaxnet.training.optim import create_optimizer, create_schedule
from jaxnet.training.sharding import state_shardings
from jaxnet.training.state import build_model, create_train_state, init_variables, input_shape
from jaxnet.transfer.extract import head_module
from jaxnet.transfer.source import load_source

RESUME_FIELDS = network.RESUME_FIELDS + (
    "transfer.source_workdir", "transfer.source_step", "transfer.freeze", "transfer.head_lr_mult",
    "transfer.bn_frozen", "classes", "examples_per_class")
EVAL_FIELDS = network.EVAL_FIELDS
GROUPS = ("backbone", "head", "frozen")


def group_sizes(groups, abstract) -> dict:
    """Parameters in each group of GROUPS: `groups` labels every leaf of `abstract` (shapes)."""
    counts = {g: 0 for g in GROUPS}
    sizes = traverse_util.flatten_dict(abstract)
    for path, group in traverse_util.flatten_dict(groups).items():
        counts[group] += int(np.prod(sizes[path].shape))
    return counts


def check_config(config) -> None:
    t = config.transfer
    if not t.source_workdir:
        raise JaxnetError("config.transfer.source_workdir is empty: fine-tuning needs a trained or"
                          " imported network (a workdir, or a weight file)")
    try:
        re.compile(t.freeze)
    except re.error as e:
        raise JaxnetError(f"config.transfer.freeze is not a regular expression ({e}): {t.freeze!r}") from e
    if t.head_lr_mult < 0:
        raise JaxnetError(f"config.transfer.head_lr_mult must be >= 0, got {t.head_lr_mult}")
    if config.schedule == "plateau":
        raise JaxnetError("config.schedule=plateau is not supported by fine-tuning (one plateau rule"
                          " per parameter group); use cosine, multistep, exponential or constant")


def head_modules(model, params) -> set:
    """The top-level modules a fine-tune replaces: the classifier and any auxiliary heads."""
    return {head_module(model)} | {name for name in params if re.fullmatch(r"aux\d+", name)}


def param_path(path) -> str:
    return "/".join(str(p) for p in path)


def param_groups(params, freeze: str, heads) -> dict:
    """A pytree like `params` of "frozen" (path matches `freeze`), "head" (in a head module) or
    "backbone"."""
    pattern = re.compile(freeze) if freeze else None
    flat = traverse_util.flatten_dict(params)
    groups = {}
    for path in flat:
        if pattern is not None and pattern.search(param_path(path)):
            groups[path] = "frozen"
        else:
            groups[path] = "head" if path[0] in heads else "backbone"
    return traverse_util.unflatten_dict(groups)


def finetune_optimizer(config, schedule, groups) -> optax.GradientTransformation:
    """The config's optimizer per group: the schedule's rate for the backbone, head_lr_mult x it
    for the head, nothing (no update, no decay) for frozen parameters. `groups`: a pytree of group
    names like the params (param_groups)."""
    mult = config.transfer.head_lr_mult
    return optax.multi_transform({
        "backbone": create_optimizer(config, schedule),
        "head": create_optimizer(config, lambda step: mult * schedule(step)),
        "frozen": optax.set_to_zero(),
    }, groups)


class RunningStatistics:
    """A model whose training forward pass runs in eval mode: BatchNorm normalises with (and
    keeps) its running statistics, dropout is off (config.transfer.bn_frozen)."""

    def __init__(self, model):
        self.model = model

    def apply(self, variables, images, train=False, **kwargs):
        del train
        return self.model.apply(variables, images, train=False, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def merge_source(init_tree, source_tree, heads, what: str):
    """`init_tree` with every leaf outside the head modules taken from `source_tree` (host
    arrays), which must have it with the same shape; leaves of the source's own heads are left."""
    flat_init = traverse_util.flatten_dict(init_tree)
    flat_source = traverse_util.flatten_dict(source_tree) if source_tree else {}
    merged = {}
    for path, leaf in flat_init.items():
        if path[0] in heads:
            merged[path] = leaf
            continue
        if path not in flat_source:
            raise JaxnetError(f"the source network has no {what} {param_path(path)}: not the same"
                              " architecture as config.model")
        value = np.asarray(flat_source[path])
        if value.shape != leaf.shape:
            raise JaxnetError(f"the source's {what} {param_path(path)} has shape {value.shape}, this"
                              f" model's {tuple(leaf.shape)}: not the same architecture")
        merged[path] = jax.device_put(value.astype(leaf.dtype), leaf.sharding)
    extra = sorted(param_path(p) for p in flat_source if p not in flat_init and p[0] not in heads
                   and not re.fullmatch(r"aux\d+", str(p[0])))
    if extra:
        raise JaxnetError(f"the source network has {what} {extra[0]} that this model lacks: not the"
                          " same architecture as config.model")
    return traverse_util.unflatten_dict(merged)


def open_source(config):
    t = config.transfer
    source = load_source(t.source_workdir, t.source_step, config)
    mine, theirs = json.loads(config.model.to_json()), json.loads(source.config.model.to_json())
    if mine != theirs:
        raise JaxnetError(f"config.model {mine} is not the source network's {theirs}"
                          f" ({source.origin}): fine-tuning keeps the architecture (set config.model"
                          " to the source's)")
    if source.config.channels != config.channels:
        raise JaxnetError(f"the source network takes {source.config.channels}-channel images, this"
                          f" config has channels={config.channels}")
    return source


def train_state_from_source(config, model, mesh, schedule, shape, abstract, heads, source,
                            log=print):
    """(tx, counts, init) of a network started from `source` (None: from scratch or resuming):
    the per-group optimizer, the parameter counts per group (group_sizes) and init(rng), the
    train state placed on `mesh` with every weight but the `heads` taken from the source."""
    groups = param_groups(abstract, config.transfer.freeze, heads)
    tx = finetune_optimizer(config, schedule, groups)

    def create(rng):
        return create_train_state(rng, model, tx, shape, ema=config.ema_decay > 0)

    shapes = jax.eval_shape(create, jax.random.PRNGKey(0))
    jit_create = jax.jit(create, out_shardings=state_shardings(shapes, mesh, config))

    def init(rng):
        state = jit_create(rng)
        if source is None:
            return state  # resuming: the checkpoint replaces all of it
        log(f"starting from {source.origin} (step {source.step})")
        params = merge_source(state.params, source.variables["params"], heads, "parameter")
        stats = merge_source(state.batch_stats, source.variables.get("batch_stats", {}), heads,
                             "BatchNorm statistic") if state.batch_stats else state.batch_stats
        ema = jax.tree.map(lambda p: p.copy(), params) if state.ema_params else state.ema_params
        return state.replace(params=params, batch_stats=stats, ema_params=ema)

    return tx, group_sizes(groups, abstract), init


def build(config, steps_per_epoch: int, mesh, run=None, log=print):
    """train_loop's `build`: (model, schedule, tx, init) where init(rng) is the train state with
    the source's weights (a new head), unless `run` already has a checkpoint to resume."""
    resuming = run is not None and run.checkpointer.latest_step()
    source = None if resuming else open_source(config)  # before compiling anything: fail early
    model = build_model(config)
    schedule = create_schedule(config, steps_per_epoch)
    abstract = jax.eval_shape(lambda r: init_variables(r, model, input_shape(config))["params"],
                              jax.random.PRNGKey(0))
    heads = head_modules(model, abstract)
    tx, counts, init = train_state_from_source(config, model, mesh, schedule, input_shape(config),
                                               abstract, heads, source, log)
    log(f"fine-tuning {config.model.name}: new head {', '.join(sorted(heads))}; trained"
        f" {counts['backbone']:,} (backbone) + {counts['head']:,} (head, lr x"
        f" {config.transfer.head_lr_mult:g}) parameters, frozen {counts['frozen']:,};"
        f" BatchNorm statistics {'frozen' if config.transfer.bn_frozen else 'updated'}")
    return (RunningStatistics(model) if config.transfer.bn_frozen else model), schedule, tx, init


def fit(config, run) -> Predictor:
    return train_loop(config, run, build=functools.partial(build, run=run, log=run.logger.print))


def restore(config, run, step=None) -> Predictor:
    """A fine-tuned network's checkpoints are a network's."""
    return network.restore(config, run, step)
