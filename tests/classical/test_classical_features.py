"""Feature extractors vs slow, obvious numpy references (and scikit-image where it defines the
same thing)."""
import numpy as np
import pytest

from jaxnet.classical import colour, hog, lbp, sift

RNG = np.random.default_rng(0)


def _gradients(img):
    """[-1, 0, 1] gradients, zero on the border; colour: the channel with the largest magnitude."""
    gy, gx = np.zeros_like(img), np.zeros_like(img)
    gy[1:-1] = img[2:] - img[:-2]
    gx[:, 1:-1] = img[:, 2:] - img[:, :-2]
    mag = np.hypot(gy, gx)
    c = np.argmax(mag, axis=-1)[..., None]
    pick = lambda a: np.take_along_axis(a, c, -1)[..., 0]  # noqa: E731
    return pick(mag), np.arctan2(pick(gy), pick(gx))


def _orientation_votes(angle, bins, period, soft):
    a = angle % period
    if not soft:
        return [(min(int(a * bins / period), bins - 1), 1.0)]
    pos = a * bins / period - 0.5
    lo = int(np.floor(pos))
    return [(lo % bins, 1 - (pos - lo)), ((lo + 1) % bins, pos - lo)]


def _weight(p, start, size, kind):
    if kind == "box":
        return float(start <= p < start + size)
    return max(0.0, 1 - abs(p - (start + (size - 1) / 2)) / size)


def _l2_hys(v, clip=0.2, eps=1e-5):
    v = v / np.sqrt(np.sum(v**2) + eps**2)
    v = np.minimum(v, clip)
    return v / np.sqrt(np.sum(v**2) + eps**2)


def ref_hog(img, cell, block, bins, soft, spatial):
    h, w, _ = img.shape
    mag, ang = _gradients(img.astype(np.float64))
    ny, nx = h // cell, w // cell
    cells = np.zeros((ny, nx, bins))
    for y in range(h):
        for x in range(w):
            for cy in range(ny):
                for cx in range(nx):
                    s = _weight(y, cy * cell, cell, spatial) * _weight(x, cx * cell, cell, spatial)
                    for b, wo in _orientation_votes(ang[y, x], bins, np.pi, soft):
                        cells[cy, cx, b] += s * wo * mag[y, x]
    cells /= cell * cell
    return np.concatenate([
        _l2_hys(cells[by : by + block, bx : bx + block].ravel())
        for by in range(ny - block + 1) for bx in range(nx - block + 1)
    ])


@pytest.mark.parametrize("soft,spatial,channels", [(False, "box", 1), (True, "bilinear", 1), (True, "box", 3)])
def test_hog_matches_reference(soft, spatial, channels):
    x = RNG.random((2, 13, 11, channels), dtype=np.float32)
    got = np.asarray(hog.hog(x, cell=4, block=2, bins=9, soft=soft, spatial=spatial))
    want = np.stack([ref_hog(im, 4, 2, 9, soft, spatial) for im in x])
    assert got.shape == (2, hog.hog_dim(13, 11, cell=4, block=2)) == (2, 2 * 1 * 4 * 9)
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_hog_matches_scikit_image(channels):
    import skimage.feature as feature
    x = RNG.random((2, 24, 20, channels), dtype=np.float32)
    got = np.asarray(hog.hog(x, cell=4, block=3))
    want = np.stack([
        feature.hog(im if channels == 3 else im[..., 0], orientations=9, pixels_per_cell=(4, 4),
                    cells_per_block=(3, 3), block_norm="L2-Hys", channel_axis=-1 if channels == 3 else None)
        for im in x
    ])
    np.testing.assert_allclose(got, want, atol=1e-6)


def ref_lbp_labels(img, p=8, r=1.0):
    h, w = img.shape
    pad = np.pad(img.astype(np.float64), 2)
    out = np.zeros((h, w), int)
    for y in range(h):
        for x in range(w):
            bits = []
            for i in range(p):
                dy = round(-r * np.sin(2 * np.pi * i / p), 5)
                dx = round(r * np.cos(2 * np.pi * i / p), 5)
                yy, xx = y + dy + 2, x + dx + 2
                y0, x0 = int(np.floor(yy)), int(np.floor(xx))
                fy, fx = yy - y0, xx - x0
                v = ((1 - fy) * ((1 - fx) * pad[y0, x0] + fx * pad[y0, x0 + 1])
                     + fy * ((1 - fx) * pad[y0 + 1, x0] + fx * pad[y0 + 1, x0 + 1]))
                bits.append(int(v >= img[y, x]))
            changes = sum(bits[i] != bits[(i + 1) % p] for i in range(p))
            ones = sum(bits)
            if changes > 2:
                out[y, x] = p * (p - 1) + 2
            elif ones in (0, p):
                out[y, x] = 0 if ones == 0 else p * (p - 1) + 1
            else:
                start = [i for i in range(p) if bits[i] and not bits[i - 1]][0]
                out[y, x] = 1 + (ones - 1) * p + (p - start) % p
    return out


