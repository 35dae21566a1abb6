"""`python -m jaxnet transfer_study --out=DIR [--quick]`: the transfer study (see jaxnet.experiments.transfer_study)."""
import argparse
import sys

from jaxnet.experiments import transfer_study
from jaxnet.experiments.transfer_study import study


def _cpu_devices() -> None:
    """Two CPU devices on a 2-core machine (as train.py's --cpu_devices=-1): every batch size of
    the study is even. Skipped when XLA_FLAGS already sets a count."""
    import os

    import jax

    from jaxnet.mesh import usable_cores

    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        jax.config.update("jax_num_cpu_devices", 2 if usable_cores() >= 2 else 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet transfer_study", description=transfer_study.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory (points are cached there)")
    parser.add_argument("--quick", action="store_true", help="a few minutes: fewer, smaller points")
    args = parser.parse_args(argv)
    from absl import logging

    from jaxnet import JaxnetError

    logging.set_verbosity(logging.WARNING)
    _cpu_devices()
    try:
        study(args.out, args.quick, log=lambda m: print(m, flush=True))
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0
