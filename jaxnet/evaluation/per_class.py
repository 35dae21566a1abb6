"""Per-class results: top-1 / top-5 hit rate and count per class, confusion counts, the most
confused pairs. In the evaluator's metric protocol (`sums` inside jit, `finalize` on the host).

The sums are int32 counts (a [C, C] confusion matrix, rows = true class, columns = top-1
prediction, and a [C] vector of top-5 hits), so totals are exact on any number of devices.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class PerClassMetric:
    """num_classes: C. names: a display name per class (ImageNet: `wordnet_name(wnid)`;
    Fashion-MNIST: `ClassTree.builtin("fashion_mnist").class_names()`); default "0", "1", ...
    top_pairs: how many most confused (true, predicted) pairs to list.
    confusion_in_results: put the [C, C] matrix into finalize's dict (default: when C <= 100;
    it is always in the totals, for the caller to save as .npy)."""

    def __init__(self, num_classes: int, names: Sequence[str] | None = None, k: int = 5,
                 top_pairs: int = 20, confusion_in_results: bool | None = None):
        self.num_classes = int(num_classes)
        self.names = [str(n) for n in names] if names is not None else [
            str(i) for i in range(self.num_classes)]
        if len(self.names) != self.num_classes:
            raise ValueError(f"{len(self.names)} class names for {self.num_classes} classes")
        self.k = min(k, self.num_classes)  # the key stays top{k}_acc with fewer classes
        self.key = f"top{k}_acc"
        self.top_pairs = top_pairs
        self.confusion_in_results = (self.num_classes <= 100 if confusion_in_results is None
                                     else confusion_in_results)

    def sums(self, scores, labels, mask) -> dict:
        c = self.num_classes
        valid = (mask > 0).astype(jnp.int32)
        # top-1 from argmax, not top_k's first column: XLA:CPU turns a top_k whose result has
        # more than one use into a full sort (~60 ms instead of ~1 ms for 256 x 1000).
        top1 = jnp.argmax(scores, axis=-1)
        top = jax.lax.top_k(scores, self.k)[1]
        hit_k = jnp.any(top == labels[:, None], axis=-1).astype(jnp.int32) * valid
        # Padding rows add 0 wherever their (arbitrary) label points; out-of-range labels drop.
        confusion = jnp.zeros((c, c), jnp.int32).at[labels, top1].add(valid, mode="drop")
        top_k_hits = jnp.zeros((c,), jnp.int32).at[labels].add(hit_k, mode="drop")
        return {"per_class_confusion": confusion, "per_class_topk_hits": top_k_hits}

    def finalize(self, totals: Mapping) -> dict:
        confusion = np.asarray(totals["per_class_confusion"], np.int64)
        top_k_hits = np.asarray(totals["per_class_topk_hits"], np.int64)
        counts = confusion.sum(axis=1)
        top1_hits = np.diag(confusion)
        seen = counts > 0
        safe = np.where(seen, counts, 1)
        top1, topk = top1_hits / safe, top_k_hits / safe
        total = int(counts.sum())
        classes = [{"class": i, "name": self.names[i], "count": int(counts[i]),
                    "top1_acc": float(top1[i]) if seen[i] else None,
                    self.key: float(topk[i]) if seen[i] else None}
                   for i in range(self.num_classes)]
        off = confusion.copy()
        np.fill_diagonal(off, 0)
        flat = np.argsort(-off, axis=None, kind="stable")[:self.top_pairs]
        pairs = []
        for t, p in zip(*np.unravel_index(flat, off.shape)):
            if off[t, p] == 0:
                break
            pairs.append({"true": int(t), "true_name": self.names[t], "pred": int(p),
                          "pred_name": self.names[p], "count": int(off[t, p]),
                          "share_of_true": float(off[t, p] / counts[t])})
        out = {
            "num_examples": total,
            "top1_acc": float(top1_hits.sum() / total) if total else None,
            self.key: float(top_k_hits.sum() / total) if total else None,
            # Means over the classes that have examples (balanced accuracy).
            "mean_class_top1_acc": float(top1[seen].mean()) if seen.any() else None,
            f"mean_class_{self.key}": float(topk[seen].mean()) if seen.any() else None,
            "classes": classes,
            "most_confused": pairs,
        }
        if self.confusion_in_results:
            out["confusion"] = confusion.tolist()
        return out
