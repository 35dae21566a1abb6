"""ILSVRC-2012 preparation without TensorFlow: a miniature download in the official layout,
prepared and read back with tfds.data_source; labels, the CMYK/PNG/greyscale traps, errors."""
import io
import shutil

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from jaxnet import JaxnetError
from jaxnet.data import imagenet
from jaxnet.tools import prepare
from tests import mini_imagenet
from tests.mini_imagenet import CLASSES, COLOURS, VAL_WNIDS


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return mini_imagenet.prepare_mini(tmp_path_factory.mktemp("ilsvrc"))


def read_split(data_dir, split):
    source = tfds.data_source("imagenet2012", split=split, data_dir=str(data_dir),
                              decoders={"image": tfds.decode.SkipDecoding()})
    return [source[i] for i in range(len(source))]


def mean_colour(jpeg: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(jpeg)).convert("RGB"), np.float32).mean((0, 1))


def test_train_labels_are_sorted_wnid_indices_and_images_match(prepared):
    data_dir, _ = prepared
    records = read_split(data_dir, "train")
    assert len(records) == len(CLASSES) * mini_imagenet.PER_CLASS
    for r in records:
        wnid = r["file_name"].decode()[:9]
        assert r["label"] == CLASSES.index(wnid)
        colour = np.array(COLOURS[r["label"]], np.float32)
        if r["file_name"].decode() == mini_imagenet.GREY:  # stored as grey, RGB = luminance
            colour = np.full(3, colour @ [0.299, 0.587, 0.114])
        assert np.abs(mean_colour(r["image"]) - colour).max() < 12, r["file_name"]


def test_validation_labels_follow_the_label_file_in_file_name_order(prepared):
    data_dir, _ = prepared
    records = {r["file_name"].decode(): r for r in read_split(data_dir, "validation")}
    expected = {f"ILSVRC2012_val_{i + 1:08d}.JPEG": CLASSES.index(w)
                for i, w in enumerate(VAL_WNIDS) if w in CLASSES}  # the extra class is left out
    assert {name: r["label"] for name, r in records.items()} == expected
    for r in records.values():
        assert np.abs(mean_colour(r["image"]) - COLOURS[r["label"]]).max() < 12


def test_cmyk_png_and_greyscale_images_become_rgb_jpeg(prepared):
    data_dir, builder = prepared
    assert sorted(builder.fixed) == sorted([mini_imagenet.CMYK, mini_imagenet.PNG, mini_imagenet.GREY])
    for r in read_split(data_dir, "train"):
        image = PIL.Image.open(io.BytesIO(r["image"]))
        assert (image.format, image.mode) == ("JPEG", "RGB"), r["file_name"]


def test_stock_class_list_is_tfds_labels_txt_sorted():
    classes = imagenet.imagenet_classes()
    assert len(classes) == 1000 and classes == sorted(classes) and classes[0] == "n01440764"
    assert list(CLASSES) == classes[:3]


def test_missing_and_truncated_tars_are_named_and_a_rerun_recovers(tmp_path):
    paths = mini_imagenet.write_ilsvrc(tmp_path)
    args = ["imagenet2012", f"--manual_dir={tmp_path}", f"--data_dir={tmp_path / 'data'}",
            f"--validation_labels={paths['labels']}", f"--classes={tmp_path / 'classes.txt'}"]
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES))
    good = tmp_path / "good.tar"
    shutil.copy(paths["train"], good)

    paths["train"].unlink()
    with pytest.raises(JaxnetError, match="ILSVRC2012_img_train.tar not found"):
        imagenet.prepare_imagenet(tmp_path, tmp_path / "data", CLASSES, paths["labels"])

    data = good.read_bytes()
    paths["train"].write_bytes(data[: len(data) // 2])  # a download cut short
    with pytest.raises(JaxnetError, match="ILSVRC2012_img_train.tar is truncated"):
        imagenet.prepare_imagenet(tmp_path, tmp_path / "data", CLASSES, paths["labels"])
    assert not tfds.builder("imagenet2012", data_dir=str(tmp_path / "data")).is_prepared()

    shutil.copy(good, paths["train"])  # the user downloads again and re-runs the same command
    assert prepare.main(args) == 0
    assert len(read_split(tmp_path / "data", "train")) == 12
    assert len(read_split(tmp_path / "data", "validation")) == 5


def test_preparation_shows_progress_with_the_split_size(tmp_path, capsys):
    mini_imagenet.prepare_mini(tmp_path)
    err = capsys.readouterr().err
    # The validation split's size is known from its labels: count, total and ETA are shown.
    kept = sum(wnid in CLASSES for wnid in VAL_WNIDS)
    assert "imagenet2012 validation: 100%" in err and f"| {kept}/{kept} [" in err
    assert "imagenet2012 train:" in err  # a class subset: no known total, a running count
    assert imagenet.TRAIN_IMAGES == 1_281_167


def test_prepare_names_an_unknown_tfds_dataset(tmp_path, capsys):
    assert prepare.main(["no_such_dataset_xyz", f"--data_dir={tmp_path}"]) == 1
    assert "tfds has no dataset 'no_such_dataset_xyz'" in capsys.readouterr().err
