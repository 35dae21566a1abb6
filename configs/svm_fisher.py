"""The 2011-style classical pipeline: dense SIFT (+ colour statistics) -> PCA -> GMM -> improved
Fisher vectors with a spatial pyramid (1x1 + 2x2 + 3x1), plus HOG + LBP through the chi-squared
kernel map (a linear SVM on it approximates an additive-kernel SVM) -> linear SVM.

Fashion-MNIST (the default; runs on a 2-core CPU, needs ~8 GB of RAM: peak RSS 7.0 GB here,
with the 60,000 x 16,592 float32 train features, 4.0 GB, written straight to the SVM's devices):
  Run:      python train.py --config=configs/svm_fisher.py
  Evaluate: python eval.py --config=configs/svm_fisher.py --workdir=workdirs/svm_fisher
  Expected: >= 92.6% test top-1 (the published HOG + kernel-SVM result). Measured here (2-core
  CPU): 92.73% top-1, 99.77% top-5 (eval.py on the workdir: the same figures). The whole
  command took 1 min 48 s with a warm compilation cache (encoder 9.5 s, features 42.6 s, SVM
  fit 38.3 s; docs/results.md).
ImageNet (ILSVRC-2012; needs the ImageNet input pipeline and ~130 GB of disk in the workdir):
  Run:      python train.py --config=configs/svm_fisher.py:imagenet --workdir=workdirs/svm_fisher_imagenet
  Evaluate: python eval.py --config=configs/svm_fisher.py:imagenet --workdir=workdirs/svm_fisher_imagenet
  Expected: not measured (no ImageNet here). XRCE's ILSVRC-2011 entry (SIFT + colour Fisher
  vectors, K=256, compressed) reached 45.7% top-1 / 25.7% top-5 error; with the smaller
  vocabulary used here (K=64, PCA-64 SIFT / PCA-32 colour, pyramid 1x1 + 3x1, 49,152 dims) expect
  a few points worse, roughly 50-55% top-1 error.
"""
from jaxnet.classical.recipes import KERNEL_FISHER_FEATURES, classical_features
from jaxnet.presets import fashion_mnist_config, imagenet_config

VARIANTS = ("fashion_mnist", "imagenet")


def get_config(arg=None):
    variant = arg or "fashion_mnist"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of svm_fisher; choose one of {VARIANTS}")
    c = fashion_mnist_config() if variant == "fashion_mnist" else imagenet_config()
    c.method = "classical"
    # HOG + LBP through the chi2 map + dense-SIFT Fisher vectors (16,592 dims; see jaxnet/config.py)
    c.classical.features = classical_features(KERNEL_FISHER_FEATURES)
    c.classical.solver = "full_batch"
    c.classical.loss = "squared_hinge"  # ~0.4 points better than the hinge on these features
    c.classical.lam = 3e-4  # the kernel map needs more regularisation than HOG + LBP
    c.classical.tol = 1e-2
    c.classical.ftol = 1e-3
    c.classical.max_iter = 300
    c.classical.encoder_images = 5000
    c.classical.encoder_descriptors = 100_000
    c.eval_batch_size = 500  # images per feature-extraction batch (dense SIFT every pixel)
    if variant == "imagenet":
        c.image_size = 128  # resize + centre crop
        c.eval_resize = -1  # shorter side 146 (128 x 256/224) before the centre crop
        pyramid = ((1, 1), (3, 1))
        c.classical.features = {
            "fisher": [{"descriptor": "sift", "bin_sizes": (4, 6, 8), "step": 4, "pca_dim": 64,
                        "components": 64, "pyramid": pyramid},
                       {"descriptor": "colour", "bin_sizes": (4, 6, 8), "step": 4, "pca_dim": 32,
                        "components": 64, "pyramid": pyramid}],
        }
        c.classical.solver = "sgd"  # averaged SGD streamed from WORKDIR/features/
        c.classical.feature_store = "disk"
        c.classical.feature_dtype = "float16"
        c.classical.loss = "hinge"
        c.classical.lam = 1e-6
        c.classical.epochs = 10
        c.classical.encoder_images = 4000  # their descriptors are held on the host: ~5 GB
        c.classical.encoder_descriptors = 500_000
        c.batch_size = 1024  # SGD minibatch
        c.eval_batch_size = 256
    return c
