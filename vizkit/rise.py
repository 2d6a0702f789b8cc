"""RISE (Petsiuk et al. 2018): importance as the expected class probability when a random set of
regions is kept, estimated by Monte Carlo over random smooth masks. Black-box: no gradients."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import settings
from .hooks import frozen
from .inputs import Targets, perturbation_targets
from .layers import ModelLike, channels_last, on_model_device

__all__ = ["rise", "rise_masks"]


def rise_masks(
    n: int, size: tuple[int, int], cells: int = 7, p: float = 0.5, batch_size: int = 64, seed: int = 0
) -> Iterator[torch.Tensor]:
    """n random masks (B, 1, H, W) in [0, 1], batch_size at a time, as RISE draws them.

    A cells x cells grid of keep (probability p) / drop, upsampled bilinearly to (cells + 1) cells of
    ceil(H / cells) pixels, then cropped at a random shift of up to one cell: smooth masks whose
    blobs do not sit on a fixed grid. Deterministic in seed; memory is one batch.
    """
    h, w = size
    ch, cw = -(-h // cells), -(-w // cells)
    gen = torch.Generator().manual_seed(settings.seed(seed))
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        grids, shifts = [], []
        for _ in range(b):  # one draw per mask, in order: the masks do not depend on batch_size
            grids.append((torch.rand(cells, cells, generator=gen) < p).float())
            shifts.append(
                (
                    int(torch.randint(0, ch, (1,), generator=gen)),
                    int(torch.randint(0, cw, (1,), generator=gen)),
                )
            )
        up = F.interpolate(
            torch.stack(grids)[:, None],
            size=((cells + 1) * ch, (cells + 1) * cw),
            mode="bilinear",
            align_corners=False,
        )
        yield torch.stack([up[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(shifts)]).clamp_(
            0, 1
        )


def rise(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    n_masks: int = 1000,
    cells: int = 7,
    p: float = 0.5,
    batch_size: int = 16,
    seed: int = 0,
) -> np.ndarray:
    """RISE saliency: sum_i P(target | x * M_i) M_i / (n_masks * p), masks streamed batch_size at a time.

    Masked pixels become 0 in the model's input space (mid-grey for the offline model). The same
    masks serve every image of the batch. A callable target is scored instead of P(class).
    Returns (N, H, W).
    """
    x = on_model_device(model, x).detach()
    scores = perturbation_targets(model, x, target)
    n, _, h, w = x.shape
    total = torch.zeros(n, h, w, device=x.device)
    with frozen(model) as net, torch.no_grad():
        for masks in rise_masks(n_masks, (h, w), cells, p, batch_size, seed):
            masks = masks.to(x)
            for i in range(n):
                probs = scores[i](net(channels_last(x[i : i + 1] * masks)))  # (B,)
                total[i] += torch.einsum("b,bhw->hw", probs, masks[:, 0])
    return (total / (n_masks * p)).cpu().numpy()
