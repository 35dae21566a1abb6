"""The ILSVRC-2011 lessons as measured curves on Fashion-MNIST: "the larger the feature vectors,
the better" and "the more training data, the better", for Fisher vectors and bag of words.

    python -m jaxnet classical_curves [--out DIR] [--quick] [--data-dir DIR] [--dim-train N] [--test N]

Four curves, one point = fit the encoder (PCA + GMM or PCA + k-means codebook) on the point's
train images, extract train and test features, fit the linear SVM, score the test images:
- fisher_components: Fisher vectors of dense SIFT, GMM size K = 8 ... 256 (feature dimension
  2 K d R), on a fixed stratified subsample of `--dim-train` train images (default 5,000);
- bow_words: bag of words (soft assignment, chi2 map), codebook size 64 ... 4,096, same images;
- fisher_data / bow_data: a mid-size recipe of each (K = 64, 1,024 words) on 1, 3, 10, 30 and
  100% of the train split (stratified: every class keeps its share).
Each point is tested on `--test` stratified test images (default 5,000). The dimension sweeps
use a train subsample, and every encoder is fitted on at most 100,000 descriptors of at most
5,000 train images with at most 20 EM / Lloyd iterations, so that the whole run aims at ~30
minutes on a quiet 2-core CPU (and fits in memory: the largest points hold 5,000 x 61,440 and
60,000 x 15,360 float32 features). `--quick` runs smaller versions of the same four curves
(a 1,000-image train pool, 1,000 test images, K up to 128, up to 1,024 words, encoders on
20,000 descriptors with 10 iterations) in a few minutes.

Every finished point is written to DIR/points/NAME.json (with the settings it was measured
with) and a re-run with the same settings redoes nothing; then DIR/curves.json, DIR/curves.md
(a Markdown table with each point's accuracy, dimension and times), DIR/dimension.png
(accuracy against feature dimension) and DIR/data.png (accuracy against training-set size) are
rewritten from the points. `report_section(DIR)` returns the Markdown for a report.
"""
import hashlib
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxnet.classical import feature_pipeline, sharding, svm
from jaxnet.data.sources import fashion_mnist_arrays

PYRAMID = ((1, 1), (2, 2))  # 5 regions: keeps the largest points within memory


def fisher_recipe(components: int) -> dict:
    """Dense SIFT (3 and 4 px bins, every 2 px) -> PCA 16 -> K-Gaussian Fisher vectors, pyramid
    1x1 + 2x2: 2 K 16 5 = 160 K dims."""
    return {"fisher": {"descriptor": "sift", "bin_sizes": (3, 4), "step": 2, "pca_dim": 16,
                       "components": int(components), "pyramid": PYRAMID}}


def bow_recipe(words: int) -> dict:
    """Dense SIFT (2, 3, 4 px bins, every 2 px) -> PCA 64 -> soft assignment to the 5 nearest
    of `words` k-means words, pyramid 1x1 + 2x2 histograms, chi2 map: 15 words dims."""
    return {"bow": {"descriptor": "sift", "bin_sizes": (2, 3, 4), "step": 2, "pca_dim": 64, "words": int(words),
                    "assign": "soft", "neighbours": 5, "pyramid": PYRAMID},
            "kernel_map": {"order": 1, "period": 0.5}}


RECIPES = {"fisher": fisher_recipe, "bow": bow_recipe}
# the SVM of every point: squared hinge (the better loss on encoded features, docs/results.md)
SVM = {"fisher": {"lam": 1e-4}, "bow": {"lam": 1e-4}}
FULL = {"fisher_components": ("fisher", (8, 16, 32, 64, 128, 256)),
        "bow_words": ("bow", (64, 128, 256, 512, 1024, 2048, 4096)),
        "fisher_data": ("fisher", (0.01, 0.03, 0.1, 0.3, 1.0)),
        "bow_data": ("bow", (0.01, 0.03, 0.1, 0.3, 1.0))}
QUICK = {"fisher_components": ("fisher", (8, 16, 32, 64, 128)),
         "bow_words": ("bow", (64, 128, 256, 512, 1024)),
         "fisher_data": ("fisher", (0.03, 0.1, 0.3, 0.6, 1.0)),
         "bow_data": ("bow", (0.03, 0.1, 0.3, 0.6, 1.0))}
MID = {"fisher": 64, "bow": 1024}  # the recipe size of the data curves
# the encoder fit of every point: descriptors sampled (from at most 5,000 of its train images), EM
# or Lloyd iterations at most
ENCODER = {"encoder_descriptors": 100_000, "em_iters": 20}
ENCODER_QUICK = {"encoder_descriptors": 20_000, "em_iters": 10}
QUICK_MID = {"fisher": 16, "bow": 256}


