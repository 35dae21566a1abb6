"""Scenes made from Fashion-MNIST: garments pasted at random scale and position on a larger canvas
over a textured background, with each object's class, box and a per-pixel mask (dataset
`fashion_mnist_scenes`, options in config.scenes).

The train split's garments make the train scenes, the test split's the test scenes. Scene i of a
split is a pure function of (config.seed, split, i, options): the same scenes on every machine,
in any order, for any number of scenes asked for. Boxes come from the pasted pixels (those of the
resized garment above `INK`, holes filled): normalised (ymin, xmin, ymax, xmax) pixel-edge coordinates in
[0, 1], so a box covering rows r0..r1 is (r0 / H, ..., (r1 + 1) / H). Masks are uint8 [H, W]:
0 background, 1 + class where a garment's pixel was pasted (a later garment covers an earlier
one; its box stays the box of all its pasted pixels). Clutter is small fragments of other
garments pasted as background (label 0), so that "bright texture" does not mean "object".

`SceneAugment` is the train augmentation of whole batches: a horizontal flip and a random
resized crop that move the boxes and masks with the pixels (the image bilinearly, the mask by
nearest neighbour, boxes by the same affine map, clipped to the crop; a box left with no area is
dropped, label -1).
"""
import functools
import math
import sys

import grain
import numpy as np
import PIL.Image
from scipy import ndimage
from tqdm import tqdm

from jaxnet import JaxnetError
from jaxnet.data.boxes import crop_boxes, flip_boxes
from jaxnet.data.sources import ArraySource, load_fashion_mnist

INK = 24  # a resized garment's pixels above this grey level are pasted (its silhouette)
NUM_TEXTURES = 32
SPLIT_IDS = {"train": 0, "test": 1}


class SceneSource(ArraySource):
    """Scenes in memory: images [N, H, W, C] uint8, labels [N] (the first object's class),
    boxes [N, K, 4] float32, box_labels [N, K] int32 (-1: no object), masks [N, H, W] uint8."""

    FIELDS = ("image", "label", "boxes", "box_labels", "masks")

    def __init__(self, images, labels, boxes, box_labels, masks):
        super().__init__(images, labels)
        self.boxes, self.box_labels, self.masks = boxes, box_labels.astype(np.int32), masks

    def rows(self, index) -> dict:
        """The rows `index` (an int, slice or index array) of every field."""
        return {"image": self.images[index], "label": self.labels[index],
                "boxes": self.boxes[index], "box_labels": self.box_labels[index],
                "masks": self.masks[index]}

    def __getitem__(self, index):
        return self.rows(index)

    def take(self, index, labels=None) -> "SceneSource":
        """The scenes `index` (with `labels` for their class labels, e.g. relabelled)."""
        return SceneSource(self.images[index], self.labels[index] if labels is None else labels,
                           self.boxes[index], self.box_labels[index], self.masks[index])

    def __repr__(self) -> str:
        return f"SceneSource({len(self)} x {self.images.shape[1:]}, {self.boxes.shape[1]} object(s))"


