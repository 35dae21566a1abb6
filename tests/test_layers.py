"""LRN against the paper's formula, maxout, and the activation table (also through ResNet)."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.models import create_model, resnet
from jaxnet.models.layers import ACTIVATIONS, MAXOUT_PIECES, get_activation, lrn, maxout


def lrn_loop(a, k, n, alpha, beta):
    """Krizhevsky et al. 2012, section 3.3, one output at a time (channels last)."""
    out = np.empty_like(a)
    channels = a.shape[-1]
    for idx in np.ndindex(a.shape[:-1]):
        for i in range(channels):
            lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
            s = sum(a[idx + (j,)] ** 2 for j in range(lo, hi + 1))
            out[idx + (i,)] = a[idx + (i,)] / (k + alpha * s) ** beta
    return out


@pytest.mark.parametrize("kwargs", [
    {},  # the paper's k=2, n=5, alpha=1e-4, beta=0.75
    dict(k=1.0, n=3, alpha=1e-3, beta=0.5),
])
def test_lrn_matches_formula(kwargs):
    # Values around 50 make alpha * sum(a^2) comparable to k, so the sum really matters.
    a = np.random.default_rng(0).normal(0, 50, (2, 3, 2, 9)).astype(np.float32)
    params = dict(k=2.0, n=5, alpha=1e-4, beta=0.75) | kwargs
    want = lrn_loop(a.astype(np.float64), **params)
    got = np.asarray(lrn(jnp.asarray(a), **params))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.abs(want - a / params["k"] ** params["beta"]).max() > 1.0  # the window term matters


def test_lrn_keeps_dtype():
    a = jnp.linspace(-60, 60, 2 * 4 * 8).reshape(2, 4, 8).astype(jnp.bfloat16)
    out = lrn(a)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32),
                               lrn_loop(np.asarray(a, np.float64), 2.0, 5, 1e-4, 0.75), rtol=2e-2)


def test_maxout_pairs_adjacent_channels():
    x = jnp.asarray([[1.0, -2.0, 3.0, 5.0, -1.0, -4.0]])
    np.testing.assert_array_equal(maxout(x), [[1.0, 5.0, -1.0]])
    assert MAXOUT_PIECES == 2
    with pytest.raises(ValueError, match="divisible"):
        maxout(jnp.ones((1, 3)))


def test_activation_table():
    assert set(ACTIVATIONS) == {"relu", "sigmoid", "tanh", "leaky_relu", "maxout"}
    x = jnp.asarray([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"](x), [-0.1, 0.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(ACTIVATIONS["relu"](x), [0.0, 0.0, 2.0])
    np.testing.assert_allclose(ACTIVATIONS["tanh"](x), np.tanh([-1.0, 0.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"](x), 1 / (1 + np.exp([1.0, 0.0, -2.0])), rtol=1e-6)
    assert [get_activation(n)[1] for n in ("relu", "maxout")] == [1, 2]
    with pytest.raises(ValueError, match="activation must be one of"):
        get_activation("gelu")


def _param_count(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def _shapes(name, activation, px):
    """(logits, variables) shapes of `name` at 10 classes, traced once with jax.eval_shape."""
    model = create_model(name, num_classes=10, activation=activation)
    return jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), jnp.zeros((2, px, px, 3))))


@pytest.mark.parametrize("name", ["alexnet", "alexnet_onegpu", "googlenet", "resnet18", "resnet50"])
def test_every_model_takes_every_activation(name):
    """Logits keep their shape; maxout doubles the layers before it, the others change nothing."""
    px = {"alexnet": 227, "alexnet_onegpu": 224}.get(name, 64)
    base = _param_count(_shapes(name, "relu", px)[1]["params"])
    for activation in sorted(ACTIVATIONS):
        out, variables = _shapes(name, activation, px)
        assert out.shape == (2, 10) and out.dtype == jnp.float32
        count = _param_count(variables["params"])
        assert (count > 1.5 * base) if activation == "maxout" else (count == base), activation


@pytest.mark.parametrize("strides, features", [(1, 64), (2, 128)])
def test_resnet_maxout_block_starts_as_its_shortcut(strides, features):
    """With maxout, a block's convs/BNs are twice as wide and the shortcut is repeated, so with
    the last BN's gamma at zero the block outputs max(s, s) = its shortcut s, as with ReLU."""
    conv = resnet._torch_padding(functools.partial(nn.Conv, use_bias=False))
    norm = functools.partial(nn.BatchNorm, use_running_average=True)
    block = resnet.BasicBlock(features=features, strides=strides, shortcut="B", conv=conv, norm=norm,
                              act=maxout, zero_init_last=True, widen=2)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 64))
    out, variables = block.init_with_output(jax.random.key(1), x)
    p = variables["params"]
    assert p["conv1"]["kernel"].shape == (3, 3, 64, 2 * features)
    assert p["conv2"]["kernel"].shape == (3, 3, features, 2 * features)  # maxout halved conv1
    if strides == 1:
        want = x
    else:  # the projection shortcut keeps its ReLU-net width, then is repeated
        assert p["proj_conv"]["kernel"].shape == (1, 1, 64, features)
        proj = nn.Conv(features, (1, 1), strides=2, use_bias=False)
        want = norm().apply({"params": p["proj_bn"], "batch_stats": variables["batch_stats"]["proj_bn"]},
                            proj.apply({"params": p["proj_conv"]}, x))
    assert out.shape == (2, 8 // strides, 8 // strides, features)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_resnet_counts_unchanged():
    counts = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}
    for name, want in counts.items():
        model = create_model(name, num_classes=1000)
        v = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3))))
        assert _param_count(v["params"]) == want
