"""Image conversion: anything a learner might hold -> an RGB uint8 array, plus resize and crop."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ACCEPTED", "center_crop", "grey", "ImageLike", "resize", "resize_map", "to_rgb", "to_uint8"]

ImageLike = np.ndarray | Image.Image | str | PathLike

ACCEPTED = (
    "an HxWx3 RGB or HxWx4 RGBA array, an HxW grayscale array (uint8 in [0, 255] "
    "or float in [0, 1]), a PIL image, or a path to an image file"
)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float pixels (any shape, [0, 1], clipped) -> uint8, each rounded to the nearest k/255: the one
    float-to-8-bit conversion in vizkit."""
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def to_rgb(img: ImageLike) -> np.ndarray:
    """Convert img (see ACCEPTED) to an HxWx3 uint8 RGB array; grayscale is repeated, alpha dropped."""
    if isinstance(img, (str, PathLike)):
        path = Path(img)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        img = Image.open(path)
    if isinstance(img, Image.Image):
        return np.asarray(img.convert("RGB")).copy()
    if hasattr(img, "detach"):  # a torch tensor: say what to do instead of guessing its layout
        raise TypeError(
            "to_rgb takes images, not tensors; use model.deprocess(x) to turn a "
            f"model input back into an image. Accepted: {ACCEPTED}."
        )
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(
            f"got an array of shape {arr.shape}; expected {ACCEPTED}. "
            "A channels-first 3xHxW array needs arr.transpose(1, 2, 0)."
        )
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.min() < -1e-3 or arr.max() > 1 + 1e-3:
            raise ValueError(
                f"float images must lie in [0, 1]; got values in [{arr.min():.3g}, {arr.max():.3g}]"
            )
        return to_uint8(arr)
    if arr.dtype == bool or np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError(f"integer images must lie in [0, 255]; got [{arr.min()}, {arr.max()}]")
        return arr.astype(np.uint8) * (255 if arr.dtype == bool else 1)
    raise TypeError(f"unsupported dtype {arr.dtype}; expected {ACCEPTED}")


def resize(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an HxWx3 uint8 image: size an int (the shorter side, aspect kept) or (H, W)."""
    h, w = img.shape[:2]
    if isinstance(size, int):
        scale = size / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if tuple(size) == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BILINEAR))


def resize_map(heat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D map (h, w) resized bilinearly to `shape` (H, W), as float32; unchanged if already that size."""
    import torch
    import torch.nn.functional as F

    heat = np.asarray(heat, np.float32)
    if heat.shape == tuple(shape):
        return heat
    t = torch.from_numpy(np.ascontiguousarray(heat))[None, None]
    return F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False)[0, 0].numpy()


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central size x size square of an HxWx3 image (at least size on each side)."""
    h, w = img.shape[:2]
    if min(h, w) < size:
        raise ValueError(f"cannot crop {size} x {size} from a {h} x {w} image")
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]


def grey(img: ImageLike) -> np.ndarray:
    """A greyscale copy as HxWx3 uint8 (ITU-R 601 luma), for maps drawn over warm photos: the map's
    colours then stand out from the picture's."""
    rgb = to_rgb(img).astype(np.float64)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.round(luma).astype(np.uint8)[..., None], 3, -1)
