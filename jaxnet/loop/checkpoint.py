"""Checkpoints with orbax, for every method: named pytrees plus one JSON record per step.

A method saves its state as items (the CNN: its model `variables` and its `optimizer` part; the
classical pipeline: its fitted encoder + SVM) and a JSON `meta` record (the data iterator's
position from its public get_state(), fit details). A restore places every array with the
shardings of the *current* mesh, so a checkpoint written on 8 devices restores onto 4 (or 1 CPU).

Nothing is lost to a bad checkpoint: a step saved with the eval metric `BEST_METRIC` is kept
while it is the best one (the earliest of equals), besides the last `keep` (a diverging run
cannot rotate the good ones away), and a restore of "the latest" falls back to the newest step
that restores. Only proven damage (a file of that step that does not decode) makes it fall back;
a training run moves the damaged step aside to WORKDIR/checkpoints_damaged/ (never deleting it),
a read-only one (evaluation) leaves the workdir as it is. Any other failure (out of memory, a
filesystem error, another config's structure) is an error that changes nothing.

A save that fails (a full disk, no permission) stops the run with one line naming the path and
the cause; its temporary folder is removed and the earlier checkpoints stay.
"""
import errno
import functools
import json
import logging
import math
import shutil
import time
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging
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
    """Higher is better: the lower BEST_METRIC, then the earlier step (a tie keeps the first)."""
    return -metrics[BEST_METRIC] - 1e-13 * metrics.get("step", 0)


# Text of a restore error that proves the step's own files do not decode (truncated, corrupt)
DAMAGE_MARKERS = ("DATA_LOSS", "OUT_OF_RANGE", "checksum", "corrupt", "Error decoding",
                  "Failed to decode", "is not valid for value of size", "Unexpected end")


def is_damage(error: Exception, step_dir: Path) -> bool:
    """Whether `error` (raised restoring the checkpoint in `step_dir`) proves that checkpoint's
    files damaged, rather than memory, a filesystem hiccup or another config's structure."""
    if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
        return True  # its meta record does not parse
    text = str(error)
    return str(step_dir) in text and any(marker in text for marker in DAMAGE_MARKERS)


def resource_cause(error: BaseException) -> str:
    """The cause of a failed save in a few words: no space, no permission, else the error's first line."""
    chain, e = [], error
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        code = getattr(e, "errno", None)
        text = str(e)
        if code == errno.ENOSPC or "No space left on device" in text or "os_error_code='28'" in text:
            return "no space left on the device"
        if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
            return "permission denied"
        if code == errno.EROFS or "Read-only file system" in text:
            return "the filesystem is read-only"
        if code == errno.EDQUOT or "quota exceeded" in text.lower():
            return "the disk quota is exceeded"
    first = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{type(error).__name__}: {first}"


def _save_step(manager, step: int, args, metrics) -> None:
    """orbax's (asynchronous) save of one step: the boundary a failed save comes through."""
    manager.save(step, args=args, metrics=metrics, force=True)


@functools.cache
def _write_arrays_whole_in_one_process() -> None:
    """In a single process, write each replicated array whole from its first replica. orbax's
    default (replica-parallel writes) splits it into one slice per device so that several hosts
    share the writing; with one host that only adds a slicing program per array and device (seconds
    per save on 8 devices). Multi-process runs keep orbax's default. Done once per process
    (orbax logs every change of a type handler as a warning: not shown)."""
    if jax.process_count() > 1:
        return
    absl_logger = absl_logging.get_absl_logger()
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        ocp.type_handlers.register_type_handler(
            jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True)
    finally:
        absl_logger.setLevel(level)


class Checkpointer:
    """`WORKDIR/checkpoints`: steps saved on request; the last `keep` kept, and the best by
    BEST_METRIC. `read_only`: for evaluation (nothing is created: a read-only workdir works)."""

    def __init__(self, directory, keep: int, read_only: bool = False):
        self.directory, self.read_only = Path(directory).absolute(), read_only
        self._saving, self._failed = None, False  # the step of the save in flight; a save failed
        _write_arrays_whole_in_one_process()
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
        self.wait()  # (orbax waits for the previous save too) its failure is named with its step
        args = {name: ocp.args.StandardSave(tree) for name, tree in items.items()}
        if meta is not None:
            args["meta"] = ocp.args.JsonSave(meta)
        value = float(metrics[BEST_METRIC]) if metrics else math.inf
        self._saving = step
        try:
            _save_step(self.manager, step, ocp.args.Composite(**args),
                       {BEST_METRIC: value, "step": int(step)})
        except Exception as e:  # noqa: BLE001 (orbax and tensorstore raise many kinds)
            raise self._save_failed(step, e) from None

    def check(self) -> None:
        """Raise, in one line, the failure of the save in flight, if it failed already."""
        if self._saving is None:
            return
        try:
            self.manager.check_for_errors()
            if not self.manager.is_saving_in_progress():
                self.manager.wait_until_finished()  # done: returns at once, or raises its failure
                self._saving = None
        except Exception as e:  # noqa: BLE001
            raise self._save_failed(self._saving, e) from None

    def _save_failed(self, step: int, error: Exception) -> JaxnetError:
        """The one-line error of a failed save at `step`, after removing its temporary folder."""
        self._saving, self._failed = None, True
        self._remove_partial()
        kept = [s for s in self.all_steps() if s != step]
        self.manager.reload()
        return JaxnetError(
            f"the checkpoint at step {step} could not be saved in {self.directory}"
            f" ({resource_cause(error)}); training stopped. The checkpoints saved before it"
            f" ({', '.join(map(str, kept)) or 'none'}) are kept; make room (or fix the folder's"
            " permissions) and run the same command to resume")

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
                if not is_damage(e, self.directory / str(s)):
                    raise self._unreadable(s, e) from e  # not proven damage: nothing is moved
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
        if self.read_only:  # evaluation never changes a workdir
            moved = "left in place (a training run on this workdir moves it aside)"
        elif jax.process_index() == 0:
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
        """Wait for the save in flight; its failure is raised in one line (see save)."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001
            if self._failed:
                return  # reported already, in one line
            if self._saving is None:
                raise
            raise self._save_failed(self._saving, e) from None
        self._saving = None

    def close(self) -> None:
        try:
            self.manager.close()
        except Exception:  # noqa: BLE001
            if not self._failed:  # after a failed save, its error was the one reported
                raise
        if self._failed:  # what orbax's threads still wrote after the failure
            self._remove_partial(tries=10)

    def _remove_partial(self, tries: int = 1) -> None:
        """Remove the temporary folders of failed saves (process 0), retrying while orbax's
        threads still finish writing into them."""
        if jax.process_index() != 0:
            return
        for attempt in range(tries):
            partial = list(self.directory.glob("*.orbax-checkpoint-tmp*"))
            if not partial:
                return
            for path in partial:
                shutil.rmtree(path, ignore_errors=True)
            if attempt + 1 < tries:
                time.sleep(0.2)


def abstract_like(state, sharding):
    """ShapeDtypeStructs of `state` with `sharding` (one sharding for all, or a pytree like
    `state`'s): the restore target on the current mesh."""
    if isinstance(sharding, jax.sharding.Sharding):
        sharding = jax.tree.map(lambda _: sharding, state)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state,
                        sharding)
