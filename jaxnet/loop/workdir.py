"""The workdir every method writes: config.json, checkpoints/, metrics.jsonl, tensorboard/ and
eval/<split>_step<N>.json (see ../shared/DESIGN.md, "Workdir")."""
import json
from pathlib import Path

import jax
import ml_collections

from jaxnet.config import base_config

from jaxnet import JaxnetError


def field(tree: dict, dotted: str):
    """The value of a dotted field ("classical.lam") in a resolved config dict; None if absent."""
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def changed_fields(workdir, config, fields) -> list:
    """'name: saved there, now here' for each of `fields` that differs from WORKDIR/config.json
    (none when the workdir has no config.json)."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        return []
    saved, now = json.loads(path.read_text()), json.loads(config.to_json())
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


def prepare_workdir(workdir, config, identity_fields) -> Path:
    """Create the workdir, refuse one whose checkpoints another run (other `identity_fields`)
    wrote, and write config.json."""
    workdir = Path(workdir)
    try:
        (workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write_test{jax.process_index()}"  # one per process: no race
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise JaxnetError(f"workdir {workdir} is not writable: {e}") from e
    if any((workdir / "checkpoints").iterdir()):
        check_same_run(workdir, config, identity_fields)
    if jax.process_index() == 0:
        partial = workdir / "config.json.tmp"  # then renamed: other processes never read half a file
        partial.write_text(json.dumps(json.loads(config.to_json()), indent=2, sort_keys=True) + "\n")
        partial.replace(workdir / "config.json")
    return workdir


def load_config(workdir) -> ml_collections.ConfigDict:
    """The resolved config a workdir was trained with (its config.json; fields added to jaxnet
    since then keep their defaults)."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise JaxnetError(f"{workdir} has no config.json: not a jaxnet workdir")
    config = base_config()
    config.update(json.loads(path.read_text()))
    return config


def eval_file(workdir, split: str, step: int, protocol: str = "center", models: int = 1) -> Path:
    """WORKDIR/eval/<split>[_<protocol>][_ensemble<K>]_step<N>.json (centre crop, one model:
    <split>_step<N>.json)."""
    name = split + ("" if protocol == "center" else f"_{protocol}")
    name += f"_ensemble{models}" if models > 1 else ""
    return Path(workdir) / "eval" / f"{name}_step{int(step)}.json"


def write_eval_file(workdir, record: dict) -> Path:
    """The eval file of `record` (its split, step, protocol and models) in WORKDIR/eval/."""
    path = eval_file(workdir, record["split"], record["step"], record["protocol"],
                     len(record["models"]))
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
