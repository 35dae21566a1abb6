"""Per-example image transforms for encoded images (JPEG/PNG bytes): decode, crop, resize, flip,
colour. Each train transform follows its paper; all return uint8 HWC RGB (normalisation happens
on the device).

Speed: the crop box is chosen from the image header alone, then only what the crop needs is
decoded. JPEGs (RGB/YCbCr and greyscale) go through the C extension `jaxnet.data._jpegcrop`
(system libjpeg-turbo), which in one call, without the GIL:
  - decodes at the smallest DCT scale of 1/8, 1/4, 1/2, 1 at which the box still covers the
    output size (never upsampling because of the reduced decode; libjpeg-turbo also offers
    3/8, 5/8, 6/8, 7/8, but those IDCTs have no SIMD and decode slower than full size);
  - entropy-decodes only the rows above the box (jpeg_skip_scanlines), never reads the rows
    below it, and inverse-transforms and colour-converts only its columns (jpeg_crop_scanline),
    each with the resize filter's reach;
  - resizes the box with Pillow's BILINEAR filter (a triangle filter that widens with the
    downscaling factor: no aliasing), streaming: each decoded row is filtered as it comes, and
    a flip only reverses the order of the horizontal filter's outputs.
The decoded pixels are exactly a full decode's (at scale 1; tested) and the result is Pillow's
crop + resize to within 1 grey level (float instead of fixed-point arithmetic). On 500x375
ImageNet-like JPEGs cropped to 224 px, 2/3 of the remaining time is entropy decoding, which no
crop can skip for the rows above it (docs/results.md, "Input pipeline": the time per stage).
CMYK/YCCK JPEGs, other formats and an install without the extension take the Pillow path: draft
mode for the DCT scale, decoding stopped below the box, and crop + resize in one Pillow call.
"""
import io
import math

import grain
import numpy as np
import PIL.Image
import PIL.ImageEnhance

from jaxnet import JaxnetError
from jaxnet.compat import decode_top_rows, load
from jaxnet.data.boxes import moved_boxes

try:
    from jaxnet.data import _jpegcrop
except ImportError:  # built without libjpeg's headers (see setup.py): the Pillow path only
    _jpegcrop = None

TRAIN_TRANSFORMS = ("inception_crop", "resnet_scale", "alexnet", "resize")
# AlexNet's PCA lighting constants (Krizhevsky 2012, as in fb.resnet.torch), RGB in [0, 1].
PCA_EIGVAL = np.array([0.2175, 0.0188, 0.0045], np.float32)
PCA_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                       [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]], np.float32)


