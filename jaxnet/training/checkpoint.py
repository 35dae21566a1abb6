"""Checkpoints with orbax: the train state and the data iterator's position, saved together.

A restore places every array with the shardings of the *current* mesh, so a checkpoint written
on 8 devices restores onto 4 (or onto 1 CPU).
"""
import json
from pathlib import Path

import grain
import jax
import orbax.checkpoint as ocp

from jaxnet import JaxnetError


class Checkpointer:
    """`WORKDIR/checkpoints`: save every N steps and at the end, keep the last K."""

    def __init__(self, directory, keep: int):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self):
        return self.manager.latest_step()

    def save(self, step: int, state, data_iterator=None) -> None:
        items = {"state": ocp.args.StandardSave(state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)

    def restore(self, abstract_state, data_iterator=None, step=None):
        """Restore `step` (default: latest) into arrays shaped and sharded like `abstract_state`.

        `data_iterator` (if given) is moved to the saved position in place.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise JaxnetError(f"no checkpoint in {self.directory}")
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**items))
            if data_iterator is not None:
                restore_data_position(self.directory / str(step) / "data", data_iterator)
        except (ValueError, KeyError, TypeError) as e:
            raise JaxnetError(
                f"the checkpoint at step {step} in {self.directory} does not fit this config's"
                f" model/optimizer ({type(e).__name__}: {str(e).splitlines()[0][:300]}). Use"
                " another --workdir, or the config that wrote it."
            ) from e
        return restored["state"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def restore_data_position(directory: Path, data_iterator) -> None:
    """Move `data_iterator` to the position saved in `directory` (grain's per-process JSON files).

    Every process's iterator stands at the same batch index (the pipeline gives process p every
    process_count-th example of one global order), so a checkpoint written by another number of
    processes restores too: this process's own file when the count matches, else process 0's.
    """
    own = directory / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    found = [own] if own.exists() else sorted(directory.glob("process_0-of-*.json"))
    if not found:
        raise ValueError(f"no data iterator position in {directory}")
    data_iterator.set_state(json.loads(found[0].read_text()))
    data_iterator.start_prefetch()


def abstract_like(state, sharding):
    """ShapeDtypeStructs of `state` with `sharding` (one sharding for all, or a pytree like
    `state`'s): the restore target on the current mesh."""
    if isinstance(sharding, jax.sharding.Sharding):
        sharding = jax.tree.map(lambda _: sharding, state)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state,
                        sharding)
