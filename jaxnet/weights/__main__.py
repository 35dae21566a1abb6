"""python -m jaxnet.weights import|export|verify|manifests

  import --model=resnet50 [--format=torchvision|timm] FILE.pth|FILE.safetensors --out=VARS.msgpack
         [--drop_aux]        torchvision state dict -> jaxnet variables (flax msgpack)
  export --model=resnet50 VARS.msgpack --out=FILE.pth|FILE.safetensors
                             jaxnet variables -> torchvision state dict
  verify [--models=resnet18,...] [--batch=2] [--size=224]
                             logits parity with torchvision (needs torch): one line per model
  manifests [--models=...]   re-record jaxnet/weights/manifests/*.json (needs torch)

Errors in the user's input (bad file, unknown key, wrong shape) print one line and exit 1.
"""
import argparse
import sys

from jaxnet import JaxnetError


def _count(variables) -> int:
    import jax
    import numpy as np

    return sum(int(np.size(x)) for x in jax.tree.leaves(variables.get("params", {})))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet.weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="torchvision state dict -> jaxnet variables")
    imp.add_argument("file")
    imp.add_argument("--model", required=True)
    imp.add_argument("--format", default="torchvision")
    imp.add_argument("--out", help="variables file (default: FILE with suffix .msgpack)")
    imp.add_argument("--drop_aux", action="store_true", help="googlenet_bn: skip aux1.*/aux2.*")
    exp = sub.add_parser("export", help="jaxnet variables -> torchvision state dict")
    exp.add_argument("file")
    exp.add_argument("--model", required=True)
    exp.add_argument("--out", required=True, help=".pth (needs torch) or .safetensors")
    ver = sub.add_parser("verify", help="logits parity with torchvision (needs torch)")
    ver.add_argument("--models", default="")
    ver.add_argument("--batch", type=int, default=2)
    ver.add_argument("--size", type=int, default=224)
    man = sub.add_parser("manifests", help="re-record the manifests (needs torch)")
    man.add_argument("--models", default="")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1


def _run(args) -> int:
    from pathlib import Path

    from jaxnet import weights

    if args.command == "import":
        variables = weights.import_file(args.file, args.model, args.format, drop_aux=args.drop_aux)
        out = Path(args.out) if args.out else Path(args.file).with_suffix(".msgpack")
        weights.save_variables(variables, out)
        from jaxnet.weights.torchvision import variables_num_classes

        classes = variables_num_classes(variables["params"], args.model)
        print(f"imported {args.file} -> {out} ({args.model}, {classes} classes,"
              f" {_count(variables):,} params)")
    elif args.command == "export":
        variables = weights.load_variables(args.file)
        state_dict = weights.export_file(variables, args.model, args.out)
        print(f"exported {args.file} -> {args.out} ({len(state_dict)} tensors, torchvision"
              f" {weights.TORCHVISION_NAMES[args.model]} layout)")
    elif args.command == "verify":
        from jaxnet.weights.verify import CASES, verify

        labels = [m for m in args.models.split(",") if m] or list(CASES)
        results = verify(labels, batch=args.batch, size=args.size)
        return 0 if all(r["ok"] for r in results.values()) else 1
    elif args.command == "manifests":
        from jaxnet.weights.manifests import SOURCES, record

        names = [m for m in args.models.split(",") if m] or list(SOURCES)
        for name, path in record(names=names).items():
            print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
