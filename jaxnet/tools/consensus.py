"""Merge several annotators' label files into one: python -m jaxnet consensus.

    python -m jaxnet consensus A.json B.json ... --num_classes=K
        [--method=majority|dawid_skene] --out=OUT.json [--num_examples=N]

Each input is one annotator's file in the ReaL format (one list of label indices per example, in
split order; [] = not annotated), or the report page's named export ({"annotator": NAME,
"labels": [...], "reviewed": [the examples shown on the page]}): there only the reviewed examples
are that person's annotations (an unmarked one is a vote for its current labels), and examples
nobody reviewed keep the labels the files list for them (counted as `carried_over`).
Writes OUT.json, the consensus in the ReaL format (eval.py --labels_file=OUT.json re-scores with
it; a tie keeps every tied label, an example nobody annotated gets []), and
OUT_agreement.json: the method, Fleiss' kappa, per annotator (input order) the file, name,
examples annotated and estimated accuracy (with Dawid-Skene also the confusion matrix when K <=
256), the class priors, the counts of ties and unannotated examples, and per example the posterior
confidence of its consensus label (null where nobody annotated). Both files are written atomically.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from jaxnet import JaxnetError
from jaxnet.evaluation import consensus as cons
from jaxnet.evaluation.multilabel import load_named_label_lists
from jaxnet.files import write_text


def agreement_path(out: str) -> str:
    """OUT.json -> OUT_agreement.json."""
    if not out.endswith(".json"):
        raise JaxnetError(f"--out={out}: the consensus file name must end in .json")
    return out[: -len(".json")] + "_agreement.json"


def write_json(path, obj) -> None:
    """Write `obj` as JSON atomically (jaxnet.files: a temporary file renamed over `path`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(obj, allow_nan=False) + "\n")


def reviewed_only(lists, reviewed):
    """An annotator's lists with [] (not annotated) outside the examples they reviewed (all of
    them when `reviewed` is None: a plain ReaL file)."""
    if reviewed is None:
        return lists
    seen = set(reviewed)
    return [labels if i in seen else [] for i, labels in enumerate(lists)]


def carry_over(result: cons.Consensus, lists, num_classes: int) -> int:
    """Examples that nobody reviewed but the files list (a page's export lists every example:
    the ones not on the page keep the labels it started from) keep the majority of those lists
    in `result.labels` (confidence stays None: not a judgement); returns how many."""
    missing = [i for i, labels in enumerate(result.labels) if not labels]
    if not missing:
        return 0
    full = cons.majority_vote(cons.annotations_from_lists(
        [[x[i] for i in missing] for x in lists], num_classes))
    carried = 0
    for i, labels in zip(missing, full.labels):
        if labels:
            result.labels[i] = labels
            carried += 1
    result.unannotated -= carried
    return carried


def _round(x, digits=6):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)


def agreement_record(result: cons.Consensus, files, names, kappa, num_classes: int) -> dict:
    """The OUT_agreement.json object."""
    annotators = []
    for a, (file, name) in enumerate(zip(files, names)):
        entry = {"file": str(file), "name": name,
                 "examples_annotated": int(result.examples_annotated[a]),
                 "estimated_accuracy": _round(result.accuracy[a])}
        if result.confusion is not None:
            entry["confusion"] = [[_round(v, 5) for v in row] for row in result.confusion[a]]
        annotators.append(entry)
    n = len(result.labels)
    return {
        "method": result.method, "num_examples": n, "num_classes": num_classes,
        "fleiss_kappa": _round(kappa), "annotators": annotators,
        "examples_annotated": n - result.unannotated, "unannotated": result.unannotated,
        "ties": result.ties, "iterations": result.iterations, "converged": result.converged,
        "log_likelihood": _round(result.log_likelihood),
        "class_priors": [_round(p) for p in result.priors],
        "confidence": [_round(c, 5) for c in result.confidence],
    }


def run(files, num_classes: int, method: str, out: str, num_examples: int | None = None,
        max_iterations: int = 100, log=print) -> dict:
    """Read, merge, write; return the agreement record."""
    if num_classes < 1:
        raise JaxnetError(f"--num_classes={num_classes}: must be at least 1")
    if method not in cons.METHODS:
        raise JaxnetError(f"--method={method}: one of {', '.join(cons.METHODS)}")
    agreement = agreement_path(out)
    lists, metas = [], []
    for path in files:
        labels, meta = load_named_label_lists(path, num_examples, num_classes)
        if lists and len(labels) != len(lists[0]):
            raise JaxnetError(f"labels file {path} has {len(labels)} label lists but {files[0]} "
                              f"has {len(lists[0])} (one list per example, in split order)")
        lists.append(labels)
        metas.append(meta)
    names = [str(m["annotator"]) if m.get("annotator") not in (None, "") else None for m in metas]
    reviewed = [reviewed_only(x, m.get("reviewed")) for x, m in zip(lists, metas)]
    ann = cons.annotations_from_lists(reviewed, num_classes)
    log(f"{len(files)} annotators, {ann.num_examples:,} examples, {len(ann.label):,} labels")
    start = time.time()
    kappa = cons.fleiss_kappa(ann)
    callback = lambda it, ll: log(f"  EM iteration {it}: log-likelihood {ll:.6f}")
    result = cons.consensus(ann, method, **({"max_iterations": max_iterations,
                                             "callback": callback}
                                            if method == "dawid_skene" else {}))
    carried = carry_over(result, lists, num_classes)
    record = agreement_record(result, files, names, kappa, num_classes)
    record["carried_over"] = carried
    write_json(out, result.labels)
    write_json(agreement, record)
    accs = ", ".join(f"{a['estimated_accuracy']:.3f}" for a in record["annotators"])
    log(f"{method}: Fleiss' kappa {_round(kappa, 4)}, estimated accuracies [{accs}], "
        f"{result.ties} ties, {result.unannotated} examples not annotated, {carried} not reviewed "
        f"(their labels carried over) "
        f"({time.time() - start:.1f} s)")
    log(f"wrote {out} and {agreement}")
    return record


def main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaxnet consensus",
        description="Merge annotators' ReaL-format label files (majority vote or Dawid-Skene) "
                    "and measure their agreement.")
    parser.add_argument("files", nargs="+", help="one labels file per annotator")
    parser.add_argument("--num_classes", type=int, required=True)
    parser.add_argument("--method", default="dawid_skene", choices=cons.METHODS)
    parser.add_argument("--out", required=True, help="the consensus file (OUT.json)")
    parser.add_argument("--num_examples", type=int, default=None,
                        help="the split's size, checked against every file")
    parser.add_argument("--max_iterations", type=int, default=100, help="Dawid-Skene's EM cap")
    args = parser.parse_args(argv)
    try:
        run(args.files, args.num_classes, args.method, args.out, args.num_examples,
            args.max_iterations)
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
