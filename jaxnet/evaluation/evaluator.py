"""The shared evaluator: a method's prediction function in; the sums and the report are ours.

Every method (a CNN, features + SVM, a probe, ...) hands over a `Predictor`; the evaluator reads
the split once, every example exactly once on any number of devices and processes (the last
batch padded, padding masked out of every sum), runs the prediction and the metric sums in one
jitted function, adds the sums up on the host and turns them into the contract's metric names
(loss, top1/top5 accuracy and error, num_examples) plus those of any extra metrics (objects with
jittable `sums(probs, labels, mask)` and host `finalize(totals)`; `uses_index = True` adds each
row's position in the split); `collectors` get every batch's rows (index, label, softmax,
mask) on the host, e.g. to keep the most confident mistakes. Under a multi-view protocol or for an ensemble, the class scores
are the log of the softmax averaged over views and models (jaxnet.evaluation.protocols), and
the loss is its negative log-likelihood.
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError
from jaxnet.data.pipeline import eval_batches, num_eval_batches
from jaxnet.evaluation import localization, protocols
from jaxnet.mesh import one_at_a_time, replicated, shard_batch
from jaxnet.training.steps import cross_entropy, topk_correct


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A fitted model as the evaluator sees it.

    predict_fn(params, images) -> scores [B, num_classes]: pure and traceable, uint8 NHWC images
      in (normalisation is the method's business);
    params: the pytree predict_fn reads, placed on the mesh;
    step: the checkpoint step these params are;
    loss_fn(scores, labels) -> per-example loss; None = softmax cross-entropy of the scores.
    A localization or segmentation model's predict_fn returns a dict instead: `logits` (the
    scores) and `boxes` ([B, C, 4], a box per class) and/or `masks` ([B, H, W, classes + 1]);
    the evaluator adds their sums (jaxnet.evaluation.localization) under the centre protocol.
    """
    predict_fn: Callable
    params: Any
    step: int
    loss_fn: Callable | None = None
    task: str = ""  # "" (classes only) | localize | segment: what predict_fn's dict holds


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
    """Evaluates predictors on one split: `evaluator(predictor or [predictors]) -> metrics`."""

    def __init__(self, source, config, mesh, protocol: str = "center", metrics=(), collectors=()):
        self.source, self.config, self.mesh = source, config, mesh
        self.protocol, self.metrics = protocol, tuple(metrics)
        self.collectors = tuple(collectors)  # host objects fed every batch's rows (see __call__)
        self.parts = protocols.canvas_parts(source, protocol, config)
        self._compiled = {}  # one jitted sums function per (predict_fns, loss_fn)

    def num_views(self) -> int:
        return protocols.num_views(self.protocol, self.parts[0][0])

    def _sums_fn(self, predictors):
        single = self.protocol == "center" and len(predictors) == 1
        task_flip = self.protocol == "flip" and bool(predictors[0].task)  # boxes, masks mirrored back
        loss_fn = predictors[0].loss_fn if single else None
        key = (tuple(p.predict_fn for p in predictors), loss_fn)
        if key not in self._compiled:
            config, fns = self.config, [p.predict_fn for p in predictors]

            def sums(params, batch):
                outputs = {}
                if single or task_flip:
                    outputs = (localization.mirrored_outputs(fns[0], params[0], batch["image"])
                               if task_flip else fns[0](params[0], batch["image"]))
                    outputs = outputs if isinstance(outputs, dict) else {"logits": outputs}
                    scores = outputs["logits"].astype(jnp.float32)
                else:
                    scores = protocols.averaged_log_probs(fns, params, batch["image"],
                                                          self.protocol, config.image_size)
                labels, mask = batch["label"], batch["mask"]
                out = batch_sums(scores, labels, mask, config.num_classes, loss_fn)
                out.update(localization.outputs_sums(outputs, batch, labels, mask))
                probs = jax.nn.softmax(scores)
                for metric in self.metrics:
                    extra = (batch["index"],) if getattr(metric, "uses_index", False) else ()
                    out.update(metric.sums(probs, labels, mask, *extra))
                rows = ({"index": batch["index"], "label": labels, "probs": probs, "mask": mask,
                         **localization.outputs_rows(outputs, batch)} if self.collectors else None)
                return out, rows

            self._compiled[key] = jax.jit(sums, out_shardings=replicated(self.mesh))
        return self._compiled[key]

    def num_batches(self) -> int:
        """How many batches a pass over the split takes (the last of each part padded)."""
        return sum(num_eval_batches(len(part), self.config.eval_batch_size) for part, _ in self.parts)

    def batches(self):
        """This process's share of every batch of the split, padded, with `mask` and `index`."""
        for part, indices in self.parts:
            for batch in eval_batches(part, self.config.eval_batch_size, jax.process_index(),
                                      jax.process_count()):
                if indices is not None:  # a bucket of the split: its rows' split positions
                    batch["index"] = indices[batch["index"]].astype(np.int32)
                yield batch

    def __call__(self, predictors, between_batches=None) -> dict:
        """The metrics of `predictors` over the split. `between_batches(i)`, when given, is called
        before batch i (it may raise to stop the pass: a stop agreed by every process)."""
        predictors = [predictors] if isinstance(predictors, Predictor) else list(predictors)
        task = next((p.task for p in predictors if p.task), "")
        if task and (self.protocol not in protocols.WHOLE_IMAGE_PROTOCOLS or len(predictors) > 1):
            raise JaxnetError(f"a {task} model is evaluated on whole images (--protocol=center|flip)"
                              f" and alone: {self.protocol} crops{' and ensembles' if len(predictors) > 1 else ''}"
                              " would move its boxes and masks")
        sums_fn, totals = self._sums_fn(predictors), None
        params, blocking, pending = [p.params for p in predictors], one_at_a_time(self.mesh), []
        for i, local_batch in enumerate(self.batches()):
            if between_batches is not None:
                between_batches(i)
            sums, rows = sums_fn(params, shard_batch(local_batch, self.mesh))
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
            if blocking:
                jax.block_until_ready(totals)
            if rows is not None:
                pending.append(rows)  # fetched after the pass: no wait on the device per batch
        for rows in jax.device_get(pending):
            for collector in self.collectors:
                collector.update(rows["index"], rows["label"], rows["probs"], rows["mask"])
                if "outputs" in rows and hasattr(collector, "update_outputs"):
                    collector.update_outputs(rows["index"], rows["mask"], rows["outputs"])
        totals = {k: np.asarray(jax.device_get(v), np.float64 if np.ndim(v) == 0 else None)
                  for k, v in totals.items()}
        metrics = summarize(totals)
        if metrics["num_examples"] != len(self.source):
            raise RuntimeError(f"evaluated {metrics['num_examples']} examples, the split has"
                               f" {len(self.source)}")
        metrics.update(localization.finalize_outputs(totals))
        for metric in self.metrics:  # their own names; the contract's above are not replaced
            for key, value in metric.finalize(totals).items():
                metrics.setdefault(key, value)
        return metrics
