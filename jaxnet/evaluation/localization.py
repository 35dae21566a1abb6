"""Metrics of boxes and masks, as jittable per-batch sums and host totals (the evaluator adds
them up exactly once over a split, as it does top-k).

Boxes are normalised (ymin, xmin, ymax, xmax). Localization follows ILSVRC (2011 on): a guess
is a class and a box; it is right when the class is a true object's class and its box overlaps
that object's box with IoU >= 0.5; top-k error is the share of images whose k guesses are all
wrong (`loc_err`, `loc_err_top5`). `mean_iou` is the top-1 box's IoU with the true object's box
(the best of the image's boxes of its labelled class), averaged over images, and
`iou50_given_class` the share of images with the right top-1 class whose box is also right.
Masks: per-class intersection and union pixel counts over the split give each class's IoU;
`miou` averages it over the classes present (non-empty union: in the truth or the prediction),
`pixel_acc` is the share of pixels labelled right; `per_class_iou` goes to the per-class file.
"""
import jax
import jax.numpy as jnp
import numpy as np

IOU_THRESHOLD = 0.5
BOX_SUMS = ("loc_correct1", "loc_correct5", "box_iou", "iou50_and_class", "class_right")
MASK_SUMS = ("seg_intersection", "seg_union", "pixel_correct", "pixel_count")


def box_area(box):
    return jnp.clip(box[..., 2] - box[..., 0], 0) * jnp.clip(box[..., 3] - box[..., 1], 0)


def box_iou(a, b):
    """IoU of boxes `a` and `b` (..., 4), broadcast; 0 where both are empty."""
    ya, xa = jnp.maximum(a[..., 0], b[..., 0]), jnp.maximum(a[..., 1], b[..., 1])
    yb, xb = jnp.minimum(a[..., 2], b[..., 2]), jnp.minimum(a[..., 3], b[..., 3])
    inter = jnp.clip(yb - ya, 0) * jnp.clip(xb - xa, 0)
    union = box_area(a) + box_area(b) - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def guess_hits(guess_classes, guess_boxes, true_boxes, true_labels):
    """[B, G] 1.0 where guess g (class [B, G], box [B, G, 4]) is right by the ILSVRC rule against
    the image's true objects (boxes [B, K, 4], labels [B, K], -1 = none)."""
    iou = box_iou(guess_boxes[:, :, None, :], true_boxes[:, None, :, :])  # [B, G, K]
    same = guess_classes[:, :, None] == true_labels[:, None, :]
    right = same & (true_labels[:, None, :] >= 0) & (iou >= IOU_THRESHOLD)
    return jnp.any(right, -1).astype(jnp.float32)


def box_sums(scores, class_boxes, true_boxes, true_labels, labels, mask) -> dict:
    """Localization sums of one batch. scores [B, C]; class_boxes [B, C, 4] (a box per class, as
    a per-class regression head gives) or [B, 4] (one box for any class); true_boxes [B, K, 4],
    true_labels [B, K]; labels [B] the image's class; mask [B] the real rows."""
    k = min(5, scores.shape[-1])
    top = jax.lax.top_k(scores, k)[1]  # [B, k] guessed classes, best first
    if class_boxes.ndim == 2:
        boxes = jnp.broadcast_to(class_boxes[:, None, :], top.shape + (4,))
    else:
        boxes = jnp.take_along_axis(class_boxes, top[..., None], axis=1)  # [B, k, 4]
    hits = guess_hits(top, boxes, true_boxes, true_labels)
    own = (true_labels == labels[:, None]) & (true_labels >= 0)
    iou = jnp.max(jnp.where(own, box_iou(boxes[:, :1], true_boxes), 0.0), axis=-1)  # [B]
    right = (top[:, 0] == labels).astype(jnp.float32)
    return {"loc_correct1": (hits[:, 0] * mask).sum(), "loc_correct5": (hits.max(-1) * mask).sum(),
            "box_iou": (iou * mask).sum(),
            "iou50_and_class": (right * (iou >= IOU_THRESHOLD) * mask).sum(),
            "class_right": (right * mask).sum()}


def mask_sums(mask_scores, true_masks, mask) -> dict:
    """Segmentation sums of one batch: mask_scores [B, H, W, K] (K = classes + background, at
    the masks' size), true_masks [B, H, W] ints in [0, K); mask [B] the real rows."""
    num = mask_scores.shape[-1]
    pred = jnp.argmax(mask_scores, -1)
    weight = mask[:, None, None]
    classes = jnp.arange(num)
    p = (pred[..., None] == classes) * weight[..., None]  # [B, H, W, K]
    t = (true_masks[..., None].astype(jnp.int32) == classes) * weight[..., None]
    inter = (p * t).sum((0, 1, 2))
    return {"seg_intersection": inter, "seg_union": p.sum((0, 1, 2)) + t.sum((0, 1, 2)) - inter,
            "pixel_correct": ((pred == true_masks) * weight).sum(),
            "pixel_count": (jnp.ones_like(pred) * weight).sum()}


def finalize_boxes(totals) -> dict:
    """Box sums over a split -> loc_err, loc_err_top5, mean_iou, iou50_given_class."""
    n = float(totals["count"])
    right = float(totals["class_right"])
    return {"loc_err": 1.0 - float(totals["loc_correct1"]) / n,
            "loc_err_top5": 1.0 - float(totals["loc_correct5"]) / n,
            "mean_iou": float(totals["box_iou"]) / n,
            "iou50_given_class": float(totals["iou50_and_class"]) / right if right else 0.0}


