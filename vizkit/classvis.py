"""Class visualization (notebook 08): images that a class score likes most, made with
vizkit.optvis.ascent and three recipes as data, RECIPES (Simonyan et al. 2013; Yosinski et al. 2015;
Olah et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import settings
from .inputs import Targets
from .layers import ModelLike, model_device
from .objectives import class_score, l2
from .optvis import (
    Step,
    ascent,
    blur_every,
    clamp_pixels,
    clip_small_contribution,
    clip_small_norm,
    fourier_image,
    jitter,
    pad,
    random_rotate,
    random_scale,
)

__all__ = ["RECIPES", "Recipe", "class_visualization"]


@dataclass(frozen=True)
class Recipe:
    """A class-visualisation recipe as data: where ascent starts, how it steps, the image's priors."""

    paper: str
    start: Callable  # (model, n, size, seed) -> a model-space Nx3xsizexsize tensor or (params, render)
    lr: float
    optimizer: str  # one of optvis.OPTIMIZERS
    l2: float = 0.0  # weight of the L2 penalty on the image (0: none)
    transforms: Callable = lambda size: []  # size -> random changes before each forward pass
    projections: Callable = lambda model: []  # model -> changes to the pixels after each step


def _zeros(model: ModelLike, n: int, size: int, seed: int) -> torch.Tensor:
    return torch.zeros(n, 3, size, size, device=model_device(model))


def _noise(model: ModelLike, n: int, size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(settings.seed(seed))
    return torch.randn(n, 3, size, size, generator=gen).to(model_device(model)) * 0.1


def _fourier(model: ModelLike, n: int, size: int, seed: int):
    return fourier_image(model, size, n, seed=seed)


def _olah_transforms(size: int) -> list:
    pad_w = size // 16
    scales = [0.9, 0.95, 1.0, 1.05, 1.1]
    return [
        pad(pad_w),
        jitter(pad_w // 2),
        random_scale(scales),
        random_rotate(20),
        jitter(max(1, pad_w // 4)),
    ]


def _yosinski_projections(model: ModelLike) -> list:
    return [blur_every(4, 0.5), clip_small_norm(20), clip_small_contribution(20), clamp_pixels(model)]


RECIPES = {
    # plain normalised gradient ascent from zeros with an L2 penalty
    "simonyan": Recipe(
        "Simonyan et al. 2013", _zeros, 0.02, "normalized", 1e-3, projections=lambda m: [clamp_pixels(m)]
    ),
    # plus jitter, periodic blur and clipping of weak pixels
    "yosinski": Recipe(
        "Yosinski et al. 2015",
        _noise,
        0.02,
        "normalized",
        1e-3,
        lambda size: [jitter(size // 14)],
        _yosinski_projections,
    ),
    # a decorrelated Fourier parameterisation, padded, jittered, scaled and rotated at every step
    "fourier": Recipe("Olah et al. 2017", _fourier, 0.05, "adam", transforms=_olah_transforms),
}


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

    recipe: a name in RECIPES: 'simonyan' (Simonyan et al. 2013), 'yosinski' (Yosinski et al. 2015)
    or 'fourier' (Olah et al. 2017; see each Recipe). Returns an Nx3x size x size tensor in the
    model's input space.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {list(RECIPES)}")
    r, n = RECIPES[recipe], 1 if isinstance(target, (int, str)) else len(target)
    objective = class_score(target) - r.l2 * l2() if r.l2 else class_score(target)
    return ascent(
        model,
        objective,
        r.start(model, n, size, seed),
        steps,
        lr=r.lr,
        optimizer=r.optimizer,
        transforms=r.transforms(size),
        projections=r.projections(model),
        callback=callback,
        seed=seed,
        progress=recipe if progress else False,
    )
