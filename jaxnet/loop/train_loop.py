"""The training loop of a network: resume from the workdir's latest checkpoint, train with
periodic logging / evaluation / checkpoints, and stop cleanly on divergence."""
import math
import time

import jax
import numpy as np

from jaxnet import JaxnetError
from jaxnet.data.pipeline import train_loader
from jaxnet.evaluation.evaluator import Predictor
from jaxnet.loop.checkpoint import abstract_like
from jaxnet.loop.divergence import DivergenceGuard, TrainingDiverged
from jaxnet.loop.prefetch import DevicePrefetch
from jaxnet.loop.stop import Preempted, StopSignals
from jaxnet.mesh import batch_sharded, check_batch_size, free_memory, one_at_a_time, replicated
from jaxnet.training.optim import observe_plateau
from jaxnet.training.sharding import shardings_of
from jaxnet.training.state import (build_training, count_params, eval_variables, join_state,
                                   split_state)
from jaxnet.training.steps import make_predict_fn, make_train_step


def restore_training(checkpointer, state, data_iter=None, step=None):
    """(step, train state) saved at `step` (None: the newest intact checkpoint), placed like
    `state` (arrays or ShapeDtypeStructs with shardings); `data_iter`, if given, is moved to the
    saved position."""
    variables, optimizer = split_state(state)
    targets = {"variables": abstract_like(variables, shardings_of(variables)),
               "optimizer": abstract_like(optimizer, shardings_of(optimizer))}

    def restore_at(step):
        meta = checkpointer.restore_meta(step)
        if "data" not in meta:
            raise JaxnetError(f"the checkpoint at step {step} in {checkpointer.directory} holds no"
                              " training state (not a network training run); use another --workdir")
        return meta, checkpointer.restore(step, targets)

    step, (meta, restored) = checkpointer.restore_newest(restore_at, step)
    if data_iter is not None:
        data_iter.set_state(meta["data"])  # grain's public state API
    return step, join_state(restored["variables"], restored["optimizer"])


def save_training(checkpointer, step: int, state, data_state, metrics=None) -> None:
    """Save the train state and the data position `data_state` (the grain iterator's state after
    the last batch trained on) at `step`, with its eval `metrics`, if any."""
    variables, optimizer = split_state(state)
    checkpointer.save(step, {"variables": variables, "optimizer": optimizer},
                      meta={"data": data_state}, metrics=metrics)


def step_counts(config, num_examples: int) -> tuple[int, int, int]:
    """(steps per epoch, steps in all, steps between evaluations) of `config` on a train split of
    `num_examples`: whole batches per epoch, the last epoch's fraction rounded up; an evaluation
    every eval_every_epochs (0: at the end only) and always at the last step."""
    steps_per_epoch = num_examples // config.batch_size
    if steps_per_epoch == 0:
        raise JaxnetError(f"the {num_examples}-example train split is smaller than one batch"
                          f" ({config.batch_size})")
    total_steps = math.ceil(config.num_epochs * steps_per_epoch)
    eval_every = round(config.eval_every_epochs * steps_per_epoch) or total_steps
    return steps_per_epoch, total_steps, eval_every


def train_loop(config, run, build=build_training, task_loss=None) -> Predictor:
    """Train `config` in `run.workdir` (resuming from its latest checkpoint); return the final
    model as a Predictor, or None when stopped early at run.stop_at_step (with a checkpoint).
    `build(config, steps_per_epoch, mesh) -> (model, schedule, tx, init)` makes what is trained
    (default: jaxnet.training.state.build_training; fine-tuning starts from another network);
    `task_loss` is added to the class loss (jaxnet.training.steps.make_train_step)."""
    mesh, logger, checkpointer = run.mesh, run.logger, run.checkpointer
    train_source = run.train_source
    check_batch_size(config.batch_size, mesh)
    steps_per_epoch, total_steps, eval_every = step_counts(config, len(train_source))

    model, schedule, tx, init = build(config, steps_per_epoch, mesh)
    state = init(jax.random.PRNGKey(config.seed))
    state_sharding, data_sharding = shardings_of(state), batch_sharded(mesh)
    data_iter = iter(train_loader(train_source, config, jax.process_index(), jax.process_count()))
    start_step = 0
    if checkpointer.latest_step() is not None:
        start_step, state = restore_training(checkpointer, state, data_iter)

    train_step = jax.jit(make_train_step(model, tx, schedule, config, task_loss),
                         in_shardings=(state_sharding, data_sharding),
                         out_shardings=(state_sharding, replicated(mesh)), donate_argnums=0)
    observe_eval = jax.jit(  # the plateau rule sees the eval split's top-1 error
        lambda s, error: s.replace(opt_state=observe_plateau(s.opt_state, error, config)),
        in_shardings=(state_sharding, None), out_shardings=state_sharding, donate_argnums=0)
    predict_fn = make_predict_fn(model, config)

    def predictor(state):
        return Predictor(predict_fn, eval_variables(split_state(state)[0]), int(state.step))

    logger.start(total_steps, start_step)
    logger.print(f"model: {config.model.name}, {count_params(state.params):,} parameters;"
                 f" {len(train_source):,} train / {len(run.evaluator.source):,} {config.eval_split}"
                 f" examples; {steps_per_epoch} steps per epoch, {total_steps} steps in all")
    if start_step:
        logger.print(f"resumed from the checkpoint at step {start_step} in {checkpointer.directory}")

    with DevicePrefetch(data_iter, mesh) as batches, StopSignals(mesh) as signals:
        return _steps(config, run, state, batches, train_step, observe_eval, predictor, signals,
                      start_step, total_steps, steps_per_epoch, eval_every)


