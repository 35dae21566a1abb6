"""torchvision state dicts <-> jaxnet variables, key by key.

A table, built from the jaxnet model's own variable shapes (`jax.eval_shape` of `init`, nothing
computed), pairs every jaxnet leaf with its torchvision key and says how to convert it:
conv kernels (O, I, H, W) <-> (H, W, I, O); linear weights (out, in) <-> (in, out), and for the
linears that follow a flatten of a (C, H, W) map in torchvision (AlexNet's fc6 after its 6x6
pool, GoogLeNet's aux fc1 after its 4x4 pool) the input axis is also reordered from torch's
(C, H, W) to our NHWC (H, W, C) order; BatchNorm weight/bias/running_mean/running_var <->
scale/bias/mean/var (`num_batches_tracked` is ignored on import and written as 0 on export).

Covered: `resnet10`..`resnet152` (torchvision's resnet18..152 and timm's plain `resnet*` models,
which use the same keys: conv1, bn1, layerS.B.{conv,bn}N, layerS.B.downsample.{0,1}, fc),
`alexnet_onegpu` (torchvision's alexnet) and `googlenet_bn` (torchvision's googlenet). The model is
built with the defaults of its registry name and the number of classes of the state dict's
classifier. Every mismatch is a one-line `JaxnetError` naming the key.
"""
import functools
import re
from typing import Any, Dict, NamedTuple, Optional, Tuple

import numpy as np

from jaxnet import JaxnetError

_RESNETS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
SUPPORTED = _RESNETS + ("alexnet_onegpu", "googlenet_bn")
# The torchvision constructor each jaxnet name corresponds to (for messages, verify, manifests).
TORCHVISION_NAMES = {**{n: n for n in _RESNETS if n != "resnet10"},
                     "alexnet_onegpu": "alexnet", "googlenet_bn": "googlenet"}
# The classifier's weight key: its first dimension is the number of classes.
_HEAD = {"alexnet_onegpu": "classifier.6.weight"}
_AUX = ("aux1.", "aux2.")
_ALEXNET = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
            "conv4": "features.8", "conv5": "features.10", "fc6": "classifier.1",
            "fc7": "classifier.4", "fc8": "classifier.6"}
# Linears that torchvision feeds with torch.flatten of a (C, H, W) map: module path -> (H, W).
_FLATTENED = {"alexnet_onegpu": {("fc6",): (6, 6)},
              "googlenet_bn": {("aux1", "fc1"): (4, 4), ("aux2", "fc1"): (4, 4)}}
_LEAF = {"kernel": "weight", "bias": "bias", "scale": "weight", "mean": "running_mean",
         "var": "running_var"}


class Entry(NamedTuple):
    key: str                        # torchvision key
    collection: str                 # "params" or "batch_stats"
    path: Tuple[str, ...]           # module path + leaf name inside the collection
    shape: Tuple[int, ...]          # jaxnet shape
    torch_shape: Tuple[int, ...]
    flatten_hw: Optional[Tuple[int, int]]  # set for linears after a (C, H, W) flatten


def check_name(name: str) -> None:
    if name not in SUPPORTED:
        raise JaxnetError(f"no torchvision weight mapping for model {name!r}; supported:"
                          f" {', '.join(SUPPORTED)}")


def _module_key(name: str, modules: Tuple[str, ...]) -> str:
    if name in _RESNETS:
        out = []
        for part in modules:
            m = re.fullmatch(r"stage(\d+)_block(\d+)", part)
            if m:
                out.append(f"layer{m[1]}.{int(m[2]) - 1}")
            else:
                out.append({"stem_conv": "conv1", "stem_bn": "bn1", "proj_conv": "downsample.0",
                            "proj_bn": "downsample.1"}.get(part, part))
        return ".".join(out)
    if name == "alexnet_onegpu":
        return ".".join(_ALEXNET.get(p, p) for p in modules)
    return ".".join(re.sub(r"^(branch\d)_(\d)$", r"\1.\2", p) for p in modules)  # googlenet_bn


