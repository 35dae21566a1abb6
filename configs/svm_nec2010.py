"""The ILSVRC-2010 winner's coding step (NEC-UIUC, Lin et al. 2011): dense HOG and LBP local
descriptors -> super-vector coding on k-means codebooks -> spatial-pyramid average pooling ->
linear SVM, beside the global HOG + LBP vectors of configs/svm_hog_lbp.py (that config is the same
descriptors without the coding step: 91.43% on Fashion-MNIST).

Fashion-MNIST (the default; runs on a 2-core CPU, ~9 GB of RAM for the 60,000 x 20,160 float32
train features on the SVM's devices):
  Run:      python train.py --config=configs/svm_nec2010.py
  Evaluate: python eval.py --config=configs/svm_nec2010.py --workdir=workdirs/svm_nec2010
  Expected: above svm_hog_lbp's 91.43% test top-1. Measured with the two commands above (2-core
  AMD EPYC shared with other jobs, load average ~10, 2026-12-07): 92.42% test top-1, 99.82% top-5
  (eval.py: the same figures, 10,000 test images in 34 s). train.py took 18 min 22 s in all:
  codebooks 172 s (k-means on 100,000 descriptors of 5,000 train images per coded block), train
  features 319 s (188 images/s), SVM fit 531 s (55 L-BFGS iterations); peak RSS 8.3 GB. A
  second train.py on the same workdir restores the fitted codebooks and SVM instead of refitting.
  Features: global HOG (4 px cells, trilinear votes) + LBP (7 px cells), 2,240 dims, then HOG
  blocks (2x2 cells of 3 and 4 px, 9 bins, trilinear votes: 100 x 36-d per image) and
  uniform-LBP histograms of 8 px windows every 2 px (121 x 59-d, PCA 32), each super-vector
  coded on 32 k-means words, pooled over 1x1 + 2x2 + 3x1 regions: 20,160 dims in all
  (jaxnet.classical.recipes.NEC2010_FEATURES; `"method": "llc"` selects local coordinate coding
  (LLC) with max pooling instead).
ImageNet (ILSVRC-2012; needs the ImageNet input pipeline and ~125 GB of disk in the workdir):
  Run:      python train.py --config=configs/svm_nec2010.py:imagenet --workdir=workdirs/svm_nec2010_imagenet
  Evaluate: python eval.py --config=configs/svm_nec2010.py:imagenet --workdir=workdirs/svm_nec2010_imagenet
  Expected: not measured (no ImageNet here). NEC-UIUC's entry (HOG + LBP at several scales, LCC
  and super-vector codes of far larger codebooks, averaged-SGD SVMs) reached 47.1% top-1 / 28.2%
  top-5 error; this smaller version (128 px images, 128 words, pyramid 1x1 + 3x1, 35,840 coded +
  11,876 global dims) should be clearly worse, roughly 55-65% top-1 error.
"""
from jaxnet.classical.recipes import NEC2010_FEATURES, classical_features
from jaxnet.presets import fashion_mnist_config, imagenet_config

VARIANTS = ("fashion_mnist", "imagenet")


def get_config(arg=None):
    variant = arg or "fashion_mnist"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of svm_nec2010; choose one of {VARIANTS}")
    c = fashion_mnist_config() if variant == "fashion_mnist" else imagenet_config()
    c.method = "classical"
    c.classical.features = classical_features(NEC2010_FEATURES)
    c.classical.solver = "full_batch"
    c.classical.loss = "squared_hinge"
    c.classical.lam = 1e-4
    c.classical.tol = 1e-2
    c.classical.ftol = 1e-3
    c.classical.max_iter = 300
    c.classical.encoder_images = 5000  # the codebooks: k-means on descriptors of these train images,
    c.classical.encoder_descriptors = 100_000  # ... at most this many of them (PCA too),
    c.classical.em_iters = 50  # ... at most this many Lloyd iterations
    c.eval_batch_size = 500  # images per feature-extraction batch
    if variant == "imagenet":
        c.image_size = 128  # resize + centre crop
        c.eval_resize = -1  # shorter side 146 (128 x 256/224) before the centre crop
        pyramid = ((1, 1), (3, 1))
        c.classical.features = {
            "hog": {"cell": 8, "block": 2, "soft": True, "spatial": "bilinear"},  # svm_hog_lbp:imagenet's
            "lbp": {"cell": 16},
            "coding": [{"descriptor": "hog", "cells": (8, 16), "method": "super_vector", "words": 128,
                        "pyramid": pyramid},
                       {"descriptor": "lbp", "windows": (16, 32), "step": 8, "pca_dim": 32,
                        "method": "super_vector", "words": 128, "pyramid": pyramid}],
        }
        c.classical.solver = "sgd"  # averaged SGD streamed from WORKDIR/features/ (NEC 2010's solver)
        c.classical.feature_store = "disk"
        c.classical.feature_dtype = "float16"
        c.classical.loss = "hinge"
        c.classical.lam = 1e-6
        c.classical.epochs = 10
        c.classical.encoder_images = 4000
        c.classical.encoder_descriptors = 500_000
        c.batch_size = 1024  # SGD minibatch
        c.eval_batch_size = 256
    return c
