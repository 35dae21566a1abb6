"""python -m jaxnet weights import|export|verify|manifests

  import --model=resnet50 [--format=torchvision|timm] FILE.pth|FILE.safetensors --out=VARS.msgpack
         [--drop_aux]        torchvision state dict -> jaxnet variables (flax msgpack)
  import --model=resnet50 FILE --workdir=DIR [--num_classes=N] [--[no]transform_input]
                             ... -> a jaxnet workdir (config.json: ImageNet data settings + the
                             model; checkpoint step 0) that eval.py evaluates like a trained one:
                             python eval.py --config=configs/from_workdir.py:DIR --workdir=DIR
  export --model=resnet50 VARS.msgpack --out=FILE.pth|FILE.safetensors
  export --workdir=DIR --out=FILE.pth|FILE.safetensors
                             jaxnet variables (a file, or a workdir's latest checkpoint) ->
                             torchvision state dict
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
    parser = argparse.ArgumentParser(prog="python -m jaxnet weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="torchvision state dict -> jaxnet variables")
    imp.add_argument("file")
    imp.add_argument("--model", required=True)
    imp.add_argument("--format", default="torchvision")
    imp.add_argument("--out", help="variables file (default: FILE with suffix .msgpack)")
    imp.add_argument("--workdir", help="write a jaxnet workdir instead of a variables file")
    imp.add_argument("--num_classes", type=int, help="--workdir: the classes the file must have")
    imp.add_argument("--transform_input", action=argparse.BooleanOptionalAction, default=None,
                     help="googlenet_bn: torchvision's transform_input (default: on, as its"
                          " pretrained weights need)")
    imp.add_argument("--drop_aux", action="store_true", help="googlenet_bn: skip aux1.*/aux2.*")
    exp = sub.add_parser("export", help="jaxnet variables -> torchvision state dict")
    exp.add_argument("file", nargs="?", help="a variables file (or use --workdir)")
    exp.add_argument("--model", help="the variables file's model (a workdir's is in its config)")
    exp.add_argument("--workdir", help="export the latest checkpoint of this workdir")
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

    if args.command == "import" and args.workdir:
        return _import_workdir(args)
    if args.command == "export" and args.workdir:
        return _export_workdir(args)
    if args.command == "export" and not (args.file and args.model):
        raise JaxnetError("export needs FILE and --model, or --workdir")
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


def workdir_config(model_name: str, variables, transform_input=None):
    """The config.json of an imported network: ImageNet data settings (jaxnet.config.
    imagenet_config) with the model and the classes of its classifier; googlenet_bn with
    torchvision's transform_input (on unless asked otherwise) and aux heads only if imported."""
    from jaxnet.presets import imagenet_config
    from jaxnet.weights.torchvision import variables_num_classes

    config = imagenet_config()
    config.model.name = model_name
    config.num_classes = variables_num_classes(variables["params"], model_name)
    if model_name == "googlenet_bn":
        config.model.transform_input = True if transform_input is None else transform_input
        config.model.aux_logits = "aux1" in variables["params"]
    elif transform_input:
        raise JaxnetError(f"--transform_input is a googlenet_bn option, not {model_name}'s")
    return config


def _import_workdir(args) -> int:
    from jaxnet import weights
    from jaxnet.transfer.source import write_workdir

    if args.out:
        raise JaxnetError("give --out (a variables file) or --workdir, not both")
    variables = weights.import_file(args.file, args.model, args.format, drop_aux=args.drop_aux)
    config = workdir_config(args.model, variables, args.transform_input)
    if args.num_classes is not None and args.num_classes != config.num_classes:
        raise JaxnetError(f"{args.file} has a {config.num_classes}-class classifier, not"
                          f" --num_classes={args.num_classes}")
    write_workdir(args.workdir, config, variables,
                  meta={"imported": {"file": str(args.file), "format": args.format}})
    print(f"imported {args.file} -> workdir {args.workdir} ({args.model}, {config.num_classes}"
          f" classes, {_count(variables):,} params, checkpoint step 0); evaluate it with: python"
          f" eval.py --config=configs/from_workdir.py:{args.workdir} --workdir={args.workdir}")
    return 0


def _export_workdir(args) -> int:
    from jaxnet import weights
    from jaxnet.loop.workdir import load_config
    from jaxnet.training.state import eval_variables
    from jaxnet.transfer.source import read_workdir_variables
    from jaxnet.weights.torchvision import check_name

    if not args.out:
        raise JaxnetError("export --workdir needs --out=FILE.pth|FILE.safetensors")
    name = load_config(args.workdir).model.name  # before reading any checkpoint
    if args.model and args.model != name:
        raise JaxnetError(f"{args.workdir} holds a {name}, not --model={args.model}")
    check_name(name)
    if name not in weights.TORCHVISION_NAMES:  # said as such, before any checkpoint is read
        raise JaxnetError(f"{name} has no torchvision layout (torchvision has no {name}); a"
                          f" workdir exports for {', '.join(weights.TORCHVISION_NAMES)}")
    config, variables, step = read_workdir_variables(args.workdir)
    extra = sorted(set(config.model.keys()) - {"name", "transform_input", "aux_logits",
                                               "dropout_rate", "aux_dropout_rate"})
    if extra:
        raise JaxnetError(f"{args.workdir}'s {name} has model options {', '.join(extra)}: not"
                          f" torchvision's {weights.TORCHVISION_NAMES[name]} layout")
    state_dict = weights.export_file(eval_variables(variables), name, args.out)
    print(f"exported {args.workdir} step {step} -> {args.out} ({len(state_dict)} tensors,"
          f" torchvision {weights.TORCHVISION_NAMES[name]} layout)")
    return 0
