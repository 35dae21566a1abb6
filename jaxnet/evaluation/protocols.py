"""The papers' test protocols: how many views of each image a model sees, and how they are made.

The host decodes each image once into a "canvas" (`canvas_source`); the views are cut from the
canvas on the device, inside the evaluator's jitted function (`make_views`), and the model's
softmax is averaged over them. Encoded images (ImageNet, folders, tfds) and small in-memory
images (Fashion-MNIST, CIFAR) each have a canvas per protocol:

| protocol | encoded images (image_size s = 224: R = 256) | small images (s = 28 here) |
|---|---|---|
| center | shorter side R, central s crop (1 view) | the image (1 view) |
| flip | center's crop and its mirror image (2 views; boxes and masks are mirrored back) | the image and its mirror image (2) |
| ten_crop | shorter side R, central R x R square; its 4 corner + centre s crops, mirrored (10; AlexNet) | the image zero-padded by crop_padding; 4 corner + centre s crops, mirrored (10) |
| googlenet_144 | shorter side 256/288/320/352 (x s/224); left/centre/right (or top/middle/bottom) squares; 4 corner + centre s crops and the whole square resized to s; mirrored: 4 x 3 x 6 x 2 = 144 | the square image at the same four scales; 4 x 1 x 6 x 2 = 48 views (its three squares coincide) |
| multiscale | the whole image (aspect kept within a bucket, see `aspect_bucket`) at shorter sides 224/256/384/480/640 (x s/224), run fully convolutionally (scores averaged over positions by the net's global pooling), mirrored: 5 x 2 = 10 (ResNet) | the image at sizes s x 224/256/384/480/640 / 224; 10 |
"""
import math

import grain
import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import JaxnetError
from jaxnet.config import EVAL_PROTOCOLS
from jaxnet.data.sources import EncodedSource, Subset
from jaxnet.data.transforms import center_box, crop_resize, open_image
from jaxnet.console import progress_bar

PROTOCOLS = EVAL_PROTOCOLS
WHOLE_IMAGE_PROTOCOLS = ("center", "flip")  # keep boxes and masks in place (mirrors mirrored back)
GOOGLENET_SIDES = (256, 288, 320, 352)  # shorter sides, for 224 px crops
MULTISCALE_SIDES = (224, 256, 384, 480, 640)


# Which protocol fits which training recipe: a protocol's views should be views the training
# augmentation produced, else the model is scored on inputs it never saw (`unseen_views`).
#   flip: after any recipe that mirrors (every encoded-image one but resize; augment flip or
#     crop_flip on small images).
#   small images (train_transform resize): center always; ten_crop after augment crop_flip
#     (its corner crops are shifted by crop_padding, its mirrors flipped); googlenet_144 and
#     multiscale rescale the image, which no small-image augmentation does.
#   encoded images: inception_crop and resnet_scale train on many scales and crops: every
#     protocol; alexnet (one scale, random crops, mirrors): center and ten_crop.
def unseen_views(protocol: str, config, encoded: bool) -> str | None:
    """One line saying how `protocol`'s views lie outside what `config`'s training augmentation
    produced (its accuracy may then be lower than with center), or None when they do not."""
    if protocol == "center":
        return None
    small = not encoded or config.train_transform == "resize"
    if protocol == "flip":  # every encoded-image recipe but resize mirrors
        mirrored = not small or config.augment in ("crop_flip", "flip")
        return None if mirrored else (
            "protocol flip scores mirror images, which this model's training never produced"
            f" (config.augment={config.augment}): it may score lower than with --protocol=center")
    if small:
        trained = {"crop_flip": f"random shifts of up to {config.crop_padding} px and mirrors",
                   "flip": "mirrors only, no shifts", "none": "no augmentation"}[config.augment]
        if protocol == "ten_crop" and config.augment == "crop_flip" and config.crop_padding > 0:
            return None
        views = ({"ten_crop": f"corner crops shifted by crop_padding={config.crop_padding} px, mirrored"}
                 .get(protocol, "the image rescaled to other sizes, mirrored"))
    else:
        if config.train_transform != "alexnet" or protocol == "ten_crop":
            return None
        trained, views = "one scale (config.train_transform=alexnet)", "other scales"
    return (f"protocol {protocol} scores views ({views}) that this model's training never"
            f" produced ({trained}): it may score lower than with --protocol=center")


