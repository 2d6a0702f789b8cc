"""The toolbox's pictures, as PNG bytes: a layer's channels as one sorted, paged mosaic, the selected
channel (its map over the picture, its top patches, the guided backprop of its strongest unit, its
feature visualization), and the top-5 classes with a Grad-CAM each. No widgets here (see toolbox.py).

Figures are built with matplotlib's object API (never pyplot), so drawing them from the worker
thread cannot leak a figure into a notebook cell's output.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from . import heatmaps, inputs, objectives, optvis, plot
from .activations import layer_output, receptive_field
from .attribution import guided_backprop
from .cams import grad_cam
from .hooks import frozen, record
from .images import to_uint8
from .layers import ModelLike, as_net, on_model_device

# fmt: off
__all__ = [
    "COLS", "GAP", "PAGE", "TILE", "channel_map_png", "channel_maps", "feature_visualization",
    "featviz_png", "figure_png", "font", "guided_png", "layer_choices", "Mosaic", "mosaic", "patches_png",
    "stack_png", "strength", "strongest_unit", "top5_gradcam_png",
]
# fmt: on

PAGE = 128  # tiles per page of the mosaic
COLS = 16  # tiles per row
TILE = 44  # px per tile
GAP = 2  # px between tiles


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A matplotlib Figure as PNG bytes."""
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi, bbox_inches="tight")
    return out.getvalue()


def _image_png(img: np.ndarray) -> bytes:
    """An HxWx3 image (uint8, or float in [0, 1]) as PNG bytes."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = to_uint8(img)
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="PNG")
    return out.getvalue()


def stack_png(*rows: list[bytes]) -> bytes:
    """PNG pictures laid out in rows (left to right, top to bottom) on white, as one PNG."""
    rows = [[Image.open(io.BytesIO(p)).convert("RGB") for p in row if p] for row in rows]
    rows = [row for row in rows if row]
    width = max(sum(im.width for im in row) for row in rows)
    canvas = Image.new("RGB", (width, sum(max(im.height for im in row) for row in rows)), "white")
    y = 0
    for row in rows:
        x = 0
        for im in row:
            canvas.paste(im, (x, y))
            x += im.width
        y += max(im.height for im in row)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def layer_choices(model: ModelLike, size: int = 64) -> tuple[list[str], list[str]]:
    """(layers with a spatial map, layers without one), in forward order, for the layer menu.

    The candidates are the model's top-level modules, with sequential containers (`blocks`,
    `features`, `layer1`, ...) opened one level, so the menu reads like the architecture.
    """
    net = as_net(model)
    names = []
    for name, module in net.named_children():
        if isinstance(module, (nn.Sequential, nn.ModuleList)):
            names += [f"{name}.{child}" for child, _ in module.named_children()]
        else:
            names.append(name)
    x = torch.zeros(1, 3, size, size)
    with frozen(net), record(net, names) as rec, torch.no_grad():
        net(on_model_device(net, x))
        ran = [n for n in names if rec.calls(n)]
        spatial = [n for n in ran if rec.calls(n)[-1].ndim == 4]
    return spatial, [n for n in ran if n not in spatial]


def channel_maps(model: ModelLike, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The layer's maps (C, h, w) for one picture x (1x3xHxW), or a clear error for a layer with no grid."""
    a = layer_output(model, x, layer)
    if a.ndim != 4:
        raise ValueError(
            f"{layer} has no spatial map (its output is {tuple(a.shape[1:])} per picture): "
            "the toolbox shows conv layers; choose one above it"
        )
    return a[0].float().cpu()


