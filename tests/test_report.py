"""python -m jaxnet report: sections' runs cached in their workdirs (a second report trains
nothing; a changed config retrains only its run), a failing section reported without stopping the
others, and the written report with a real figure. (The training itself is jaxnet.methods.train,
tested elsewhere; here a stand-in writes what it would, so the test stays fast.)"""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxnet.experiments import context, plots, runs
from jaxnet.experiments.context import Section
from jaxnet.tools import report

LR = {"a": 0.1, "b": 0.1}


def tiny_config(name):
    config = context.load_config("tests/tiny_config.py")
    config.base_lr = LR[name]
    return config


def run(ctx):
    """A section like the experiments': two cached runs, a figure of their curves, a table."""
    done = {n: runs.run_network(ctx, tiny_config(n), "tiny", n, "tests/tiny_config.py", None)
            for n in ("a", "b")}
    series = [(n, *runs.curve(r.records, "train"), {}) for n, r in done.items()]
    fig = plots.curves(ctx.figure("tiny.png"), series, title="tiny", xlabel="epochs",
                       ylabel="top-1")
    return Section(key="tiny", title="A tiny claim", claim="tiny nets train", paper="-",
                   measured="they do", verdict="held",
                   table=[["run", "top-1"]] + [[n, f"{r.metrics['top1_acc']:.3f}"]
                                               for n, r in done.items()],
                   figures=[(Path(fig).name, "tiny curves")],
                   commands=[r.command for r in done.values()], hardware=[done["a"].hardware])


def fake_train(calls):
    """Stands in for jaxnet.methods.train: writes the metrics.jsonl a run would, counts calls."""

    def train(config, workdir):
        calls.append(workdir.name)
        workdir.mkdir(parents=True)
        (workdir / "config.json").write_text(config.to_json())
        rng = np.random.default_rng(len(calls))
        acc = np.cumsum(rng.uniform(0, 0.1, 20)).clip(0, 1)
        with open(workdir / "metrics.jsonl", "w") as f:
            for i, a in enumerate(acc):
                f.write(json.dumps({"step": i, "split": "train", "epoch": i / 10,
                                    "top1_acc": float(a)}) + "\n")
        return {"top1_acc": float(acc[-1]), "top1_err": 1 - float(acc[-1]), "loss": 1.0}

    return train


def broken(ctx):
    raise RuntimeError("this experiment is broken")


def test_report_caches_runs_and_writes_a_readable_report(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "SECTIONS", [("tiny", __name__)])
    calls = []
    train_fn = fake_train(calls)
    sections, (md, index) = report.build(tmp_path, quick=True, train_fn=train_fn, log=lambda m: None)
    assert calls == ["a", "b"] and sections[0].verdict == "held"

    text = md.read_text()
    assert "## Main table" in text and "A tiny claim" in text and "![tiny curves](tiny.png)" in text
    assert "python train.py --config=tests/tiny_config.py" in text
    page = index.read_text()
    assert "<img src='tiny.png'" in page and "http" not in page.replace("https://", "")
    image = np.asarray(Image.open(tmp_path / "tiny.png").convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 400
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # lines, text, not a blank canvas

    report.build(tmp_path, quick=True, train_fn=train_fn, log=lambda m: None)
    assert calls == ["a", "b"]  # the second report redid nothing

    monkeypatch.setitem(LR, "b", 0.05)  # one config changes: only its run is redone
    report.build(tmp_path, quick=True, train_fn=train_fn, log=lambda m: None)
    assert calls == ["a", "b", "b"]
    saved = json.loads((tmp_path / "runs" / "tiny" / "b" / "result.json").read_text())
    assert saved["config"]["base_lr"] == 0.05 and "cores" in saved["hardware"]


def test_a_failing_section_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "SECTIONS", [("broken", f"{__name__}.broken_module")])
    import sys
    import types

    module = types.ModuleType(f"{__name__}.broken_module")
    module.run = broken
    monkeypatch.setitem(sys.modules, module.__name__, module)
    sections, (md, index) = report.build(tmp_path, log=lambda m: None)
    assert sections[0].verdict == "failed" and "this experiment is broken" in md.read_text()
    assert "failed" in index.read_text()


def test_every_section_module_has_a_run_function():
    import importlib

    for key, module in report.SECTIONS:
        assert callable(importlib.import_module(module).run), key


@pytest.mark.parametrize("argv", [["--out=x", "--only=nope"]])
def test_unknown_sections_are_refused(argv):
    with pytest.raises(SystemExit):
        report.main(argv)
