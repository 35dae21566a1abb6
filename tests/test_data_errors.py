"""Bad data says where: a damaged Fashion-MNIST file, a folder dataset's
empty or cut-short image, a prepared record that does not read or decode each give one line
naming the file (or dataset, split and record index), also from grain's worker processes; the
eval split is checked before training; a data_dir that does not exist is an error."""
import gzip
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from jaxnet import JaxnetError
from jaxnet.data import sources
from jaxnet.data.pipeline import eval_batches, train_loader
from tests import mini_imagenet
from tests.tiny_config import get_config

ROOT = Path(__file__).resolve().parents[1]


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion_dir(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20)):
        image_file, label_file = sources.FASHION_MNIST_FILES[split]
        write_idx(tmp_path / image_file, rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / label_file, rng.integers(0, 10, n))
    return tmp_path


def fashion_config(data_dir):
    c = get_config()
    c.dataset, c.data_dir, c.image_size = "fashion_mnist", str(data_dir), 28
    return c


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "not gzip"])
def test_damaged_fashion_mnist_gz_names_the_file(fashion_dir, damage):
    path = fashion_dir / "t10k-images-idx3-ubyte.gz"
    data = path.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "corrupt":
        data = data[:40] + bytes(200) + data[240:]
    else:
        data = b"<html>404 not found</html>"
    path.write_bytes(data)
    assert len(sources.create_source(fashion_config(fashion_dir), "train")) == 40
    with pytest.raises(JaxnetError) as error:
        sources.create_source(fashion_config(fashion_dir), "test")
    message = one_line(error)
    assert str(path) in message and "download it again" in message
    if damage == "truncated":
        assert "is truncated" in message


