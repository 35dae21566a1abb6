"""`python -m jaxnet transfer_study --out=DIR [--quick]`: the transfer study (see jaxnet.experiments.transfer_study)."""
import argparse
import sys

from jaxnet.experiments import transfer_study
from jaxnet.experiments.transfer_study import study
from jaxnet.tools.cli import use_cpu_cores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet transfer_study", description=transfer_study.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory (points are cached there)")
    parser.add_argument("--quick", action="store_true", help="a few minutes: fewer, smaller points")
    args = parser.parse_args(argv)
    from absl import logging

    from jaxnet import JaxnetError

    logging.set_verbosity(logging.WARNING)
    use_cpu_cores(2)  # every batch size of the study is even
    try:
        study(args.out, args.quick, log=lambda m: print(m, flush=True))
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0
