"""Weight import/export (jaxnet.weights) without torch: torchvision's state-dict layouts come from
the manifests recorded once from the real models (jaxnet/weights/manifests/*.json); random
weights in those layouts are imported, checked for structure, dtypes and a forward pass, and
round-tripped. The kernel-layout and flatten-order checks compare against convolutions and
matrix products written in torch's own layout (NCHW / OIHW / (out, in)), not our conversions.
Logit parity with torchvision itself is `python -m jaxnet weights verify` (needs torch)."""
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from jaxnet import JaxnetError
from jaxnet.models import create_model
from jaxnet.tools.weights import main
from jaxnet.transfer import extract
from jaxnet.weights import (
    from_torchvision,
    import_file,
    load_state_dict,
    load_variables,
    save_state_dict,
    to_torchvision,
)
from jaxnet.weights.manifests import SOURCES, load_manifest, random_state_dict

NAMES = list(SOURCES)


def bitwise_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_trees_bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert all(bitwise_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _abstract(name, **overrides):
    model = create_model(name, num_classes=1000, **overrides)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                             train=False))


@pytest.mark.parametrize("name", NAMES)
def test_manifest_import_structure_dtypes_and_round_trips(name):
    manifest = load_manifest(name)
    sd = random_state_dict(name, seed=1)
    variables = from_torchvision(sd, name)
    # same tree, shapes as the model's own init, float32 everywhere
    expected = _abstract(name)
    assert jax.tree.structure(variables) == jax.tree.structure(expected)
    for got, want in zip(jax.tree.leaves(variables), jax.tree.leaves(expected)):
        assert got.shape == want.shape and got.dtype == np.float32
    n_params = sum(x.size for x in jax.tree.leaves(variables["params"]))
    assert n_params == manifest["num_parameters"]  # torchvision's count, aux heads included
    # export gives back torchvision's exact key set, shapes, dtypes and values (bit for bit)
    exported = to_torchvision(variables, name)
    assert {k: (list(v.shape), str(v.dtype)) for k, v in exported.items()} == \
        {k: (shape, dtype) for k, shape, dtype in manifest["keys"]}
    assert all(bitwise_equal(exported[k], v) for k, v in sd.items())
    # and import(export(variables)) is the same variables, bit for bit
    assert_trees_bitwise_equal(from_torchvision(exported, name), variables)


def test_resnet_stem_matches_torch_layout_conv_and_batchnorm():
    """resnet18's stem from imported weights == conv (OIHW, NCHW) + BN (eps 1e-5) + ReLU + max-pool
    computed in torch's layout straight from the state dict."""
    sd = random_state_dict("resnet18", seed=2)
    variables = from_torchvision(sd, "resnet18")
    model = create_model("resnet18", num_classes=1000)
    x = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype(np.float32)
    ours = extract(model, variables, x, "stem", pool="none")  # [N, 16, 16, 64]
    y = lax.conv_general_dilated(x.transpose(0, 3, 1, 2), sd["conv1.weight"], (2, 2), [(3, 3)] * 2,
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                 precision=lax.Precision.HIGHEST)
    c = lambda k: sd[f"bn1.{k}"][None, :, None, None]  # noqa: E731
    y = (y - c("running_mean")) / jnp.sqrt(c("running_var") + 1e-5) * c("weight") + c("bias")
    y = lax.reduce_window(jnp.maximum(y, 0), -jnp.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2),
                          [(0, 0), (0, 0), (1, 1), (1, 1)])
    np.testing.assert_allclose(ours, np.asarray(y).transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


def test_alexnet_fc6_reads_torch_flatten_order():
    """fc6 of alexnet_onegpu == torch's Linear on torch.flatten of the (C, 6, 6) pooled map."""
    from jaxnet.models.alexnet import adaptive_avg_pool

    sd = random_state_dict("alexnet_onegpu", seed=3, num_classes=10)
    variables = from_torchvision(sd, "alexnet_onegpu")
    model = create_model("alexnet_onegpu", num_classes=10)
    x = np.random.default_rng(1).standard_normal((2, 127, 127, 3)).astype(np.float32)
    feats = extract(model, variables, x, ["conv5", "fc6", "logits"], pool="none")
    conv5 = feats["conv5"]  # [N, 7, 7, 256] after ReLU; 127 px -> pooled 3x3 -> 6x6 bins
    pooled = adaptive_avg_pool(lax.reduce_window(conv5, -jnp.inf, lax.max, (1, 3, 3, 1),
                                                 (1, 2, 2, 1), "VALID"), 6)
    assert len({float(v) for v in np.asarray(pooled)[0, :, :, 0].ravel()}) > 1  # positions differ
    flat_chw = np.asarray(pooled).transpose(0, 3, 1, 2).reshape(2, -1)  # torch.flatten(x, 1)
    fc6 = np.maximum(flat_chw @ sd["classifier.1.weight"].T + sd["classifier.1.bias"], 0)
    np.testing.assert_allclose(feats["fc6"], fc6, rtol=1e-4, atol=1e-4)
    assert feats["logits"].shape == (2, 10)


def test_flatten_permutation_of_googlenet_aux_fc1():
    """aux fc1's input axis goes from torch's (C, 4, 4) flatten to our (4, 4, C) order."""
    sd = random_state_dict("googlenet_bn", seed=4, num_classes=5)
    c, h, w = np.meshgrid(np.arange(128), np.arange(4), np.arange(4), indexing="ij")
    code = (c * 100 + h * 10 + w).reshape(-1).astype(np.float32)  # torch index order (C, H, W)
    sd["aux1.fc1.weight"] = np.tile(code, (1024, 1)) + np.arange(1024, dtype=np.float32)[:, None] * 1e5
    kernel = from_torchvision(sd, "googlenet_bn")["params"]["aux1"]["fc1"]["kernel"]  # [2048, 1024]
    ours = kernel.reshape(4, 4, 128, 1024)
    for hh, ww, cc, o in [(0, 0, 0, 0), (1, 2, 3, 4), (3, 3, 127, 1023), (2, 0, 64, 7)]:
        assert ours[hh, ww, cc, o] == cc * 100 + hh * 10 + ww + o * 1e5


@pytest.mark.parametrize("name,px", [("resnet18", 64), ("googlenet_bn", 32)])
def test_imported_forward_pass(name, px):
    sd = random_state_dict(name, seed=5, num_classes=7)
    variables = from_torchvision(sd, name)
    model = create_model(name, num_classes=7)
    x = np.random.default_rng(2).standard_normal((2, px, px, 3)).astype(np.float32)
    logits = jax.jit(lambda v, im: model.apply(v, im, train=False))(variables, x)
    assert logits.shape == (2, 7) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits)) and not np.allclose(logits[0], logits[1])


