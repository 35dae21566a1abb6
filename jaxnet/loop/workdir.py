"""The workdir every method writes: config.json, checkpoints/, metrics.jsonl, tensorboard/ and
eval/<split>_step<N>.json (docs/ARCHITECTURE.md, "The workdir"); config_history.jsonl (each
accepted config change) and `lock` (held while a run trains in it).

A workdir with checkpoints resumes only with the config that wrote them: a changed field is
refused and named, except SAFE_FIELDS (extending a run, its logging / evaluation / checkpoint
cadence, where its data lives); `allow_changes` accepts the others, recorded in the history.
"""
import contextlib
import datetime
import fcntl
import json
import os
import socket
from pathlib import Path

import jax
import ml_collections

from jaxnet.config import base_config

from jaxnet import JaxnetError, files


def field(tree: dict, dotted: str):
    """The value of a dotted field ("classical.lam") in a resolved config dict; None if absent."""
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


# Fields a resumed run may change without --allow_config_change: how long it runs, how often it
# logs, evaluates and checkpoints, where its data is read from and how evaluation is batched.
SAFE_FIELDS = ("num_epochs", "log_every_steps", "eval_every_epochs", "checkpoint_every_steps",
               "keep_checkpoints", "eval_batch_size", "eval_protocol", "class_tree", "data_dir",
               "num_workers", "divergence_factor", "divergence_intervals")


def changed_fields(workdir, config, fields=None) -> list:
    """'name: saved there, now here' for each of `fields` (None: every field but SAFE_FIELDS)
    that differs from WORKDIR/config.json (none when the workdir has no config.json)."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        return []
    saved, now = json.loads(path.read_text()), json.loads(config.to_json())
    if fields is None:
        fields = sorted((set(saved) | set(now)) - set(SAFE_FIELDS))
    changes = []

    def compare(name, a, b):  # sections are compared field by field, to name the leaf
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                compare(f"{name}.{key}", a.get(key), b.get(key))
        elif a != b:
            changes.append(f"{name}: {a!r} there, {b!r} now")

    for f in fields:
        compare(f, field(saved, f), field(now, f))
    return changes


def check_same_run(workdir, config, fields) -> None:
    """Refuse a workdir whose checkpoints were made with other values of `fields`."""
    changes = changed_fields(workdir, config, fields)
    if changes:
        raise JaxnetError(
            f"workdir {workdir} holds checkpoints of a different run ({'; '.join(changes)}). Use"
            " another --workdir, or the config that wrote it; nothing was changed.")


def prepare_workdir(workdir, config, identity_fields, allow_changes: bool = False) -> Path:
    """Create the workdir and write config.json. A workdir with checkpoints is refused when
    `identity_fields` differ (another run wrote it) or, unless `allow_changes`, any other field
    but SAFE_FIELDS; accepted changes are appended to config_history.jsonl."""
    workdir = Path(workdir)
    try:
        (workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write_test{jax.process_index()}"  # one per process: no race
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise JaxnetError(f"workdir {workdir} is not writable: {e}") from e
    changes = []
    if any((workdir / "checkpoints").iterdir()):
        check_same_run(workdir, config, identity_fields)
        changes = changed_fields(workdir, config)
        if changes and not allow_changes:
            raise JaxnetError(
                f"workdir {workdir} was trained with another config ({'; '.join(changes)}). Run"
                " with the config that wrote it to resume, add --allow_config_change to resume"
                " with these changes (recorded in config_history.jsonl), or use another --workdir."
                f" Changes to {', '.join(SAFE_FIELDS)} need no flag.")
    if jax.process_index() == 0:
        if changes or not (workdir / "config_history.jsonl").exists():
            entry = {"time": datetime.datetime.now().isoformat(timespec="seconds"),
                     **({"changes": changes} if changes else {"created": True})}
            with open(workdir / "config_history.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
        # written whole, then renamed: other processes and later runs never read half a file
        files.write_text(workdir / "config.json",
                         json.dumps(json.loads(config.to_json()), indent=2, sort_keys=True) + "\n")
    return workdir


@contextlib.contextmanager
def workdir_lock(workdir):
    """Hold WORKDIR/lock while a run trains there (process 0): a second run on the workdir is
    refused. It is an OS file lock (flock), released when its holder exits or is killed, even by
    kill -9, so a stale lock file never blocks a new run."""
    workdir = Path(workdir)
    if jax.process_index() != 0:
        yield
        return
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        handle = open(workdir / "lock", "a+")
    except OSError as e:
        raise JaxnetError(f"workdir {workdir} is not writable: {e}") from e
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise JaxnetError(f"workdir {workdir} is in use by another run ({holder}): wait for it or"
                          " stop it, or use another --workdir") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"train.py pid {os.getpid()} on {socket.gethostname()} since"
                     f" {datetime.datetime.now().isoformat(timespec='seconds')}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def load_config(workdir) -> ml_collections.ConfigDict:
    """The resolved config a workdir was trained with (its config.json; fields added to jaxnet
    since then keep their defaults)."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise JaxnetError(f"{workdir} has no config.json: not a jaxnet workdir")
    config = base_config()
    config.update(json.loads(path.read_text()))
    return config


def eval_file(workdir, split: str, step: int, protocol: str = "center", models: int = 1,
              key: str = "") -> Path:
    """WORKDIR/eval/<split>[_<protocol>][_ensemble<K>][_<key>]_step<N>.json (centre crop, one
    model, no options: <split>_step<N>.json); `key` names the evaluation's options
    (jaxnet.loop.eval_options), so evaluations that differ never share a file."""
    name = split + ("" if protocol == "center" else f"_{protocol}")
    name += f"_ensemble{models}" if models > 1 else ""
    name += f"_{key}" if key else ""
    return Path(workdir) / "eval" / f"{name}_step{int(step)}.json"


def eval_path(workdir, record: dict, out=None) -> Path:
    """Where the eval file of `record` (its split, step, protocol, models and options key) goes:
    WORKDIR/eval/, or the folder `out` when given."""
    path = eval_file(workdir, record["split"], record["step"], record["protocol"],
                     len(record["models"]), record.get("key", ""))
    return Path(out) / path.name if out else path


def write_eval_file(workdir, record: dict, out=None) -> Path:
    """Write the eval file of `record` (eval_path), whole or not at all."""
    path = eval_path(workdir, record, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    return files.write_text(path, json.dumps(record, indent=2) + "\n")
