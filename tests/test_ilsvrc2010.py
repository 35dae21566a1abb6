"""ILSVRC-2010 preparation without TensorFlow: a miniature download in the official layout
(tests/mini_ilsvrc2010.py), prepared, read back with tfds.data_source and by create_source; class
ids from the devkit's meta.mat, val/test labels from the ground-truth files, errors, re-runs."""
import io
import tarfile

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from jaxnet import JaxnetError
from jaxnet.data import ilsvrc2010
from jaxnet.data.sources import create_source
from jaxnet.tools import prepare
from tests import mini_ilsvrc2010 as mini
from tests.mini_ilsvrc2010 import CLASSES, COLOURS, PER_CLASS, TEST_IDS, VAL_IDS


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return mini.prepare_mini(tmp_path_factory.mktemp("ilsvrc2010"))


def read_split(data_dir, split):
    source = tfds.data_source("ilsvrc2010", split=split, data_dir=str(data_dir),
                              decoders={"image": tfds.decode.SkipDecoding()})
    return [source[i] for i in range(len(source))]


def mean_colour(jpeg: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(jpeg)).convert("RGB"), np.float32).mean((0, 1))


def test_train_labels_are_meta_mat_ids_not_sorted_wnids(prepared):
    data_dir, builder = prepared
    records = read_split(data_dir, "train")
    assert len(records) == sum(PER_CLASS)
    assert list(CLASSES) != sorted(CLASSES)  # so sorted-wnid labels would fail here
    for r in records:
        wnid = r["file_name"].decode().split("_")[0]
        assert r["label"] == CLASSES.index(wnid)  # = ILSVRC2010_ID - 1
        assert np.abs(mean_colour(r["image"]) - COLOURS[r["label"]]).max() < 12, r["file_name"]
        image = PIL.Image.open(io.BytesIO(r["image"]))
        assert (image.format, image.mode) == ("JPEG", "RGB"), r["file_name"]
    assert sorted(builder.fixed) == sorted([mini.CMYK, mini.GZIPPED])


@pytest.mark.parametrize("split, prefix, ids", [("validation", "val", VAL_IDS),
                                                ("test", "test", TEST_IDS)])
def test_val_and_test_labels_follow_the_ground_truth_in_file_name_order(prepared, split, prefix, ids):
    data_dir, _ = prepared
    records = {r["file_name"].decode(): r for r in read_split(data_dir, split)}
    expected = {f"ILSVRC2010_{prefix}_{i + 1:08d}.JPEG": ident - 1 for i, ident in enumerate(ids)}
    assert {name: int(r["label"]) for name, r in records.items()} == expected
    for r in records.values():
        assert np.abs(mean_colour(r["image"]) - COLOURS[r["label"]]).max() < 12, r["file_name"]


def test_split_counts_class_names_and_metadata(prepared):
    data_dir, _ = prepared
    info = tfds.builder("ilsvrc2010", data_dir=str(data_dir)).info
    assert {k: v.num_examples for k, v in info.splits.items()} == {
        "train": sum(PER_CLASS), "validation": len(VAL_IDS), "test": len(TEST_IDS)}
    assert info.features["label"].names == list(CLASSES)  # label order = ILSVRC2010_ID order
    assert info.metadata["wnids"] == list(CLASSES)
    assert info.metadata["words"] == list(mini.WORDS)
    assert info.metadata["ilsvrc2010_ids"] == [1, 2, 3, 4]
    assert ilsvrc2010.SPLITS == {"train": 1_261_406, "validation": 50_000, "test": 150_000}


def test_create_source_reads_the_prepared_splits(prepared, tmp_path):
    data_dir, _ = prepared
    config = mini.mini_config(data_dir)
    assert config.eval_split == "test"
    test = create_source(config, config.eval_split)
    assert len(test) == len(TEST_IDS) and len(create_source(config, "train")) == sum(PER_CLASS)
    items = [test[i] for i in range(len(test))]
    assert all(item["image"].shape == (16, 16, 3) for item in items)
    assert sorted(int(item["label"]) for item in items) == sorted(i - 1 for i in TEST_IDS)

    config.data_dir = str(tmp_path)  # nothing prepared there: the help names the command
    with pytest.raises(JaxnetError, match="python -m jaxnet prepare ilsvrc2010 --manual_dir"):
        create_source(config, "test")


@pytest.mark.parametrize("missing", ["ILSVRC2010_images_train.tar", "ILSVRC2010_images_val.tar",
                                     "ILSVRC2010_images_test.tar", "ILSVRC2010_devkit-1.0.tar.gz",
                                     "ILSVRC2010_test_ground_truth.txt"])
