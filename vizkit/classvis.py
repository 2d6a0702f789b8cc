"""Class and neuron visualization (notebook 08): images that a class score or a unit likes most,
made with vizkit.optvis.ascent and three recipes (Simonyan et al. 2013; Yosinski et al. 2015;
Olah et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import settings
from .inputs import Targets
from .layers import ModelLike, model_device
from .optvis import (
    Step,
    ascent,
    blur_every,
    clamp_pixels,
    class_score,
    clip_small_contribution,
    clip_small_norm,
    fourier_image,
    jitter,
    l2,
    pad,
    random_rotate,
    random_scale,
)

__all__ = ["RECIPES", "class_visualization"]

RECIPES = ("simonyan", "yosinski", "fourier")


def class_visualization(
    model: ModelLike,
    target: Targets,
    recipe: str = "fourier",
    steps: int = 200,
    size: int = 224,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[Step], bool | None] | None = None,
) -> torch.Tensor:
    """An image that maximises the class score of `target` (one class, or a list: one image each).

    recipe 'simonyan': plain normalised gradient ascent from zeros with an L2 penalty (Simonyan et al.
    2013); 'yosinski': plus jitter, periodic blur and clipping of weak pixels (Yosinski et al. 2015);
    'fourier': decorrelated Fourier parameterisation with padding, jitter, scaling and rotation
    (Olah et al. 2017). Returns an Nx3x size x size tensor in the model's input space.
    """
    n = 1 if isinstance(target, (int, str)) else len(target)
    dev = model_device(model)
    if recipe == "simonyan":
        x0 = torch.zeros(n, 3, size, size, device=dev)
        return ascent(
            model,
            class_score(target) - 1e-3 * l2(),
            x0,
            steps,
            lr=0.02,
            optimizer="normalized",
            projections=[clamp_pixels(model)],
            callback=callback,
            seed=seed,
            progress=recipe if progress else False,
        )
    if recipe == "yosinski":
        x0 = (
            torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(settings.seed(seed))).to(
                dev
            )
            * 0.1
        )
        return ascent(
            model,
            class_score(target) - 1e-3 * l2(),
            x0,
            steps,
            lr=0.02,
            optimizer="normalized",
            transforms=[jitter(size // 14)],
            projections=[
                blur_every(4, 0.5),
                clip_small_norm(20),
                clip_small_contribution(20),
                clamp_pixels(model),
            ],
            callback=callback,
            seed=seed,
            progress=recipe if progress else False,
        )
    if recipe == "fourier":
        pad_w = size // 16
        return ascent(
            model,
            class_score(target),
            fourier_image(model, size, n, seed=seed),
            steps,
            lr=0.05,
            optimizer="adam",
            transforms=[
                pad(pad_w),
                jitter(pad_w // 2),
                random_scale([0.9, 0.95, 1.0, 1.05, 1.1]),
                random_rotate(20),
                jitter(max(1, pad_w // 4)),
            ],
            callback=callback,
            seed=seed,
            progress=recipe if progress else False,
        )
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")
