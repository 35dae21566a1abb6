"""Whole-split evaluation: every example exactly once, padded batches masked out of the metrics."""
import jax
import numpy as np

from jaxnet.data.pipeline import eval_batches
from jaxnet.training.sharding import shard_batch
from jaxnet.training.steps import summarize_eval


def evaluate(eval_step, state, source, config, mesh) -> dict:
    """Run the jitted `eval_step` over all of `source`; returns loss, top-1/5 accuracy and error."""
    totals = None
    batches = eval_batches(source, config.eval_batch_size, jax.process_index(), jax.process_count())
    for local_batch in batches:
        sums = eval_step(state, shard_batch(local_batch, mesh))
        totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
    totals = jax.tree.map(lambda x: np.float64(jax.device_get(x)), totals)
    metrics = summarize_eval(totals)
    if metrics["num_examples"] != len(source):
        raise AssertionError(f"evaluated {metrics['num_examples']} examples, split has {len(source)}")
    return metrics
