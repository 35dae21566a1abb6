"""The seed's Table 3 for your models: every (number of models x test protocol) cell, by one command.

    python -m jaxnet grid --workdirs=A,B,C --protocols=center,ten_crop,googlenet_144 \
        [--split=test] [--examples=N] [--out=DIR]

Row k averages the softmax of the first k workdirs (each restored with its own config.json at
its latest checkpoint) under each protocol. Printed and written (DIR/grid_<split>.md and .json;
DIR defaults to A/eval/) in the layout of GoogLeNet's Table 3: models, crops, cost (forward
passes per image relative to one model x one crop), top-5 error, its change against the first
cell; plus top-1 error and each cell's measured time beside its nominal cost.

Each model is evaluated once per protocol (the shared evaluator, views averaged on the device);
the ensemble rows average those passes' softmax outputs on the host, as the evaluator does for an
ensemble (mean over models of the mean over views), so a cell's time is the sum of its models'
measured passes (compilation included, as in eval.py's `seconds`) and the table costs one pass
per (model, protocol), not one per cell. Every cell's eval file is written as `eval.py` writes it
(`WORKDIR/eval/<split>_<protocol>[_ensemble<K>_<key>]_step<N>.json`, the key naming its members), except with `--examples=N` (the
first N examples of the split only: a quicker, smaller table; then only the grid files). The
host keeps every model's softmax ([examples, classes] float32 per model: 200 MB for ImageNet's
validation set). On several processes every cell is evaluated on the device instead.
"""
import time

import numpy as np


class SoftmaxCollector:
    """Every example's softmax (and label) from the evaluator's per-batch rows, in split order."""

    def __init__(self, num_examples: int, num_classes: int):
        self.probs = np.zeros((num_examples, num_classes), np.float32)
        self.labels = np.full(num_examples, -1, np.int64)

    def update(self, index, labels, probs, mask) -> None:
        real = np.asarray(mask) > 0
        index = np.asarray(index)[real]
        self.probs[index] = np.asarray(probs)[real]
        self.labels[index] = np.asarray(labels)[real]


def ensemble_metrics(probs, labels) -> dict:
    """The contract's metrics of averaged softmax outputs `probs` [N, C] (float64 on the host):
    loss = NLL of the average, top-k with ties broken by the lower class index (as top_k)."""
    probs = np.asarray(probs, np.float64)
    n, c = probs.shape
    truth = probs[np.arange(n), labels]
    ahead = (probs > truth[:, None]) | ((probs == truth[:, None])
                                        & (np.arange(c) < labels[:, None]))
    rank = ahead.sum(1)
    top1, top5 = float(np.mean(rank < 1)), float(np.mean(rank < min(5, c)))
    loss = float(-np.mean(np.log(np.maximum(truth, np.finfo(np.float64).tiny))))
    return {"loss": loss, "top1_acc": top1, "top5_acc": top5, "top1_err": 1.0 - top1,
            "top5_err": 1.0 - top5, "num_examples": int(n)}


def _first(source, examples: int):
    from jaxnet.data.sources import EncodedSource, Subset

    indices = np.arange(examples)
    if isinstance(source, EncodedSource):
        return EncodedSource(Subset(source.records, indices), source.eval_transform,
                             source.num_workers, source.name)
    return Subset(source, indices)


def _cell_by_cell(workdirs, protocols, split):
    """{(k, protocol): eval record}, every cell evaluated on the device (several processes)."""
    from jaxnet.methods import evaluate

    cells = {}
    for k in range(1, len(workdirs) + 1):
        for protocol in protocols:
            cells[k, protocol] = evaluate(_config(workdirs), workdirs[0], split,
                                          protocol=protocol, ensemble=workdirs[1:k], report=False)
    return cells


def _config(workdirs):
    from jaxnet.loop.workdir import load_config

    return load_config(workdirs[0])


def _shared_passes(workdirs, protocols, split, examples):
    """{(k, protocol): eval record}: one pass per (model, protocol), ensembles on the host."""
    import jax

    from jaxnet.config import validate_config
    from jaxnet.data.sources import create_source
    from jaxnet.evaluation.evaluator import Evaluator
    from jaxnet.loop.eval_options import eval_options, options_key
    from jaxnet.loop.workdir import write_eval_file
    from jaxnet.mesh import check_batch_size, create_mesh
    from jaxnet.methods import ensemble_member, eval_record, get_method, restore

    config = _config(workdirs)
    validate_config(config)
    get_method(config.method).check_config(config)
    mesh = create_mesh(model_parallel=config.model_parallel)
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    split = split or config.eval_split
    source = create_source(config, split)
    if examples and examples < len(source):
        source = _first(source, examples)
    predictors = [restore(config, workdirs[0], mesh)]
    predictors += [ensemble_member(config, w, mesh) for w in workdirs[1:]]
    models = [(w, p.step) for w, p in zip(workdirs, predictors)]
    cells = {}
    for protocol in protocols:
        evaluator = Evaluator(source, config, mesh, protocol)
        probs, seconds, first = [], [], None
        for i, predictor in enumerate(predictors):
            collector = SoftmaxCollector(len(source), config.num_classes)
            evaluator.collectors = (collector,)
            start = time.time()
            metrics = evaluator(predictor)
            seconds.append(time.time() - start)
            if jax.process_index() == 0:
                print(f"{protocol}: model {i + 1} of {len(predictors)} ({workdirs[i]}):"
                      f" {seconds[-1]:.1f} s", flush=True)
            probs.append(collector.probs)
            first = first or metrics
        total = np.zeros(probs[0].shape, np.float64)
        for k in range(1, len(predictors) + 1):
            total += probs[k - 1]
            metrics = first if k == 1 else ensemble_metrics(total / k, collector.labels)
            record = eval_record(models[:k], split, metrics, sum(seconds[:k]), protocol,
                                 evaluator.num_views())
            if k > 1:  # keyed by its members, as eval.py's: other ensembles never overwrite it
                record["options"] = eval_options(config, None, members=models[1:k])
                record["key"] = options_key(record["options"])
            if not examples and jax.process_index() == 0:
                write_eval_file(workdirs[0], record)
            cells[k, protocol] = record
    return cells


def grid(workdirs, protocols, split=None, examples: int = 0) -> list:
    """One row per (number of models, protocol): the eval records plus cost and time."""
    import jax

    if jax.process_count() > 1:
        if examples:
            raise SystemExit("error: --examples is for one process")
        cells = _cell_by_cell(workdirs, protocols, split)
    else:
        cells = _shared_passes(workdirs, protocols, split, examples)
    rows = []
    for k in range(1, len(workdirs) + 1):
        for protocol in protocols:
            record = cells[k, protocol]
            rows.append({"models": k, "protocol": protocol, "crops": record["num_views"],
                         "cost": k * record["num_views"],
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
