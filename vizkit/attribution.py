"""Which pixels a decision rests on. Every method takes (model, x, target, ...) like captum's."""
from __future__ import annotations

from typing import Union

import numpy as np
import torch

from .hooks import frozen
from .layers import channels_last, check_batch

Target = Union[int, str]


def class_index(model, target: Target) -> int:
    """A class index from an int or, with a vizkit Model, a class name."""
    if isinstance(target, str):
        if not hasattr(model, "class_index"):
            raise TypeError("class names need the model from vizkit.load_model; pass an index")
        return model.class_index(target)
    return int(target)


@torch.no_grad()
def occlusion(model, x: torch.Tensor, target: Target, size: int = 32, stride: int = 16,
              baseline: Union[float, torch.Tensor] = 0.0, batch_size: int = 16) -> np.ndarray:
    """Probability of `target` with a size x size square occluded at each position (Zeiler & Fergus 2013).

    x: one normalised 1x3xHxW image. baseline: what replaces the occluded pixels, in the model's
    input space: a number (0.0 is the data mean after normalisation) or a tensor shaped like x
    (a blurred copy, say). Windows lie fully inside the image, `stride` apart; the occluded copies
    are evaluated batch_size at a time. Returns the (rows, cols) grid of probabilities.
    """
    x = check_batch(x)
    if x.shape[0] != 1:
        raise ValueError(f"occlusion takes one image (1x3xHxW), got a batch of {x.shape[0]}")
    _, _, h, w = x.shape
    if not 0 < size <= min(h, w) or stride < 1:
        raise ValueError(f"need 0 < size <= {min(h, w)} and stride >= 1, got size={size}, stride={stride}")
    target = class_index(model, target)
    baseline = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    tops = torch.arange(0, h - size + 1, stride, device=x.device)
    lefts = torch.arange(0, w - size + 1, stride, device=x.device)
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    probs = []
    with frozen(model) as net, torch.no_grad():
        corners = torch.cartesian_prod(tops, lefts)
        for chunk in corners.split(batch_size):
            rows = (ys >= chunk[:, :1]) & (ys < chunk[:, :1] + size)          # (B, H)
            cols = (xs >= chunk[:, 1:]) & (xs < chunk[:, 1:] + size)          # (B, W)
            mask = (rows[:, :, None] & cols[:, None, :])[:, None].to(x.dtype)  # (B, 1, H, W)
            occluded = x * (1 - mask) + baseline * mask
            probs.append(net(channels_last(occluded)).softmax(-1)[:, target])
    return torch.cat(probs).view(len(tops), len(lefts)).cpu().numpy()
