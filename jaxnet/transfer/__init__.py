"""Transfer: reusing a trained (or imported) network on new data.

- extract: features from any named layer (`layer_names`, `feature_fn`, `extract`) and the
  extraction command `python -m jaxnet extract` (streamed to .npy memory maps);
- source: the network a transfer method starts from (a workdir or a weight file), and imported
  weights written as a workdir;
- linear: standardisation and the L-BFGS logistic regression of the linear probe;
- clustering: PCA + k-means with restarts, NMI / ARI / purity, the 2-D scatter plot;
- recipes: the Fashion-MNIST transfer recipes (classes 0-4 -> 5-9) of the configs and the study;
- study: `python -m jaxnet transfer_study`, the transfer study (a command).
The methods built on them are jaxnet.methods.probe, .finetune and .cluster; weight import/export
lives in jaxnet.weights.
"""
import warnings

# `python -m jaxnet extract` runs a module this package has already imported (for the
# names below); runpy's warning about that is harmless here.
warnings.filterwarnings("ignore", r".*'jaxnet\.transfer\.extract' found in sys\.modules", RuntimeWarning)

from jaxnet.transfer.extract import extract, feature_fn, layer_names  # noqa: E402

__all__ = ["extract", "feature_fn", "layer_names"]