def check_protocol(name: str) -> None:
    if name not in PROTOCOLS:
        raise JaxnetError(f"unknown evaluation protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")


def scaled(sides, size: int) -> tuple:
    """Sides given for 224 px crops, scaled to crops of `size` px."""
    return tuple(round(side * size / 224) for side in sides)


def corner_boxes(canvas: int, crop: int) -> list:
    """(top, left) of the 4 corner crops and the centre crop of a square canvas."""
    far, mid = canvas - crop, (canvas - crop) // 2
    return [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]


def square_boxes(width: int, height: int) -> list:
    """(left, top, right, bottom) of the left/centre/right (or top/middle/bottom) squares."""
    side = min(width, height)
    if width >= height:
        return [(x, 0, x + side, side) for x in (0, (width - side) / 2, width - side)]
    return [(0, y, side, y + side) for y in (0, (height - side) / 2, height - side)]


def num_views(name: str, source) -> int:
    """Views per image of protocol `name` over `source` (a canvas source of it)."""
    squares = isinstance(source, EncodedSource)  # small square images: their 3 squares coincide
    return {"center": 1, "flip": 2, "ten_crop": 10, "googlenet_144": 144 if squares else 48,
            "multiscale": 10}[name]


# ---- host: one decode per image -----------------------------------------------------------

class CanvasTransform(grain.transforms.Map):
    """Encoded image -> the protocol's canvas (uint8), decoded once (grain's Map interface)."""

    def __init__(self, protocol: str, size: int, resize: int):
        self.protocol, self.size, self.resize = protocol, size, resize

    def map(self, record):
        data = record["image"]
        image = open_image(data)
        width, height = image.size
        if self.protocol == "ten_crop":
            box = center_box(width, height, self.resize, self.resize)
            canvas = crop_resize(image, box, (self.resize, self.resize), data)
        elif self.protocol == "googlenet_144":
            side = scaled(GOOGLENET_SIDES, self.size)[-1]
            canvas = np.stack([crop_resize(open_image(data), box, (side, side), data)
                               for box in square_boxes(width, height)])
        else:  # multiscale: the whole image in its aspect bucket, at the largest side
            canvas = crop_resize(image, (0, 0, width, height),
                                 multiscale_canvas(width, height, self.size), data)
        return {"image": canvas, "label": np.int32(record["label"])}


ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9)  # width / height of the buckets (and their inverses)


def aspect_bucket(width: int, height: int) -> float:
    """The bucket aspect (longer / shorter side) nearest to the image's, in log scale."""
    ratio = max(width, height) / min(width, height)
    return min(ASPECTS, key=lambda a: abs(math.log(ratio / a)))


def multiscale_canvas(width: int, height: int, size: int) -> tuple:
    """(w, h) of the multiscale canvas: shorter side = the largest scale, longer side = its
    bucket's aspect (the image is resized to it: at most ~7% aspect change)."""
    short = scaled(MULTISCALE_SIDES, size)[-1]
    long = round(short * aspect_bucket(width, height))
    return (long, short) if width >= height else (short, long)


