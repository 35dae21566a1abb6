"""Benchmark of the classical pipelines on Fashion-MNIST, against scikit-image + scikit-learn
on the same machine, data and features, in one run.

    python -m jaxnet bench_classical [--data-dir DIR] [--ftol F] [--skip-fisher] [--coding-only]
                                     [--images N] [--out results.json]

Steps: (1) scikit-image HOG (4x4-pixel cells, 2x2 blocks, 9 bins, L2-Hys) on all 70k images
and scikit-learn LinearSVC (C=1) on it; (2) jaxnet's full-batch SVM on the *same* features and
the same objective (squared hinge, lam = 1 / (C n)); (3) the jaxnet HOG + LBP features and the
hinge-loss SVM, full-batch and averaged SGD; (4) HOG + LBP through the chi-squared kernel map
plus dense-SIFT Fisher vectors; (5) feature extraction of bag of words and NEC 2010 coding against the same
recipe written with scikit-image + scikit-learn + numpy on the same images: bag of words
(`recipes.SIFT_BOW_FEATURES`; scikit-image has no dense SIFT, so its dense gradient descriptor,
DAISY, at the same three scales stands in) and the NEC 2010 coding step
(the coding blocks of `recipes.NEC2010_FEATURES`: scikit-image HOG blocks and LBP window
histograms, PCA, nearest words by scikit-learn, super-vector pooling in numpy). `--coding-only` runs step (5) alone,
`--images N` sets how many images it times (default 10,000). Needs scikit-image and
scikit-learn (test extras).
"""
import argparse
import copy
import json
import os
import time

import jax
import numpy as np

from jaxnet.classical import feature_pipeline, recipes, sgd, svm
from jaxnet.data import sources


def _timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def _accuracy(params, x, y):
    return float(np.mean(np.asarray(svm.predict(params, x)) == y))


def _squared_hinge_objective(w, b, x, y, lam):
    """lam/2 (|w|^2 + |b|^2) + mean over examples of the one-vs-rest squared hinge (liblinear's
    LinearSVC objective divided by C n, with its intercept_scaling=1 bias)."""
    s = x @ w + b
    sign = 2.0 * np.eye(w.shape[1])[y] - 1.0
    return float(0.5 * lam * (np.sum(w * w) + np.sum(b * b)) + np.mean(np.sum(np.maximum(0, 1 - sign * s) ** 2, 1)))


def _extract(images, config, state=None):
    """Features of all images, timed after a warm-up call that compiles the jitted code."""
    feature_pipeline.extract_features(images[:1024], config, state)
    return _timed(feature_pipeline.extract_features, images, config, state)


