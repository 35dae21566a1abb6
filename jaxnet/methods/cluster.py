"""config.method = "cluster": PCA then k-means on the features of one layer of a network (or on
raw pixels), scored against the labels.

fit: the train split's features of config.transfer.layer of config.transfer.source_workdir (in the
network's eval mode; with source_workdir "" the normalised pixels themselves) are streamed into
WORKDIR/features/, projected by PCA to config.transfer.pca_dim dimensions and clustered by k-means
into config.transfer.clusters clusters (k-means++ seeds, Lloyd steps sharded over the mesh,
config.transfer.restarts restarts, the lowest objective kept: jaxnet.transfer.clustering). The
labels are used only afterwards: NMI, ARI and purity of the clusters against them (train split and
config.eval_split) go to metrics.jsonl and the eval record, and each cluster is named after its
most frequent train label, so the prediction function (features -> PCA -> the nearest centre's
label; scores are the log-posterior of the best cluster of each class under an isotropic Gaussian
per centre) gives a meaningful top-1. WORKDIR/cluster_scatter_<split>.png shows the first two
principal components coloured by true class and by cluster. The checkpoint (step = Lloyd steps over
all restarts) holds the backbone, PCA, centres and names; a re-run restores it instead of
refitting.
"""
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError
from jaxnet.classical.pca import pca_transform
from jaxnet.data.sources import FASHION_MNIST_CLASSES
from jaxnet.evaluation.evaluator import Predictor
from jaxnet.mesh import replicated
from jaxnet.methods import probe
from jaxnet.training.steps import normalize
from jaxnet.transfer import clustering
from jaxnet.transfer.extract import image_features, write_features

RESUME_FIELDS = probe.RESUME_FIELDS
EVAL_FIELDS = ("transfer.source_workdir", "transfer.layer", "transfer.pool", "transfer.clusters",
               "num_classes", "channels")


def check_config(config) -> None:
    probe.check_transfer(config, need_source=False)
    t = config.transfer
    if t.clusters < 1 or t.restarts < 1 or t.pca_dim < 0:
        raise JaxnetError("config.transfer.clusters and restarts must be >= 1, pca_dim >= 0; got"
                          f" {t.clusters}, {t.restarts}, {t.pca_dim}")


def pixel_features(config):
    """The raw-pixel 'network': normalised pixels (config.mean / std), flattened."""
    def fn(params, images):
        del params
        x = normalize(images, config.mean, config.std, jnp.float32)
        return x.reshape(x.shape[0], -1)
    return fn


def feature_function(config, source):
    if source is None:
        return pixel_features(config)
    return image_features(source, config.transfer.layer, config.transfer.pool)


def assign_function(features):
    """(params, images) -> (cluster [B] int32, projected points [B, d])."""
    def fn(params, images):
        z = pca_transform(features(params["backbone"], images), params["pca"])
        return clustering.assign(z, params["centres"]), z
    return fn


def predict_function(features, num_classes: int):
    def predict(params, images):
        z = pca_transform(features(params["backbone"], images), params["pca"])
        d = jnp.maximum(jnp.sum(z * z, -1, keepdims=True) - 2 * z @ params["centres"].T
                        + jnp.sum(params["centres"] ** 2, -1), 0.0)
        log_post = jax.nn.log_softmax(-d / params["temperature"], axis=-1)  # [B, K]
        owner = jax.nn.one_hot(params["majority"], num_classes, dtype=bool)  # [K, C]
        scores = jnp.where(owner[None], log_post[:, :, None], -1e9).max(axis=1)  # [B, C]
        return jnp.maximum(scores, -18.42)  # log(1e-8): classes no cluster is named after
    return predict


def split_assignments(fn, params, source, config, mesh, desc):
    """(cluster [n], label [n], first two PCA coordinates [n, 2]) of a split."""
    def both(p, images):
        clusters, z = fn(p, images)
        return jnp.concatenate([clusters[:, None].astype(jnp.float32), z[:, :2]], axis=1)

    out, labels = write_features(both, params, source, config.eval_batch_size, mesh, desc=desc)
    return out[:, 0].astype(np.int32), labels, out[:, 1:]


