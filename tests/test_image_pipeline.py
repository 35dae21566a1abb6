"""The encoded-image pipeline: a prepared miniature ImageNet streamed through grain (determinism,
resume, multi-process sharding, exactly-once eval, worker processes), image folders, and a few
training steps end to end."""

import numpy as np
import PIL.Image
import pytest

from jaxnet import JaxnetError
from jaxnet.data import sources
from jaxnet.data.pipeline import eval_batches, train_loader
from tests import mini_imagenet
from tests.mini_imagenet import CLASSES, VAL_WNIDS


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return mini_imagenet.prepare_mini(tmp_path_factory.mktemp("ilsvrc"))[0]


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])


def test_sources_decode_to_fixed_size_rgb(data_dir):
    config = mini_imagenet.mini_config(data_dir)
    train = sources.create_source(config, "train")
    val = sources.create_source(config, "validation")
    assert (len(train), len(val)) == (12, 5)
    example = val[0]
    assert example["image"].shape == (16, 16, 3) and example["image"].dtype == np.uint8
    assert sorted(int(val[i]["label"]) for i in range(5)) == sorted(
        CLASSES.index(w) for w in VAL_WNIDS if w in CLASSES)
    config.num_classes = 1000
    with pytest.raises(JaxnetError, match="has 3 classes but config.num_classes is 1000"):
        sources.create_source(config, "train")


def test_train_stream_is_deterministic_resumable_and_seeded(data_dir):
    config = mini_imagenet.mini_config(data_dir)
    config.batch_size = 4
    source = sources.create_source(config, "train")
    first = take(iter(train_loader(source, config)), 5)
    assert first[0]["image"].shape == (4, 16, 16, 3) and first[0]["image"].dtype == np.uint8
    assert_same_batches(first, take(iter(train_loader(source, config)), 5))
    epoch_labels = np.concatenate([b["label"] for b in first[:3]])  # 12 images = 3 batches
    assert sorted(epoch_labels) == sorted(np.repeat(np.arange(3), 4))  # each image once per epoch

    stopped = iter(train_loader(source, config))
    take(stopped, 2)
    state = stopped.get_state()
    resumed = iter(train_loader(source, config))
    resumed.set_state(state)
    assert_same_batches(first[2:], take(resumed, 3))

    config.seed = 1
    other = take(iter(train_loader(source, config)), 1)[0]
    assert not np.array_equal(other["image"], first[0]["image"])


@pytest.mark.parametrize("transform", ["resnet_scale", "alexnet", "resize"])
def test_every_transform_runs_through_the_pipeline(data_dir, transform):
    config = mini_imagenet.mini_config(data_dir)
    config.train_transform = transform
    config.scale_range = (16, 24)
    batch = take(iter(train_loader(sources.create_source(config, "train"), config)), 1)[0]
    assert batch["image"].shape == (8, 16, 16, 3) and batch["image"].dtype == np.uint8


def test_processes_split_each_global_batch_and_augment_it_identically(data_dir):
    config = mini_imagenet.mini_config(data_dir)
    source = sources.create_source(config, "train")
    whole = take(iter(train_loader(source, config)), 3)
    halves = [take(iter(train_loader(source, config, p, 2)), 3) for p in range(2)]
    for k in range(3):
        for p in range(2):
            np.testing.assert_array_equal(halves[p][k]["image"], whole[k]["image"][p::2])
            np.testing.assert_array_equal(halves[p][k]["label"], whole[k]["label"][p::2])


def test_eval_covers_every_image_exactly_once_over_processes(data_dir):
    config = mini_imagenet.mini_config(data_dir)
    source = sources.create_source(config, "validation")
    seen = []
    for p in range(2):
        batches = list(eval_batches(source, 4, p, 2))
        assert len(batches) == 2  # ceil(5 / 4), the same on every process
        for batch in batches:
            assert batch["image"].shape == (2, 16, 16, 3)
            seen += [img for img, m in zip(batch["image"], batch["mask"]) if m]
    assert len(seen) == 5
    expected = sorted(source[i]["image"].tobytes() for i in range(5))
    assert sorted(img.tobytes() for img in seen) == expected


