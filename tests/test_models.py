"""ResNet family: exact parameter counts, shapes, options and the registry's errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet.models import create_model, list_models
from jaxnet.training.state import count_params

TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


def abstract_variables(model, size=224, channels=3):
    images = jnp.zeros((1, size, size, channels))
    return jax.eval_shape(lambda: model.init(jax.random.key(0), images, train=False))


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_equal_torchvision(name):
    variables = abstract_variables(create_model(name, num_classes=1000))
    assert count_params(variables["params"]) == TORCHVISION_PARAMS[name]


def test_v1_and_v15_have_the_same_parameters_but_stride_in_different_convs():
    v1 = abstract_variables(create_model("resnet50", num_classes=1000, version="v1"))
    assert count_params(v1["params"]) == TORCHVISION_PARAMS["resnet50"]
    model_v1 = create_model("resnet50", num_classes=10, version="v1", width=4)
    model_v15 = create_model("resnet50", num_classes=10, width=4)
    x = jnp.ones((1, 64, 64, 3))

    def block_shapes(model):
        _, inter = model.apply(model.init(jax.random.key(0), x), x,
                               capture_intermediates=lambda m, _: m.name in ("conv1", "conv2"),
                               mutable=["intermediates"])
        block = inter["intermediates"]["stage2_block1"]
        return block["conv1"]["__call__"][0].shape, block["conv2"]["__call__"][0].shape

    assert block_shapes(model_v1) == ((1, 8, 8, 8), (1, 8, 8, 8))  # stride on the 1x1
    assert block_shapes(model_v15) == ((1, 16, 16, 8), (1, 8, 8, 8))  # stride on the 3x3


def test_shortcut_options_change_only_the_projections():
    counts = {s: count_params(abstract_variables(create_model("resnet34", num_classes=1000,
                                                              shortcut=s))["params"])
              for s in "ABC"}
    assert counts["B"] == TORCHVISION_PARAMS["resnet34"]
    # B adds three 1x1 projections + BN where the shape changes (64->128, 128->256, 256->512).
    projections = sum(cin * cout + 2 * cout for cin, cout in ((64, 128), (128, 256), (256, 512)))
    assert counts["B"] - counts["A"] == projections
    assert counts["C"] > counts["B"]
    # C projects every block (16 of them in ResNet-34): 13 more identity-shaped projections.
    identity = 3 * (64 * 64 + 128) + 3 * (128 * 128 + 256) + 5 * (256 * 256 + 512) + 2 * (512 * 512 + 1024)
    assert counts["C"] - counts["B"] == identity


def test_plain_nets_have_no_projections():
    plain = count_params(abstract_variables(create_model("plain34", num_classes=1000))["params"])
    resnet_a = count_params(abstract_variables(create_model("resnet34", num_classes=1000,
                                                            shortcut="A"))["params"])
    assert plain == resnet_a == 21_797_672 - (64 * 128 + 256 + 128 * 256 + 512 + 256 * 512 + 1024)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "plain18"])
def test_output_shapes_and_batch_stats(name):
    model = create_model(name, num_classes=7, width=4)
    x = jnp.ones((2, 32, 32, 3))
    variables = model.init(jax.random.key(0), x, train=False)
    assert set(variables) == {"params", "batch_stats"}
    assert model.apply(variables, x, train=False).shape == (2, 7)
    logits, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    assert logits.shape == (2, 7) and logits.dtype == jnp.float32
    assert set(updates) == {"batch_stats"}


def test_small_stem_keeps_resolution_and_imagenet_stem_divides_by_four():
    x = jnp.ones((1, 28, 28, 1))
    for stem, size in (("small", 28), ("imagenet", 7)):
        model = create_model("resnet18", num_classes=10, width=4, stem=stem)
        variables = model.init(jax.random.key(0), x)
        _, inter = model.apply(variables, x, capture_intermediates=lambda m, _: m.name == "stage1_block1",
                               mutable=["intermediates"])
        assert inter["intermediates"]["stage1_block1"]["__call__"][0].shape[1] == size


def test_zero_init_residual_zeroes_the_last_bn_scale_of_each_block():
    variables = create_model("resnet18", num_classes=10, width=4).init(
        jax.random.key(0), jnp.ones((1, 16, 16, 3)))
    block = variables["params"]["stage1_block1"]
    assert np.all(block["bn2"]["scale"] == 0) and np.all(block["bn1"]["scale"] == 1)
    variables = create_model("resnet18", num_classes=10, width=4, zero_init_residual=False).init(
        jax.random.key(0), jnp.ones((1, 16, 16, 3)))
    assert np.all(variables["params"]["stage1_block1"]["bn2"]["scale"] == 1)
    # Plain nets would pass no signal with zeroed scales, so they never zero them.
    plain = create_model("plain18", num_classes=10, width=4).init(jax.random.key(0), jnp.ones((1, 16, 16, 3)))
    assert np.all(plain["params"]["stage1_block1"]["bn2"]["scale"] == 1)


def test_bfloat16_compute_keeps_float32_params():
    model = create_model("resnet18", num_classes=10, width=4, dtype=jnp.bfloat16)
    x = jnp.ones((2, 16, 16, 3))
    variables = model.init(jax.random.key(0), x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    assert model.apply(variables, x).dtype == jnp.float32


def test_registry_lists_the_contract_names_and_rejects_bad_input():
    for name in ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18",
                 "plain34", "alexnet", "alexnet_onegpu", "googlenet"):
        assert name in list_models()
    with pytest.raises(ValueError, match="unknown model 'resnet19'"):
        create_model("resnet19", num_classes=10)
    with pytest.raises(ValueError, match="unknown option.*widht"):
        create_model("resnet18", num_classes=10, widht=8)
    with pytest.raises(ValueError, match="plain net"):
        create_model("plain18", num_classes=10, shortcut="B")
    with pytest.raises(ValueError, match="shortcut must be"):
        create_model("resnet18", num_classes=10, shortcut="D").init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))
