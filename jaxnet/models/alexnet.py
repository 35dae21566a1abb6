"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) and torchvision's one-column variant.

`AlexNet` is the paper's two-column net in one device's program: the columns become channel
groups (conv2/4/5 are grouped convs, by default computed as one conv per column; conv3 and the
fully connected layers see both columns) and the LRN after conv1/conv2 normalises within each
column, as each GPU did. Input is 227x227: the paper's text says 224, but 11x11/4 convolutions
only give its 55x55 maps from 227. Other sizes work (at least 67 px) and change fc6's fan-in
(6*6*256 = 9216 at 227); the paper's net has no pooling to a fixed size, so neither has this one.

`AlexNetOneGPU` is the layout torchvision ships (from Krizhevsky's 2014 "one weird trick" paper):
64-192-384-256-256 convs, no LRN, no groups, 61,100,840 parameters at 1000 classes. Like
torchvision it average-pools adaptively to 6x6 before fc6 (PyTorch's bins: rows
floor(i*H/6) .. ceil((i+1)*H/6)), so any input of at least 63 px gives the same parameters; at 224
the maps are already 6x6 and the pool is the identity, and maps smaller than 6x6 are repeated.

With `activation="maxout"` every layer feeding an activation has twice the outputs (see
layers.py); maxout pairs adjacent channels, so the two columns stay separate.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnet.models.layers import get_activation, lrn

paper_init = nn.initializers.normal(0.01)  # the paper's N(0, 0.01) for every weight
he_init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")  # He et al. 2015
# PyTorch's default for conv/linear weights (kaiming_uniform, a=sqrt(5)): U(+-1/sqrt(fan_in)).
torch_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


class AlexNet(nn.Module):
    """The two-column 2012 net; returns logits [N, num_classes] (float32)."""

    num_classes: int
    dropout_rate: float = 0.5
    fc_features: int = 4096
    activation: str = "relu"
    # paper: N(0, 0.01), biases 1 in conv2/4/5, fc6/7 | he: He-normal conv1-fc7, biases 0 (fc8 keeps
    # N(0, 0.01)). The paper's init needs its 0-255 inputs and large maps; see docs/models.md.
    init_scheme: str = "paper"
    # True: the grouped convs (conv2/4/5) are computed column by column as dot products with an
    # explicit column axis (ColumnConv), same parameters and outputs; XLA's SPMD partitioner then
    # keeps each column on its own device of a `model` mesh axis, where it gathers grouped convs.
    column_parallel: bool = False
    # True: the grouped convs run as one ungrouped conv per column on channel slices of the same
    # `kernel` (split_group_conv), same parameters and outputs. XLA:CPU's grouped convs are slow
    # (AlexNet at 67 px: 1,224 against 549 ms per step on one device), and under data parallelism
    # XLA gathers their inputs so every device convolves the whole batch. False: lax's
    # feature_group_count, as the model-parallel experiment's "XLA's grouped convs" rows need.
    split_columns: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        act, widen = get_activation(self.activation)
        if self.init_scheme not in ("paper", "he"):
            raise ValueError(f"alexnet init_scheme must be 'paper' or 'he', got {self.init_scheme!r}")
        kernel_init = paper_init if self.init_scheme == "paper" else he_init
        one = 1.0 if self.init_scheme == "paper" else 0.0  # the paper's bias for conv2/4/5 and fc6/7

        def conv(y, features, kernel, stride=1, groups=1, bias=0.0, name=None):
            if groups > 1 and self.column_parallel:
                y = ColumnConv(features * widen, kernel, groups, kernel_init,
                               nn.initializers.constant(bias), self.dtype, name=name)(y)
                return act(y)
            # conv1 (stride 4) is unpadded: 227 -> 55; the others keep their input's size.
            y = nn.Conv(features * widen, (kernel, kernel), (stride, stride),
                        padding=[(kernel // 2, kernel // 2)] * 2 if stride == 1 else "VALID",
                        feature_group_count=groups, kernel_init=kernel_init,
                        conv_general_dilated=split_group_conv if self.split_columns else None,
                        bias_init=nn.initializers.constant(bias), dtype=self.dtype, name=name)(y)
            return act(y)

        def pool(y):
            return nn.max_pool(y, (3, 3), strides=(2, 2))  # overlapping: 3x3 windows, stride 2

        x = x.astype(self.dtype)
        x = pool(_lrn_per_column(conv(x, 96, 11, stride=4, name="conv1")))
        x = pool(_lrn_per_column(conv(x, 256, 5, groups=2, bias=one, name="conv2")))
        x = conv(x, 384, 3, name="conv3")
        x = conv(x, 384, 3, groups=2, bias=one, name="conv4")
        x = pool(conv(x, 256, 3, groups=2, bias=one, name="conv5"))
        _check_size(x, "alexnet", 67)
        x = x.reshape(x.shape[0], -1)
        for name in ("fc6", "fc7"):
            x = nn.Dense(self.fc_features * widen, kernel_init=kernel_init,
                         bias_init=nn.initializers.constant(one), dtype=self.dtype, name=name)(x)
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(act(x))
        x = nn.Dense(self.num_classes, kernel_init=paper_init, dtype=self.dtype, name="fc8")(x)
        return x.astype(jnp.float32)


class AlexNetOneGPU(nn.Module):
    """torchvision's one-column AlexNet; returns logits [N, num_classes] (float32)."""

    num_classes: int
    dropout_rate: float = 0.5
    fc_features: int = 4096
    activation: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        act, widen = get_activation(self.activation)

        def conv(y, features, kernel, stride=1, pad=1, name=None):
            y = nn.Conv(features * widen, (kernel, kernel), (stride, stride), padding=[(pad, pad)] * 2,
                        kernel_init=torch_init, dtype=self.dtype, name=name)(y)
            return act(y)

        def pool(y):
            return nn.max_pool(y, (3, 3), strides=(2, 2))

        x = x.astype(self.dtype)
        x = pool(conv(x, 64, 11, stride=4, pad=2, name="conv1"))
        x = pool(conv(x, 192, 5, pad=2, name="conv2"))
        x = conv(x, 384, 3, name="conv3")
        x = conv(x, 256, 3, name="conv4")
        x = pool(conv(x, 256, 3, name="conv5"))
        _check_size(x, "alexnet_onegpu", 63)
        x = adaptive_avg_pool(x, 6).reshape(x.shape[0], -1)
        for name in ("fc6", "fc7"):  # torchvision's order: dropout before each hidden fc
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = act(nn.Dense(self.fc_features * widen, kernel_init=torch_init, dtype=self.dtype,
                             name=name)(x))
        x = nn.Dense(self.num_classes, kernel_init=torch_init, dtype=self.dtype, name="fc8")(x)
        return x.astype(jnp.float32)


class ColumnConv(nn.Module):
    """A stride-1, same-padded grouped conv with nn.Conv's parameters (`kernel` [k, k, C/groups,
    features], `bias`), computed as a sum over the k*k kernel offsets of one dot product each
    with the column (group) as a batch dimension. Same result as nn.Conv(feature_group_count=
    groups); when the channels are split over a mesh axis, XLA partitions these dot products
    column by column with no communication (it gathers whole grouped convs instead)."""

    features: int
    kernel_size: int
    groups: int
    kernel_init: Any
    bias_init: Any
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, g = self.kernel_size, self.groups
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1] // g, self.features),
                            jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        return column_conv(x.astype(self.dtype), kernel.astype(self.dtype), g) + bias.astype(self.dtype)


def column_conv(x, kernel, groups: int):
    """Grouped conv (stride 1, padding k // 2) of NHWC `x` with an HWIO `kernel` whose output
    channels are `groups` consecutive blocks: out[..., g-th block] = conv(x[..., g-th input
    block], kernel[..., g-th block])."""
    n, h, w, c = x.shape
    k, _, c_in, features = kernel.shape
    p = k // 2
    xg = jnp.pad(x.reshape(n, h, w, groups, c // groups), ((0, 0), (p, p), (p, p), (0, 0), (0, 0)))
    kg = kernel.reshape(k, k, c_in, groups, features // groups)
    out = sum(jnp.einsum("nhwgc,cgo->nhwgo", xg[:, dy:dy + h, dx:dx + w], kg[dy, dx])
              for dy in range(k) for dx in range(k))
    return out.reshape(n, h, w, features)


def split_group_conv(lhs, rhs, *args, feature_group_count: int = 1, **kwargs):
    """lax.conv_general_dilated for NHWC `lhs` and HWIO `rhs`, a grouped conv computed as one
    ungrouped conv per group on channel slices, concatenated: the same function as
    feature_group_count=groups (nn.Conv's `conv_general_dilated` hook, so its parameters stay)."""
    if feature_group_count == 1:
        return lax.conv_general_dilated(lhs, rhs, *args, **kwargs)
    pairs = zip(jnp.split(lhs, feature_group_count, axis=-1),
                jnp.split(rhs, feature_group_count, axis=-1))
    return jnp.concatenate([lax.conv_general_dilated(x, w, *args, **kwargs) for x, w in pairs],
                           axis=-1)


def _lrn_per_column(x):
    """The paper's LRN (k=2, n=5, alpha=1e-4, beta=0.75) within each of the two columns."""
    n, h, w, c = x.shape
    return lrn(x.reshape(n, h, w, 2, c // 2)).reshape(x.shape)


def adaptive_avg_pool(x, size: int):
    """PyTorch's AdaptiveAvgPool2d(size) on NHWC: bin i averages rows floor(iH/s)..ceil((i+1)H/s)."""

    def bins(length):
        m = np.zeros((size, length), np.float32)
        for i in range(size):
            lo, hi = (i * length) // size, -(-(i + 1) * length // size)
            m[i, lo:hi] = 1.0 / (hi - lo)
        return jnp.asarray(m, x.dtype)

    return jnp.einsum("ih,jw,nhwc->nijc", bins(x.shape[1]), bins(x.shape[2]), x)


def _check_size(x, name, min_px):
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"{name} needs inputs of at least {min_px}x{min_px} px")