def font(size: int) -> ImageFont.ImageFont:
    """PIL's built-in font at `size` px (Pillow >= 10.1), else its fixed bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


@dataclass
class Mosaic:
    """Where the tiles of one mosaic page lie: tile r (row-major) shows channel order[first + r]."""

    order: list[int]
    first: int
    count: int
    top: int  # px above the first row (the caption band)

    def channel_at(self, px: float, py: float) -> int | None:
        """The channel under pixel (px, py) of the mosaic image, or None between tiles / off the grid."""
        col, row = int(px // (TILE + GAP)), int((py - self.top) // (TILE + GAP))
        inside = px % (TILE + GAP) < TILE and (py - self.top) % (TILE + GAP) < TILE and py >= self.top
        r = row * COLS + col
        if not inside or col >= COLS or r >= self.count:
            return None
        return self.order[self.first + r]


def strength(maps: torch.Tensor) -> np.ndarray:
    """Each channel's strongest activation (C,), the mosaic's sort key."""
    return maps.flatten(1).max(1).values.numpy()


def mosaic(
    maps: torch.Tensor, layer: str, page: int = 0, selected: int | None = None
) -> tuple[bytes, Mosaic]:
    """One page of the layer's channels (C, h, w) as a PNG, strongest first, in one shared colour scale.

    Positive layers use inferno from 0; layers with negative values a diverging map symmetric about 0.
    The selected channel is framed in cyan. Each tile is labelled with its channel number.
    """
    values = maps.numpy()
    order = np.argsort(-strength(maps), kind="stable").tolist()
    pages = max(1, -(-len(order) // PAGE))
    page = min(max(page, 0), pages - 1)
    first = page * PAGE
    shown = order[first : first + PAGE]
    kind = "positive" if values.min() >= 0 else "signed"
    lo, hi = heatmaps.heat_range(values, kind, clip=99.9)  # a few extreme units do not wash out the rest
    cmap = matplotlib.colormaps[heatmaps.CMAPS[kind]]
    rows = -(-len(shown) // COLS)
    top = 18
    width = COLS * (TILE + GAP) - GAP
    canvas = Image.new("RGB", (width, top + rows * (TILE + GAP) + 26), "white")
    draw = ImageDraw.Draw(canvas)
    draw.font = font(12)
    draw.text(
        (2, 3), f"{layer}: {len(order)} channels, strongest first (page {page + 1}/{pages})", fill="black"
    )
    for r, c in enumerate(shown):
        t = np.clip((values[c] - lo) / (hi - lo), 0, 1)
        tile = Image.fromarray(np.uint8(cmap(t)[..., :3] * 255)).resize((TILE, TILE), Image.NEAREST)
        x0, y0 = (r % COLS) * (TILE + GAP), top + (r // COLS) * (TILE + GAP)
        canvas.paste(tile, (x0, y0))
        draw.text((x0 + 2, y0 + 1), str(c), fill="white", stroke_width=1, stroke_fill="black", font=font(10))
        if c == selected:
            draw.rectangle((x0, y0, x0 + TILE - 1, y0 + TILE - 1), outline=(0, 220, 255), width=3)
    bar_y = top + rows * (TILE + GAP) + 6
    ramp = np.uint8(cmap(np.linspace(0, 1, 200))[None, :, :3] * 255).repeat(10, 0)
    canvas.paste(Image.fromarray(ramp), (50, bar_y))
    draw.text((2, bar_y - 1), f"{lo:.3g}", fill="black")
    draw.text(
        (256, bar_y - 1),
        f"{hi:.3g}  activation: one scale for all tiles, clipped at the 99.9th pct",
        fill="black",
    )
    return _image_png(np.asarray(canvas)), Mosaic(order, first, len(shown), top)


def channel_map_png(img: np.ndarray, maps: torch.Tensor, channel: int, layer: str) -> bytes:
    """The channel's map over the picture (HxWx3), with a colour bar in activation units."""
    a = maps[channel].numpy()
    fig = Figure(figsize=(3.3, 2.9))
    plot.show_heatmap(
        img,
        a,
        ax=fig.add_subplot(),
        title=f"{layer} ch {channel}: max {a.max():.2f}",
        label="activation",
        kind="positive" if maps.min() >= 0 else "signed",
    )
    return figure_png(fig)


def strongest_unit(maps: torch.Tensor, channel: int) -> tuple[int, int]:
    """(row, col) of the channel's largest activation."""
    w = maps.shape[-1]
    i = int(maps[channel].flatten().argmax())
    return i // w, i % w


