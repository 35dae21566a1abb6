"""Real signals to real train.py processes: SIGTERM saves at the current step and exits non-zero
with the resume command; `kill -9` leaves no grain worker process behind."""
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def start(args, log):
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(log_path, text, process, timeout=900):
    deadline = time.time() + timeout
    while text not in log_path.read_text():
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.time() < deadline, f"no {text!r} in time"
        time.sleep(0.2)


def test_sigterm_checkpoints_the_current_step_and_the_same_command_resumes(tmp_path):
    args = ["--config=tests/tiny_config.py", f"--workdir={tmp_path / 'run'}",
            "--config.num_epochs=400", "--config.log_every_steps=1"]
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        process = start(args, log)
        wait_for(log_path, "train step 3/", process)
        process.send_signal(15)
        assert process.wait(timeout=120) == 1
    out = log_path.read_text()
    assert "Traceback" not in out
    stopped = [line for line in out.splitlines() if line.startswith("error: SIGTERM: stopped at step")]
    assert stopped and "run the same command to resume" in stopped[0]
    step = int(stopped[0].split("stopped at step ")[1].split()[0])
    assert step >= 3 and str(step) in [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    again = subprocess.run([sys.executable, "train.py", *args[:2], f"--config.num_epochs={(step + 4) / 4}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"resumed from the checkpoint at step {step}" in again.stdout


def test_kill_9_leaves_no_worker_processes(tmp_path):
    from tests import mini_imagenet

    (tmp_path / "ilsvrc").mkdir()
    data_dir = mini_imagenet.prepare_mini(tmp_path / "ilsvrc")[0]
    config = tmp_path / "config.py"
    config.write_text(
        "from tests.mini_imagenet import mini_config\n\n\ndef get_config():\n"
        f"    c = mini_config({str(data_dir)!r})\n    c.num_workers = 2\n"
        "    c.num_epochs = 1000.0\n    c.log_every_steps = 1\n    return c\n")
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        process = start([f"--config={config}", f"--workdir={tmp_path / 'run'}"], log)
        wait_for(log_path, "train step 2/", process)
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2, children  # the grain workers (and multiprocessing's helpers)
        process.kill()
        process.wait(timeout=60)
    gone, alive = psutil.wait_procs(children, timeout=60)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]