def open_image(data) -> PIL.Image.Image:
    """A lazily decoded image (only the header is read) from bytes or a uint8 array."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 3:
        return PIL.Image.fromarray(data.squeeze(-1) if data.shape[-1] == 1 else data)
    if data is None or not len(data):
        raise JaxnetError("cannot decode image: it is empty (0 bytes)")
    try:
        return PIL.Image.open(io.BytesIO(bytes(data)))
    except PIL.UnidentifiedImageError:
        raise JaxnetError(f"cannot decode image ({len(data)} bytes): not an image format Pillow"
                          " reads, or its header is damaged") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise JaxnetError(f"cannot decode image ({len(data)} bytes): {e}") from e


# What decoding a damaged image raises (Pillow: OSError "image file is truncated", SyntaxError
# for some broken headers; open_image and the C decoder: JaxnetError).
DECODE_ERRORS = (JaxnetError, OSError, SyntaxError, EOFError, PIL.Image.DecompressionBombError)


def decode_error(record, error) -> JaxnetError:
    """`error`, raised decoding `record`, as one line naming the image: the record's `where`
    (its file, or dataset, split and record index) when it has one."""
    message = (str(error).splitlines() or [type(error).__name__])[0]
    where = record.get("where") if isinstance(record, dict) else None
    return JaxnetError(f"{where}: {message}" if where else message)


class Located(grain.transforms.Map):
    """A Map transform whose decode errors name the image (decode_error)."""

    def __init__(self, transform):
        self.transform = transform

    def map(self, record):
        try:
            return self.transform.map(record)
        except DECODE_ERRORS as e:
            raise decode_error(record, e) from None


class LocatedRandom(grain.transforms.RandomMap):
    """A RandomMap transform whose decode errors name the image (same random numbers)."""

    def __init__(self, transform):
        self.transform = transform

    def random_map(self, record, rng):
        try:
            return self.transform.random_map(record, rng)
        except DECODE_ERRORS as e:
            raise decode_error(record, e) from None


def locate_errors(transform):
    """`transform` (a grain Map or RandomMap) with decode errors that name the image."""
    if isinstance(transform, grain.transforms.RandomMap):
        return LocatedRandom(transform)
    return Located(transform)


def check_image(data, thorough: bool = False) -> None:
    """Raise JaxnetError unless `data` (encoded bytes) decodes. Cheap by default: the header is
    parsed, a JPEG must end with its end-of-image marker (a cut-short file does not) and a PNG's
    chunks must be complete with good checksums; any other image, or a JPEG without the marker,
    is decoded at 1/8 scale by the decoder training uses. `thorough`: decode every image so."""
    image = open_image(data)
    if not thorough:
        if image.format == "JPEG" and (data[-2:] == b"\xff\xd9"
                                       or bytes(data).rstrip(b"\0")[-2:] == b"\xff\xd9"):
            return
        if image.format == "PNG":
            try:
                image.verify()
            except DECODE_ERRORS + (ValueError,) as e:
                raise JaxnetError(f"cannot decode PNG ({len(data)} bytes): {e}") from None
            return
    width, height = image.size
    try:
        crop_resize(image, (0, 0, width, height), (-(-width // 8), -(-height // 8)), data)
    except DECODE_ERRORS + (ValueError,) as e:
        if isinstance(e, JaxnetError):
            raise
        raise JaxnetError(f"cannot decode image ({len(data)} bytes): {e}") from None


def jpeg_scale(width, height, box, size) -> int:
    """M such that decoding the `width` x `height` JPEG at M/8 of its size (1, 2, 4 or 8; libjpeg
    rounds the size up) leaves `box` (full-size coordinates) at least `size` (w, h) pixels."""
    for scale in (1, 2, 4):
        sx, sy = -(-width * scale // 8) / width, -(-height * scale // 8) / height
        if (box[2] - box[0]) * sx >= size[0] and (box[3] - box[1]) * sy >= size[1]:
            return scale
    return 8


def crop_resize(image: PIL.Image.Image, box, size, data=None, flip=False) -> np.ndarray:
    """`box` = (left, top, right, bottom) of the full-size image, resized to `size` (w, h) and
    mirrored left-right if `flip`: uint8 [h, w, 3] RGB. `data`, the encoded bytes `image` was
    opened from, lets a JPEG be decoded by the C extension (only the box, at a reduced DCT
    scale; the flip costs nothing there); otherwise Pillow."""
    if (data is not None and _jpegcrop is not None and image.format in ("JPEG", "MPO")
            and image.mode in ("RGB", "L")):
        scale = jpeg_scale(*image.size, box, size)
        try:
            pixels = _jpegcrop.crop_resize(data, scale, *map(float, box), *size, flip)
        except ValueError as e:
            raise JaxnetError(f"cannot decode JPEG ({len(data)} bytes): {e}") from e
        return np.frombuffer(pixels, np.uint8).reshape(size[1], size[0], 3)
    image = pillow_crop_resize(image, box, size)
    return np.asarray(image.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT) if flip else image)


def pillow_crop_resize(image: PIL.Image.Image, box, size) -> PIL.Image.Image:
    """crop_resize with Pillow: JPEGs are decoded at the smallest draft scale (1, 1/2, 1/4, 1/8)
    at which the box still covers `size` pixels, and only down to the box's last row."""
    width, height = image.size
    left, top, right, bottom = box
    if image.format == "JPEG":
        want = (math.ceil(width * size[0] / (right - left)), math.ceil(height * size[1] / (bottom - top)))
        image.draft("RGB", (min(want[0], width), min(want[1], height)))
        sx, sy = image.size[0] / width, image.size[1] / height
        box = (left * sx, top * sy, right * sx, bottom * sy)
        # Rows below the box and the resize filter's reach (one output row's span) are never decoded.
        reach = (box[3] - box[1]) / size[1]
        decode_top_rows(image, min(image.size[1], math.ceil(box[3] + reach) + 1))
    else:
        load(image)
    if image.mode != "RGB":
        image = image.convert("RGB")  # greyscale, CMYK, palette or RGBA images
    return image.resize(size, PIL.Image.BILINEAR, box=box)


