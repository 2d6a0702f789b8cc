"""Pictures: image grids, filter grids, heatmap overlays with colour bars, top-k bar charts.

Every function returns a matplotlib Figure (or an array) and never saves files."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import cm
from matplotlib.figure import Figure
from PIL import Image

from .images import resize_map

ArrayLike = np.ndarray | torch.Tensor


def _numpy(a: ArrayLike) -> np.ndarray:
    return a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def single(a: ArrayLike, ndim: int) -> np.ndarray:
    """a as NumPy with `ndim` axes: a leading batch axis of one (a method's result for one image) is dropped."""
    a = _numpy(a)
    if a.ndim == ndim + 1 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != ndim:
        raise ValueError(f"expected one {ndim}-d array (or a batch of one), got shape {a.shape}")
    return a


def single_prediction(predictions: Sequence) -> list[tuple[str, float]]:
    """(class, probability) pairs; model.predict's one-list batch for one image is unwrapped."""
    return (
        list(predictions[0])
        if len(predictions) == 1 and isinstance(predictions[0], list)
        else list(predictions)
    )


def _grid(n: int, ncols: int | None, size: float, extra_w: float = 0.0, aspect: float = 1.0):
    """n axes in a grid of cells `size` inches wide and size * aspect (height / width) high."""
    ncols = min(n, ncols or math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols + extra_w, size * aspect * nrows + 0.3 * nrows), squeeze=False
    )
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat[:n]


def show_images(
    images: Sequence[ArrayLike],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 2.5,
    suptitle: str | None = None,
    cmap: str = "gray",
) -> Figure:
    """A grid of images (each HxWx3 in [0, 1] or uint8, or HxW shown with `cmap`), titled.

    Cells are `size` inches wide and as high as the first image's aspect ratio asks."""
    first = _numpy(images[0]).shape if len(images) else (1, 1)
    fig, axes = _grid(len(images), ncols, size, aspect=first[0] / first[1])
    for i, (ax, img) in enumerate(zip(axes, images)):
        img = _numpy(img)
        ax.imshow(
            img,
            cmap=cmap if img.ndim == 2 else None,
            interpolation="nearest" if max(img.shape[:2]) < 64 else "antialiased",
        )
        ax.set_xticks([]), ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def filter_images(weights: ArrayLike, scale: str = "symmetric") -> np.ndarray:
    """Conv weights (O, C, kh, kw) -> O images (kh, kw, C) in [0, 1], each filter normalised alone.

    scale="symmetric" maps 0 to grey and the filter's largest |w| to black/white (signs readable);
    "minmax" stretches each filter from its minimum to its maximum (AlexNet-paper style).
    """
    w = _numpy(weights).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected conv weights of shape (out, in, kh, kw), got {w.shape}")
    w = w.transpose(0, 2, 3, 1)
    axes = (1, 2, 3)
    if scale == "symmetric":
        peak = np.abs(w).max(axis=axes, keepdims=True)
        return 0.5 + 0.5 * w / np.where(peak > 0, peak, 1)
    if scale == "minmax":
        lo, hi = w.min(axis=axes, keepdims=True), w.max(axis=axes, keepdims=True)
        return (w - lo) / np.where(hi > lo, hi - lo, 1)
    raise ValueError(f"scale must be 'symmetric' or 'minmax', got {scale!r}")


def show_filters(
    weights: ArrayLike,
    ncols: int = 8,
    size: float = 1.0,
    title: str | None = None,
    scale: str = "symmetric",
    channels: int = 8,
) -> Figure:
    """Filters as tiles: RGB when they see 3 input channels, else one grey tile per input channel.

    weights: (O, C, kh, kw). For C != 3 each row is one filter and shows its first `channels`
    input channels (the reason deep filters are hard to read: their inputs are not colours).
    """
    imgs = filter_images(weights, scale)
    if imgs.shape[-1] == 3:
        fig = show_images(list(imgs), ncols=ncols, size=size)
    else:
        c = min(channels, imgs.shape[-1])
        tiles = [imgs[o, :, :, i] for o in range(len(imgs)) for i in range(c)]
        fig = show_images(tiles, ncols=c, size=size)
        for ax, i in zip(fig.axes, range(c)):
            ax.set_title(f"in {i}", fontsize=8)
    if title:
        fig.suptitle(title)
        fig.tight_layout()
    return fig


KINDS = ("positive", "signed", "probability")
CMAPS = {"positive": "inferno", "signed": "RdBu_r", "probability": "viridis"}


