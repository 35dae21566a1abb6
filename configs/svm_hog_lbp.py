"""The 2010-style classical pipeline: HOG + uniform LBP features -> one-vs-rest linear hinge SVM.

Fashion-MNIST (the default; runs on a 2-core CPU):
  Run:      python train.py --config=configs/svm_hog_lbp.py
  Evaluate: python eval.py --config=configs/svm_hog_lbp.py --workdir=workdirs/svm_hog_lbp
  Expected: >= 90.0% test top-1. Measured here (2-core CPU): 91.43% top-1, 99.72% top-5
  (eval.py on the workdir: the same figures). The whole command took 29 s
  (features 14.4 s, SVM fit 8.8 s; docs/results.md).
ImageNet (ILSVRC-2012; needs the ImageNet input pipeline and ~35 GB of disk in the workdir):
  Run:      python train.py --config=configs/svm_hog_lbp.py:imagenet --workdir=workdirs/svm_hog_lbp_imagenet
  Evaluate: python eval.py --config=configs/svm_hog_lbp.py:imagenet --workdir=workdirs/svm_hog_lbp_imagenet
  Expected: not measured (no ImageNet here). The NEC-UIUC ILSVRC-2010 entry (HOG + LBP, coded
  and pooled, averaged-SGD SVMs) reached 47.1% top-1 / 28.2% top-5 error; this plain linear
  version (no coding step) should land well above that, ~60-70% top-1 error.

Features: HOG with 4x4-pixel cells (8x8 on ImageNet), 2x2 blocks, 9 unsigned bins, Dalal-Triggs
trilinear voting, L2-Hys + LBP (P=8, R=1, 59 uniform bins) per 7x7 (16x16) cells.
"""
from jaxnet.classical.recipes import HOG_LBP_FEATURES, classical_features
from jaxnet.presets import fashion_mnist_config, imagenet_config

VARIANTS = ("fashion_mnist", "imagenet")


def get_config(arg=None):
    variant = arg or "fashion_mnist"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of svm_hog_lbp; choose one of {VARIANTS}")
    c = fashion_mnist_config() if variant == "fashion_mnist" else imagenet_config()
    c.method = "classical"
    c.classical.features = classical_features(HOG_LBP_FEATURES)
    c.classical.solver = "full_batch"
    c.classical.loss = "hinge"
    c.classical.lam = 1e-5
    c.classical.smoothing = 0.1  # one smoothing level of the hinge (Huber width 0.1) is enough
    c.classical.min_smoothing = 0.1
    c.classical.tol = 1e-2
    c.classical.ftol = 1e-3
    c.classical.max_iter = 500
    c.eval_batch_size = 1000  # images per feature-extraction batch
    if variant == "imagenet":
        c.image_size = 128  # resize + centre crop: 11,876 feature dims (35 GB of float16 for 1.28M images)
        c.eval_resize = -1  # shorter side 146 (128 x 256/224) before the centre crop
        c.classical.features = {"hog": {"cell": 8, "block": 2, "soft": True, "spatial": "bilinear"},
                                "lbp": {"cell": 16}}
        c.classical.solver = "sgd"  # averaged SGD streamed from WORKDIR/features/ (NEC 2010's solver)
        c.classical.feature_store = "disk"
        c.classical.feature_dtype = "float16"
        c.classical.lam = 1e-6
        c.classical.epochs = 10
        c.classical.ftol = 1e-3
        c.batch_size = 1024  # SGD minibatch
        c.eval_batch_size = 512
    return c
