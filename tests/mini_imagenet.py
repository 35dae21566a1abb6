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


def prepare_mini(directory, boxes=False):
    """Write the miniature tars (and, with `boxes`, the box archives: write_boxes) into
    `directory` and prepare them; returns (data_dir, builder)."""
    from jaxnet.data.imagenet import prepare_imagenet

    paths = write_ilsvrc(directory)
    if boxes:
        write_boxes(directory)
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


def voc_xml(stem: str, wnids, boxes, size=(40, 30)) -> bytes:
    """A PASCAL VOC annotation as ImageNet's box files write it (pixel boxes xmin ymin xmax ymax)."""
    objects = "".join(
        f"<object><name>{w}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>" for w, b in zip(wnids, boxes))
    return (f"<annotation><folder>x</folder><filename>{stem}</filename><source><database>ILSVRC_2012"
            f"</database></source><size><width>{size[0]}</width><height>{size[1]}</height><depth>3"
            f"</depth></size><segmented>0</segmented>{objects}</annotation>").encode()


# train images with a box file (the others have none), and their pixel boxes
TRAIN_BOXES = {"n01440764_0": [(4, 3, 20, 15)], "n01443537_1": [(0, 0, 40, 30), (10, 5, 30, 25)]}


def write_boxes(directory) -> dict:
    """ILSVRC2012_bbox_train_v2.tar.gz (WNID/WNID_N.xml) and ILSVRC2012_bbox_val_v3.tgz
    (val/ILSVRC2012_val_N.xml, every validation image: box i of image i is (i, i, 20 + i, 25))."""
    train = directory / "ILSVRC2012_bbox_train_v2.tar.gz"
    with tarfile.open(train, "w:gz") as tar:
        for stem, boxes in TRAIN_BOXES.items():
            wnid = stem.split("_")[0]
            add_bytes(tar, f"{wnid}/{stem}.xml", voc_xml(stem, [wnid] * len(boxes), boxes))
    val = directory / "ILSVRC2012_bbox_val_v3.tgz"
    with tarfile.open(val, "w:gz") as tar:
        for i, wnid in enumerate(VAL_WNIDS):
            stem = f"ILSVRC2012_val_{i + 1:08d}"
            add_bytes(tar, f"val/{stem}.xml", voc_xml(stem, [wnid], [(i, i, 20 + i, 25)]))
    return {"train_boxes": train, "val_boxes": val}
