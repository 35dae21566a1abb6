"""`python -m jaxnet task_study --out=DIR [--quick]`: localization and segmentation from scratch,
frozen or fine-tuned, against scene labels (see jaxnet.experiments.task_study)."""
import argparse
import sys

from jaxnet.experiments import task_study
from jaxnet.tools.cli import use_cpu_cores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet task_study", description=task_study.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory (points are cached there)")
    parser.add_argument("--quick", action="store_true",
                        help="under 30 minutes: fewer steps, fewer test scenes")
    args = parser.parse_args(argv)
    from absl import logging

    from jaxnet import JaxnetError

    from jaxnet.distributed import compilation_cache_dir, enable_compilation_cache

    logging.set_verbosity(logging.WARNING)
    enable_compilation_cache(compilation_cache_dir())  # a re-run compiles nothing it compiled
    use_cpu_cores(2)  # every batch size of the study is even
    try:
        task_study.study(args.out, args.quick, log=lambda m: print(m, flush=True))
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0