def _torch_shape(shape):
    if len(shape) == 4:
        h, w, i, o = shape
        return (o, i, h, w)
    if len(shape) == 2:
        return (shape[1], shape[0])
    return tuple(shape)


@functools.lru_cache(maxsize=32)
def table(name: str, num_classes: int, aux: bool = True) -> Tuple[Entry, ...]:
    """The (torch key, jaxnet leaf) pairs of model `name`; `aux` keeps googlenet_bn's aux heads."""
    import jax
    import jax.numpy as jnp

    from jaxnet.models import create_model

    check_name(name)
    overrides = {"aux_logits": aux} if name == "googlenet_bn" else {}
    model = create_model(name, num_classes=num_classes, **overrides)
    abstract = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False))
    entries = []
    for collection in ("params", "batch_stats"):
        flat = jax.tree_util.tree_flatten_with_path(abstract.get(collection, {}))[0]
        for keypath, leaf in flat:
            path = tuple(k.key for k in keypath)
            modules, leaf_name = path[:-1], path[-1]
            hw = _FLATTENED.get(name, {}).get(modules) if leaf_name == "kernel" else None
            entries.append(Entry(f"{_module_key(name, modules)}.{_LEAF[leaf_name]}", collection, path,
                                 tuple(leaf.shape), _torch_shape(leaf.shape), hw))
    return tuple(entries)


