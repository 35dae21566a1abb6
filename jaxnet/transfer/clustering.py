"""Clustering extracted features: PCA, k-means with restarts, agreement with the labels, a plot.

- `fit_clusters`: PCA (jaxnet.classical.pca) to `pca_dim`, then k-means (jaxnet.classical.kmeans:
  k-means++ seeding, Lloyd steps, points sharded over the mesh) `restarts` times from different
  seeds; the run with the lowest objective (mean squared distance to the nearest centre) wins.
- `nmi` (normalised mutual information, arithmetic-mean normalisation as scikit-learn's default),
  `ari` (adjusted Rand index), `purity` (the share of points whose cluster's majority label is
  theirs): `cluster_metrics` gives all three.
- `majority_labels`: each cluster's most frequent label, what a clustering predicts as a class.
- `scatter_png`: the first two principal components, coloured by true class and by cluster.
"""
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError
from jaxnet.classical import kmeans, pca


def contingency(clusters, labels, k: int = None, c: int = None) -> np.ndarray:
    """Counts [k, c] of (cluster, label) pairs."""
    clusters, labels = np.asarray(clusters, np.int64), np.asarray(labels, np.int64)
    k = int(k if k is not None else clusters.max() + 1)
    c = int(c if c is not None else labels.max() + 1)
    return np.bincount(clusters * c + labels, minlength=k * c).reshape(k, c).astype(np.float64)


def _entropy(counts) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(clusters, labels) -> float:
    """Mutual information / mean of the two entropies (1.0 for identical partitions up to
    renaming; 1.0 when both are a single block)."""
    table = contingency(clusters, labels)
    n = table.sum()
    h_k, h_c = _entropy(table.sum(1)), _entropy(table.sum(0))
    nz = table > 0
    outer = np.outer(table.sum(1), table.sum(0))
    mi = float((table[nz] / n * np.log(table[nz] * n / outer[nz])).sum())
    denom = (h_k + h_c) / 2
    return 1.0 if denom == 0 else float(np.clip(mi / denom, 0.0, 1.0))


def ari(clusters, labels) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985): 1 for identical partitions, ~0 for chance."""
    table = contingency(clusters, labels)
    comb = lambda x: x * (x - 1) / 2  # noqa: E731
    index = comb(table).sum()
    a, b, total = comb(table.sum(1)).sum(), comb(table.sum(0)).sum(), comb(table.sum())
    expected = a * b / total if total else 0.0
    top = (a + b) / 2
    return 1.0 if top == expected else float((index - expected) / (top - expected))


def purity(clusters, labels) -> float:
    table = contingency(clusters, labels)
    return float(table.max(1).sum() / table.sum())


def cluster_metrics(clusters, labels) -> dict:
    return {"nmi": nmi(clusters, labels), "ari": ari(clusters, labels),
            "purity": purity(clusters, labels)}


def majority_labels(clusters, labels, k: int, num_classes: int) -> np.ndarray:
    """[k] the most frequent label of each cluster (ties: the smaller label); an empty cluster
    gets the most frequent label overall."""
    table = contingency(clusters, labels, k, num_classes)
    majority = table.argmax(1)
    majority[table.sum(1) == 0] = int(table.sum(0).argmax())
    return majority.astype(np.int32)


def fit_clusters(x, k: int, *, pca_dim: int = 0, restarts: int = 1, max_iter: int = 100,
                 tol: float = 1e-4, seed: int = 0, mesh=None, log=None) -> dict:
    """PCA + k-means (best of `restarts`) on x [n, D] (host or device). Returns a pytree {"pca":
    {"mean", "components", "variance", "scale"} (identity-free: components [D, d]), "centres":
    [k, d], "temperature": []} as host arrays plus "objective" (the winner's mean squared
    distance), "objectives" (every restart's) and "iterations" (Lloyd steps, all restarts)."""
    x = jnp.asarray(x, jnp.float32)
    n, d = x.shape
    if not 1 <= k <= n:
        raise JaxnetError(f"config.transfer.clusters must be in [1, {n}] (the examples), got {k}")
    dim = min(pca_dim, d, n - 1) if pca_dim else d
    try:
        proj = pca.fit_pca(x, dim) if pca_dim else {
            "mean": jnp.zeros(d), "components": jnp.eye(d), "variance": jnp.ones(d),
            "scale": jnp.ones(d)}
        z = pca.pca_transform(x, proj)
        best, objectives, iterations = None, [], 0
        for r in range(restarts):
            centres, history = kmeans.fit_kmeans(z, k, key=jax.random.PRNGKey(seed * 1000 + r),
                                                 max_iter=max_iter, tol=tol, mesh=mesh)
            objectives.append(float(history[-1]))
            iterations += len(history) - 1
            if log is not None:
                log(f"k-means restart {r + 1}/{restarts}: objective {history[-1]:.5g} after"
                    f" {len(history) - 1} Lloyd steps")
            if best is None or history[-1] < best[1]:
                best = (centres, float(history[-1]))
    except ValueError as e:
        raise JaxnetError(f"clustering: {e}") from e
    # p(cluster | x) ~ exp(-|z - c|^2 / (2 sigma^2)), sigma^2 the per-dimension spread
    temperature = max(2.0 * best[1] / dim, 1e-12)
    return {"pca": jax.tree.map(np.asarray, proj), "centres": np.asarray(best[0]),
            "temperature": np.float32(temperature), "objective": best[1],
            "objectives": objectives, "iterations": max(iterations, 1)}


def assign(z, centres):
    """Nearest centre [n] of projected points z [n, d]."""
    return kmeans.assign(z, centres)[0]


def scatter_png(points2d, labels, clusters, path, *, class_names=None, title="",
                max_points: int = 5000, seed: int = 0) -> str:
    """Two panels of the same 2-D points (the first two principal components): coloured by
    true class, and by cluster. At most `max_points` (a seeded random sample) are drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points2d, labels, clusters = np.asarray(points2d), np.asarray(labels), np.asarray(clusters)
    if len(points2d) > max_points:
        pick = np.random.default_rng(seed).choice(len(points2d), max_points, replace=False)
        points2d, labels, clusters = points2d[pick], labels[pick], clusters[pick]
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    for i, (values, what) in enumerate(((labels, "true class"), (clusters, "cluster"))):
        ax = fig.add_subplot(1, 2, i + 1)
        cmap = "tab10" if values.max() < 10 else "tab20"
        sc = ax.scatter(points2d[:, 0], points2d[:, 1], c=values, cmap=cmap, s=4, alpha=0.7,
                        linewidths=0, vmin=-0.5, vmax=max(values.max(), 9) + 0.5 if cmap == "tab10"
                        else values.max() + 0.5)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.set_title(f"coloured by {what}")
        if what == "true class" and class_names is not None and len(class_names) <= 20:
            handles = [ax.scatter([], [], color=sc.cmap(sc.norm(j)), s=12, label=name)
                       for j, name in enumerate(class_names)]
            ax.legend(handles=handles, fontsize=7, markerscale=1.5, loc="best", framealpha=0.8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return str(path)
