"""Optimizers and learning-rate schedules (optax), built from the config.

Schedules are functions of the global step. Learning rates follow the linear scaling rule when
`config.lr_scaling == "linear"`: lr = base_lr * global_batch / 256 (Goyal et al. 2017).
"""
import functools

import jax
import jax.numpy as jnp
import optax
from flax import traverse_util


def peak_learning_rate(config) -> float:
    """The schedule's peak: base_lr, scaled by batch/256 under the linear scaling rule."""
    if config.lr_scaling == "linear":
        return config.base_lr * config.batch_size / 256
    if config.lr_scaling == "none":
        return config.base_lr
    raise ValueError(f"lr_scaling must be 'linear' or 'none', got {config.lr_scaling!r}")


def create_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    """Linear warmup for `warmup_epochs`, then `config.schedule`: 'cosine', 'multistep',
    'exponential' (x decay_factor every decay_every_epochs, GoogLeNet's x0.96 every 8), 'constant'
    or 'plateau' (constant here; the drops come from `plateau_scale` in the optimizer)."""
    peak = peak_learning_rate(config)
    total = max(1, round(config.num_epochs * steps_per_epoch))
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "cosine":
        main = optax.cosine_decay_schedule(peak, max(1, total - warmup))
    elif config.schedule == "multistep":
        boundaries = {
            round(e * steps_per_epoch) - warmup: config.decay_factor for e in config.decay_epochs
        }
        main = optax.piecewise_constant_schedule(peak, boundaries)
    elif config.schedule == "exponential":
        main = optax.exponential_decay(peak, round(config.decay_every_epochs * steps_per_epoch),
                                       config.decay_factor, staircase=True)
    elif config.schedule in ("constant", "plateau"):
        main = optax.constant_schedule(peak)
    else:
        raise ValueError("schedule must be 'cosine', 'multistep', 'exponential', 'plateau' or"
                         f" 'constant', got {config.schedule!r}")
    if warmup == 0:
        return main
    return optax.join_schedules(
        [optax.linear_schedule(config.warmup_start_lr * peak, peak, warmup), main], [warmup]
    )


def decay_mask(params, exclude_bn_and_bias: bool):
    """True for parameters that get weight decay: all, or only conv/dense kernels."""
    flat = traverse_util.flatten_dict(params)
    keep = {k: not exclude_bn_and_bias or k[-1] == "kernel" for k in flat}
    return traverse_util.unflatten_dict(keep)


def create_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with (Nesterov) momentum and coupled L2 weight decay, as in the ResNet/AlexNet papers;
    with schedule 'plateau', its updates are then scaled by the reduce-on-plateau factor."""
    if config.optimizer != "sgd":
        raise ValueError(f"optimizer must be 'sgd', got {config.optimizer!r}")
    parts = [
        optax.add_decayed_weights(
            config.weight_decay,
            mask=lambda p: decay_mask(p, config.weight_decay_exclude_bn_bias),
        ),
        optax.sgd(schedule, momentum=config.momentum or None, nesterov=config.nesterov),
    ]
    if config.schedule == "plateau":
        parts.append(plateau_scale(config))
    return optax.chain(*parts)


# Reduce-on-plateau. optax.contrib.reduce_on_plateau updates its state on every step from the
# value it is given; AlexNet's rule looks at the validation error, known only after an evaluation.
# So the train step only *applies* the scale (`plateau_scale`), and the loop feeds each evaluation
# to `observe_plateau`, which runs optax's update logic once. Scaling the final SGD update is
# scaling the learning rate: optax's momentum accumulates raw gradients, as PyTorch's does.

def _reduce_on_plateau(config) -> optax.GradientTransformationExtraArgs:
    return optax.contrib.reduce_on_plateau(
        factor=config.decay_factor, patience=config.plateau_patience, rtol=config.plateau_rtol,
        min_scale=config.plateau_min_scale)


def plateau_scale(config) -> optax.GradientTransformation:
    """Multiply updates by the plateau state's `scale` (1, then x decay_factor per plateau)."""

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: u * state.scale.astype(u.dtype), updates), state

    return optax.GradientTransformation(_reduce_on_plateau(config).init, update)


def _is_plateau(x) -> bool:
    return isinstance(x, optax.contrib.ReduceLROnPlateauState)


def observe_plateau(opt_state, eval_error, config):
    """The optimizer state after one evaluation's error (lower is better) was seen by the plateau
    rule: after `plateau_patience` evaluations without a relative improvement of `plateau_rtol`,
    the scale drops by `decay_factor`. Pure and jittable."""
    rule = _reduce_on_plateau(config)
    return jax.tree.map(lambda s: rule.update((), s, value=eval_error)[1] if _is_plateau(s) else s,
                        opt_state, is_leaf=_is_plateau)


def lr_scale(opt_state):
    """The product of the plateau scales in `opt_state` (1.0 without a plateau schedule)."""
    scales = [s.scale for s in jax.tree.leaves(opt_state, is_leaf=_is_plateau) if _is_plateau(s)]
    return functools.reduce(lambda a, b: a * b, scales, jnp.ones((), jnp.float32))
