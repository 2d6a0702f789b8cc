"""Pictures: image grids, filter grids, heat-map figures with colour bars (scales from vizkit.heatmaps),
top-k bar charts.

Every function returns a matplotlib Figure (or an array) and never saves files."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cm
from matplotlib.figure import Figure

from .heatmaps import (
    CMAPS,
    ArrayLike,
    as_numpy,
    diverging,
    heat_range,
    map_style,
    occlusion_drop,
    overlay,
    scale_bar,
    scaled,
    shared_range,
    single,
    unbatched,
)
from .thumbnails import embedding_grid, snap_to_grid
from .tiles import filter_images, show_top_patches

# fmt: off
__all__ = [
    "COLUMN_WIDTH", "embedding_grid", "filter_images", "scale_bar", "show_beside", "show_filters", "show_grid",
    "show_heatmap", "show_images", "show_map", "show_occlusion", "show_maps", "show_prediction", "show_top_patches",
    "show_topk", "snap_to_grid",
]
# fmt: on


def _single_prediction(predictions: Sequence) -> list[tuple[str, float]]:
    """(class, probability) pairs; model.predict's one-list batch for one image is unwrapped."""
    return (
        list(predictions[0])
        if len(predictions) == 1 and isinstance(predictions[0], list)
        else list(predictions)
    )


COLUMN_WIDTH = 10.0  # inches: a notebook's output column (about 1000 px at the default 100 dpi)


def _fit_column(size: float, ncols: int, extra_w: float = 0.0) -> float:
    """The cell width (inches) for ncols cells of `size` inches plus extra_w, shrunk so the figure fits
    the notebook column: a wider figure is scaled down in the notebook, and its text with it."""
    return min(size, (COLUMN_WIDTH - extra_w) / max(ncols, 1))


def _wrap_title(title: str, width: float, fontsize: float = 9) -> str:
    """`title` broken into lines that fit `width` inches at `fontsize` points (its own newlines kept)."""
    chars = max(8, int(width * 72 / (0.6 * fontsize)))  # DejaVu Sans averages about 0.6 em a character
    return "\n".join(
        textwrap.fill(line, chars, break_on_hyphens=False, break_long_words=False) if line else line
        for line in title.split("\n")
    )


def _columns(n: int, ncols: int | None) -> int:
    """Columns of a grid of n cells: ncols (at most n), or about the square root of n."""
    return min(n, ncols or math.ceil(math.sqrt(n)))


def _grid(
    n: int, ncols: int | None, size: float, extra_w: float = 0.0, aspect: float = 1.0, title_lines: int = 1
):
    """n axes in a grid of cells `size` inches wide (less, to fit the column) and size * aspect high,
    plus room for titles of `title_lines` lines."""
    ncols = _columns(n, ncols)
    nrows = math.ceil(n / ncols)
    size = _fit_column(size, ncols, extra_w)
    row = size * aspect + 0.3 + 0.16 * max(title_lines - 1, 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + extra_w, row * nrows), squeeze=False)
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
    first = unbatched(images[0]).shape if len(images) else (1, 1)
    width = _fit_column(size, _columns(len(images), ncols))  # the cell width _grid will use
    titles = None if titles is None else [_wrap_title(t, width, 9) for t in titles]
    lines = max((t.count("\n") + 1 for t in titles or []), default=1)
    fig, axes = _grid(len(images), ncols, size, aspect=first[0] / first[1], title_lines=lines)
    for i, (ax, img) in enumerate(zip(axes, images)):
        img = unbatched(img)
        ax.imshow(
            img,
            cmap=cmap if img.ndim == 2 else None,
            interpolation="nearest" if max(img.shape[:2]) < 64 else "antialiased",
        )
        ax.set_xticks([]), ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(_wrap_title(suptitle, fig.get_figwidth(), 12))
    fig.tight_layout()
    return fig