def textures(canvas: int, seed: int, count: int = NUM_TEXTURES) -> np.ndarray:
    """`count` background textures [count, 2 canvas, 2 canvas] float32 in [0, 1]: smoothed noise
    plus a sine grating of random frequency and orientation, each its own mix."""
    rng = np.random.default_rng([seed, 7919])
    side = 2 * canvas
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    out = np.empty((count, side, side), np.float32)
    for t in range(count):
        coarse = rng.random((side // 8 + 2, side // 8 + 2)).astype(np.float32)
        noise = np.asarray(PIL.Image.fromarray(coarse).resize((side, side), PIL.Image.BICUBIC,
                                                              box=(1, 1, side // 8 + 1, side // 8 + 1)))
        angle, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
        grating = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle))
                                     / period + rng.uniform(0, 2 * math.pi))
        mix = rng.uniform(0.2, 0.8)
        out[t] = np.clip(mix * noise + (1 - mix) * grating, 0, 1)
    return out


def paste_box(silhouette: np.ndarray, top: int, left: int, canvas: int) -> np.ndarray:
    """The normalised pixel-edge box of the True pixels of `silhouette` pasted at (top, left)."""
    rows, cols = np.flatnonzero(silhouette.any(1)), np.flatnonzero(silhouette.any(0))
    return np.array([top + rows[0], left + cols[0], top + rows[-1] + 1, left + cols[-1] + 1],
                    np.float32) / canvas


def resized(garment: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(PIL.Image.fromarray(garment).resize((side, side), PIL.Image.BILINEAR))


def make_scene(rng, garments, classes, bank, canvas: int, scale_range, objects: int,
               clutter: int, texture: float, first=None):
    """One scene: (image [H, W] uint8, boxes [objects, 4], box_labels [objects], mask [H, W]).
    `garments` [M, 28, 28] uint8 and `classes` [M] are the split's; `bank` the textures; the
    first object is garment `first` (None: a random one, as the others)."""
    t = bank[rng.integers(len(bank))]
    y0, x0 = rng.integers(0, t.shape[0] - canvas + 1, size=2)
    image = (texture * 255 * t[y0:y0 + canvas, x0:x0 + canvas]).astype(np.float32)
    for _ in range(clutter):  # a fragment of a random garment, as background
        piece = garments[rng.integers(len(garments))]
        fy, fx = rng.integers(0, 28 - 8 + 1, size=2)
        side = int(rng.integers(6, max(7, canvas // 6)))
        frag = resized(np.ascontiguousarray(piece[fy:fy + 8, fx:fx + 8]), side).astype(np.float32)
        top, left = rng.integers(0, canvas - side + 1, size=2)
        region = image[top:top + side, left:left + side]
        np.maximum(region, 0.6 * frag, out=region)
    mask = np.zeros((canvas, canvas), np.uint8)
    boxes = np.zeros((objects, 4), np.float32)
    labels = np.full(objects, -1, np.int32)
    placed = []
    for k in range(objects):
        g = int(rng.integers(len(garments))) if first is None or k else first
        side = int(round(canvas * rng.uniform(*scale_range)))
        side = min(max(side, 8), canvas)
        pixels = resized(garments[g], side)
        silhouette = ndimage.binary_fill_holes(pixels > INK)
        if not silhouette.any():
            continue
        for _ in range(20):  # a place not overlapping earlier objects' squares, if there is one
            top, left = (int(v) for v in rng.integers(0, canvas - side + 1, size=2))
            if all(top >= b or top + side <= a or left >= d or left + side <= c
                   for a, c, b, d in placed):
                break
        placed.append((top, left, top + side, left + side))
        region = image[top:top + side, left:left + side]
        region[silhouette] = pixels[silhouette]
        mask[top:top + side, left:left + side][silhouette] = classes[g] + 1
        boxes[k], labels[k] = paste_box(silhouette, top, left, canvas), classes[g]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), boxes, labels, mask


def scene_split(split: str) -> str:
    """The Fashion-MNIST split a scene split is made from ('train', 'test', or a slice of one)."""
    base = split.split("[")[0]
    if base not in SPLIT_IDS:
        raise JaxnetError(f"fashion_mnist_scenes has splits 'train' and 'test' (or slices such as"
                          f" 'train[:1000]'), not {split!r}")
    return base


def make_scenes(garments, classes, count: int, seed: int, split_id: int, canvas: int = 64,
                scale_range=(0.35, 0.75), objects: int = 1, clutter: int = 0,
                texture: float = 0.35, channels: int = 1, progress=None) -> SceneSource:
    """`count` scenes from `garments` [M, 28, 28] with `classes` [M]; scene i is seeded by
    (seed, split_id, i) alone. Scene i of a single-object split uses garment i (mod M)."""
    if objects < 1 or clutter < 0 or not 0 <= texture <= 1:
        raise JaxnetError(f"config.scenes needs objects >= 1, clutter >= 0 and texture in [0, 1];"
                          f" got {objects}, {clutter}, {texture}")
    if not 0 < scale_range[0] <= scale_range[1] <= 1:
        raise JaxnetError(f"config.scenes.scale_range must be 0 < low <= high <= 1, got {scale_range}")
    bank = textures(canvas, seed)
    images = np.empty((count, canvas, canvas), np.uint8)
    masks = np.empty((count, canvas, canvas), np.uint8)
    boxes = np.zeros((count, objects, 4), np.float32)
    box_labels = np.full((count, objects), -1, np.int32)
    for i in range(count):
        rng = np.random.default_rng([seed, split_id, i])
        first = i % len(garments) if objects == 1 else None  # every garment once before twice
        images[i], boxes[i], box_labels[i], masks[i] = make_scene(
            rng, garments, classes, bank, canvas, scale_range, objects, clutter, texture, first)
        if progress is not None and i % 1000 == 999:
            progress.update(1000)
    if progress is not None:
        progress.update(count % 1000)
    labels = np.where(box_labels[:, 0] >= 0, box_labels[:, 0], 0)
    if channels == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    elif channels == 1:
        images = images[..., None]
    else:
        raise JaxnetError(f"fashion_mnist_scenes makes grey (channels=1) or RGB (3) images, not {channels}")
    return SceneSource(images, labels, boxes, box_labels, masks)


@functools.lru_cache(maxsize=2)
def _made_scenes(base, data_dir, count, seed, canvas, scale_range, objects, clutter, texture,
                 channels) -> SceneSource:
    """make_scenes over a Fashion-MNIST split, kept for the process's next runs with the same
    options (a study trains many networks on the same scenes; they are never written to)."""
    fm = load_fashion_mnist(base, data_dir)
    count = count or len(fm)
    with tqdm(total=count, desc=f"making {count:,} {base} scenes", unit=" scenes",
              mininterval=1 if sys.stderr.isatty() else 30) as bar:
        scenes = make_scenes(fm.images[..., 0], fm.labels, count, seed, SPLIT_IDS[base], canvas,
                             scale_range, objects, clutter, texture, channels, bar)
    for array in (scenes.images, scenes.labels, scenes.boxes, scenes.box_labels, scenes.masks):
        array.flags.writeable = False  # shared by the runs that ask for the same scenes
    return scenes


def load_scenes(config, split: str) -> SceneSource:
    """The scenes of `split` for `config` (config.scenes; config.seed, channels, data_dir)."""
    s = config.scenes
    base = scene_split(split)
    if config.image_size != s.canvas:
        raise JaxnetError(f"config.image_size ({config.image_size}) must be config.scenes.canvas"
                          f" ({s.canvas}) for fashion_mnist_scenes")
    if config.num_classes != 10 and not config.classes:
        raise JaxnetError(f"fashion_mnist_scenes has 10 classes, config.num_classes is {config.num_classes}")
    count = s.train_size if base == "train" else s.test_size
    scenes = _made_scenes(base, config.data_dir, count, config.seed, s.canvas, tuple(s.scale_range),
                          s.objects, s.clutter, s.texture, config.channels)
    if split != base:  # a slice, e.g. train[:1000]
        start, stop = split[len(base) + 1:-1].split(":")
        scenes = scenes.take(slice(int(start) if start else None, int(stop) if stop else None))
    return scenes


# ---- augmentation: boxes and masks move with the pixels ------------------------------------

def crop_resize_image(image: np.ndarray, crop, resample) -> np.ndarray:
    """image [H, W, C] or [H, W] cut to normalised `crop` and resized back to H x W."""
    h, w = image.shape[:2]
    grey = image.ndim == 3 and image.shape[2] == 1
    pil = PIL.Image.fromarray(image[..., 0] if grey else image)
    box = (crop[1] * w, crop[0] * h, crop[3] * w, crop[2] * h)
    out = np.asarray(pil.resize((w, h), resample, box=box))
    return out[..., None] if grey else out


def random_crop(rng, area=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
    """A normalised crop of `area` of the image and aspect in `ratio` (log-uniform)."""
    for _ in range(10):
        a = rng.uniform(*area)
        r = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        h, w = math.sqrt(a / r), math.sqrt(a * r)
        if h <= 1 and w <= 1:
            y, x = rng.uniform(0, 1 - h), rng.uniform(0, 1 - w)
            return (y, x, y + h, x + w)
    return (0.0, 0.0, 1.0, 1.0)


def augment_scene(row: dict, flip: bool, crop=None) -> dict:
    """One scene's image, mask and boxes mirrored (`flip`) and cut to `crop` (None: whole)."""
    image, mask = row["image"], row["masks"]
    boxes, labels = row["boxes"], row["box_labels"]
    if crop is not None:
        image = crop_resize_image(image, crop, PIL.Image.BILINEAR)
        mask = crop_resize_image(mask, crop, PIL.Image.NEAREST)
        boxes, labels = crop_boxes(boxes, labels, crop)
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
        boxes = np.where((labels >= 0)[:, None], flip_boxes(boxes), 0.0).astype(np.float32)
    return {"image": image, "masks": mask, "boxes": boxes, "box_labels": labels}


class SceneAugment(grain.transforms.RandomMap):
    """A batch of scenes flipped (kind flip or crop_flip) and cropped (crop_flip: `area` of the
    image, resized back), per row; boxes and masks move with the pixels. Random numbers are
    drawn for the global batch (as jaxnet.data.pipeline.AugmentBatch), this process's rows used."""

    def __init__(self, kind: str, area=(0.5, 1.0), process_index: int = 0, process_count: int = 1):
        self.kind, self.area = kind, tuple(area)
        self.process_index, self.process_count = process_index, process_count

    def random_map(self, batch, rng: np.random.Generator):
        n, p, count = len(batch["image"]), self.process_index, self.process_count
        flips = (rng.random(n * count) < 0.5)[p::count]
        crops = [random_crop(rng, self.area) for _ in range(n * count)][p::count]
        out = {k: np.array(v) for k, v in batch.items()}
        for i in range(n):
            row = augment_scene({k: v[i] for k, v in batch.items()},
                                self.kind in ("flip", "crop_flip") and bool(flips[i]),
                                crops[i] if self.kind == "crop_flip" else None)
            for k, v in row.items():
                out[k][i] = v
        labels = out["box_labels"]
        out["label"] = np.where(labels[:, 0] >= 0, labels[:, 0], batch["label"]).astype(np.int32)
        return out