def class_iou(intersection, union) -> np.ndarray:
    """Each class's IoU (NaN where the class is in neither truth nor prediction)."""
    inter, union = np.asarray(intersection, np.float64), np.asarray(union, np.float64)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)


def finalize_masks(totals, class_names=None) -> dict:
    """Mask sums over a split -> miou (over the classes present), pixel_acc, per_class_iou."""
    iou = class_iou(totals["seg_intersection"], totals["seg_union"])
    names = class_names or ["background"] + [str(i) for i in range(len(iou) - 1)]
    present = ~np.isnan(iou)
    return {"miou": float(iou[present].mean()) if present.any() else 0.0,
            "pixel_acc": float(totals["pixel_correct"]) / max(float(totals["pixel_count"]), 1.0),
            "per_class_iou": [{"class": name, "iou": None if np.isnan(v) else float(v)}
                              for name, v in zip(names, iou)]}


def mirror_boxes(boxes):
    """Boxes (..., 4) of a mirror image, in the original image's coordinates (x -> 1 - x)."""
    return jnp.stack([boxes[..., 0], 1.0 - boxes[..., 3], boxes[..., 2], 1.0 - boxes[..., 1]], -1)


def mirrored_outputs(predict_fn, params, images) -> dict:
    """A task model's outputs on `images` [B, H, W, C] averaged with those on their mirror
    images, mirrored back (the flip protocol): class and mask probabilities averaged (returned
    as logs, for argmax and cross-entropy alike), boxes averaged corner by corner."""
    views = [predict_fn(params, images), predict_fn(params, images[:, :, ::-1])]
    views = [v if isinstance(v, dict) else {"logits": v} for v in views]
    straight, mirrored = views

    def mean_log_probs(a, b):
        return jnp.log((jax.nn.softmax(a.astype(jnp.float32)) + jax.nn.softmax(b.astype(jnp.float32))) / 2)

    out = {"logits": mean_log_probs(straight["logits"], mirrored["logits"])}
    if "boxes" in straight:
        out["boxes"] = (straight["boxes"] + mirror_boxes(mirrored["boxes"])) / 2
    if "masks" in straight:
        out["masks"] = mean_log_probs(straight["masks"], mirrored["masks"][:, :, ::-1])
    return out


def outputs_sums(outputs: dict, batch: dict, labels, mask) -> dict:
    """The box and mask sums a predictor's outputs allow: `boxes` with the batch's true boxes,
    `masks` with its true masks (resized to them by nearest neighbour if the sizes differ)."""
    out = {}
    if "boxes" in outputs:
        out.update(box_sums(outputs["logits"].astype(jnp.float32), outputs["boxes"],
                            batch["boxes"], batch["box_labels"], labels, mask))
    if "masks" in outputs:
        scores, truth = outputs["masks"], batch["masks"]
        if scores.shape[1:3] != truth.shape[1:3]:
            scores = jax.image.resize(scores, truth.shape + scores.shape[-1:], "bilinear")
        out.update(mask_sums(scores, truth, mask))
    return out


def finalize_outputs(totals, class_names=None) -> dict:
    """outputs_sums' totals -> the metric names (those whose sums are there)."""
    out = {}
    if "loc_correct1" in totals:
        out.update(finalize_boxes(totals))
    if "seg_intersection" in totals:
        names = ["background"] + list(class_names) if class_names else None
        out.update(finalize_masks(totals, names))
    return out


def outputs_rows(outputs: dict, batch: dict) -> dict:
    """Per-example results for the report's browser ({} for a classifier): `outputs` with the
    top-1 guess's box and its IoU with the image's own box (`box`, `box_iou`), the predicted
    mask (`pred_mask`, uint8) and each image's mean IoU over its classes present (`mask_iou`)."""
    rows = {}
    if "boxes" in outputs:
        scores = outputs["logits"]
        top = jnp.argmax(scores, -1)
        boxes = outputs["boxes"]
        box = boxes if boxes.ndim == 2 else jnp.take_along_axis(boxes, top[:, None, None], 1)[:, 0]
        own = (batch["box_labels"] == batch["label"][:, None]) & (batch["box_labels"] >= 0)
        iou = jnp.max(jnp.where(own, box_iou(box[:, None], batch["boxes"]), 0.0), -1)
        rows.update(box=box.astype(jnp.float32), box_iou=iou)
    if "masks" in outputs:
        scores, truth = outputs["masks"], batch["masks"]
        if scores.shape[1:3] != truth.shape[1:3]:
            scores = jax.image.resize(scores, truth.shape + scores.shape[-1:], "bilinear")
        pred = jnp.argmax(scores, -1)
        classes = jnp.arange(scores.shape[-1])
        p, t = pred[..., None] == classes, truth[..., None].astype(jnp.int32) == classes
        inter, union = (p & t).sum((1, 2)), (p | t).sum((1, 2))
        iou = jnp.where(union > 0, inter / jnp.maximum(union, 1), 0.0).sum(-1) / jnp.maximum(
            (union > 0).sum(-1), 1)
        rows.update(pred_mask=pred.astype(jnp.uint8), mask_iou=iou)
    return {"outputs": rows} if rows else {}
