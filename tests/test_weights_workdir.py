"""Imported weights as a jaxnet workdir (python -m jaxnet weights import|export --workdir): eval.py's
evaluate() gives what the imported variables give applied directly; export -> import is bit for
bit; bad files and reused workdirs are one-line errors. Random torchvision-layout weights come from
the recorded manifests (no torch needed)."""
import json

import jax
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.config import base_config
from jaxnet.data.sources import create_source
from jaxnet.methods import evaluate
from jaxnet.models import create_model
from jaxnet.tools.weights import main, workdir_config
from jaxnet.training.steps import cross_entropy, normalize
from jaxnet.transfer.source import load_source, read_workdir_variables
from jaxnet.weights import from_torchvision, load_state_dict, save_state_dict
from jaxnet.weights.manifests import random_state_dict


def _bitwise(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A resnet18 with random torchvision-layout weights (10 classes) imported into a workdir."""
    root = tmp_path_factory.mktemp("weights")
    state_dict = random_state_dict("resnet18", seed=3, num_classes=10)
    save_state_dict(state_dict, root / "r18.safetensors")
    assert main(["import", "--model=resnet18", str(root / "r18.safetensors"),
                 f"--workdir={root / 'wd'}", "--num_classes=10"]) == 0
    return root, state_dict


def test_imported_workdir_evaluates_like_the_variables_applied_directly(imported):
    root, state_dict = imported
    workdir = root / "wd"
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["model"] == {"name": "resnet18"} and saved["num_classes"] == 10
    assert saved["dataset"] == "imagenet2012" and saved["image_size"] == 224
    config = base_config()
    config.update(saved)  # the workdir's own config, on small synthetic data
    config.dataset, config.image_size, config.synthetic_examples = "synthetic", 32, 20
    config.eval_batch_size, config.eval_split = 8, "test"
    record = evaluate(config, workdir, report=False)
    assert record["step"] == 0 and record["num_examples"] == 20

    variables = from_torchvision(state_dict, "resnet18")
    source = create_source(config, "test")
    images = source.images
    x = normalize(images, config.mean, config.std, np.float32)
    logits = create_model("resnet18", num_classes=10).apply(variables, x, train=False)
    labels = source.labels
    top1 = float(np.mean(np.argmax(logits, -1) == labels))
    loss = float(np.mean(cross_entropy(logits, labels, 10)))
    assert record["top1_acc"] == pytest.approx(top1, abs=1e-9)
    assert record["loss"] == pytest.approx(loss, rel=1e-5)
    # the variables a transfer method reads from it are the imported ones, bit for bit
    net = load_source(workdir)
    _bitwise(net.variables, variables)


def test_export_import_round_trip_is_bitwise(imported, tmp_path):
    root, state_dict = imported
    assert main(["export", f"--workdir={root / 'wd'}", f"--out={tmp_path / 'back.safetensors'}"]) == 0
    back = load_state_dict(tmp_path / "back.safetensors")
    assert set(back) == set(state_dict)
    for key, value in state_dict.items():
        assert back[key].tobytes() == value.tobytes() and back[key].dtype == value.dtype, key
    assert main(["import", "--model=resnet18", str(tmp_path / "back.safetensors"),
                 f"--workdir={tmp_path / 'again'}"]) == 0
    _bitwise(read_workdir_variables(tmp_path / "again")[1], read_workdir_variables(root / "wd")[1])


def test_one_line_errors(imported, tmp_path, capsys):
    root, _ = imported
    capsys.readouterr()
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    cases = [
        ["import", "--model=resnet18", str(tmp_path / "bad.safetensors"), f"--workdir={tmp_path / 'a'}"],
        ["import", "--model=resnet18", str(root / "r18.safetensors"), f"--workdir={root / 'wd'}"],
        ["import", "--model=resnet18", str(root / "r18.safetensors"), f"--workdir={tmp_path / 'b'}",
         "--num_classes=1000"],
        ["import", "--model=resnet34", str(root / "r18.safetensors"), f"--workdir={tmp_path / 'c'}"],
        ["export", f"--workdir={tmp_path / 'nothing'}", f"--out={tmp_path / 'x.safetensors'}"],
    ]
    wanted = ["cannot read", "already holds checkpoints", "not --num_classes=1000",
              "missing key", "no config.json"]
    for argv, text in zip(cases, wanted):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and text in err, err


def test_googlenet_workdir_config_matches_its_pretrained_layout():
    variables = from_torchvision(random_state_dict("googlenet_bn", drop_aux=True), "googlenet_bn")
    config = workdir_config("googlenet_bn", variables)
    assert config.model.to_dict() == {"name": "googlenet_bn", "transform_input": True,
                                      "aux_logits": False}
    assert workdir_config("googlenet_bn", variables, transform_input=False).model.transform_input is False
    with pytest.raises(JaxnetError, match="googlenet_bn option"):
        workdir_config("resnet18", {"params": {"fc": {"kernel": np.zeros((2, 3))}}}, True)
