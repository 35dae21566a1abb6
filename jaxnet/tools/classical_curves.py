"""`python -m jaxnet classical_curves [--out DIR] [--quick]`: the 2011 lessons as curves (see jaxnet.experiments.classical_curves)."""
import argparse

from jaxnet.experiments import classical_curves
from jaxnet.experiments.classical_curves import run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet classical_curves",
                                     description=classical_curves.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="output folder (default workdirs/curves, or"
                        " workdirs/curves_quick with --quick)")
    parser.add_argument("--quick", action="store_true", help="smaller sweeps in a few minutes")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--dim-train", type=int, default=5000, help="train images of the dimension sweeps")
    parser.add_argument("--test", type=int, default=5000, help="test images of every point (stratified)")
    args = parser.parse_args(argv)
    out = args.out or ("workdirs/curves_quick" if args.quick else "workdirs/curves")
    run(out, quick=args.quick, data_dir=args.data_dir, dim_train=args.dim_train, test=args.test,
        log=lambda s: print(s, flush=True))
    return 0
