"""config.method = "classical": the 2010-2011 pipeline, features -> linear SVM (jaxnet.classical).

fit: the feature encoder (the state of every block that needs one: PCA + GMM of Fisher blocks,
PCA + k-means codebooks of bag-of-words and coding blocks) on a sample of train images, the
train split's features (straight onto the full-batch solver's devices, into host memory for SGD,
or into numpy memmaps under WORKDIR/features/ that the averaged-SGD solver streams), the linear
SVM; the fitted state is checkpointed, and a re-run restores it instead of
refitting. The checkpoint step is the solver's iteration count (L-BFGS iterations, or SGD
steps); metrics.jsonl gets one "fit" record per smoothing level (L-BFGS) or epoch (SGD) and a
"train" record with the fit's objective, duality gap and times. The prediction function (features
then SVM scores, one jitted function) goes to the shared evaluator like any network's.
"""
import hashlib
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError
from jaxnet.classical import feature_pipeline, sgd, sharding, svm
from jaxnet.classical.losses import LOSSES, loss_terms
from jaxnet.data.pipeline import eval_batches
from jaxnet.data.sources import EncodedSource, Subset
from jaxnet.evaluation.evaluator import Predictor, batch_sums, summarize
from jaxnet.console import progress_bar
from jaxnet.mesh import check_batch_size, replicated

SOLVERS = ("full_batch", "sgd")
FEATURE_STORES = ("memory", "disk")
FEATURE_DTYPES = ("float32", "float16")
# config fields besides config.classical that a fitted state depends on
FIT_FIELDS = ("dataset", "num_classes", "image_size", "channels", "train_split", "seed")
RESUME_FIELDS = ("classical",) + FIT_FIELDS
# what must match to evaluate a fitted state: its features and its classifier's shape
EVAL_FIELDS = ("classical.features", "num_classes", "image_size", "channels")


def check_config(config) -> None:
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
        feature_pipeline.parse_config(c.features)
    except (ValueError, TypeError, AttributeError) as e:
        raise JaxnetError(f"config.classical.features: {e}") from e


def _mesh(config, run):
    """The run's mesh for the classical functions (None on one device); one host only."""
    if jax.process_count() > 1:
        raise JaxnetError("the classical pipeline runs on one host (it fits on all features at once);"
                          f" this job has {jax.process_count()} processes")
    if run.mesh.size == 1:
        return None
    if config.classical.solver == "sgd":
        check_batch_size(config.batch_size, run.mesh)
    return run.mesh


# ---- images and features ------------------------------------------------------------------

def image_batches(source, config):
    """Every example of `source` once, in order, as padded uint8 batches {image, label, mask} of
    config.eval_batch_size: the one place the classical pipeline reads images (no augmentation)."""
    return eval_batches(source, config.eval_batch_size, 0, 1)


