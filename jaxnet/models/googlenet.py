"""GoogLeNet (Inception-v1, Szegedy et al. 2014), built from the paper's Table 1.

No batch norm and real 5x5 branches (torchvision's copy has BN and 3x3 convs there). The paper
gives no LRN constants or initialisation; both follow its reference Caffe model (bvlc_googlenet):
LRN size 5, alpha 1e-4 / 5 (Caffe divides by n), beta 0.75, k 1; "xavier" (fan-in uniform)
weights and biases 0.2 in the conv layers and the auxiliary fc, 0 in the classifiers. Max-pools
3x3/2 use SAME padding, which equals Caffe's ceil-mode pools at 224 px (112 -> 56 -> 28 -> 14 -> 7).
The final 7x7 average pool is a global mean (the same at 224 px, and defined for any input size;
the tests use 32 px).

Auxiliary classifiers on 4a and 4d (avgpool 5x5/3, 1x1 conv 128, fc 1024, dropout 0.7, fc) run only
when `train=True`, where the net returns {"logits": main, "aux_logits": [aux1, aux2]}; the training
step adds 0.3 x each auxiliary cross-entropy. Their parameters are always created by `init` (as
`aux1`, `aux2`) so a state initialised with train=False can train; inference never touches them.
At 224 px their fc sees 4x4x128 = 2048 inputs; at other sizes the fc's fan-in follows the map
size, and maps under 5x5 (inputs below 65 px) are pooled whole.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxnet.models.layers import get_activation, lrn

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
TABLE1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

xavier = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")  # Caffe's "xavier" filler


def _conv_act(x, features, kernel, *, net, stride=1, name):
    """Conv (same padding, bias 0.2) + the net's activation, widened for maxout."""
    act, widen = get_activation(net.activation)
    x = nn.Conv(features * widen, (kernel, kernel), (stride, stride),
                padding=[(kernel // 2, kernel // 2)] * 2, kernel_init=xavier,
                bias_init=nn.initializers.constant(0.2), dtype=net.dtype, name=name)(x)
    return act(x)


def _same_max_pool(x, window, stride):
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding="SAME")


class Inception(nn.Module):
    """One Table 1 module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1, concatenated."""

    spec: Sequence[int]
    activation: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c1, r3, c3, r5, c5, pp = self.spec
        b1 = _conv_act(x, c1, 1, net=self, name="1x1")
        b3 = _conv_act(_conv_act(x, r3, 1, net=self, name="3x3_reduce"), c3, 3, net=self, name="3x3")
        b5 = _conv_act(_conv_act(x, r5, 1, net=self, name="5x5_reduce"), c5, 5, net=self, name="5x5")
        bp = _conv_act(_same_max_pool(x, 3, 1), pp, 1, net=self, name="pool_proj")
        return jnp.concatenate([b1, b3, b5, bp], axis=-1)


class AuxHead(nn.Module):
    """Auxiliary classifier: avgpool 5x5/3 -> 1x1 conv 128 -> fc 1024 -> dropout -> fc."""

    num_classes: int
    dropout_rate: float = 0.7
    activation: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        act, widen = get_activation(self.activation)
        window = min(5, x.shape[1]), min(5, x.shape[2])
        x = nn.avg_pool(x, window, strides=(3, 3))
        x = _conv_act(x, 128, 1, net=self, name="conv")
        x = x.reshape(x.shape[0], -1)
        x = nn.Dense(1024 * widen, kernel_init=xavier, bias_init=nn.initializers.constant(0.2),
                     dtype=self.dtype, name="fc")(x)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(act(x))
        x = nn.Dense(self.num_classes, kernel_init=xavier, dtype=self.dtype, name="classifier")(x)
        return x.astype(jnp.float32)


class GoogLeNet(nn.Module):
    """Inception-v1; logits [N, num_classes], or the logits + aux dict when train=True."""

    num_classes: int
    dropout_rate: float = 0.4
    aux_dropout_rate: float = 0.7
    aux_logits: bool = True
    activation: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        norm = lambda y: lrn(y, k=1.0, n=5, alpha=1e-4 / 5, beta=0.75)  # noqa: E731
        x = x.astype(self.dtype)
        x = _conv_act(x, 64, 7, net=self, stride=2, name="conv1")
        x = norm(_same_max_pool(x, 3, 2))
        x = _conv_act(x, 64, 1, net=self, name="conv2_reduce")
        x = _same_max_pool(norm(_conv_act(x, 192, 3, net=self, name="conv2")), 3, 2)
        run_aux = self.aux_logits and (train or self.is_initializing())
        aux = []
        for name in TABLE1:
            if name in ("4a", "5a"):
                x = _same_max_pool(x, 3, 2)
            x = Inception(TABLE1[name], self.activation, self.dtype, name=f"inception{name}")(x)
            if run_aux and name in ("4a", "4d"):
                head = AuxHead(self.num_classes, self.aux_dropout_rate, self.activation, self.dtype,
                               name=f"aux{len(aux) + 1}")
                aux.append(head(x, train))
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, kernel_init=xavier, dtype=self.dtype, name="classifier")(x)
        logits = x.astype(jnp.float32)
        if train and self.aux_logits:
            return {"logits": logits, "aux_logits": aux}
        return logits
