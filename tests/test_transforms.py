"""Per-example image transforms: output shape/dtype/range, each paper's crop geometry, PCA
lighting's formula, the Pillow decoding path (reduced-size JPEG decoding; the C path is tested in
test_jpeg_decode.py), determinism."""
import io

import numpy as np
import PIL.Image
import pytest

from jaxnet.data import transforms
from jaxnet.data.transforms import EvalTransform, TrainTransform


def jpeg(pixels: np.ndarray, quality=95) -> bytes:
    out = io.BytesIO()
    PIL.Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def smooth_image(width, height, seed=0) -> np.ndarray:
    small = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), np.uint8)
    return np.asarray(PIL.Image.fromarray(small).resize((width, height), PIL.Image.BICUBIC))


@pytest.mark.parametrize("kind", transforms.TRAIN_TRANSFORMS)
def test_train_transforms_give_uint8_rgb_of_the_configured_size(kind):
    record = {"image": jpeg(smooth_image(64, 48)), "label": 7}
    transform = TrainTransform(kind, 32, scale_range=(36, 48), lighting=0.1)
    out = transform.random_map(record, np.random.default_rng(0))
    assert out["image"].shape == (32, 32, 3) and out["image"].dtype == np.uint8
    assert out["label"] == 7 and out["label"].dtype == np.int32
    assert 0 < out["image"].std() and out["image"].max() <= 255
    again = transform.random_map(record, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], again["image"])  # a function of the rng only
    other = transform.random_map(record, np.random.default_rng(1))
    assert (kind == "resize") == np.array_equal(out["image"], other["image"])


def test_inception_crop_covers_8_to_100_percent_with_aspect_3_4_to_4_3():
    rng = np.random.default_rng(0)
    boxes = np.array([transforms.inception_box(500, 375, rng) for _ in range(2000)])
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area, aspect = w * h / (500 * 375), w / h
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 500).all() and (boxes[:, 3] <= 375).all()
    assert area.min() >= 0.08 - 0.01 and area.max() <= 1.0
    assert aspect.min() >= 0.75 - 0.02 and aspect.max() <= 4 / 3 + 0.02
    # E[U(0.08, 1)] = 0.54, less the large crops that do not fit and are redrawn:
    # torchvision's RandomResizedCrop.get_params averages 0.435 on a 500x375 image (4000 draws)
    assert 0.41 < area.mean() < 0.46


def test_resnet_scale_box_is_a_224_crop_of_the_image_at_its_random_scale():
    rng = np.random.default_rng(0)
    for shorter in (256, 480):
        left, top, right, bottom = transforms.scale_box(500, 375, 224, shorter, rng)
        factor = shorter / 375
        assert right - left == pytest.approx(224 / factor, rel=0.01)
        assert bottom - top == pytest.approx(224 / factor, rel=0.01)
        assert left >= 0 and top >= 0 and right <= 500 + 1e-6 and bottom <= 375 + 1e-6


def test_alexnet_box_lies_in_the_central_square():
    rng = np.random.default_rng(0)
    for _ in range(50):
        left, top, right, bottom = transforms.alexnet_box(500, 375, 224, rng)
        assert right - left == pytest.approx(224 * 375 / 256)
        assert 62.5 - 1e-6 <= left and right <= 437.5 + 1e-6 and 0 <= top and bottom <= 375 + 1e-6


def test_eval_transform_is_the_central_crop_after_resizing_the_shorter_side():
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left quarter red, right quarter blue, centre green
    pixels[:, 20:60] = (0, 255, 0)
    pixels[:, 60:] = (0, 0, 255)
    out = EvalTransform(16, 18).map({"image": jpeg(pixels), "label": 1})["image"]
    assert out.shape == (16, 16, 3)
    assert out[..., 1].min() > 200 and out[..., [0, 2]].max() < 60  # only the green centre
    whole = EvalTransform(16, 0).map({"image": jpeg(pixels), "label": 1})["image"]
    assert whole[:, 0, 0].min() > 200 and whole[:, -1, 2].min() > 200  # resize 0: whole image


