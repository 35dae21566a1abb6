"""The classical baseline as a train.py / eval.py experiment (config.method = "classical").

train_classical: fit the feature encoder (PCA + GMM of the config's Fisher blocks, if any) on a
sample of train images, extract the train split's features (straight onto the full-batch solver's
devices, into host memory for SGD, or into numpy memmaps under WORKDIR/features/ that the
averaged-SGD solver streams), fit the linear SVM, checkpoint the fitted
state with orbax, evaluate it on config.eval_split. A re-run on a finished workdir restores the
state instead of refitting. evaluate_classical: restore and evaluate a split, every example
exactly once, like the CNNs' eval.py. The checkpoint step is the solver's iteration count (L-BFGS
iterations, or SGD steps); metrics.jsonl gets one "fit" record per smoothing level (L-BFGS) or
epoch (SGD), a "train" record with the fit's objective, duality gap and times, and the eval.
"""
import hashlib
import json
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from jaxnet import JaxnetError
from jaxnet.classical import pipeline, sgd, sharding, svm
from jaxnet.classical.losses import LOSSES, loss_terms
from jaxnet.config import validate_config
from jaxnet.data.pipeline import eval_batches
from jaxnet.data.sources import EncodedSource, create_source
from jaxnet.training.logger import MetricLogger
from jaxnet.training.loop import prepare_workdir
from jaxnet.training.sharding import check_batch_size, create_mesh
from jaxnet.training.steps import summarize_eval

SOLVERS = ("full_batch", "sgd")
FEATURE_STORES = ("memory", "disk")
FEATURE_DTYPES = ("float32", "float16")
# config fields besides config.classical that a fitted state depends on
FIT_FIELDS = ("dataset", "num_classes", "image_size", "channels", "train_split", "seed")


def check_classical_config(config) -> None:
    """Raise JaxnetError for a config.classical value out of range (validate_config checks its keys)."""
    c = config.classical
    choices = {"solver": SOLVERS, "loss": LOSSES, "feature_store": FEATURE_STORES,
               "feature_dtype": FEATURE_DTYPES}
    for field, valid in choices.items():
        if c[field] not in valid:
            raise JaxnetError(f"config.classical.{field} must be one of {', '.join(valid)}, got {c[field]!r}")
    for field in ("lam", "smoothing", "min_smoothing"):
        if not c[field] > 0:
            raise JaxnetError(f"config.classical.{field} must be positive, got {c[field]}")
    for field in ("max_iter", "epochs", "encoder_images", "encoder_descriptors", "em_iters"):
        if c[field] < 1:
            raise JaxnetError(f"config.classical.{field} must be at least 1, got {c[field]}")
    for field in ("tol", "ftol", "eta0"):
        if not c[field] >= 0:
            raise JaxnetError(f"config.classical.{field} must be >= 0, got {c[field]}")
    if c.min_smoothing > c.smoothing:
        raise JaxnetError(f"config.classical.min_smoothing ({c.min_smoothing}) exceeds smoothing ({c.smoothing})")
    try:
        pipeline.parse_config(c.features)
    except (ValueError, TypeError, AttributeError) as e:
        raise JaxnetError(f"config.classical.features: {e}") from e


def _setup(config):
    """Validated config -> mesh (None on one device)."""
    validate_config(config)
    if config.method != "classical":
        raise JaxnetError(f"config.method is {config.method!r}; the classical pipeline needs 'classical'")
    check_classical_config(config)
    if jax.process_count() > 1:
        raise JaxnetError("the classical pipeline runs on one host (it fits on all features at once);"
                          f" this job has {jax.process_count()} processes")
    if jax.device_count() == 1:
        return None
    mesh = create_mesh()
    if config.classical.solver == "sgd":
        check_batch_size(config.batch_size, mesh)
    return mesh


# ---- images and features ------------------------------------------------------------------

def image_batches(source, config):
    """Every example of `source` once, in order, as padded uint8 batches {image, label, mask} of
    config.eval_batch_size: the one place the classical pipeline reads images (no augmentation)."""
    return eval_batches(source, config.eval_batch_size, 0, 1)


