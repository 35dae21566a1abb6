"""Input validation shared by the classical pipeline: shape, dtype and NaN checks that raise
ValueError with a message saying what was expected, before anything is traced or fitted."""
import jax
import jax.numpy as jnp
import numpy as np


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


@jax.jit
def _any_nonfinite(x):
    """x * 0 is NaN exactly where x is NaN or inf: one fused pass, no temporary of x's size."""
    return jnp.isnan(jnp.sum(x * 0))


def check_finite(x, name: str) -> None:
    """Raise if a concrete float array holds NaN or inf (tracers are skipped: checked by callers)."""
    if _is_concrete(x) and jnp.issubdtype(x.dtype, jnp.inexact):
        if isinstance(x, np.ndarray):  # no device round trip
            bad = int(x.size - np.isfinite(x).sum())
        else:  # counted only when there is something to count
            bad = int(jnp.sum(~jnp.isfinite(x))) if _any_nonfinite(x) else 0
        if bad:
            raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")


def check_images(images, name: str = "images"):
    """Images must be NHWC with 1 or 3 channels; returns them as a jax array."""
    images = images if isinstance(images, (jax.Array, np.ndarray)) else np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name} must be NHWC with 1 (grey) or 3 (RGB) channels, got shape {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (batch size 0)")
    check_finite(images, name)
    return jnp.asarray(images)


def check_matrix(x, name: str, *, min_rows: int = 1):
    """A finite 2-D float array [n, d] with at least `min_rows` rows."""
    x = x if isinstance(x, (jax.Array, np.ndarray)) else np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [examples, features], got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {x.shape[0]}")
    check_finite(x, name)
    return jnp.asarray(x)


def check_labels(labels, n: int, num_classes=None):
    """Integer labels [n] in [0, num_classes) with every class present; returns (labels, num_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must be 1-D with one entry per example ({n}), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    if num_classes < 2:
        raise ValueError(f"an SVM needs at least 2 classes, got {num_classes}")
    counts = np.bincount(labels, minlength=num_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(f"class(es) {missing.tolist()} have no examples; every class needs at least one")
    return labels.astype(np.int32), num_classes
