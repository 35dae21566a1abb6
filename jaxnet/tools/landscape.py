"""`python -m jaxnet landscape`: loss landscapes (see jaxnet.experiments.landscape)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

from jaxnet.experiments import landscape as library
from jaxnet.experiments.formatting import fmt
from jaxnet.experiments.landscape import draw, landscape, sharpness


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet landscape",
                                     description=library.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", action="append", required=True,
                        help="a trained network workdir (repeat for side-by-side panels)")
    parser.add_argument("--out", required=True, help="where the PNGs and landscapes.json go")
    parser.add_argument("--grid", type=int, default=51)
    parser.add_argument("--span", type=float, default=1.0)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--slice_points", type=int, default=101)
    args = parser.parse_args(argv)
    from jaxnet.config import validate_config
    from jaxnet.loop.workdir import load_config
    from jaxnet.mesh import create_mesh

    mesh, results = create_mesh(), {}
    for workdir in args.workdir:
        config = load_config(workdir)
        validate_config(config)
        name = Path(workdir).name
        print(f"{name}: {args.grid}x{args.grid} grid over {jax.device_count()} device(s) ...")
        results[name] = landscape(config, workdir, mesh, grid=args.grid, span=args.span,
                                  examples=args.examples, slice_points=args.slice_points)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "landscapes.json").write_text(json.dumps(results) + "\n")
    for path in draw(out, results):
        print(f"wrote {path}")
    print("sharpness (mean loss within radius span/2 over the centre):",
          {n: fmt(sharpness(r), ".2f") for n, r in results.items()})
    return 0
