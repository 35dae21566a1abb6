"""Placement of the train state on the mesh: replicated, or FSDP.

With `config.param_sharding = "fsdp"` the state's large arrays are split over `data` (FSDP /
ZeRO-3 style: XLA all-gathers each weight where the step needs it and reduce-scatters its
gradient), which divides their per-device memory by the device count.
"""
import math

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxnet.mesh import replicated


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
