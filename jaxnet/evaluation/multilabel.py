"""Multi-label truth in the ImageNet-ReaL format (Beyer et al. 2020): `real_top1_acc`.

File: a JSON list with one list of acceptable label indices per example, in split order (the
order of the evaluator's `index`), e.g. `[[3], [], [7, 12], ...]`. An example with an empty list
is left out; a hit is a top-1 prediction in the example's list. The report page's exported marks
(`jaxnet.evaluation.report_page`) are files of this format, or, when the person gave a name, an
object {"annotator": NAME, "labels": [the same list]} that this reader also accepts.

`RealMetric` follows the evaluator's metric protocol with one extra argument: its
`sums(scores, labels, mask, index)` takes `index` int32 [B], each row's position in the split,
and looks the row's labels up on the device in a padded [N, K] int32 table (-1 = no label; K = the
longest list), built once in the constructor.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError


def check_label_lists(obj, num_examples: int | None, num_classes: int,
                      source: str = "labels file") -> list[list[int]]:
    """Validate a decoded ReaL-format object; one-line JaxnetError on the first problem."""
    if not isinstance(obj, list):
        raise JaxnetError(f"{source}: expected a JSON list of label lists, got "
                          f"{type(obj).__name__}")
    if num_examples is not None and len(obj) != num_examples:
        raise JaxnetError(f"{source}: {len(obj)} label lists, but the split has {num_examples} "
                          f"examples (one list per example, in split order)")
    for i, entry in enumerate(obj):
        if not isinstance(entry, list):
            raise JaxnetError(f"{source}: entry {i} is {json.dumps(entry)[:40]}, not a list of "
                              f"labels")
        for label in entry:
            if isinstance(label, bool) or not isinstance(label, int):
                raise JaxnetError(f"{source}: entry {i} has label {json.dumps(label)[:40]}, "
                                  f"not an integer")
            if not 0 <= label < num_classes:
                raise JaxnetError(f"{source}: entry {i} has label {label}, outside "
                                  f"[0, {num_classes})")
    return [list(dict.fromkeys(entry)) for entry in obj]


def load_label_lists(path, num_examples: int | None, num_classes: int) -> list[list[int]]:
    """Read and validate a ReaL-format file (duplicates within a list are dropped)."""
    return load_named_label_lists(path, num_examples, num_classes)[0]


def load_named_label_lists(path, num_examples: int | None, num_classes: int):
    """(label lists, metadata) of a ReaL-format file (metadata {}) or of a named export
    {"annotator": NAME, "labels": [...], "reviewed": [example indices the person saw], ...}
    (metadata: the object without its labels; `reviewed` checked to be indices of examples)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise JaxnetError(f"cannot read labels file {path} ({e.strerror})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise JaxnetError(f"labels file {path} is not JSON ({e.msg}, line {e.lineno})") from None
    meta = {}
    if isinstance(obj, dict) and "labels" in obj:  # a named export: {"annotator": ..., "labels": [...]}
        meta = {k: v for k, v in obj.items() if k != "labels"}
        obj = obj["labels"]
    lists = check_label_lists(obj, num_examples, num_classes, source=f"labels file {path}")
    reviewed = meta.get("reviewed")
    if reviewed is not None and not (isinstance(reviewed, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(lists)
            for i in reviewed)):
        raise JaxnetError(f"labels file {path}: 'reviewed' must list example indices in "
                          f"[0, {len(lists)})")
    return lists, meta


def label_table(label_lists: Sequence[Sequence[int]]) -> np.ndarray:
    """[N, K] int32, row i = example i's labels padded with -1 (K >= 1)."""
    width = max([len(x) for x in label_lists] + [1])
    table = np.full((len(label_lists), width), -1, np.int32)
    for i, labels in enumerate(label_lists):
        table[i, :len(labels)] = labels
    return table


class RealMetric:
    """ReaL top-1 accuracy against a set of acceptable labels per example.

    label_lists: one list per example of the split, in split order (`load_label_lists`).
    sums(scores, labels, mask, index): `labels` is unused (kept for the protocol); `index` [B]
    int32 = the rows' positions in the split. finalize -> {"real_top1_acc": hits / counted or
    None, "real_num_examples": examples with a non-empty list}.
    """

    uses_index = True  # the evaluator passes each row's position in the split to sums

    def __init__(self, label_lists: Sequence[Sequence[int]]):
        self.table = label_table(label_lists)

    @classmethod
    def from_file(cls, path, num_examples: int, num_classes: int) -> RealMetric:
        return cls(load_label_lists(path, num_examples, num_classes))

    def sums(self, scores, labels, mask, index) -> dict:
        del labels
        table = jnp.asarray(self.table)
        rows = table[jnp.clip(index, 0, table.shape[0] - 1)]
        counted = (mask > 0) & (rows[:, 0] >= 0)
        top1 = jnp.argmax(scores, axis=-1).astype(jnp.int32)
        hit = jnp.any(rows == top1[:, None], axis=-1) & counted
        return {"real_hits": hit.sum(dtype=jnp.int32), "real_count": counted.sum(dtype=jnp.int32)}

    def finalize(self, totals: Mapping) -> dict:
        count = int(totals["real_count"])
        return {"real_top1_acc": float(totals["real_hits"]) / count if count else None,
                "real_num_examples": count}
