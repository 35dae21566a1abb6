"""The seed's Table 3 for your models: every (number of models x test protocol) cell, by one command.

    python -m jaxnet.evaluation.grid --workdirs=A,B,C --protocols=center,ten_crop,googlenet_144 \
        [--split=test] [--out=DIR]

Row k averages the softmax of the first k workdirs (each restored with its own config.json at
its latest checkpoint) under each protocol. Printed and written (DIR/grid_<split>.md and .json;
DIR defaults to A/eval/) in the layout of GoogLeNet's Table 3: models, crops, cost (forward
passes per image relative to one model x one crop), top-5 error, its change against the first
cell; plus top-1 error and each cell's measured wall time beside its nominal cost.
"""
import json
import time
from pathlib import Path

from absl import app, flags

from jaxnet.cli import parse_flags, run_reporting_errors, start_jax

WORKDIRS = flags.DEFINE_list("workdirs", None, "Trained workdirs, in the order models join.")
PROTOCOLS = flags.DEFINE_list("protocols", ["center", "ten_crop", "googlenet_144"],
                              "Test protocols (columns of crops).")
SPLIT = flags.DEFINE_string("split", None, "Split (default: the first workdir's eval_split).")
OUT = flags.DEFINE_string("out", None, "Output directory (default: the first workdir's eval/).")


def grid(workdirs, protocols, split=None) -> list:
    """One row per (number of models, protocol): the eval records plus cost and wall time."""
    from jaxnet.loop.workdir import load_config
    from jaxnet.methods import evaluate

    config = load_config(workdirs[0])
    rows = []
    for k in range(1, len(workdirs) + 1):
        for protocol in protocols:
            start = time.time()
            record = evaluate(config, workdirs[0], split, protocol=protocol, ensemble=workdirs[1:k])
            rows.append({"models": k, "protocol": protocol, "crops": record["num_views"],
                         "cost": k * record["num_views"], "wall_seconds": time.time() - start,
                         **{key: record[key] for key in ("split", "num_examples", "top1_err",
                                                         "top5_err", "loss", "seconds")}})
    base = rows[0]
    for row in rows:
        row["top5_err_change"] = row["top5_err"] - base["top5_err"]
        row["relative_wall"] = row["seconds"] / base["seconds"]
    return rows


def markdown(rows) -> str:
    lines = ["| models | crops | protocol | cost | top-5 err | vs base | top-1 err | eval time | time vs base |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        change = "base" if r is rows[0] else f"{100 * r['top5_err_change']:+.2f}%"
        lines.append(f"| {r['models']} | {r['crops']} | {r['protocol']} | {r['cost']} |"
                     f" {100 * r['top5_err']:.2f}% | {change} | {100 * r['top1_err']:.2f}% |"
                     f" {r['seconds']:.1f} s | {r['relative_wall']:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not WORKDIRS.value:
        raise app.UsageError("--workdirs=A[,B,...] is required")
    from jaxnet.loop.workdir import load_config

    config = run_reporting_errors(lambda: load_config(WORKDIRS.value[0]))
    start_jax(config)
    rows = run_reporting_errors(lambda: grid(WORKDIRS.value, PROTOCOLS.value, SPLIT.value))
    out = Path(OUT.value or Path(WORKDIRS.value[0]) / "eval")
    split = rows[0]["split"]
    table = markdown(rows)
    print(table, end="")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"grid_{split}.md").write_text(
            f"`python -m jaxnet.evaluation.grid --workdirs={','.join(WORKDIRS.value)}"
            f" --protocols={','.join(PROTOCOLS.value)} --split={split}`\n\n" + table)
        (out / f"grid_{split}.json").write_text(json.dumps(rows, indent=2) + "\n")
    except OSError as e:
        raise SystemExit(f"error: cannot write the table to {out}: {e}") from None
    print(f"written to {out / f'grid_{split}.md'} and .json")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
