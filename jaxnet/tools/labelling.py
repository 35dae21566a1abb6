"""Labels by many people, simulated: python -m jaxnet labelling --out=DIR [--quick].

The report's `labelling` section alone (jaxnet.experiments.labelling): simulated annotators
on Fashion-MNIST's test split, their consensus (majority vote, Dawid-Skene) against the number
of annotators per image, the cost of 99% label accuracy, candidate cleaning from a 10%-precision
pool, and the network re-scored against the consensus. Writes DIR/index.html, DIR/REPORT.md, the
figures and DIR/labelling/ (labelling.json, the consensus label files, the re-scored evaluations).
The network it needs is trained once into DIR/runs/ (shared with `python -m jaxnet report`).
"""
from __future__ import annotations

import argparse

from jaxnet.tools import report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet labelling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="report directory (runs are cached in it)")
    parser.add_argument("--quick", action="store_true", help="2,000 images, a 10-epoch network")
    parser.add_argument("--data_dir", default="", help="where Fashion-MNIST is")
    parser.add_argument("--cpu_devices", type=int, default=-1)
    args = parser.parse_args(argv)
    forward = [f"--out={args.out}", "--only=labelling", f"--cpu_devices={args.cpu_devices}"]
    forward += ["--quick"] * args.quick + ([f"--data_dir={args.data_dir}"] if args.data_dir else [])
    return report.main(forward)
