"""Scores: explanation maps against ground truth (pointing game, deletion metric) and how robustly a
synthesised image shows its class (transform_robustness)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .attribution import Target, class_index, class_probabilities
from .hooks import frozen
from .images import resize_map
from .layers import channels_last, on_model_device


def pointing_game(heat: np.ndarray, mask: np.ndarray) -> bool:
    """True if the map's maximum (upsampled bilinearly to the mask's size) lies on the object (Zhang et al. 2016)."""
    h = resize_map(heat, mask.shape)
    return bool(mask.flat[int(np.argmax(h))])


@torch.no_grad()
def deletion_curve(
    model,
    x: torch.Tensor,
    target: Target,
    heat: np.ndarray,
    fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    baseline: float = 0.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Probability of `target` as the most important pixels (by `heat`) are replaced by `baseline`
    (Petsiuk et al. 2018): one value per fraction of pixels removed. A lower curve means the map
    found the pixels the decision needs; its mean over fractions approximates the area under it.
    """
    x = on_model_device(model, x)
    h, w = x.shape[2:]
    order = np.argsort(-resize_map(heat, (h, w)).ravel(), kind="stable")  # most important first
    rank = torch.empty(h * w, dtype=torch.long, device=x.device)
    rank[torch.from_numpy(order).to(x.device)] = torch.arange(h * w, device=x.device)
    rank = rank.view(1, 1, h, w)
    counts = torch.tensor([round(f * h * w) for f in fractions], device=x.device).view(-1, 1, 1, 1)
    removed = (rank < counts).to(x.dtype)  # (F, 1, H, W)
    batch = x * (1 - removed) + baseline * removed
    t = class_index(model, target)
    with frozen(model) as net, torch.no_grad():
        return class_probabilities(net, batch, t, batch_size).cpu().numpy()


@torch.no_grad()
def transform_robustness(
    model,
    x: torch.Tensor,
    target: Target,
    n: int = 64,
    seed: int = 0,
    min_side: float = 0.5,
    degrees: float = 20.0,
    batch_size: int = 16,
) -> float:
    """Share of n strong random views of x that the model still calls `target`.

    Each view is a square crop of min_side..1 times the side, rotated by up to `degrees`, flipped
    with probability 1/2 and resized back to x's size. x: one normalised 1x3xHxW image. An image that
    only fools the model at one exact framing scores near 0; a recognisable object scores high.
    """
    x = on_model_device(model, x)
    if x.shape[0] != 1:
        raise ValueError(f"transform_robustness takes one image (1x3xHxW), got a batch of {x.shape[0]}")
    gen = torch.Generator().manual_seed(seed)
    scale = min_side + (1 - min_side) * torch.rand(n, generator=gen)
    angle = torch.deg2rad((2 * torch.rand(n, generator=gen) - 1) * degrees)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    shift = (2 * torch.rand(n, 2, generator=gen) - 1) * (1 - scale)[:, None]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    ).to(x)
    grid = F.affine_grid(theta, [n, *x.shape[1:]], align_corners=False)
    views = F.grid_sample(
        x.expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    t = class_index(model, target)
    with frozen(model) as net:
        top = torch.cat([net(channels_last(v)).argmax(1) for v in views.split(batch_size)])
    return (top == t).float().mean().item()
