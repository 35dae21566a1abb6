"""config.method = "probe": a linear classifier on the frozen features of one layer of a network.

The network is config.transfer.source_workdir (trained by train.py, imported with `python -m
jaxnet.weights import --workdir`, or a weight file of config.model). fit: the train split's
features of config.transfer.layer (pooled as config.transfer.pool, in the network's eval mode,
with its own input normalisation) are streamed into WORKDIR/features/ (a .npy memmap), standardised
(train mean / std), and a linear model is fitted on them: multinomial logistic regression by
optax's L-BFGS (probe_solver = logistic) or the JAX linear SVM of the classical pipeline
(probe_solver = svm), L2 weight config.transfer.l2. The checkpoint (step = solver iterations)
holds the backbone's variables, the standardisation and the head, so evaluation needs nothing
else; a re-run of a finished probe restores it instead of refitting. The prediction function is
one traceable function: backbone features of that layer, then the linear head.
"""
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxnet import JaxnetError
from jaxnet.classical import svm
from jaxnet.classical.losses import loss_terms
from jaxnet.evaluation.evaluator import Predictor, batch_sums, summarize
from jaxnet.mesh import replicated
from jaxnet.training.state import build_model
from jaxnet.transfer import linear
from jaxnet.transfer.extract import POOLS, image_features, layer_names, write_features
from jaxnet.transfer.source import SourceNet, load_source

SOLVERS = ("logistic", "svm")
# what a fitted probe depends on besides config.transfer
FIT_FIELDS = ("dataset", "classes", "examples_per_class", "num_classes", "image_size", "channels",
              "train_split", "seed")
RESUME_FIELDS = ("transfer",) + FIT_FIELDS
EVAL_FIELDS = ("transfer.layer", "transfer.pool", "num_classes", "channels")


def check_transfer(config, need_source: bool = True) -> None:
    """Checks shared by the transfer methods (validate_config checks config.transfer's keys)."""
    t = config.transfer
    if need_source and not t.source_workdir:
        raise JaxnetError(f"config.transfer.source_workdir is empty: method {config.method} needs a"
                          " trained or imported network (a workdir, or a weight file)")
    if t.pool not in POOLS:
        raise JaxnetError(f"config.transfer.pool must be one of {', '.join(POOLS)}, got {t.pool!r}")
    if t.max_iter < 1:
        raise JaxnetError(f"config.transfer.max_iter must be >= 1, got {t.max_iter}")
    if t.tol < 0:
        raise JaxnetError(f"config.transfer.tol must be >= 0, got {t.tol}")


def check_config(config) -> None:
    check_transfer(config)
    if config.transfer.probe_solver not in SOLVERS:
        raise JaxnetError(f"config.transfer.probe_solver must be one of {', '.join(SOLVERS)}, got"
                          f" {config.transfer.probe_solver!r}")
    if not config.transfer.l2 > 0:
        raise JaxnetError(f"config.transfer.l2 must be positive, got {config.transfer.l2}")


# ---- shared by probe and cluster ------------------------------------------------------------

def open_source(config) -> SourceNet:
    """config.transfer's source network, checked against the config: a known layer, the same
    image channels."""
    t = config.transfer
    source = load_source(t.source_workdir, t.source_step, config)
    names = layer_names(source.model)
    if t.layer not in names:
        raise JaxnetError(f"unknown layer {t.layer!r} for {source.config.model.name}; valid layers:"
                          f" {', '.join(names)}")
    if source.config.channels != config.channels:
        raise JaxnetError(f"the source network {t.source_workdir} takes {source.config.channels}-channel"
                          f" images, this config has channels={config.channels}")
    return source


def source_record(source: SourceNet) -> dict:
    """What a checkpoint's meta says about the source (enough to rebuild its model)."""
    return {"origin": source.origin, "step": int(source.step),
            "config": json.loads(source.config.to_json())}


def rebuild_source(record: dict, variables) -> SourceNet:
    """The SourceNet of a checkpoint's meta record and its saved backbone variables."""
    from jaxnet.config import base_config

    config = base_config()
    config.update(record["config"])
    return SourceNet(config, build_model(config), variables, record["step"], record["origin"])


def train_features(config, run, fn, params, name: str):
    """(features memmap [n, D], labels [n]) of the train split under WORKDIR/features/."""
    folder = Path(run.workdir) / "features"
    folder.mkdir(exist_ok=True)
    return write_features(fn, params, run.train_source, config.eval_batch_size, run.mesh,
                          folder / f"{config.train_split}_{name}.npy", f"{config.train_split} features")


def restore_fitted(checkpointer, method: str, step=None):
    """(step, fitted pytree of host arrays, meta) of a probe / cluster checkpoint."""
    def restore_at(step):
        meta = checkpointer.restore_meta(step)
        if meta.get("method") != method:
            raise JaxnetError(f"the checkpoint at step {step} in {checkpointer.directory} is not a"
                              f" {method} fit; use another --workdir")
        return meta, checkpointer.restore(step, {"fitted": None})["fitted"]

    step, (meta, fitted) = checkpointer.restore_newest(restore_at, step)
    return step, jax.tree.map(np.asarray, fitted), meta


