"""Smoke runs (tests/config_smoke.py) of the AlexNet and GoogLeNet configs (the biggest programs:
one file, so one pytest worker compiles them while the other runs the rest)."""
import pytest

from tests.config_smoke import case_id, cases, mini_imagenet, smoke_args, train_and_eval  # noqa: F401

CASES = cases("imagenet_nets")


@pytest.mark.parametrize("path,variant", CASES, ids=[case_id(*c) for c in CASES])
def test_config_trains_and_evaluates(path, variant, tmp_path, mini_imagenet):
    metrics = train_and_eval(smoke_args(path, variant, mini_imagenet), tmp_path / "run")
    assert metrics["num_examples"] > 0 and 0.0 <= metrics["top1_acc"] <= 1.0
