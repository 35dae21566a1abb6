"""Sources and grain pipelines: IDX parsing, clear errors, determinism, sharding, exactly-once eval."""
import gzip

import numpy as np
import pytest

from jaxnet import JaxnetError
from jaxnet.data import sources
from jaxnet.data.pipeline import eval_batches, random_crops, random_erase, train_loader
from tests.tiny_config import get_config


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion_mnist(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("test", 20)):
        image_file, label_file = sources.FASHION_MNIST_FILES[split]
        write_idx(tmp_path / image_file, rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / label_file, rng.integers(0, 10, n))
    return tmp_path


def test_fashion_mnist_reads_idx_files_from_data_dir(fake_fashion_mnist):
    train = sources.load_fashion_mnist("train", str(fake_fashion_mnist))
    assert len(train) == 50
    example = train[3]
    assert example["image"].shape == (28, 28, 1) and example["image"].dtype == np.uint8
    assert 0 <= example["label"] < 10


def test_real_fashion_mnist_has_the_published_sizes():
    train = sources.load_fashion_mnist("train")
    test = sources.load_fashion_mnist("test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert np.bincount(test.labels).tolist() == [1000] * 10


def test_fashion_mnist_slices_hold_out_part_of_train():
    train = sources.load_fashion_mnist("train")
    head, tail = sources.load_fashion_mnist("train[:50000]"), sources.load_fashion_mnist("train[50000:]")
    assert (len(head), len(tail)) == (50_000, 10_000)
    np.testing.assert_array_equal(tail.images, train.images[50_000:])
    np.testing.assert_array_equal(head.labels, train.labels[:50_000])
    with pytest.raises(JaxnetError, match="slices of them such as 'train\\[:50000\\]'"):
        sources.load_fashion_mnist("validation")


def test_missing_fashion_mnist_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "system"))
    monkeypatch.setenv("JAXNET_DATA_DIR", str(tmp_path / "env"))

    def no_network(split, data_dir):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(sources, "_fashion_mnist_from_tfds", no_network)
    with pytest.raises(JaxnetError) as error:
        sources.load_fashion_mnist("train", str(tmp_path / "mine"))
    message = str(error.value)
    for expected in ("mine", "env", "system", "no route to host", "apt-get install dataset-fashion-mnist",
                     "--config.data_dir"):
        assert expected in message


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + b"\x00" * 10)
    with pytest.raises(JaxnetError, match="truncated"):
        sources.read_idx(path)


def test_imagenet_gives_a_paragraph_not_a_traceback():
    config = get_config()
    config.dataset = "imagenet2012"
    with pytest.raises(JaxnetError, match="ILSVRC2012_img_train.tar"):
        sources.create_source(config, "train")


def take(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_train_stream_is_deterministic_and_reshuffled_each_epoch():
    config = get_config()  # 64 examples, batch 16: 4 batches per epoch
    source = sources.synthetic(64, 8, 1, 10, seed=0)
    first = take(train_loader(source, config), 8)
    again = take(train_loader(source, config), 8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    config.augment, config.random_erasing = "none", 0.0
    plain = take(train_loader(source, config), 8)
    epoch1 = np.concatenate([b["image"] for b in plain[:4]])
    epoch2 = np.concatenate([b["image"] for b in plain[4:]])
    as_rows = lambda x: sorted(map(bytes, x.reshape(len(x), -1)))  # noqa: E731
    assert as_rows(epoch1) == as_rows(epoch2) == as_rows(source.images)  # each epoch sees all once
    assert not np.array_equal(epoch1, epoch2)  # in a new order
    config.seed = 1
    other_seed = take(train_loader(source, config), 1)
    assert not np.array_equal(other_seed[0]["image"], plain[0]["image"])


def test_processes_read_disjoint_shards():
    config = get_config()
    config.augment = "none"
    source = sources.ArraySource(np.arange(64, dtype=np.uint8).reshape(64, 1, 1, 1), np.zeros(64))
    seen = []
    for process in range(2):
        batches = take(train_loader(source, config, process, 2), 4)  # 32 examples each, batch 8
        assert all(b["image"].shape == (8, 1, 1, 1) for b in batches)
        seen.append(set(np.concatenate([b["image"].ravel() for b in batches]).tolist()))
    assert seen[0].isdisjoint(seen[1]) and len(seen[0] | seen[1]) == 64


@pytest.mark.parametrize("num_examples,batch,processes", [(64, 24, 1), (10, 4, 2), (7, 8, 2), (3, 8, 4)])
def test_eval_sees_every_example_exactly_once(num_examples, batch, processes):
    source = sources.ArraySource(np.arange(num_examples, dtype=np.uint8).reshape(-1, 1, 1, 1),
                                 np.arange(num_examples))
    counts = np.zeros(num_examples, int)
    num_batches = set()
    for process in range(processes):
        batches = list(eval_batches(source, batch, process, processes))
        num_batches.add(len(batches))
        for b in batches:
            assert b["image"].shape[0] == batch // processes
            counts[b["label"][b["mask"] == 1]] += 1
            assert np.all(b["image"][b["mask"] == 0] == 0)
    assert counts.tolist() == [1] * num_examples
    assert len(num_batches) == 1  # every process runs the same number of steps


def test_random_crops_are_shifted_windows_of_the_padded_images():
    images = np.arange(2 * 16, dtype=np.uint8).reshape(2, 4, 4, 1) + 1
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    rng = np.random.default_rng(0)
    offsets = set()
    for _ in range(30):
        crops = random_crops(images, 2, rng)
        assert crops.shape == images.shape and crops.dtype == np.uint8
        for crop, pad in zip(crops, padded):
            match = [(t, l) for t in range(5) for l in range(5)
                     if np.array_equal(crop, pad[t:t + 4, l:l + 4])]
            assert match
            offsets.add(match[0])
    assert len(offsets) > 10  # the offsets really vary


def test_augmented_batches_keep_shape_dtype_and_flip_really_flips():
    config = get_config()
    config.augment, config.random_erasing = "flip", 0.0
    source = sources.synthetic(64, 8, 1, 10, seed=0)
    batch = take(train_loader(source, config), 1)[0]
    assert batch["image"].shape == (16, 8, 8, 1) and batch["image"].dtype == np.uint8
    assert batch["label"].dtype == np.int32
    originals = {bytes(x): x for x in source.images}
    flipped = sum(bytes(x) not in originals for x in batch["image"])
    assert 0 < flipped < 16
    for x in batch["image"]:
        assert bytes(x) in originals or bytes(x[:, ::-1]) in originals


def test_random_erase_changes_one_rectangle():
    image = np.zeros((28, 28, 1), np.uint8)
    erased = random_erase(image, np.random.default_rng(1))
    rows, cols = np.nonzero(erased[..., 0])
    assert erased.shape == image.shape and len(rows) > 0
    box = erased[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert box.size < image.size
