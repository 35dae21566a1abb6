"""Evaluate a workdir's checkpoint on a whole split and write `WORKDIR/eval/SPLIT_stepN.json`."""
import json
from pathlib import Path

import jax

from jaxnet import JaxnetError
from jaxnet.config import validate_config
from jaxnet.data.sources import create_source
from jaxnet.evaluation.evaluate import evaluate
from jaxnet.training.checkpoint import Checkpointer
from jaxnet.training.loop import build_training
from jaxnet.training.sharding import (batch_sharded, check_batch_size, create_mesh, replicated,
                                      shardings_of)
from jaxnet.training.steps import make_eval_step


def evaluate_checkpoint(config, workdir, split=None, step=None) -> dict:
    """Restore `step` (default: latest) of `workdir` and evaluate it on `split` (default: eval_split)."""
    validate_config(config)
    workdir = Path(workdir)
    split = split or config.eval_split
    checkpoint_dir = workdir / "checkpoints"
    if not checkpoint_dir.is_dir():
        raise JaxnetError(f"{workdir} has no checkpoints/ directory: train first with"
                          f" `python train.py --config=... --workdir={workdir}`")
    mesh = create_mesh()
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    source = create_source(config, split)
    # Shapes do not depend on the schedule, so steps_per_epoch only needs to be positive here.
    model, _, _, init = build_training(config, 1, mesh)
    # The restore target: shapes, dtypes and the placement `init` gives (config.param_sharding).
    abstract_state = jax.eval_shape(init, jax.random.PRNGKey(0))
    sharding = shardings_of(abstract_state)
    checkpointer = Checkpointer(checkpoint_dir, keep=config.keep_checkpoints)
    try:
        if checkpointer.latest_step() is None:
            raise JaxnetError(f"no checkpoint in {checkpoint_dir}: train first")
        state = checkpointer.restore(abstract_state, step=step)
    finally:
        checkpointer.close()
    eval_step = jax.jit(make_eval_step(model, config),
                        in_shardings=(sharding, batch_sharded(mesh)), out_shardings=replicated(mesh))
    metrics = {"step": int(state.step), "split": split,
               **evaluate(eval_step, state, source, config, mesh)}
    if jax.process_index() == 0:
        out = workdir / "eval" / f"{split}_step{metrics['step']}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(metrics, indent=2) + "\n")
        metrics["path"] = str(out)
    return metrics
