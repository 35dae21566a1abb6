"""Nothing lost, nothing silent, the harder cases: failed saves, divergence, ties for the best
checkpoint, damage told apart from other failures, evaluations that never overwrite each other
nor change a workdir, signals during evaluation, atomic files, protocols a model was not
trained for, figures that say what they draw, and downloads checked for completeness.

One tiny run (tests/tiny_config.py: 8 steps, checkpoints at 4 and 8) is shared; a test that
changes a workdir works on a copy."""
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from jaxnet import JaxnetError, files
from jaxnet.loop import checkpoint as checkpoint_module
from jaxnet.loop.checkpoint import Checkpointer, is_damage
from jaxnet.loop.divergence import DivergenceGuard, TrainingDiverged
from jaxnet.loop.stop import Preempted
from jaxnet.methods import evaluate, train
from tests.tiny_config import get_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nothing_lost") / "run"
    train(get_config(), workdir)
    return workdir


def snapshot(directory: Path) -> dict:
    """{relative path: sha256} of every file under `directory` (what "unchanged" means)."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def copy_of(workdir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(workdir, tmp_path / "copy", ignore=shutil.ignore_patterns("lock")))


def damage_data(step_dir: Path) -> None:
    for target in [p for p in (step_dir / "variables").rglob("*") if p.parent.name == "d"]:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 3])


# Atomic files

def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = files.write_text(tmp_path / "result.json", '{"old": 1}\n')
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        tmp.write_text('{"new": ')  # killed half-way
        raise RuntimeError("interrupted")
    assert path.read_text() == '{"old": 1}\n' and sorted(os.listdir(tmp_path)) == ["result.json"]
    files.write_text(path, '{"new": 2}\n')
    assert json.loads(path.read_text()) == {"new": 2} and oct(path.stat().st_mode)[-3:] == "644"


# Resource failures

def test_a_full_disk_stops_the_run_in_one_line_and_keeps_the_earlier_checkpoints(trained, tmp_path,
                                                                                 monkeypatch):
    workdir = copy_of(trained, tmp_path)  # checkpoints 4 and 8; resumed to 12, whose save fails
    real_save = checkpoint_module._save_step

    def full_disk(manager, step, args, metrics):
        if step < 12:
            return real_save(manager, step, args, metrics)
        (manager.directory / f"{step}.orbax-checkpoint-tmp-1").mkdir()  # what orbax had begun
        raise OSError(errno.ENOSPC, "No space left on device", str(manager.directory))

    monkeypatch.setattr(checkpoint_module, "_save_step", full_disk)
    config = get_config()
    config.num_epochs = 3.0
    with pytest.raises(JaxnetError, match=r"^the checkpoint at step 12 could not be saved in "
                                          rf"{workdir / 'checkpoints'} \(no space left on the device\);"
                                          r" training stopped. The checkpoints saved before it"
                                          r" \(4, 8\) are kept") as error:
        train(config, workdir)
    assert "\n" not in str(error.value)
    assert sorted(os.listdir(workdir / "checkpoints")) == ["4", "8"]  # no temporary left


# Divergence and the best checkpoint

def test_a_loss_far_above_its_start_for_several_intervals_stops_naming_the_good_checkpoint():
    guard = DivergenceGuard(factor=10.0, intervals=3)
    guard.observe(10, 2.3, last_good=0, checkpoint_dir="/w/checkpoints")  # the starting value
    guard.observe(20, 40.0, last_good=10, checkpoint_dir="/w/checkpoints")  # one bad interval ...
    guard.observe(30, 2.0, last_good=20, checkpoint_dir="/w/checkpoints")  # ... then it recovers
    for step in (40, 50):
        guard.observe(step, 1600.0, last_good=30, checkpoint_dir="/w/checkpoints")
    with pytest.raises(TrainingDiverged, match=r"1600 at step 60, above 10 x its starting 2.3 for 3"
                                               r" logging intervals.*last good checkpoint is step 30"
                                               r" in /w/checkpoints"):
        guard.observe(60, 1600.0, last_good=50, checkpoint_dir="/w/checkpoints")
    off = DivergenceGuard(factor=0.0, intervals=1)
    for step in range(1, 5):
        off.observe(step, 10.0 ** step, last_good=0, checkpoint_dir="/w")  # 0: off


def test_a_diverging_run_stops_and_names_its_last_good_checkpoint(trained, tmp_path):
    workdir = copy_of(trained, tmp_path)
    config = get_config()
    config.num_epochs, config.base_lr, config.log_every_steps = 5.0, 1e4, 1
    config.divergence_factor, config.divergence_intervals = 1.05, 2
    with pytest.raises(TrainingDiverged, match=r"diverged: .* at step (9|1\d), .*The last good"
                                               rf" checkpoint is step 8 in {workdir / 'checkpoints'}"):
        train(config, workdir, allow_config_change=True)


def test_a_tie_for_the_best_checkpoint_keeps_the_earliest(tmp_path):
    with Checkpointer(tmp_path, keep=2) as checkpointer:
        for step in range(1, 6):  # every evaluation at chance: equal errors
            checkpointer.save(step, {"x": {"w": np.full(2, step, np.float32)}},
                              metrics={"top1_err": 0.9})
            checkpointer.wait()
        assert checkpointer.best_step() == 1 and checkpointer.all_steps() == [1, 4, 5]


# Damage, told apart from other failures; evaluation never changes a workdir

def test_only_a_decode_failure_of_the_checkpoints_own_files_is_damage(tmp_path):
    step_dir = tmp_path / "checkpoints" / "8"
    assert is_damage(json.JSONDecodeError("Expecting value", "{", 1), step_dir)
    assert is_damage(ValueError(f'OUT_OF_RANGE: Error reading "{step_dir}/variables/d/1": Requested'
                                " byte range [0, 209) is not valid for value of size 69"), step_dir)
    assert not is_damage(ValueError('OUT_OF_RANGE: Error reading "/elsewhere/d/1"'), step_dir)
    assert not is_damage(ValueError("Structure mismatch: Target path ('b',) not found"), step_dir)
    assert not is_damage(MemoryError(), step_dir)
    assert not is_damage(ValueError(f"RESOURCE_EXHAUSTED: out of memory reading {step_dir}"), step_dir)
    assert not is_damage(OSError(errno.EIO, "Input/output error", str(step_dir)), step_dir)


def test_evaluation_leaves_damaged_checkpoints_where_they_are(trained, tmp_path, capsys):
    workdir = copy_of(trained, tmp_path)
    damage_data(workdir / "checkpoints" / "8")
    before = snapshot(workdir / "checkpoints")
    record = evaluate(get_config(), workdir, report=False)  # the newest intact one: step 4
    assert record["step"] == 4
    assert "step 8 is damaged" in capsys.readouterr().err
    assert snapshot(workdir / "checkpoints") == before
    assert not (workdir / "checkpoints_damaged").exists()


def test_a_failure_that_is_not_damage_moves_nothing(trained, tmp_path, monkeypatch):
    workdir = copy_of(trained, tmp_path)
    before = snapshot(workdir / "checkpoints")

    def out_of_memory(self, step, targets):
        raise ValueError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9.1GiB")

    monkeypatch.setattr(Checkpointer, "restore", out_of_memory)
    for run in (lambda: evaluate(get_config(), workdir, report=False),
                lambda: train(get_config(), workdir)):  # neither evaluation nor training
        with pytest.raises(JaxnetError, match="step 8 .* could not be read .*RESOURCE_EXHAUSTED"):
            run()
        assert snapshot(workdir / "checkpoints") == before
        assert not (workdir / "checkpoints_damaged").exists()


# Evaluations that never overwrite each other

def test_labels_files_and_options_get_their_own_eval_files(trained, tmp_path):
    workdir = copy_of(trained, tmp_path)
    plain = evaluate(get_config(), workdir, report=False)
    assert plain["path"] == str(workdir / "eval" / "test_step8.json") and plain["options"] == {}
    labels = tmp_path / "real.json"
    labels.write_text(json.dumps([[i % 10] for i in range(64)]))
    scored = evaluate(get_config(), workdir, labels_file=labels, report=False)  # --noreport too
    saved = json.loads(Path(scored["path"]).read_text())
    assert saved["real_top1_acc"] == scored["real_top1_acc"] is not None
    assert saved["options"] == {"labels_file": str(labels),
                                "labels_sha256": hashlib.sha256(labels.read_bytes()).hexdigest()}
    assert Path(scored["path"]).name == f"test_{scored['key']}_step8.json"
    labels.write_text(json.dumps([[(i + 1) % 10] for i in range(64)]))  # other labels, same path
    config = get_config()
    config.dtype = "bfloat16"
    other = evaluate(config, workdir, labels_file=labels, report=False)
    assert other["options"]["dtype"] == "bfloat16"
    names = sorted(p.name for p in (workdir / "eval").iterdir())
    assert len(names) == 3 and "test_step8.json" in names  # nothing overwritten


@pytest.mark.parametrize("content", [None, "[]", json.dumps([[] for _ in range(64)])])
def test_a_missing_or_empty_labels_file_is_refused_and_changes_nothing(trained, tmp_path, content):
    workdir = copy_of(trained, tmp_path)
    labels = tmp_path / "real.json"
    if content is not None:
        labels.write_text(content)
    before = snapshot(workdir)
    with pytest.raises(JaxnetError, match=f"labels file {labels}"):
        evaluate(get_config(), workdir, labels_file=labels, report=False)
    assert snapshot(workdir) == before


# A stop requested during evaluation

def _signal_during(monkeypatch, target, name):
    """`target`.`name` sends this process SIGTERM before doing its work."""
    original = getattr(target, name)

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, signalled)


def test_sigterm_during_evaluation_writes_nothing_and_during_writing_writes_everything(
        trained, tmp_path, monkeypatch):
    from jaxnet import methods
    from jaxnet.evaluation.evaluator import Evaluator

    workdir = copy_of(trained, tmp_path)
    before, handler = snapshot(workdir), signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as patch:
        _signal_during(patch, Evaluator, "__call__")
        with pytest.raises(Preempted, match="SIGTERM: stopped before anything was written"):
            evaluate(get_config(), workdir, out=tmp_path / "out1")
    assert snapshot(workdir) == before and not (tmp_path / "out1").exists()
    _signal_during(monkeypatch, methods, "write_eval_file")
    with pytest.raises(Preempted, match="SIGTERM: stopped after the results were written in full"):
        evaluate(get_config(), workdir, out=tmp_path / "out2")
    written = sorted(p.name for p in (tmp_path / "out2").iterdir())
    assert "test_step8.json" in written and "test_step8.html" in written
    assert json.loads((tmp_path / "out2" / "test_step8.json").read_text())["step"] == 8
    assert signal.getsignal(signal.SIGTERM) == handler  # restored afterwards


# Protocols and figures

def test_a_protocol_outside_the_training_augmentation_is_named():
    from jaxnet.evaluation.protocols import unseen_views

    config = get_config()  # small images, crop_flip with crop_padding 1
    assert unseen_views("center", config, encoded=False) is None
    assert unseen_views("ten_crop", config, encoded=False) is None
    config.augment = "flip"  # the quickstart's recipe
    note = unseen_views("ten_crop", config, encoded=False)
    assert "crop_padding=1" in note and "mirrors only" in note and "\n" not in note
    assert "rescaled" in unseen_views("multiscale", config, encoded=False)
    config.train_transform = "inception_crop"
    assert unseen_views("multiscale", config, encoded=True) is None
    config.train_transform = "alexnet"
    assert unseen_views("ten_crop", config, encoded=True) is None
    assert "one scale" in unseen_views("googlenet_144", config, encoded=True)


def test_each_figure_says_what_it_draws(trained, tmp_path, monkeypatch):
    from jaxnet.evaluation import figures

    drawn = {}
    real_save = figures._save

    def keep(fig, path):
        drawn[Path(path).name.split("_step8_")[1]] = fig
        return real_save(fig, path)

    monkeypatch.setattr(figures, "_save", keep)
    record = evaluate(get_config(), trained, out=tmp_path)
    classes = json.loads((tmp_path / "test_step8_per_class.json").read_text())["classes"]
    top1 = [c["top1_acc"] for c in classes]
    top5 = [c["top5_acc"] for c in classes]
    assert top1 != top5
    worst = drawn["worst_classes.png"].axes[0]
    assert "top-1" in worst.get_title() and "top-1" in worst.get_xlabel()
    bars = sorted(round(p.get_width(), 6) for p in worst.patches)
    assert bars == sorted(round(r, 6) for r in top1)  # top-1 rates, not top-5
    shown = sorted(t.get_text().split("%")[0] for t in worst.texts)
    assert shown == sorted(f"{100 * r:.1f}" for r in top1)
    hist = drawn["top5_hist.png"].axes[0]
    k = 1 if min(top5) >= 0.99 else 5
    assert f"top-{k}" in hist.get_title() and f"top-{k}" in hist.get_xlabel()
    assert sum(p.get_height() for p in hist.patches) == len(classes)
    mean = float(np.mean(top5 if k == 5 else top1))
    assert hist.get_legend().get_texts()[0].get_text() == f"mean over classes {100 * mean:.1f}%"
    reliability = drawn["reliability.png"].axes[0]
    assert reliability.get_title() == f"Reliability diagram (ECE {100 * record['ece']:.2f}%)"


# Downloads checked for completeness

def test_a_missing_class_archive_or_a_wrong_count_prepares_nothing(tmp_path):
    import tarfile

    from jaxnet.data.imagenet import prepare_imagenet
    from tests import mini_imagenet

    paths = mini_imagenet.write_ilsvrc(tmp_path)
    full = tmp_path / "full.tar"
    shutil.move(paths["train"], full)
    with tarfile.open(full) as src, tarfile.open(paths["train"], "w") as dst:
        for member in src:  # the train tar without the archive of the second class
            if member.name != f"{mini_imagenet.CLASSES[1]}.tar":
                dst.addfile(member, src.extractfile(member))
    data_dir = tmp_path / "data"
    with pytest.raises(JaxnetError, match=rf"incomplete \(train: no archive .* of 1 of the 3"
                                          rf" classes: {mini_imagenet.CLASSES[1]}\); nothing was prepared"):
        prepare_imagenet(tmp_path, data_dir, classes=mini_imagenet.CLASSES,
                         validation_labels_file=paths["labels"])
    shutil.move(full, paths["train"])  # the whole miniature: 12 train images, not 13
    with pytest.raises(JaxnetError, match=r"train: 12 images where the dataset has 13"):
        prepare_imagenet(tmp_path, data_dir, classes=mini_imagenet.CLASSES,
                         validation_labels_file=paths["labels"], train_images=13)
    assert not list(data_dir.rglob("*.array_record*"))


# The command line: one line each, and eval.py without --config

def _run(args):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, check=False)
    return result.returncode, result.stdout, result.stderr


def test_command_line_errors_are_one_line_and_eval_reads_the_workdirs_config(trained, tmp_path):
    bad = tmp_path / "bad_config.py"
    bad.write_text("def get_config(:\n    pass\n")
    resnet10 = tmp_path / "resnet10"
    resnet10.mkdir()
    config = get_config()
    config.model.name = "resnet10"
    (resnet10 / "config.json").write_text(config.to_json())
    damaged = copy_of(trained, tmp_path)
    for step in ("4", "8"):
        damage_data(damaged / "checkpoints" / step)
    cases = [
        (["train.py", f"--config={bad}", f"--workdir={tmp_path / 'never'}"], 2,
         f"{bad} line 1: invalid syntax"),
        (["eval.py", f"--workdir={trained}", "--noreport", "--labels_file=/no/real.json"], 1,
         "/no/real.json"),
        (["-m", "jaxnet", "weights", "export", f"--workdir={resnet10}", f"--out={tmp_path / 'w.pth'}"],
         1, "resnet10 has no torchvision layout"),
        (["eval.py", f"--workdir={damaged}", "--noreport"], 1,  # no asyncio tracebacks either
         "the checkpoint at step 8 in"),
        (["eval.py", f"--workdir={trained}", "--noreport", f"--out={tmp_path / 'out'}"], 0, ""),
    ]
    before, before10 = snapshot(trained / "checkpoints"), snapshot(resnet10)
    damaged_before = snapshot(damaged)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: _run(case[0]), cases))
    for (args, code, says), (returncode, out, err) in zip(cases, results):
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
        assert returncode == code and "Traceback" not in out + err, (args, err[-2000:])
        if code:
            assert len(lines) == 1 and says in lines[0], (args, err[-2000:])
    assert "test at step 8" in results[-1][1]  # evaluated with the workdir's own config.json
    assert snapshot(trained / "checkpoints") == before and snapshot(resnet10) == before10
    assert snapshot(damaged) == damaged_before
    assert not (tmp_path / "never").exists() and not (tmp_path / "w.pth").exists()