def canvas_parts(source, protocol: str, config) -> list:
    """[(canvas source, split positions of its items or None)]: the protocol's canvases of
    `source`, in parts whose canvases share one shape (multiscale on encoded images: one part
    per aspect bucket and orientation, found from the image headers)."""
    check_protocol(protocol)
    if protocol in ("center", "flip"):  # flip mirrors the centre view on the device
        return [(source, None)]
    if not isinstance(source, EncodedSource):
        padding = config.crop_padding if protocol == "ten_crop" else 0
        return [(PaddedSource(source, padding), None)]
    resize = source.eval_transform.resize or round(config.image_size * 256 / 224)
    transform = CanvasTransform(protocol, config.image_size, resize)
    if protocol != "multiscale":
        return [(EncodedSource(source.records, transform, source.num_workers, source.name), None)]
    shapes = []  # each image's canvas shape, from its header
    with progress_bar(len(source), "image sizes") as bar:
        for i in range(len(source)):
            shapes.append(multiscale_canvas(*open_image(source.records[i]["image"]).size,
                                            config.image_size))
            bar.update(1)
    parts = []
    for shape in sorted(set(shapes)):
        indices = np.array([i for i, s in enumerate(shapes) if s == shape])
        parts.append((EncodedSource(Subset(source.records, indices), transform,
                                    source.num_workers, source.name), indices))
    return parts


class PaddedSource:
    """Small in-memory images, zero-padded by `padding` on each side (the ten_crop canvas)."""

    def __init__(self, source, padding: int):
        self.source, self.padding = source, padding

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        item = self.source[i]
        p = self.padding
        return {**item, "image": np.pad(item["image"], ((p, p), (p, p), (0, 0)))}


# ---- device: the views, inside the jitted function ------------------------------------------

def _resize(images, height: int, width: int):
    """uint8 [..., h, w, C] -> uint8 [..., height, width, C] (bilinear, antialiased)."""
    if images.shape[-3:-1] == (height, width):
        return images
    shape = images.shape[:-3] + (height, width, images.shape[-1])
    out = jax.image.resize(images.astype(jnp.float32), shape, "bilinear")
    return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)


def _crops(square, size: int) -> list:
    """4 corner + centre crops of a batch of squares [B, S, S, C]."""
    return [square[:, t:t + size, l:l + size] for t, l in corner_boxes(square.shape[1], size)]


def _with_mirrors(views: list) -> jax.Array:
    views = jnp.stack(views)
    return jnp.concatenate([views, views[..., ::-1, :]])


def make_views(protocol: str, canvas, size: int) -> list:
    """The views of a canvas batch, as a list of [V, B, h, w, C] uint8 stacks (one per view
    shape: the model compiles once per stack)."""
    if protocol == "center":
        return [canvas[None]]
    if protocol == "flip":
        return [_with_mirrors([canvas])]
    if protocol == "ten_crop":
        return [_with_mirrors(_crops(canvas, size))]
    if protocol == "googlenet_144":
        squares = canvas if canvas.ndim == 5 else canvas[:, None]  # [B, 3 or 1, S, S, C]
        views = []
        for side in scaled(GOOGLENET_SIDES, size):
            for k in range(squares.shape[1]):
                square = _resize(squares[:, k], side, side)
                views += _crops(square, size) + [_resize(square, size, size)]
        return [_with_mirrors(views)]
    height, width = canvas.shape[1:3]  # multiscale: the canvas at each scale
    stacks = []
    for side in scaled(MULTISCALE_SIDES, size):
        h, w = (side, round(side * width / height)) if height <= width else (round(side * height / width), side)
        stacks.append(_with_mirrors([_resize(canvas, h, w)]))
    return stacks


def averaged_log_probs(predict_fns, params, canvas, protocol: str, size: int):
    """log of the softmax averaged over every view and model: the ensemble's class scores."""
    total, count = 0.0, 0
    for predict_fn, p in zip(predict_fns, params):
        for stack in make_views(protocol, canvas, size):
            probs = jax.lax.map(lambda view, p=p, f=predict_fn: jax.nn.softmax(
                f(p, view).astype(jnp.float32)), stack)
            total, count = total + probs.sum(0), count + stack.shape[0]
    return jnp.log(total / count)