def test_a_missing_file_is_named_in_one_line(tmp_path, capsys, missing):
    mini.write_ilsvrc2010(tmp_path)
    (tmp_path / missing).unlink()
    assert prepare.main(["ilsvrc2010", f"--manual_dir={tmp_path}",
                         f"--data_dir={tmp_path / 'data'}"]) == 1
    err = capsys.readouterr().err.strip()
    assert missing in err and "\n" not in err and err.startswith("error: ")


def rewrite_devkit(directory, val_truth: str, meta: bytes = None):
    mini.write_devkit(directory / "ILSVRC2010_devkit-1.0.tar.gz", meta or mini.meta_mat(), val_truth)


@pytest.mark.parametrize("which, text, message", [
    ("val", mini.truth_text(VAL_IDS[:-1]), "has 5 ILSVRC2010_IDs but .* holds 6 images"),
    ("val", mini.truth_text((3, 1, 1001, 4, 2, 1)), "line 3: ILSVRC2010_ID 1001 is outside 1..4"),
    ("test", mini.truth_text(TEST_IDS + (1,)), "has 9 ILSVRC2010_IDs but .* holds 8 images"),
    ("test", mini.truth_text((0,) + TEST_IDS[1:]), "line 1: ILSVRC2010_ID 0 is outside 1..4"),
    ("test", "2\n4\nn07711080\n", "line 3: 'n07711080' is not an ILSVRC2010_ID"),
])
def test_bad_ground_truth_is_an_error_naming_the_file(tmp_path, which, text, message):
    mini.write_ilsvrc2010(tmp_path)
    if which == "val":
        rewrite_devkit(tmp_path, text)
        name = "ILSVRC2010_devkit-1.0.tar.gz:devkit-1.0/data/ILSVRC2010_validation_ground_truth.txt"
    else:
        (tmp_path / "ILSVRC2010_test_ground_truth.txt").write_text(text)
        name = "ILSVRC2010_test_ground_truth.txt"
    with pytest.raises(JaxnetError, match=message) as error:
        ilsvrc2010.prepare_ilsvrc2010(tmp_path, tmp_path / "data")
    assert name in str(error.value)
    assert not (tmp_path / "data" / "ilsvrc2010").exists() or not any(
        (tmp_path / "data" / "ilsvrc2010").rglob("*.array_record*"))


def test_a_meta_mat_that_is_not_ilsvrc2010s_is_an_error():
    rows = mini.synset_rows()
    with pytest.raises(JaxnetError, match="ILSVRC2010_ID 1..N"):  # leaf ids 1, 2, 3, 5
        ilsvrc2010.read_meta(mini.meta_mat([(5,) + rows[3][1:]] + rows[:3] + rows[4:]), "meta.mat")
    with pytest.raises(JaxnetError, match="meta.mat is not a readable MATLAB file"):
        ilsvrc2010.read_meta(b"not a mat file at all, just text" * 10, "meta.mat")
    wnids, words, counts = ilsvrc2010.read_meta(mini.meta_mat(rows[::-1]), "meta.mat")  # any row order
    assert wnids == list(CLASSES) and counts == list(PER_CLASS)


def test_an_interrupted_preparation_is_simply_run_again(tmp_path, monkeypatch):
    mini.write_ilsvrc2010(tmp_path)
    real = ilsvrc2010.to_rgb_jpeg

    def interrupted(data):
        if data == (tmp_path / "marker").read_bytes():  # the test split's last-written image
            raise KeyboardInterrupt
        return real(data)

    with tarfile.open(tmp_path / "ILSVRC2010_images_test.tar") as tar:
        (tmp_path / "marker").write_bytes(tar.extractfile(tar.getmembers()[-1]).read())
    monkeypatch.setattr(ilsvrc2010, "to_rgb_jpeg", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after train and validation were written
        ilsvrc2010.prepare_ilsvrc2010(tmp_path, tmp_path / "data")
    assert ilsvrc2010.prepared_dir(tmp_path / "data") is None  # no half dataset is left
    assert not list((tmp_path / "data").rglob("*.array_record*"))

    monkeypatch.setattr(ilsvrc2010, "to_rgb_jpeg", real)
    assert prepare.main(["ilsvrc2010", f"--manual_dir={tmp_path}",
                         f"--data_dir={tmp_path / 'data'}"]) == 0
    assert ilsvrc2010.prepared_dir(tmp_path / "data") is not None
    assert [len(read_split(tmp_path / "data", s)) for s in ("train", "validation", "test")] == \
        [sum(PER_CLASS), len(VAL_IDS), len(TEST_IDS)]