def run(data_dir: str, skip_fisher: bool, ftol: float = 3e-4) -> dict:
    from skimage.feature import hog as sk_hog
    from sklearn.svm import LinearSVC

    xtr, ytr, xte, yte = sources.fashion_mnist_arrays(data_dir)
    images = np.concatenate([xtr, xte])
    n_img, n = len(images), len(ytr)
    r = {"devices": [str(d) for d in jax.devices()], "cpu_count": os.cpu_count()}

    def report(key, **values):
        r[key] = values
        print(key, json.dumps(values), flush=True)

    # (1) the scikit-image + scikit-learn baseline
    feats, t = _timed(lambda: np.stack([
        sk_hog(im[..., 0], orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2), block_norm="L2-Hys")
        for im in images]).astype(np.float32))
    report("skimage_hog", images_per_sec=n_img / t, seconds=t, dim=feats.shape[1])
    sk_tr, sk_te = feats[:n], feats[n:]
    model, t = _timed(LinearSVC(C=1.0).fit, sk_tr, ytr)
    lam = svm.lam_from_c(1.0, n)
    report("sklearn_linearsvc_on_skimage_hog", fit_seconds=t, test_acc=float(np.mean(model.predict(sk_te) == yte)),
           objective=_squared_hinge_objective(model.coef_.T, model.intercept_, sk_tr, ytr, lam))
    sklearn_seconds = t

    # (2) jaxnet's full-batch solver on the same features and objective
    params, t = _timed(svm.fit_svm, sk_tr, ytr, lam=lam, loss="squared_hinge", tol=1e-2, ftol=ftol, max_iter=1000)
    params, info = params
    report("jaxnet_svm_on_skimage_hog", fit_seconds=t, test_acc=_accuracy(params, sk_te, yte),
           objective=_squared_hinge_objective(np.asarray(params["w"]), np.asarray(params["b"]), sk_tr, ytr, lam),
           iterations=info["iterations"], stopped_by=info["stopped_by"], speedup_vs_sklearn=sklearn_seconds / t,
           ftol=ftol)

    # (3) the jaxnet HOG + LBP pipeline with the hinge loss
    feats, t = _extract(images, recipes.HOG_LBP_FEATURES)
    report("jaxnet_hog_lbp_features", images_per_sec=n_img / t, seconds=t, dim=feats.shape[1],
           speedup_vs_skimage=(n_img / t) / r["skimage_hog"]["images_per_sec"])
    f_tr, f_te = feats[:n], feats[n:]
    (params, info), t = _timed(svm.fit_svm, f_tr, ytr, lam=1e-5, loss="hinge", smoothing=0.1, min_smoothing=0.1,
                               tol=1e-2, ftol=1e-3, max_iter=500)
    report("jaxnet_hog_lbp_hinge_svm_full_batch", fit_seconds=t, test_acc=_accuracy(params, f_te, yte),
           iterations=info["iterations"], stopped_by=info["stopped_by"], objective=info["primal"],
           speedup_vs_sklearn=sklearn_seconds / t)
    (params, info), t = _timed(sgd.fit_svm_sgd, f_tr, ytr, lam=1e-5, loss="hinge", epochs=5, eta0=0.1)
    report("jaxnet_hog_lbp_hinge_svm_averaged_sgd", fit_seconds=t, test_acc=_accuracy(params, f_te, yte),
           epochs=info["epochs"], objective=info["primal"], speedup_vs_sklearn=sklearn_seconds / t)
    del feats, f_tr, f_te

    # (4) kernel map + Fisher vectors
    if not skip_fisher:
        state, t_fit = _timed(feature_pipeline.fit_features, xtr, recipes.KERNEL_FISHER_FEATURES,
                              key=jax.random.PRNGKey(0))
        feats, t = _extract(images, recipes.KERNEL_FISHER_FEATURES, state)
        f_tr, f_te = feats[:n], feats[n:]
        del feats
        (params, info), t_svm = _timed(svm.fit_svm, f_tr, ytr, lam=3e-4, loss="squared_hinge", tol=1e-2, ftol=1e-3,
                                       max_iter=300)
        report("jaxnet_kernel_map_fisher", test_acc=_accuracy(params, f_te, yte), dim=f_tr.shape[1],
               encoder_fit_seconds=t_fit, images_per_sec=n_img / t, fit_seconds=t_svm,
               iterations=info["iterations"], stopped_by=info["stopped_by"])
    return r


# ---- (5) bag of words and coding against scikit-image + scikit-learn -----------------------

def _nearest(desc, words, k):
    """(indices [n, k], squared distances [n, k]) of the k nearest words (scikit-learn)."""
    from sklearn.neighbors import NearestNeighbors

    dist, index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(words).kneighbors(desc)
    return index, dist**2


def _pyramid_cells(positions, levels):
    """Region index [M, L] of each descriptor at each pyramid level (numpy)."""
    cols, offset = [], 0
    for rows, ncols in levels:
        ry = np.clip(np.floor(positions[:, 0] * rows), 0, rows - 1).astype(int)
        rx = np.clip(np.floor(positions[:, 1] * ncols), 0, ncols - 1).astype(int)
        cols.append(offset + ry * ncols + rx)
        offset += rows * ncols
    return np.stack(cols, axis=1), offset


class SkimageBow:
    """The bag-of-words recipe of a `bow` block with scikit-image DAISY descriptors (radius 2x
    the SIFT bin size, i.e. patches of the same size, same step) + scikit-learn PCA, nearest
    words and chi2 sampler + numpy histograms. The words are random projected descriptors:
    codebook quality does not change the extraction cost, which is what is measured."""

    def __init__(self, images, opts, kmap, seed=0):
        from sklearn.decomposition import PCA
        from sklearn.kernel_approximation import AdditiveChi2Sampler

        self.opts, self.kmap = opts, kmap
        sample = np.concatenate([self.descriptors(im)[0] for im in images[:200]])
        self.pca = PCA(opts.get("pca_dim", 64), random_state=seed).fit(sample)
        words = self.pca.transform(sample)
        self.words = words[np.random.default_rng(seed).choice(len(words), opts["words"], replace=False)]
        self.sigma = float(np.sqrt(np.mean(_nearest(words[:2000], self.words, 1)[1])))
        dim = len(opts["pyramid"]) and sum(a * b for a, b in opts["pyramid"]) * opts["words"]
        self.chi2 = AdditiveChi2Sampler(sample_steps=kmap["order"] + 1, sample_interval=kmap["period"]).fit(
            np.zeros((1, dim)))

    def descriptors(self, image):
        from skimage.feature import daisy

        h, w = image.shape[:2]
        out, pos = [], []
        for b in self.opts["bin_sizes"]:
            d = daisy(image[..., 0] / 255.0, step=self.opts["step"], radius=2 * b, rings=2, histograms=6,
                      orientations=8)
            cy = (2 * b + self.opts["step"] * np.arange(d.shape[0])) / h
            cx = (2 * b + self.opts["step"] * np.arange(d.shape[1])) / w
            out.append(d.reshape(-1, d.shape[-1]))
            pos.append(np.stack(np.meshgrid(cy, cx, indexing="ij"), -1).reshape(-1, 2))
        return np.concatenate(out), np.concatenate(pos)

    def __call__(self, images, batch=500):
        feats = []
        for s in range(0, len(images), batch):
            chunk = [self.descriptors(im) for im in images[s : s + batch]]
            m = len(chunk[0][0])
            cells, r = _pyramid_cells(chunk[0][1], self.opts["pyramid"])
            desc = self.pca.transform(np.concatenate([d for d, _ in chunk]))
            index, d2 = _nearest(desc, self.words, self.opts.get("neighbours", 5))
            wgt = np.exp(-(d2 - d2[:, :1]) / (2 * self.sigma**2))
            wgt /= wgt.sum(1, keepdims=True)
            k, n = len(self.words), len(chunk)
            hist = np.zeros((n, r * k))
            img = np.repeat(np.arange(n), m)
            for level in range(cells.shape[1]):
                flat = (np.tile(cells[:, level], n) * k)[:, None] + index
                np.add.at(hist, (np.repeat(img, index.shape[1]), flat.ravel()), wgt.ravel())
            count = np.bincount(cells.ravel(), minlength=r)
            hist = (hist.reshape(n, r, k) / count[None, :, None]).reshape(n, -1)
            feats.append(self.chi2.transform(hist).astype(np.float32))
        return np.concatenate(feats)


