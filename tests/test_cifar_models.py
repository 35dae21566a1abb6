"""The ResNet paper's CIFAR nets (cifar_resnetN / cifar_plainN) and AlexNet Fig. 1's small CNN."""
import jax
import jax.numpy as jnp
import pytest

from jaxnet.models import create_model, list_models
from jaxnet.training.state import count_params

# RGB input, 10 classes; BatchNorm scales and offsets counted (running statistics are not params).
CIFAR_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}
PAPER = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}  # He et al. 2015, Table 6 (millions)


def variables(model, size=32, channels=3):
    x = jnp.zeros((1, size, size, channels))
    return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


@pytest.mark.parametrize("depth", sorted(CIFAR_PARAMS))
def test_parameter_counts_match_the_paper(depth):
    resnet = count_params(variables(create_model(f"cifar_resnet{depth}", num_classes=10))["params"])
    plain = count_params(variables(create_model(f"cifar_plain{depth}", num_classes=10))["params"])
    assert resnet == plain == CIFAR_PARAMS[depth]  # option A shortcuts add no parameters
    digits = 1 if depth == 110 else 2
    assert round(resnet / 1e6, digits) == PAPER[depth]


def test_every_depth_and_kind_is_registered():
    names = set(list_models())
    for depth in CIFAR_PARAMS:
        assert {f"cifar_resnet{depth}", f"cifar_plain{depth}"} <= names
    assert "small_cnn" in names


def test_layout_three_stages_of_n_blocks_with_option_a():
    model = create_model("cifar_resnet20", num_classes=10)
    assert (model.stage_sizes, model.width, model.shortcut, model.stem) == ((3, 3, 3), 16, "A", "small")
    assert not model.zero_init_residual  # the paper did not zero-init the last BN
    params = variables(model)["params"]
    assert params["stem_conv"]["kernel"].shape == (3, 3, 3, 16)
    assert params["stage2_block1"]["conv1"]["kernel"].shape == (3, 3, 16, 32)
    assert params["stage3_block3"]["conv2"]["kernel"].shape == (3, 3, 64, 64)
    assert params["fc"]["kernel"].shape == (64, 10)
    assert not any("proj" in k for block in params.values() if isinstance(block, dict) for k in block)
    assert create_model("cifar_plain56", num_classes=10).shortcut == "none"


def test_forward_shapes_and_maps_on_28px_grey():
    model = create_model("cifar_resnet20", num_classes=10)
    x = jnp.ones((2, 28, 28, 1))
    v = variables(model, 28, 1)
    names = ("stage1_block1", "stage2_block1", "stage3_block1")
    _, inter = jax.eval_shape(lambda v: model.apply(
        v, x, capture_intermediates=lambda m, _: m.name in names, mutable=["intermediates"]), v)
    shapes = {k: inter["intermediates"][k]["__call__"][0].shape for k in names}
    assert shapes == {"stage1_block1": (2, 28, 28, 16), "stage2_block1": (2, 14, 14, 32),
                      "stage3_block1": (2, 7, 7, 64)}
    assert jax.eval_shape(lambda v: model.apply(v, x), v).shape == (2, 10)


def test_bad_depth_and_options_are_refused():
    from jaxnet.models.cifar import cifar_net

    with pytest.raises(ValueError, match="6n \\+ 2"):
        cifar_net(21, False, 10)
    with pytest.raises(ValueError, match="no shortcut option"):
        create_model("cifar_plain20", num_classes=10, shortcut="A")
    with pytest.raises(ValueError, match="unknown option"):
        create_model("cifar_resnet20", num_classes=10, depth=3)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "maxout"])
def test_small_cnn_takes_every_activation(activation):
    model = create_model("small_cnn", num_classes=10, activation=activation)
    x = jnp.ones((2, 32, 32, 3))
    v = variables(model)
    assert jax.eval_shape(lambda v: model.apply(v, x), v).shape == (2, 10)
    widen = 2 if activation == "maxout" else 1
    assert v["params"]["conv1"]["kernel"].shape == (5, 5, 3, 32 * widen)
    assert v["params"]["fc"]["kernel"].shape == (4 * 4 * 64, 10)  # 32 -> 16 -> 8 -> 4
