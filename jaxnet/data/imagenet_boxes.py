"""ILSVRC-2012 bounding boxes: the official annotation archives, PASCAL VOC XML.

  ILSVRC2012_bbox_train_v2.tar.gz  WNID/WNID_N.xml for the train images that have boxes (about
                                   544,000 of 1.28 million; the others have none)
  ILSVRC2012_bbox_val_v3.tgz       val/ILSVRC2012_val_NNNNNNNN.xml, every validation image

Each XML holds the image's size and one <object> per box: <name> (the wnid) and <bndbox> with
xmin, ymin, xmax, ymax in pixels. Boxes become normalised (ymin, xmin, ymax, xmax) in [0, 1]
(pixel / size, clipped, as TF-slim's and tfds's ImageNet box readers do), with the class index of
their wnid (-1 for a wnid outside the prepared classes).
"""
import tarfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from jaxnet import JaxnetError

TRAIN_BOXES = "ILSVRC2012_bbox_train_v2.tar.gz"
VAL_BOXES = "ILSVRC2012_bbox_val_v3.tgz"


def parse_voc(data: bytes, where: str = "") -> tuple:
    """(image file stem, [(wnid, (ymin, xmin, ymax, xmax) normalised)]) of one VOC XML file."""
    try:
        root = ElementTree.fromstring(data)
        stem = Path(root.findtext("filename", "").strip()).stem
        width = float(root.findtext("size/width"))
        height = float(root.findtext("size/height"))
        boxes = []
        for obj in root.iter("object"):
            b = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            box = np.clip([ymin / height, xmin / width, ymax / height, xmax / width], 0.0, 1.0)
            boxes.append((obj.findtext("name", "").strip(), tuple(float(v) for v in box)))
    except (ElementTree.ParseError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
        raise JaxnetError(f"{where or 'box file'} is not a readable PASCAL VOC annotation ({e})") from None
    return stem, boxes


def read_box_archive(path) -> dict:
    """{image file stem: [(wnid, box)]} of every XML file in a box archive (.tar.gz / .tgz; the
    stem is the XML's file name, which is the image's)."""
    path = Path(path)
    out = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".xml"):
                    name = Path(member.name).stem
                    _, boxes = parse_voc(tar.extractfile(member).read(), f"{path}:{member.name}")
                    out[name] = boxes
    except (tarfile.TarError, EOFError, OSError) as e:
        raise JaxnetError(f"{path} is truncated or damaged ({e}); download it again") from None
    return out


def box_files(manual_dir) -> dict:
    """{"train": path, "validation": path} of the box archives present in `manual_dir`."""
    manual = Path(manual_dir)
    found = {"train": manual / TRAIN_BOXES, "validation": manual / VAL_BOXES}
    return {split: p for split, p in found.items() if p.is_file()}


def encode_boxes(boxes, classes: dict) -> dict:
    """The example fields of an image's boxes: `boxes` float32 [K, 4], `box_labels` int64 [K]
    (the class index of each box's wnid in `classes`, -1 if not there)."""
    return {"boxes": np.array([b for _, b in boxes], np.float32).reshape(-1, 4),
            "box_labels": np.array([classes.get(w, -1) for w, _ in boxes], np.int64)}
