"""`python -m jaxnet flops [NAME ...]`: parameters and FLOPs of the registered models (see jaxnet.models.flops)."""
import argparse
import sys

from jaxnet.models import list_models
from jaxnet.models.flops import model_costs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet flops", description=__doc__)
    parser.add_argument("names", nargs="*", help="registered models (default: all of them)")
    names = parser.parse_args(sys.argv[1:] if argv is None else argv).names
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; choose from {', '.join(list_models())}",
              file=sys.stderr)
        return 2
    print("| model | input | params | XLA GFLOPs | conv+fc GMACs |")
    print("|---|---|---|---|---|")
    for name in names or list_models():
        px, n_params, flops, mult_adds = model_costs(name)
        print(f"| {name} | {px} | {n_params:,} | {flops / 1e9:.2f} | {mult_adds / 1e9:.3f} |", flush=True)
