"""Every config and variant trains a step and evaluates through train.py's and eval.py's `main`
(tests/config_smoke.py says how each is shrunk). This file: the discovery, and the networks
trained from scratch on small images; the other groups are in tests/test_configs_smoke_*.py."""
import pytest

from tests import config_smoke
from tests.config_smoke import ROOT, case_id, cases, mini_imagenet, smoke_args, train_and_eval  # noqa: F401

GROUP_FILES = {"networks": "test_configs_smoke.py", "imagenet_nets": "test_configs_smoke_imagenet_nets.py",
               "classical": "test_configs_smoke_classical.py", "transfer": "test_configs_smoke_transfer.py"}


def test_every_config_file_and_variant_has_a_smoke_run():
    found = {p.name for p in config_smoke.config_files()}
    assert {p.name for p in (ROOT / "configs").glob("*.py")} <= found
    assert {"tiny_config.py", "tiny_classical_config.py"} <= found
    ids = {case_id(p, v) for p, v in config_smoke.all_cases()}  # raises for undeclared variants
    assert {"configs/svm_sift_bow.py", "configs/svm_sift_bow.py:imagenet", "configs/cifar_resnet.py:plain56",
            "configs/relu_vs_tanh.py:relu,cifar10", "configs/augmentation.py:erasing"} <= ids
    for path in config_smoke.config_files():  # each group's file exists, so each case runs somewhere
        assert (ROOT / "tests" / GROUP_FILES[config_smoke.group(path)]).exists(), path


def test_a_config_with_arguments_must_declare_its_variants(tmp_path):
    undeclared = tmp_path / "new_recipe.py"
    undeclared.write_text("from jaxnet.presets import fashion_mnist_config\n\n"
                          "def get_config(variant='a'):\n    return fashion_mnist_config()\n")
    with pytest.raises(ValueError, match="declares no VARIANTS"):
        config_smoke.variants(undeclared)


CASES = cases("networks")


@pytest.mark.parametrize("path,variant", CASES, ids=[case_id(*c) for c in CASES])
def test_config_trains_and_evaluates(path, variant, tmp_path, mini_imagenet):
    metrics = train_and_eval(smoke_args(path, variant, mini_imagenet), tmp_path / "run")
    assert metrics["num_examples"] > 0 and 0.0 <= metrics["top1_acc"] <= 1.0
