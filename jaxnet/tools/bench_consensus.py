"""Time and peak memory of the consensus methods at ImageNet scale: python -m jaxnet bench_consensus.

    python -m jaxnet bench_consensus [--examples=50000] [--annotators=20] [--classes=1000]
        [--per_example=5] [--seed=0] [--methods=majority,dawid_skene]

Simulates sparse annotations (each example labelled by `per_example` annotators drawn at random;
annotator a right with probability from 0.95 down to 0.5, otherwise a uniformly random class),
then times the majority vote and Dawid-Skene (jaxnet.evaluation.consensus) and prints the wall
time, EM iterations, label accuracy against the simulated truth and the process's peak resident
memory (ru_maxrss) before and after each (a peak is the process's so far: run one method per
process, --methods=dawid_skene, to see its own).
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from jaxnet.evaluation import consensus as cons
from jaxnet.experiments.hardware import cpu_model


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sparse_annotations(examples: int, annotators: int, classes: int, per_example: int, seed: int):
    """(Annotations, truth, accuracies): uniform-error annotators, `per_example` per example."""
    rng = np.random.default_rng(seed)
    accuracies = np.linspace(0.95, 0.5, annotators)
    truth = rng.integers(0, classes, examples)
    who = np.argsort(rng.random((examples, annotators)), axis=1)[:, :per_example]
    example = np.repeat(np.arange(examples), who.shape[1])
    annotator = who.reshape(-1)
    right = rng.random(len(example)) < accuracies[annotator]
    label = np.where(right, truth[example], rng.integers(0, classes, len(example)))
    ann = cons.Annotations(example.astype(np.int32), annotator.astype(np.int32),
                           label.astype(np.int32), np.ones(len(example), np.float32),
                           examples, annotators, classes)
    return ann, truth, accuracies


def main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet bench_consensus",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--per_example", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(cons.METHODS))
    args = parser.parse_args(argv)
    ann, truth, accuracies = sparse_annotations(args.examples, args.annotators, args.classes,
                                                min(args.per_example, args.annotators), args.seed)
    print(f"{args.examples:,} examples x {args.annotators} annotators x {args.classes:,} classes, "
          f"{len(ann.label):,} annotations ({cpu_model()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    print(f"peak RSS before: {peak_rss_mb():,.0f} MB")
    start = time.time()
    kappa = cons.fleiss_kappa(ann)
    print(f"fleiss_kappa: {kappa:.4f} ({time.time() - start:.2f} s)")
    for method in args.methods.split(","):
        start = time.time()
        result = cons.consensus(ann, method)
        seconds = time.time() - start
        err = np.abs(result.accuracy - accuracies).max()
        iterations = f"{result.iterations} EM iterations, " if result.iterations else ""
        print(f"{method}: {seconds:.1f} s (compilation included), {iterations}"
              f"label accuracy {100 * cons.label_accuracy(result.labels, truth):.2f}%,"
              f" {result.ties} ties, max |estimated - true annotator accuracy| {err:.3f}, "
              f"peak RSS {peak_rss_mb():,.0f} MB")
    return 0
