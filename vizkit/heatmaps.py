"""Colour scales for maps that say what they are: kinds (positive, signed, probability), ranges
(clipped at a percentile, shared by compared panels), overlays whose opacity follows the value, and
gradients as pictures. vizkit.plot draws its heat-map figures with these."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.cm
import matplotlib.colors
import numpy as np
import torch

from .images import resize_map

# fmt: off
__all__ = [
    "CMAPS", "KINDS", "ArrayLike", "as_numpy", "gradient_image", "heat_range", "map_style", "occlusion_drop", "overlay",
    "shared_range", "single", "diverging", "SCALES", "scaled", "scale_bar", "unbatched",
]
# fmt: on

ArrayLike = np.ndarray | torch.Tensor


def as_numpy(a: ArrayLike) -> np.ndarray:
    """A tensor (detached, float, on the CPU) or array-like as a NumPy array."""
    return a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def single(a: ArrayLike, ndim: int) -> np.ndarray:
    """a as NumPy with `ndim` axes: a leading batch axis of one (a method's result for one image) is dropped."""
    a = as_numpy(a)
    if a.ndim == ndim + 1 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != ndim:
        raise ValueError(f"expected one {ndim}-d array (or a batch of one), got shape {a.shape}")
    return a


def unbatched(a: ArrayLike) -> np.ndarray:
    """A picture (HxWx3 or HxW) or map as NumPy; a leading batch of one ((1, H, W, 3) or (1, H, W)) is dropped."""
    a = as_numpy(a)
    return a[0] if a.ndim in (3, 4) and a.shape[0] == 1 and (a.ndim == 4 or a.shape[-1] != 3) else a


KINDS = ("positive", "signed", "drop", "probability")  # a drop (p0 - P) is signed: red = the score fell
CMAPS = {"positive": "inferno", "signed": "RdBu_r", "drop": "RdBu_r", "probability": "viridis"}


def diverging(kind: str, center: float | None) -> bool:
    """Whether a map of this kind is drawn on a diverging scale: signed maps and drops always, a
    probability when it is compared with a `center` (e.g. the unoccluded probability)."""
    return kind in ("signed", "drop") or (kind == "probability" and center is not None)


def heat_range(
    heat: ArrayLike, kind: str = "positive", center: float | None = None, clip: float | None = None
) -> tuple[float, float]:
    """Colour limits (lo, hi) for a map of one kind.

    kind="positive": from 0 to the map's maximum (evidence starts at zero, whatever the map's minimum);
    "signed" (and "drop", p0 - P): symmetric about `center` (default 0), out to the largest |heat - center|;
    "probability": 0 to 1, or symmetric about `center` (e.g. the unoccluded probability) when given.
    clip: a percentile (e.g. 99) of |heat - center| used instead of the maximum, so that a few
    extreme pixels do not wash out the rest.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    h = as_numpy(heat).astype(np.float64)
    if kind == "probability" and center is None:
        return 0.0, 1.0
    c = 0.0 if center is None else float(center)
    spread = np.abs(h - c) if kind != "positive" else np.maximum(h, 0)
    top = float(np.percentile(spread, clip)) if clip is not None else float(spread.max())
    top = top if top > 0 else 1.0
    return (0.0, top) if kind == "positive" else (c - top, c + top)


def shared_range(
    maps: Sequence[ArrayLike], kind: str = "positive", center: float | None = None, clip: float | None = None
) -> tuple[float, float]:
    """One colour range for panels that are compared: the widest of their heat_range()s."""
    ranges = [heat_range(m, kind, center, clip) for m in maps]
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


SCALES = {  # how panels of maps share colours, and what their colour bar then says
    "shared": "",  # one range over every map (heat_range of the kind): values compare across panels
    "each": "each map from 0 to its own maximum",
    "percentile": "each map from its minimum (0) to its 99.5th percentile (1)",  # signed: -1 to 1 about 0
}


def scaled(
    maps: Sequence[ArrayLike], kind: str = "positive", scale: str = "shared"
) -> tuple[list, float, float]:
    """Maps put on one colour scale, with its limits (lo, hi): "shared" keeps them as they are (the
    widest heat_range of the kind); "each" divides each by its largest |value| (0..1, or -1..1 for a
    diverging kind); "percentile" takes each from its minimum (0) to its 99.5th percentile (1), clipped
    (a diverging kind: each divided by its 99.5th percentile of |value|, -1 to 1, so that 0 stays 0):
    for maps in different units (notebook 13's fourteen methods)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    maps = [as_numpy(m).astype(np.float64) for m in maps]
    if scale == "shared":
        return maps, *shared_range(maps, kind)
    if scale == "each":
        maps = [m / max(float(np.abs(m).max()), 1e-12) for m in maps]
        return maps, (-1.0 if diverging(kind, None) else 0.0), 1.0
    if diverging(kind, None):  # signed maps keep their zero: symmetric, -1 to 1
        tops = [max(float(np.percentile(np.abs(m), 99.5)), 1e-12) for m in maps]
        return [np.clip(m / top, -1, 1) for m, top in zip(maps, tops)], -1.0, 1.0
    tops = [(m.min(), np.percentile(m, 99.5)) for m in maps]
    return [np.clip((m - lo) / max(top - lo, 1e-12), 0, 1) for m, (lo, top) in zip(maps, tops)], 0.0, 1.0


def scale_bar(fig, axes, lo: float, hi: float, kind: str = "positive", scale: str = "shared",
              label: str = "") -> None:  # fmt: skip
    """One colour bar for panels of maps drawn on one scale (heatmaps.scaled): the kind's colours from lo
    to hi, labelled with `label` and what the scale policy did to the maps."""
    why = SCALES[scale]
    text = f"{label}: {why}" if label and why else label or why
    cmap = CMAPS["signed"] if diverging(kind, None) else CMAPS[kind]
    fig.colorbar(
        matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(lo, hi), cmap),
        ax=axes,
        shrink=0.5 if why else 0.6,
        label=text,
    )


def overlay(
    img: ArrayLike,
    heatmap: ArrayLike,
    alpha: float = 0.75,
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
    center: float | None = None,
    grey: bool = True,
) -> np.ndarray:
    """A heatmap (h, w; resized bilinearly to the image) over an HxWx3 image -> HxWx3 in [0, 1].

    The opacity follows the value: alpha where the map reaches its limit, 0 where there is no evidence
    (at vmin, or at `center` for a signed map), so the photo shows through where the map says nothing.
    grey: the photo under the map is a greyscale copy, so that warm maps stay visible on warm photos (an
    orange cat, a red cup); draw the photo itself beside the map where its colours matter.
    """
    img = single(img, 3)
    img = img / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    if grey:
        img = np.repeat(img @ np.array([0.299, 0.587, 0.114])[:, None], 3, axis=-1)  # luminance
    heat = resize_map(single(heatmap, 2), img.shape[:2])
    lo = float(heat.min()) if vmin is None else vmin
    hi = float(heat.max()) if vmax is None else vmax
    t = np.clip((heat - lo) / max(hi - lo, 1e-12), 0, 1)
    colours = matplotlib.colormaps[cmap](t)[..., :3]
    strength = t if center is None else np.clip(np.abs(heat - center) / max(hi - center, 1e-12), 0, 1)
    weight = alpha * strength[..., None]
    return (1 - weight) * img + weight * colours


def occlusion_drop(grid: ArrayLike, p0: float, size: int, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """Occlusion as a picture-sized map of the drop p0 - P: each window's drop over the stride x stride cell
    at its centre (the window's own square overlaps its neighbours'), 0 where no window is centred.

    grid: (rows, cols) of P(class) with the window at each position (vizkit.occlusion); shape: (H, W)."""
    drop = p0 - single(grid, 2)
    h, w = shape
    canvas = np.zeros((h + 2 * stride, w + 2 * stride))  # a margin for cells that start outside
    y0 = stride + size // 2 - stride // 2
    cells = np.kron(drop, np.ones((stride, stride)))[: canvas.shape[0] - y0, : canvas.shape[1] - y0]
    canvas[y0 : y0 + cells.shape[0], y0 : y0 + cells.shape[1]] = cells
    return canvas[stride : stride + h, stride : stride + w]


def map_style(
    heat: np.ndarray,
    kind: str,
    center: float | None,
    clip: float | None,
    vmin: float | None,
    vmax: float | None,
    cmap: str | None,
    label: str,
) -> tuple[float, float, str, str]:
    """(lo, hi, colormap, colour-bar label) of a map drawn as `kind` (see heat_range)."""
    lo, hi = heat_range(heat, kind, center, clip)
    lo, hi = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
    cmap = cmap or (CMAPS["signed"] if diverging(kind, center) else CMAPS[kind])
    if clip is not None:
        # two lines: a colour bar is only one panel high
        label = f"{label}\n(clipped at the {clip:g}th percentile)".strip()
    return lo, hi, cmap, label


def gradient_image(grad: ArrayLike, percentile: float = 99.5) -> np.ndarray:
    """An input-shaped gradient (3, H, W, or a batch of one) as an HxWx3 picture: 0 is grey, +-the given percentile of
    |grad| is white/black per colour (the usual way to show guided backprop and deconvnet)."""
    g = single(grad, 3).astype(np.float64)
    if g.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) gradient, got shape {g.shape}")
    scale = np.percentile(np.abs(g), percentile) or 1.0
    return np.clip(0.5 + 0.5 * g.transpose(1, 2, 0) / scale, 0, 1)
