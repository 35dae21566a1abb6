"""`python -m jaxnet extract --workdir=DIR --layer=NAME --out=DIR`: features of one layer (see jaxnet.transfer.extract)."""
import math
import sys
from pathlib import Path

from jaxnet import JaxnetError
from jaxnet.tools.cli import use_cpu_cores
from jaxnet.transfer.extract import POOLS, check_layers, extract_split, feature_shapes


def main(argv=None) -> int:
    from absl import flags
    from ml_collections import config_flags

    from jaxnet.transfer.source import load_source

    fv = flags.FlagValues()
    config_flag = config_flags.DEFINE_config_file(
        "config", None, "Data to extract from (default: the workdir's config.json).", flag_values=fv)
    workdir = flags.DEFINE_string("workdir", None, "The network: a trained or imported workdir.",
                                  flag_values=fv)
    layer = flags.DEFINE_string("layer", None, "Layer name (--list_layers shows them).", flag_values=fv)
    split = flags.DEFINE_string("split", None, "Split (default: config.eval_split).", flag_values=fv)
    pool = flags.DEFINE_enum("pool", "avg", list(POOLS), "avg: [N, C]; none: [N, H, W, C].",
                             flag_values=fv)
    step = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=fv)
    batch = flags.DEFINE_integer("batch_size", None, "Global batch (default: config.eval_batch_size).",
                                 flag_values=fv)
    out = flags.DEFINE_string("out", None, "Output directory.", flag_values=fv)
    list_layers = flags.DEFINE_bool("list_layers", False, "Print the layer names and shapes.",
                                    flag_values=fv)
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help", "--helpfull") for a in args):
        print(f"{__doc__}\n\n{fv.get_help()}")
        return 0
    try:
        fv(["python -m jaxnet extract"] + args)
        if not workdir.value:
            raise JaxnetError("--workdir is required (a trained or imported workdir)")
        from jaxnet.loop.workdir import load_config

        config = config_flag.value if config_flag.value is not None else load_config(workdir.value)
        batch_size = batch.value or config.eval_batch_size
        use_cpu_cores(batch_size)
        source = load_source(workdir.value, step.value, config)
        if list_layers.value:
            for name, shape in feature_shapes(source, "none").items():  # spatial shapes
                print(f"{name:<14} {'x'.join(map(str, shape))}")
            return 0
        if not layer.value or not out.value:
            raise JaxnetError("--layer and --out are required (or --list_layers)")
        check_layers(source.model, [layer.value], pool.value)
        record = extract_split(source, config, layer.value, split.value or config.eval_split,
                               out.value, pool.value, batch_size=batch_size)
        size = math.prod(record["shape"]) * 4 / 2**20
        print(f"{record['examples']:,} x {'x'.join(map(str, record['shape'][1:]))} features of"
              f" {record['layer']} ({record['model']}, {workdir.value} step {record['step']}) ->"
              f" {Path(out.value) / record['features']} ({size:,.1f} MiB)")
        return 0
    except flags.Error as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr, flush=True)
        return 2
    except JaxnetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