def show_grid(
    rows: dict[str, Sequence[ArrayLike]],
    col_titles: Sequence[str] | None = None,
    size: float = 2.8,
    kind: str = "positive",
    scale: str = "shared",
    label: str = "",
    under: Sequence[ArrayLike] | None = None,
    suptitle: str | None = None,
) -> Figure:
    """Pictures in a grid, one row per method (its name on the left) and one column per image or class:
    rows maps a name to its pictures (HxWx3). A row of maps (h, w) is coloured by `kind`, over the
    pictures `under` (one per column) when given, on one `scale` (heatmaps.SCALES), with one colour bar
    labelled `label`."""
    names = list(rows)
    ncols = max(len(v) for v in rows.values())
    cells = {(r, c): unbatched(p) for r, name in enumerate(names) for c, p in enumerate(rows[name])}
    keys = [k for k, v in cells.items() if v.ndim == 2]
    if keys:
        maps, lo, hi = scaled([cells[k] for k in keys], kind, scale)
        cmap, mid = (
            (CMAPS["signed"] if diverging(kind, None) else CMAPS[kind]),
            0.0 if diverging(kind, None) else None,
        )
        for (r, c), m in zip(keys, maps):
            pic = None if under is None else under[c]
            cells[r, c] = overlay(pic, m, cmap=cmap, vmin=lo, vmax=hi, center=mid) if pic is not None else m
    size = _fit_column(size, ncols, 0.9 + (1.0 if keys else 0.0))
    fig, axes = plt.subplots(len(names), ncols, figsize=(size * ncols + 0.9, size * len(names)),
                             squeeze=False, layout="constrained")  # fmt: skip
    for (r, c), img in cells.items():
        axes[r, c].imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=lo if img.ndim == 2 else None,
                          vmax=hi if img.ndim == 2 else None)  # fmt: skip
    for r, c in np.ndindex(axes.shape):
        axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        if (r, c) not in cells:
            axes[r, c].axis("off")
        if r == 0 and col_titles is not None and c < len(col_titles):
            axes[r, c].set_title(_wrap_title(col_titles[c], size, 10), fontsize=10)
    for r, name in enumerate(names):
        axes[r, 0].set_ylabel(name, fontsize=10)
    if keys:
        scale_bar(fig, axes, lo, hi, kind, scale, label)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


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
) -> Figure:
    """The heatmap over the image, with a colour bar in the map's own units (`label`).

    kind says what the map is and sets its colours (heatmaps.CMAPS; red always means more): "positive"
    (evidence from 0, inferno), "signed" or "drop" (diverging RdBu_r, symmetric about `center`,
    default 0) or "probability" (0-1 with viridis, or diverging about `center`, e.g. the unoccluded
    probability). clip: a percentile for the top of the range, named on the colour bar. vmin/vmax
    (e.g. from shared_range, for compared panels) override the range. Opacity follows the value.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
    fig = ax.figure
    heat = single(heatmap, 2)
    lo, hi, cmap, label = map_style(heat, kind, center, clip, vmin, vmax, None, label)
    ax.imshow(
        overlay(img, heat, 0.75, cmap, lo, hi, center=(lo + hi) / 2 if diverging(kind, center) else None)
    )
    mappable = cm.ScalarMappable(norm=plt.Normalize(lo, hi), cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04, label=label)
    if kind == "probability":  # a range symmetric about `center` may pass 0 or 1: show only what exists
        bar.ax.set_ylim(max(lo, 0.0), min(hi, 1.0))
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    return fig


def show_occlusion(
    img: ArrayLike,
    grid: ArrayLike,
    size: int,
    stride: int,
    p0: float,
    title: str = "",
    ax: plt.Axes | None = None,
    lim: tuple[float, float] | None = None,
) -> Figure:
    """Occlusion drawn as the series draws it: the drop p0 - P of each window over its centre cell
    (heatmaps.occlusion_drop), red where hiding the window lowers the class's probability (evidence for
    it), blue where it raises it, symmetric about 0. lim: a shared (lo, hi) of drops for compared panels."""
    drop = occlusion_drop(grid, p0, size, stride, single(img, 3).shape[:2])
    lo, hi = lim or heat_range(p0 - single(grid, 2), "drop")
    return show_heatmap(img, drop, title, "drop in P(class) when hidden", "drop", 0.0, None, ax, lo, hi)


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
    clip: float | None = None,
    over: bool = False,
    shared: bool = True,
    size: float = 2.8,
) -> Figure:
    """The picture, then a row of its maps (each (h, w) or a batch of one), alone or over the picture
    (over=True): on one colour scale with one colour bar (shared_range), or, with shared=False, each
    on its own scale with its own bar."""
    maps = [single(m, 2) for m in maps]
    size = _fit_column(size, len(maps) + 1, 0.6 * len(maps) if not shared else 0.9)
    if not shared:
        fig, axes = plt.subplots(1, len(maps) + 1, figsize=(size * (len(maps) + 1) + 0.6 * len(maps), size))
        for ax, m, title in zip(axes[1:], maps, titles):
            style = dict(title=title, label=label, kind=kind, clip=clip, ax=ax)
            show_heatmap(img, m, **style) if over else show_map(m, **style)
        fig.tight_layout()
    else:
        lo, hi, cmap, label = map_style(
            np.stack(maps), kind, None, clip, *shared_range(maps, kind, None, clip), None, label
        )
        fig, axes = plt.subplots(
            1, len(maps) + 1, figsize=(size * (len(maps) + 1) + 0.9, size), layout="constrained"
        )
        mid = (lo + hi) / 2 if diverging(kind, None) else None
        for ax, m, title in zip(axes[1:], maps, titles):
            ax.imshow(
                overlay(img, m, cmap=cmap, vmin=lo, vmax=hi, center=mid) if over else m,
                cmap=cmap,
                vmin=lo,
                vmax=hi,
            )
            ax.set(xticks=[], yticks=[])
            ax.set_title(_wrap_title(title, size, 10), fontsize=10)
        fig.colorbar(cm.ScalarMappable(plt.Normalize(lo, hi), cmap), ax=axes[1:], label=label)
    axes[0].imshow(single(img, 3))
    axes[0].set(xticks=[], yticks=[])
    axes[0].set_title(_wrap_title(img_title, size, 10), fontsize=10)
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
    picture: ArrayLike | None = None,
    picture_title: str = "the picture",
) -> Figure:
    """Feature maps (N, h, w) in one shared colour scale (by kind, see heat_range), with one colour bar;
    `picture` (HxWx3, the image the maps come from) is drawn as the first tile."""
    maps = as_numpy(maps)
    first = 0 if picture is None else 1
    fig, axes = _grid(len(maps) + first, ncols, size, extra_w=0.8)
    lo, hi = heat_range(maps, kind)
    cmap = cmap or CMAPS[kind]
    if picture is not None:
        axes[0].imshow(single(picture, 3))
        axes[0].set(xticks=[], yticks=[])
        axes[0].set_title(picture_title, fontsize=8)
    for i, (ax, m) in enumerate(zip(axes[first:], maps)):
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
    predictions = _single_prediction(predictions)
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
    predictions = _single_prediction(predictions)
    left.axis("off")
    left.set_title(title, fontsize=10)
    show_topk(predictions, f"top-{len(predictions)} classes", ax=right)
    return fig