def heat_range(
    heat: ArrayLike, kind: str = "positive", center: float | None = None, clip: float | None = None
) -> tuple[float, float]:
    """Colour limits (lo, hi) for a map of one kind.

    kind="positive": from 0 to the map's maximum (evidence starts at zero, whatever the map's minimum);
    "signed": symmetric about `center` (default 0), out to the largest |heat - center|;
    "probability": 0 to 1, or symmetric about `center` (e.g. the unoccluded probability) when given.
    clip: a percentile (e.g. 99) of |heat - center| used instead of the maximum, so that a few
    extreme pixels do not wash out the rest.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    h = _numpy(heat).astype(np.float64)
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


def overlay(
    img: ArrayLike,
    heatmap: ArrayLike,
    alpha: float = 0.75,
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
    center: float | None = None,
) -> np.ndarray:
    """A heatmap (h, w; resized bilinearly to the image) over an HxWx3 image -> HxWx3 in [0, 1].

    The opacity follows the value: alpha where the map reaches its limit, 0 where there is no evidence
    (at vmin, or at `center` for a signed map), so the photo shows through where the map says nothing.
    """
    img = single(img, 3)
    img = img / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    heat = resize_map(single(heatmap, 2), img.shape[:2])
    lo = float(heat.min()) if vmin is None else vmin
    hi = float(heat.max()) if vmax is None else vmax
    t = np.clip((heat - lo) / max(hi - lo, 1e-12), 0, 1)
    colours = matplotlib.colormaps[cmap](t)[..., :3]
    strength = t if center is None else np.clip(np.abs(heat - center) / max(hi - center, 1e-12), 0, 1)
    weight = alpha * strength[..., None]
    return (1 - weight) * img + weight * colours


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
    diverging = kind == "signed" or (kind == "probability" and center is not None)
    cmap = cmap or (CMAPS["signed"] if diverging else CMAPS[kind])
    if clip is not None:
        label = f"{label} (clipped at the {clip:g}th percentile)".strip()
    return lo, hi, cmap, label


def show_heatmap(
    img: ArrayLike,
    heatmap: ArrayLike,
    title: str = "",
    label: str = "",
    kind: str = "positive",
    center: float | None = None,
    clip: float | None = None,
    ax: plt.Axes | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    alpha: float = 0.75,
    cmap: str | None = None,
) -> Figure:
    """The heatmap over the image, with a colour bar in the map's own units (`label`).

    kind says what the map is and sets the defaults (see heat_range): "positive" (evidence from
    0, inferno), "signed" (diverging RdBu_r, symmetric about `center`, default 0) or "probability"
    (0-1 with viridis, or diverging about `center`, e.g. the unoccluded probability). clip: a
    percentile for the top of the range, named on the colour bar. vmin/vmax (e.g. from
    shared_range, for compared panels) override the range. Opacity follows the value.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
    fig = ax.figure
    heat = single(heatmap, 2)
    lo, hi, cmap, label = map_style(heat, kind, center, clip, vmin, vmax, cmap, label)
    diverging = kind == "signed" or (kind == "probability" and center is not None)
    ax.imshow(overlay(img, heat, alpha, cmap, lo, hi, center=(lo + hi) / 2 if diverging else None))
    mappable = cm.ScalarMappable(norm=plt.Normalize(lo, hi), cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04, label=label)
    if kind == "probability":  # a range symmetric about `center` may pass 0 or 1: show only what exists
        bar.ax.set_ylim(max(lo, 0.0), min(hi, 1.0))
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    return fig


