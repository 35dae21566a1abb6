"""Weight files: torchvision state dicts (.pth with torch, .safetensors without) and jaxnet variables.

`.pth`/`.pt` files are read with `torch.load(weights_only=True)` and need torch; `.safetensors`
files are read with `safetensors.numpy` and need only the small `safetensors` package. Checkpoint
dicts that wrap the state dict (`{"state_dict": ...}`, `{"model": ...}`, timm's
`{"state_dict_ema": ...}`) are unwrapped, and a DataParallel `module.` prefix is stripped.
jaxnet variables are written with `flax.serialization` (msgpack).
"""
from pathlib import Path
from typing import Any, Dict

import numpy as np

from jaxnet import JaxnetError
from jaxnet.weights.torchvision import TORCHVISION_NAMES, from_torchvision, to_numpy, to_torchvision

FORMATS = ("torchvision", "timm")  # timm's plain ResNets share torchvision's key layout
_WRAPPERS = ("state_dict", "model", "state_dict_ema", "model_ema")


def _suffix(path) -> str:
    return Path(path).suffix.lower()


def _need_torch(path, what):
    try:
        import torch  # noqa: F401
    except ImportError:
        raise JaxnetError(f"{what} {path} needs torch (pip install torch), or use a .safetensors"
                          " file, which needs only `pip install safetensors`") from None
    return torch


def _need_safetensors(path):
    try:
        import safetensors.numpy as stn
    except ImportError:
        raise JaxnetError(f"reading/writing {path} needs `pip install safetensors`") from None
    return stn


def _unwrap(obj, path) -> Dict[str, Any]:
    if not isinstance(obj, dict):
        raise JaxnetError(f"{path} holds a {type(obj).__name__}, not a state dict (key -> tensor)")
    for key in _WRAPPERS:
        inner = obj.get(key)
        if isinstance(inner, dict) and not any(hasattr(v, "shape") for v in obj.values()):
            return _unwrap(inner, path)
    bad = [k for k, v in obj.items() if not hasattr(v, "shape")]
    if bad:
        raise JaxnetError(f"{path}: entry {bad[0]!r} is not a tensor; not a state dict")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_state_dict(path) -> Dict[str, np.ndarray]:
    """A state dict file (.pth/.pt/.bin via torch, .safetensors via safetensors.numpy) as numpy."""
    path = Path(path)
    if not path.is_file():
        raise JaxnetError(f"no weight file {path}")
    suffix = _suffix(path)
    if suffix == ".safetensors":
        stn = _need_safetensors(path)
        try:
            obj = stn.load_file(str(path))
        except Exception as e:  # noqa: BLE001  (a corrupt file: one line, not a traceback)
            raise JaxnetError(f"cannot read {path} as safetensors: {_first_line(e)}") from None
    elif suffix in (".pth", ".pt", ".bin", ".ckpt"):
        torch = _need_torch(path, "reading")
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise JaxnetError(f"cannot read {path} with torch.load: {_first_line(e)}") from None
    else:
        raise JaxnetError(f"unknown weight file type {suffix!r} ({path}); use .pth/.pt or .safetensors")
    return {k: to_numpy(v) for k, v in _unwrap(obj, path).items()}


def save_state_dict(state_dict: Dict[str, np.ndarray], path) -> None:
    """Write a state dict of numpy arrays as .pth (torch tensors, needs torch) or .safetensors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v, order="C") for k, v in state_dict.items()}  # keeps 0-d arrays 0-d
    if _suffix(path) == ".safetensors":
        _need_safetensors(path).save_file(arrays, str(path))
    elif _suffix(path) in (".pth", ".pt"):
        torch = _need_torch(path, "writing")
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, str(path))
    else:
        raise JaxnetError(f"unknown weight file type {_suffix(path)!r} ({path}); use .pth or .safetensors")


def save_variables(variables, path) -> None:
    """jaxnet variables -> a flax msgpack file."""
    from flax import serialization

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(serialization.msgpack_serialize(
        {c: _as_numpy_tree(v) for c, v in variables.items()}))


def load_variables(path) -> Dict[str, Any]:
    """A flax msgpack file written by save_variables -> variables (nested dicts of numpy arrays)."""
    from flax import serialization

    path = Path(path)
    if not path.is_file():
        raise JaxnetError(f"no variables file {path}")
    try:
        return serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # noqa: BLE001
        raise JaxnetError(f"cannot read {path} as flax msgpack variables: {_first_line(e)}") from None


def import_file(path, model_name: str, fmt: str = "torchvision", *, drop_aux: bool = False):
    """A torchvision/timm weight file -> the variables `create_model(model_name, ...)` applies."""
    if fmt not in FORMATS:
        raise JaxnetError(f"unknown weight format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return from_torchvision(load_state_dict(path), model_name, drop_aux=drop_aux)


def export_file(variables, model_name: str, path) -> Dict[str, np.ndarray]:
    """jaxnet variables -> a torchvision state-dict file (.pth or .safetensors); returns the dict."""
    state_dict = to_torchvision(variables, model_name)
    save_state_dict(state_dict, path)
    return state_dict


def _as_numpy_tree(tree):
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return {k: _as_numpy_tree(v) for k, v in tree.items()}
    return np.asarray(tree)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


__all__ = ["FORMATS", "TORCHVISION_NAMES", "load_state_dict", "save_state_dict", "save_variables",
           "load_variables", "import_file", "export_file"]
