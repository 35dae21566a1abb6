"""Prefetch to the devices: the next batches are read, augmented and placed on the mesh in a
background thread while the current step runs, so the host's share of a step overlaps the
device's (on a CPU, where each step is waited for, it would otherwise add to every step).

Each batch comes with the data iterator's state after it: a checkpoint saves the state of the
last batch *trained on*, not of the batches read ahead, so a resumed run continues with the same
next batch as an uninterrupted one.
"""
import queue
import threading

from jaxnet.mesh import shard_batch


class DevicePrefetch:
    """Iterate `data_iter` (a grain iterator, already at its start position) as global batches on
    `mesh`, `depth` ahead; `state` is the iterator state after the last batch returned. Use as a
    context manager (or call close()) so the reader thread stops."""

    def __init__(self, data_iter, mesh, depth: int = 2):
        self.state = data_iter.get_state()
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(data_iter, mesh),
                                        name="device-prefetch", daemon=True)
        self._thread.start()

    def _read(self, data_iter, mesh):
        try:
            while not self._stop.is_set():
                batch = shard_batch(next(data_iter), mesh)
                self._put((batch, data_iter.get_state()))
        except BaseException as error:  # re-raised in the training thread by __next__
            self._put(error)

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        batch, self.state = item
        return batch

    def close(self):
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