def guided_png(model: ModelLike, x: torch.Tensor, layer: str, channel: int, unit: tuple[int, int]) -> bytes:
    """Guided backprop (Springenberg et al. 2014) of the channel's strongest unit, cropped to the
    unit's receptive field (outlined) with a margin, as the toolbox shows it."""
    g = guided_backprop(model, x, target=channel, layer=layer, unit=unit)[0]
    size = x.shape[-1]
    top, left, bottom, right = receptive_field(model, layer, input_size=size).box(*unit)
    m = max(8, (bottom - top) // 4)
    y0, x0 = max(top - m, 0), max(left - m, 0)
    y1, x1 = min(bottom + m, size), min(right + m, size)
    fig = Figure(figsize=(2.9, 2.9))
    ax = fig.add_subplot()
    ax.imshow(heatmaps.gradient_image(g[:, y0:y1, x0:x1]), extent=(x0, x1, y1, y0))
    ax.add_patch(Rectangle((max(left, 0), max(top, 0)), min(right, size) - max(left, 0),
                           min(bottom, size) - max(top, 0), fill=False, ec="cyan", lw=1))  # fmt: skip
    ax.set(xticks=[], yticks=[], xlim=(x0, x1), ylim=(y1, y0))
    ax.set_title(f"guided backprop of unit {unit}\n(its {bottom - top} px field, outlined)", fontsize=9)
    ax.set_xlabel("grey = 0; colour: the gradient's sign per channel", fontsize=7)
    return figure_png(fig)


def patches_png(patches: list[np.ndarray], values: np.ndarray, channel: int, source: str) -> bytes:
    """The channel's top patches from a stream of pictures, titled with their activation."""
    cols = 3
    rows = max(1, -(-len(patches) // cols))
    fig = Figure(figsize=(2.9, 0.5 + 0.95 * rows))
    for k, (patch, v) in enumerate(zip(patches, values)):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(patch)
        ax.set_title(f"{v:.1f}", fontsize=8)
        ax.set(xticks=[], yticks=[])
    fig.suptitle(f"ch {channel}: top patches of {source}", fontsize=9)
    return figure_png(fig)


def feature_visualization(
    model: ModelLike, layer: str, channel: int, steps: int, size: int, stop=None
) -> np.ndarray:
    """An image (HxWx3 in [0, 1]) that excites the channel: Fourier-parameterised ascent with the
    transforms of notebook 08 (Olah et al. 2017). stop(step) -> True ends the ascent early."""
    pad_w = max(2, size // 16)
    transforms = [
        optvis.pad(pad_w),
        optvis.jitter(pad_w // 2),
        optvis.random_scale([0.9, 0.95, 1.0, 1.05, 1.1]),
        optvis.random_rotate(10),
        optvis.jitter(max(1, pad_w // 4)),
    ]
    x = optvis.ascent(
        model,
        objectives.channel(layer, channel),
        optvis.fourier_image(model, size, seed=0),
        steps,
        lr=0.05,
        optimizer="adam",
        transforms=transforms,
        callback=stop,
        progress=False,
    )
    return inputs.to_pixels(model, x)[0].permute(1, 2, 0).cpu().numpy()


def featviz_png(img: np.ndarray, layer: str, channel: int, steps: int) -> bytes:
    """The feature visualization, titled with what made it."""
    fig = Figure(figsize=(2.9, 2.9))
    ax = fig.add_subplot()
    ax.imshow(img)
    ax.set(title=f"what ch {channel} wants ({steps} steps)", xticks=[], yticks=[])
    ax.title.set_fontsize(10)
    return figure_png(fig)


def top5_gradcam_png(model: ModelLike, x: torch.Tensor, img: np.ndarray, layer: str) -> bytes:
    """The picture, then its top-5 classes with a Grad-CAM each at `layer`, in one shared colour scale."""
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    top = probs.topk(5)
    classes = top.indices.tolist()
    maps = grad_cam(
        model, x.expand(5, -1, -1, -1), classes, layer=layer, upsample=True
    )  # one pass, 5 targets
    lo, hi = heatmaps.shared_range(list(maps), "positive")
    fig = Figure(figsize=(13.5, 2.55))
    ax = fig.add_subplot(1, 6, 1)
    ax.imshow(img)
    ax.set(title="the picture", xticks=[], yticks=[])
    for k, (c, p, m) in enumerate(zip(classes, top.values.tolist(), maps)):
        ax = fig.add_subplot(1, 6, k + 2)
        ax.imshow(heatmaps.overlay(img, m, vmin=lo, vmax=hi))
        ax.set(xticks=[], yticks=[])
        ax.set_title(f"{model.classes[c]}\n{p:.0%}", fontsize=9)
    fig.suptitle(f"top-5 classes, Grad-CAM at {layer} (one colour scale for the five)", fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.93, wspace=0.05, top=0.78)
    bar = fig.add_axes((0.945, 0.12, 0.008, 0.62))
    fig.colorbar(ScalarMappable(Normalize(lo, hi), heatmaps.CMAPS["positive"]), cax=bar, label="Grad-CAM")
    return figure_png(fig)