def stratified(labels, count: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of about `count` examples with every class's share kept (at least one
    example per class), drawn without replacement."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    frac = min(1.0, count / len(labels))
    out = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        take = max(1, int(round(frac * len(idx))))
        out.append(rng.choice(idx, min(take, len(idx)), replace=False))
    return np.sort(np.concatenate(out))


def points(quick: bool, dim_train: int, pool: int):
    """The sweep: [(name, curve, method, x, recipe size, train count)] in run order."""
    curves, mid = (QUICK, QUICK_MID) if quick else (FULL, MID)
    out = []
    for curve, (method, xs) in curves.items():
        for x in xs:
            if curve.endswith("_data"):
                size, n = mid[method], int(round(x * pool))
            else:
                size, n = int(x), dim_train
            out.append((f"{curve}_{x:g}", curve, method, x, size, n))
    return out


def _train_features(images, recipe, state, batch_size):
    """Train features written batch by batch into the SVM's device array (no host copy)."""
    buf = None
    for i in range(0, len(images), batch_size):
        f = feature_pipeline.extract_features(images[i : i + batch_size], recipe, state, batch_size=batch_size)
        if buf is None:
            buf = sharding.RowBuffer((len(images), f.shape[1]), None, np.float32)
        buf[i : i + len(f)] = f
    return buf.array()


def measure(method, size, xtr, ytr, xte, yte, *, encoder_images=5000, encoder_descriptors=100_000,
            em_iters=20, batch_size=500, log=print) -> dict:
    """One point: encoder fit, features, SVM, test accuracy; times in seconds."""
    recipe = RECIPES[method](size)
    t0 = time.perf_counter()
    state = feature_pipeline.fit_features(xtr, recipe, key=jax.random.PRNGKey(0), max_images=encoder_images,
                                  max_descriptors=encoder_descriptors, em_iters=em_iters, batch_size=batch_size)
    jax.block_until_ready(state)
    t1 = time.perf_counter()
    log(f"  encoder fitted in {t1 - t0:.1f} s; train features of {len(xtr):,} images")
    feats = _train_features(xtr, recipe, state, batch_size)
    t2 = time.perf_counter()
    log(f"  {feats.shape[1]:,}-d train features in {t2 - t1:.1f} s; SVM")
    params, info = svm.fit_svm(feats, ytr, num_classes=int(max(ytr.max(), yte.max())) + 1, loss="squared_hinge", tol=1e-2, ftol=1e-3, max_iter=300,
                               **SVM[method])
    jax.block_until_ready(params)
    dim = int(feats.shape[1])
    del feats
    t3 = time.perf_counter()
    correct = 0
    for i in range(0, len(xte), batch_size):
        f = feature_pipeline.extract_features(xte[i : i + batch_size], recipe, state, batch_size=batch_size)
        correct += int(np.sum(np.asarray(svm.predict(params, f)) == yte[i : i + batch_size]))
    t4 = time.perf_counter()
    return {"test_acc": correct / len(yte), "feature_dim": dim, "train_examples": len(ytr),
            "test_examples": len(yte), "encoder_seconds": t1 - t0, "train_feature_seconds": t2 - t1,
            "svm_seconds": t3 - t2, "svm_iterations": int(info["iterations"]), "test_seconds": t4 - t3,
            "seconds": t4 - t0}


def run(out, *, quick=False, data_dir="", dim_train=5000, test=5000, log=print, data=None) -> list:
    """Measure every missing point (cached in OUT/points/), then write the table, JSON and plots."""
    out = Path(out)
    (out / "points").mkdir(parents=True, exist_ok=True)
    xtr, ytr, xte, yte = data if data is not None else fashion_mnist_arrays(data_dir)
    pool = min(len(ytr), 1000 if quick else len(ytr))
    pool_idx = stratified(ytr, pool, seed=1) if pool < len(ytr) else np.arange(len(ytr))
    if quick:
        dim_train, test = min(dim_train, pool), min(test, 1000)
    test_idx = stratified(yte, test, seed=2) if test < len(yte) else np.arange(len(yte))
    todo = points(quick, min(dim_train, pool), pool)
    results, started = [], time.perf_counter()
    for i, (name, curve, method, x, size, n) in enumerate(todo):
        encoder = ENCODER_QUICK if quick else ENCODER
        settings = {"curve": curve, "method": method, "x": x, "size": size, "train": n, "test": len(test_idx),
                    "pool": pool, "recipe": RECIPES[method](size), "svm": SVM[method], "encoder": encoder,
                    "quick": quick}
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        path = out / "points" / f"{name}.json"
        if path.exists() and json.loads(path.read_text()).get("key") == key:
            results.append(json.loads(path.read_text()))
            log(f"[{i + 1}/{len(todo)}] {name}: cached ({results[-1]['test_acc']:.2%})")
            continue
        log(f"[{i + 1}/{len(todo)}] {name}: {method}, size {size}, {n:,} train images"
            f" (elapsed {time.perf_counter() - started:.0f} s)")
        idx = pool_idx[stratified(ytr[pool_idx], n, seed=3)] if n < pool else pool_idx
        point = measure(method, size, xtr[idx], ytr[idx], xte[test_idx], yte[test_idx], log=log,
                        encoder_images=min(5000, len(idx)), **encoder)
        record = {"name": name, "key": key, **settings, **point}
        path.write_text(json.dumps(record, indent=2) + "\n")
        results.append(record)
        log(f"  {point['test_acc']:.2%} test accuracy, {point['feature_dim']:,} dims, {point['seconds']:.1f} s")
    write_outputs(out, results)
    log(f"done in {time.perf_counter() - started:.0f} s: {out / 'curves.md'}, {out / 'dimension.png'},"
        f" {out / 'data.png'}")
    return results


