"""Nothing lost, nothing silent: damaged checkpoints, the best checkpoint kept, changed configs,
a second run on a busy workdir, and a workdir evaluation cannot write into."""
import json
import shutil

import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.loop.checkpoint import Checkpointer
from jaxnet.loop.workdir import workdir_lock
from jaxnet.methods import evaluate, train
from tests.metrics_records import untimed_records
from tests.tiny_config import get_config


def damage(step_dir, what):
    """Truncate the array data files of `step_dir`'s variables ('data'), or its meta JSON ('json')."""
    targets = ([step_dir / "meta" / "metadata"] if what == "json" else
               [p for p in (step_dir / "variables").rglob("*") if p.parent.name == "d"])
    for target in targets:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 3])


def test_damaged_latest_checkpoint_falls_back_and_is_moved_aside(tmp_path, capsys):
    config = get_config()  # 8 steps; checkpoints (and evaluations) at 4 and 8
    train(config, tmp_path)
    damage(tmp_path / "checkpoints" / "8", "data")
    with pytest.raises(JaxnetError, match="no checkpoint at step 5 .* it has steps 4, 8"):
        evaluate(config, tmp_path, step=5, report=False)
    record = evaluate(config, tmp_path, report=False)  # "the latest": the newest intact one
    assert record["step"] == 4
    err = capsys.readouterr().err
    assert "warning: the checkpoint at step 8 is damaged" in err and "using step 4" in err
    assert "left in place" in err and not (tmp_path / "checkpoints_damaged").exists()  # eval: read only
    config.num_epochs = 3.0
    train(config, tmp_path)  # training resumes from step 4 and moves step 8 aside
    assert "moved to" in capsys.readouterr().err
    assert (tmp_path / "checkpoints_damaged" / "8").is_dir()  # moved aside, not deleted
    assert {"8", "12"} <= {p.name for p in (tmp_path / "checkpoints").iterdir()}  # 8 trained again


def test_training_resumes_from_the_newest_intact_checkpoint_with_exact_logs(tmp_path, capsys):
    config = get_config()
    train(config, tmp_path)
    uninterrupted = untimed_records(tmp_path)
    damage(tmp_path / "checkpoints" / "8", "json")  # the data position (meta) is unreadable
    train(config, tmp_path)  # resumes from 4: the logs are an uninterrupted run's
    assert "warning: the checkpoint at step 8 is damaged (JSONDecodeError" in capsys.readouterr().err
    assert untimed_records(tmp_path) == uninterrupted
    assert (tmp_path / "checkpoints_damaged" / "8" / "meta").is_dir()


def test_a_damaged_only_checkpoint_is_an_error_that_changes_nothing(tmp_path):
    config = get_config()
    config.num_epochs = 1.0
    train(config, tmp_path)
    damage(tmp_path / "checkpoints" / "4", "data")
    with pytest.raises(JaxnetError, match="step 4 .* could not be read .* damaged, or this config"):
        evaluate(config, tmp_path, report=False)
    assert (tmp_path / "checkpoints" / "4").is_dir() and not (tmp_path / "checkpoints_damaged").exists()


def test_the_best_checkpoint_is_kept_besides_the_last_ones(tmp_path):
    errors = {1: 0.5, 2: None, 3: 0.2, 4: None, 5: 0.9, 6: 0.8, 7: None}  # eval top-1 error
    with Checkpointer(tmp_path, keep=2) as checkpointer:
        for step, error in errors.items():
            checkpointer.save(step, {"x": {"w": np.full(3, step, np.float32)}},
                              metrics=None if error is None else {"top1_err": error})
            checkpointer.wait()
        assert checkpointer.all_steps() == [3, 6, 7] and checkpointer.best_step() == 3
    with Checkpointer(tmp_path, keep=2) as checkpointer:  # a restarted run still knows the best
        checkpointer.save(8, {"x": {"w": np.zeros(3, np.float32)}}, metrics={"top1_err": 0.95})
        checkpointer.wait()
        assert checkpointer.all_steps() == [3, 7, 8] and checkpointer.best_step() == 3
        assert checkpointer.restore(3, {"x": None})["x"]["w"].tolist() == [3, 3, 3]


