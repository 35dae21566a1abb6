"""The training loop: resume equals an uninterrupted run, restores onto fewer devices, refuses a
foreign workdir, stops on NaN keeping the last good checkpoint; batches prefetched to the devices
keep the data position of the batch trained on."""
import json
import os

import jax
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.data.pipeline import train_loader
from jaxnet.data.sources import create_source
from jaxnet.loop.checkpoint import Checkpointer, abstract_like
from jaxnet.loop.prefetch import DevicePrefetch
from jaxnet.loop.train_loop import TrainingDiverged, restore_training
from jaxnet.mesh import create_mesh, replicated
from jaxnet.methods import train
from jaxnet.training.state import build_training
from tests.metrics_records import untimed_records
from tests.tiny_config import get_config


def restore_latest(config, workdir, devices):
    mesh = create_mesh(devices)
    _, _, _, init = build_training(config, 4, mesh)
    abstract = abstract_like(jax.eval_shape(init, jax.random.PRNGKey(0)), replicated(mesh))
    with Checkpointer(workdir / "checkpoints", keep=5) as checkpointer:
        return restore_training(checkpointer, abstract)[1]


def test_resumed_run_equals_uninterrupted_run(tmp_path, devices):
    config = get_config()  # 8 steps, checkpoints at 4 and 8, logs every 2, evals every 4
    full = tmp_path / "full"
    final_full = train(config, full)

    resumed = tmp_path / "resumed"
    assert train(config, resumed, stop_at_step=6) is None  # "preempted" mid-epoch
    assert sorted(os.listdir(resumed / "checkpoints")) == ["4", "6"]
    final_resumed = train(config, resumed)  # the same command resumes it

    records_full = untimed_records(full)
    records_resumed = untimed_records(resumed)
    train_full = [r for r in records_full if r["split"] == "train"]
    assert [r["step"] for r in train_full] == [2, 4, 6, 8]
    assert train_full == [r for r in records_resumed if r["split"] == "train"]
    assert final_full == final_resumed
    state_full = restore_latest(config, full, devices)
    state_resumed = restore_latest(config, resumed, devices)
    assert int(state_full.step) == int(state_resumed.step) == 8
    for a, b in zip(jax.tree.leaves(state_full), jax.tree.leaves(state_resumed)):
        np.testing.assert_array_equal(a, b)
    assert final_full["num_examples"] == config.synthetic_examples
    assert sorted(os.listdir(full / "checkpoints")) == ["4", "8"]
    saved = json.loads((full / "config.json").read_text())
    assert saved["model"] == {"name": "resnet18", "stem": "small", "width": 4, "stage_sizes": [1, 1]}


def test_plateau_and_polyak_runs_resume_exactly(tmp_path):
    # Evaluations every 2 steps; a 50% relative gain is needed to count as progress, so the
    # plateau rule drops the lr during these 8 steps. Stopping at step 4 (an evaluation and a
    # checkpoint) checks that the checkpoint holds what that evaluation told the rule.
    config = get_config()
    config.schedule, config.warmup_epochs, config.eval_every_epochs = "plateau", 0.0, 0.5
    config.plateau_patience, config.plateau_rtol, config.decay_factor = 1, 0.5, 0.1
    config.ema_decay = 0.9
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    final_full = train(config, full)
    assert train(config, resumed, stop_at_step=4) is None
    final_resumed = train(config, resumed)
    assert final_full == final_resumed
    records = untimed_records(full)
    assert records == untimed_records(resumed)
    lrs = [r["lr"] for r in records if r["split"] == "train"]
    peak = config.base_lr * config.batch_size / 256
    assert lrs[0] == pytest.approx(peak) and lrs[-1] < peak / 5  # at least one drop


def test_checkpoint_from_8_devices_restores_onto_4(tmp_path, devices):
    config = get_config()
    config.num_epochs = 1.0
    train(config, tmp_path)
    on8 = restore_latest(config, tmp_path, devices)
    on4 = restore_latest(config, tmp_path, devices[:4])
    kernel = on4.params["fc"]["kernel"]
    assert kernel.sharding.mesh.devices.size == 4
    for a, b in zip(jax.tree.leaves(on8), jax.tree.leaves(on4)):
        np.testing.assert_array_equal(a, b)


def test_workdir_of_another_model_is_refused_and_left_alone(tmp_path):
    config = get_config()
    config.num_epochs = 1.0
    train(config, tmp_path)
    def files():  # (the lock file says who tried last: not part of the run)
        return {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.name != "lock"}

    before = files()
    other = get_config()
    other.model.width = 8
    with pytest.raises(JaxnetError, match="different run.*model"):
        train(other, tmp_path)
    assert files() == before


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = get_config()
    config.num_epochs = 1.0
    train(config, tmp_path)  # a good checkpoint at step 4
    config.num_epochs = 3.0
    config.base_lr = 1e30  # diverges as soon as training resumes
    with pytest.raises(TrainingDiverged, match=r"at step \d+.*last good checkpoint is step 4"):
        train(config, tmp_path, allow_config_change=True)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4"]


def test_unwritable_workdir_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(JaxnetError, match="not writable"):
        train(get_config(), blocker / "run")


def test_records_logged_after_the_restored_checkpoint_are_not_repeated(tmp_path):
    """As after a kill -9 between step 6's records and its checkpoint: a resumed run's
    metrics.jsonl holds exactly an uninterrupted run's records, in order."""
    import shutil

    config = get_config()
    full, killed = tmp_path / "full", tmp_path / "killed"
    train(config, full)
    assert train(config, killed, stop_at_step=6) is None  # records and checkpoints up to 6
    shutil.rmtree(killed / "checkpoints" / "6")  # ... but the checkpoint at 6 never finished
    train(config, killed)  # resumes from 4: steps 5-6 are logged again
    records = untimed_records(killed)
    assert records == untimed_records(full)


def test_device_prefetch_yields_the_stream_and_the_state_of_the_batch_trained_on():
    config = get_config()
    source, mesh = create_source(config, "train"), create_mesh()
    plain = iter(train_loader(source, config))
    with DevicePrefetch(iter(train_loader(source, config)), mesh, depth=3) as batches:
        for _ in range(6):  # past an epoch (4 batches): the reshuffle too
            batch, expected = next(batches), next(plain)
            assert batch["image"].sharding.mesh == mesh
            np.testing.assert_array_equal(np.asarray(batch["image"]), expected["image"])
            np.testing.assert_array_equal(np.asarray(batch["label"]), expected["label"])
            assert batches.state == plain.get_state()  # not the state 3 batches ahead


class FailingAtThirdBatch:
    def __init__(self):
        self.batches = 0

    def get_state(self):
        return {"batches": self.batches}

    def __next__(self):
        self.batches += 1
        if self.batches == 3:
            raise JaxnetError("image 17 of the train split does not decode")
        return {"image": np.zeros((8, 2, 2, 1), np.uint8), "label": np.zeros(8, np.int32)}


def test_device_prefetch_raises_the_readers_error_in_the_training_thread():
    with DevicePrefetch(FailingAtThirdBatch(), create_mesh()) as batches:
        next(batches), next(batches)
        with pytest.raises(JaxnetError, match="image 17 of the train split does not decode"):
            next(batches)
