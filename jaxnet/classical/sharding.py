"""Placing example-major arrays on a mesh's 'data' axis for the SVM solvers. Rows are padded
to a multiple of the axis size and a 0/1 mask marks the real ones, so any n works."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: all) with the axis name 'data'."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def data_size(mesh) -> int:
    if mesh is None:
        return 1
    if DATA_AXIS not in mesh.shape:
        raise ValueError(f"the mesh needs a {DATA_AXIS!r} axis, it has {tuple(mesh.shape)}")
    return mesh.shape[DATA_AXIS]


def place(array, mesh, axis: int = 0):
    """Put a host or device array on the mesh, split along `axis` over 'data' (replicated on
    the other mesh axes); without a mesh, on the default device."""
    if mesh is None:
        return jnp.asarray(array)
    spec = [None] * np.ndim(array)
    spec[axis] = DATA_AXIS
    return jax.device_put(array, NamedSharding(mesh, P(*spec)))


def replicate(tree, mesh):
    """Copy a pytree of arrays to every device of the mesh (no-op without a mesh)."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, P()))


def pad_rows(array, multiple: int, axis: int = 0):
    """Zero-pad `axis` up to a multiple of `multiple` (numpy for host arrays, jnp otherwise)."""
    extra = (-array.shape[axis]) % multiple
    if not extra:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, extra)
    return jnp.pad(array, widths) if isinstance(array, jax.Array) else np.pad(array, widths)
