"""Scores for explanation maps against ground truth: the pointing game and the deletion metric."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .attribution import Target, class_index, class_probabilities
from .hooks import frozen
from .images import resize_map
from .layers import on_model_device


def pointing_game(heat: np.ndarray, mask: np.ndarray) -> bool:
    """True if the map's maximum (upsampled bilinearly to the mask's size) lies on the object (Zhang et al. 2016)."""
    h = resize_map(heat, mask.shape)
    return bool(mask.flat[int(np.argmax(h))])


@torch.no_grad()
def deletion_curve(model, x: torch.Tensor, target: Target, heat: np.ndarray,
                   fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), baseline: float = 0.0,
                   batch_size: int = 16) -> np.ndarray:
    """Probability of `target` as the most important pixels (by `heat`) are replaced by `baseline`
    (Petsiuk et al. 2018): one value per fraction of pixels removed. A lower curve means the map
    found the pixels the decision needs; its mean over fractions approximates the area under it.
    """
    x = on_model_device(model, x)
    h, w = x.shape[2:]
    order = np.argsort(-resize_map(heat, (h, w)).ravel(), kind="stable")   # most important first
    rank = torch.empty(h * w, dtype=torch.long, device=x.device)
    rank[torch.from_numpy(order).to(x.device)] = torch.arange(h * w, device=x.device)
    rank = rank.view(1, 1, h, w)
    counts = torch.tensor([round(f * h * w) for f in fractions], device=x.device).view(-1, 1, 1, 1)
    removed = (rank < counts).to(x.dtype)                                 # (F, 1, H, W)
    batch = x * (1 - removed) + baseline * removed
    t = class_index(model, target)
    with frozen(model) as net, torch.no_grad():
        return class_probabilities(net, batch, t, batch_size).cpu().numpy()
