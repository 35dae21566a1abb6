"""Features from any named layer of a jaxnet model, in eval mode.

Layer names (`layer_names(model)`):
  ResNet / plain nets   stem (after the stem's max-pool), stage1 .. stageN (each stage's last
                        block), pre_logits (the global average pool), logits
  googlenet(_bn)        stem (the input of inception3a), inception3a .. inception5b (each block's
                        concatenated output, before any following max-pool), pre_logits, logits
  alexnet(_onegpu)      conv1 .. conv5 (after the activation, before LRN / pooling), fc6 (after its
                        activation), pre_logits (fc7 after its activation), logits

Nothing in the models changes: the features are read with flax's public method interception
(`flax.linen.intercept_methods`) while the model runs, as the input or output of the named
top-level submodule (`stem` is the first block's input, `pre_logits` the classifier's input).
In a jitted function that returns only the feature, XLA drops the layers after it.
`pool="avg"` averages spatial maps over height and width ([N, C]); `pool="none"` keeps them
([N, H, W, C]); vector layers are returned as they are.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError

POOLS = ("avg", "none")
# layer name -> (where, top-level submodule, activation to apply afterwards or None)
_Spec = Tuple[str, Optional[str], Optional[Callable]]


def _as_model(model_or_name) -> nn.Module:
    if isinstance(model_or_name, nn.Module):
        return model_or_name
    from jaxnet.models import create_model

    try:
        return create_model(model_or_name, num_classes=1000)
    except ValueError as e:
        raise JaxnetError(str(e)) from None


def _specs(model: nn.Module) -> Dict[str, _Spec]:
    from jaxnet.models import alexnet, googlenet, googlenet_bn, resnet
    from jaxnet.models.layers import get_activation

    if isinstance(model, resnet.ResNet):
        sizes = [n for n in model.stage_sizes]
        specs = {"stem": ("input", "stage1_block1", None)} if sizes and sizes[0] else {}
        for s, n in enumerate(sizes):
            if n:
                specs[f"stage{s + 1}"] = ("output", f"stage{s + 1}_block{n}", None)
        return {**specs, "pre_logits": ("input", "fc", None), "logits": ("logits", None, None)}
    if isinstance(model, (googlenet.GoogLeNet, googlenet_bn.GoogLeNetBN)):
        specs = {"stem": ("input", "inception3a", None)}
        specs.update({f"inception{b}": ("output", f"inception{b}", None) for b in googlenet.TABLE1})
        head = "fc" if isinstance(model, googlenet_bn.GoogLeNetBN) else "classifier"
        return {**specs, "pre_logits": ("input", head, None), "logits": ("logits", None, None)}
    if isinstance(model, (alexnet.AlexNet, alexnet.AlexNetOneGPU)):
        act = get_activation(model.activation)[0]
        specs = {f"conv{i}": ("output", f"conv{i}", act) for i in range(1, 6)}
        specs["fc6"] = ("output", "fc6", act)
        return {**specs, "pre_logits": ("input", "fc8", None), "logits": ("logits", None, None)}
    raise JaxnetError(f"no layer table for {type(model).__name__}; feature extraction covers ResNets,"
                      " plain nets, GoogLeNets and AlexNets")


def layer_names(model_or_name: Union[str, nn.Module]) -> List[str]:
    """The layers `extract` accepts for a registry name or a model, from input to logits."""
    return list(_specs(_as_model(model_or_name)))


def _check(model, layers: Sequence[str], pool: str) -> Dict[str, _Spec]:
    specs = _specs(model)
    for layer in layers:
        if layer not in specs:
            raise JaxnetError(f"unknown layer {layer!r} for {type(model).__name__}; valid layers:"
                              f" {', '.join(specs)}")
    if pool not in POOLS:
        raise JaxnetError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    return specs


def feature_fn(model: nn.Module, layers: Union[str, Sequence[str]], pool: str = "avg"):
    """A pure function `(variables, images) -> features` (an array for one layer name, a dict for
    a list of names), eval mode, float32; jit it, or shard it over a mesh, as you like."""
    single = isinstance(layers, str)
    names = [layers] if single else list(layers)
    specs = _check(model, names, pool)
    wanted = {}  # (where, submodule) -> layer names reading it
    for name in names:
        where, module, _ = specs[name]
        wanted.setdefault((where, module), []).append(name)

    def fn(variables, images):
        captured = {}

        def interceptor(next_fun, args, kwargs, context):
            path = context.module.path
            if context.method_name != "__call__" or len(path) != 1:
                return next_fun(*args, **kwargs)
            if ("input", path[0]) in wanted:
                captured[("input", path[0])] = args[0]
            out = next_fun(*args, **kwargs)
            if ("output", path[0]) in wanted:
                captured[("output", path[0])] = out
            return out

        with nn.intercept_methods(interceptor):
            captured[("logits", None)] = model.apply(variables, images, train=False)
        result = {}
        for name in names:
            where, module, post = specs[name]
            x = captured[(where, module)]
            if post is not None:
                x = post(x)
            x = x.astype(jnp.float32)
            if pool == "avg" and x.ndim == 4:
                x = jnp.mean(x, axis=(1, 2))
            result[name] = x
        return result[names[0]] if single else result

    return fn


def extract(model: nn.Module, variables, images, layer: Union[str, Sequence[str]],
            pool: str = "avg", batch_size: int = 256):
    """Features of `layer` (or a dict for a list of layers) for NHWC `images`, in batches.

    `images` is an array [N, H, W, C] (numpy or jax); every batch has `batch_size` images (the last
    one padded), so the jitted function compiles once. Returns numpy float32 arrays.
    """
    fn = jax.jit(feature_fn(model, layer, pool))
    n = len(images)
    if n == 0:
        raise JaxnetError("extract: no images")
    batch_size = max(1, min(batch_size, n))
    parts = []
    for start in range(0, n, batch_size):
        batch = np.asarray(images[start:start + batch_size])
        real = len(batch)
        if real < batch_size:
            pad = np.zeros((batch_size - real,) + batch.shape[1:], batch.dtype)
            batch = np.concatenate([batch, pad])
        out = jax.device_get(fn(variables, batch))
        parts.append(jax.tree.map(lambda a, r=real: np.asarray(a[:r]), out))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
