"""What a localization or segmentation evaluation shows: test images with their true and
predicted boxes (IoU written) or masks overlaid, the most confident failures first (as the
mistake browser orders class mistakes).

`TaskCollector` is fed by the evaluator (the rows of every batch: class probabilities, and the
outputs of jaxnet.evaluation.localization.outputs_rows) and draws the figures afterwards.
A localization failure is ILSVRC's: a wrong class or a box with IoU < 0.5; a segmentation
failure an image whose mean IoU over its classes is below `SEG_FAILURE`.
"""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jaxnet.evaluation.figures import _save

SEG_FAILURE = 0.75
# background black, then one colour per class (tab10)
PALETTE = np.array([[0, 0, 0], [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                    [188, 189, 34], [23, 190, 207]], np.uint8)
COLOUR_NAMES = ("blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive",
                "cyan")


class TaskCollector:
    """Per-example results of one evaluation of a `task` (localize or segment) model."""

    def __init__(self, num_examples: int, task: str):
        self.task, n = task, num_examples
        self.confidence, self.pred = np.zeros(n, np.float32), np.zeros(n, np.int64)
        self.label, self.seen = np.zeros(n, np.int64), np.zeros(n, bool)
        self.box, self.box_iou = np.zeros((n, 4), np.float32), np.zeros(n, np.float32)
        self.pred_mask, self.mask_iou = None, np.zeros(n, np.float32)

    def update(self, index, labels, probs, mask) -> None:
        real = mask > 0
        i = index[real]
        self.confidence[i] = probs[real].max(-1)
        self.pred[i], self.label[i], self.seen[i] = probs[real].argmax(-1), labels[real], True

    def update_outputs(self, index, mask, outputs) -> None:
        real = mask > 0
        i = index[real]
        if "box" in outputs:
            self.box[i], self.box_iou[i] = outputs["box"][real], outputs["box_iou"][real]
        if "pred_mask" in outputs:
            if self.pred_mask is None:
                self.pred_mask = np.zeros((len(self.seen),) + outputs["pred_mask"].shape[1:], np.uint8)
            self.pred_mask[i], self.mask_iou[i] = outputs["pred_mask"][real], outputs["mask_iou"][real]

    def failures(self, count: int) -> np.ndarray:
        """Indices of up to `count` failures, the most confident first."""
        if self.task == "localize":
            failed = (self.pred != self.label) | (self.box_iou < 0.5)
        else:
            failed = self.mask_iou < SEG_FAILURE
        failed &= self.seen
        order = np.argsort(-self.confidence[failed], kind="stable")
        return np.flatnonzero(failed)[order][:count]

    def figures(self, source, names, stem, count: int = 24) -> dict:
        """{caption: PNG path} of the most confident failures (and, for masks, a legend)."""
        picked = self.failures(count)
        if not len(picked):
            return {}
        if self.task == "localize":
            path = draw_boxes(source, picked, self, names, f"{stem}_box_failures.png")
            return {"Localization: the most confident failures (green: truth, red: guess)": path}
        path = draw_masks(source, picked, self, names, f"{stem}_mask_failures.png")
        return {"Segmentation: the most confident failures (truth | prediction)": path}


def _grid(count: int, columns: int, size: float):
    rows = -(-count // columns)
    fig = Figure(figsize=(columns * size, rows * size * 1.15))
    return fig, [fig.add_subplot(rows, columns, i + 1) for i in range(count)]


def _grey(image):
    image = np.asarray(image)
    return image[..., 0] if image.shape[-1] == 1 else image


def _rect(ax, box, h, w, colour):
    y0, x0, y1, x1 = box
    ax.add_patch(Rectangle((x0 * w - 0.5, y0 * h - 0.5), (x1 - x0) * w, (y1 - y0) * h,
                           fill=False, edgecolor=colour, linewidth=1.5))


def draw_boxes(source, picked, results, names, path, columns: int = 6) -> str:
    """Each picked test image with its true box(es) in green and the top-1 guess's box in red,
    titled guess (confidence), truth and IoU."""
    fig, axes = _grid(len(picked), columns, 1.9)
    for ax, i in zip(axes, picked):
        row = source[int(i)]
        image = _grey(row["image"])
        h, w = image.shape[:2]
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        for box, label in zip(row["boxes"], row["box_labels"]):
            if label >= 0:
                _rect(ax, box, h, w, "lime")
        _rect(ax, results.box[i], h, w, "red")
        ax.set_title(f"{names[results.pred[i]]} ({results.confidence[i]:.2f})\ntrue"
                     f" {names[results.label[i]]}, IoU {results.box_iou[i]:.2f}", fontsize=6)
        ax.axis("off")
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.95, 0.05, 0.45)
    return _save(fig, path)


def overlay(image, mask, alpha: float = 0.5) -> np.ndarray:
    """An RGB picture of `image` with `mask`'s classes coloured over it (background left)."""
    grey = _grey(image).astype(np.float32)
    rgb = np.repeat(grey[..., None], 3, -1) if grey.ndim == 2 else grey
    colour = PALETTE[np.minimum(mask, len(PALETTE) - 1)].astype(np.float32)
    on = (mask > 0)[..., None]
    return np.where(on, (1 - alpha) * rgb + alpha * colour, rgb).astype(np.uint8)


def draw_masks(source, picked, results, names, path, columns: int = 4) -> str:
    """Each picked test image twice: its true mask overlaid, then the predicted one, titled
    with the class guess (confidence) and the image's mean IoU; a colour legend below."""
    fig, axes = _grid(2 * len(picked), 2 * columns, 1.5)
    for k, i in enumerate(picked):
        row = source[int(i)]
        left, right = axes[2 * k], axes[2 * k + 1]
        left.imshow(overlay(row["image"], row["masks"]))
        right.imshow(overlay(row["image"], results.pred_mask[i]))
        left.set_title(f"true {names[results.label[i]]}", fontsize=6)
        right.set_title(f"{names[results.pred[i]]} ({results.confidence[i]:.2f}),"
                        f" IoU {results.mask_iou[i]:.2f}", fontsize=6)
        left.axis("off")
        right.axis("off")
    fig.text(0.5, 0.005, "colours: " + ", ".join(
        f"{name} {colour}" for name, colour in zip(names, COLOUR_NAMES)), ha="center", fontsize=6)
    fig.subplots_adjust(0.01, 0.03, 0.99, 0.95, 0.05, 0.35)
    return _save(fig, path)
