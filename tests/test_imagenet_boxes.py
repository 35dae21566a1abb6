"""ILSVRC-2012 boxes: the official box archives (PASCAL VOC XML) read into the prepared dataset,
on a miniature download with the real file layout."""
import io

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from jaxnet import JaxnetError
from jaxnet.data.boxes import MAX_BOXES
from jaxnet.data.imagenet import prepare_imagenet
from jaxnet.data.sources import create_source
from jaxnet.data.transforms import EvalTransform, TrainTransform
from jaxnet.data.imagenet_boxes import parse_voc
from tests import mini_imagenet
from tests.mini_imagenet import CLASSES, TRAIN_BOXES, VAL_WNIDS


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ilsvrc_boxes")
    paths = mini_imagenet.write_ilsvrc(directory)
    mini_imagenet.write_boxes(directory)
    prepare_imagenet(directory, directory / "data", classes=CLASSES,
                     validation_labels_file=paths["labels"])
    return directory / "data"


def records(data_dir, split):
    """The prepared split as its own dataset_info.json describes it (with the box features)."""
    builder = tfds.builder_from_directory(str(data_dir / "imagenet2012" / "5.1.0"))
    source = builder.as_data_source(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    return {source[i]["file_name"].decode(): source[i] for i in range(len(source))}


def test_parse_voc_normalises_pixel_boxes():
    stem, boxes = parse_voc(mini_imagenet.voc_xml("n01440764_7", ["n01440764"], [(4, 3, 20, 15)]))
    assert stem == "n01440764_7"
    assert boxes == [("n01440764", pytest.approx((0.1, 0.1, 0.5, 0.5)))]  # 40 x 30 image
    with pytest.raises(JaxnetError, match="PASCAL VOC"):
        parse_voc(b"<annotation><size><width>x</width></size></annotation>", "bad.xml")


def test_train_images_carry_their_boxes_or_none(prepared):
    train = records(prepared, "train")
    assert len(train) == len(CLASSES) * mini_imagenet.PER_CLASS
    for name, r in train.items():
        want = TRAIN_BOXES.get(name.split(".")[0], [])
        assert r["boxes"].shape == (len(want), 4) and len(r["box_labels"]) == len(want)
        for box, (x0, y0, x1, y1) in zip(r["boxes"], want):
            assert box == pytest.approx((y0 / 30, x0 / 40, y1 / 30, x1 / 40))
        assert all(label == r["label"] for label in r["box_labels"])


def test_every_validation_image_has_its_box(prepared):
    val = records(prepared, "validation")
    for name, r in val.items():
        i = int(name[-13:-5]) - 1
        assert r["label"] == CLASSES.index(VAL_WNIDS[i]) and list(r["box_labels"]) == [r["label"]]
        assert r["boxes"][0] == pytest.approx((i / 30, i / 40, 25 / 30, (20 + i) / 40))


def test_the_config_reads_imagenet_boxes_through_the_crops(prepared):
    config = mini_imagenet.mini_config(prepared)
    config.eval_resize = 0  # the whole image squashed: boxes unchanged
    val = create_source(config, "validation")
    for k in range(len(val)):
        row, i = val[k], int(val.records[k]["file_name"][-13:-5]) - 1  # ILSVRC2012_val_0000000N
        assert row["boxes"].shape == (MAX_BOXES, 4) and row["box_labels"][0] == row["label"]
        assert row["boxes"][0] == pytest.approx((i / 30, i / 40, 25 / 30, (20 + i) / 40))


def drawn_record(size=(120, 90), box=(0.2, 0.3, 0.7, 0.8)):
    """An encoded black image with a white rectangle at `box` (normalised), and that box."""
    w, h = size
    pixels = np.zeros((h, w, 3), np.uint8)
    y0, x0, y1, x1 = np.round(np.array(box) * [h, w, h, w]).astype(int)
    pixels[y0:y1, x0:x1] = 255
    out = io.BytesIO()
    PIL.Image.fromarray(pixels).save(out, "PNG")  # lossless: the edges stay where they are
    return {"image": out.getvalue(), "label": 1, "boxes": np.array([box], np.float32),
            "box_labels": np.array([1])}


def bright_box(image):
    on = np.asarray(image)[..., 0] > 127
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    h, w = on.shape
    return np.array([rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w])


@pytest.mark.parametrize("kind", ["inception_crop", "resnet_scale", "alexnet", "resize"])
def test_a_drawn_box_moves_with_every_train_transform(kind):
    transform = TrainTransform(kind, 48, area=(0.5, 1.0), scale_range=(64, 96))
    for seed in range(6):  # crops, scales and flips
        out = transform.random_map(drawn_record(), np.random.default_rng(seed))
        assert out["boxes"].shape == (MAX_BOXES, 4) and list(out["box_labels"][1:]) == [-1] * 7
        if out["box_labels"][0] == 1:  # not cropped away
            np.testing.assert_allclose(bright_box(out["image"]), out["boxes"][0], atol=1.6 / 48)


def test_a_drawn_box_moves_with_the_centre_crop():
    out = EvalTransform(48, 56).map(drawn_record())
    np.testing.assert_allclose(bright_box(out["image"]), out["boxes"][0], atol=1.6 / 48)
    assert out["box_labels"][0] == 1
