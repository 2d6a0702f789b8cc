"""Painting-like style images, drawn here (no file, no download), for style transfer (notebooks 11, 12)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import settings
from .images import resize

__all__ = ["PAINTINGS", "painting"]

PAINTINGS = ("swirls", "mosaic", "circles")


def painting(name: str, size: int = 256, seed: int = 0) -> np.ndarray:
    """A painting-like style image drawn by vizkit: size x size x 3 uint8.

    'swirls': short curved brush strokes along a field of vortices, night blues and yellows (after
    van Gogh's swirling skies); 'mosaic': Voronoi cells of vivid colours with dark lead lines (after
    stained glass); 'circles': concentric rings in a grid of squares (after Kandinsky's colour study).
    """
    draw = {"swirls": _swirls, "mosaic": _mosaic, "circles": _circles}
    if name not in draw:
        raise KeyError(f"no painting named {name!r}; available: {', '.join(PAINTINGS)}")
    return draw[name](size, np.random.default_rng(settings.seed(seed)))


def _swirls(size: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import ImageDraw

    palette = np.array(
        [[18, 32, 84], [36, 70, 140], [70, 120, 190], [120, 170, 220], [230, 200, 80], [250, 235, 150]]
    )
    img = Image.new("RGB", (size, size), (25, 40, 95))
    pen = ImageDraw.Draw(img)
    centres = rng.uniform(0, size, (5, 2))
    spins = rng.choice([-1.0, 1.0], 5) * rng.uniform(0.5, 1.5, 5)

    def flow(p: np.ndarray) -> np.ndarray:
        d = p[None] - centres  # (5, 2)
        r2 = (d**2).sum(1, keepdims=True) + (size / 8) ** 2
        v = size * (spins[:, None] * np.stack([-d[:, 1], d[:, 0]], 1) / r2).sum(0) + np.array([0.3, 0.05])
        return v / (np.linalg.norm(v) + 1e-9)

    for _ in range(size * 12):
        p = rng.uniform(0, size, 2)
        bright = np.exp(
            -((p - centres[:2]) ** 2).sum(1).min() / (2 * (size / 10) ** 2)
        )  # glowing near two centres
        k = min(len(palette) - 1, int(rng.integers(0, 4) + 3 * bright + rng.random() * 1.2))
        colour = tuple(int(c) for c in np.clip(palette[k] + rng.normal(0, 12, 3), 0, 255))
        points = [tuple(p)]
        for _ in range(int(rng.integers(4, 9))):
            p = p + flow(p) * size / 64
            points.append(tuple(p))
        pen.line(points, fill=colour, width=max(2, size // 64))
    return np.asarray(img)


def _mosaic(size: int, rng: np.random.Generator) -> np.ndarray:
    palette = np.array(
        [[200, 30, 40], [240, 170, 30], [30, 90, 170], [40, 140, 80], [120, 50, 140], [235, 225, 200]]
    )
    seeds = rng.uniform(0, size, (size // 8, 2))
    yy, xx = np.mgrid[:size, :size]
    d = np.sqrt((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2)  # (H, W, cells)
    two = np.sort(d, axis=-1)[..., :2]
    cell = d.argmin(-1)
    colours = palette[rng.integers(len(palette), size=len(seeds))] + rng.normal(0, 15, (len(seeds), 3))
    img = colours[cell] * (0.85 + 0.15 * rng.random((size, size, 1)))
    img[two[..., 1] - two[..., 0] < max(1.5, size / 100)] = (25, 20, 20)  # lead lines
    return np.clip(img, 0, 255).astype(np.uint8)


def _circles(size: int, rng: np.random.Generator) -> np.ndarray:
    palette = np.array(
        [
            [230, 60, 50],
            [250, 200, 40],
            [40, 80, 170],
            [30, 150, 110],
            [240, 130, 40],
            [120, 60, 150],
            [245, 240, 225],
            [30, 30, 40],
        ]
    )
    n = 4
    cell = max(1, size // n)
    img = np.zeros((n * cell, n * cell, 3))
    yy, xx = np.mgrid[:cell, :cell]
    r = np.sqrt((yy - cell / 2 + 0.5) ** 2 + (xx - cell / 2 + 0.5) ** 2) / (cell / 2)
    for i in range(n):
        for j in range(n):
            rings = rng.integers(len(palette), size=6)
            ring = np.minimum((r * (3 + rng.random()) * 1.6).astype(int), 5)
            tile = palette[rings[ring]] + rng.normal(0, 8, (cell, cell, 3))
            img[i * cell : (i + 1) * cell, j * cell : (j + 1) * cell] = tile
    return resize(np.clip(img, 0, 255).astype(np.uint8), (size, size))
