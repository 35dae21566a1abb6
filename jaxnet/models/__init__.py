"""Model registry: `create_model(name, num_classes=..., **overrides)` and `list_models()`."""
import difflib
from typing import Callable, Dict

import flax.linen as nn

from jaxnet.models import resnet

_REGISTRY: Dict[str, Callable[..., nn.Module]] = {}


def register(name: str, factory: Callable[..., nn.Module]) -> None:
    """Add a model factory `factory(num_classes=..., **overrides) -> nn.Module` under `name`."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = factory


def list_models():
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, *, num_classes: int, **overrides) -> nn.Module:
    """Build the flax module `name` with `num_classes` outputs; `overrides` set module fields."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    return _REGISTRY[name](num_classes=num_classes, **overrides)


def check_options(model: str, overrides, fields) -> None:
    """ValueError naming an option `model` does not have, and the closest one it has."""
    for option in sorted(set(overrides) - set(fields)):
        close = difflib.get_close_matches(option, fields, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown option {option!r} for {model}; {hint}valid: {sorted(fields)}")


def _resnet_factory(name):
    spec = resnet.RESNET_SPECS[name]

    def factory(num_classes, **overrides):
        if "shortcut" in spec and "shortcut" in overrides:
            raise ValueError(f"{name} is a plain net: it has no shortcut option")
        # stage_sizes may be overridden (e.g. (1, 1) for a tiny test net, (1, 1, 1, 1) for ResNet-10).
        fields = set(resnet.ResNet.__dataclass_fields__) - {"parent", "name", "block"}
        check_options(name, overrides, fields)
        if "stage_sizes" in overrides:
            overrides["stage_sizes"] = tuple(overrides["stage_sizes"])
        return resnet.ResNet(num_classes=num_classes, **{**spec, **overrides})

    return factory


for _name in resnet.RESNET_SPECS:
    register(_name, _resnet_factory(_name))


def _fixed_factory(cls):
    """Factory for a net whose only variable is the module's fields (alexnet, googlenet)."""

    def factory(num_classes, **overrides):
        fields = set(cls.__dataclass_fields__) - {"parent", "name", "num_classes"}
        check_options(cls.__name__, overrides, fields)
        return cls(num_classes=num_classes, **overrides)

    return factory


from jaxnet.models import alexnet, googlenet  # noqa: E402

register("alexnet", _fixed_factory(alexnet.AlexNet))
register("alexnet_onegpu", _fixed_factory(alexnet.AlexNetOneGPU))
register("googlenet", _fixed_factory(googlenet.GoogLeNet))

from jaxnet.models import cifar, small_cnn  # noqa: E402

for _name, (_depth, _plain) in cifar.NAMES.items():
    register(_name, cifar.factory(_depth, _plain))
register("small_cnn", _fixed_factory(small_cnn.SmallCNN))

from jaxnet.models import googlenet_bn  # noqa: E402

register("googlenet_bn", _fixed_factory(googlenet_bn.GoogLeNetBN))
