"""Image gradients for HOG and SIFT: centred [-1, 0, 1] differences (zero on the border, as in
Dalal-Triggs and scikit-image); on colour images each pixel keeps the channel with the largest
gradient magnitude (the "locally dominant colour channel" of Dalal-Triggs)."""
import jax.numpy as jnp
import numpy as np


def gradients(images):
    """NHWC images -> (magnitude, angle) [N, H, W]; angle = atan2(dy, dx) in (-pi, pi], y down."""
    x = images.astype(jnp.float32)
    gy = jnp.zeros_like(x).at[:, 1:-1].set(x[:, 2:] - x[:, :-2])
    gx = jnp.zeros_like(x).at[:, :, 1:-1].set(x[:, :, 2:] - x[:, :, :-2])
    mag = jnp.hypot(gy, gx)
    if x.shape[-1] > 1:
        best = jnp.argmax(mag, axis=-1)[..., None]
        gy, gx, mag = (jnp.take_along_axis(g, best, axis=-1) for g in (gy, gx, mag))
    return mag[..., 0], atan2(gy[..., 0], gx[..., 0])


def atan2(y, x):
    """Elementwise atan2 from arithmetic only (Cephes atanf polynomial, ~1 ulp): XLA's CPU
    atan2 is a scalar call and was 30x slower than the rest of HOG together."""
    ax, ay = jnp.abs(x), jnp.abs(y)
    a = jnp.minimum(ax, ay) / jnp.maximum(jnp.maximum(ax, ay), 1e-30)  # in [0, 1]
    big = a > 0.41421356  # tan(pi / 8): reduce to |a| <= tan(pi / 8)
    a = jnp.where(big, (a - 1.0) / (a + 1.0), a)
    z = a * a
    r = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * a + a
    r = jnp.where(big, r + np.pi / 4, r)
    r = jnp.where(ay > ax, np.pi / 2 - r, r)
    r = jnp.where(x < 0, np.pi - r, r)
    return jnp.where(jnp.signbit(y), -r, r)


def orientation_maps(mag, angle, bins: int, period: float, soft: bool):
    """Per-bin gradient-magnitude maps [bins, ...] for angles folded into [0, period).

    Hard: each pixel votes its magnitude into bin floor(angle / width) (scikit-image). Soft:
    linear interpolation between the two nearest bin centres, wrapping around the period
    (Dalal-Triggs, Lowe's SIFT). Dense maps (not scatter) keep this vectorised on CPU and GPU.
    """
    a = jnp.mod(angle, period) * (bins / period)
    a = jnp.where(a >= bins, a - bins, a)  # mod can round up to the period itself
    centre = jnp.arange(bins, dtype=jnp.float32).reshape((bins,) + (1,) * a.ndim)
    if soft:
        d = jnp.abs(a[None] - (centre + 0.5))
        weight = jnp.maximum(0.0, 1.0 - jnp.minimum(d, bins - d))
    else:
        weight = (jnp.floor(a)[None] == centre).astype(jnp.float32)
    return mag[None] * weight
