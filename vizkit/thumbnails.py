"""Thumbnails laid out on a grid at their 2-D embedding positions (notebook 02's t-SNE picture)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["embedding_grid", "snap_to_grid"]


def snap_to_grid(coords: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Assign N <= rows*cols 2-D points to distinct grid cells, keeping neighbours together.

    Solves the assignment that minimises the total squared distance between each point
    (scaled to the unit square) and its cell centre. Returns (N, 2) integer (row, col).
    """
    from scipy.optimize import linear_sum_assignment

    if len(coords) > rows * cols:
        raise ValueError(f"{len(coords)} points do not fit a {rows} x {cols} grid")
    c = np.asarray(coords, np.float64)
    c = (c - c.min(0)) / np.where(np.ptp(c, 0) > 0, np.ptp(c, 0), 1)
    gy, gx = np.mgrid[0:rows, 0:cols]
    cells = np.stack([gx.ravel() / max(cols - 1, 1), 1 - gy.ravel() / max(rows - 1, 1)], 1)
    cost = ((c[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
    point, cell = linear_sum_assignment(cost)
    out = np.empty((len(c), 2), int)
    out[point] = np.stack([cell // cols, cell % cols], 1)
    return out


def embedding_grid(
    images: Sequence[np.ndarray], coords: np.ndarray, rows: int, cols: int, thumb: int = 48
) -> np.ndarray:
    """Thumbnails placed on a grid at their 2-D embedding positions (Karpathy's t-SNE picture).

    images: N HxWx3 uint8; coords: (N, 2), e.g. from t-SNE. Returns a (rows*thumb, cols*thumb, 3)
    uint8 canvas; empty cells stay white.
    """
    cells = snap_to_grid(coords, rows, cols)
    canvas = np.full((rows * thumb, cols * thumb, 3), 255, np.uint8)
    for img, (r, c) in zip(images, cells):
        small = np.asarray(Image.fromarray(np.asarray(img)).resize((thumb, thumb), Image.BILINEAR))
        canvas[r * thumb : (r + 1) * thumb, c * thumb : (c + 1) * thumb] = small
    return canvas
