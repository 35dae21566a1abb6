"""A miniature ILSVRC-2012 download for tests: the two official tars (train: a tar of per-class
tars; val: flat, labels in a separate file), with tiny real images and the dataset's traps."""
import io
import tarfile

import numpy as np
import PIL.Image

CLASSES = ("n01440764", "n01443537", "n01484850")  # the first three wnids of tfds labels.txt
EXTRA_CLASS = "n01491361"  # in the val labels but not in CLASSES: must be skipped
COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200))  # class k's images are mostly COLOURS[k]
PER_CLASS = 4
VAL_WNIDS = ("n01443537", "n01440764", EXTRA_CLASS, "n01484850", "n01440764", "n01443537")
CMYK, PNG, GREY = "n01440764_1.JPEG", "n01443537_2.JPEG", "n01484850_3.JPEG"


def image_bytes(colour, seed, mode="RGB", fmt="JPEG", size=(40, 30)) -> bytes:
    """A small noisy image of one main colour, encoded as `fmt` in `mode`."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-20, 21, (size[1], size[0], 3)), 0, 255)
    image = PIL.Image.fromarray(pixels.astype(np.uint8)).convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, quality=90)
    return out.getvalue()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def train_image(name: str, label: int, index: int) -> bytes:
    if name == CMYK:
        return image_bytes(COLOURS[label], index, mode="CMYK")
    if name == PNG:
        return image_bytes(COLOURS[label], index, fmt="PNG")
    if name == GREY:
        return image_bytes(COLOURS[label], index, mode="L")
    return image_bytes(COLOURS[label], index)


def write_ilsvrc(directory) -> dict:
    """Write ILSVRC2012_img_{train,val}.tar and val_labels.txt into `directory`; return the paths."""
    train_path = directory / "ILSVRC2012_img_train.tar"
    with tarfile.open(train_path, "w") as outer:
        for label, wnid in enumerate(CLASSES):
            inner_bytes = io.BytesIO()
            with tarfile.open(fileobj=inner_bytes, mode="w") as inner:
                for i in range(PER_CLASS):
                    name = f"{wnid}_{i}.JPEG"
                    add_bytes(inner, name, train_image(name, label, 10 * label + i))
            add_bytes(outer, f"{wnid}.tar", inner_bytes.getvalue())
    val_path = directory / "ILSVRC2012_img_val.tar"
    with tarfile.open(val_path, "w") as tar:
        for i in reversed(range(len(VAL_WNIDS))):  # tar order is not file-name order
            wnid = VAL_WNIDS[i]
            colour = COLOURS[CLASSES.index(wnid)] if wnid in CLASSES else (128, 128, 128)
            add_bytes(tar, f"ILSVRC2012_val_{i + 1:08d}.JPEG", image_bytes(colour, 100 + i))
    labels_path = directory / "val_labels.txt"
    labels_path.write_text("\n".join(VAL_WNIDS) + "\n")
    return {"train": train_path, "val": val_path, "labels": labels_path}


def prepare_mini(directory):
    """Write the miniature tars into `directory` and prepare them; returns (data_dir, builder)."""
    from jaxnet.data.imagenet import prepare_imagenet

    paths = write_ilsvrc(directory)
    data_dir = directory / "data"
    builder = prepare_imagenet(directory, data_dir, classes=CLASSES,
                               validation_labels_file=paths["labels"])
    return data_dir, builder


def mini_config(data_dir, image_size=16):
    """A tiny ResNet config reading the prepared miniature ImageNet (no worker processes)."""
    from tests.tiny_config import get_config

    c = get_config()
    c.dataset = "imagenet2012"
    c.data_dir = str(data_dir)
    c.eval_split = "validation"
    c.num_classes = len(CLASSES)
    c.image_size = image_size
    c.channels = 3
    c.mean = (127.5, 127.5, 127.5)
    c.std = (64.0, 64.0, 64.0)
    c.num_workers = 0
    c.batch_size = 8
    c.eval_batch_size = 8
    return c