def show_map(
    heatmap: ArrayLike,
    title: str = "",
    label: str = "",
    kind: str = "positive",
    center: float | None = None,
    clip: float | None = None,
    ax: plt.Axes | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str | None = None,
) -> Figure:
    """A map on its own (no photo), coloured by kind as show_heatmap does, with its colour bar."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
    heat = single(heatmap, 2)
    lo, hi, cmap, label = map_style(heat, kind, center, clip, vmin, vmax, cmap, label)
    im = ax.imshow(heat, cmap=cmap, vmin=lo, vmax=hi)
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    if kind == "probability":
        bar.ax.set_ylim(max(lo, 0.0), min(hi, 1.0))
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    return ax.figure


def show_beside(
    img: ArrayLike,
    maps: Sequence[ArrayLike],
    titles: Sequence[str],
    img_title: str = "",
    label: str = "",
    kind: str = "positive",
    center: float | None = None,
    clip: float | None = None,
    over: bool = False,
    shared: bool = True,
    size: float = 3.3,
    suptitle: str | None = None,
) -> Figure:
    """The picture, then a row of its maps (each (h, w) or a batch of one), each with its colour bar:
    alone, or over the picture (over=True); on one colour scale (shared_range) unless shared=False."""
    maps = [single(m, 2) for m in maps]
    lo, hi = shared_range(maps, kind, center, clip) if shared else (None, None)
    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(size * (len(maps) + 1) + 0.6 * len(maps), size))
    axes[0].imshow(single(img, 3))
    axes[0].set(title=img_title, xticks=[], yticks=[])
    for ax, m, title in zip(axes[1:], maps, titles):
        style = dict(title=title, label=label, kind=kind, center=center, clip=clip, ax=ax, vmin=lo, vmax=hi)
        show_heatmap(img, m, **style) if over else show_map(m, **style)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_maps(
    maps: ArrayLike,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.4,
    cmap: str | None = None,
    suptitle: str | None = None,
    label: str = "activation",
    kind: str = "positive",
) -> Figure:
    """Feature maps (N, h, w) in one shared colour scale (by kind, see heat_range), with one colour bar."""
    maps = _numpy(maps)
    fig, axes = _grid(len(maps), ncols, size, extra_w=0.8)
    lo, hi = heat_range(maps, kind)
    cmap = cmap or CMAPS[kind]
    for i, (ax, m) in enumerate(zip(axes, maps)):
        ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_xticks([]), ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    cax = fig.add_axes((0.93, 0.15, 0.015, 0.7))
    fig.colorbar(cm.ScalarMappable(norm=plt.Normalize(lo, hi), cmap=cmap), cax=cax, label=label)
    return fig


def show_topk(
    predictions: Sequence[tuple[str, float]], title: str = "", ax: plt.Axes | None = None
) -> Figure:
    """Horizontal bars of (class name, probability) pairs, most likely on top."""
    predictions = single_prediction(predictions)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 0.35 * len(predictions) + 0.8))
    names = [n for n, _ in predictions][::-1]
    probs = [p for _, p in predictions][::-1]
    ax.barh(names, probs, color="tab:blue")
    for y, p in enumerate(probs):
        ax.text(p + 0.01, y, f"{p:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("probability")
    ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def show_prediction(img: ArrayLike, predictions: Sequence[tuple[str, float]], title: str = "") -> Figure:
    """The image beside its top-k bar chart."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), gridspec_kw={"width_ratios": [1, 1.3]})
    left.imshow(single(img, 3))
    predictions = single_prediction(predictions)
    left.axis("off")
    left.set_title(title, fontsize=10)
    show_topk(predictions, f"top-{len(predictions)} classes", ax=right)
    return fig


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


def show_top_patches(
    top, channels: Sequence[int] | None = None, size: float = 1.1, title: str | None = None
) -> Figure:
    """One row per channel: its top-k patches (from vizkit.top_patches), titled with the activation."""
    channels = list(top.channels if channels is None else channels)
    missing = [c for c in channels if c not in top.channels]
    if missing:
        raise ValueError(f"channels {missing} were not computed; top_patches was run for {top.channels}")
    k = len(top.patches[0])
    fig, axes = plt.subplots(len(channels), k, figsize=(size * k, size * len(channels) + 0.4), squeeze=False)
    for row, ch in zip(axes, channels):
        r = top.channels.index(ch)
        for j, ax in enumerate(row):
            ax.imshow(top.patches[r][j])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{top.values[r, j]:.1f}", fontsize=7)
        row[0].set_ylabel(f"ch {ch}", fontsize=9)
    fig.suptitle(
        title or f"top-{k} patches per channel (receptive field {top.field.size} px; title = activation)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def gradient_image(grad: ArrayLike, percentile: float = 99.5) -> np.ndarray:
    """An input-shaped gradient (3, H, W, or a batch of one) as an HxWx3 picture: 0 is grey, +-the given percentile of
    |grad| is white/black per colour (the usual way to show guided backprop and deconvnet)."""
    g = single(grad, 3).astype(np.float64)
    if g.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) gradient, got shape {g.shape}")
    scale = np.percentile(np.abs(g), percentile) or 1.0
    return np.clip(0.5 + 0.5 * g.transpose(1, 2, 0) / scale, 0, 1)
