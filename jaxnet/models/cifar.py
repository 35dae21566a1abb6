"""The ResNet paper's CIFAR-10 nets (He et al. 2015, section 4.2) and their plain twins.

A 3x3 conv with 16 filters, then three stages of n basic blocks (two 3x3 convs each) with 16, 32
and 64 filters on 32x32, 16x16 and 8x8 maps (the first conv of stages 2 and 3 has stride 2),
global average pooling and a fully connected layer: 6n + 2 weighted layers (n = 3, 5, 7, 9, 18
for depths 20, 32, 44, 56, 110). Residual nets use option A shortcuts everywhere (identity; where
the shape changes, subsampled by 2 and zero-padded to the new width: no extra parameters), so a
plain net and its residual twin have exactly the same parameters. BatchNorm after every conv;
no zero-initialised last BN gamma by default (the paper did not use it).

They are `jaxnet.models.resnet.ResNet`s with the small stem; every ResNet option (`width`,
`activation`, `zero_init_residual`, `dtype`, ...) can still be overridden.
Parameters (RGB input, 10 classes; BatchNorm scales and offsets included, running statistics
not): 20 -> 269,722; 32 -> 464,154; 44 -> 658,586; 56 -> 853,018; 110 -> 1,727,962 (the paper:
0.27M, 0.46M, 0.66M, 0.85M, 1.7M). Grey input (Fashion-MNIST) has 288 fewer (the first conv).
"""
from jaxnet.models import resnet

DEPTHS = (20, 32, 44, 56, 110)


def blocks_per_stage(depth: int) -> int:
    """n of a depth-(6n+2) CIFAR net."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
    return (depth - 2) // 6


def cifar_net(depth: int, plain: bool, num_classes: int, /, **overrides) -> resnet.ResNet:
    """The depth-`depth` CIFAR ResNet (option A shortcuts) or, with `plain`, its plain twin."""
    n = blocks_per_stage(depth)
    if "shortcut" in overrides and plain:
        raise ValueError(f"cifar_plain{depth} is a plain net: it has no shortcut option")
    if "stage_sizes" in overrides or "block" in overrides or "stem" in overrides:
        raise ValueError("a CIFAR net's stages, block and stem are fixed by its depth;"
                         " use resnet18 and its options for other shapes")
    fields = set(resnet.ResNet.__dataclass_fields__) - {"parent", "name", "block", "num_classes"}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown option(s) for cifar nets: {sorted(unknown)}; valid: {sorted(fields)}")
    options = dict(stage_sizes=(n, n, n), block=resnet.BasicBlock, width=16, stem="small",
                   shortcut="none" if plain else "A", zero_init_residual=False)
    return resnet.ResNet(num_classes=num_classes, **{**options, **overrides})


def factory(depth: int, plain: bool):
    """A registry factory `f(num_classes, **overrides)` for one depth and kind."""

    def make(num_classes, **overrides):
        return cifar_net(depth, plain, num_classes, **overrides)

    return make


NAMES = {f"cifar_{'plain' if plain else 'resnet'}{d}": (d, plain)
         for plain in (False, True) for d in DEPTHS}
