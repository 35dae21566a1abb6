"""Checkpoints with orbax, for every method: named pytrees plus one JSON record per step.

A method saves its state as items (the CNN: its model `variables` and its `optimizer` part; the
classical pipeline: its fitted encoder + SVM) and a JSON `meta` record (the data iterator's
position from its public get_state(), fit details). A restore places every array with the
shardings of the *current* mesh, so a checkpoint written on 8 devices restores onto 4 (or 1 CPU).
"""
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from jaxnet import JaxnetError


class Checkpointer:
    """`WORKDIR/checkpoints`: steps saved on request, the last `keep` kept."""

    def __init__(self, directory, keep: int):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def latest_step(self):
        return self.manager.latest_step()

    def all_steps(self) -> list:
        return sorted(self.manager.all_steps())

    def save(self, step: int, items: dict, meta: dict | None = None) -> None:
        """Save the pytrees `items` ({name: pytree}) and the JSON-able `meta` at `step`."""
        args = {name: ocp.args.StandardSave(tree) for name, tree in items.items()}
        if meta is not None:
            args["meta"] = ocp.args.JsonSave(meta)
        self.manager.save(step, args=ocp.args.Composite(**args), force=True)

    def restore(self, step, targets: dict) -> dict:
        """Restore the items named in `targets` at `step` (None: the latest). A target is a pytree
        of ShapeDtypeStructs carrying shardings (see abstract_like), or None for host arrays as
        saved. Returns {name: restored pytree}."""
        step = self.resolve_step(step)
        args = {name: ocp.args.StandardRestore(target) if target is not None
                else ocp.args.StandardRestore() for name, target in targets.items()}
        try:
            return dict(self.manager.restore(step, args=ocp.args.Composite(**args)))
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            raise JaxnetError(
                f"the checkpoint at step {step} in {self.directory} does not fit this config"
                f" ({type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}). Use"
                " another --workdir, or the config that wrote it."
            ) from e

    def restore_meta(self, step=None) -> dict:
        """The JSON record saved with `step` (None: the latest); {} if it has none."""
        step = self.resolve_step(step)
        if not (self.directory / str(step) / "meta").exists():
            return {}
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def resolve_step(self, step=None) -> int:
        """`step` if it was saved (None: the latest); else a JaxnetError listing the saved steps."""
        steps = self.all_steps()
        if not steps:
            raise JaxnetError(f"no checkpoint in {self.directory}: train first with"
                              f" `python train.py --config=... --workdir={self.directory.parent}`")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise JaxnetError(f"no checkpoint at step {step} in {self.directory}; it has steps"
                              f" {', '.join(map(str, steps))}")
        return step

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def abstract_like(state, sharding):
    """ShapeDtypeStructs of `state` with `sharding` (one sharding for all, or a pytree like
    `state`'s): the restore target on the current mesh."""
    if isinstance(sharding, jax.sharding.Sharding):
        sharding = jax.tree.map(lambda _: sharding, state)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state,
                        sharding)
