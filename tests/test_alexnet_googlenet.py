"""AlexNet (two-column and one-column) and GoogLeNet: shapes, parameter counts, grouping, aux heads,
sharded steps and overfitting. Paper-resolution checks use jax.eval_shape; real runs use tiny
inputs (67 / 63 / 32 px: the smallest AlexNet inputs, and a small one for GoogLeNet), 256-wide
AlexNet fc layers, and one set of parameters per model shared by all tests (`tiny`)."""
import functools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxnet.models import create_model
from jaxnet.models.alexnet import adaptive_avg_pool
from jaxnet.models.googlenet import TABLE1

# name -> (tiny input size, overrides for the cheap runs, overrides that switch dropout off)
TINY = {
    "alexnet": (67, dict(fc_features=256), dict(dropout_rate=0.0)),
    "alexnet_onegpu": (63, dict(fc_features=256), dict(dropout_rate=0.0)),
    "googlenet": (32, {}, dict(dropout_rate=0.0, aux_dropout_rate=0.0)),
}
# For functions that run once or twice: skip LLVM's optimisations (GoogLeNet's init and grad steps
# compile about twice as fast this way, and run slower).
RUN_ONCE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def count(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def shapes(name, px, train=False, batch=2, **overrides):
    """(variables, output) shapes of `name` at px x px, without computing anything."""
    model = create_model(name, num_classes=1000, **overrides)
    x = jnp.zeros((batch, px, px, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    out = jax.eval_shape(
        lambda v: model.apply(v, x, train=train, rngs={"dropout": jax.random.key(1)}), variables)
    return variables, out


# ---------------------------------------------------------------- shapes and parameter counts

def test_alexnet_shapes_at_227():
    variables, out = shapes("alexnet", 227)
    assert out.shape == (2, 1000) and out.dtype == jnp.float32
    p = variables["params"]
    assert p["fc6"]["kernel"].shape == (6 * 6 * 256, 4096)  # 227 -> 55 -> 27 -> 13 -> 6
    assert count(p) == 60_965_224
    _, out_train = shapes("alexnet", 227, train=True)
    assert out_train.shape == (2, 1000)  # no aux heads: plain logits in training too


def test_alexnet_onegpu_matches_torchvision_count():
    for px in (224, 227, 63):  # adaptive 6x6 pool: same parameters at any accepted size
        variables, out = shapes("alexnet_onegpu", px)
        assert out.shape == (2, 1000)
        assert count(variables["params"]) == 61_100_840


@pytest.mark.parametrize("h, w", [(6, 6), (7, 5), (13, 13), (2, 1)])
def test_adaptive_pool_is_pytorchs(h, w):
    """AdaptiveAvgPool2d(6): bin i averages rows floor(i*H/6) .. ceil((i+1)*H/6) - 1."""
    x = np.random.default_rng(0).normal(size=(2, h, w, 3)).astype(np.float32)
    want = np.empty((2, 6, 6, 3), np.float32)
    for i in range(6):
        for j in range(6):
            rows = slice(i * h // 6, -(-(i + 1) * h // 6))
            cols = slice(j * w // 6, -(-(j + 1) * w // 6))
            want[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    np.testing.assert_allclose(adaptive_avg_pool(jnp.asarray(x), 6), want, rtol=1e-5, atol=1e-6)


def test_too_small_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 67"):
        shapes("alexnet", 66)
    with pytest.raises(ValueError, match="at least 63"):
        shapes("alexnet_onegpu", 62)


def test_googlenet_shapes_at_224():
    model = create_model("googlenet", num_classes=1000)
    x = jnp.zeros((2, 224, 224, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    out, state = jax.eval_shape(
        lambda v: model.apply(v, x, capture_intermediates=True, mutable=["intermediates"]), variables)
    assert out.shape == (2, 1000) and out.dtype == jnp.float32
    # Table 1's output sizes, module by module.
    want = {"3a": (28, 256), "3b": (28, 480), "4a": (14, 512), "4b": (14, 512), "4c": (14, 512),
            "4d": (14, 528), "4e": (14, 832), "5a": (7, 832), "5b": (7, 1024)}
    for name, (size, channels) in want.items():
        got = state["intermediates"][f"inception{name}"]["__call__"][0].shape
        assert got == (2, size, size, channels), name
    assert variables["params"]["aux1"]["fc"]["kernel"].shape == (4 * 4 * 128, 1024)

    _, train_out = shapes("googlenet", 224, train=True)
    assert train_out["logits"].shape == (2, 1000)
    assert [a.shape for a in train_out["aux_logits"]] == [(2, 1000), (2, 1000)]


# Table 1 "params" column. The paper counts weights (no biases) in units of 1024. Rows whose entry
# matches their own channel numbers to within rounding:
PAPER_EXACT = {"conv2": 112, "3a": 159, "3b": 380, "4b": 437, "classifier": 1000}
# Rows whose entry does not follow from the same row's channel numbers (the paper's slips):
# 4a 366.75 vs 364, 4c 497.5 vs 463, 4d 590.5 vs 580, 4e 847 vs 840, 5a 1018 vs 1072,
# 5b 1409 vs 1388 (and conv1: 7*7*3*64 = 9408 = 9.2K, listed as 2.7K).
PAPER_OFF = {"4a": 364, "4c": 463, "4d": 580, "4e": 840, "5a": 1072, "5b": 1388}


def table1_weights(row, in_channels):
    """Weights of one Inception module, computed straight from its Table 1 row."""
    c1, r3, c3, r5, c5, pp = row
    return in_channels * (c1 + r3 + r5 + pp) + r3 * c3 * 9 + r5 * c5 * 25


def test_googlenet_params_per_module():
    variables, _ = shapes("googlenet", 224)
    p = variables["params"]

    def weights(tree):
        return sum(x.size for path, x in jax.tree_util.tree_leaves_with_path(tree)
                   if path[-1].key == "kernel")

    module_weights = {"conv2": weights(p["conv2_reduce"]) + weights(p["conv2"]),
                      "classifier": weights(p["classifier"])}
    in_channels = 192
    for name, row in TABLE1.items():
        module_weights[name] = weights(p[f"inception{name}"])
        assert module_weights[name] == table1_weights(row, in_channels), name
        assert count(p[f"inception{name}"]) == module_weights[name] + sum(row)  # + biases
        in_channels = row[0] + row[2] + row[4] + row[5]
    for name, paper_k in PAPER_EXACT.items():
        assert abs(module_weights[name] / 1024 - paper_k) <= 1.0, name
    for name, paper_k in PAPER_OFF.items():
        assert abs(module_weights[name] / 1024 / paper_k - 1) < 0.08, name

    main = {k: v for k, v in p.items() if not k.startswith("aux")}
    assert count(main) == 6_998_552  # the inference net, biases included (paper: ~6.8M)
    assert count(p["aux1"]) == 3_188_840 and count(p["aux2"]) == 3_190_888
    assert count(p) == 13_378_280


def test_bfloat16_compute_keeps_float32_params_and_logits():
    for name, px in (("alexnet", 227), ("alexnet_onegpu", 224), ("googlenet", 224)):
        variables, out = shapes(name, px, dtype=jnp.bfloat16)
        assert out.dtype == jnp.float32
        assert {x.dtype for x in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


# ---------------------------------------------------------------- AlexNet's two columns

def test_alexnet_paper_init_and_grouped_kernels():
    p = tiny("alexnet").params
    assert p["conv2"]["kernel"].shape == (5, 5, 48, 256)  # each column sees 48 of conv1's 96 maps
    assert p["conv3"]["kernel"].shape == (3, 3, 256, 384)  # conv3 connects the columns
    assert p["conv4"]["kernel"].shape == (3, 3, 192, 384)
    assert p["conv5"]["kernel"].shape == (3, 3, 192, 256)
    assert count(p["conv2"]) == 5 * 5 * 48 * 256 + 256
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        assert abs(float(jnp.std(p[layer]["kernel"])) - 0.01) < 1e-3, layer
        want_bias = 1.0 if layer in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert np.all(np.asarray(p[layer]["bias"]) == want_bias), layer


def test_alexnet_he_init_scheme():
    model = create_model("alexnet", num_classes=10, fc_features=256, init_scheme="he")
    p = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 67, 67, 1)))["params"]
    fan_in = {"conv1": 11 * 11 * 1, "conv3": 3 * 3 * 256, "fc7": 256}
    for layer, n in fan_in.items():  # He normal: std sqrt(2 / fan_in), biases 0
        assert float(jnp.std(p[layer]["kernel"])) == pytest.approx((2 / n) ** 0.5, rel=0.1), layer
    assert all(np.all(np.asarray(p[k]["bias"]) == 0) for k in p)
    assert abs(float(jnp.std(p["fc8"]["kernel"])) - 0.01) < 2e-3
    with pytest.raises(ValueError, match="init_scheme"):
        create_model("alexnet", num_classes=10, init_scheme="xavier").init(
            jax.random.PRNGKey(0), jnp.zeros((1, 67, 67, 1)))


def _conv_outputs(model, variables, x, perturb_layer):
    """Every conv's output, with `perturb_layer`'s output changed in its second column."""
    outputs = {}

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, nn.Conv):
            if context.module.name == perturb_layer:
                out = out.at[..., out.shape[-1] // 2:].add(3.0)
            outputs[context.module.name] = out
        return out

    with nn.intercept_methods(interceptor):
        model.apply(variables, x)
    return outputs


def test_alexnet_columns_are_independent():
    """Changing column 2's maps leaves column 1 of the next grouped conv exactly unchanged."""
    t = tiny("alexnet")
    model, variables, x = t.model, {"params": t.params}, t.images[:2]
    base = _conv_outputs(model, variables, x, None)
    for perturbed, grouped, mixing in (("conv1", "conv2", "conv3"), ("conv3", "conv4", None)):
        out = _conv_outputs(model, variables, x, perturbed)
        half = out[grouped].shape[-1] // 2
        np.testing.assert_array_equal(out[grouped][..., :half], base[grouped][..., :half])
        assert np.abs(out[grouped][..., half:] - base[grouped][..., half:]).max() > 1e-3
        if mixing:  # the full conv3 sees both columns
            assert np.abs(out[mixing][..., :half] - base[mixing][..., :half]).max() > 1e-3
    np.testing.assert_array_equal(out["conv5"][..., :128], base["conv5"][..., :128])


def test_alexnet_split_columns_is_the_grouped_conv():
    """split_columns (the default: one ungrouped conv per column) and lax's feature_group_count
    share parameters and give the same logits and gradients."""
    t = tiny("alexnet", dropout=False)
    grouped = t.model.clone(split_columns=False)
    assert t.model.split_columns

    def loss(model, params):
        return cross_entropy(model.apply({"params": params}, t.images), t.labels)

    for model in (t.model, grouped):  # same parameter tree and shapes
        shapes = jax.eval_shape(model.init, jax.random.key(1), t.images[:1])["params"]
        assert jax.tree.map(jnp.shape, shapes) == jax.tree.map(jnp.shape, t.params)
    split_loss, split_grads = jax.value_and_grad(functools.partial(loss, t.model))(t.params)
    group_loss, group_grads = jax.value_and_grad(functools.partial(loss, grouped))(t.params)
    np.testing.assert_allclose(split_loss, group_loss, rtol=1e-6)
    assert float(split_loss) > 1.0  # a real loss, not a degenerate zero
    for name in ("conv2", "conv4", "conv5", "fc8"):
        g = group_grads[name]["kernel"]
        assert float(jnp.abs(g).max()) > 0
        np.testing.assert_allclose(split_grads[name]["kernel"], g, rtol=1e-4,
                                   atol=1e-5 * float(jnp.abs(g).max()))


# ---------------------------------------------------------------- GoogLeNet's aux heads

def test_googlenet_aux_heads_only_in_training():
    t = tiny("googlenet")
    assert {"aux1", "aux2"} <= set(t.params)  # created even by an eval-mode init
    x = t.images[:2]

    def run(params, train, model=t.model):
        return jax.eval_shape(lambda: model.apply({"params": params}, x, train=train,
                                                  rngs={"dropout": jax.random.key(0)}))

    assert run(t.params, False).shape == (2, 10)
    train_out = run(t.params, True)
    assert set(train_out) == {"logits", "aux_logits"}
    assert [a.shape for a in train_out["aux_logits"]] == [(2, 10), (2, 10)]
    # Inference never touches the aux parameters: it runs without them (flax would raise).
    main_only = {k: v for k, v in t.params.items() if not k.startswith("aux")}
    assert run(main_only, False).shape == (2, 10)
    with pytest.raises(Exception, match="aux1"):
        run(main_only, True)
    # Without aux heads: no aux parameters, and plain logits in training too.
    plain = create_model("googlenet", num_classes=10, aux_logits=False)
    out, v = jax.eval_shape(lambda: plain.init_with_output(
        {"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, train=True))
    assert not any(k.startswith("aux") for k in v["params"]) and out.shape == (2, 10)


# ---------------------------------------------------------------- training on tiny inputs

def cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


class Tiny(NamedTuple):
    model: nn.Module
    params: dict
    images: jax.Array
    labels: jax.Array


def tiny(name, dropout=True):
    """`name` at its tiny size, its initial parameters and a fixed batch of 8 (cached)."""
    return _tiny(name, dropout)


@functools.cache  # (called with positional arguments only, so each setting has one cache entry)
def _tiny(name, dropout):
    px, overrides, no_dropout = TINY[name]
    model = create_model(name, num_classes=10, **overrides, **({} if dropout else no_dropout))
    if not dropout:  # same parameters as the dropout twin: dropout has none
        return tiny(name)._replace(model=model)
    # Coarse random patterns (4x4 upsampled), so the 8 images differ as real photos do.
    images = jax.image.resize(jax.random.normal(jax.random.key(0), (8, 4, 4, 3)),
                              (8, px, px, 3), "linear")
    params = jax.jit(model.init, compiler_options=RUN_ONCE)(jax.random.key(1), images[:1])["params"]
    return Tiny(model, params, images, jnp.arange(8))


def train_step(name, dropout=True, run_once=False):
    """Jitted (loss, grads) of tiny(name, dropout): cross-entropy + 0.3 x each auxiliary loss."""
    return _train_step(name, dropout, run_once)


@functools.cache  # one jitted function per setting, so its compiled versions are reused
def _train_step(name, dropout, run_once):
    model = tiny(name, dropout).model

    def loss_fn(params, images, labels, key):
        out = model.apply({"params": params}, images, train=True, rngs={"dropout": key})
        if isinstance(out, dict):
            return cross_entropy(out["logits"], labels) + 0.3 * sum(
                cross_entropy(a, labels) for a in out["aux_logits"])
        return cross_entropy(out, labels)

    return jax.jit(jax.value_and_grad(loss_fn), compiler_options=RUN_ONCE if run_once else None)


# GoogLeNet's compiles are the slow ones, so its check runs without dropout and reuses the overfit
# test's one-device step; the AlexNets check that dropout masks are the same under sharding.
SHARDED_WITH_DROPOUT = {"alexnet": True, "alexnet_onegpu": True, "googlenet": False}


@pytest.mark.parametrize("name", sorted(TINY))
def test_sharded_step_matches_one_device(name, devices):
    """Data-parallel over 8 devices (batch sharded, params replicated) gives the 1-device result."""
    dropout = SHARDED_WITH_DROPOUT[name]
    t = tiny(name, dropout)
    key = jax.random.key(3)
    loss1, grads1 = train_step(name, dropout, run_once=dropout)(t.params, t.images, t.labels, key)

    mesh = Mesh(np.array(devices), ("data",))
    replicated, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    step = train_step(name, dropout, run_once=True)
    loss8, grads8 = step(jax.device_put(t.params, replicated), jax.device_put(t.images, batch),
                         jax.device_put(t.labels, batch), jax.device_put(key, replicated))
    assert len(loss8.sharding.device_set) == 8
    np.testing.assert_allclose(loss8, loss1, rtol=1e-5)
    for g8, g1 in zip(jax.tree.leaves(grads8), jax.tree.leaves(grads1)):
        np.testing.assert_allclose(g8, g1, rtol=1e-3, atol=1e-5 * float(jnp.abs(g1).max()) + 1e-12)


# name -> (Adam learning rate, steps). The paper's N(0, 0.01) init (with 256-wide fc layers and
# 1x1 conv5 maps here) makes the two-column AlexNet sit at the label prior (log 8) for ~20 steps
# before it starts to fit; the others fit at once.
OVERFIT = {"alexnet": (5e-4, 80), "alexnet_onegpu": (3e-4, 40), "googlenet": (1e-3, 30)}


@pytest.mark.parametrize("name", sorted(TINY))
def test_overfits_a_small_batch(name):
    """8 images, 8 labels, dropout off: the training loss falls to a fraction of its start."""
    t = tiny(name, dropout=False)
    lr, steps = OVERFIT[name]
    step = train_step(name, dropout=False)
    opt = optax.adam(lr)

    @jax.jit
    def update(params, opt_state, grads):
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    params, opt_state, losses = t.params, opt.init(t.params), []
    for i in range(steps):
        loss, grads = step(params, t.images, t.labels, jax.random.key(i))
        params, opt_state = update(params, opt_state, grads)
        losses.append(float(loss))
    assert np.mean(losses[-3:]) < 0.25 * losses[0], losses[::10]
