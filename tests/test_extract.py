"""Features from any layer (jaxnet.transfer.extract) on tiny nets: 8-wide ResNet-18 at 32 px,
AlexNet (one GPU) with 64-wide fc layers at 63 px, and googlenet_bn at 32 px. One compile per
model: all layers are extracted in one call."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.models import create_model
from jaxnet.transfer import extract, feature_fn, layer_names

N = 5


def _random_variables(model, x):
    """Random variables shaped like model.init's, drawn with numpy (compiling init costs ~20 s):
    He-normal kernels, biases and BN shifts/means N(0, 0.1), BN scales and variances in [0.5, 1.5]."""
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), x[:1], train=False))
    rng = np.random.default_rng(0)

    def draw(path, leaf):
        name = path[-1].key
        if name == "kernel":
            return rng.standard_normal(leaf.shape, np.float32) * np.float32(
                np.sqrt(2 / np.prod(leaf.shape[:-1])))
        if name in ("scale", "var"):
            return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
        return rng.standard_normal(leaf.shape, np.float32) * np.float32(0.1)

    return jax.tree_util.tree_map_with_path(draw, abstract)


def _setup(name, px, **overrides):
    model = create_model(name, num_classes=10, **overrides)
    x = np.random.default_rng(0).standard_normal((N, px, px, 3)).astype(np.float32)
    return model, _random_variables(model, x), x


def _logits(model, variables, x):
    return np.asarray(jax.jit(lambda v, im: model.apply(v, im, train=False))(variables, x))


def test_layer_names():
    assert layer_names("resnet50") == ["stem", "stage1", "stage2", "stage3", "stage4", "pre_logits",
                                       "logits"]
    assert layer_names(create_model("resnet18", num_classes=3, stage_sizes=(1, 1))) == [
        "stem", "stage1", "stage2", "pre_logits", "logits"]
    names = layer_names("googlenet_bn")
    assert names[0] == "stem" and names[1] == "inception3a" and names[9] == "inception5b"
    assert layer_names("googlenet") == names
    assert layer_names("alexnet")[:6] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6"]
    with pytest.raises(JaxnetError, match="unknown model"):
        layer_names("vgg16")


def test_resnet_layers_shapes_and_consistency():
    model, variables, x = _setup("resnet18", 32, width=8)
    layers = layer_names(model)
    spatial = extract(model, variables, x, layers, pool="none", batch_size=2)  # 3 batches, 1 padded
    shapes = {k: v.shape for k, v in spatial.items()}
    assert shapes == {"stem": (N, 8, 8, 8), "stage1": (N, 8, 8, 8), "stage2": (N, 4, 4, 16),
                      "stage3": (N, 2, 2, 32), "stage4": (N, 1, 1, 64), "pre_logits": (N, 64),
                      "logits": (N, 10)}
    assert all(v.dtype == np.float32 for v in spatial.values())
    np.testing.assert_allclose(spatial["logits"], _logits(model, variables, x), rtol=1e-5, atol=1e-6)
    # pre-logits is the global average of stage 4, and fc of it gives the logits
    np.testing.assert_allclose(spatial["pre_logits"], spatial["stage4"].mean(axis=(1, 2)), rtol=1e-5)
    fc = variables["params"]["fc"]
    np.testing.assert_allclose(spatial["pre_logits"] @ fc["kernel"] + fc["bias"], spatial["logits"],
                               rtol=1e-4, atol=1e-5)
    assert np.all(spatial["stage2"] >= 0)  # after the block's ReLU
    # pool="avg" = the spatial mean; one layer -> one array; batch size does not matter
    pooled = extract(model, variables, x, "stage2")
    assert pooled.shape == (N, 16)
    np.testing.assert_allclose(pooled, spatial["stage2"].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_alexnet_layers():
    model, variables, x = _setup("alexnet_onegpu", 63, fc_features=64)
    out = extract(model, variables, x, layer_names(model), pool="none")
    assert {k: v.shape[1:] for k, v in out.items()} == {
        "conv1": (15, 15, 64), "conv2": (7, 7, 192), "conv3": (3, 3, 384), "conv4": (3, 3, 256),
        "conv5": (3, 3, 256), "fc6": (64,), "pre_logits": (64,), "logits": (10,)}
    assert all(np.all(out[k] >= 0) for k in ("conv1", "conv5", "fc6", "pre_logits"))  # ReLU'd
    fc8 = variables["params"]["fc8"]
    np.testing.assert_allclose(out["pre_logits"] @ fc8["kernel"] + fc8["bias"], out["logits"],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["logits"], _logits(model, variables, x), rtol=1e-5, atol=1e-6)


def test_googlenet_bn_layers():
    model, variables, x = _setup("googlenet_bn", 32)
    out = extract(model, variables, x, layer_names(model), pool="none")
    shapes = {k: v.shape[1:] for k, v in out.items()}
    assert shapes["stem"] == (4, 4, 192) and shapes["inception3a"] == (4, 4, 256)
    assert shapes["inception3b"] == (4, 4, 480) and shapes["inception4a"] == (2, 2, 512)
    assert shapes["inception4e"] == (2, 2, 832) and shapes["inception5a"] == (1, 1, 832)
    assert shapes["inception5b"] == (1, 1, 1024) and shapes["pre_logits"] == (1024,)
    np.testing.assert_allclose(out["pre_logits"], out["inception5b"].mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(out["logits"], _logits(model, variables, x), rtol=1e-5, atol=1e-6)


def test_bad_layer_and_pool_are_one_line_errors():
    model = create_model("resnet18", num_classes=10, width=8)
    x = np.zeros((1, 32, 32, 3), np.float32)
    with pytest.raises(JaxnetError) as info:
        extract(model, {}, x, "stage5")
    message = str(info.value)
    assert "\n" not in message and "'stage5'" in message
    assert "stem, stage1, stage2, stage3, stage4, pre_logits, logits" in message
    with pytest.raises(JaxnetError, match="pool must be one of avg, none"):
        feature_fn(model, "stem", pool="max")


def test_feature_fn_is_pure_and_jittable():
    model, variables, x = _setup("resnet18", 32, width=8, stage_sizes=(1, 1))
    fn = jax.jit(feature_fn(model, ["stem", "stage2"], pool="avg"))
    out = fn(variables, jnp.asarray(x))
    assert out["stem"].shape == (N, 8) and out["stage2"].shape == (N, 16)
    again = fn(variables, jnp.asarray(x))
    np.testing.assert_array_equal(out["stage2"], again["stage2"])