def batch_features(images, config, state, mesh) -> np.ndarray:
    """Feature vectors [B, D] (host, float32) of one batch of images."""
    try:
        return feature_pipeline.extract_features(images, config.classical.features, state, batch_size=len(images),
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
    with progress_bar(n, desc) as bar:
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


def fit_encoder(source, config, key, mesh=None) -> dict:
    """The state of every feature block that needs fitting (feature_pipeline.needs_fit: PCA + GMM of
    Fisher blocks, PCA + codebook of bag-of-words and coding blocks), fitted on
    config.classical.encoder_images random train images; {"fisher": []} when no block needs it."""
    c = config.classical
    if not feature_pipeline.needs_fit(c.features):
        return {"fisher": []}
    count = min(len(source), c.encoder_images)
    picks = np.sort(np.random.default_rng(config.seed).choice(len(source), count, replace=False))
    if isinstance(source, EncodedSource):  # keep decoding in grain's worker processes
        subset = EncodedSource(Subset(source.records, picks), source.eval_transform, source.num_workers,
                               source.name)
    else:
        subset = Subset(source, picks)
    images = [b["image"][b["mask"] > 0] for b in image_batches(subset, config)]
    return feature_pipeline.fit_features(np.concatenate(images), c.features, key=key, max_images=count,
                                 max_descriptors=c.encoder_descriptors, em_iters=c.em_iters,
                                 batch_size=config.eval_batch_size, mesh=mesh)


def _encoder_summary(encoder) -> str:
    """What a fitted encoder holds, e.g. "1 bow block" or "1 fisher + 2 coding blocks"."""
    return " + ".join(f"{len(v)} {kind}" for kind, v in encoder.items() if len(v)) + " block(s)"


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


def svm_loss_fn(config):
    """Per-example loss of SVM scores: the solver's own (hinge, ...) data term."""
    def loss(scores, labels):
        onehot = jax.nn.one_hot(labels, config.num_classes)
        return loss_terms(scores, onehot, config.classical.loss, 0.0)["exact"]
    return loss


def feature_metrics(params, features, labels, config, rows: int = 4096) -> dict:
    """loss / top-1 / top-5 of params on stored features (host array, memmap or the full-batch
    solver's device array, rows padded: only the first len(labels) count), in chunks."""
    loss_fn = svm_loss_fn(config)
    sums_fn = jax.jit(lambda p, x, y: batch_sums(svm.decision_function(p, x), y, jnp.ones(len(y)),
                                                 config.num_classes, loss_fn))
    totals = {}
    for s in range(0, len(labels), rows):
        x = np.asarray(sharding.host_rows(features, s, min(s + rows, len(labels))), np.float32)
        for k, v in jax.device_get(sums_fn(params, x, labels[s : s + rows])).items():
            totals[k] = totals.get(k, 0.0) + np.float64(v)
    return summarize(totals)


def predictor(config, fitted, step: int, mesh) -> Predictor:
    """The fitted features + SVM as one traceable prediction function for the shared evaluator."""
    features = config.classical.features

    def predict(params, images):
        return svm.decision_function(params["svm"],
                                     feature_pipeline.traced_features(images, features, params["features"]))

    return Predictor(predict, jax.device_put(fitted, replicated(mesh)), step, svm_loss_fn(config))


def restore_fitted(checkpointer, step=None):
    """(step, fitted state as host arrays, the train record) of a classical checkpoint."""
    def restore_at(step):
        meta = checkpointer.restore_meta(step)
        if meta.get("method") != "classical":
            raise JaxnetError(f"the checkpoint at step {step} in {checkpointer.directory} is not a"
                              " classical fit; use another --workdir")
        return meta, checkpointer.restore(step, {"fitted": None})["fitted"]

    step, (meta, fitted) = checkpointer.restore_newest(restore_at, step)
    return step, jax.tree.map(np.asarray, fitted), meta["train"]


# ---- the method ---------------------------------------------------------------------------

def _fit(config, run, mesh):
    """Encoder, train features, SVM; returns (step, fitted) after checkpointing them."""
    c, logger, train_source = config.classical, run.logger, run.train_source
    t0 = time.time()
    if feature_pipeline.needs_fit(c.features):
        logger.print(f"fitting the encoder (PCA + GMM / codebooks) on {min(c.encoder_images, len(train_source)):,}"
                     " train images")
    encoder = jax.tree.map(np.asarray, fit_encoder(train_source, config, jax.random.PRNGKey(config.seed), mesh))
    t_encoder = time.time() - t0
    if feature_pipeline.needs_fit(c.features):
        logger.print(f"encoder ({_encoder_summary(encoder)}) fitted in {t_encoder:.1f} s")
    t0 = time.time()
    if c.feature_store == "disk":
        feats, labels = stored_features(train_source, config, encoder, mesh, run.workdir, config.train_split,
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
    run.checkpointer.save(step, {"fitted": fitted}, meta={"method": "classical", "train": record})
    run.checkpointer.wait()
    return step, fitted


def fit(config, run) -> Predictor:
    """Fit (or restore a finished fit of) the features + SVM."""
    mesh, c = _mesh(config, run), config.classical
    step = run.checkpointer.latest_step()
    total = c.max_iter if c.solver == "full_batch" else c.epochs * -(-len(run.train_source) // config.batch_size)
    run.logger.start(total, step or 0)
    run.logger.print(f"classical pipeline: {len(run.train_source):,} train /"
                     f" {len(run.evaluator.source):,} {config.eval_split} examples")
    if step is None:
        step, fitted = _fit(config, run, mesh)
    else:
        step, fitted, _ = restore_fitted(run.checkpointer)  # the newest intact one
        run.logger.print(f"already fitted: restored the checkpoint at step {step} (delete {run.workdir} to refit)")
    return predictor(config, fitted, step, run.mesh)


def restore(config, run, step=None) -> Predictor:
    _mesh(config, run)
    step, fitted, _ = restore_fitted(run.checkpointer, step)
    return predictor(config, fitted, step, run.mesh)