class _Subset:
    """The examples `indices` of a source or of an EncodedSource's records (random access)."""

    def __init__(self, source, indices):
        self.source, self.indices = source, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.source[int(self.indices[i])]


def _progress(total: int, desc: str):
    interactive = sys.stderr.isatty()
    return tqdm.tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, mininterval=1 if interactive else 30)


def batch_features(images, config, state, mesh) -> np.ndarray:
    """Feature vectors [B, D] (host, float32) of one batch of images."""
    try:
        return pipeline.extract_features(images, config.classical.features, state, batch_size=len(images),
                                         mesh=mesh)
    except (ValueError, TypeError) as e:
        raise JaxnetError(f"config.classical.features: {e}") from e


def _feature_store(n: int, dim: int, dtype, mesh, path, on_device):
    """Where split_features writes [n, dim] rows: a .npy memmap at `path`, a device RowBuffer
    (on_device), or a host array."""
    if path is not None:
        return np.lib.format.open_memmap(path, "w+", dtype, (n, dim))
    if on_device:
        return sharding.RowBuffer((n, dim), mesh, dtype)
    return np.empty((n, dim), dtype)


def split_features(source, config, state, mesh, path=None, desc="features", on_device=False):
    """(features [n, D], labels [n]) of every example of `source`, in order. With `path` the
    features are written to a .npy memory map there (what the SGD solver streams from); with
    on_device they are written batch by batch into a device array laid out for the full-batch
    solver (rows padded to the mesh: [n', D], see sharding.RowBuffer), never whole on the host."""
    n, dtype = len(source), np.dtype(config.classical.feature_dtype)
    feats, labels, row = None, np.empty(n, np.int32), 0
    with _progress(n, desc) as bar:
        for batch in image_batches(source, config):
            real = batch["mask"] > 0
            k = int(real.sum())
            if not k:
                continue
            f = batch_features(batch["image"], config, state, mesh)[real]
            if feats is None:
                feats = _feature_store(n, f.shape[1], dtype, mesh, path, on_device)
            feats[row : row + k] = f
            labels[row : row + k] = batch["label"][real]
            row += k
            bar.update(k)
    if row != n:
        raise AssertionError(f"read {row} examples, the split has {n}")
    if path is not None:
        feats.flush()
    return (feats.array() if on_device else feats), labels


def _fingerprint(config, state) -> str:
    """Identifies what stored features were computed from: data, feature config, encoder state."""
    h = hashlib.sha256(json.dumps([config.classical.features.to_json(), config.classical.feature_dtype]
                                  + [config[f] for f in FIT_FIELDS]).encode())
    for leaf in jax.tree.leaves(state):
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def stored_features(source, config, state, mesh, workdir, split, log):
    """split_features in WORKDIR/features/SPLIT.npy (a memmap), reused when a previous run of
    the same config already wrote them completely (the marker SPLIT.json is written last)."""
    folder = Path(workdir) / "features"
    folder.mkdir(exist_ok=True)
    marker, data, label_file = folder / f"{split}.json", folder / f"{split}.npy", folder / f"{split}_labels.npy"
    key = _fingerprint(config, state)
    if marker.exists() and json.loads(marker.read_text()).get("fingerprint") == key:
        log(f"reusing the {split} features in {data}")
        return np.load(data, mmap_mode="r"), np.load(label_file)
    marker.unlink(missing_ok=True)
    feats, labels = split_features(source, config, state, mesh, path=data, desc=f"{split} features")
    np.save(label_file, labels)
    marker.write_text(json.dumps({"fingerprint": key, "examples": int(feats.shape[0]),
                                  "dim": int(feats.shape[1]), "dtype": str(feats.dtype)}) + "\n")
    return feats, labels


