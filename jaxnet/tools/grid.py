"""`python -m jaxnet grid --workdirs=A,B,C --protocols=...`: the seed's Table 3 for your models
(see jaxnet.experiments.protocol_grid)."""
import json
import time
from pathlib import Path

from absl import app, flags

from jaxnet.experiments.protocol_grid import grid, markdown
from jaxnet.tools.cli import run_reporting_errors, start_jax

WORKDIRS = flags.DEFINE_list("workdirs", None, "Trained workdirs, in the order models join.")
PROTOCOLS = flags.DEFINE_list("protocols", ["center", "ten_crop", "googlenet_144"],
                              "Test protocols (columns of crops).")
SPLIT = flags.DEFINE_string("split", None, "Split (default: the first workdir's eval_split).")
EXAMPLES = flags.DEFINE_integer("examples", 0, "Evaluate the first N examples of the split only"
                                " (0 = all); no eval files are written then.")
OUT = flags.DEFINE_string("out", None, "Output directory (default: the first workdir's eval/).")


def main(argv):
    del argv  # the program name only: jaxnet.tools.cli.parse_flags refused any other argument
    if not WORKDIRS.value:
        raise app.UsageError("--workdirs=A[,B,...] is required")
    from jaxnet.loop.workdir import load_config

    config = run_reporting_errors(lambda: load_config(WORKDIRS.value[0]))
    start_jax(config)
    start = time.time()
    rows = run_reporting_errors(lambda: grid(WORKDIRS.value, PROTOCOLS.value, SPLIT.value,
                                             EXAMPLES.value))
    took = time.time() - start
    out = Path(OUT.value or Path(WORKDIRS.value[0]) / "eval")
    split = rows[0]["split"]
    table = markdown(rows)
    print(table, end="")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"grid_{split}.md").write_text(
            f"`python -m jaxnet grid --workdirs={','.join(WORKDIRS.value)}"
            f" --protocols={','.join(PROTOCOLS.value)} --split={split}"
            + (f" --examples={EXAMPLES.value}" if EXAMPLES.value else "")
            + f"`: {rows[0]['num_examples']:,} examples, {took:.0f} s in all\n\n" + table)
        (out / f"grid_{split}.json").write_text(json.dumps(rows, indent=2) + "\n")
    except OSError as e:
        raise SystemExit(f"error: cannot write the table to {out}: {e}") from None
    print(f"{took:.0f} s in all; written to {out / f'grid_{split}.md'} and .json")

