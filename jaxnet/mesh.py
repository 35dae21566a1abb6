"""The device mesh and batches on it: one code path for 1 CPU, 8 GPUs or a multi-host pod.

Batches are sharded over the mesh's `data` axis and XLA inserts the collectives (gradient
all-reduce, global BatchNorm statistics); an optional `model` axis holds the parts of one model
replica (config.model_parallel). Where the train state goes is jaxnet.training.sharding's.
"""
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxnet import JaxnetError


def create_mesh(devices=None, model_parallel: int = 1) -> Mesh:
    """A 1-D mesh with axis `data` over `devices` (default: all devices of all processes); with
    `model_parallel` = m > 1, a 2-D mesh (data, model) of shape (devices / m, m), each group of
    m consecutive devices one model replica (jaxnet.training.sharding splits the layers over it)."""
    devices = jax.devices() if devices is None else devices
    if model_parallel == 1:
        return Mesh(np.asarray(devices), ("data",))
    if model_parallel < 1 or len(devices) % model_parallel:
        raise JaxnetError(f"config.model_parallel={model_parallel} needs a device count divisible"
                          f" by it; there are {len(devices)} devices")
    return Mesh(np.asarray(devices).reshape(-1, model_parallel), ("data", "model"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    """The global batch must split evenly over the mesh's `data` axis (and hence the processes)."""
    if batch_size % mesh.shape["data"]:
        raise JaxnetError(
            f"config.{what}={batch_size} is not divisible by the {mesh.shape['data']} devices of the"
            " mesh's data axis"
        )


def shard_batch(local_batch, mesh: Mesh):
    """Turn this process's numpy batch into global jax.Arrays sharded over `data`."""
    sharding = batch_sharded(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )


def one_at_a_time(mesh) -> bool:
    """Whether to wait for each computation before dispatching the next: on several CPU devices
    (cores split into devices), a computation queued behind its inputs holds one of XLA:CPU's
    worker threads, and on a busy machine the other devices' halves of a collective can then
    wait for a thread forever. GPUs and TPUs keep JAX's asynchronous dispatch."""
    return mesh.devices.flat[0].platform == "cpu" and mesh.size > 1


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS has one, as on Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def free_memory(device) -> tuple[int, int]:
    """(bytes free for new buffers, devices sharing them) for `device`: an accelerator's own
    memory (its allocator's limit less what is in use), or, for CPU devices, the host's available
    RAM (/proc/meminfo's MemAvailable), which all of this process's CPU devices share. (0, 1) if
    unknown."""
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), 1
        return 0, 1
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024, len(jax.local_devices())
    except (OSError, KeyError, ValueError):
        return 0, 1