def fit_encoder(source, config, key) -> dict:
    """PCA + GMM of each Fisher block, fitted on config.classical.encoder_images random train
    images; {"fisher": []} when the config has no Fisher block."""
    c = config.classical
    blocks, _ = pipeline.parse_config(c.features)
    if not any(kind == "fisher" for kind, _ in blocks):
        return {"fisher": []}
    count = min(len(source), c.encoder_images)
    picks = np.sort(np.random.default_rng(config.seed).choice(len(source), count, replace=False))
    if isinstance(source, EncodedSource):  # keep decoding in grain's worker processes
        subset = EncodedSource(_Subset(source.records, picks), source.eval_transform, source.num_workers,
                               source.name)
    else:
        subset = _Subset(source, picks)
    images = [b["image"][b["mask"] > 0] for b in image_batches(subset, config)]
    return pipeline.fit_features(np.concatenate(images), c.features, key=key, max_images=count,
                                 max_descriptors=c.encoder_descriptors, em_iters=c.em_iters)


# ---- the SVM and its metrics --------------------------------------------------------------

def fit_classifier(features, labels, config, mesh, callback=None):
    """The config's solver on the train features: (params {"w", "b"}, info)."""
    c = config.classical
    common = dict(num_classes=config.num_classes, lam=c.lam, loss=c.loss, tol=c.tol, seed=config.seed,
                  mesh=mesh, callback=callback)
    try:
        if c.solver == "full_batch":
            return svm.fit_svm(features, labels, ftol=c.ftol, max_iter=c.max_iter, smoothing=c.smoothing,
                               min_smoothing=c.min_smoothing, **common)
        return sgd.fit_svm_sgd(features, labels, ftol=c.ftol or None, epochs=c.epochs,
                               batch_size=config.batch_size, eta0=c.eta0 or None, **common)
    except ValueError as e:  # bad labels (a class with no examples, out of range), NaN features, ...
        raise JaxnetError(f"SVM fit: {e}") from e


@partial(jax.jit, static_argnames=("loss", "num_classes"))
def _sums(params, features, labels, mask, loss, num_classes):
    """Summed loss (the SVM's data term), top-1 / top-5 correct and count over the real rows."""
    scores = svm.decision_function(params, features)
    per_example = loss_terms(scores, jax.nn.one_hot(labels, num_classes), loss, 0.0)["exact"]
    top = jax.lax.top_k(scores, min(5, num_classes))[1]
    hit = top == labels[:, None]
    return {"loss": jnp.sum(per_example * mask), "top1_correct": jnp.sum(hit[:, 0] * mask),
            "top5_correct": jnp.sum(jnp.any(hit, axis=1) * mask), "count": jnp.sum(mask)}


def _add(totals, sums):
    sums = {k: np.float64(v) for k, v in jax.device_get(sums).items()}
    return sums if totals is None else {k: totals[k] + sums[k] for k in totals}


def feature_metrics(params, features, labels, config, rows: int = 4096) -> dict:
    """loss / top-1 / top-5 of params on stored features (host array, memmap or the full-batch
    solver's device array, rows padded: only the first len(labels) count), in chunks."""
    totals = None
    for s in range(0, len(labels), rows):
        x = np.asarray(sharding.host_rows(features, s, min(s + rows, len(labels))), np.float32)
        y = labels[s : s + rows]
        totals = _add(totals, _sums(params, x, y, np.ones(len(y), np.float32), config.classical.loss,
                                    config.num_classes))
    return summarize_eval(totals)


def evaluate_split(fitted, source, config, mesh, desc="eval") -> dict:
    """Whole-split evaluation of a fitted state, every example exactly once (features computed
    batch by batch, never stored): loss, top1/top5 accuracy and error, num_examples."""
    totals = None
    with _progress(len(source), desc) as bar:
        for batch in image_batches(source, config):
            feats = batch_features(batch["image"], config, fitted["features"], mesh)
            totals = _add(totals, _sums(fitted["svm"], feats, batch["label"], batch["mask"],
                                        config.classical.loss, config.num_classes))
            bar.update(int(batch["mask"].sum()))
    metrics = summarize_eval(totals)
    if metrics["num_examples"] != len(source):
        raise AssertionError(f"evaluated {metrics['num_examples']} examples, split has {len(source)}")
    return metrics


# ---- checkpoints ----------------------------------------------------------------------------

def _manager(workdir):
    return ocp.CheckpointManager((Path(workdir) / "checkpoints").absolute(),
                                 options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True))


