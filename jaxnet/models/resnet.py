"""ResNets (He et al. 2015) and their plain (no-shortcut) twins.

Defaults follow torchvision's ResNet v1.5 (stride on the bottleneck's 3x3 conv, projection
shortcuts only where the shape changes: the paper's option B), so parameter counts at 1000 classes
equal torchvision's exactly. `version="v1"` puts the stride on the bottleneck's first 1x1 conv as
in the paper; `shortcut` picks option A (zero-padded identity), B or C (projections everywhere).
`stem="small"` swaps the 7x7/2 conv + max-pool for one 3x3/1 conv, for 28-32 px inputs.

`activation` is any name in layers.ACTIVATIONS. For maxout (k pieces) each conv + BN feeding an
activation has k times the channels; after a residual add the shortcut is repeated k times along
channels (matching maxout's adjacent-channel groups), so the block outputs
shortcut + max over the k pieces of the residual branch, and keeps its width.
`dropout_rate` (default 0, as in the paper) adds dropout before the classifier.
"""
from functools import partial
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxnet.models.layers import ACTIVATIONS, get_activation

# He init with fan_out, as the ResNet paper (and torchvision) initialise convolutions.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""

    features: int
    strides: int
    shortcut: str  # "A" | "B" | "C" | "none"
    conv: Callable
    norm: Callable
    act: Callable
    zero_init_last: bool
    version: str = "v1.5"  # unused: basic blocks have one place for the stride
    widen: int = 1  # channel multiple the activation needs (2 for maxout)

    expansion = 1

    @nn.compact
    def __call__(self, x):
        k = self.widen
        y = self.conv(self.features * k, (3, 3), self.strides, name="conv1")(x)
        y = self.act(self.norm(name="bn1")(y))
        y = self.conv(self.features * k, (3, 3), 1, name="conv2")(y)
        y = self.norm(name="bn2", scale_init=_last_scale_init(self.zero_init_last))(y)
        return self.act(y + _widened_shortcut(self, x, self.features))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152)."""

    features: int
    strides: int
    shortcut: str
    conv: Callable
    norm: Callable
    act: Callable
    zero_init_last: bool
    version: str = "v1.5"
    widen: int = 1

    expansion = 4

    @nn.compact
    def __call__(self, x):
        s1, s3 = (self.strides, 1) if self.version == "v1" else (1, self.strides)
        k = self.widen
        y = self.conv(self.features * k, (1, 1), s1, name="conv1")(x)
        y = self.act(self.norm(name="bn1")(y))
        y = self.conv(self.features * k, (3, 3), s3, name="conv2")(y)
        y = self.act(self.norm(name="bn2")(y))
        y = self.conv(self.features * 4 * k, (1, 1), 1, name="conv3")(y)
        y = self.norm(name="bn3", scale_init=_last_scale_init(self.zero_init_last))(y)
        return self.act(y + _widened_shortcut(self, x, self.features * 4))


def _last_scale_init(zero: bool):
    return nn.initializers.zeros if zero else nn.initializers.ones


def _widened_shortcut(block, x, out_features):
    """The skip path repeated `widen` times per channel, to add to a maxout-widened branch."""
    s = _shortcut(block, x, out_features)
    return s if block.widen == 1 or block.shortcut == "none" else jnp.repeat(s, block.widen, axis=-1)


def _shortcut(block, x, out_features):
    """The block's skip path (called inside the block's compact scope)."""
    if block.shortcut == "none":
        return 0.0
    reshape = block.strides != 1 or x.shape[-1] != out_features
    if block.shortcut == "C" or (block.shortcut == "B" and reshape):
        x = block.conv(out_features, (1, 1), block.strides, name="proj_conv")(x)
        return block.norm(name="proj_bn")(x)
    if block.strides != 1:  # option A, or B/C's identity case never reaches here with strides
        x = x[:, :: block.strides, :: block.strides, :]
    if x.shape[-1] != out_features:
        pad = out_features - x.shape[-1]
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, pad)))
    return x


class ResNet(nn.Module):
    """A ResNet (or plain net) with `stage_sizes` blocks per stage; returns logits [N, num_classes]."""

    stage_sizes: Sequence[int]
    block: Any
    num_classes: int
    width: int = 64
    shortcut: str = "B"
    version: str = "v1.5"
    stem: str = "imagenet"  # "imagenet": 7x7/2 conv + 3x3/2 max-pool; "small": 3x3/1 conv only;
    #                         "small2": 3x3/2 conv only (small images at twice the size, e.g. 64 px scenes)
    zero_init_residual: bool = True
    activation: str = "relu"
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32
    bn_momentum: float = 0.9  # flax convention: running = momentum * running + (1 - momentum) * batch

    @nn.compact
    def __call__(self, x, train: bool = False):
        _check_options(self)
        conv = partial(nn.Conv, use_bias=False, dtype=self.dtype, kernel_init=conv_init,
                       padding="SAME")
        conv = _torch_padding(conv)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=1e-5, dtype=self.dtype)
        act, widen = get_activation(self.activation)
        x = x.astype(self.dtype)
        if self.stem == "imagenet":
            x = conv(self.width * widen, (7, 7), 2, name="stem_conv")(x)
            x = act(norm(name="stem_bn")(x))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        else:
            x = conv(self.width * widen, (3, 3), 2 if self.stem == "small2" else 1, name="stem_conv")(x)
            x = act(norm(name="stem_bn")(x))
        plain = self.shortcut == "none"
        for stage, num_blocks in enumerate(self.stage_sizes):
            for b in range(num_blocks):
                x = self.block(
                    features=self.width * 2**stage,
                    strides=2 if stage > 0 and b == 0 else 1,
                    shortcut=self.shortcut,
                    conv=conv, norm=norm, act=act,
                    zero_init_last=self.zero_init_residual and not plain,
                    version=self.version,
                    widen=widen,
                    name=f"stage{stage + 1}_block{b + 1}",
                )(x)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
        return x.astype(jnp.float32)


def _torch_padding(conv):
    """Convs padded like PyTorch's (k // 2 on each side), so strided outputs match torchvision."""

    def make(features, kernel, strides, name):
        pad = tuple((k // 2, k // 2) for k in kernel)
        return conv(features, kernel, strides=(strides, strides), padding=pad, name=name)

    return make


def _check_options(net):
    if net.shortcut not in ("A", "B", "C", "none"):
        raise ValueError(f"shortcut must be 'A', 'B', 'C' (or 'none' for plain nets), got {net.shortcut!r}")
    if net.version not in ("v1", "v1.5"):
        raise ValueError(f"version must be 'v1' or 'v1.5', got {net.version!r}")
    if net.stem not in ("imagenet", "small", "small2"):
        raise ValueError(f"stem must be 'imagenet', 'small' or 'small2', got {net.stem!r}")
    if net.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {net.activation!r}")


RESNET_SPECS = {
    "resnet10": dict(stage_sizes=(1, 1, 1, 1), block=BasicBlock),  # a light net for small data
    "resnet18": dict(stage_sizes=(2, 2, 2, 2), block=BasicBlock),
    "resnet34": dict(stage_sizes=(3, 4, 6, 3), block=BasicBlock),
    "resnet50": dict(stage_sizes=(3, 4, 6, 3), block=Bottleneck),
    "resnet101": dict(stage_sizes=(3, 4, 23, 3), block=Bottleneck),
    "resnet152": dict(stage_sizes=(3, 8, 36, 3), block=Bottleneck),
    "plain18": dict(stage_sizes=(2, 2, 2, 2), block=BasicBlock, shortcut="none"),
    "plain34": dict(stage_sizes=(3, 4, 6, 3), block=BasicBlock, shortcut="none"),
}
