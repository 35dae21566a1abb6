"""Placing example-major arrays on a mesh's 'data' axis for the SVM solvers. Rows are padded
to a multiple of the axis size and a 0/1 mask marks the real ones, so any n works."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P, SingleDeviceSharding

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


def padded_rows(rows: int, mesh) -> int:
    """`rows` rounded up to a multiple of the mesh's 'data' axis (what pad_rows gives)."""
    return rows + (-rows) % data_size(mesh)


@partial(jax.jit, donate_argnums=0)
def _write(buffer, block, start):
    return jax.lax.dynamic_update_slice_in_dim(buffer, block, start, axis=0)


def _zeros(shape, dtype, device) -> jax.Array:
    """Zeros made on `device` (jnp.zeros(..., device=d) briefly takes twice the memory on CPU)."""
    return jax.jit(partial(jnp.zeros, shape, dtype), out_shardings=SingleDeviceSharding(device))()


class RowBuffer:
    """A device array of `shape` ([rows, ...]) filled block by block, in place: laid out like
    place(pad_rows(x, data_size(mesh)), mesh) (rows padded with zeros to the mesh, split over
    'data'; without a mesh, on the first device), but built without a host copy of the whole
    array. Fill with `buf[i:j] = block` (host or device rows; contiguous slices), then take the
    result with `buf.array()`."""

    def __init__(self, shape, mesh=None, dtype=np.float32):
        if mesh is not None and mesh.devices.size != data_size(mesh):
            raise ValueError(f"a RowBuffer needs a mesh with only the {DATA_AXIS!r} axis, got {dict(mesh.shape)}")
        self.rows, self.mesh, self.dtype = shape[0], mesh, np.dtype(dtype)
        self.devices = list(mesh.devices.flat) if mesh is not None else jax.devices()[:1]
        self.shape = (padded_rows(self.rows, mesh), *shape[1:])
        shard_shape = (self.shape[0] // len(self.devices), *shape[1:])
        self.shards = [_zeros(shard_shape, self.dtype, d) for d in self.devices]

    def __setitem__(self, rows: slice, block):
        start, stop, step = rows.indices(self.rows)
        if step != 1 or stop - start != len(block):
            raise ValueError(f"a RowBuffer takes a contiguous row slice the size of the block, got {rows}"
                             f" for {len(block)} rows")
        shard_rows = self.shards[0].shape[0]
        while start < stop:  # a block may straddle two shards
            shard, offset = divmod(start, shard_rows)
            take = min(stop - start, shard_rows - offset)
            part = jax.device_put(block[:take], self.devices[shard]).astype(self.dtype)
            self.shards[shard] = _write(self.shards[shard], part, offset)
            block, start = block[take:], start + take

    def array(self) -> jax.Array:
        """The filled [padded rows, ...] array; the buffer hands its shards over and is spent."""
        shards, self.shards = self.shards, None
        if self.mesh is None:
            return shards[0]
        return jax.make_array_from_single_device_arrays(self.shape, NamedSharding(self.mesh, P(DATA_AXIS)), shards)


def place_rows(array, mesh, dtype=np.float32, block_rows: int = 4096) -> jax.Array:
    """place(pad_rows(array, ...), mesh) cast to `dtype`, copied over in blocks of rows: device
    memory for the result only (jax.device_put of a whole host matrix briefly takes 2-3x its size
    on CPU), and a float16 or memory-mapped host array is never converted whole."""
    buffer = RowBuffer(array.shape, mesh, dtype)
    for start in range(0, array.shape[0], block_rows):
        buffer[start : start + block_rows] = array[start : start + block_rows]
    return buffer.array()


def _row_blocks(array, start: int, stop: int, stride: int = 1, block_rows: int = 4096):
    """Rows start:stop:stride of a host or row-sharded device array, in order, in blocks of at
    most block_rows rows, each sliced on the device holding it (eager indexing of a sharded
    array first gathers all of it on every device)."""
    if isinstance(array, jax.Array):
        pieces = {}
        for shard in array.addressable_shards:  # one per row range (replicas hold the same rows)
            pieces.setdefault(shard.index[0].start or 0, shard.data)
        pieces = sorted(pieces.items())
    else:
        pieces = [(0, array)]
    for lo, data in pieces:
        first = start + -(-max(lo - start, 0) // stride) * stride  # first row of the grid in this piece
        last = min(stop, lo + data.shape[0])
        for a in range(first, last, block_rows * stride):
            yield data[a - lo : min(a + block_rows * stride, last) - lo : stride]


def host_rows(array, start: int, stop: int) -> np.ndarray:
    """array[start:stop] of a host or row-sharded device array, as a host array."""
    return np.concatenate([np.asarray(b) for b in _row_blocks(array, start, stop)])


def strided_rows(array, stride: int) -> jax.Array:
    """array[::stride] of a host or row-sharded device array, on the first device, copied over in
    blocks (the same values as eager indexing, without its gathered copies of the whole array)."""
    out, row = RowBuffer((-(-array.shape[0] // stride), *array.shape[1:]), None, array.dtype), 0
    for block in _row_blocks(array, 0, array.shape[0], stride):
        out[row : row + len(block)] = block
        row += len(block)
    return out.array()
