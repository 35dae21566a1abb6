"""Classical baseline in JAX: the ILSVRC 2010-11 pipelines (HOG / LBP / dense SIFT / colour
statistics, PCA + GMM Fisher vectors, k-means codebooks, bags of visual words, super-vector and
locality-constrained coding, spatial pyramids, kernel maps) and a multiclass linear
SVM with a full-batch and an averaged-SGD solver. Everything is functional; fitted state is
plain pytrees of arrays. Guide, config API and results: docs/classical.md.

The HOG and LBP functions live in their modules (jaxnet.classical.hog.hog, .lbp.lbp); they
are not re-exported here because their names are those of the modules."""
from jaxnet.classical.bow import bow_vector
from jaxnet.classical.coding import dense_hog, dense_lbp, llc_vector, super_vector
from jaxnet.classical.colour import colour_stats
from jaxnet.classical.fisher import fisher_dim, fisher_vector
from jaxnet.classical.gmm import fit_gmm, gmm_log_likelihood, gmm_posteriors
from jaxnet.classical.hog import hog_dim
from jaxnet.classical.kernel_map import chi2_map
from jaxnet.classical.kmeans import fit_kmeans, kmeans_plus_plus
from jaxnet.classical.lbp import lbp_labels
from jaxnet.classical.pca import fit_pca, pca_transform
from jaxnet.classical.feature_pipeline import extract_features, fit_features, needs_fit, parse_config, traced_features
from jaxnet.classical.pyramid import pyramid_regions
from jaxnet.classical.sgd import fit_svm_sgd
from jaxnet.classical.sharding import data_mesh
from jaxnet.classical.sift import dsift, dsift_positions
from jaxnet.classical.svm import decision_function, fit_svm, lam_from_c, predict

__all__ = [
    "bow_vector", "chi2_map", "colour_stats", "data_mesh", "decision_function", "dense_hog", "dense_lbp",
    "dsift", "dsift_positions", "extract_features", "fisher_dim", "fisher_vector", "fit_features",
    "fit_gmm", "fit_kmeans", "fit_pca", "fit_svm", "fit_svm_sgd", "gmm_log_likelihood",
    "gmm_posteriors", "hog_dim", "kmeans_plus_plus", "lam_from_c", "lbp_labels", "llc_vector",
    "needs_fit", "parse_config", "pca_transform", "predict", "pyramid_regions", "super_vector",
    "traced_features",
]
