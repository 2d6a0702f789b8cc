"""The model's input contract, in one place: pixels <-> model space, images -> tensors -> images,
targets -> class indices and scores.

Model space is what the network takes: (pixels in [0, 1] - mean) / std, with a vizkit Model's
mean and std, and mean 0, std 1 for a plain nn.Module. Every method module reads these functions
instead of keeping its own copy.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hooks import frozen
from .images import ImageLike, center_crop, resize, to_rgb
from .layers import ModelLike, channels_last, check_batch, model_device, on_model_device

# fmt: off
__all__ = [
    "InputSpec", "class_index", "fixed_targets", "in_batches", "last_linear", "perturbation_targets", "pixel_range",
    "probability_of", "resize_tensor", "resolve_targets", "rgb_tensor", "round_to_8bit", "scores_of",
    "spatial", "stats", "summed_class_score", "Targets", "to_array", "to_image", "to_batch", "to_input",
    "to_model_space", "to_pixels",
]
# fmt: on

# What a method explains: None (each image's top class), a class index or name (with a vizkit Model)
# for every image, one per image (a list or a tensor), or a callable logits (N, classes) -> scores (N,)
# (pytorch-grad-cam's targets; probability_of(c) is the one perturbation methods use for a class).
Targets = int | str | Sequence[int | str] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None

# ----------------------------------------------------------------------------------------------
# Pixel space of a model: what [0, 1] pixels look like after its normalisation.


class InputSpec(Protocol):
    """What this module reads from a model, each optional: a vizkit Model has all four, a plain
    nn.Module may carry any (SmallCNN carries mean and std). Missing: mean 0, std 1 (the model takes
    [0, 1] pixels), crop_size 224, resize_size 256 (the evaluation transform)."""

    mean: tuple[float, float, float]  # per colour, in [0, 1] pixel units
    std: tuple[float, float, float]
    crop_size: int
    resize_size: int


def stats(model: ModelLike) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as 1x3x1x1 tensors on the model's device: the model's InputSpec, (0, 1) without one."""
    dev = model_device(model)
    mean, std = getattr(model, "mean", (0.0, 0.0, 0.0)), getattr(model, "std", (1.0, 1.0, 1.0))
    return (torch.tensor(mean, device=dev).view(1, 3, 1, 1), torch.tensor(std, device=dev).view(1, 3, 1, 1))


def pixel_range(model: ModelLike) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) 1x3x1x1: pixel values 0 and 1 in the model's input space."""
    mean, std = stats(model)
    return -mean / std, (1 - mean) / std


def to_model_space(model: ModelLike, rgb: torch.Tensor) -> torch.Tensor:
    """Nx3xHxW pixels in [0, 1] -> the model's input space."""
    mean, std = stats(model)
    return (rgb - mean.to(rgb.device)) / std.to(rgb.device)


def to_pixels(model: ModelLike, x: torch.Tensor) -> torch.Tensor:
    """The model's input space -> Nx3xHxW pixels in [0, 1] (clamped)."""
    mean, std = stats(model)
    return (x * std.to(x.device) + mean.to(x.device)).clamp(0, 1)


def round_to_8bit(model: ModelLike, x: torch.Tensor) -> torch.Tensor:
    """x as it comes back after saving it as an 8-bit image (each pixel rounded to k/255)."""
    return to_model_space(model, (to_pixels(model, x) * 255).round() / 255)


# ----------------------------------------------------------------------------------------------
# Images -> tensors -> images. Arrays are resized as uint8 by PIL (the evaluation transform),
# tensors by torch (bilinear, antialiased).


def rgb_tensor(img: ImageLike | np.ndarray) -> torch.Tensor:
    """An image (see images.ACCEPTED), or an NxHxWx3 uint8 stack, -> Nx3xHxW float pixels in [0, 1] (CPU)."""
    if isinstance(img, np.ndarray) and img.ndim == 4:
        return torch.tensor(img).permute(0, 3, 1, 2).float().div_(255)
    return torch.tensor(to_rgb(img)).permute(2, 0, 1).float().div_(255)[None]