LABELS = {"fisher_components": "Fisher vectors (GMM K)", "bow_words": "bag of words (codebook size)",
          "fisher_data": "Fisher vectors", "bow_data": "bag of words"}


def markdown_table(results) -> str:
    rows = ["| curve | setting | train images | feature dim | test accuracy | encoder s | train features s"
            " | SVM s | test s | total s |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        setting = f"{r['x']:.0%} of the train pool" if r["curve"].endswith("_data") else f"{r['x']:g}"
        if r["curve"].endswith("_data"):
            setting += f" (K = {r['size']})" if r["method"] == "fisher" else f" ({r['size']} words)"
        rows.append(f"| {r['curve']} | {setting} | {r['train_examples']:,} | {r['feature_dim']:,} |"
                    f" {r['test_acc']:.2%} | {r['encoder_seconds']:.1f} | {r['train_feature_seconds']:.1f} |"
                    f" {r['svm_seconds']:.1f} | {r['test_seconds']:.1f} | {r['seconds']:.1f} |")
    return "\n".join(rows) + "\n"


def write_outputs(out, results) -> None:
    """curves.json, curves.md and the two PNG plots from the measured points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    (out / "curves.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "curves.md").write_text("# The 2011 lessons as curves (Fashion-MNIST)\n\n" + markdown_table(results))
    by_curve = {}
    for r in results:
        by_curve.setdefault(r["curve"], []).append(r)
    for fname, curves, xkey, xlabel in (
            ("dimension.png", ("fisher_components", "bow_words"), "feature_dim", "feature dimension"),
            ("data.png", ("fisher_data", "bow_data"), "train_examples", "training images")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
        lines = {c: sorted(by_curve.get(c, []), key=lambda r: r[xkey]) for c in curves}
        lines = {c: ([r[xkey] for r in pts], [100 * r["test_acc"] for r in pts], pts) for c, pts in lines.items() if pts}
        for curve, (xs, ys, pts) in lines.items():
            ax.plot(xs, ys, marker="o", label=LABELS[curve])
            others = [v for c, v in lines.items() if c != curve]
            for r, x, y in zip(pts, xs, ys):
                # the label goes on the side away from the other curve (its value here, interpolated
                # in log x), so the labels of two close curves do not overlap
                other = np.interp(np.log(x), np.log(others[0][0]), others[0][1]) if others else -np.inf
                below = y < other
                note = f"{r['size']}" if curve in ("fisher_components", "bow_words") else f"{r['seconds']:.0f} s"
                ax.annotate(note, (x, y), textcoords="offset points", xytext=(0, -11 if below else 6),
                            ha="center", fontsize=7)
        ax.margins(x=0.06, y=0.12)  # room for the labels of the outermost points
        ax.set_xscale("log")
        ax.set_xlabel(xlabel + " (log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        n = by_curve.get(curves[0], [{}])[0].get("train_examples")
        test = by_curve.get(curves[0], [{}])[0].get("test_examples")
        ax.set_title(("the larger the feature vectors, the better" + (f" ({n:,} train images)" if n else "")
                      if fname == "dimension.png" else "the more training data, the better (labels: time per point)")
                     + (f"\nFashion-MNIST, {test:,} test images" if test else ""), fontsize=10)
        fig.tight_layout()
        fig.savefig(out / fname)
        plt.close(fig)


def report_section(out) -> str:
    """Markdown for a report: the two plots and the table of OUT (as written by `run`)."""
    out = Path(out)
    results = json.loads((out / "curves.json").read_text())
    return ("## The 2011 lessons as curves\n\n![accuracy against feature dimension](dimension.png)\n"
            "![accuracy against training-set size](data.png)\n\n" + markdown_table(results))
