"""The training loop: build everything from the config, resume if the workdir has a checkpoint,
train with periodic logging / evaluation / checkpoints, and stop cleanly on divergence.
"""
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError
from jaxnet.config import validate_config
from jaxnet.data.pipeline import train_loader
from jaxnet.data.sources import create_source
from jaxnet.evaluation.evaluate import evaluate
from jaxnet.models import create_model
from jaxnet.training.checkpoint import Checkpointer, abstract_like
from jaxnet.training.logger import MetricLogger
from jaxnet.training.optim import create_optimizer, create_schedule, observe_plateau
from jaxnet.training.sharding import (batch_sharded, check_batch_size, create_mesh, replicated,
                                      shard_batch, shardings_of, state_shardings)
from jaxnet.training.state import count_params, create_train_state
from jaxnet.training.steps import make_eval_step, make_train_step

# Config fields that must match for a workdir's checkpoint to be resumed.
IDENTITY_FIELDS = ("model", "num_classes", "image_size", "channels", "dataset", "optimizer",
                   "dtype")


class TrainingDiverged(JaxnetError):
    """The loss became NaN or inf; nothing after the last good checkpoint was saved."""


def build_model(config):
    """The config's model; every `config.model` key but `name` is a create_model override."""
    options = {k: v for k, v in config.model.items() if k != "name"}
    dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
    try:
        return create_model(config.model.name, num_classes=config.num_classes, dtype=dtype,
                            **options)
    except ValueError as e:
        raise JaxnetError(f"config.model: {e}") from e


def build_training(config, steps_per_epoch: int, mesh):
    """Model, lr schedule, optimizer and a jitted `init(rng) -> TrainState` placed on `mesh` as
    config.param_sharding says (jaxnet.training.sharding.state_shardings)."""
    model = build_model(config)
    schedule = create_schedule(config, steps_per_epoch)
    tx = create_optimizer(config, schedule)
    size = config.device_resize or config.image_size
    input_shape = (1, size, size, config.channels)

    def create(rng):
        return create_train_state(rng, model, tx, input_shape, ema=config.ema_decay > 0)

    shardings = state_shardings(jax.eval_shape(create, jax.random.PRNGKey(0)), mesh, config)
    init = jax.jit(create, out_shardings=shardings)
    return model, schedule, tx, init