def test_a_changed_config_is_refused_unless_allowed_and_recorded(tmp_path):
    config = get_config()
    config.num_epochs = 1.0
    train(config, tmp_path)
    saved = (tmp_path / "config.json").read_text()
    changed = get_config()
    changed.num_epochs, changed.base_lr, changed.batch_size = 2.0, 0.2, 8
    with pytest.raises(JaxnetError, match=r"another config \(base_lr: 0.1 there, 0.2 now; batch_size:"
                                          r" 16 there, 8 now\).*--allow_config_change"):
        train(changed, tmp_path)
    assert (tmp_path / "config.json").read_text() == saved
    safe = get_config()
    safe.num_epochs, safe.eval_every_epochs, safe.log_every_steps = 1.5, 0.5, 1  # no flag needed
    train(safe, tmp_path)
    changed.num_epochs = 2.0
    train(changed, tmp_path, allow_config_change=True)
    history = [json.loads(line) for line in (tmp_path / "config_history.jsonl").read_text().splitlines()]
    assert history[0]["created"] and len(history) == 2
    assert history[1]["changes"] == ["base_lr: 0.1 there, 0.2 now", "batch_size: 16 there, 8 now"]
    assert json.loads((tmp_path / "config.json").read_text())["base_lr"] == 0.2


def test_a_second_run_on_a_busy_workdir_is_refused_and_a_stale_lock_is_not(tmp_path):
    config = get_config()
    config.num_epochs = 0.5
    with workdir_lock(tmp_path):  # another train.py holds the workdir
        with pytest.raises(JaxnetError, match=r"in use by another run \(train.py pid \d+ on"):
            train(config, tmp_path)
    assert not (tmp_path / "checkpoints").exists()
    # the lock file stays behind, as after a kill -9; no process holds its lock
    assert "train.py pid" in (tmp_path / "lock").read_text()
    assert train(config, tmp_path)["num_examples"] == 64


def test_eval_results_are_shown_when_the_workdir_cannot_be_written(tmp_path, capsys):
    config = get_config()
    config.num_epochs = 0.5
    train(config, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "eval")
    (tmp_path / "run" / "eval").write_text("a file where the eval folder would go")
    record = evaluate(config, tmp_path / "run", report=False)
    assert record["path"] is None and record["num_examples"] == 64
    assert "warning: the results could not be written" in capsys.readouterr().err
    record = evaluate(config, tmp_path / "run", out=tmp_path / "elsewhere")
    assert record["path"] == str(tmp_path / "elsewhere" / "test_step2.json")
    assert json.loads((tmp_path / "elsewhere" / "test_step2.json").read_text())["step"] == 2


def test_memory_preflight_names_a_batch_size_that_fits():
    from jaxnet.loop.train_loop import check_fits

    gib = 2**30
    check_fits(needed=3 * gib, free=24 * gib, sharing=2, batch_size=256, data_devices=2)  # fits
    check_fits(needed=3 * gib, free=0, sharing=1, batch_size=256, data_devices=1)  # unknown: no check
    with pytest.raises(JaxnetError, match=r"needs about 24.0 GiB \(2 device\(s\) x 12.00 GiB\).*"
                                          r"20.0 GiB is free.*batch size 256; --config.batch_size=170 would fit"):
        check_fits(needed=12 * gib, free=20 * gib, sharing=2, batch_size=256, data_devices=2)
    with pytest.raises(JaxnetError, match="even the smallest batch would not"):
        check_fits(needed=12 * gib, free=gib // 100, sharing=1, batch_size=8, data_devices=8)


def test_a_step_that_cannot_fit_stops_before_it_runs(tmp_path, monkeypatch):
    import jaxnet.loop.train_loop as training

    monkeypatch.setattr(training, "free_memory", lambda device: (1000, 8))  # 1 kB for 8 devices
    with pytest.raises(JaxnetError, match="would run out of memory at batch size 16"):
        train(get_config(), tmp_path)
    assert not list((tmp_path / "checkpoints").iterdir())
