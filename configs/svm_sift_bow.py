"""The first attempt of the classical years: dense SIFT -> k-means visual words -> spatial-pyramid
bag-of-words histograms -> chi-squared kernel map -> linear SVM (the seed quotes ~80% top-1 error
for SIFT + bag of words + SVM on ImageNet).

Fashion-MNIST (the default; runs on a 2-core CPU, ~6 GB of RAM for the 60,000 x 12,288 float32
train features on the SVM's devices):
  Run:      python train.py --config=configs/svm_sift_bow.py
  Evaluate: python eval.py --config=configs/svm_sift_bow.py --workdir=workdirs/svm_sift_bow
  Expected: >= 90% test top-1. Measured with the two commands above (2-core AMD EPYC shared with
  other jobs, load average ~10, 2026-12-07): 90.89% test top-1, 99.70% top-5 (eval.py: the same
  figures, 10,000 test images in 95 s). train.py took 33 min 30 s in all: codebook 808 s (k-means
  on 100,000 descriptors of 5,000 train images), train features 677 s (89 images/s), SVM fit
  391 s (45 L-BFGS iterations); peak RSS 5.3 GB. A second train.py on the same workdir restores
  the fitted codebook and SVM instead of refitting.
  Features: dense SIFT (2, 3, 4 px bins, every 2 px; PCA 64) -> soft assignment to the 5 nearest
  of 512 k-means words -> histograms per pyramid region (1x1 + 2x2 + 3x1) -> chi2 map (order 1):
  12,288 dims (jaxnet.classical.recipes.SIFT_BOW_FEATURES).
ImageNet (ILSVRC-2012; needs the ImageNet input pipeline and ~80 GB of disk in the workdir):
  Run:      python train.py --config=configs/svm_sift_bow.py:imagenet --workdir=workdirs/svm_sift_bow_imagenet
  Evaluate: python eval.py --config=configs/svm_sift_bow.py:imagenet --workdir=workdirs/svm_sift_bow_imagenet
  Expected: not measured (no ImageNet here). The bag-of-words entries of ILSVRC 2010 were
  around 70-80% top-1 error; this version (2,048 words, pyramid 1x1 + 2x2, 30,720 dims with the
  chi2 map) should land in that range.
"""
from jaxnet.classical.recipes import SIFT_BOW_FEATURES, classical_features
from jaxnet.presets import fashion_mnist_config, imagenet_config

VARIANTS = ("fashion_mnist", "imagenet")


def get_config(arg=None):
    variant = arg or "fashion_mnist"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of svm_sift_bow; choose one of {VARIANTS}")
    c = fashion_mnist_config() if variant == "fashion_mnist" else imagenet_config()
    c.method = "classical"
    c.classical.features = classical_features(SIFT_BOW_FEATURES)
    c.classical.solver = "full_batch"
    c.classical.loss = "squared_hinge"
    c.classical.lam = 1e-4
    c.classical.tol = 1e-2
    c.classical.ftol = 1e-3
    c.classical.max_iter = 300
    c.classical.encoder_images = 5000  # the codebook: k-means on descriptors of these train images,
    c.classical.encoder_descriptors = 100_000  # ... at most this many of them (PCA too),
    c.classical.em_iters = 30  # ... at most this many Lloyd iterations
    c.eval_batch_size = 500  # images per feature-extraction batch
    if variant == "imagenet":
        c.image_size = 128  # resize + centre crop
        c.eval_resize = -1  # shorter side 146 (128 x 256/224) before the centre crop
        c.classical.features = {
            "bow": {"descriptor": "sift", "bin_sizes": (4, 6, 8), "step": 4, "pca_dim": 64, "words": 2048,
                    "assign": "soft", "neighbours": 5, "pyramid": ((1, 1), (2, 2))},
            "kernel_map": {"order": 1, "period": 0.5},
        }
        c.classical.solver = "sgd"  # averaged SGD streamed from WORKDIR/features/
        c.classical.feature_store = "disk"
        c.classical.feature_dtype = "float16"
        c.classical.loss = "hinge"
        c.classical.lam = 1e-6
        c.classical.epochs = 10
        c.classical.encoder_images = 4000  # their descriptors are held on the host: ~4.5 GB
        c.classical.encoder_descriptors = 500_000
        c.batch_size = 1024  # SGD minibatch
        c.eval_batch_size = 256
    return c