class SkimageNec:
    """The NEC 2010 coding recipe (`coding` blocks with super-vector coding) with scikit-image
    HOG blocks (`feature_vector=False`) and `local_binary_pattern` ("nri_uniform"), LBP window
    histograms from an integral image and the pooling in numpy, nearest words by scikit-learn,
    with jaxnet's fitted PCA and codebooks: for HOG blocks with box votes (scikit-image's; the
    config's trilinear votes have no scikit-image equivalent) the features equal jaxnet's, except
    in images where a descriptor is almost equidistant to two words (float64 here, float32 there)
    or a gradient angle falls on an orientation-bin edge."""

    def __init__(self, blocks, state):
        self.blocks, self.state = blocks, [jax.tree.map(np.asarray, st) for st in state["coding"]]

    @staticmethod
    def descriptors(image, opts):
        from skimage.feature import hog as sk_hog
        from skimage.feature import local_binary_pattern

        im = image[..., 0].astype(np.float32) / 255.0
        h, w = im.shape
        out, pos = [], []
        if opts["descriptor"] == "hog":
            for c in opts["cells"]:
                d = sk_hog(im, orientations=9, pixels_per_cell=(c, c), cells_per_block=(2, 2), block_norm="L2-Hys",
                           feature_vector=False)
                cy, cx = (np.arange(d.shape[0]) * c + c) / h, (np.arange(d.shape[1]) * c + c) / w
                out.append(d.reshape(-1, 36))
                pos.append(np.stack(np.meshgrid(cy, cx, indexing="ij"), -1).reshape(-1, 2))
        else:
            labels = local_binary_pattern(im, 8, 1, "nri_uniform").astype(int)
            onehot = np.zeros((h + 1, w + 1, 59))
            onehot[1:, 1:][np.arange(h)[:, None], np.arange(w)[None, :], labels] = 1
            integral = onehot.cumsum(0).cumsum(1)
            step = opts["step"]
            for win in opts["windows"]:
                s, t = np.arange(0, h - win + 1, step), np.arange(0, w - win + 1, step)
                hist = (integral[s[:, None] + win, t[None] + win] - integral[s[:, None], t[None] + win]
                        - integral[s[:, None] + win, t[None]] + integral[s[:, None], t[None]]) / win**2
                out.append(hist.reshape(-1, 59))
                pos.append(np.stack(np.meshgrid((s + win / 2) / h, (t + win / 2) / w, indexing="ij"), -1).reshape(-1, 2))
        return np.concatenate(out), np.concatenate(pos)

    def __call__(self, images, batch=500):
        from sklearn.metrics import pairwise_distances_argmin

        feats = []
        for start in range(0, len(images), batch):
            chunk_images = images[start : start + batch]
            n, parts = len(chunk_images), []
            for opts, st in zip(self.blocks, self.state):
                chunk = [self.descriptors(im, opts) for im in chunk_images]
                m = len(chunk[0][0])
                cells, r = _pyramid_cells(chunk[0][1], opts["pyramid"])
                desc = np.concatenate([d for d, _ in chunk])
                if "pca" in st:
                    desc = (desc - st["pca"]["mean"]) @ st["pca"]["components"] * st["pca"]["scale"]
                words = st["centres"]
                word = pairwise_distances_argmin(desc, words)
                k, d = words.shape
                sums = np.zeros((n * r * k, d + 1))
                img = np.repeat(np.arange(n), m)
                rows = np.concatenate([np.ones((len(desc), 1)), desc], axis=1)
                for level in range(cells.shape[1]):
                    np.add.at(sums, (img * r + np.tile(cells[:, level], n)) * k + word, rows)
                sums = sums.reshape(n, r, k, d + 1)
                num = sums[..., 0]
                root_p = np.sqrt(num / np.bincount(cells.ravel(), minlength=r)[None, :, None])[..., None]
                diff = np.where(num[..., None] > 0, sums[..., 1:] / np.maximum(num, 1)[..., None] - words, 0.0)
                v = np.concatenate([opts.get("s", 1.0) * st["scale"] * root_p, root_p * diff], -1).reshape(n, r, -1)
                if opts.get("power", 1.0) != 1.0:
                    v = np.sign(v) * np.abs(v) ** opts["power"]
                v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
                parts.append((v / np.sqrt(r)).reshape(n, -1))
            feats.append(np.concatenate(parts, axis=1).astype(np.float32))
        return np.concatenate(feats)