def _fit_settings(config) -> dict:
    """What a fitted state depends on, flat: classical.FIELD and the FIT_FIELDS."""
    classical = json.loads(config.classical.to_json())
    return {**{f"classical.{k}": v for k, v in classical.items()}, **{f: config[f] for f in FIT_FIELDS}}


def save_fitted(workdir, step: int, fitted: dict, meta: dict) -> None:
    """Checkpoint the fitted state (a pytree of numpy arrays) and its JSON metadata at `step`."""
    manager = _manager(workdir)
    try:
        manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(fitted),
                                                   meta=ocp.args.JsonSave(meta)), force=True)
        manager.wait_until_finished()
    finally:
        manager.close()


def latest_step(workdir):
    directory = Path(workdir) / "checkpoints"
    if not directory.is_dir():
        return None
    manager = _manager(workdir)
    try:
        return manager.latest_step()
    finally:
        manager.close()


def restore_fitted(workdir, step=None):
    """(step, fitted state, metadata) of `step` (default: the latest) of a classical workdir."""
    manager = _manager(workdir)
    try:
        step = manager.latest_step() if step is None else step
        if step is None or step not in manager.all_steps():
            raise JaxnetError(f"no classical checkpoint{'' if step is None else f' at step {step}'} in"
                              f" {Path(workdir) / 'checkpoints'}: train first with"
                              f" `python train.py --config=... --workdir={workdir}`")
        try:
            meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:  # a CNN checkpoint has no "meta" item
            raise JaxnetError(f"the checkpoint at step {step} in {workdir} is not a classical fit"
                              f" ({type(e).__name__}); use another --workdir") from e
        fitted = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    finally:
        manager.close()
    return step, jax.tree.map(np.asarray, fitted), meta


def _check_same_fit(meta, config, workdir, features_only: bool) -> None:
    """Refuse a workdir whose fit used other settings (only those that change the features and
    the classifier's shape when features_only, as for evaluating it)."""
    saved, now = meta.get("settings", {}), _fit_settings(config)
    keys = ("classical.features", "num_classes", "image_size", "channels") if features_only else set(saved) | set(now)
    changed = sorted(k for k in keys if saved.get(k) != now.get(k))
    if changed:
        raise JaxnetError(
            f"workdir {workdir} holds a classical fit made with other settings ("
            + "; ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in changed)
            + "). Use another --workdir, or the config that wrote it; nothing was changed.")


def _write_eval_file(workdir, step: int, split: str, metrics: dict) -> dict:
    out = {"step": int(step), "split": split, **metrics}
    path = Path(workdir) / "eval" / f"{split}_step{int(step)}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return {**out, "path": str(path)}


# ---- the two entry points -----------------------------------------------------------------

