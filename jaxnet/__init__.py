"""jaxnet: the ImageNet story (classical features + SVMs, AlexNet, GoogLeNet, ResNets) in JAX/Flax."""

__version__ = "0.1.0"


class JaxnetError(Exception):
    """An error caused by the user's input (config, data, workdir); the CLIs print it without a traceback."""