def to_input(
    model: ModelLike, img: ImageLike | torch.Tensor, size: int | None = None, crop: bool = True
) -> torch.Tensor:
    """An image -> its 1x3xHxW model-space tensor on the model's device; a tensor (model space) passes.

    crop=True: the evaluation transform (shorter side to the model's resize_size, centre crop of its
    crop_size, 256 and 224 for a plain nn.Module; `size` replaces crop_size and scales resize_size
    with it). crop=False keeps the whole picture, its shorter side resized to `size` (None: as it is).
    """
    if isinstance(img, torch.Tensor):
        x = on_model_device(model, img)
        return x if size is None else resize_tensor(x, size)
    rgb = to_rgb(img)
    if crop:
        crop_size = getattr(model, "crop_size", 224)
        size = size or crop_size
        rgb = center_crop(resize(rgb, round(size * getattr(model, "resize_size", 256) / crop_size)), size)
    elif size is not None:
        rgb = resize(rgb, size)
    mean, std = (s.cpu() for s in stats(model))
    return ((rgb_tensor(rgb) - mean) / std).to(model_device(model))


def to_batch(
    model: ModelLike, images: Sequence[ImageLike] | np.ndarray, size: int | None = None, crop: bool = True
) -> torch.Tensor:
    """Several images of one size (a list, or an (N, H, W, 3) array) -> an Nx3xHxW model-space tensor
    (arguments as in to_input)."""
    return torch.cat([to_input(model, img, size, crop) for img in images])


def resize_tensor(x: torch.Tensor, size: int) -> torch.Tensor:
    """Nx3xHxW resized so that its shorter side is `size` (bilinear, antialiased)."""
    h, w = x.shape[-2:]
    s = size / min(h, w)
    return F.interpolate(
        x, size=(round(h * s), round(w * s)), mode="bilinear", align_corners=False, antialias=True
    )


def to_array(rgb: torch.Tensor) -> np.ndarray:
    """Nx3xHxW pixels in [0, 1] -> NxHxWx3 float array (clamped); 1x3xHxW or 3xHxW -> HxWx3."""
    single = rgb.ndim == 3 or rgb.shape[0] == 1
    img = check_batch(rgb.detach()).float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return img[0] if single else img


def to_image(model: ModelLike, x: torch.Tensor) -> np.ndarray:
    """Model-space 1x3xHxW (or 3xHxW) -> HxWx3 float array in [0, 1]; Nx3xHxW -> NxHxWx3."""
    return to_array(to_pixels(model, check_batch(x.detach()).float()))


# ----------------------------------------------------------------------------------------------
# Targets: what class (or score) a method explains.


def class_index(model: ModelLike, target: int | str) -> int:
    """A class index from an int or, with a vizkit Model, a class name."""
    if isinstance(target, str):
        if not hasattr(model, "class_index"):
            raise TypeError("class names need the model from vizkit.load_model; pass an index")
        return model.class_index(target)
    return int(target)


def resolve_targets(model: ModelLike, target: Targets, logits: torch.Tensor) -> torch.Tensor:
    """Class indices (N,) from one target for all images, one per image, or None (each image's top class)."""
    n = logits.shape[0]
    if target is None:
        return logits.argmax(-1)
    if callable(target):
        raise TypeError("this method needs a class (an index or a name), not a callable score")
    if isinstance(target, (int, str)):
        return torch.full((n,), class_index(model, target), dtype=torch.long, device=logits.device)
    t = torch.as_tensor([class_index(model, t) for t in target], device=logits.device)
    if t.shape != (n,):
        raise ValueError(f"got {t.numel()} targets for {n} images")
    return t


def summed_class_score(model: ModelLike, logits: torch.Tensor, target: Targets) -> torch.Tensor:
    """Sum over the batch of each image's target score: its logit, or a callable target's value."""
    if callable(target):
        scores = target(logits)
        if scores.shape != logits.shape[:1]:
            raise ValueError(f"a callable target must return one score per image, got {tuple(scores.shape)}")
        return scores.sum()
    return logits.gather(1, resolve_targets(model, target, logits)[:, None]).sum()


