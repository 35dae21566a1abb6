"""`python -m jaxnet model_parallel`: AlexNet's two columns (see jaxnet.experiments.model_parallel)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from jaxnet.experiments import model_parallel
from jaxnet.experiments.model_parallel import measure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet model_parallel",
                                     description=model_parallel.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image_size", type=int, default=227)
    parser.add_argument("--num_classes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--fc_features", type=int, default=4096)
    parser.add_argument("--json_out", default="")
    args = parser.parse_args(argv)
    import jax

    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        jax.config.update("jax_num_cpu_devices", 8)  # only the CPU backend heeds it
    from jaxnet.experiments.hardware import hardware

    result = measure(args.image_size, args.num_classes, args.batch, args.fc_features)
    result["hardware"] = hardware()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
    else:
        json.dump(result, sys.stdout, indent=2)
        print()
    return 0
