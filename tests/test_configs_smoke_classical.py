"""Smoke runs (tests/config_smoke.py) of the classical configs (features -> SVM). A config whose
feature blocks are fitted (Fisher: PCA + GMM; bag of words and coding: PCA + codebooks) must fit
every one of them in train.py, keep them in its checkpoint (a second train.py restores them
without refitting, to the same figures) and predict with them in eval.py."""
import re

import pytest

from tests.config_smoke import (case_id, cases, load_module, mini_imagenet, evaluate,  # noqa: F401
                                smoke_args, train)

CASES = cases("classical")
FITTED_KINDS = ("fisher", "bow", "coding")


def fitted_blocks(features) -> dict:
    """{kind: number of blocks} of the fitted kinds in a feature config."""
    counts = {}
    for kind in FITTED_KINDS:
        blocks = features.get(kind) or []
        counts[kind] = 1 if hasattr(blocks, "keys") else len(blocks)
    return {k: n for k, n in counts.items() if n}


@pytest.mark.parametrize("path,variant", CASES, ids=[case_id(*c) for c in CASES])
def test_config_trains_and_evaluates(path, variant, tmp_path, mini_imagenet):
    args, workdir = smoke_args(path, variant, mini_imagenet), tmp_path / "run"
    first = train(args, workdir)
    again = train(args, workdir)
    assert "already fitted: restored" in again
    metrics = evaluate(args, workdir)
    assert metrics["num_examples"] > 0 and 0.0 <= metrics["top1_acc"] <= 1.0
    final = re.search(r"final \S+: top-1 ([0-9.]+)", first).group(1)
    assert re.search(r"final \S+: top-1 ([0-9.]+)", again).group(1) == final
    assert f"{metrics['top1_acc']:.4f}" == final  # eval.py predicts with the fitted blocks
    blocks = fitted_blocks(load_module(path).get_config(*([variant] if variant else [])).classical.features)
    if blocks:  # every fitted block was fitted by train.py (and checkpointed: restored above)
        summary = re.search(r"encoder \((.*)\) fitted", first).group(1)
        assert summary == " + ".join(f"{n} {k}" for k, n in blocks.items()) + " block(s)"