def _block_list(entries):
    return [entries] if isinstance(entries, dict) else list(entries)


def nec_box_recipe() -> dict:
    """The coding blocks of recipes.NEC2010_FEATURES (its global HOG + LBP blocks are step (3)'s)
    with box-voted HOG blocks (scikit-image's), for the like-for-like timing."""
    recipe = {"coding": copy.deepcopy(recipes.NEC2010_FEATURES["coding"])}
    for block in _block_list(recipe["coding"]):
        if block["descriptor"] == "hog":
            block.update(soft=False, spatial="box")
    return recipe


def run_bow_and_coding(data_dir: str, count: int = 10_000, report=None) -> dict:
    """Step (5): images/s of the bag-of-words and NEC 2010 feature extraction, jaxnet vs
    scikit-image + scikit-learn + numpy, on the same `count` Fashion-MNIST train images (the
    fits and a warm-up call are not timed)."""
    xtr, _, _, _ = sources.fashion_mnist_arrays(data_dir)
    images = xtr[:count]
    r = {}
    report = report or (lambda key, **v: print(key, json.dumps(v), flush=True))
    bow_recipe, nec_recipe = recipes.SIFT_BOW_FEATURES, nec_box_recipe()
    for name, recipe in (("bow", bow_recipe), ("nec2010", nec_recipe)):
        state = feature_pipeline.fit_features(xtr[:5000], recipe, key=jax.random.PRNGKey(0), em_iters=10)
        rest = len(images) % 1024  # compile for the last, shorter batch too: not timed
        if rest:
            feature_pipeline.extract_features(images[:rest], recipe, state)
        feats, t_jax = _extract(images, recipe, state)
        if name == "bow":
            base = SkimageBow(images, recipe_opts(recipe, "bow"), recipe["kernel_map"])
        else:
            base = SkimageNec([recipe_opts({"coding": b}, "coding") for b in _block_list(recipe["coding"])], state)
        base(images[:8])  # warm-up
        ref, t_ref = _timed(base, images)
        values = {"images": len(images), "jaxnet_images_per_sec": len(images) / t_jax, "jaxnet_seconds": t_jax,
                  "jaxnet_dim": int(feats.shape[1]), "baseline_images_per_sec": len(images) / t_ref,
                  "baseline_seconds": t_ref, "baseline_dim": int(ref.shape[1]), "speedup": t_ref / t_jax}
        if name == "nec2010":  # the same recipe and fitted state: the same features, except where a
            # descriptor is almost equidistant to two words (float32 vs float64 distances)
            worst = np.max(np.abs(ref - feats), axis=1)
            values["images_with_equal_features"] = float(np.mean(worst < 1e-4))
            values["median_max_abs_feature_difference"] = float(np.median(worst))
        r[name] = values
        report(f"{name}_feature_throughput", **values)
    return r


def recipe_opts(recipe, kind):
    """The options of the (first) `kind` block of a feature recipe, with the pipeline's defaults."""
    opts = dict(_block_list(recipe[kind])[0])
    opts.setdefault("pyramid", ((1, 1), (2, 2), (3, 1)))
    return opts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxnet bench_classical", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--ftol", type=float, default=3e-4,
                        help="stopping tolerance of jaxnet's solver in step (2), the LinearSVC comparison")
    parser.add_argument("--skip-fisher", action="store_true", help="skip step (4), the slowest")
    parser.add_argument("--coding-only", action="store_true", help="run only step (5): bag of words and coding")
    parser.add_argument("--images", type=int, default=10_000, help="images timed in step (5)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results = {} if args.coding_only else run(args.data_dir, args.skip_fisher, args.ftol)
    results["bow_and_coding"] = run_bow_and_coding(args.data_dir, args.images)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0
