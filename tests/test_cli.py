"""train.py and eval.py end to end, as a user runs them: through their own `main`, with their
command lines (tests/cli_main.py; the suite runs them as processes too: test_preemption.py,
test_multiprocess_stop.py, test_cli_errors.py), on 8 emulated devices."""
import json

from tests.cli_main import run_main


def run(script, *args):
    return run_main(script.removesuffix(".py"), *args)


def test_train_eval_resume(tmp_path):
    workdir = str(tmp_path / "run")
    code, out = run("train.py", "--config=tests/tiny_config.py", f"--workdir={workdir}",
                    "--config.num_epochs=1")
    assert code == 0, out
    assert "mesh: {'data': 8}" in out and "final test: top-1" in out
    assert "ETA" in out and "img/s" in out

    code, out = run("eval.py", "--config=tests/tiny_config.py", f"--workdir={workdir}")
    assert code == 0, out
    report = json.loads((tmp_path / "run" / "eval" / "test_step4.json").read_text())
    assert report["num_examples"] == 64 and report["step"] == 4
    assert set(report) >= {"loss", "top1_acc", "top5_acc", "top1_err", "top5_err"}
    assert abs(report["top1_acc"] + report["top1_err"] - 1) < 1e-9
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    final_in_training = [r for r in records if r["split"] == "test"][-1]
    assert final_in_training["top1_acc"] == report["top1_acc"]  # the same model, the same numbers

    code, out = run("train.py", "--config=tests/tiny_config.py", f"--workdir={workdir}",
                    "--config.num_epochs=2")
    assert code == 0, out
    assert "resumed from the checkpoint at step 4" in out
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 8
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


# Mistakes on the command line (unknown fields, missing data, no checkpoint, ...): test_cli_errors.py
