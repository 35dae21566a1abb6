"""Features from any named layer of a jaxnet model, in eval mode; and the extraction command.

    python -m jaxnet extract --workdir=DIR --list_layers
    python -m jaxnet extract --workdir=DIR --layer=stage2 [--config=configs/X.py]
        [--split=test] [--pool=avg|none] [--step=N] [--batch_size=N] --out=FEATURES_DIR

The command reads the network of a workdir (trained, or imported with `python -m jaxnet weights
import --workdir`), the data of --config (default: the workdir's own config.json), and writes
OUT/<split>_<layer>.npy ([N, D] float32, or [N, H, W, C] with --pool=none), OUT/<split>_labels.npy
and OUT/<split>_<layer>.json (what and from where), streamed batch by batch into .npy memory maps:
global batches sharded over the device mesh, so a split of any size never sits in memory.

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
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError
from jaxnet.data.pipeline import eval_batches
from jaxnet.console import progress_bar
from jaxnet.mesh import batch_sharded, check_batch_size, replicated, shard_batch
from jaxnet.training.steps import normalize

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


def check_layers(model, layers: Sequence[str], pool: str) -> Dict[str, _Spec]:
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
    specs = check_layers(model, names, pool)
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


def head_module(model_or_name) -> str:
    """The name of the top-level submodule that is `model`'s classifier (what fine-tuning
    replaces): the module whose input is the `pre_logits` layer."""
    return _specs(_as_model(model_or_name))["pre_logits"][1]


def image_features(source, layer: str, pool: str = "avg", flatten: bool = True):
    """`fn(variables, images) -> [B, D]` float32 features of uint8 NHWC images for a SourceNet
    (jaxnet.transfer.source): its own input normalisation (mean, std, dtype, device_resize),
    then the layer, flattened (a spatial map with pool="none" becomes one long vector) unless
    `flatten` is False."""
    c = source.config
    dtype = jnp.bfloat16 if c.dtype == "bfloat16" else jnp.float32
    features = feature_fn(source.model, layer, pool)

    def fn(variables, images):
        f = features(variables, normalize(images, c.mean, c.std, dtype, c.device_resize))
        return f.reshape(f.shape[0], -1) if flatten else f

    return fn


def write_features(fn, params, source, batch_size: int, mesh, path=None, desc="features",
                   dtype=np.float32):
    """(outputs [N, ...], labels [N]) of `fn(params, images)` for every example of `source`, in
    order. Global batches of `batch_size` are sharded over `mesh` (params are placed replicated);
    with `path` (a .npy file name) the outputs go batch by batch into a memory map there, else
    into a host array. One process only (each host would need its own file)."""
    if jax.process_count() > 1:
        raise JaxnetError("feature extraction writes one file from one process; this job has"
                          f" {jax.process_count()}")
    check_batch_size(batch_size, mesh, "eval_batch_size")
    params = jax.device_put(params, replicated(mesh))
    apply = jax.jit(fn, out_shardings=batch_sharded(mesh))
    n = len(source)
    labels, out = np.zeros(n, np.int32), None
    with progress_bar(n, desc) as bar:
        for batch in eval_batches(source, batch_size):
            real = batch["mask"] > 0
            k = int(real.sum())
            if not k:
                continue
            values = np.asarray(jax.device_get(apply(params, shard_batch(
                {"image": batch["image"]}, mesh)["image"])))[real]
            if out is None:
                shape = (n,) + values.shape[1:]
                kind = np.dtype(dtype) if values.dtype.kind == "f" else values.dtype
                out = (np.lib.format.open_memmap(path, "w+", kind, shape) if path is not None
                       else np.empty(shape, kind))
            rows = batch["index"][real]
            out[rows] = values
            labels[rows] = batch["label"][real]
            bar.update(k)
    if out is None:
        raise JaxnetError(f"no examples in {source!r}")
    if path is not None:
        out.flush()
    return out, labels


def feature_shapes(source, pool: str = "avg") -> Dict[str, Tuple[int, ...]]:
    """Each layer's per-image feature shape (before flattening) for a SourceNet at its image size."""
    c = source.config
    size = c.device_resize or c.image_size
    images = jax.ShapeDtypeStruct((1, size, size, c.channels), jnp.float32)
    names = layer_names(source.model)
    shapes = jax.eval_shape(feature_fn(source.model, names, pool), source.variables, images)
    return {name: tuple(shapes[name].shape[1:]) for name in names}


def extract_split(source, config, layer: str, split: str, out_dir, pool: str = "avg", mesh=None,
                  batch_size: Optional[int] = None) -> dict:
    """Write `layer`'s features of `config`'s `split` (data settings of `config`) for a SourceNet
    into out_dir (see the module docstring); return the JSON record written beside them."""
    from jaxnet.data.sources import create_source
    from jaxnet.mesh import create_mesh

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mesh = mesh if mesh is not None else create_mesh()
    batch_size = batch_size or config.eval_batch_size
    fn = image_features(source, layer, pool, flatten=False)
    data = create_source(config, split)
    shape = feature_shapes(source, pool)[layer]
    marker = out_dir / f"{split}_{layer}.json"
    marker.unlink(missing_ok=True)
    feats, labels = write_features(fn, source.variables, data, batch_size, mesh,
                                   out_dir / f"{split}_{layer}.npy", f"{split} {layer}")
    del feats
    np.save(out_dir / f"{split}_labels.npy", labels)
    record = {"source": source.origin, "step": int(source.step), "model": source.config.model.name,
              "layer": layer, "pool": pool, "split": split, "dataset": config.dataset,
              "examples": int(len(labels)), "shape": [int(len(labels)), *shape],
              "features": f"{split}_{layer}.npy", "labels": f"{split}_labels.npy"}
    marker.write_text(json.dumps(record, indent=2) + "\n")
    return record
