"""Boxes that move with their image: normalised (ymin, xmin, ymax, xmax) boxes through a flip
and a crop, and a fixed number of boxes per example (so they batch).

Used by the scenes' augmentation (jaxnet.data.scenes) and by the encoded-image transforms
(jaxnet.data.transforms: ImageNet's boxes through inception crops, flips and centre crops).
"""
import numpy as np

MAX_BOXES = 8  # boxes kept per example (ILSVRC-2012 validation images have 1-2 on average)


def flip_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes (..., 4) of an image mirrored left-right."""
    out = np.array(boxes, np.float32, copy=True)
    out[..., 1], out[..., 3] = 1.0 - boxes[..., 3], 1.0 - boxes[..., 1]
    return out


def crop_boxes(boxes: np.ndarray, labels: np.ndarray, crop) -> tuple:
    """Boxes (K, 4) and labels (K,) of the image cut to `crop` = normalised (ymin, xmin, ymax,
    xmax) and resized back: mapped, clipped to [0, 1]; a box left without area is dropped
    (label -1, box 0)."""
    y0, x0, y1, x1 = crop
    scale = np.array([y1 - y0, x1 - x0, y1 - y0, x1 - x0], np.float32)
    out = np.clip((np.asarray(boxes, np.float32).reshape(-1, 4)
                   - np.array([y0, x0, y0, x0], np.float32)) / scale, 0.0, 1.0)
    keep = (labels >= 0) & (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return np.where(keep[:, None], out, 0.0).astype(np.float32), np.where(keep, labels, -1)


def fixed_boxes(boxes, labels, count: int = MAX_BOXES) -> dict:
    """`boxes` [count, 4] float32 and `box_labels` [count] int32: the first `count` boxes, the
    rest padded with label -1."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)[:count]
    labels = np.asarray(labels, np.int32).reshape(-1)[:count]
    out_boxes = np.zeros((count, 4), np.float32)
    out_labels = np.full(count, -1, np.int32)
    out_boxes[:len(boxes)], out_labels[:len(labels)] = boxes, labels
    return {"boxes": out_boxes, "box_labels": out_labels}


def moved_boxes(record, pixel_box, width: int, height: int, flip: bool = False) -> dict:
    """The record's boxes for the image cut to `pixel_box` (left, top, right, bottom in pixels
    of the width x height image), resized and mirrored if `flip`; MAX_BOXES of them."""
    left, top, right, bottom = pixel_box
    crop = (top / height, left / width, bottom / height, right / width)
    boxes, labels = crop_boxes(record["boxes"], np.asarray(record["box_labels"]), crop)
    if flip:
        boxes = np.where((labels >= 0)[:, None], flip_boxes(boxes), 0.0).astype(np.float32)
    return fixed_boxes(boxes, labels)
