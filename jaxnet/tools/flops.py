"""`python -m jaxnet flops [NAME ...]`: parameters and FLOPs of the registered models (see jaxnet.models.flops)."""
import sys

from jaxnet.models import list_models
from jaxnet.models.flops import model_costs


def main(argv=None) -> int:
    names = sys.argv[1:] if argv is None else argv
    print("| model | input | params | XLA GFLOPs | conv+fc GMACs |")
    print("|---|---|---|---|---|")
    for name in names or list_models():
        px, n_params, flops, mult_adds = model_costs(name)
        print(f"| {name} | {px} | {n_params:,} | {flops / 1e9:.2f} | {mult_adds / 1e9:.3f} |", flush=True)
