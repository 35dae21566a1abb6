"""The train state: everything a step reads and writes, as one pytree (checkpointed whole)."""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


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
    variables = model.init({"params": init_rng, "dropout": init_rng},
                           jnp.zeros(input_shape, jnp.float32), train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=state_rng,
        ema_params=jax.tree.map(jnp.copy, params) if ema else {},
    )


def count_params(params) -> int:
    return sum(x.size for x in jax.tree.leaves(params))
