"""Transfer: features from any layer (extract), and, coming, linear probes, fine-tuning and
clustering on them. Weight import/export lives in jaxnet.weights."""
from jaxnet.transfer.extract import extract, feature_fn, layer_names

__all__ = ["extract", "feature_fn", "layer_names"]
