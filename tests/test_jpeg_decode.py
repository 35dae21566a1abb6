"""The C JPEG decoder (jaxnet.data._jpegcrop): its region decode against Pillow's full decode,
the DCT scale chosen per crop, the crop + resize against the Pillow path, errors, and the
colour spaces that take the Pillow path instead.

The system libjpeg-turbo (2.1.5 on Debian 12) and the one Pillow bundles (3.x) decode
identically at full scale and at 1/2, 1/4, 1/8 (same integer IDCTs and fancy upsampling):
the tests ask for equality there."""
import io
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from jaxnet import JaxnetError
from jaxnet.data import transforms
from jaxnet.data.transforms import EvalTransform, TrainTransform
from jaxnet.tools.bench_data import imagenet_like_jpeg


def encode(pixels, **options) -> bytes:
    out = io.BytesIO()
    PIL.Image.fromarray(pixels).save(out, "JPEG", **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 500x375 photo-like image (the benchmark's generator), decoded."""
    data = imagenet_like_jpeg(np.random.default_rng(0))
    return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


def pillow(data: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_extension_is_built():
    try:
        from jaxnet.data import _jpegcrop  # noqa: F401
    except ImportError as e:
        pytest.fail(f"jaxnet.data._jpegcrop is not built ({e}): install libjpeg's headers "
                    "(Debian: apt-get install libjpeg62-turbo-dev) and run pip install -e . again")
    assert transforms._jpegcrop is not None


def test_the_extension_imports_in_a_fresh_process_elsewhere(tmp_path):
    # grain's worker processes import it the same way (from any working directory)
    code = "import jaxnet.data._jpegcrop as m; print(m.crop_resize.__name__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "crop_resize", out.stderr


@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
@pytest.mark.parametrize("progressive", [False, True])
def test_region_decode_at_full_scale_is_the_full_decode_cropped(photo, subsampling, progressive):
    data = encode(photo, quality=90, subsampling=subsampling, progressive=progressive)
    full = pillow(data)
    imcu = 8 if subsampling == 0 else 16
    rng = np.random.default_rng(subsampling)
    for _ in range(20):
        x0, y0 = int(rng.integers(0, 499)), int(rng.integers(0, 374))
        x1, y1 = int(rng.integers(x0 + 1, 501)), int(rng.integers(y0 + 1, 376))
        pixels, left, width, height = transforms._jpegcrop.decode(data, 8, x0, y0, x1, y1)
        region = np.frombuffer(pixels, np.uint8).reshape(height, width, 3)
        assert left % imcu == 0 and left <= x0 and left + width >= x1 and height == y1 - y0
        expected = full[y0:y1, left:left + width]
        # libjpeg's chroma upsampling treats the region's first and last columns as image
        # edges: those may differ (crop_resize decodes one column more on each side); the
        # rest is exactly the full decode.
        inner = slice(1 if left > 0 else 0, width - 1 if left + width < 500 else width)
        np.testing.assert_array_equal(region[:, inner], expected[:, inner])


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_reduced_scale_decode_is_pillows_draft_decode(photo, scale):
    data = encode(photo, quality=90)
    image = PIL.Image.open(io.BytesIO(data))
    image.draft("RGB", (500 * scale // 8, 375 * scale // 8))
    expected = np.asarray(image.convert("RGB"))
    assert expected.shape == (-(-375 * scale // 8), -(-500 * scale // 8), 3)
    pixels, left, width, height = transforms._jpegcrop.decode(data, scale, 0, 0, 10**6, 10**6)
    assert (left, width, height) == (0, expected.shape[1], expected.shape[0])
    np.testing.assert_array_equal(np.frombuffer(pixels, np.uint8).reshape(expected.shape), expected)


def test_dct_scale_is_the_smallest_that_keeps_the_box_at_least_the_output_size():
    # 500x375 decodes to 63x47 (1/8), 125x94 (1/4), 250x188 (1/2), 500x375
    assert transforms.jpeg_scale(500, 375, (0, 0, 500, 375), (63, 47)) == 1
    assert transforms.jpeg_scale(500, 375, (0, 0, 500, 375), (64, 48)) == 2
    assert transforms.jpeg_scale(500, 375, (0, 0, 500, 375), (224, 168)) == 4
    assert transforms.jpeg_scale(500, 375, (0, 0, 500, 375), (224, 224)) == 8
    assert transforms.jpeg_scale(500, 375, (50, 0, 425, 375), (224, 224)) == 8  # 375 px: not 448
    assert transforms.jpeg_scale(1000, 750, (100, 50, 600, 550), (224, 224)) == 4  # 500 px -> 250
    assert transforms.jpeg_scale(1000, 750, (100, 50, 600, 550), (251, 224)) == 8
    assert transforms.jpeg_scale(2000, 1500, (0, 0, 2000, 1500), (224, 188)) == 1  # 250x188
    assert transforms.jpeg_scale(2000, 1500, (0, 0, 2000, 1500), (224, 224)) == 2  # both axes count


def test_crop_resize_matches_a_full_decode_and_pillows_resize(photo):
    data = encode(photo, quality=90)
    full = PIL.Image.fromarray(pillow(data))
    rng = np.random.default_rng(0)
    boxes = [transforms.inception_box(500, 375, rng) for _ in range(20)]
    boxes += [(10.3, 20.7, 400.2, 300.9), (100, 100, 150, 140), (0, 0, 500, 375), (499, 374, 500, 375)]
    for box in boxes:
        out = transforms.crop_resize(transforms.open_image(data), box, (224, 224), data)
        assert out.shape == (224, 224, 3) and out.dtype == np.uint8
        expected = np.asarray(full.resize((224, 224), PIL.Image.BILINEAR, box=box))
        diff = np.abs(out.astype(int) - expected)
        assert diff.max() <= 1 and diff.mean() < 0.25, box  # float vs Pillow's fixed-point rounding


def test_flip_mirrors_the_output_exactly(photo):
    data = encode(photo, quality=90)
    for box, size in (((37, 12, 401, 333), (224, 224)), ((0, 0, 500, 375), (60, 45)), ((5, 5, 60, 70), (97, 131))):
        plain = transforms.crop_resize(transforms.open_image(data), box, size, data)
        flipped = transforms.crop_resize(transforms.open_image(data), box, size, data, flip=True)
        np.testing.assert_array_equal(flipped, plain[:, ::-1])
        pillow_flipped = transforms.crop_resize(transforms.open_image(data), box, size, flip=True)
        assert np.abs(flipped.astype(int) - pillow_flipped).max() <= 1


def test_reduced_scale_crop_resize_is_pillows_draft_path_and_close_to_a_full_decode(photo):
    small = np.random.default_rng(0).integers(0, 256, (6, 8, 3), np.uint8)
    smooth = np.asarray(PIL.Image.fromarray(small).resize((500, 375), PIL.Image.BICUBIC))
    for pixels, tolerance in ((smooth, 3), (photo, 7)):
        data = encode(pixels, quality=90)
        full = PIL.Image.fromarray(pillow(data))
        for box, size, scale in (((0, 0, 500, 375), (60, 45), 1), ((0, 0, 500, 375), (200, 150), 4),
                                 ((20, 10, 480, 370), (112, 88), 2)):
            assert transforms.jpeg_scale(500, 375, box, size) == scale
            out = transforms.crop_resize(transforms.open_image(data), box, size, data)
            draft = transforms.pillow_crop_resize(transforms.open_image(data), box, size)
            assert np.abs(out.astype(int) - np.asarray(draft)).max() <= 1
            # The DCT scaling is a sharper low-pass than the triangle filter's: measured mean
            # differences to a full decode + resize are 0.7-2.5 grey levels on the smooth image
            # and 4-6.4 on the noise-textured photo (the Pillow path's draft mode alike).
            expected = np.asarray(full.resize(size, PIL.Image.BILINEAR, box=box))
            assert np.abs(out.astype(np.float32) - expected).mean() < tolerance, (box, size)


def test_transforms_give_the_pillow_paths_result():
    data = imagenet_like_jpeg(np.random.default_rng(1))
    record = {"image": data, "label": 3}
    for transform in (TrainTransform("inception_crop", 224), TrainTransform("resnet_scale", 224),
                      TrainTransform("alexnet", 224, lighting=0.1), EvalTransform(224, 256)):
        if isinstance(transform, EvalTransform):
            fast = transform.map(record)["image"]
        else:
            fast = transform.random_map(record, np.random.default_rng(5))["image"]
        saved, transforms._jpegcrop = transforms._jpegcrop, None
        try:
            slow = (transform.map(record) if isinstance(transform, EvalTransform)
                    else transform.random_map(record, np.random.default_rng(5)))["image"]
        finally:
            transforms._jpegcrop = saved
        assert fast.shape == slow.shape == (224, 224, 3)
        assert np.abs(fast.astype(int) - slow).max() <= 1


def test_corrupt_and_truncated_jpegs_raise_jaxnet_errors(photo):
    data = encode(photo, quality=90)
    with pytest.raises(JaxnetError, match="truncated"):
        transforms.crop_resize(transforms.open_image(data[:len(data) // 2]), (0, 300, 500, 375),
                               (224, 224), data[:len(data) // 2])
    broken = bytearray(data)
    start = broken.index(b"\xff\xda")  # start of scan: replace the quantisation and Huffman tables
    broken[20:start] = bytes(start - 20)
    with pytest.raises(JaxnetError, match="cannot decode JPEG"):
        transforms.crop_resize(transforms.open_image(data), (0, 0, 500, 375), (224, 224), bytes(broken))
    with pytest.raises(ValueError, match="bad request"):
        transforms._jpegcrop.crop_resize(data, 8, 10.0, 10.0, 5.0, 20.0, 224, 224)


def test_greyscale_goes_through_the_extension_and_cmyk_through_pillow(photo):
    for mode in ("L", "CMYK"):
        out = io.BytesIO()
        PIL.Image.fromarray(photo).convert(mode).save(out, "JPEG", quality=90)
        data = out.getvalue()
        expected = transforms.pillow_crop_resize(transforms.open_image(data), (50, 20, 400, 340), (224, 224))
        result = transforms.crop_resize(transforms.open_image(data), (50, 20, 400, 340), (224, 224), data)
        assert result.shape == (224, 224, 3)
        assert np.abs(result.astype(int) - np.asarray(expected)).max() <= (1 if mode == "L" else 0)
        if mode == "L":
            assert (result[..., 0] == result[..., 2]).all()
    with pytest.raises(ValueError, match="CMYK"):
        transforms._jpegcrop.crop_resize(data, 8, 0.0, 0.0, 100.0, 100.0, 32, 32)


def test_mpo_first_frame_goes_through_the_extension(photo):
    out = io.BytesIO()
    first, second = PIL.Image.fromarray(photo), PIL.Image.fromarray(photo[::-1].copy())
    first.save(out, "MPO", save_all=True, append_images=[second], quality=90)
    data = out.getvalue()
    image = transforms.open_image(data)
    assert image.format == "MPO"
    result = transforms.crop_resize(image, (50, 20, 400, 340), (224, 224), data)
    expected = transforms.pillow_crop_resize(transforms.open_image(data), (50, 20, 400, 340), (224, 224))
    assert np.abs(result.astype(int) - np.asarray(expected)).max() <= 1


def test_threads_decode_concurrently_with_the_same_results(photo):
    from concurrent.futures import ThreadPoolExecutor

    data = encode(photo, quality=90)
    boxes = [transforms.inception_box(500, 375, np.random.default_rng(s)) for s in range(16)]
    one = [transforms._jpegcrop.crop_resize(data, 8, *map(float, b), 224, 224) for b in boxes]
    with ThreadPoolExecutor(4) as pool:  # the GIL is released while decoding
        many = list(pool.map(lambda b: transforms._jpegcrop.crop_resize(data, 8, *map(float, b), 224, 224), boxes))
    assert many == one