def test_worker_processes_give_the_same_batches(data_dir):
    config = mini_imagenet.mini_config(data_dir)
    config.batch_size = 4
    source = sources.create_source(config, "train")
    in_process = take(iter(train_loader(source, config)), 4)
    source.num_workers = 2  # decoding in two grain worker processes
    workers = iter(train_loader(source, config))
    assert_same_batches(in_process[:2], take(workers, 2))
    resumed = iter(train_loader(source, config))
    resumed.set_state(workers.get_state())  # as a checkpoint restores it
    assert_same_batches(in_process[2:], take(resumed, 2))


def write_folder(root):
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 1)):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                image = PIL.Image.fromarray(rng.integers(0, 256, (20, 24, 3), np.uint8))
                image.save(root / split / name / f"{i}.{'png' if i == 1 else 'jpg'}")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")


def test_image_folder_source(tmp_path):
    write_folder(tmp_path)
    config = mini_imagenet.mini_config(tmp_path)
    config.dataset, config.num_classes = "folder", 2
    train = sources.create_source(config, "train")
    assert len(train) == 6 and [int(train[i]["label"]) for i in range(6)] == [0, 0, 0, 1, 1, 1]
    val = sources.create_source(config, "val")
    assert len(val) == 2 and val[1]["image"].shape == (16, 16, 3)
    with pytest.raises(JaxnetError, match="not found"):
        sources.create_source(config, "test")


def test_unknown_tfds_dataset_is_a_clear_error(data_dir):
    config = mini_imagenet.mini_config(data_dir)
    config.dataset = "tfds:no_such_dataset_xyz"
    with pytest.raises(JaxnetError, match="no_such_dataset_xyz"):
        sources.create_source(config, "train")


def test_cifar10_by_name_is_prepared_and_read_without_tensorflow(tmp_path, monkeypatch):
    """tfds's own cifar10 builder, its download replaced by generated arrays (yielded as its
    _generate_examples yields them): prepared without TensorFlow (Pillow encodes the PNGs that
    tfds would encode with it), then read by name, every pixel and label exact."""
    import tensorflow_datasets as tfds

    images = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), np.uint8)
    labels = np.arange(12) % 10
    cifar10 = type(tfds.builder("cifar10", data_dir=str(tmp_path)))

    def split_generators(self, dl_manager):
        return [tfds.core.SplitGenerator(name="train", gen_kwargs={"first": 0, "count": 8}),
                tfds.core.SplitGenerator(name="test", gen_kwargs={"first": 8, "count": 4})]

    def generate_examples(self, first, count):
        for i in range(first, first + count):
            yield str(i), {"id": str(i), "image": images[i], "label": labels[i]}

    monkeypatch.setattr(cifar10, "_split_generators", split_generators)
    monkeypatch.setattr(cifar10, "_generate_examples", generate_examples)
    config = mini_imagenet.mini_config(tmp_path)
    config.dataset, config.num_classes, config.image_size = "cifar10", 10, 32
    config.train_transform, config.eval_resize = "resize", 0  # the whole 32 px image, unchanged
    train = sources.create_source(config, "train")  # prepares it: no TensorFlow installed
    assert len(train) == 8 and (tmp_path / "cifar10" / "3.0.2").is_dir()
    (batch,) = list(eval_batches(sources.create_source(config, "test"), 4))
    np.testing.assert_array_equal(batch["image"], images[8:])
    np.testing.assert_array_equal(batch["label"], labels[8:])


def test_training_on_prepared_imagenet_end_to_end(data_dir, tmp_path, devices):
    from jaxnet.methods import train

    config = mini_imagenet.mini_config(data_dir)
    config.image_size = 8
    config.num_epochs = 1.0  # 12 images, batch 8: one step, then the evaluation
    metrics = train(config, tmp_path / "work")
    assert metrics["num_examples"] == 5  # the whole validation split, once
    assert np.isfinite(metrics["loss"]) and 0 <= metrics["top1_acc"] <= 1