def _fit(config, workdir, train_source, mesh, logger):
    """Encoder, train features, SVM; returns (step, fitted, meta) after checkpointing them."""
    c = config.classical
    t0 = time.time()
    if any(kind == "fisher" for kind, _ in pipeline.parse_config(c.features)[0]):
        logger.print(f"fitting the encoder (PCA + GMM) on {min(c.encoder_images, len(train_source)):,} train images")
    encoder = jax.tree.map(np.asarray, fit_encoder(train_source, config, jax.random.PRNGKey(config.seed)))
    t_encoder = time.time() - t0
    if encoder["fisher"]:
        logger.print(f"encoder (PCA + GMM of {len(encoder['fisher'])} Fisher block(s)) fitted in {t_encoder:.1f} s")
    t0 = time.time()
    if c.feature_store == "disk":
        feats, labels = stored_features(train_source, config, encoder, mesh, workdir, config.train_split,
                                        logger.print)
    else:  # the full-batch solver's features go straight to its devices (no host copy)
        feats, labels = split_features(train_source, config, encoder, mesh, desc=f"{config.train_split} features",
                                       on_device=c.solver == "full_batch")
    t_features = time.time() - t0
    logger.print(f"{config.train_split} features: {len(labels):,} x {feats.shape[1]:,} ({feats.dtype},"
                 f" {c.feature_store}) in {t_features:.1f} s; fitting the SVM ({c.solver}, {c.loss},"
                 f" lam {c.lam:g})")

    t0 = time.time()

    def progress(p):
        record = {"loss": p["objective"], "objective": p["objective"], "duality_gap": p["gap"],
                  "fit_seconds": time.time() - t0}
        record.update({k: p[k] for k in ("smoothing", "epoch") if k in p})
        logger.write(p["iterations"], "fit", record)

    params, info = fit_classifier(feats, labels, config, mesh, callback=progress)
    fit_seconds = time.time() - t0
    params = jax.tree.map(np.asarray, params)
    step = max(int(info["iterations"]), 1)
    fitted = {"features": encoder, "svm": params}
    train = feature_metrics(params, feats, labels, config)
    record = {"loss": info["primal"], **{k: train[k] for k in ("top1_acc", "top5_acc", "top1_err", "top5_err")},
              "objective": info["primal"], "dual": info["dual"], "duality_gap": info["primal"] - info["dual"],
              "relative_gap": (info["primal"] - info["dual"]) / abs(info["primal"]),
              "iterations": int(info["iterations"]), "converged": bool(info["converged"]),
              "stopped_by": info["stopped_by"], "fit_seconds": fit_seconds, "feature_seconds": t_features,
              "encoder_seconds": t_encoder, "feature_dim": int(feats.shape[1]),
              "images_per_sec": len(labels) / max(t_features, 1e-9)}
    logger.total_steps = step  # the fit is over: no ETA to a max_iter it stopped short of
    logger.write(step, "train", record)
    meta = {"method": "classical", "settings": _fit_settings(config), "train": record}
    save_fitted(workdir, step, fitted, meta)
    return step, fitted, meta


def train_classical(config, workdir) -> dict:
    """train.py for config.method = "classical": fit (or restore a finished fit), evaluate on
    config.eval_split, return its metrics (loss, top1/top5 accuracy and error)."""
    mesh = _setup(config)
    train_source = create_source(config, config.train_split)
    eval_source = create_source(config, config.eval_split)
    step = latest_step(workdir)
    restored = restore_fitted(workdir, step) if step is not None else None
    if restored is not None:  # checked before prepare_workdir rewrites config.json
        _check_same_fit(restored[2], config, workdir, features_only=False)
    workdir = prepare_workdir(workdir, config)
    c = config.classical
    total = c.max_iter if c.solver == "full_batch" else c.epochs * -(-len(train_source) // config.batch_size)
    logger = MetricLogger(workdir, total, step or 0)
    try:
        logger.print(f"config:\n{config}")
        logger.print(f"classical pipeline: {len(train_source):,} train / {len(eval_source):,} {config.eval_split}"
                     f" examples; {jax.device_count()} {jax.devices()[0].platform} device(s)")
        if restored is None:
            step, fitted, _ = _fit(config, workdir, train_source, mesh, logger)
        else:
            step, fitted, _ = restored
            logger.print(f"already fitted: restored the checkpoint at step {step} (delete {workdir} to refit)")
        metrics = evaluate_split(fitted, eval_source, config, mesh, desc=f"{config.eval_split} eval")
        logger.write(step, config.eval_split, metrics)
        if jax.process_index() == 0:
            _write_eval_file(workdir, step, config.eval_split, metrics)
    finally:
        logger.close()
    return metrics


def evaluate_classical(config, workdir, split=None, step=None) -> dict:
    """eval.py for config.method = "classical": restore `step` (default: latest) of `workdir`,
    evaluate `split` (default: config.eval_split), write WORKDIR/eval/SPLIT_stepN.json."""
    mesh = _setup(config)
    split = split or config.eval_split
    workdir = Path(workdir)
    if not (workdir / "checkpoints").is_dir():
        raise JaxnetError(f"{workdir} has no checkpoints/ directory: train first with"
                          f" `python train.py --config=... --workdir={workdir}`")
    source = create_source(config, split)
    step, fitted, meta = restore_fitted(workdir, step)
    _check_same_fit(meta, config, workdir, features_only=True)
    metrics = evaluate_split(fitted, source, config, mesh, desc=f"{split} eval")
    return _write_eval_file(workdir, step, split, metrics)
