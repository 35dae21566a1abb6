"""Spatial pyramid regions (Lazebnik et al. 2006): pooling descriptors over the whole image and
over finer grids keeps coarse layout. The ILSVRC 2011 winner used 1x1 + 2x2 + 3x1 (three
horizontal stripes)."""
import numpy as np

DEFAULT_LEVELS = ((1, 1), (2, 2), (3, 1))


def pyramid_regions(positions, levels=DEFAULT_LEVELS) -> np.ndarray:
    """0/1 membership [M, R] of descriptors at positions [M, 2] ((y, x) fractions in [0, 1)) in
    the R = sum(rows * cols) regions of the pyramid, level by level, row-major within a level."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(f"positions must be [M, 2] (y, x) fractions, got shape {positions.shape}")
    cols = []
    for rows, ncols in levels:
        if rows < 1 or ncols < 1:
            raise ValueError(f"pyramid level {(rows, ncols)} must have positive rows and columns")
        ry = np.clip(np.floor(positions[:, 0] * rows), 0, rows - 1).astype(int)
        rx = np.clip(np.floor(positions[:, 1] * ncols), 0, ncols - 1).astype(int)
        region = ry * ncols + rx
        cols.append(region[:, None] == np.arange(rows * ncols)[None, :])
    return np.concatenate(cols, axis=1).astype(np.float32)
