"""Checkpoints with orbax, for every method: named pytrees plus one JSON record per step.

A method saves its state as items (the CNN: its model `variables` and its `optimizer` part; the
classical pipeline: its fitted encoder + SVM) and a JSON `meta` record (the data iterator's
position from its public get_state(), fit details). A restore places every array with the
shardings of the *current* mesh, so a checkpoint written on 8 devices restores onto 4 (or 1 CPU).

Nothing is lost to a bad checkpoint: a step saved with the eval metric `BEST_METRIC` is kept
while it is the best one, besides the last `keep` (a diverging run cannot rotate the good ones
away), and a restore of "the latest" falls back to the newest step that restores, moving a
damaged newer one aside to WORKDIR/checkpoints_damaged/ (never deleting it).
"""
import math
import shutil
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from jaxnet import JaxnetError
from jaxnet.console import warn

BEST_METRIC = "top1_err"  # lower is better


def _preservation(keep: int):
    """The last `keep` steps, and the one with the lowest BEST_METRIC."""
    return checkpoint_managers.AnyPreservationPolicy([
        checkpoint_managers.LatestN(n=keep),
        checkpoint_managers.BestN(get_metric_fn=_score, n=1, keep_checkpoints_without_metrics=False)])


def _score(metrics) -> float:
    return -metrics[BEST_METRIC]


class Checkpointer:
    """`WORKDIR/checkpoints`: steps saved on request; the last `keep` kept, and the best by
    BEST_METRIC. `read_only`: for evaluation (nothing is created: a read-only workdir works)."""

    def __init__(self, directory, keep: int, read_only: bool = False):
        self.directory = Path(directory).absolute()
        # best_fn makes orbax store each step's metrics, so the best is known after a restart
        options = ocp.CheckpointManagerOptions(
            preservation_policy=_preservation(keep), best_fn=_score, create=not read_only)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def latest_step(self):
        return self.manager.latest_step()

    def all_steps(self) -> list:
        return sorted(self.manager.all_steps())

    def best_step(self):
        """The kept step with the lowest BEST_METRIC (None if no step was saved with it)."""
        best = self.manager.best_step()
        return best if best is not None and math.isfinite(self.manager.metrics(best)[BEST_METRIC]) else None

    def save(self, step: int, items: dict, meta: dict | None = None, metrics: dict | None = None) -> None:
        """Save the pytrees `items` ({name: pytree}) and the JSON-able `meta` at `step`, with the
        eval `metrics` of this step when it was evaluated (they rank it for keeping)."""
        args = {name: ocp.args.StandardSave(tree) for name, tree in items.items()}
        if meta is not None:
            args["meta"] = ocp.args.JsonSave(meta)
        metrics = {BEST_METRIC: float(metrics[BEST_METRIC])} if metrics else {BEST_METRIC: math.inf}
        self.manager.save(step, args=ocp.args.Composite(**args), metrics=metrics, force=True)

    def restore(self, step, targets: dict) -> dict:
        """Restore the items named in `targets` at `step` (None: the latest). A target is a pytree
        of ShapeDtypeStructs carrying shardings (see abstract_like), or None for host arrays as
        saved. Returns {name: restored pytree}."""
        step = self.resolve_step(step)
        args = {name: ocp.args.StandardRestore(target) if target is not None
                else ocp.args.StandardRestore() for name, target in targets.items()}
        try:
            return dict(self.manager.restore(step, args=ocp.args.Composite(**args)))
        except Exception as e:  # noqa: BLE001 (orbax and tensorstore raise many kinds)
            raise self._unreadable(step, e) from e

    def _unreadable(self, step: int, error: Exception) -> JaxnetError:
        if isinstance(error, JaxnetError):
            return error
        text = str(error).splitlines()[0][:300] if str(error) else ""
        return JaxnetError(
            f"the checkpoint at step {step} in {self.directory} could not be read"
            f" ({type(error).__name__}: {text}): it is damaged, or this config is not the one that"
            " wrote it. Nothing was changed.")

    def restore_newest(self, restore_step, step=None):
        """(step, restore_step(step)) at `step`; with step None, at the newest step that restores.
        Newer steps that fail while an older one restores are damaged: each is moved to
        WORKDIR/checkpoints_damaged/ with one warning line. If none restores, the newest's error."""
        if step is not None:
            step = self.resolve_step(step)
            try:
                return step, restore_step(step)
            except Exception as e:  # noqa: BLE001
                raise self._unreadable(step, e) from e
        steps = self.all_steps()
        self.resolve_step(None)  # no checkpoint at all: the "train first" message
        failed = []
        for s in reversed(steps):
            try:
                result = restore_step(s)
            except Exception as e:  # noqa: BLE001
                failed.append((s, e))
                continue
            for bad, error in failed:
                self._set_aside(bad, error, s)
            return s, result
        raise self._unreadable(*failed[0]) from failed[0][1]

    def _set_aside(self, step: int, error: Exception, fallback: int) -> None:
        """Move the damaged `step` to WORKDIR/checkpoints_damaged/ (process 0), with a warning."""
        aside = self.directory.parent / "checkpoints_damaged"
        target = aside / str(step)
        moved = f"moved to {target}"
        if jax.process_index() == 0:
            try:
                aside.mkdir(exist_ok=True)
                n = 1
                while target.exists():
                    target, n = aside / f"{step}.{n}", n + 1
                shutil.move(str(self.directory / str(step)), str(target))
                self.manager.reload()
                moved = f"moved to {target}"
            except OSError as e:  # a read-only workdir: evaluation still goes on
                moved = f"left in place ({e})"
        text = str(error).splitlines()[0][:200] if str(error) else ""
        warn(f"the checkpoint at step {step} is damaged ({type(error).__name__}: {text}); {moved},"
             f" using step {fallback}")

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
