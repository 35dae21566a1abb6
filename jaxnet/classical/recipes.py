"""The classical pipelines' Fashion-MNIST feature recipes (blocks of
jaxnet.classical.feature_pipeline): what configs/svm_*.py train and `python -m jaxnet
bench_classical` measures. Plain data, so a config file can read them without starting JAX.
Copy before use (configs would share nested lists otherwise): `classical_features(recipe)`.
"""
import copy

_PYRAMID = ((1, 1), (2, 2), (3, 1))
# HOG + LBP (configs/svm_hog_lbp.py, the bench's step 3).
HOG_LBP_FEATURES = {"hog": {"cell": 4, "block": 2, "soft": True, "spatial": "bilinear"},
                    "lbp": {"cell": 7}}
# HOG (cells of 4 and 7 px) + LBP (cells of 7 and 14 px) through the chi2 map (8,400 dims) +
# Fisher vectors of dense SIFT (3 and 4 px bins, every pixel; PCA 32, K 16, 8 regions; 8,192 dims).
KERNEL_FISHER_FEATURES = {
    "hog": [{"cell": 4, "block": 2, "soft": True, "spatial": "bilinear"},
            {"cell": 7, "block": 2, "soft": True, "spatial": "bilinear"}],
    "lbp": [{"cell": 7}, {"cell": 14}],
    "kernel_map": {"order": 1, "period": 0.5},
    "fisher": {"descriptor": "sift", "bin_sizes": (3, 4), "step": 1, "pca_dim": 32, "components": 16,
               "weight": 2.0},
}


# Bag of visual words (configs/svm_sift_bow.py): dense SIFT (2, 3, 4 px
# bins, every 2 px; PCA 64) -> soft assignment to the 5 nearest of 512 k-means words -> pyramid
# 1x1 + 2x2 + 3x1 histograms -> chi2 map: 12,288 dims.
SIFT_BOW_FEATURES = {
    "bow": {"descriptor": "sift", "bin_sizes": (2, 3, 4), "step": 2, "pca_dim": 64, "words": 512,
            "assign": "soft", "neighbours": 5, "sigma": 1.0, "pyramid": _PYRAMID},
    "kernel_map": {"order": 1, "period": 0.5},
}
# NEC 2010's coding step: dense HOG blocks (cells of 3 and 4 px: 100 x 36-d) and LBP histograms of
# 8 px windows every 2 px (121 x 59-d, PCA 32), each super-vector coded on 32 k-means words and
# average-pooled over the pyramid 1x1 + 2x2 + 3x1 (9,472 + 8,448 dims), beside the global HOG + LBP
# vectors of svm_hog_lbp (2,240 dims): 20,160 dims.
NEC2010_FEATURES = {
    "hog": {"cell": 4, "block": 2, "soft": True, "spatial": "bilinear"},
    "lbp": {"cell": 7},
    "coding": [{"descriptor": "hog", "cells": (3, 4), "method": "super_vector", "words": 32, "pyramid": _PYRAMID},
               {"descriptor": "lbp", "windows": (8,), "step": 2, "pca_dim": 32, "method": "super_vector",
                "words": 32, "pyramid": _PYRAMID}],
}


def classical_features(recipe: dict) -> dict:
    """A private copy of a feature recipe above, to put in config.classical.features."""
    return copy.deepcopy(recipe)