def test_googlenet_aux_heads_import_drop_or_absent():
    with_aux = from_torchvision(random_state_dict("googlenet_bn"), "googlenet_bn")
    assert {"aux1", "aux2"} <= set(with_aux["params"]) and "aux1" in with_aux["batch_stats"]
    dropped = from_torchvision(random_state_dict("googlenet_bn"), "googlenet_bn", drop_aux=True)
    absent = from_torchvision(random_state_dict("googlenet_bn", drop_aux=True), "googlenet_bn")
    for v in (dropped, absent):
        assert not any(k.startswith("aux") for k in v["params"])
        assert jax.tree.structure(v) == jax.tree.structure(_abstract("googlenet_bn", aux_logits=False))
    assert set(to_torchvision(absent, "googlenet_bn")) == {
        k for k, _, _ in load_manifest("googlenet_bn")["keys"] if not k.startswith("aux")}
    partial = random_state_dict("googlenet_bn")
    del partial["aux2.fc1.weight"]
    with pytest.raises(JaxnetError, match=r"missing key 'aux2\.fc1\.weight'"):
        from_torchvision(partial, "googlenet_bn")


def _one_line_error(fn, *needles):
    with pytest.raises(JaxnetError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    return message


def test_bad_state_dicts_give_one_line_errors_naming_the_key():
    sd = random_state_dict("resnet18")
    _one_line_error(lambda: from_torchvision({**sd, "layer5.0.conv1.weight": sd["conv1.weight"]},
                                             "resnet18"), "unknown key", "layer5.0.conv1.weight")
    missing = dict(sd)
    del missing["layer2.1.bn2.running_var"]
    _one_line_error(lambda: from_torchvision(missing, "resnet18"), "missing key",
                    "layer2.1.bn2.running_var")
    wrong = {**sd, "layer3.0.conv2.weight": np.zeros((256, 256, 1, 1), np.float32)}
    _one_line_error(lambda: from_torchvision(wrong, "resnet18"), "layer3.0.conv2.weight",
                    "(256, 256, 1, 1)", "(256, 256, 3, 3)")
    # a resnet50 state dict is not a resnet18 one
    _one_line_error(lambda: from_torchvision(random_state_dict("resnet50"), "resnet18"), "key")
    _one_line_error(lambda: from_torchvision(sd, "googlenet"), "googlenet_bn")  # no mapping
    _one_line_error(lambda: from_torchvision({}, "resnet18"), "missing key 'fc.weight'")
    # export: variables of another model
    _one_line_error(lambda: to_torchvision(from_torchvision(sd, "resnet18"), "resnet34"), "layer")


def test_other_dtypes_and_class_counts():
    sd = random_state_dict("resnet18", num_classes=3)
    sd16 = {k: v.astype(ml_dtypes.bfloat16) if v.dtype == np.float32 else v for k, v in sd.items()}
    variables = from_torchvision(sd16, "resnet18")
    assert variables["params"]["fc"]["kernel"].shape == (512, 3)
    assert all(x.dtype == np.float32 for x in jax.tree.leaves(variables))
    np.testing.assert_array_equal(variables["params"]["fc"]["bias"],
                                  sd16["fc.bias"].astype(np.float32))


def test_files_and_cli(tmp_path, capsys):
    pytest.importorskip("safetensors")
    sd = random_state_dict("resnet18", seed=6, num_classes=4)
    path = tmp_path / "r18.safetensors"
    save_state_dict(sd, path)
    assert set(load_state_dict(path)) == set(sd)
    direct = from_torchvision(sd, "resnet18")
    assert_trees_bitwise_equal(import_file(path, "resnet18", fmt="timm"), direct)
    # CLI: import -> msgpack -> export -> the same state dict
    out = tmp_path / "r18.msgpack"
    assert main(["import", "--format=torchvision", "--model=resnet18", str(path),
                 f"--out={out}"]) == 0
    assert "4 classes" in capsys.readouterr().out
    assert_trees_bitwise_equal(load_variables(out), direct)
    back = tmp_path / "back.safetensors"
    assert main(["export", "--model=resnet18", str(out), f"--out={back}"]) == 0
    reread = load_state_dict(back)
    assert all(bitwise_equal(reread[k], v) for k, v in sd.items())
    # bad inputs: one line on stderr, exit 1
    capsys.readouterr()
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    for argv in (["import", "--model=resnet18", str(tmp_path / "junk.safetensors")],
                 ["import", "--model=resnet18", str(tmp_path / "missing.safetensors")],
                 ["import", "--model=resnet18", "--format=keras", str(path)],
                 ["import", "--model=resnet50", str(path)],
                 ["export", "--model=resnet18", str(out), f"--out={tmp_path / 'x.npz'}"]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