# ---- the probe ------------------------------------------------------------------------------

def loss_fn(config):
    """Per-example loss of the head's scores: cross-entropy (None) or the SVM's hinge."""
    if config.transfer.probe_solver == "logistic":
        return None

    def hinge(scores, labels):
        return loss_terms(scores, jax.nn.one_hot(labels, config.num_classes), "hinge", 0.0)["exact"]
    return hinge


def predictor(config, source: SourceNet, fitted, step: int, mesh) -> Predictor:
    """Backbone features of the layer, standardised, then the linear head: one function."""
    features = image_features(source, config.transfer.layer, config.transfer.pool)

    def predict(params, images):
        z = linear.standardize(features(params["backbone"], images), params["norm"])
        return svm.decision_function(params["head"], z)

    params = {"backbone": source.variables, "norm": fitted["norm"], "head": fitted["head"]}
    return Predictor(predict, jax.device_put(params, replicated(mesh)), step, loss_fn(config))


def head_metrics(head, x, labels, mask, config) -> dict:
    """loss / top-k of the head on the placed train features."""
    sums = jax.jit(lambda h, x, y, m: batch_sums(svm.decision_function(h, x), y, m,
                                                 config.num_classes, loss_fn(config)))
    return summarize(jax.device_get(sums(head, x, labels, mask)))


def _fit(config, run, source):
    t, logger = config.transfer, run.logger
    t0 = time.time()
    fn = image_features(source, t.layer, t.pool)
    feats, labels = train_features(config, run, fn, source.variables, f"{t.layer}_{t.pool}")
    t_features = time.time() - t0
    if labels.max() >= config.num_classes:
        raise JaxnetError(f"train labels go up to {labels.max()}, config.num_classes is {config.num_classes}")
    norm = linear.standardizer(feats)
    x, y, mask = linear.place_rows(feats, labels, run.mesh, norm)
    logger.print(f"{config.train_split} features of {t.layer} ({t.pool}): {len(labels):,} x"
                 f" {x.shape[1]:,} in {t_features:.1f} s; fitting the {t.probe_solver} probe"
                 f" (l2 {t.l2:g})")
    t0 = time.time()
    if t.probe_solver == "logistic":
        head, info = linear.fit_logistic(x, y, mask, config.num_classes, l2=t.l2, max_iter=t.max_iter,
                                         tol=t.tol, mesh=run.mesh)
        objective = info["objective"]
    else:
        try:
            head, raw = svm.fit_svm(x, labels, num_classes=config.num_classes, lam=t.l2,
                                    max_iter=t.max_iter, seed=config.seed, mesh=run.mesh)
        except ValueError as e:
            raise JaxnetError(f"SVM probe: {e}") from e
        head = jax.tree.map(np.asarray, head)
        info = {"iterations": int(raw["iterations"]), "objective": raw["primal"],
                "converged": bool(raw["converged"]), "duality_gap": raw["primal"] - raw["dual"]}
        objective = raw["primal"]
    train = head_metrics(head, x, y, mask, config)
    step = max(int(info["iterations"]), 1)
    record = {"loss": train["loss"], "top1_acc": train["top1_acc"], "top5_acc": train["top5_acc"],
              "top1_err": train["top1_err"], "top5_err": train["top5_err"], "objective": objective,
              **{k: v for k, v in info.items() if k != "objective"}, "fit_seconds": time.time() - t0,
              "feature_seconds": t_features, "feature_dim": int(x.shape[1]),
              "examples": int(len(labels)), "images_per_sec": len(labels) / max(t_features, 1e-9)}
    logger.total_steps = step
    logger.write(step, "train", record)
    fitted = {"backbone": source.variables, "norm": norm, "head": head}
    run.checkpointer.save(step, {"fitted": fitted},
                          meta={"method": "probe", "train": record, "source": source_record(source)})
    run.checkpointer.wait()
    return step, fitted


def fit(config, run) -> Predictor:
    """Fit (or restore a finished fit of) the probe."""
    step = run.checkpointer.latest_step()
    run.logger.start(config.transfer.max_iter, step or 0)
    if step is None:
        source = open_source(config)
        run.logger.print(f"probe: {source.config.model.name} from {source.origin} (step {source.step}),"
                         f" layer {config.transfer.layer}; {len(run.train_source):,} train /"
                         f" {len(run.evaluator.source):,} {config.eval_split} examples")
        step, fitted = _fit(config, run, source)
    else:
        step, fitted, meta = restore_fitted(run.checkpointer, "probe")  # the newest intact one
        source = rebuild_source(meta["source"], fitted["backbone"])
        run.logger.print(f"already fitted: restored the probe at step {step} (delete {run.workdir} to refit)")
    return predictor(config, source, fitted, step, run.mesh)


def restore(config, run, step=None) -> Predictor:
    step, fitted, meta = restore_fitted(run.checkpointer, "probe", step)
    return predictor(config, rebuild_source(meta["source"], fitted["backbone"]), fitted, step, run.mesh)

