"""Every user mistake is one line on stderr naming the field, file or flag and the fix, with exit
status 1 (2 for a flag absl or ml_collections refuses) and no traceback. Table-driven: each row
runs train.py / eval.py through their own `main` in this process (tests/cli_main.py), and the
rows marked as processes run as real subprocesses too (what a shell sees: the exit status, all
of stderr, nothing printed by threads at exit)."""
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jaxnet.methods import train
from tests.cli_main import run_main_streams
from tests.tiny_config import get_config

ROOT = Path(__file__).parent.parent
TINY = "--config=tests/tiny_config.py"

# (name, script, arguments ({trained}: a trained tiny workdir, {empty}: a new one), exit status,
#  what the message must say)
CASES = [
    ("unknown field", "train.py", [TINY, "--config.learning_rate=0.1", "--workdir={empty}"], 2,
     "unknown config field 'learning_rate'"),
    ("field typo", "train.py", [TINY, "--config.num_epoch=2", "--workdir={empty}"], 2,
     "did you mean config.num_epochs?"),
    ("ill-typed value", "train.py", [TINY, "--config.batch_size=many", "--workdir={empty}"], 2,
     "batch_size"),
    ("model option typo", "train.py", [TINY, "--config.model.widht=8", "--workdir={empty}"], 1,
     "width"),
    ("unknown model", "train.py", [TINY, "--config.model.name=resnet19", "--workdir={empty}"], 1,
     "resnet18"),
    ("bad optimizer", "train.py", [TINY, "--config.optimizer=adamw2", "--workdir={empty}"], 1,
     "config.optimizer"),
    ("bad lr_scaling", "train.py", [TINY, "--config.lr_scaling=sqrt2", "--workdir={empty}"], 1,
     "config.lr_scaling"),
    ("bad schedule", "train.py", [TINY, "--config.schedule=linear", "--workdir={empty}"], 1,
     "config.schedule"),
    ("bad model_parallel", "train.py", [TINY, "--config.model_parallel=0", "--workdir={empty}"], 1,
     "config.model_parallel must be >= 1"),
    ("batch over devices", "train.py", [TINY, "--config.batch_size=12", "--workdir={empty}"], 1,
     "not divisible by the 8 devices"),
    ("missing config file", "train.py", ["--config=configs/no_such_config.py", "--workdir={empty}"], 2,
     "no_such_config.py"),
    ("ImageNet not prepared", "train.py", ["--config=configs/resnet50.py", "--workdir={empty}"], 1,
     "ILSVRC2012_img_train.tar"),
    ("data_dir missing", "train.py", [TINY, "--config.dataset=fashion_mnist", "--config.image_size=28",
                                      "--config.data_dir=/no/such/dir", "--workdir={empty}"], 1,
     "/no/such/dir"),
    ("stray argument", "train.py", [TINY, "--workdir={empty}", "extra"], 1, "unexpected arguments"),
    ("changed config", "train.py", [TINY, "--config.base_lr=0.5", "--workdir={trained}"], 1,
     "base_lr: 0.1 there, 0.5 now"),
    ("eval before training", "eval.py", [TINY, "--workdir={empty}"], 1, "train first"),
    ("eval a missing step", "eval.py", [TINY, "--workdir={trained}", "--step=3"], 1,
     "no checkpoint at step 3"),
    ("bad protocol", "eval.py", [TINY, "--workdir={trained}", "--protocol=twelve_crop"], 1,
     "ten_crop"),
    ("missing ensemble member", "eval.py", [TINY, "--workdir={trained}", "--ensemble=/no/such/run"], 1,
     "/no/such/run"),
    ("missing labels file", "eval.py", [TINY, "--workdir={trained}", "--labels_file=/no/real.json"], 1,
     "/no/real.json"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("trained")
    config = get_config()
    config.num_epochs = 0.5
    train(config, workdir)
    return workdir


# one row of each kind, also run as processes: a flag absl refuses, a config error before any
# data is read, an error after a trained workdir's checkpoint threads started, and eval.py
AS_PROCESSES = ("unknown field", "ImageNet not prepared", "changed config", "eval a missing step")


def arguments(case, trained, empty) -> list[str]:
    name, _, args, _, _ = case
    return [a.format(trained=trained, empty=empty / name.replace(" ", "_")) for a in args]


def run_in_process(case, trained, empty):
    code, out, err = run_main_streams(case[1].removesuffix(".py"), *arguments(case, trained, empty))
    return code, err, out


def run_as_process(case, trained, empty):
    result = subprocess.run([sys.executable, case[1], *arguments(case, trained, empty / "process")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stderr, result.stdout


def wrong_answers(cases, results) -> list[str]:
    wrong = []
    for (name, _, _, code, says), (returncode, stderr, stdout) in zip(cases, results):
        lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("warning:")]
        ok = (returncode == code and len(lines) == 1 and says in lines[0]
              and "Traceback" not in stderr + stdout)
        if not ok:
            wrong.append(f"{name}: exit {returncode} (want {code}), stderr: {stderr[-600:]!r}")
    return wrong


def test_each_mistake_is_one_line_with_its_cause(trained, tmp_path):
    assert len(CASES) >= 15
    results = [run_in_process(case, trained, tmp_path) for case in CASES]
    wrong = wrong_answers(CASES, results)
    assert not wrong, "\n".join(wrong)
    assert not (tmp_path / "ImageNet_not_prepared").exists()  # nothing written for a run that cannot start
    assert not (tmp_path / "unknown_field").exists()


def test_the_same_mistakes_as_processes(trained, tmp_path):
    cases = [case for case in CASES if case[0] in AS_PROCESSES]
    assert len(cases) == len(AS_PROCESSES)
    with ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(lambda case: run_as_process(case, trained, tmp_path), cases))
    wrong = wrong_answers(cases, results)
    assert not wrong, "\n".join(wrong)
    assert not (tmp_path / "process" / "ImageNet_not_prepared").exists()
