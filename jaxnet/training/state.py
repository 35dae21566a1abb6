"""The train state: everything a step reads and writes, as one pytree; and how a config builds it.

A checkpoint keeps the state in two parts (`split_state`): the model's `variables` (what
evaluation, feature extraction and fine-tuning need, restorable without knowing the optimizer)
and the `optimizer` part (step, optimizer slots, rng).
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxnet import JaxnetError
from jaxnet.models import create_model
from jaxnet.training.optim import create_optimizer, create_schedule
from jaxnet.training.sharding import state_shardings


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer steps taken
    params: Any
    batch_stats: Any  # BatchNorm running statistics ({} for nets without BatchNorm)
    opt_state: Any
    rng: jax.Array  # raw uint32 PRNG key; step keys are fold_in(rng, step)
    ema_params: Any = flax.struct.field(default_factory=dict)  # Polyak averages ({} when off)


def create_train_state(rng: jax.Array, model, tx: optax.GradientTransformation,
                       input_shape, ema: bool = False) -> TrainState:
    """Initialise parameters from `rng` with a dummy batch of `input_shape` (N, H, W, C); with
    `ema`, also their moving average (starting at the initial parameters)."""
    init_rng, state_rng = jax.random.split(rng)
    variables = init_variables(init_rng, model, input_shape)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=state_rng,
        ema_params=jax.tree.map(jnp.copy, params) if ema else {},
    )


def init_variables(rng, model, input_shape) -> dict:
    return model.init({"params": rng, "dropout": rng}, jnp.zeros(input_shape, jnp.float32),
                      train=False)


def count_params(params) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def split_state(state: TrainState):
    """(variables, optimizer): the two checkpoint items of a train state."""
    variables = {"params": state.params, "batch_stats": state.batch_stats,
                 "ema_params": state.ema_params}
    return variables, {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}


def join_state(variables, optimizer) -> TrainState:
    return TrainState(params=variables["params"], batch_stats=variables["batch_stats"],
                      ema_params=variables["ema_params"], **optimizer)


def eval_variables(variables) -> dict:
    """What `model.apply` takes for evaluation: the Polyak averages when kept, else the params."""
    out = {"params": variables["ema_params"] or variables["params"]}
    if variables["batch_stats"]:
        out["batch_stats"] = variables["batch_stats"]
    return out


def build_model(config):
    """The config's model; every `config.model` key but `name` is a create_model override."""
    options = {k: v for k, v in config.model.items() if k != "name"}
    dtype = jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32
    try:
        return create_model(config.model.name, num_classes=config.num_classes, dtype=dtype,
                            **options)
    except ValueError as e:
        raise JaxnetError(f"config.model: {e}") from e


def input_shape(config):
    size = config.device_resize or config.image_size
    return (1, size, size, config.channels)


def shapes_of(create, config):
    """jax.eval_shape of an initialiser: the first run of the model's code, where a bad model
    option (one the constructor accepted) is found; it becomes a one-line config error."""
    try:
        return jax.eval_shape(create, jax.random.PRNGKey(0))
    except (ValueError, TypeError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise JaxnetError(f"config.model ({config.model.name}, options"
                          f" {dict(config.model)}): {first}") from e


def build_training(config, steps_per_epoch: int, mesh):
    """Model, lr schedule, optimizer and a jitted `init(rng) -> TrainState` placed on `mesh` as
    config.param_sharding says (jaxnet.training.sharding.state_shardings)."""
    model = build_model(config)
    schedule = create_schedule(config, steps_per_epoch)
    tx = create_optimizer(config, schedule)

    def create(rng):
        return create_train_state(rng, model, tx, input_shape(config), ema=config.ema_decay > 0)

    shardings = state_shardings(shapes_of(create, config), mesh, config)
    init = jax.jit(create, out_shardings=shardings)
    return model, schedule, tx, init


def abstract_variables(config, model, mesh):
    """The model variables' shapes, dtypes and placement ({"params", "batch_stats",
    "ema_params"}, as split_state gives them) without building an optimizer: the restore target
    for evaluation."""
    def create(rng):
        v = init_variables(rng, model, input_shape(config))
        return {"params": v["params"], "batch_stats": v.get("batch_stats", {}),
                "ema_params": v["params"] if config.ema_decay > 0 else {}}

    shapes = shapes_of(create, config)
    shardings = state_shardings(shapes, mesh, config)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes,
                        shardings)
