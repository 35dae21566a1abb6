"""Preparation mistakes and interruptions: another --classes into a prepared
data_dir is refused, a killed run's incomplete.* directory is removed by the next run (one line),
a second concurrent preparation is refused, an unknown wnid in --classes and a wrong
--validation_labels file are one-line errors that name them."""
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from jaxnet.tools import prepare
from tests import mini_imagenet
from tests.mini_imagenet import CLASSES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    directory = tmp_path_factory.mktemp("manual")
    mini_imagenet.write_ilsvrc(directory)
    return directory


def run_prepare(manual, data_dir, capsys, classes=CLASSES, labels=None):
    """prepare.main for the miniature download: (exit status, stderr)."""
    classes_file = data_dir.parent / f"classes_{len(classes)}.txt"
    classes_file.write_text("\n".join(classes) + "\n")
    status = prepare.main(["imagenet2012", f"--manual_dir={manual}", f"--data_dir={data_dir}",
                           f"--classes={classes_file}",
                           f"--validation_labels={labels or manual / 'val_labels.txt'}"])
    return status, capsys.readouterr().err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def label_names(data_dir):
    return tfds.builder_from_directory(str(data_dir / "imagenet2012" / "5.1.0")).info.features["label"].names


def test_another_class_subset_into_a_prepared_data_dir_is_refused(manual, tmp_path, capsys):
    data_dir = tmp_path / "data"
    assert run_prepare(manual, data_dir, capsys)[0] == 0
    assert label_names(data_dir) == list(CLASSES)  # the subset is recorded as the label names

    status, err = run_prepare(manual, data_dir, capsys, classes=CLASSES[:2])
    assert status == 1
    line = error_line(err)
    assert f"{data_dir / 'imagenet2012' / '5.1.0'} already holds imagenet2012 prepared with 3 classes" in line
    assert "not the 2 classes (n01440764, n01443537) asked for" in line and "--data_dir" in line
    assert label_names(data_dir) == list(CLASSES)  # left as it was

    assert run_prepare(manual, data_dir, capsys)[0] == 0  # the same request: reused
    assert run_prepare(manual, tmp_path / "other", capsys, classes=CLASSES[:2])[0] == 0
    assert label_names(tmp_path / "other") == list(CLASSES[:2])


def test_an_unknown_wnid_in_classes_is_named(manual, tmp_path, capsys):
    status, err = run_prepare(manual, tmp_path / "data", capsys, classes=(*CLASSES, "n99999999"))
    assert status == 1
    assert error_line(err).startswith("error: --classes: n99999999 is not an ILSVRC-2012 class")
    assert not (tmp_path / "data" / "imagenet2012").exists()


def test_a_wrong_label_count_points_to_validation_labels(manual, tmp_path, capsys):
    labels = tmp_path / "short_labels.txt"
    labels.write_text("\n".join(mini_imagenet.VAL_WNIDS[:-1]))
    status, err = run_prepare(manual, tmp_path / "data", capsys, labels=labels)
    assert status == 1
    line = error_line(err)
    assert f"{labels} has 5 labels but the validation tar holds 6 images" in line
    assert "--validation_labels=FILE" in line
    status, err = run_prepare(manual, tmp_path / "data", capsys, labels=tmp_path / "missing.txt")
    assert status == 1 and f"{tmp_path / 'missing.txt'}: cannot read it" in error_line(err)


KILLED_RUN = """
import sys, time
from jaxnet.data import imagenet
generate = imagenet.Imagenet2012._generate_examples

def slow(self, images, split, total=None):
    for example in generate(self, images, split, total):
        yield example
        print("writing", flush=True)
        time.sleep(60)  # killed here, with tfds's incomplete.* directory half written

imagenet.Imagenet2012._generate_examples = slow
imagenet.prepare_imagenet(sys.argv[1], sys.argv[2], {classes!r}, sys.argv[1] + "/val_labels.txt")
"""


def test_a_killed_run_leaves_incomplete_data_that_the_next_run_removes(manual, tmp_path, capsys):
    data_dir = tmp_path / "data"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED_RUN.format(classes=list(CLASSES))),
                              str(manual), str(data_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        assert "writing\n" in iter(child.stdout.readline, "")  # tfds prints a line before
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    stale = list((data_dir / "imagenet2012").glob("incomplete.*"))
    assert len(stale) == 1 and stale[0].is_dir()

    status, err = run_prepare(manual, data_dir, capsys)
    assert status == 0
    assert f"removed {stale[0]} (0.0 GB), left by an interrupted preparation" in err
    assert not list((data_dir / "imagenet2012").glob("incomplete.*"))
    assert label_names(data_dir) == list(CLASSES)


def test_a_concurrent_preparation_is_refused_and_keeps_its_incomplete_data(manual, tmp_path, capsys):
    running = tmp_path / "data" / "imagenet2012" / "incomplete.ABC123_5.1.0"
    running.mkdir(parents=True)
    with open(running.parent / ".jaxnet_prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the running preparation holds it
        status, err = run_prepare(manual, tmp_path / "data", capsys)
    assert status == 1
    assert "another preparation of imagenet2012 is writing into" in error_line(err)
    assert running.is_dir()  # not removed: it belongs to the running preparation