def inception_box(width, height, rng, area=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """GoogLeNet's random crop (torchvision RandomResizedCrop): a box of 8-100% of the area and
    aspect ratio 3/4-4/3 (log-uniform); after 10 misses, the centre crop of the clamped ratio."""
    total = width * height
    for _ in range(10):
        target = total * rng.uniform(*area)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return (left, top, left + w, top + h)
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return (left, top, left + w, top + h)


def scale_box(width, height, size, shorter, rng):
    """ResNet's crop: the box that a random `size` crop of the image resized to shorter side
    `shorter` covers, in full-size coordinates."""
    factor = shorter / min(width, height)
    scaled_w, scaled_h = max(size, round(width * factor)), max(size, round(height * factor))
    x = int(rng.integers(0, scaled_w - size + 1))
    y = int(rng.integers(0, scaled_h - size + 1))
    fx, fy = scaled_w / width, scaled_h / height
    return (x / fx, y / fy, (x + size) / fx, (y + size) / fy)


def alexnet_box(width, height, size, rng, base=256):
    """AlexNet's crop: shorter side to `base`, the central base x base square, then a random
    `size` crop of it (Krizhevsky 2012, section 2 and 4.1)."""
    side = min(width, height)
    factor = base / side
    x = int(rng.integers(0, base - size + 1))
    y = int(rng.integers(0, base - size + 1))
    left, top = (width - side) / 2 + x / factor, (height - side) / 2 + y / factor
    return (left, top, left + size / factor, top + size / factor)


def center_box(width, height, size, resize):
    """Eval crop: the central `size` square of the image resized to shorter side `resize`."""
    side = min(width, height) * size / resize
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def pca_lighting(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """AlexNet's lighting noise: add EIGVEC @ (alpha * EIGVAL) (RGB, [0, 1] units) to every pixel."""
    shift = 255.0 * PCA_EIGVEC @ (np.asarray(alpha, np.float32) * PCA_EIGVAL)
    return np.clip(np.rint(image.astype(np.float32) + shift), 0, 255).astype(np.uint8)


def color_jitter(image: PIL.Image.Image, strength: float, rng) -> PIL.Image.Image:
    """Photometric distortion: brightness, contrast and saturation factors uniform in
    [1 - strength, 1 + strength], applied in a random order (torchvision's ColorJitter)."""
    enhancers = (PIL.ImageEnhance.Brightness, PIL.ImageEnhance.Contrast, PIL.ImageEnhance.Color)
    factors = rng.uniform(max(0.0, 1 - strength), 1 + strength, size=3)
    for i in rng.permutation(3):
        image = enhancers[i](image).enhance(float(factors[i]))
    return image


class TrainTransform(grain.transforms.RandomMap):
    """{"image": encoded bytes, "label"} -> {"image": uint8 [size, size, 3], "label": int32},
    with grain's per-record rng (deterministic in the seed and the record's position: resumable).

    kind: inception_crop (GoogLeNet / ResNet-50 v1.5 recipe), resnet_scale (He et al.: shorter
    side uniform in `scale_range`, random crop), alexnet (shorter side 256, centre square, random
    crop, PCA lighting with std `lighting`), resize (the whole image to size x size, no
    randomness: for small images that get the batch-level `augment`). All but resize flip.
    """

    def __init__(self, kind: str, size: int, area=(0.08, 1.0), scale_range=(256, 480),
                 jitter: float = 0.0, lighting: float = 0.0):
        if kind not in TRAIN_TRANSFORMS:
            raise JaxnetError(f"train transform must be one of {', '.join(TRAIN_TRANSFORMS)}, not {kind!r}")
        self.kind, self.size, self.area = kind, size, tuple(area)
        self.scale_range, self.jitter, self.lighting = tuple(scale_range), jitter, lighting

    def random_map(self, record, rng: np.random.Generator):
        image = open_image(record["image"])
        width, height = image.size
        if self.kind == "inception_crop":
            box = inception_box(width, height, rng, self.area)
        elif self.kind == "resnet_scale":
            box = scale_box(width, height, self.size,
                            int(rng.integers(self.scale_range[0], self.scale_range[1] + 1)), rng)
        elif self.kind == "alexnet":
            box = alexnet_box(width, height, self.size, rng, base=max(256, self.size))
        else:
            box = (0, 0, width, height)
        flip = self.kind != "resize" and rng.random() < 0.5
        array = crop_resize(image, box, (self.size, self.size), record["image"], flip)
        if self.jitter:  # global colour changes: they commute with the flip
            array = np.asarray(color_jitter(PIL.Image.fromarray(array), self.jitter, rng))
        if self.kind == "alexnet" and self.lighting:
            array = pca_lighting(array, rng.normal(0.0, self.lighting, 3))
        out = {"image": array, "label": np.int32(record["label"])}
        if "boxes" in record:  # ImageNet prepared with its box files: they move with the crop
            out.update(moved_boxes(record, box, width, height, flip))
        return out


class EvalTransform(grain.transforms.Map):
    """{"image": encoded bytes, "label"} -> uint8 [size, size, 3]: shorter side to `resize`,
    central size x size crop (the standard 1-crop protocol); `resize=0` squashes the whole image
    to size x size instead (small images such as CIFAR)."""

    def __init__(self, size: int, resize: int):
        self.size, self.resize = size, resize

    def map(self, record):
        image = open_image(record["image"])
        width, height = image.size
        box = center_box(width, height, self.size, self.resize) if self.resize else (0, 0, width, height)
        out = {"image": crop_resize(image, box, (self.size, self.size), record["image"]),
               "label": np.int32(record["label"])}
        if "boxes" in record:  # ImageNet prepared with its box files: the boxes of the crop
            out.update(moved_boxes(record, box, width, height))
        return out
