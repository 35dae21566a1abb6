"""The device mesh and the placement of state and batches on it.

One code path for 1 CPU, 8 GPUs or a multi-host pod: the batch is sharded over the mesh's
`data` axis, and XLA inserts the collectives (gradient all-reduce, global BatchNorm statistics).
The train state is replicated, or with `config.param_sharding = "fsdp"` its large arrays are
split over `data` too (FSDP / ZeRO-3 style: XLA all-gathers each weight where the step needs it
and reduce-scatters its gradient), which divides their per-device memory by the device count.
"""
import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxnet import JaxnetError


def create_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis `data` over `devices` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def fsdp_spec(shape, axis_size: int, min_size: int) -> P:
    """Split the largest dimension that `axis_size` divides over `data`, if the array has at least
    `min_size` elements; else replicate (scalars, BatchNorm vectors, anything indivisible)."""
    if axis_size <= 1 or math.prod(shape) < max(min_size, 1):
        return P()
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % axis_size == 0:
            return P(*([None] * dim), "data")
    return P()


def state_shardings(abstract_state, mesh: Mesh, config):
    """A pytree of shardings for any state pytree (params, EMA copies, optimizer slots, BatchNorm
    statistics, counters alike): replicated, or per leaf by `fsdp_spec` (config.param_sharding)."""
    if config.param_sharding == "replicated":
        return jax.tree.map(lambda _: replicated(mesh), abstract_state)
    size = mesh.shape["data"]
    return jax.tree.map(
        lambda x: NamedSharding(mesh, fsdp_spec(x.shape, size, config.param_sharding_min_size)),
        abstract_state)


def shardings_of(tree):
    """The shardings of a pytree of jax.Arrays (the placement an initialised state really has)."""
    return jax.tree.map(lambda x: x.sharding, tree)


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    """The global batch must split evenly over the devices (and hence the processes)."""
    if batch_size % mesh.size:
        raise JaxnetError(
            f"config.{what}={batch_size} is not divisible by the {mesh.size} devices of the mesh"
        )


def shard_batch(local_batch, mesh: Mesh):
    """Turn this process's numpy batch into global jax.Arrays sharded over `data`."""
    sharding = batch_sharded(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )
