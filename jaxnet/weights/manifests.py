"""Manifests: the key names, shapes and dtypes of each torchvision model's state dict, as JSON.

Recorded once from the real torchvision models (`python -m jaxnet weights manifests`, needs
torch) into `jaxnet/weights/manifests/<jaxnet name>.json`, so that tests without torch can build
state dicts with torchvision's exact layout (`random_state_dict`) and check the import path.
"""
import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from jaxnet import JaxnetError

MANIFEST_DIR = Path(__file__).parent / "manifests"

# jaxnet name -> (torchvision constructor, its keyword arguments besides weights=None)
SOURCES = {
    "resnet18": ("resnet18", {}),
    "resnet34": ("resnet34", {}),
    "resnet50": ("resnet50", {}),
    "resnet101": ("resnet101", {}),
    "resnet152": ("resnet152", {}),
    "alexnet_onegpu": ("alexnet", {}),
    "googlenet_bn": ("googlenet", {"aux_logits": True, "init_weights": True}),
}


def load_manifest(name: str) -> Dict[str, Any]:
    path = MANIFEST_DIR / f"{name}.json"
    if not path.is_file():
        raise JaxnetError(f"no manifest for {name!r}; recorded: "
                          f"{', '.join(sorted(p.stem for p in MANIFEST_DIR.glob('*.json')))}")
    return json.loads(path.read_text())


def random_state_dict(name: str, seed: int = 0, num_classes: Optional[int] = None,
                      drop_aux: bool = False) -> Dict[str, np.ndarray]:
    """A state dict with torchvision's keys/shapes/dtypes for `name` and random values.

    Conv/linear weights He-normal (std sqrt(2 / fan_in), so signals keep their scale and the
    logits depend on the input), BN weights in [0.5, 1.5], running_var in [0.5, 1.5], biases and
    running means N(0, 0.05), counters 0. `num_classes` swaps the
    classifier's (and aux classifiers') output size; `drop_aux` leaves out googlenet's aux heads.
    """
    manifest = load_manifest(name)
    rng = np.random.default_rng(seed)
    heads = {k for k, _, _ in manifest["keys"] if k.rsplit(".", 1)[0] in manifest["classifiers"]}
    keys = {k for k, _, _ in manifest["keys"]}
    out = {}
    for key, shape, dtype in manifest["keys"]:
        if drop_aux and key.startswith(("aux1.", "aux2.")):
            continue
        if num_classes is not None and key in heads:
            shape = [num_classes] + list(shape[1:])
        if dtype != "float32":
            out[key] = np.zeros(shape, dtype)
        elif len(shape) > 1:
            std = np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
            out[key] = rng.standard_normal(shape, dtype=np.float32) * std
        elif key.endswith("running_var") or (key.endswith("weight") and key.replace(
                "weight", "running_var") in keys):
            out[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            out[key] = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)
    return out


def record(out_dir=MANIFEST_DIR, names=None) -> Dict[str, Path]:
    """Write each torchvision model's manifest (needs torch and torchvision)."""
    import torch
    import torchvision

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in names or SOURCES:
        ctor, kwargs = SOURCES[name]
        model = getattr(torchvision.models, ctor)(weights=None, **kwargs)
        sd = model.state_dict()
        args = ", ".join(["weights=None"] + [f"{k}={v!r}" for k, v in kwargs.items()])
        classifiers = ["classifier.6"] if ctor == "alexnet" else ["fc"]
        if ctor == "googlenet":
            classifiers += ["aux1.fc2", "aux2.fc2"]
        lines = [f'  "jaxnet_model": {json.dumps(name)},',
                 f'  "source": {json.dumps(f"torchvision.models.{ctor}({args})")},',
                 f'  "torch": {json.dumps(torch.__version__)},',
                 f'  "torchvision": {json.dumps(torchvision.__version__)},',
                 f'  "num_parameters": {sum(p.numel() for p in model.parameters())},',
                 f'  "classifiers": {json.dumps(classifiers)},',
                 '  "keys": [']
        rows = [f"    {json.dumps([k, list(v.shape), str(v.dtype).replace('torch.', '')])}"
                for k, v in sd.items()]
        text = "{\n" + "\n".join(lines) + "\n" + ",\n".join(rows) + "\n  ]\n}\n"
        json.loads(text)  # well-formed
        path = out_dir / f"{name}.json"
        path.write_text(text)
        written[name] = path
    return written
