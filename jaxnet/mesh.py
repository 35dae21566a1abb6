"""The device mesh and batches on it: one code path for 1 CPU, 8 GPUs or a multi-host pod.

Batches are sharded over the mesh's `data` axis and XLA inserts the collectives (gradient
all-reduce, global BatchNorm statistics). Where the train state goes is jaxnet.training.sharding's.
"""
import os

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


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS has one, as on Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