def test_pca_lighting_adds_eigvec_times_alpha_eigval():
    image = np.full((4, 4, 3), 128, np.uint8)
    out = transforms.pca_lighting(image, np.array([1.0, 0.0, 0.0]))
    # 255 * 0.2175 * (-0.5675, -0.5808, -0.5836) = (-31.48, -32.21, -32.37)
    np.testing.assert_array_equal(out[0, 0], [97, 96, 96])
    alpha = np.array([0.3, -1.2, 2.0])
    expected = 128 + 255 * transforms.PCA_EIGVEC @ (alpha * transforms.PCA_EIGVAL)
    np.testing.assert_array_equal(transforms.pca_lighting(image, alpha)[2, 3], np.rint(expected))
    np.testing.assert_array_equal(transforms.pca_lighting(np.full((1, 1, 3), 250, np.uint8),
                                                          np.array([-5.0, 0, 0]))[0, 0], 255)


def test_alexnet_lighting_draws_alpha_with_the_configured_std():
    record = {"image": jpeg(smooth_image(64, 48)), "label": 0}
    plain = TrainTransform("alexnet", 32, lighting=0.0).random_map(record, np.random.default_rng(3))
    lit = TrainTransform("alexnet", 32, lighting=0.1).random_map(record, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # replay the draws: crop offsets, flip, then alpha
    rng.integers(0, 256 - 32 + 1), rng.integers(0, 256 - 32 + 1), rng.random()
    alpha = rng.normal(0.0, 0.1, 3)
    np.testing.assert_array_equal(lit["image"], transforms.pca_lighting(plain["image"], alpha))


def test_colour_jitter_zero_is_identity_and_positive_changes_colours():
    image = PIL.Image.fromarray(smooth_image(32, 32))
    same = transforms.color_jitter(image, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(np.asarray(same), np.asarray(image))
    changed = np.asarray(transforms.color_jitter(image, 0.4, np.random.default_rng(0)))
    assert changed.dtype == np.uint8 and np.abs(changed.astype(int) - np.asarray(image)).mean() > 2


def test_flip_happens_about_half_the_time():
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[:, :8] = 255  # a white band on the left
    record = {"image": jpeg(pixels), "label": 0}
    transform = TrainTransform("resnet_scale", 32, scale_range=(32, 32))
    left_white = [transform.random_map(record, np.random.default_rng(s))["image"][:, 0].mean() > 128
                  for s in range(40)]
    assert 10 < sum(left_white) < 30


def test_pillow_path_reduced_jpeg_decoding_is_used_and_matches_full_decoding():
    pixels = smooth_image(800, 600)
    image = transforms.open_image(jpeg(pixels))
    out = transforms.pillow_crop_resize(image, (0, 0, 800, 600), (64, 48))
    assert image.size[0] == 100  # decoded at 1/8 scale: the crop still covers 64 x 48
    full = PIL.Image.fromarray(pixels).resize((64, 48), PIL.Image.BILINEAR)
    assert np.abs(np.asarray(out, np.float32) - np.asarray(full)).mean() < 3
    image = transforms.open_image(jpeg(pixels))
    transforms.pillow_crop_resize(image, (100, 100, 400, 400), (224, 224))
    assert image.size[0] == 800  # a 300 px crop to 224 px: no reduction allowed


def test_greyscale_cmyk_and_png_inputs_decode_to_rgb():
    pixels = smooth_image(40, 30)
    for mode, fmt in (("L", "JPEG"), ("CMYK", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG")):
        out = io.BytesIO()
        PIL.Image.fromarray(pixels).convert(mode).save(out, fmt)
        result = EvalTransform(16, 18).map({"image": out.getvalue(), "label": 0})["image"]
        assert result.shape == (16, 16, 3) and result.dtype == np.uint8, mode


def test_pillow_path_decoding_stops_below_the_crop_with_exactly_the_full_decode_result():
    data = jpeg(smooth_image(300, 200))
    full = PIL.Image.open(io.BytesIO(data)).convert("RGB")
    for box, size in (((10, 20, 210, 120), (64, 64)), ((50, 0, 250, 199), (224, 224)),
                      ((0, 100, 300, 200), (200, 90))):  # none allows a reduced decode
        image = transforms.open_image(data)
        out = transforms.pillow_crop_resize(image, box, size)
        if box[3] < 150:
            assert image.size[1] < 200  # fewer rows decoded
        np.testing.assert_array_equal(np.asarray(out), np.asarray(
            full.resize(size, PIL.Image.BILINEAR, box=box)))
