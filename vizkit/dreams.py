"""DeepDream (notebook 10; Mordvintsev et al. 2015): amplify what a layer sees, octave by octave,
with vizkit.optvis.ascent."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .hooks import LayerRef
from .layers import ModelLike, on_model_device
from .objectives import Objective, layer_norm
from .optvis import ascent, clamp_pixels, jitter

__all__ = ["deepdream"]


def deepdream(
    model: ModelLike,
    x: torch.Tensor,
    layer: LayerRef,
    objective: Objective | None = None,
    octaves: int = 4,
    scale: float = 1.4,
    steps: int = 10,
    lr: float = 0.02,
    jitter_px: int = 32,
    progress: bool = True,
) -> torch.Tensor:
    """DeepDream (Mordvintsev et al. 2015): amplify what `layer` sees, from coarse to fine scales.

    objective: default layer_norm(layer) (the layer's gradient set to its activation); pass guide(...)
    or class_score(...) for guided dreams. Each octave is `scale` times larger than the previous; the
    detail dreamed at one octave is carried up to the next. x: 1x3xHxW model space; returns the same shape.
    """
    x = on_model_device(model, x).detach()
    objective = objective or layer_norm(layer)
    h, w = x.shape[-2:]
    sizes = [(max(1, round(h / scale**k)), max(1, round(w / scale**k))) for k in reversed(range(octaves))]
    detail = torch.zeros_like(x[..., : sizes[0][0], : sizes[0][1]])
    for k, size in enumerate(sizes):
        base = F.interpolate(x, size=size, mode="bilinear", align_corners=False) if size != (h, w) else x
        detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        dreamed = ascent(
            model,
            objective,
            base + detail,
            steps,
            lr=lr,
            optimizer="normalized",
            transforms=[jitter(jitter_px)],
            projections=[clamp_pixels(model)],
            seed=k,  # the jitter of each octave: VIZKIT_SEED + k
            progress=f"octave {k + 1}/{octaves}" if progress else False,
        )
        detail = dreamed - base
    return dreamed
