"""An image-folder dataset for a user's own data: ROOT/SPLIT/CLASS/*.jpg (or .png, ...).

Class indices follow the sorted class-directory names of the train split (so every split uses
the same mapping); files are listed in sorted order and read lazily, one per example.
"""
from pathlib import Path

import numpy as np

from jaxnet import JaxnetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class FolderRecords:
    """Random access to (file bytes, label): {"image": bytes, "label": int32, "where": its path}
    (decode errors quote `where`)."""

    def __init__(self, files, labels, classes):
        self.files, self.labels, self.classes = list(files), np.asarray(labels, np.int32), classes

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index):
        path = self.files[index]
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise JaxnetError(f"{path}: cannot read it ({e.strerror or e})") from None
        return {"image": data, "label": self.labels[index], "where": str(path)}


def class_names(root) -> list:
    """Sorted class-directory names of ROOT/train (or of ROOT itself without a train split)."""
    root = Path(root)
    base = root / "train" if (root / "train").is_dir() else root
    return sorted(d.name for d in base.iterdir() if d.is_dir())


def folder_records(root, split: str) -> FolderRecords:
    """The images of ROOT/SPLIT/<class>/, labelled by class_names(ROOT)."""
    if not root:
        raise JaxnetError("dataset 'folder' needs --config.data_dir=ROOT (images in ROOT/SPLIT/CLASS/)")
    directory = Path(root) / split
    if not directory.is_dir():
        raise JaxnetError(f"{directory} not found: an image folder holds ROOT/{split}/CLASS/*.jpg")
    classes = class_names(root)
    files, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((directory / name).glob("*")) if (directory / name).is_dir() else ():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
                labels.append(label)
    unknown = sorted({d.name for d in directory.iterdir() if d.is_dir()} - set(classes))
    if unknown:
        raise JaxnetError(f"{directory} has classes not in the train split: {', '.join(unknown)}")
    if not files:
        raise JaxnetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {directory}/CLASS/")
    return FolderRecords(files, labels, classes)