def fixed_targets(model: ModelLike, x: torch.Tensor, target: Targets) -> list[int]:
    """The classes of the clean batch x (for None: each image's top class), as a list of indices; a
    callable target is refused with a clear error (methods that read probabilities need a class)."""
    with frozen(model) as net, torch.no_grad():
        return resolve_targets(model, target, net(on_model_device(model, x))).tolist()


def probability_of(c: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The target "softmax probability of class c": logits (N, classes) -> P(c) (N,)."""

    def probability(logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1)[:, c]

    probability.__name__ = f"probability_of({c})"
    return probability


def perturbation_targets(model: ModelLike, x: torch.Tensor, target: Targets) -> list[Callable]:
    """One score per image of x for perturbation methods, logits (B, classes) -> (B,): P(class) of the
    clean image's class (for None: its top class), or the callable target itself."""
    if callable(target):
        return [target] * len(x)
    return [probability_of(c) for c in fixed_targets(model, x, target)]


def scores_of(net: nn.Module, batch: torch.Tensor, score: Callable, batch_size: int = 16) -> torch.Tensor:
    """score(logits) for every image of a normalised batch, batch_size at a time (channels-last): (B,).

    Call it inside `frozen(model)` and `torch.no_grad()`."""
    out = []
    for b in batch.split(batch_size):
        s = score(net(channels_last(b)))
        if s.shape != b.shape[:1]:
            raise ValueError(f"a callable target must return one score per image, got {tuple(s.shape)}")
        out.append(s)
    return torch.cat(out)


def _targets_of(target: Targets, rows: slice) -> Targets:
    """The targets of the images `rows` of a batch: a per-image list or tensor is sliced, others pass."""
    if (
        target is None
        or callable(target)
        or isinstance(target, (numbers.Integral, str))
        or np.ndim(target) == 0
    ):
        return target
    return target[rows]


def in_batches(method: Callable, x: torch.Tensor, target: Targets, batch_size: int) -> np.ndarray:
    """method(x_chunk, target_chunk) -> (n, ...) arrays, over chunks of batch_size images, concatenated."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(x) <= batch_size:
        return method(x, target)
    chunks = [slice(i, i + batch_size) for i in range(0, len(x), batch_size)]
    return np.concatenate([method(x[s], _targets_of(target, s)) for s in chunks])


# ----------------------------------------------------------------------------------------------
# What a method needs of the network.


def last_linear(net: nn.Module, why: str) -> nn.Linear:
    """The network's last nn.Linear (its classifier), or an error saying `why` it is needed."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{why} needs a final nn.Linear classifier; this model has none")
    return linears[-1]


def spatial(a: torch.Tensor, layer: object, grid: tuple[int, int, int] | None = None) -> torch.Tensor:
    """A layer's output as (N, C, h, w): a feature map itself; a transformer's tokens (N, prefix + h*w, C)
    with the prefix ([CLS], registers) dropped, grid = (prefix, h, w) from layers.token_grid; a
    channels-last (N, h, w, C) patch embedding (timm's with dynamic_img_size) moved to (N, C, h, w); else
    an error naming `layer`."""
    if a.ndim == 3 and grid is not None and a.shape[1] == grid[0] + grid[1] * grid[2]:
        prefix, h, w = grid
        return a[:, prefix:].transpose(1, 2).reshape(a.shape[0], a.shape[2], h, w)
    if (
        a.ndim == 4
        and grid is not None
        and tuple(a.shape[1:3]) == grid[1:]
        and tuple(a.shape[2:]) != grid[1:]
    ):
        return a.permute(0, 3, 1, 2)
    if a.ndim != 4:
        hint = f"; a transformer's token layers give (N, {grid[0]} + {grid[1]}*{grid[2]}, C)" if grid else ""
        raise ValueError(f"layer {layer!r} has no spatial grid (output shape {tuple(a.shape)}){hint}")
    return a