def test_lbp_labels_match_reference_and_scikit_image():
    x = RNG.integers(0, 256, (2, 9, 10, 1)).astype(np.uint8)
    x[0, 3:6, 3:6] = 7  # flat patch: ties (>=) and uniform codes
    got = np.asarray(lbp.lbp_labels(x))
    want = np.stack([ref_lbp_labels(im[..., 0]) for im in x])
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) <= set(range(59)) and 0 in got and 58 in got
    import skimage.feature as feature
    sk = np.stack([feature.local_binary_pattern(im[..., 0], 8, 1, method="nri_uniform") for im in x])
    np.testing.assert_array_equal(got, sk)


def test_lbp_table_has_59_labels():
    table = lbp.uniform_label_table(8)
    assert lbp.num_labels(8) == 59 and sorted(set(table)) == list(range(59))
    assert np.sum(table == 58) == 256 - 58  # 58 uniform codes, the rest share one label


def test_lbp_histograms():
    x = RNG.integers(0, 256, (3, 14, 21, 1)).astype(np.uint8)
    got = np.asarray(lbp.lbp(x, cell=7)).reshape(3, 2, 3, 59)
    labels = np.stack([ref_lbp_labels(im[..., 0]) for im in x])
    for n in range(3):
        for cy in range(2):
            for cx in range(3):
                block = labels[n, cy * 7 : cy * 7 + 7, cx * 7 : cx * 7 + 7]
                np.testing.assert_allclose(got[n, cy, cx], np.bincount(block.ravel(), minlength=59) / 49, atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


def ref_dsift(img, bin_size, step):
    h, w, _ = img.shape
    mag, ang = _gradients(img.astype(np.float64))
    out = []
    for y0 in range(0, h - 4 * bin_size + 1, step):
        for x0 in range(0, w - 4 * bin_size + 1, step):
            d = np.zeros((4, 4, 8))
            for i in range(4):
                for j in range(4):
                    for y in range(h):
                        for x in range(w):
                            s = (_weight(y, y0 + i * bin_size, bin_size, "bilinear")
                                 * _weight(x, x0 + j * bin_size, bin_size, "bilinear"))
                            for b, wo in _orientation_votes(ang[y, x], 8, 2 * np.pi, True):
                                d[i, j, b] += s * wo * mag[y, x]
            out.append(_l2_hys(d.ravel()))
    return np.stack(out)


def test_dsift_matches_reference():
    x = RNG.random((2, 14, 13, 1), dtype=np.float32)
    got = np.asarray(sift.dsift(x, bin_sizes=(2, 3), step=3))
    want = np.stack([np.concatenate([ref_dsift(im, 2, 3), ref_dsift(im, 3, 3)]) for im in x])
    assert got.shape == (2, 3 * 2 + 1, 128)  # 3 x 2 descriptors of 8 px, one of 12 px
    np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, atol=1e-5)
    pos = sift.dsift_positions(14, 13, bin_sizes=(2, 3), step=3)
    np.testing.assert_allclose(pos[[0, 1, 2, 6]], [[3.5 / 14, 3.5 / 13], [3.5 / 14, 6.5 / 13], [6.5 / 14, 3.5 / 13], [5.5 / 14, 5.5 / 13]])


def test_colour_stats_match_reference():
    x = RNG.random((2, 10, 9, 3), dtype=np.float32)
    got = np.asarray(colour.colour_stats(x, bin_sizes=(2,), step=1))
    assert got.shape == (2, 3 * 2, 4 * 4 * 3 * 2)
    for n in range(2):
        k = 0
        for y0 in range(3):
            for x0 in range(2):
                patch = x[n, y0 : y0 + 8, x0 : x0 + 8].reshape(4, 2, 4, 2, 3).transpose(0, 2, 1, 3, 4).reshape(4, 4, 4, 3)
                want = np.stack([patch.mean(2), patch.std(2)], -1)
                np.testing.assert_allclose(got[n, k], want.ravel(), atol=2e-5)
                k += 1


@pytest.mark.parametrize("bad,match", [
    (np.zeros((4, 8, 8)), "NHWC"),
    (np.zeros((1, 8, 8, 2)), "NHWC"),
    (np.zeros((0, 8, 8, 1)), "empty"),
    (np.full((1, 16, 16, 1), np.nan, np.float32), "NaN"),
])
def test_bad_images(bad, match):
    for fn in (hog.hog, lbp.lbp, sift.dsift, colour.colour_stats):
        with pytest.raises(ValueError, match=match):
            fn(bad)


def test_too_small_images():
    x = np.zeros((1, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="fewer than 2 cells"):
        hog.hog(x, cell=8)
    with pytest.raises(ValueError, match="does not fit"):
        sift.dsift(x, bin_sizes=(4,))
    with pytest.raises(ValueError, match="cell size"):
        lbp.lbp(x, cell=9)
