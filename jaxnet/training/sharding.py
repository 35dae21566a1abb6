"""Placement of the train state on the mesh: replicated, FSDP, or split over a `model` axis.

With `config.param_sharding = "fsdp"` the state's large arrays are split over `data` (FSDP /
ZeRO-3 style: XLA all-gathers each weight where the step needs it and reduce-scatters its
gradient), which divides their per-device memory by the device count. On a (data, model) mesh
(`config.model_parallel` > 1) every layer is split along its output channels over `model`.
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


def model_parallel_spec(path, shape, axis_size: int) -> P:
    """Under model parallelism, a layer's `kernel` or `bias` (wherever it sits: params, EMA
    copies, optimizer slots) is split along its last dimension, the output channels, over `model`
    when `axis_size` divides it; everything else is replicated. For AlexNet's grouped convs
    (conv2/4/5, 2 groups) on 2 devices, each device then holds one group, i.e. one column of the
    paper; conv1 splits its 96 filters 48/48 as the paper's GPUs did; conv3 and fc6-8 see both
    halves of their input, which GSPMD gathers: the paper's cross-GPU connections."""
    last = path[-1] if path else None
    name = getattr(last, "key", getattr(last, "name", None))
    if name in ("kernel", "bias") and shape and shape[-1] % axis_size == 0:
        return P(*([None] * (len(shape) - 1)), "model")
    return P()


def state_shardings(abstract_state, mesh: Mesh, config):
    """A pytree of shardings for any state pytree (params, EMA copies, optimizer slots, BatchNorm
    statistics, counters alike): replicated, or per leaf by `fsdp_spec` (config.param_sharding),
    or split over the mesh's `model` axis by `model_parallel_spec` (config.model_parallel > 1)."""
    if "model" in mesh.shape and mesh.shape["model"] > 1:
        size = mesh.shape["model"]
        return jax.tree_util.tree_map_with_path(
            lambda path, x: NamedSharding(mesh, model_parallel_spec(path, x.shape, size)),
            abstract_state)
    if config.param_sharding == "replicated":
        return jax.tree.map(lambda _: replicated(mesh), abstract_state)
    size = mesh.shape["data"]
    return jax.tree.map(
        lambda x: NamedSharding(mesh, fsdp_spec(x.shape, size, config.param_sharding_min_size)),
        abstract_state)


def shardings_of(tree):
    """The shardings of a pytree of jax.Arrays (the placement an initialised state really has)."""
    return jax.tree.map(lambda x: x.sharding, tree)