def prepare_workdir(workdir, config) -> Path:
    """Create the workdir, refuse one that holds another model's run, write config.json."""
    workdir = Path(workdir)
    try:
        (workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write_test{jax.process_index()}"  # one per process: no race
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise JaxnetError(f"workdir {workdir} is not writable: {e}") from e
    resolved = json.loads(config.to_json())
    saved_path = workdir / "config.json"
    has_checkpoints = any((workdir / "checkpoints").iterdir())
    if saved_path.exists() and has_checkpoints:
        saved = json.loads(saved_path.read_text())
        changed = [f for f in IDENTITY_FIELDS if saved.get(f) != resolved.get(f)]
        if changed:
            details = "; ".join(f"{f}: {saved.get(f)!r} there, {resolved.get(f)!r} now" for f in changed)
            raise JaxnetError(
                f"workdir {workdir} holds checkpoints of a different run ({details}). Use another"
                " --workdir, or delete that one if you no longer need it; nothing was changed."
            )
    if jax.process_index() == 0:
        partial = workdir / "config.json.tmp"  # then renamed: other processes never read half a file
        partial.write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n")
        partial.replace(saved_path)
    return workdir


def train_and_evaluate(config, workdir, stop_at_step=None):
    """Train `config` in `workdir` (resuming from its latest checkpoint); return the final eval.

    `stop_at_step` ends this invocation early, with a checkpoint, as a preemption or a
    time-limited job would; running again resumes. Returns None when stopped early.
    """
    validate_config(config)
    mesh = create_mesh()
    check_batch_size(config.batch_size, mesh)
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    is_main = jax.process_index() == 0
    train_source = create_source(config, config.train_split)
    eval_source = create_source(config, config.eval_split)
    workdir = prepare_workdir(workdir, config)
    steps_per_epoch = len(train_source) // config.batch_size
    if steps_per_epoch == 0:
        raise JaxnetError(f"the {len(train_source)}-example train split is smaller than one batch"
                          f" ({config.batch_size})")
    total_steps = math.ceil(config.num_epochs * steps_per_epoch)
    eval_every = round(config.eval_every_epochs * steps_per_epoch) or total_steps

    model, schedule, tx, init = build_training(config, steps_per_epoch, mesh)
    state = init(jax.random.PRNGKey(config.seed))
    state_sharding, data_sharding = shardings_of(state), batch_sharded(mesh)

    checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints)
    data_iter = iter(train_loader(train_source, config, jax.process_index(), jax.process_count()))
    start_step = checkpointer.latest_step() or 0
    if start_step:
        state = checkpointer.restore(abstract_like(state, state_sharding), data_iter)

    train_step = jax.jit(make_train_step(model, tx, schedule, config),
                         in_shardings=(state_sharding, data_sharding),
                         out_shardings=(state_sharding, replicated(mesh)), donate_argnums=0)
    eval_step = jax.jit(make_eval_step(model, config),
                        in_shardings=(state_sharding, data_sharding), out_shardings=replicated(mesh))
    observe_eval = jax.jit(  # the plateau rule sees the eval split's top-1 error
        lambda s, error: s.replace(opt_state=observe_plateau(s.opt_state, error, config)),
        in_shardings=(state_sharding, None), out_shardings=state_sharding, donate_argnums=0)

    logger = MetricLogger(workdir, total_steps, start_step, enabled=is_main)
    logger.print(f"config:\n{config}")
    logger.print(f"mesh: {dict(mesh.shape)} over {jax.device_count()} {jax.devices()[0].platform}"
                 f" device(s), {jax.process_count()} process(es)")
    logger.print(f"model: {config.model.name}, {count_params(state.params):,} parameters;"
                 f" {len(train_source):,} train / {len(eval_source):,} {config.eval_split} examples;"
                 f" {steps_per_epoch} steps per epoch, {total_steps} steps in all")
    if start_step:
        logger.print(f"resumed from the checkpoint at step {start_step} in {checkpointer.directory}")

    window, checked, timed_steps, window_start = [], 0, 0, time.time()
    last_good = start_step
    eval_metrics = None
    try:
        for step in range(start_step + 1, total_steps + 1):
            state, metrics = train_step(state, shard_batch(next(data_iter), mesh))
            window.append(metrics)
            timed_steps += 1
            if step == start_step + 1:  # leave compilation out of the throughput figures
                jax.block_until_ready(metrics)
                timed_steps, window_start = 0, time.time()
            last = step == total_steps
            stopping = step == stop_at_step
            # Evaluate before checkpointing, so a checkpoint holds what this evaluation changed
            # (the plateau rule's state) and a resumed run equals an uninterrupted one.
            if step % eval_every == 0 or last:
                eval_start = time.time()
                eval_metrics = evaluate(eval_step, state, eval_source, config, mesh)
                logger.write(step, config.eval_split, {"epoch": step / steps_per_epoch, **eval_metrics})
                if config.schedule == "plateau":
                    state = observe_eval(state, eval_metrics["top1_err"])
                window_start += time.time() - eval_start  # evaluation is not training throughput
            if (step % config.log_every_steps == 0 or step % config.checkpoint_every_steps == 0
                    or last or stopping):
                host = jax.device_get(window)
                _check_finite(host[checked:], step - len(host) + checked + 1, last_good,
                              checkpointer.directory)
                checked = len(host)
                if step % config.log_every_steps == 0 or last:
                    elapsed = time.time() - window_start
                    logger.write(step, "train", {
                        "epoch": step / steps_per_epoch,
                        **{k: float(np.mean([m[k] for m in host])) for k in host[0]},
                        "images_per_sec": timed_steps * config.batch_size / max(elapsed, 1e-9),
                    })
                    window, checked, timed_steps, window_start = [], 0, 0, time.time()
                if step % config.checkpoint_every_steps == 0 or last or stopping:
                    checkpointer.save(step, state, data_iter)
                    last_good = step
                if stopping:
                    logger.print(f"stopped at step {step} as asked; run again to resume")
                    return None
        if eval_metrics is None:  # the run had already finished: evaluate what was restored
            eval_metrics = evaluate(eval_step, state, eval_source, config, mesh)
            logger.write(int(state.step), config.eval_split, eval_metrics)
    finally:
        checkpointer.wait()
        checkpointer.close()
        logger.close()
    return eval_metrics


def _check_finite(host_metrics, first_step, last_good, checkpoint_dir):
    """Raise TrainingDiverged at the first non-finite loss (host_metrics[i] is step first_step+i)."""
    for offset, m in enumerate(host_metrics):
        if not np.isfinite(m["loss"]):
            kept = (f"step {last_good} in {checkpoint_dir}" if last_good
                    else "none (no checkpoint had been written)")
            raise TrainingDiverged(
                f"the training loss became {m['loss']} at step {first_step + offset}; training"
                f" stopped and nothing after step {last_good} was saved. The last good checkpoint"
                f" is {kept}. Lower config.base_lr, add warmup (config.warmup_epochs), or check"
                " the data."
            )