def to_numpy(value) -> np.ndarray:
    """A torch tensor (any device, bf16 included), jax array or numpy array as a numpy array."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float8_e4m3fn", "torch.float8_e5m2"):
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _torch_to_jax(x: np.ndarray, entry: Entry) -> np.ndarray:
    if x.ndim == 4:
        x = x.transpose(2, 3, 1, 0)
    elif x.ndim == 2 and entry.flatten_hw:
        h, w = entry.flatten_hw
        out = x.shape[0]
        x = x.reshape(out, -1, h, w).transpose(2, 3, 1, 0).reshape(-1, out)
    elif x.ndim == 2:
        x = x.T
    return np.ascontiguousarray(x, dtype=np.float32)


def _jax_to_torch(x: np.ndarray, entry: Entry) -> np.ndarray:
    if x.ndim == 4:
        x = x.transpose(3, 2, 0, 1)
    elif x.ndim == 2 and entry.flatten_hw:
        h, w = entry.flatten_hw
        out = x.shape[1]
        x = x.reshape(h, w, -1, out).transpose(3, 2, 0, 1).reshape(out, -1)
    elif x.ndim == 2:
        x = x.T
    return np.ascontiguousarray(x, dtype=np.float32)


def _num_classes(state_dict, name) -> int:
    head = _HEAD.get(name, "fc.weight")
    if head not in state_dict:
        raise JaxnetError(f"missing key {head!r}: not a torchvision {TORCHVISION_NAMES.get(name, name)}"
                          f" state dict (model {name})")
    value = state_dict[head]
    shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
    if len(shape) != 2:
        raise JaxnetError(f"key {head!r} has shape {shape}; expected (num_classes, features)")
    return int(shape[0])


def from_torchvision(state_dict, name: str, *, drop_aux: bool = False) -> Dict[str, Any]:
    """torchvision state dict (key -> torch tensor or numpy array) -> jaxnet `variables`.

    `name` is the jaxnet model (`resnet18`..`resnet152`, `alexnet_onegpu`, `googlenet_bn`); the
    result is what `create_model(name, num_classes=C).apply` takes, with C read from the state
    dict's classifier. googlenet_bn: `aux1.*`/`aux2.*` go into the aux heads' parameters when
    present, are skipped with `drop_aux=True`; a state dict without them (torchvision's pretrained
    model with aux_logits=False) gives variables without aux heads (fine for eval; to fine-tune,
    build the model with aux_logits=False).
    """
    check_name(name)
    keys = list(state_dict.keys())
    num_classes = _num_classes(state_dict, name)
    has_aux = name == "googlenet_bn" and any(k.startswith(_AUX) for k in keys)
    entries = table(name, num_classes, has_aux and not drop_aux)
    by_key = {e.key: e for e in entries}
    bn_prefixes = {e.key.rsplit(".", 1)[0] for e in entries if e.collection == "batch_stats"}
    for k in keys:
        if k in by_key:
            continue
        if k.endswith(".num_batches_tracked") and k.rsplit(".", 1)[0] in bn_prefixes:
            continue
        if drop_aux and name == "googlenet_bn" and k.startswith(_AUX):
            continue
        raise JaxnetError(f"unknown key {k!r} in the state dict for {name} (not part of torchvision's"
                          f" {TORCHVISION_NAMES[name]} layout)")
    variables: Dict[str, Any] = {}
    for e in entries:
        if e.key not in state_dict:
            raise JaxnetError(f"missing key {e.key!r} in the state dict for {name}")
        x = to_numpy(state_dict[e.key])
        if tuple(x.shape) != e.torch_shape:
            raise JaxnetError(f"key {e.key!r} has shape {tuple(x.shape)} but {name} with"
                              f" {num_classes} classes expects {e.torch_shape}")
        if not (np.issubdtype(x.dtype, np.floating) or x.dtype.name == "bfloat16"):
            raise JaxnetError(f"key {e.key!r} has dtype {x.dtype}; expected a float tensor")
        node = variables.setdefault(e.collection, {})
        for part in e.path[:-1]:
            node = node.setdefault(part, {})
        node[e.path[-1]] = _torch_to_jax(x, e)
    return variables


def variables_num_classes(params, name: str) -> int:
    """The number of classes of jaxnet `params` of model `name` (its classifier's output size)."""
    head = "fc8" if name == "alexnet_onegpu" else "fc"
    try:
        return int(params[head]["kernel"].shape[1])
    except (KeyError, TypeError, AttributeError, IndexError):
        raise JaxnetError(f"variables lack params/{head}/kernel: not {name} variables") from None


def to_torchvision(variables, name: str) -> Dict[str, np.ndarray]:
    """jaxnet `variables` of model `name` -> torchvision state dict of numpy arrays (float32; the
    BatchNorm `num_batches_tracked` counters are int64 zeros), loadable with
    `load_state_dict(..., strict=True)` into the matching torchvision model."""
    check_name(name)
    import jax

    params = variables.get("params", {}) if hasattr(variables, "get") else {}
    aux = name == "googlenet_bn" and "aux1" in params
    entries = table(name, variables_num_classes(params, name), aux)
    wanted = {(e.collection,) + e.path for e in entries}
    for collection in ("params", "batch_stats"):
        for keypath, _ in jax.tree_util.tree_flatten_with_path(variables.get(collection, {}))[0]:
            path = (collection,) + tuple(getattr(k, "key", k) for k in keypath)
            if path not in wanted:
                raise JaxnetError(f"variables have {'/'.join(path)}, which {name}'s torchvision"
                                  " layout does not")
    out: Dict[str, np.ndarray] = {}
    for e in entries:
        node = variables.get(e.collection, {})
        try:
            for part in e.path:
                node = node[part]
        except (KeyError, TypeError):
            raise JaxnetError(f"variables lack {e.collection}/{'/'.join(e.path)}"
                              f" (torchvision key {e.key!r})") from None
        x = np.asarray(node)
        if tuple(x.shape) != e.shape:
            raise JaxnetError(f"{e.collection}/{'/'.join(e.path)} has shape {tuple(x.shape)}, expected"
                              f" {e.shape} (torchvision key {e.key!r})")
        out[e.key] = _jax_to_torch(x, e)
        if e.path[-1] == "var":
            out[e.key.rsplit(".", 1)[0] + ".num_batches_tracked"] = np.zeros((), np.int64)
    return out

