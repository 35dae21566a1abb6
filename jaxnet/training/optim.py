"""Optimizers and learning-rate schedules (optax), built from the config.

Schedules are functions of the global step. Learning rates follow the linear scaling rule when
`config.lr_scaling == "linear"`: lr = base_lr * global_batch / 256 (Goyal et al. 2017).
"""
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
    """Linear warmup for `warmup_epochs`, then `config.schedule`: 'cosine', 'multistep' or 'constant'."""
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
    elif config.schedule == "constant":
        main = optax.constant_schedule(peak)
    else:
        raise ValueError(f"schedule must be 'cosine', 'multistep' or 'constant', got {config.schedule!r}")
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
    """SGD with (Nesterov) momentum and coupled L2 weight decay, as in the ResNet/AlexNet papers."""
    if config.optimizer != "sgd":
        raise ValueError(f"optimizer must be 'sgd', got {config.optimizer!r}")
    return optax.chain(
        optax.add_decayed_weights(
            config.weight_decay,
            mask=lambda p: decay_mask(p, config.weight_decay_exclude_bn_bias),
        ),
        optax.sgd(schedule, momentum=config.momentum or None, nesterov=config.nesterov),
    )
