"""What an evaluation writes besides its JSON, next to it: per-class results, the figures (the
seed's Figure 4, a reliability diagram, the worst classes) and the report page with its
mistake browser (jaxnet/evaluation/report_page.py); and the metrics beyond top-k that feed them.

Class trees: Fashion-MNIST's ships with jaxnet (jaxnet/evaluation/trees/fashion_mnist.json);
ImageNet's comes from WordNet 3.0 (Debian `wordnet-base`); any dataset can bring its own with
`config.class_tree` (a JSON tree, see jaxnet.evaluation.hierarchy.ClassTree).
"""
import json
from pathlib import Path

import numpy as np

from jaxnet import files as atomic
from jaxnet.evaluation import figures
from jaxnet.evaluation.calibration import CalibrationMetric
from jaxnet.evaluation.hierarchy import WORDNET_NOUNS, ClassTree, HierarchyMetric
from jaxnet.evaluation.multilabel import RealMetric, load_label_lists
from jaxnet.evaluation.per_class import PerClassMetric
from jaxnet.evaluation.report_page import MistakeCollector, write_report_page
from jaxnet.evaluation.task_figures import TaskCollector

# to the per-class file, not the JSON
PER_CLASS_KEYS = ("classes", "most_confused", "confusion", "per_class_iou")


def class_tree(config):
    """The dataset's class tree (config.class_tree, else a built-in one), or None."""
    if config.class_tree:
        return ClassTree.load(config.class_tree)
    if config.dataset in ("fashion_mnist", "fashion_mnist_scenes"):
        return ClassTree.builtin("fashion_mnist")
    if config.dataset == "imagenet2012" and config.num_classes == 1000 and Path(WORDNET_NOUNS).exists():
        from jaxnet.data.imagenet import imagenet_classes

        return ClassTree.from_wordnet(imagenet_classes())
    return None


SATURATED = 0.99  # every class's top-5 hit rate at or above this: its histogram says nothing


def histogram_rates(top1, top5) -> tuple:
    """(k, per-class rates) the hit-rate histogram shows: top-5 (the seed's Figure 4), or top-1
    when every class's top-5 is saturated."""
    seen = [r for r in top5 if r is not None]
    return (1, top1) if seen and min(seen) >= SATURATED else (5, top5)


class Report:
    """The extra metrics of one evaluation and, afterwards, the files they make."""

    def __init__(self, config, num_examples: int, labels_file=None, mistakes: int = 60):
        self.config, self.tree = config, class_tree(config)
        if self.tree is not None and len(self.tree.classes) != config.num_classes:
            self.tree = None  # a subset of the classes: no tree for it
        self.names = (self.tree.class_names() if self.tree is not None
                      else [str(i) for i in range(config.num_classes)])
        self.metrics = [PerClassMetric(config.num_classes, self.names), CalibrationMetric(15)]
        if self.tree is not None:
            self.metrics.append(HierarchyMetric.from_tree(self.tree))
        self.label_lists = None  # the labels file's lists: the page starts from them
        if labels_file:
            self.label_lists = load_label_lists(labels_file, num_examples, config.num_classes)
            self.metrics.append(RealMetric(self.label_lists))
        self.mistakes = MistakeCollector(mistakes)
        self.labels = np.zeros(num_examples, np.int64)  # every example's label, in split order
        self.task = (TaskCollector(num_examples, config.method)
                     if config.method in ("localize", "segment") else None)  # boxes, masks

    def update(self, index, labels, probs, mask) -> None:
        """The evaluator's per-batch rows (host arrays): the mistakes and the labels."""
        self.mistakes.update(index, labels, probs, mask)
        real = mask > 0
        self.labels[index[real]] = labels[real]
        if self.task is not None:
            self.task.update(index, labels, probs, mask)

    def update_outputs(self, index, mask, outputs) -> None:
        """A localization / segmentation model's per-batch boxes and masks (host arrays)."""
        if self.task is not None:
            self.task.update_outputs(index, mask, outputs)

    def write(self, record: dict, json_path, source) -> dict:
        """Write the per-class file, the figures and the page beside `json_path`; return
        {what: path}."""
        json_path = Path(json_path)
        stem = json_path.with_suffix("")
        per_class = {k: record[k] for k in PER_CLASS_KEYS if k in record}
        for entry, name in zip(per_class.get("per_class_iou", [])[1:], self.names):
            entry["class"] = name  # masks: background first, then the classes by name
        files = {"per_class": f"{stem}_per_class.json"}
        atomic.write_text(files["per_class"], json.dumps(per_class, indent=1) + "\n")
        top1 = [c["top1_acc"] for c in per_class["classes"]]
        top5 = [c["top5_acc"] for c in per_class["classes"]]
        k, rates = histogram_rates(top1, top5)
        figs = {
            (f"Per-class top-{k} hit rate" + (" (the seed's Figure 4)" if k == 5 else
                                              " (top-5 is saturated)")): figures.top5_histogram(
                rates, f"{stem}_top5_hist.png", k=k),
            "Reliability diagram": figures.reliability_diagram(
                record["reliability"], f"{stem}_reliability.png", ece=record["ece"]),
            "Worst classes (top-1)": figures.worst_classes(  # the title says top-1: top-1 rates
                self.names, top1, f"{stem}_worst_classes.png", label="top-1",
                counts=[c["count"] for c in per_class["classes"]]),
        }
        files.update(zip(("top5_histogram", "reliability", "worst_classes"), figs.values()))
        if self.task is not None:  # boxes or masks over the most confident failures
            task_figs = self.task.figures(source, self.names, stem)
            figs.update(task_figs)
            files.update({f"{self.task.task}_failures": p for p in task_figs.values()})
        mistakes = self.mistakes.records()
        for m in mistakes:
            m["image"] = np.asarray(source[m["index"]]["image"])
        paths = ([self.tree.path_names(i) for i in range(len(self.names))]
                 if self.tree is not None else None)
        files["page"] = write_report_page(
            f"{stem}.html", title=f"{record['split']} at step {record['step']} ({record['protocol']})",
            metrics={k: v for k, v in record.items() if k not in PER_CLASS_KEYS},
            class_names=self.names, split_labels=(self.label_lists if self.label_lists is not None
                                                  else self.labels.tolist()), mistakes=mistakes,
            per_class=per_class, figures=figs, class_paths=paths)
        return files