def _fit(config, run, source):
    t, logger = config.transfer, run.logger
    t0 = time.time()
    features = feature_function(config, source)
    backbone = source.variables if source is not None else {}
    name = f"{t.layer}_{t.pool}" if source is not None else "pixels"
    feats, labels = probe.train_features(config, run, features, backbone, name)
    t_features = time.time() - t0
    logger.print(f"{config.train_split} features ({name}): {len(labels):,} x {feats.shape[1]:,} in"
                 f" {t_features:.1f} s; PCA to {t.pca_dim or feats.shape[1]} dims, k-means with"
                 f" {t.clusters} clusters, {t.restarts} restart(s)")
    t0 = time.time()
    x = np.asarray(feats, np.float32)
    fitted = clustering.fit_clusters(x, t.clusters, pca_dim=t.pca_dim, restarts=t.restarts,
                                     max_iter=t.max_iter, tol=t.tol, seed=config.seed, mesh=run.mesh,
                                     log=logger.print)
    del x
    params = {"backbone": backbone, "pca": fitted["pca"], "centres": fitted["centres"],
              "temperature": fitted["temperature"], "majority": np.zeros(t.clusters, np.int32)}
    fn = assign_function(features)
    clusters, _, points = split_assignments(fn, params, run.train_source, config, run.mesh,
                                            f"{config.train_split} clusters")
    params["majority"] = clustering.majority_labels(clusters, labels, t.clusters, config.num_classes)
    scores = clustering.cluster_metrics(clusters, labels)
    step = int(fitted["iterations"])
    record = {"loss": fitted["objective"], "objective": fitted["objective"],
              "restart_objectives": fitted["objectives"], **scores,
              "top1_acc": float(np.mean(params["majority"][clusters] == labels)),
              "clusters_used": int(len(np.unique(clusters))), "feature_dim": int(feats.shape[1]),
              "pca_dim": int(fitted["centres"].shape[1]), "examples": int(len(labels)),
              "fit_seconds": time.time() - t0, "feature_seconds": t_features,
              "images_per_sec": len(labels) / max(t_features, 1e-9)}
    logger.total_steps = step
    logger.write(step, "train", record)
    scatter(config, run.workdir, config.train_split, points, labels, clusters)
    meta = {"method": "cluster", "train": record,
            "source": probe.source_record(source) if source is not None else None}
    run.checkpointer.save(step, {"fitted": params}, meta=meta)
    run.checkpointer.wait()
    return step, params, meta


def scatter(config, workdir, split, points, labels, clusters):
    names = None
    if config.dataset == "fashion_mnist":
        ids = config.classes or range(config.num_classes)
        names = [FASHION_MNIST_CLASSES[i] for i in ids]
    what = (f"{config.transfer.layer} of {Path(config.transfer.source_workdir).name}"
            if config.transfer.source_workdir else "raw pixels")
    return clustering.scatter_png(points, labels, clusters,
                                  Path(workdir) / f"cluster_scatter_{split}.png", class_names=names,
                                  title=f"{config.transfer.clusters} clusters of {what}, {split} split"
                                        " (first two principal components)")


def predictor(config, source, params, step, mesh) -> Predictor:
    features = feature_function(config, source)
    return Predictor(predict_function(features, config.num_classes),
                     jax.device_put(params, replicated(mesh)), step)


def _restore(config, run, step=None):
    step, params, meta = probe.restore_fitted(run.checkpointer, "cluster", step)
    source = (probe.rebuild_source(meta["source"], params["backbone"]) if meta.get("source")
              else None)
    return step, params, meta, source


def fit(config, run) -> Predictor:
    """Fit (or restore a finished fit of) the clustering; its NMI / ARI / purity on the eval split
    join the evaluation's metrics (metrics.jsonl and the eval record)."""
    step = run.checkpointer.latest_step()
    run.logger.start(config.transfer.max_iter * config.transfer.restarts, step or 0)
    if step is None:
        source = probe.open_source(config) if config.transfer.source_workdir else None
        step, params, meta = _fit(config, run, source)
    else:
        step, params, meta, source = _restore(config, run)  # the newest intact one
        run.logger.total_steps = step
        run.logger.print(f"already fitted: restored the clustering at step {step} (delete"
                         f" {run.workdir} to refit)")
    fn = assign_function(feature_function(config, source))
    clusters, labels, points = split_assignments(fn, params, run.evaluator.source, config, run.mesh,
                                                 f"{config.eval_split} clusters")
    scores = clustering.cluster_metrics(clusters, labels)
    scatter(config, run.workdir, config.eval_split, points, labels, clusters)
    result = predictor(config, source, params, step, run.mesh)
    run.evaluate(result, **scores).update(scores)  # the eval record is made of these metrics
    return result


def restore(config, run, step=None) -> Predictor:
    step, params, _, source = _restore(config, run, step)
    return predictor(config, source, params, step, run.mesh)
