"""A stop requested on one process of a two-process job (2 x 1 CPU device, real train.py and
eval.py processes joined over a loopback coordinator) stops both at one agreed point: training
at one step, with one checkpoint, the resume line on each, and the same command resumes it;
evaluation between two batches, with nothing written."""
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_multiprocess import free_port

ROOT = Path(__file__).resolve().parents[1]


def launch(workdir: Path, port: int, logs: Path, extra=(), script="train.py"):
    """`script` (train.py or eval.py, tests/tiny_config.py) as processes 0 and 1 of one job,
    each with one CPU device; their output goes to LOGS/process{0,1}.log."""
    import os

    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags.strip())
    processes = []
    for i in range(2):
        log = open(logs / f"process{i}.log", "w")
        processes.append(subprocess.Popen(
            [sys.executable, script, "--config=tests/tiny_config.py", f"--workdir={workdir}",
             "--cpu_devices=1", f"--coordinator_address=localhost:{port}", "--num_processes=2",
             f"--process_id={i}", *extra],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
        log.close()
    return processes


def wait_for(path: Path, text: str, processes, timeout=300):
    deadline = time.time() + timeout
    while text not in path.read_text():
        assert all(p.poll() is None for p in processes), path.read_text()[-3000:]
        assert time.time() < deadline, f"no {text!r} in time: {path.read_text()[-3000:]}"
        time.sleep(0.1)


def finish(processes, timeout=300):
    try:
        return [p.wait(timeout=timeout) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()


def stopped_steps(tmp_path, codes) -> int:
    """The one step both processes say they stopped at, with the resume line, exit 1 each."""
    logs = [(tmp_path / f"process{i}.log").read_text() for i in range(2)]
    assert codes == [1, 1], [log[-3000:] for log in logs]
    steps = set()
    for log in logs:
        assert "Traceback" not in log, log[-3000:]
        stopped = [line for line in log.splitlines() if re.match(r"error: .*stopped at step \d+", line)]
        assert len(stopped) == 1 and "run the same command to resume" in stopped[0], log[-3000:]
        steps.add(int(stopped[0].split("stopped at step ")[1].split()[0]))
    assert len(steps) == 1, logs  # one agreed step
    return steps.pop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Where the training test leaves its two-process run (the evaluation test's model)."""
    return tmp_path_factory.mktemp("stopped") / "run"


def test_sigterm_to_one_process_stops_both_at_one_step_and_resumes(tmp_path, workdir):
    command = ["--config.log_every_steps=1", "--config.num_epochs=400", "--config.eval_every_epochs=100"]
    processes = launch(workdir, free_port(), tmp_path, command)
    wait_for(tmp_path / "process0.log", "train step 3/", processes)
    processes[1].send_signal(signal.SIGTERM)  # the one that is not the coordinator ...
    time.sleep(0.5)
    processes[0].send_signal(signal.SIGTERM)  # ... then the other, as a whole job's end comes
    step = stopped_steps(tmp_path, finish(processes))
    assert step >= 3 and (workdir / "checkpoints" / str(step)).is_dir()
    # the same command resumes from that checkpoint and trains on; a stop on process 0 alone
    # stops both again
    processes = launch(workdir, free_port(), tmp_path, command)
    wait_for(tmp_path / "process0.log", f"train step {step + 1}/", processes)
    assert f"resumed from the checkpoint at step {step}" in (tmp_path / "process0.log").read_text()
    processes[0].send_signal(signal.SIGTERM)
    again = stopped_steps(tmp_path, finish(processes))
    assert again > step and (workdir / "checkpoints" / str(again)).is_dir()


def test_sigterm_to_one_process_of_an_evaluation_stops_both_and_writes_nothing(tmp_path, workdir):
    assert (workdir / "checkpoints").is_dir(), "runs after the training test, on its workdir"
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    # 6,000 test images in batches of 2: a pass of 3,000 batches, stopped early
    command = ["--config.synthetic_examples=6000", "--config.eval_batch_size=2", "--noreport"]
    processes = launch(workdir, free_port(), tmp_path, command, script="eval.py")
    wait_for(tmp_path / "process0.log", "evaluating test", processes)  # the pass has begun
    processes[1].send_signal(signal.SIGTERM)  # not the coordinator
    codes = finish(processes)
    logs = [(tmp_path / f"process{i}.log").read_text() for i in range(2)]
    assert codes == [1, 1], [log[-3000:] for log in logs]
    batches = set()
    for log in logs:
        assert "Traceback" not in log, log[-3000:]
        stopped = [line for line in log.splitlines() if line.startswith("error: ")]
        assert len(stopped) == 1 and "before anything was written" in stopped[0], log[-3000:]
        batches.add(int(re.search(r"stopped at batch (\d+)", stopped[0]).group(1)))
    assert len(batches) == 1 and 0 < batches.pop() < 3000, logs  # one agreed batch, mid-pass
    assert "SIGTERM" in logs[1] and "a stop requested on another process" in logs[0]
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before  # nothing written
