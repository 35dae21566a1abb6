"""Checkpoints with orbax: the train state and the data iterator's position, saved together.

A restore places every array with the shardings of the *current* mesh, so a checkpoint written
on 8 devices restores onto 4 (or onto 1 CPU).
"""
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
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**items))
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


def abstract_like(state, sharding):
    """ShapeDtypeStructs of `state` with `sharding`: the restore target on the current mesh."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)
