"""A miniature ILSVRC-2010 download for tests, in the official layout: a train tar of per-class
tars, flat val and test tars (in a val/ and test/ directory), the devkit tar.gz with a real
MATLAB meta.mat (`synsets` struct array, as the devkit's) and the validation ground truth, and the
separately released test ground truth. Tiny real JPEGs, one CMYK and one gzip-compressed."""
import gzip
import io
import tarfile

import numpy as np
import scipy.io

from tests.mini_imagenet import add_bytes, image_bytes

# The four leaf synsets, by ILSVRC2010_ID 1..4 (the real devkit's first four): sorted wnids would
# put n03314780 first, so a preparation that sorted the wnids would get every label wrong.
CLASSES = ("n07711080", "n07711569", "n07767549", "n03314780")
WORDS = ("french fries, french-fried potatoes, fries, chips", "mashed potato",
         "black olive, ripe olive", "face powder")
COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30))  # label k's main colour
PER_CLASS = (3, 2, 2, 3)  # num_train_images in meta.mat
# Internal synsets (ILSVRC2010_ID > 1000, with children), as in the devkit's trimmed hierarchy.
INTERNAL = ((1001, "n00001740", "entity", (1002, 1003, 1004)),
            (1002, "n07710616", "potato, white potato", (2, 1)),
            (1003, "n07767344", "olive", (3,)),
            (1004, "n03994008", "powder", (4,)))
VAL_IDS = (3, 1, 4, 4, 2, 1)  # one ILSVRC2010_ID per val image, in file-name order
TEST_IDS = (2, 4, 1, 3, 1, 3, 4, 2)  # not a palindrome: tar order (reversed) differs
CMYK = "n07711569_0.JPEG"
GZIPPED = "n03314780_1.JPEG"
FIELDS = ("ILSVRC2010_ID", "WNID", "words", "gloss", "num_children", "children",
          "wordnet_height", "num_train_images")


def synset_rows() -> list:
    """The synsets of meta.mat, as the devkit stores them (sorted by ILSVRC2010_ID)."""
    rows = [(i + 1, wnid, WORDS[i], f"gloss of {wnid}", 0, np.zeros((1, 0), np.uint8), 0,
             PER_CLASS[i]) for i, wnid in enumerate(CLASSES)]
    rows += [(ident, wnid, words, f"gloss of {wnid}", len(children),
              np.array(children, np.uint16), 1, 0) for ident, wnid, words, children in INTERNAL]
    return rows


def meta_mat(rows=None) -> bytes:
    """A MATLAB v5 meta.mat: `synsets` (N x 1 struct array) and `cost_matrix`."""
    rows = synset_rows() if rows is None else rows
    synsets = np.empty((len(rows), 1), dtype=[(f, object) for f in FIELDS])
    for i, row in enumerate(rows):
        synsets[i, 0] = tuple(np.array(v, np.uint16) if isinstance(v, int) else v for v in row)
    cost = np.full((len(CLASSES), len(CLASSES)), 2, np.uint8)
    np.fill_diagonal(cost, 0)
    out = io.BytesIO()
    scipy.io.savemat(out, {"synsets": synsets, "cost_matrix": cost})
    return out.getvalue()


def truth_text(ids) -> str:
    return "".join(f"{i}\n" for i in ids)


def train_image(name: str, label: int, index: int) -> bytes:
    if name == CMYK:
        return image_bytes(COLOURS[label], index, mode="CMYK")
    data = image_bytes(COLOURS[label], index)
    return gzip.compress(data) if name == GZIPPED else data


def write_devkit(path, meta: bytes, val_truth: str):
    with tarfile.open(path, "w:gz") as tar:
        add_bytes(tar, "devkit-1.0/readme.txt", b"ILSVRC2010 development kit (miniature)\n")
        add_bytes(tar, "devkit-1.0/data/meta.mat", meta)
        add_bytes(tar, "devkit-1.0/data/ILSVRC2010_validation_ground_truth.txt", val_truth.encode())


def write_flat(path, split: str, ids):
    """val or test tar: split/ILSVRC2010_<split>_0000000N.JPEG, not in file-name order."""
    with tarfile.open(path, "w") as tar:
        for i in reversed(range(len(ids))):
            add_bytes(tar, f"{split}/ILSVRC2010_{split}_{i + 1:08d}.JPEG",
                      image_bytes(COLOURS[ids[i] - 1], 500 + 50 * len(split) + i))


def write_ilsvrc2010(directory) -> dict:
    """Write the miniature download into `directory`; return its paths."""
    paths = {"train": directory / "ILSVRC2010_images_train.tar",
             "val": directory / "ILSVRC2010_images_val.tar",
             "test": directory / "ILSVRC2010_images_test.tar",
             "devkit": directory / "ILSVRC2010_devkit-1.0.tar.gz",
             "test_truth": directory / "ILSVRC2010_test_ground_truth.txt"}
    with tarfile.open(paths["train"], "w") as outer:
        for label in (2, 0, 3, 1):  # neither id nor wnid order
            wnid = CLASSES[label]
            inner_bytes = io.BytesIO()
            with tarfile.open(fileobj=inner_bytes, mode="w") as inner:
                for i in range(PER_CLASS[label]):
                    name = f"{wnid}_{i}.JPEG"
                    add_bytes(inner, name, train_image(name, label, 10 * label + i))
            add_bytes(outer, f"{wnid}.tar", inner_bytes.getvalue())
    write_flat(paths["val"], "val", VAL_IDS)
    write_flat(paths["test"], "test", TEST_IDS)
    write_devkit(paths["devkit"], meta_mat(), truth_text(VAL_IDS))
    paths["test_truth"].write_text(truth_text(TEST_IDS))
    return paths


def prepare_mini(directory):
    """Write the miniature into `directory` and prepare it; returns (data_dir, builder)."""
    from jaxnet.data.ilsvrc2010 import prepare_ilsvrc2010

    write_ilsvrc2010(directory)
    data_dir = directory / "data"
    return data_dir, prepare_ilsvrc2010(directory, data_dir)


def mini_config(data_dir, image_size=16):
    """A tiny ResNet config reading the prepared miniature (no worker processes)."""
    from tests.mini_imagenet import mini_config as imagenet_config

    c = imagenet_config(data_dir, image_size)
    c.dataset = "ilsvrc2010"
    c.eval_split = "test"
    c.num_classes = len(CLASSES)
    return c