GIB = 2.0**30


def check_fits(needed: int, free: int, sharing: int, batch_size: int, data_devices: int) -> None:
    """Refuse, in one line, a train step that needs more memory than is free (instead of an
    out-of-memory kill after minutes of start-up). `needed`: bytes per device beyond what is
    already allocated (XLA's memory analysis of the compiled step); `free`: bytes free for the
    `sharing` devices that share them (free_memory). free 0: unknown, not checked."""
    if free <= 0 or needed * sharing <= 0.9 * free:
        return
    per_example = needed * sharing / batch_size  # the step's buffers grow with the batch
    fits = int(0.8 * free / per_example) // data_devices * data_devices
    hint = (f"--config.batch_size={fits} would fit" if fits >= data_devices else
            "even the smallest batch would not: use a smaller model or image size, or"
            " --config.param_sharding=fsdp")
    raise JaxnetError(
        f"the train step needs about {needed * sharing / GIB:.1f} GiB ({sharing} device(s) x"
        f" {needed / GIB:.2f} GiB) beyond the train state, and {free / GIB:.1f} GiB is free: it"
        f" would run out of memory at batch size {batch_size}; {hint}")


def compile_checked(train_step, state, batch, config, mesh):
    """The train step compiled for this state and batch (and used as is, so nothing compiles
    twice), after checking that it fits in memory (check_fits)."""
    compiled = train_step.lower(state, batch).compile()
    stats = compiled.memory_analysis()
    if stats is not None:
        needed = (stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
                  + sum(x.nbytes for x in jax.tree.leaves(batch)) // mesh.size)
        free, sharing = free_memory(mesh.devices.flat[0])
        check_fits(needed, free, sharing, config.batch_size, mesh.shape["data"])
    return compiled


def _steps(config, run, state, batches, train_step, observe_eval, predictor, signals,
           start_step, total_steps, steps_per_epoch, eval_every):
    """train_loop's steps: log, evaluate, checkpoint; stop with a checkpoint at a signal."""
    mesh, logger, checkpointer = run.mesh, run.logger, run.checkpointer
    window, checked, timed_steps, window_start = [], 0, 0, time.time()
    last_good, blocking = start_step, one_at_a_time(mesh)
    guard = DivergenceGuard(config.divergence_factor, config.divergence_intervals)
    started, evaluating = time.time(), 0.0  # train_seconds: compile included, evaluations not
    for step in range(start_step + 1, total_steps + 1):
        batch = next(batches)
        if step == start_step + 1:  # memory pre-flight before the first step runs
            train_step = compile_checked(train_step, state, batch, config, mesh)
        state, metrics = train_step(state, batch)
        if blocking:
            jax.block_until_ready(metrics)
        window.append(metrics)
        timed_steps += 1
        if step == start_step + 1:  # leave compilation out of the throughput figures
            jax.block_until_ready(metrics)
            timed_steps, window_start = 0, time.time()
        last = step == total_steps
        stop_reason = signals.at(step)  # the same on every process
        stopping = step == run.stop_at_step or stop_reason is not None
        # Evaluate before checkpointing, so a checkpoint holds what this evaluation changed
        # (the plateau rule's state) and a resumed run equals an uninterrupted one.
        eval_metrics = None
        if step % eval_every == 0 or last:
            eval_start = time.time()
            eval_metrics = run.evaluate(predictor(state), epoch=step / steps_per_epoch,
                                        train_seconds=eval_start - started - evaluating)
            if config.schedule == "plateau":
                state = observe_eval(state, eval_metrics["top1_err"])
            eval_seconds = time.time() - eval_start  # not training: neither throughput nor time
            window_start += eval_seconds
            evaluating += eval_seconds
        saving = step % config.checkpoint_every_steps == 0 or eval_metrics or last or stopping
        if step % config.log_every_steps == 0 or saving:
            checkpointer.check()  # a failed save (full disk) stops the run here, in one line
            host = jax.device_get(window)
            _check_finite(host[checked:], step - len(host) + checked + 1, last_good,
                          checkpointer.directory)
            checked = len(host)
            if step % config.log_every_steps == 0 or last:
                elapsed = time.time() - window_start
                means = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
                logger.write(step, "train", {
                    "epoch": step / steps_per_epoch, **means,
                    "images_per_sec": timed_steps * config.batch_size / max(elapsed, 1e-9),
                })
                guard.observe(step, means["loss"], last_good, checkpointer.directory)
                window, checked, timed_steps, window_start = [], 0, 0, time.time()
            if saving:  # every evaluated step too: the best one is kept (Checkpointer)
                save_training(checkpointer, step, state, batches.state, eval_metrics)
                last_good = step
            if stop_reason is not None:
                checkpointer.wait()
                raise Preempted(f"{stop_reason}: stopped at step {step} with a checkpoint in"
                                f" {checkpointer.directory}; run the same command to resume")
            if stopping:
                logger.print(f"stopped at step {step} as asked; run again to resume")
                return None
    return predictor(state)


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
