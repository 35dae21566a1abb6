"""AlexNet's Figure 1 net: a four-layer CNN for CIFAR-sized images, with a choice of activation.

Krizhevsky et al. 2012 compare ReLU and tanh units on "a four-layer convolutional neural network"
on CIFAR-10 without regularisation. Their cuda-convnet net of that size (layers-80sec.cfg) is:
conv 5x5x32 -> max-pool 3/2 -> conv 5x5x32 -> avg-pool 3/2 -> conv 5x5x64 -> avg-pool 3/2 ->
fully connected to the classes. This module is that net (without its response normalisation,
so that only the unit type differs), with `activation` any name in layers.ACTIVATIONS: sigmoid,
tanh, relu, leaky_relu, maxout (maxout convs have twice the filters, max over adjacent pairs).
Pools are 'SAME'-padded, so 32 px inputs give 16/8/4 maps (28 px: 14/7/4). Every unit type gets
the same LeCun-normal initialisation (variance 1/fan_in) and zero biases.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxnet.models.layers import get_activation


class SmallCNN(nn.Module):
    """Three 5x5 conv layers + one fully connected layer; returns logits [N, num_classes]."""

    num_classes: int
    activation: str = "relu"
    features: tuple = (32, 32, 64)
    dropout_rate: float = 0.0  # the paper's Figure 1 uses no regularisation
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        act, widen = get_activation(self.activation)
        if len(self.features) != 3:
            raise ValueError(f"small_cnn has three conv layers, got features={self.features}")
        x = x.astype(self.dtype)
        pools = (nn.max_pool, nn.avg_pool, nn.avg_pool)
        for i, (features, pool) in enumerate(zip(self.features, pools)):
            x = nn.Conv(features * widen, (5, 5), padding="SAME", dtype=self.dtype,
                        name=f"conv{i + 1}")(x)
            x = pool(act(x), (3, 3), strides=(2, 2), padding="SAME")
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
        return x.astype(jnp.float32)
