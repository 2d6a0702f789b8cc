"""The toolbox's pictures, as PNG bytes: a layer's channels as one sorted, paged mosaic, the selected
channel (its map over the picture, its top patches, the guided backprop of its strongest unit, its
feature visualization), and the top-5 classes with a Grad-CAM each. No widgets here (see toolbox.py).

A Vision Transformer works too: its blocks' patch tokens are read as a grid (inputs.spatial), its
GELUs get the plain gradient instead of guided backprop, and a block's [CLS] attention is drawn per
head (attention_png).

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
from .activations import layer_output
from .attention import attention_maps, attention_modules
from .attribution import backprop, guided_backprop
from .cams import grad_cam
from .hooks import frozen, record
from .images import to_uint8
from .layers import ModelLike, as_net, layer_names, on_model_device, token_grid
from .receptive_fields import receptive_field

# fmt: off
__all__ = [
    "COLS", "GAP", "PAGE", "TILE", "attention_block", "attention_png", "cam_layer", "channel_map_png",
    "channel_maps", "feature_visualization", "featviz_png", "figure_png", "font", "guided_png", "head_count",
    "input_size", "layer_choices", "Mosaic", "mosaic", "patches_png", "stack_png", "strength",
    "strongest_unit", "top5_gradcam_png",
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


def input_size(model: ModelLike, size: int) -> int:
    """`size`, or the model's crop size for a transformer whose patch grid is fixed (timm's DeiT at 224)."""
    grid = token_grid(model, (size, size))
    fixed = grid is not None and grid == token_grid(model, (2 * size, 2 * size))
    return getattr(model, "crop_size", 224) if fixed else size


def layer_choices(model: ModelLike, size: int = 64) -> tuple[list[str], list[str]]:
    """(layers with a spatial map, layers without one), in forward order, for the layer menu.

    The candidates are the model's top-level modules, with sequential containers (`blocks`,
    `features`, `layer1`, ...) opened one level, so the menu reads like the architecture; identities
    and dropouts are left out. A transformer's token layers count as spatial (their patch grid).
    """
    net = as_net(model)
    names = []
    for name, module in net.named_children():
        if isinstance(module, (nn.Sequential, nn.ModuleList)):
            names += [f"{name}.{child}" for child, _ in module.named_children()]
        elif not isinstance(module, (nn.Identity, nn.Dropout)):
            names.append(name)
    size = input_size(model, size)
    grid = token_grid(net, (size, size))
    x = torch.zeros(1, 3, size, size)
    with frozen(net), record(net, names) as rec, torch.no_grad():
        net(on_model_device(net, x))
        ran = [n for n in names if rec.calls(n)]
        spatial = [n for n in ran if _has_grid(rec.calls(n)[-1], grid)]
    return spatial, [n for n in ran if n not in spatial]


def _has_grid(a: torch.Tensor, grid: tuple[int, int, int] | None) -> bool:
    return a.ndim == 4 or (a.ndim == 3 and grid is not None and a.shape[1] == grid[0] + grid[1] * grid[2])


def channel_maps(model: ModelLike, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The layer's maps (C, h, w) for one picture x (1x3xHxW), a transformer's patch tokens as their
    grid, or a clear error for a layer with no grid."""
    a = layer_output(model, x, layer)
    if not _has_grid(a, token_grid(model, x.shape[2:])):
        raise ValueError(
            f"{layer} has no spatial map (its output is {tuple(a.shape[1:])} per picture): "
            "the toolbox shows conv layers and a transformer's token layers; choose one above it"
        )
    return inputs.spatial(a, layer, token_grid(model, x.shape[2:]))[0].float().cpu()


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
    draw.text((2, 3), f"{layer}: {len(order)} maps, strongest first (page {page + 1}/{pages})", fill="black")
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
        title=f"{layer} #{channel}: max {a.max():.2f}",
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
    unit's receptive field (outlined) with a margin, as the toolbox shows it. A transformer (GELUs, and
    tokens that see the whole picture): the plain gradient over the whole picture, the token's patch outlined."""
    if token_grid(model, x.shape[2:]) is not None:
        return _token_gradient_png(model, x, layer, channel, unit)
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


