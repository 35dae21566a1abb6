"""torchvision's GoogLeNet: Inception-v1 with batch norm, registered as `googlenet_bn`.

Not the 2014 paper's net (that is `googlenet`): every conv is conv (no bias) -> BatchNorm
(eps 0.001) -> ReLU, the "5x5" branch uses a 3x3 conv, there is no LRN, the max-pools use
PyTorch's ceil_mode (3x3/2, and 2x2/2 after 4e), dropout before the classifier is 0.2, and the
aux heads pool adaptively to 4x4. Channel counts are Table 1's. Module names follow torchvision's
(`conv1/conv`, `conv1/bn`, `inception3a/branch2_1`, `aux1/fc1`, `fc`) so that
`jaxnet.weights.from_torchvision` maps its state dicts one to one; 6,624,904 parameters at
1000 classes without the aux heads (13,004,888 with them), as torchvision.

`transform_input=True` reproduces torchvision's `transform_input`: it maps an image normalised with
the ImageNet mean/std to one normalised to [-1, 1] ((x * std + mean - 0.5) / 0.5 per channel)
before the stem. torchvision's pretrained GoogLeNet weights (trained that way) need it; random
torchvision models default to False, as here.

Aux heads (on 4a and 4d) run only with `train=True`, when the net returns
{"logits": main, "aux_logits": [aux1, aux2]} as `googlenet` does; `init` creates their parameters
so an eval-mode init can train; `aux_logits=False` removes them.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxnet.models.alexnet import adaptive_avg_pool
from jaxnet.models.googlenet import TABLE1
from jaxnet.models.layers import get_activation

# torchvision's init_weights: N(0, 0.01) (truncated at +-2, i.e. 200 std: plain normal) for convs
# and linears; BN gamma 1, beta 0.
weight_init = nn.initializers.normal(0.01)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicConv(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 0.001) -> activation: torchvision's BasicConv2d."""

    features: int
    kernel: int
    stride: int = 1
    activation: str = "relu"
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x, train: bool = False):
        act, widen = get_activation(self.activation)
        k, p = self.kernel, self.kernel // 2
        x = nn.Conv(self.features * widen, (k, k), (self.stride, self.stride), padding=[(p, p)] * 2,
                    use_bias=False, kernel_init=weight_init, dtype=self.dtype, name="conv")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-3,
                         dtype=self.dtype, name="bn")(x)
        return act(x)


def ceil_max_pool(x, window: int, stride: int):
    """PyTorch's MaxPool2d(window, stride, ceil_mode=True) without padding, on NHWC.

    Output size ceil((size - window) / stride) + 1, less one if the last window would start past
    the input; the windows that run over the edge see -inf there (flax's max-pool padding)."""
    pads = []
    for size in x.shape[1:3]:
        out = (size - window + stride - 1) // stride + 1
        if (out - 1) * stride >= size:
            out -= 1
        if out < 1:
            raise ValueError(f"googlenet_bn: a {size}x{size} map is too small for its"
                             f" {window}x{window} max-pool; use inputs of at least 32 px")
        pads.append((0, (out - 1) * stride + window - size))
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=pads)


class InceptionBN(nn.Module):
    """1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 (the "5x5" branch) | max-pool 3/1 -> 1x1, concatenated."""

    spec: Any
    activation: str = "relu"
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x, train: bool = False):
        c1, r3, c3, r5, c5, pp = self.spec
        conv = lambda f, k, name: BasicConv(f, k, 1, self.activation, self.dtype,  # noqa: E731
                                            self.bn_momentum, name=name)
        b1 = conv(c1, 1, "branch1")(x, train)
        b2 = conv(c3, 3, "branch2_1")(conv(r3, 1, "branch2_0")(x, train), train)
        b3 = conv(c5, 3, "branch3_1")(conv(r5, 1, "branch3_0")(x, train), train)
        pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        b4 = conv(pp, 1, "branch4_1")(pooled, train)
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class AuxHeadBN(nn.Module):
    """Adaptive avg-pool 4x4 -> BasicConv 1x1 128 -> fc1 1024 -> act -> dropout 0.7 -> fc2."""

    num_classes: int
    dropout_rate: float = 0.7
    activation: str = "relu"
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x, train: bool = False):
        act, widen = get_activation(self.activation)
        x = adaptive_avg_pool(x, 4)
        x = BasicConv(128, 1, 1, self.activation, self.dtype, self.bn_momentum, name="conv")(x, train)
        x = x.reshape(x.shape[0], -1)
        x = act(nn.Dense(1024 * widen, kernel_init=weight_init, dtype=self.dtype, name="fc1")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, kernel_init=weight_init, dtype=self.dtype, name="fc2")(x)
        return x.astype(jnp.float32)


class GoogLeNetBN(nn.Module):
    """torchvision's googlenet; logits [N, num_classes], or the logits + aux dict when train=True."""

    num_classes: int
    dropout_rate: float = 0.2
    aux_dropout_rate: float = 0.7
    aux_logits: bool = True
    transform_input: bool = False
    activation: str = "relu"
    dtype: Any = jnp.float32
    bn_momentum: float = 0.9  # flax convention (torch's momentum 0.1)

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.transform_input:
            mean, std = jnp.asarray(IMAGENET_MEAN), jnp.asarray(IMAGENET_STD)
            x = x * (std / 0.5) + (mean - 0.5) / 0.5
        x = x.astype(self.dtype)
        conv = lambda f, k, s, name: BasicConv(f, k, s, self.activation, self.dtype,  # noqa: E731
                                               self.bn_momentum, name=name)
        x = ceil_max_pool(conv(64, 7, 2, "conv1")(x, train), 3, 2)
        x = conv(64, 1, 1, "conv2")(x, train)
        x = ceil_max_pool(conv(192, 3, 1, "conv3")(x, train), 3, 2)
        run_aux = self.aux_logits and (train or self.is_initializing())
        aux = []
        for name in TABLE1:
            if name == "4a":
                x = ceil_max_pool(x, 3, 2)
            elif name == "5a":
                x = ceil_max_pool(x, 2, 2)
            x = InceptionBN(TABLE1[name], self.activation, self.dtype, self.bn_momentum,
                            name=f"inception{name}")(x, train)
            if run_aux and name in ("4a", "4d"):
                head = AuxHeadBN(self.num_classes, self.aux_dropout_rate, self.activation,
                                 self.dtype, self.bn_momentum, name=f"aux{len(aux) + 1}")
                aux.append(head(x, train))
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, kernel_init=weight_init, dtype=self.dtype, name="fc")(x)
        logits = x.astype(jnp.float32)
        if train and self.aux_logits:
            return {"logits": logits, "aux_logits": aux}
        return logits
