"""Fashion-MNIST scenes: boxes and masks against the pasted pixels, determinism, and the
augmentation moving boxes and masks with the image; streamed by the grain pipelines."""
import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.data.pipeline import eval_batches, train_loader
from jaxnet.data.scenes import INK, augment_scene, make_scenes
from jaxnet.data.sources import create_source, load_fashion_mnist
from tests.tiny_config import get_config


@pytest.fixture(scope="module")
def garments():
    fm = load_fashion_mnist("test")
    return fm.images[:200, ..., 0], fm.labels[:200]


def pixel_box(on):
    """The normalised pixel-edge box of the True pixels of a 2-D array."""
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    h, w = on.shape
    return np.array([rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w])


def test_single_object_boxes_and_masks_are_the_pasted_pixels(garments):
    scenes = make_scenes(*garments, 20, seed=3, split_id=1, canvas=48, texture=0.0)
    assert scenes.images.shape == (20, 48, 48, 1) and scenes.masks.shape == (20, 48, 48)
    for i in range(20):
        mask, image = scenes.masks[i], scenes.images[i, ..., 0]
        cls = garments[1][i]  # scene i of a single-object split is garment i
        assert scenes.labels[i] == cls and scenes.box_labels[i, 0] == cls
        assert set(np.unique(mask)) == {0, cls + 1}
        np.testing.assert_allclose(scenes.boxes[i, 0], pixel_box(mask > 0), atol=1e-6)
        # on a black background, every pixel outside the mask is background, and the garment's
        # bright pixels are all inside it
        assert (image[mask == 0] == 0).all() and (image > INK).sum() <= (mask > 0).sum()
        assert ((image > INK) <= (mask > 0)).all()


def test_scenes_are_deterministic_and_index_addressable(garments):
    a = make_scenes(*garments, 6, seed=1, split_id=0, canvas=32, objects=2, clutter=2)
    b = make_scenes(*garments, 3, seed=1, split_id=0, canvas=32, objects=2, clutter=2)
    c = make_scenes(*garments, 3, seed=2, split_id=0, canvas=32, objects=2, clutter=2)
    np.testing.assert_array_equal(a.images[:3], b.images)
    np.testing.assert_array_equal(a.masks[:3], b.masks)
    np.testing.assert_array_equal(a.boxes[:3], b.boxes)
    assert not np.array_equal(a.images[:3], c.images)


def test_multi_object_masks_lie_in_their_boxes(garments):
    # small garments on a large canvas: placed without overlap, so each mask is its own
    scenes = make_scenes(*garments, 10, seed=0, split_id=0, canvas=64, objects=3,
                         scale_range=(0.2, 0.3), clutter=3)
    for i in range(10):
        labels = list(scenes.box_labels[i])
        for box, label in zip(scenes.boxes[i], labels):
            assert label >= 0 and (box[2:] > box[:2]).all()
            if labels.count(label) > 1:
                continue  # two garments of one class share a mask value
            np.testing.assert_allclose(pixel_box(scenes.masks[i] == label + 1), box, atol=1e-6)


def drawn_scene(box, size=40):
    """A black scene with a bright rectangle drawn at `box` (normalised), masked class 2."""
    image = np.zeros((size, size, 1), np.uint8)
    mask = np.zeros((size, size), np.uint8)
    y0, x0, y1, x1 = (np.array(box) * size).astype(int)
    image[y0:y1, x0:x1] = 255
    mask[y0:y1, x0:x1] = 3
    return {"image": image, "masks": mask, "boxes": np.array([box], np.float32),
            "box_labels": np.array([2], np.int32)}


@pytest.mark.parametrize("flip,crop", [
    (True, None), (False, (0.1, 0.2, 0.9, 0.8)), (True, (0.0, 0.25, 0.75, 1.0)),
    (False, (0.3, 0.3, 0.8, 0.9)),  # the crop cuts the rectangle: the box is clipped
])
def test_boxes_and_masks_move_with_the_image(flip, crop):
    row = drawn_scene((0.25, 0.125, 0.625, 0.5))
    out = augment_scene(row, flip, crop)
    box = out["boxes"][0]
    assert out["box_labels"][0] == 2 and out["image"].shape == (40, 40, 1)
    np.testing.assert_allclose(pixel_box(out["masks"] == 3), box, atol=1.01 / 40)
    np.testing.assert_allclose(pixel_box(out["image"][..., 0] > 127), box, atol=1.01 / 40)
    if crop is None:  # a flip alone is exact
        np.testing.assert_array_equal(out["masks"], row["masks"][:, ::-1])
        np.testing.assert_allclose(box, [0.25, 0.5, 0.625, 0.875])


def test_a_box_cropped_away_is_dropped():
    out = augment_scene(drawn_scene((0.0, 0.0, 0.2, 0.2)), False, (0.5, 0.5, 1.0, 1.0))
    assert out["box_labels"][0] == -1 and (out["masks"] == 0).all()


def scene_config(**scenes):
    c = get_config()
    c.dataset = "fashion_mnist_scenes"
    c.image_size = 32
    c.scenes.canvas = 32
    c.scenes.train_size = 48
    c.scenes.test_size = 20
    c.scenes.update(scenes)
    c.num_workers = 0
    return c


def test_the_train_stream_carries_boxes_and_masks_that_agree():
    config = scene_config()
    source = create_source(config, "train")
    batch = next(iter(train_loader(source, config)))
    assert batch["image"].shape == (16, 32, 32, 1) and batch["masks"].shape == (16, 32, 32)
    for i in range(16):
        if batch["box_labels"][i, 0] >= 0:
            assert batch["label"][i] == batch["box_labels"][i, 0]
            np.testing.assert_allclose(pixel_box(batch["masks"][i] > 0), batch["boxes"][i, 0],
                                       atol=1.01 / 32)
    again = next(iter(train_loader(source, config)))  # seeded: the same augmented batch
    np.testing.assert_array_equal(batch["masks"], again["masks"])


def test_eval_batches_pad_boxes_as_no_object():
    config = scene_config()
    source = create_source(config, "test")
    batches = list(eval_batches(source, 16))
    assert len(batches) == 2 and batches[1]["mask"].sum() == 4
    assert (batches[1]["box_labels"][4:] == -1).all() and (batches[1]["masks"][4:] == 0).all()
    np.testing.assert_array_equal(batches[0]["boxes"], source.boxes[:16])


def test_scene_options_are_checked():
    with pytest.raises(JaxnetError, match="image_size"):
        create_source(scene_config(canvas=48), "train")
    with pytest.raises(JaxnetError, match="splits"):
        create_source(scene_config(), "validation")
    with pytest.raises(JaxnetError, match="scale_range"):
        create_source(scene_config(scale_range=(0.5, 1.5)), "test")


def test_examples_per_class_keeps_boxes_and_masks():
    config = scene_config()
    config.examples_per_class = 2
    source = create_source(config, "train")
    assert len(source) <= 20 and source.masks.shape[0] == len(source)
    assert (source.box_labels[:, 0] == source.labels).all()


def test_the_same_scenes_are_made_once_per_process_and_read_only():
    config = scene_config()
    first, again = create_source(config, "test"), create_source(config, "test")
    assert first.images is again.images and len(first) == 20  # a study's runs share them
    with pytest.raises(ValueError, match="read-only"):
        first.images[0, 0, 0] = 1
    other = create_source(scene_config(texture=0.1), "test")
    assert other.images is not first.images and not np.array_equal(other.images, first.images)
