"""Smoke runs (tests/config_smoke.py) of the configs that reuse a trained network: the transfer
recipes on the smoke-trained source network, and configs/from_workdir.py on its workdir."""
import pytest

from tests.config_smoke import (ROOT, TRANSFER_SOURCE, WORKDIR_ARG, case_id, cases, mini_imagenet,  # noqa: F401
                                smoke_args, train_and_eval)

SOURCE = ROOT / "configs" / f"{TRANSFER_SOURCE}.py"
CASES = [c for c in cases("transfer") if c[0] != SOURCE and c[0].stem not in WORKDIR_ARG]


@pytest.fixture(scope="module")
def source(tmp_path_factory, mini_imagenet):
    """The source network's smoke run: (workdir, its eval metrics)."""
    workdir = tmp_path_factory.mktemp("source") / "run"
    return workdir, train_and_eval(smoke_args(SOURCE, None, mini_imagenet), workdir)


def test_source_config_trains_and_evaluates(source):
    workdir, metrics = source
    assert metrics["num_examples"] > 0 and 0.0 <= metrics["top1_acc"] <= 1.0


@pytest.mark.parametrize("path,variant", CASES, ids=[case_id(*c) for c in CASES])
def test_config_trains_and_evaluates_on_the_source(path, variant, source, tmp_path, mini_imagenet):
    metrics = train_and_eval(smoke_args(path, variant, mini_imagenet, source[0]), tmp_path / "run")
    assert metrics["num_examples"] > 0 and 0.0 <= metrics["top1_acc"] <= 1.0


@pytest.mark.parametrize("stem", WORKDIR_ARG)
def test_workdir_config_trains_and_evaluates(stem, source, tmp_path):
    """configs/from_workdir.py:DIR is DIR's own config (already the smoke run's)."""
    metrics = train_and_eval([f"--config=configs/{stem}.py:{source[0]}"], tmp_path / "run")
    assert metrics["num_examples"] == source[1]["num_examples"]