def test_train_py_reports_a_truncated_gz_in_one_line(fashion_dir, tmp_path):
    path = fashion_dir / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    result = subprocess.run(
        [sys.executable, "train.py", "--config=tests/tiny_config.py", "--config.dataset=fashion_mnist",
         f"--config.data_dir={fashion_dir}", "--config.image_size=28", f"--workdir={tmp_path / 'w'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(path) in lines[0] and "truncated" in lines[0]


def test_a_data_dir_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    missing = tmp_path / "typo"
    for dataset in ("fashion_mnist", "folder", "imagenet2012", "cifar10"):
        c = fashion_config(missing)
        c.dataset = dataset
        with pytest.raises(JaxnetError) as error:
            sources.create_source(c, "train")
        assert one_line(error).startswith(f"--config.data_dir={missing} does not exist")
    monkeypatch.setenv("JAXNET_DATA_DIR", str(missing))
    with pytest.raises(JaxnetError, match=r"\$JAXNET_DATA_DIR=.*typo does not exist"):
        sources.create_source(fashion_config(""), "train")
    c = fashion_config(missing)
    c.dataset = "synthetic"  # reads no files: data_dir is not used
    assert len(sources.create_source(c, "train")) == c.synthetic_examples


def jpeg(colour, size=(40, 30)) -> bytes:
    """A noisy image of one main colour: most of its bytes are image data, not header."""
    noise = np.random.default_rng(sum(colour) + size[0]).integers(-30, 31, (size[1], size[0], 3))
    out = io.BytesIO()
    PIL.Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(
        out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def folder(tmp_path):
    """ROOT/{train,validation}/{a,b}/*.jpg; validation/b/empty.jpg has 0 bytes and
    validation/a/cut.jpg is cut short."""
    root = tmp_path / "images"
    for split in ("train", "validation"):
        for k, name in enumerate("ab"):
            (root / split / name).mkdir(parents=True)
            for i in range(3):
                (root / split / name / f"{i}.jpg").write_bytes(jpeg((200 * k, 90, 40 * i), (40 + i, 30)))
    whole = jpeg((10, 20, 30), (64, 48))
    (root / "validation" / "a" / "cut.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    (root / "validation" / "b" / "empty.jpg").write_bytes(b"")
    return root


def folder_config(root, workers=0):
    c = get_config()
    c.dataset, c.data_dir, c.num_classes, c.channels = "folder", str(root), 2, 3
    c.image_size, c.batch_size, c.eval_batch_size, c.num_workers = 16, 4, 4, workers
    c.train_transform, c.mean, c.std = "resize", (127.5,) * 3, (64.0,) * 3
    return c


def test_folder_image_errors_name_the_path(folder):
    source = sources.create_source(folder_config(folder), "validation")
    files = [str(f) for f in source.records.files]
    empty, cut = folder / "validation/b/empty.jpg", folder / "validation/a/cut.jpg"
    with pytest.raises(JaxnetError) as error:
        source[files.index(str(empty))]
    assert one_line(error) == f"{empty}: cannot decode image: it is empty (0 bytes)"
    with pytest.raises(JaxnetError) as error:
        source[files.index(str(cut))]
    assert one_line(error).startswith(f"{cut}: cannot decode JPEG") and "truncated" in str(error.value)
    with pytest.raises(JaxnetError) as error:
        list(eval_batches(source, 4))
    assert one_line(error).startswith(str(folder / "validation/a/"))


def test_a_bad_image_in_the_train_stream_names_its_path(folder):
    c = folder_config(folder)
    c.train_split = "validation"  # the split with the bad images, read by the train pipeline
    batches = iter(train_loader(sources.create_source(c, "validation"), c))
    with pytest.raises(JaxnetError) as error:
        for _ in range(10):
            next(batches)
    message = one_line(error)
    assert message.startswith(str(folder / "validation")) and "cannot decode" in message


def test_errors_in_grain_worker_processes_arrive_as_the_same_line(folder):
    """grain re-raises a worker's exception in the parent as the same type and message (it only
    adds a note, which str() leaves out)."""
    source = sources.create_source(folder_config(folder, workers=1), "validation")
    with pytest.raises(JaxnetError) as error:
        list(eval_batches(source, 4))
    message = one_line(error)
    assert message.startswith(str(folder / "validation/a/cut.jpg")) and "truncated" in message


def test_check_decodable_finds_every_bad_eval_image_before_training(folder):
    c = folder_config(folder)
    assert sources.check_decodable(sources.create_source(c, "train")) == 6

    class Bar:
        done = 0

        def update(self, n):
            self.done += n

    bar = Bar()
    with pytest.raises(JaxnetError) as error:
        sources.check_decodable(sources.create_source(c, "validation"), progress=bar)
    message = one_line(error)
    assert message.startswith("2 of 8 images of folder:validation do not decode: ")
    assert str(folder / "validation/a/cut.jpg") in message and "truncated" in message
    assert f"{folder / 'validation/b/empty.jpg'}: cannot decode image: it is empty" in message
    assert bar.done == 8
    assert sources.check_decodable(sources.create_source(fashion_config(""), "test")) == 0


def test_check_image_is_cheap_yet_catches_cut_short_files():
    from jaxnet.data.transforms import check_image

    whole = jpeg((10, 200, 30), (64, 48))
    check_image(whole)
    check_image(whole + bytes(16))  # zero padding after the end marker is fine
    for bad in (whole[: len(whole) - 10], whole[:100], b"GIF89a garbage"):
        with pytest.raises(JaxnetError, match="cannot decode"):
            check_image(bad)
    png = io.BytesIO()
    PIL.Image.new("RGB", (40, 30), (1, 2, 3)).save(png, "PNG")
    check_image(png.getvalue())
    with pytest.raises(JaxnetError, match="cannot decode"):
        check_image(png.getvalue()[:-20])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The miniature ImageNet, its validation image 4 cut short before preparation (preparation
    reads headers only, so it is stored as is)."""
    directory = tmp_path_factory.mktemp("ilsvrc")
    original = mini_imagenet.image_bytes

    def cut_third(colour, seed, **kwargs):
        data = original(colour, seed, **kwargs)
        return data[: len(data) - 200] if seed == 103 else data  # ILSVRC2012_val_00000004

    mini_imagenet.image_bytes = cut_third
    try:
        data_dir, _ = mini_imagenet.prepare_mini(directory)
    finally:
        mini_imagenet.image_bytes = original
    return data_dir


def test_a_record_that_does_not_decode_names_dataset_split_and_index(prepared):
    source = sources.create_source(mini_imagenet.mini_config(prepared), "validation")
    with pytest.raises(JaxnetError) as error:
        sources.check_decodable(source)
    message = one_line(error)
    index = [source.records[i]["file_name"] for i in range(len(source))].index(b"ILSVRC2012_val_00000004.JPEG")
    assert message.startswith(f"imagenet2012 validation record {index} (ILSVRC2012_val_00000004.JPEG)"
                              f" in {prepared / 'imagenet2012' / '5.1.0'}: cannot decode JPEG")
    with pytest.raises(JaxnetError) as error:
        source[index]
    assert one_line(error).startswith(f"imagenet2012 validation record {index} (ILSVRC2012_val_00000004")


def test_a_prepared_split_can_be_sliced_as_tfds_slices_it(prepared):
    config = mini_imagenet.mini_config(prepared)
    whole = sources.create_source(config, "train")
    tail = sources.create_source(config, f"train[{len(whole) - 3}:]")
    assert len(tail) == 3
    assert tail.records[0]["file_name"] == whole.records[len(whole) - 3]["file_name"]


def test_a_damaged_record_file_names_dataset_split_and_index(prepared, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(prepared, copy)
    path = next((copy / "imagenet2012" / "5.1.0").glob("imagenet2012-train.array_record-*"))
    data = bytearray(path.read_bytes())
    data[2000:2040] = bytes(40)  # inside the second record's chunk: its checksum fails
    path.write_bytes(bytes(data))
    source = sources.create_source(mini_imagenet.mini_config(copy), "train")
    with pytest.raises(JaxnetError) as error:
        sources.check_decodable(source)
    message = one_line(error)
    assert "imagenet2012 train record " in message and "cannot be read (Corrupted" in message
    assert f"in {copy / 'imagenet2012' / '5.1.0'} is damaged; prepare the dataset again" in message