def _token_gradient_png(
    model: ModelLike, x: torch.Tensor, layer: str, channel: int, unit: tuple[int, int]
) -> bytes:
    g = backprop(model, x, target=channel, layer=layer, unit=unit)[0]
    _, h, w = token_grid(model, x.shape[2:])
    ph, pw = x.shape[2] // h, x.shape[3] // w
    fig = Figure(figsize=(2.9, 2.9))
    ax = fig.add_subplot()
    ax.imshow(heatmaps.gradient_image(g))
    ax.add_patch(Rectangle((unit[1] * pw - 0.5, unit[0] * ph - 0.5), pw, ph, fill=False, ec="cyan", lw=1.5))
    ax.set(xticks=[], yticks=[])
    ax.set_title(f"gradient of token {unit}\n(its patch outlined)", fontsize=9)
    ax.set_xlabel(
        "plain gradient: guided backprop needs ReLUs,\nthis network has GELUs; grey = 0", fontsize=7
    )
    return figure_png(fig)


def head_count(model: ModelLike) -> int:
    """The number of attention heads per block (0 for a network without self-attention)."""
    if token_grid(model, (224, 224)) is None:
        return 0
    return attention_modules(model)[0].num_heads


def attention_block(model: ModelLike, layer: str) -> str | None:
    """The block whose attention the toolbox draws for `layer`: the layer itself, or the block that
    holds it; None where it holds no attention (the patch embedding, the final norm)."""
    parts, net = layer.split("."), as_net(model)
    holders = [".".join(parts[:k]) for k in range(len(parts), 0, -1)]  # the layer, then what holds it
    return next(
        (n for n in holders if any(hasattr(m, "fused_attn") for m in net.get_submodule(n).modules())), None
    )


def attention_png(model: ModelLike, x: torch.Tensor, img: np.ndarray, layer: str, head: int) -> bytes:
    """The [CLS] token's attention at the block of `layer` over the picture: one head, or (head=-1) the
    mean of the heads, with a colour bar; a line that says why where the layer holds no attention."""
    block = attention_block(model, layer)
    fig = Figure(figsize=(3.3, 2.9))
    ax = fig.add_subplot()
    if block is None:
        ax.imshow(img, alpha=0.3)
        ax.set(xticks=[], yticks=[])
        ax.set_title(f"{layer} holds no attention:\nchoose a block (blocks.N)", fontsize=9)
        return figure_png(fig)
    maps = attention_maps(model, x, layer=block)[0]  # (heads, h, w)
    a, which = (maps.mean(0), "mean of the heads") if head < 0 else (maps[head], f"head {head}")
    plot.show_heatmap(
        img, a, ax=ax, title=f"{block}: [CLS] attention, {which}", label="attention weight", kind="positive"
    )
    ax.title.set_fontsize(9)
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
    fig.suptitle(f"#{channel}: top patches of {source}", fontsize=9)
    return figure_png(fig)


def feature_visualization(
    model: ModelLike, layer: str, channel: int, steps: int, size: int, stop=None, objective=None
) -> np.ndarray:
    """An image (HxWx3 in [0, 1]) that excites the channel (or maximises `objective`): Fourier ascent with
    the transforms of notebook 08 (Olah et al. 2017). stop(step) -> True ends the ascent early."""
    pad_w = max(2, size // 16)
    transforms = [
        optvis.pad(pad_w),
        optvis.jitter(pad_w // 2),
        optvis.random_scale([0.9, 0.95, 1.0, 1.05, 1.1]),
        optvis.random_rotate(10),
        optvis.jitter(max(1, pad_w // 4)),
    ]
    grid = token_grid(model, (size, size))
    if grid is not None:  # a ViT takes multiples of its patch size only, or its one size (fixed grid)
        fixed = grid == token_grid(model, (2 * size, 2 * size))
        transforms.append(optvis.centre_crop(size) if fixed else optvis.crop_to_multiple(size // grid[2]))
    x = optvis.ascent(
        model,
        objective or objectives.channel(layer, channel),
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
    ax.set(title=f"what #{channel} wants ({steps} steps)", xticks=[], yticks=[])
    ax.title.set_fontsize(10)
    return figure_png(fig)


def cam_layer(model: ModelLike, spatial: list[str]) -> str:
    """The layer of the top-5 Grad-CAMs: the last spatial layer; for a transformer, the input of its last
    block's attention (norm1 / ln_1), since its last block's patch tokens get no gradient (only [CLS]
    reaches the classifier)."""
    if token_grid(model, (224, 224)) is not None:
        return [n for n in layer_names(model) if n.endswith(("norm1", "ln_1"))][-1]
    return spatial[-1]


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
