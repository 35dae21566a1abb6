"""Benchmark of the classical pipelines on Fashion-MNIST, against scikit-image + scikit-learn
on the same machine, data and features, in one run (the targets of issue 5).

    python -m jaxnet.classical.bench [--data-dir DIR] [--ftol F] [--skip-fisher] [--out results.json]

Steps: (1) scikit-image HOG (4x4-pixel cells, 2x2 blocks, 9 bins, L2-Hys) on all 70k images
and scikit-learn LinearSVC (C=1) on it; (2) jaxnet's full-batch SVM on the *same* features and
the same objective (squared hinge, lam = 1 / (C n)); (3) the jaxnet HOG + LBP features and the
hinge-loss SVM, full-batch and averaged SGD; (4) HOG + LBP through the chi-squared kernel map
plus dense-SIFT Fisher vectors. Needs scikit-image and scikit-learn (test extras).
"""
import argparse
import json
import os
import time

import jax
import numpy as np

from jaxnet.classical import pipeline, sgd, svm
from jaxnet.config import HOG_LBP_FEATURES, KERNEL_FISHER_FEATURES
from jaxnet.data import sources


def load_fashion_mnist(data_dir: str = ""):
    """(train images [60000, 28, 28, 1] uint8, train labels, test images, test labels), found
    the way the CNN configs find them (jaxnet.data.sources)."""
    train, test = (sources.load_fashion_mnist(split, data_dir) for split in ("train", "test"))
    return train.images, train.labels, test.images, test.labels


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
    pipeline.extract_features(images[:1024], config, state)
    return _timed(pipeline.extract_features, images, config, state)


def run(data_dir: str, skip_fisher: bool, ftol: float = 3e-4) -> dict:
    from skimage.feature import hog as sk_hog
    from sklearn.svm import LinearSVC

    xtr, ytr, xte, yte = load_fashion_mnist(data_dir)
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
    feats, t = _extract(images, HOG_LBP_FEATURES)
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
        state, t_fit = _timed(pipeline.fit_features, xtr, KERNEL_FISHER_FEATURES,
                              key=jax.random.PRNGKey(0))
        feats, t = _extract(images, KERNEL_FISHER_FEATURES, state)
        f_tr, f_te = feats[:n], feats[n:]
        del feats
        (params, info), t_svm = _timed(svm.fit_svm, f_tr, ytr, lam=3e-4, loss="squared_hinge", tol=1e-2, ftol=1e-3,
                                       max_iter=300)
        report("jaxnet_kernel_map_fisher", test_acc=_accuracy(params, f_te, yte), dim=f_tr.shape[1],
               encoder_fit_seconds=t_fit, images_per_sec=n_img / t, fit_seconds=t_svm,
               iterations=info["iterations"], stopped_by=info["stopped_by"])
    return r


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--ftol", type=float, default=3e-4,
                        help="stopping tolerance of jaxnet's solver in step (2), the LinearSVC comparison")
    parser.add_argument("--skip-fisher", action="store_true", help="skip step (4), the slowest")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    results = run(args.data_dir, args.skip_fisher, args.ftol)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
