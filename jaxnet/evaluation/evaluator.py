"""The shared evaluator: a method's prediction function in; the sums and the report are ours.

Every method (a CNN, features + SVM, a probe, ...) hands over a `Predictor`; the evaluator reads
the split once, every example exactly once on any number of devices and processes (the last
batch padded, padding masked out of every sum), runs the prediction and the metric sums in one
jitted function per predictor, adds the sums up on the host and turns them into the contract's
metric names (loss, top1/top5 accuracy and error, num_examples).
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.data.pipeline import eval_batches
from jaxnet.mesh import replicated, shard_batch
from jaxnet.training.steps import cross_entropy, topk_correct


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A fitted model as the evaluator sees it.

    predict_fn(params, images) -> scores [B, num_classes]: pure and traceable, uint8 NHWC images
      in (normalisation is the method's business);
    params: the pytree predict_fn reads, placed on the mesh;
    step: the checkpoint step these params are;
    loss_fn(scores, labels) -> per-example loss; None = softmax cross-entropy of the scores.
    """
    predict_fn: Callable
    params: Any
    step: int
    loss_fn: Callable | None = None


def batch_sums(scores, labels, mask, num_classes: int, loss_fn=None) -> dict:
    """Loss, top-1 / top-5 correct and count, summed over the real rows of one batch."""
    loss = (loss_fn(scores, labels) if loss_fn is not None
            else cross_entropy(scores, labels, num_classes))
    return {"loss": (loss * mask).sum(),
            "top1_correct": (topk_correct(scores, labels, 1) * mask).sum(),
            "top5_correct": (topk_correct(scores, labels, 5) * mask).sum(),
            "count": mask.sum()}


def summarize(sums) -> dict:
    """Summed metrics -> the contract's names: loss, top1/top5 accuracy and error, num_examples."""
    n = float(sums["count"])
    top1, top5 = float(sums["top1_correct"]) / n, float(sums["top5_correct"]) / n
    return {"loss": float(sums["loss"]) / n, "top1_acc": top1, "top5_acc": top5,
            "top1_err": 1.0 - top1, "top5_err": 1.0 - top5, "num_examples": int(n)}


class Evaluator:
    """Evaluates predictors on one split of one source: `evaluator(predictor) -> metrics`."""

    def __init__(self, source, config, mesh):
        self.source, self.config, self.mesh = source, config, mesh
        self._compiled = {}  # one jitted sums function per (predict_fn, loss_fn)

    def _sums_fn(self, predictor: Predictor):
        key = (predictor.predict_fn, predictor.loss_fn)
        if key not in self._compiled:
            num_classes = self.config.num_classes

            def sums(params, batch):
                scores = predictor.predict_fn(params, batch["image"]).astype(jnp.float32)
                return batch_sums(scores, batch["label"], batch["mask"], num_classes,
                                  predictor.loss_fn)

            self._compiled[key] = jax.jit(sums, out_shardings=replicated(self.mesh))
        return self._compiled[key]

    def batches(self):
        """This process's share of every batch of the split, padded, with `mask`."""
        return eval_batches(self.source, self.config.eval_batch_size, jax.process_index(),
                            jax.process_count())

    def __call__(self, predictor: Predictor) -> dict:
        sums_fn, totals = self._sums_fn(predictor), None
        for local_batch in self.batches():
            sums = sums_fn(predictor.params, shard_batch(local_batch, self.mesh))
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        metrics = summarize(jax.tree.map(lambda x: np.float64(jax.device_get(x)), totals))
        if metrics["num_examples"] != len(self.source):
            raise RuntimeError(f"evaluated {metrics['num_examples']} examples, the split has"
                               f" {len(self.source)}")
        return metrics
