"""Two local processes x 4 CPU devices (one JAX system over a loopback coordinator, gloo
collectives) train like one process with 8 devices, and their checkpoints are interchangeable.

Runs (tests/tiny_config.py, 8 steps, checkpoints at 4 and 8):
  A  1 process, 8 devices (this pytest process), from scratch          the reference
  B  2 processes (tests/multiprocess_worker.py), from scratch           == A
  C  A's checkpoint at step 4, resumed by 2 processes                   == A
  D  B's checkpoint at step 4, resumed by 1 process                     == A
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.compat import detected_cluster
from jaxnet.distributed import compilation_cache_dir, should_initialize
from jaxnet.loop.checkpoint import Checkpointer, abstract_like
from jaxnet.loop.train_loop import restore_training
from jaxnet.mesh import create_mesh
from jaxnet.methods import train
from jaxnet.training.sharding import state_shardings
from jaxnet.training.state import build_training
from tests.tiny_config import get_config

WORKER = Path(__file__).parent / "multiprocess_worker.py"
COMPARED = ("loss", "top1_acc", "top5_acc", "lr", "epoch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def launch_workers(cache_dir, workdirs):
    """Start the two processes; the environment is this one's minus the 8-device emulation."""
    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags.strip())
    port = free_port()
    return [subprocess.Popen([sys.executable, str(WORKER), str(i), str(port), str(cache_dir),
                              *map(str, workdirs)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]


def finish(workers, timeout=300):
    try:
        outputs = [w.communicate(timeout=timeout) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for i, (w, (_, err)) in enumerate(zip(workers, outputs)):
        assert w.returncode == 0, f"process {i} failed:\n{err[-4000:]}"


def wait_for(path: Path, workers, timeout=300):
    deadline = time.time() + timeout
    while not path.exists():
        if any(w.poll() not in (None, 0) for w in workers):
            finish(workers)  # reports the failed process's error
        assert time.time() < deadline, f"timed out waiting for {path}"
        time.sleep(0.1)


def read_metrics(workdir: Path):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def truncate_at(src: Path, dst: Path, step: int) -> Path:
    """A copy of workdir `src` as it stood after `step`: later checkpoints and records dropped."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("DONE", "READY"))
    for ckpt in (dst / "checkpoints").iterdir():
        if ckpt.name.isdigit() and int(ckpt.name) > step:
            shutil.rmtree(ckpt)
    kept = [r for r in read_metrics(src) if r["step"] <= step]
    (dst / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (dst / "READY").write_text("")
    return dst


def restore_final(config, workdir: Path):
    """The step-8 train state of `workdir`, restored onto this process's 8-device mesh."""
    mesh = create_mesh()
    _, _, _, init = build_training(config, 4, mesh)
    shapes = jax.eval_shape(init, jax.random.PRNGKey(0))
    with Checkpointer(workdir / "checkpoints", keep=5) as checkpointer:
        return restore_training(checkpointer, abstract_like(shapes, state_shardings(shapes, mesh, config)),
                                step=8)[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    a, b, c, d = (root / name for name in "ABCD")
    workers = launch_workers(compilation_cache_dir(""), [b, f"wait:{c}"])  # the suite's cache
    try:
        train(get_config(), a)  # meanwhile the two processes train B
        truncate_at(a, c, 4)  # ... and then resume C
        wait_for(b / "DONE", workers)
        train(get_config(), truncate_at(b, d, 4))
    finally:
        finish(workers)
    return {name: root / name for name in "ABCD"}


def assert_same_records(got, want):
    assert [(r["step"], r["split"]) for r in got] == [(r["step"], r["split"]) for r in want]
    for g, w in zip(got, want):
        for key in COMPARED:
            if key in w:
                np.testing.assert_allclose(g[key], w[key], rtol=2e-4, atol=1e-6,
                                           err_msg=f"{key} at step {w['step']} ({w['split']})")


def test_two_processes_train_like_one_with_eight_devices(runs):
    reference = read_metrics(runs["A"])
    assert sorted((r["step"], r["split"]) for r in reference) == [
        (2, "train"), (4, "test"), (4, "train"), (6, "train"), (8, "test"), (8, "train")]
    # Process 0 alone logged (a second writer would duplicate every record) and wrote the config.
    assert_same_records(read_metrics(runs["B"]), reference)
    assert json.loads((runs["B"] / "config.json").read_text())["batch_size"] == 16


def test_two_process_final_parameters_equal_one_process(runs):
    config = get_config()
    one, two = restore_final(config, runs["A"]), restore_final(config, runs["B"])
    assert int(two.step) == 8
    leaves = jax.tree.leaves_with_path(jax.device_get(one))
    other = jax.tree.leaves(jax.device_get(two))
    assert len(leaves) == len(other)
    for (path, x), y in zip(leaves, other):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5, err_msg=jax.tree_util.keystr(path))


def test_one_process_checkpoint_resumes_in_two_processes(runs):
    assert_same_records(read_metrics(runs["C"]), read_metrics(runs["A"]))


def test_two_process_checkpoint_resumes_in_one_process(runs):
    assert_same_records(read_metrics(runs["D"]), read_metrics(runs["A"]))


SLURM_TWO_TASKS = {"SLURM_JOB_ID": "1234", "SLURM_STEP_NODELIST": "node[001-002]",
                   "SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}


def test_start_up_joins_only_when_launched_as_several_processes(monkeypatch):
    for var in [*SLURM_TWO_TASKS, "JAX_COORDINATOR_ADDRESS", "OMPI_MCA_orte_hnp_uri",
                "KUBERNETES_SERVICE_HOST"]:
        monkeypatch.delenv(var, raising=False)
    assert not should_initialize("auto", None, None)  # a plain single machine
    assert should_initialize("auto", "10.0.0.1:1234", None)
    assert should_initialize("auto", None, 2)
    assert should_initialize("on", None, None) and not should_initialize("off", "h:1", 2)
    for var, value in SLURM_TWO_TASKS.items():  # what srun sets: detected through JAX's registry
        monkeypatch.setenv(var, value)
    assert detected_cluster() == ("slurm", 2) and should_initialize("auto", None, None)
    monkeypatch.setenv("SLURM_NTASKS", "1")  # a one-task allocation has nobody to join
    assert not should_initialize("auto", None, None)
    with pytest.raises(JaxnetError, match="--distributed"):
        should_initialize("sometimes", None, None)


def test_compilation_cache_is_on_by_default_and_overridable(monkeypatch):
    monkeypatch.delenv("JAXNET_COMPILATION_CACHE", raising=False)
    assert compilation_cache_dir("") == str(Path("~/.cache/jaxnet/xla").expanduser())
    monkeypatch.setenv("JAXNET_COMPILATION_CACHE", "/scratch/xla")
    assert compilation_cache_dir("") == "/scratch/xla"
    assert compilation_cache_dir("/flag/dir") == "/flag/dir"
    assert compilation_cache_dir("none") == ""
