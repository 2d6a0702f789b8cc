"""Which pixels a decision rests on: occlusion, gradients (saliency, SmoothGrad as `smooth`, and the
three ReLU rules: backprop, deconvnet, guided backprop). The CAM family is in cams.py.

Every method is (model, x, target=None, *, ...) like captum's, listed in methods.METHODS: x is an
Nx3xHxW batch in the model's input space (moved to the model's device); target is one of
inputs.Targets. A map comes back as a NumPy array with the batch axis, (N, ...) for N = 1 too;
input_gradient, a building block in the model's input space, comes back as a tensor shaped like x."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import settings
from .hooks import LayerRef, frozen, record, relu_rule
from .inputs import (
    Targets,
    fixed_targets,
    in_batches,
    perturbation_targets,
    scores_of,
    spatial,
    summed_class_score,
)
from .layers import ModelLike, on_model_device, resolve_name, token_grid

__all__ = ["backprop", "deconvnet", "guided_backprop", "input_gradient", "occlusion", "saliency", "smooth"]


@torch.no_grad()
def occlusion(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    size: int = 32,
    stride: int = 16,
    baseline: float | torch.Tensor = 0.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Probability of the target with a size x size square occluded at each position (Zeiler & Fergus 2013).

    x: Nx3xHxW normalised; target: a class, one per image, or None (each image's top class): P(class)
    of the occluded copies; a callable target is scored on them instead. baseline: what replaces the occluded pixels, in the model's input space: a number (0.0 is
    mid-grey for the offline model's (x - 0.5) / 0.5 input, the mean image for a mean-centred one)
    or a tensor shaped like x (a blurred copy, say). Windows lie fully inside the image, `stride`
    apart; each image's occluded copies are evaluated batch_size at a time.
    Returns (N, rows, cols) probabilities (high = the square did not matter; methods.METHODS turns
    them into p0 - P).
    """
    x = on_model_device(model, x)
    n, _, h, w = x.shape
    if not 0 < size <= min(h, w) or stride < 1:
        raise ValueError(f"need 0 < size <= {min(h, w)} and stride >= 1, got size={size}, stride={stride}")
    scores = perturbation_targets(model, x, target)
    baseline = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    tops = torch.arange(0, h - size + 1, stride, device=x.device)
    lefts = torch.arange(0, w - size + 1, stride, device=x.device)
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    corners = torch.cartesian_prod(tops, lefts)
    grids = []
    with frozen(model) as net, torch.no_grad():
        for i in range(n):
            probs = []
            for chunk in corners.split(batch_size):
                rows = (ys >= chunk[:, :1]) & (ys < chunk[:, :1] + size)  # (B, H)
                cols = (xs >= chunk[:, 1:]) & (xs < chunk[:, 1:] + size)  # (B, W)
                mask = (rows[:, :, None] & cols[:, None, :])[:, None].to(x.dtype)  # (B, 1, H, W)
                occluded = x[i : i + 1] * (1 - mask) + baseline[i : i + 1] * mask
                probs.append(scores_of(net, occluded, scores[i], batch_size))
            grids.append(torch.cat(probs).view(len(tops), len(lefts)))
    return torch.stack(grids).cpu().numpy()


def input_gradient(model: ModelLike, x: torch.Tensor, target: Targets = None) -> torch.Tensor:
    """d(unnormalised class score)/d(input), one forward and one backward for the whole batch.

    x: Nx3xHxW normalised; target: inputs.Targets. Returns a tensor shaped like x. The model's flags
    and modes are restored afterwards.
    """
    x = on_model_device(model, x).detach().clone().requires_grad_(True)
    with frozen(model) as net:
        summed_class_score(model, net(x), target).backward()
    return x.grad


def _abs_gradient(model: ModelLike, x: torch.Tensor, target: Targets = None) -> np.ndarray:
    return input_gradient(model, x, target).abs().amax(1).cpu().numpy()


def saliency(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    smooth: int = 0,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 32,
) -> np.ndarray:
    """Saliency map (Simonyan et al. 2013): |gradient of the class score|, max over colour channels.

    smooth=n averages the maps of n noisy copies (SmoothGrad, Smilkov et al. 2017, as vizkit.smooth)
    with noise of std `noise` x (max - min of each image). batch_size images per forward and backward.
    Returns (N, H, W).
    """
    method = _abs_gradient if smooth <= 0 else _smoothed(_abs_gradient, smooth, noise, seed)
    return in_batches(lambda xb, tb: method(model, xb, tb), on_model_device(model, x), target, batch_size)


def smooth(method: Callable, n: int = 16, noise: float = 0.15) -> Callable:
    """SmoothGrad for any method (captum's NoiseTunnel): the mean of its maps of n noisy copies of x.

    The noise has std `noise` x (max - min) of each image; the n noise patterns come from the seed
    and are the same for every image, so a batch gives what its images give one by one. A class
    target None becomes each clean image's top class. Returns method(model, x, target=None, *, seed=0,
    batch_size=32, **options) -> the method's result shape.
    """

    def smoothed(
        model: ModelLike,
        x: torch.Tensor,
        target: Targets = None,
        *,
        seed: int = 0,
        batch_size: int = 32,
        **options,
    ) -> np.ndarray:
        run = _smoothed(lambda m, xb, tb: method(m, xb, tb, **options), n, noise, seed)
        return in_batches(lambda xb, tb: run(model, xb, tb), on_model_device(model, x), target, batch_size)

    smoothed.__name__ = f"smooth({getattr(method, '__name__', 'method')})"
    return smoothed


def _smoothed(method: Callable, n: int, noise: float, seed: int) -> Callable:
    """method averaged over n noisy copies (one noise pattern per copy, shared by all images)."""
    if n < 1:
        raise ValueError(f"SmoothGrad needs at least one noisy copy, got n={n}")

    def run(model: ModelLike, x: torch.Tensor, target: Targets) -> np.ndarray:
        if not callable(target):  # fix the class of the clean image, not of each noisy copy
            target = fixed_targets(model, x, target)
        gen = torch.Generator(device="cpu").manual_seed(settings.seed(seed))
        sigma = noise * (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
        total = 0
        for _ in range(n):
            eps = torch.randn(x.shape[1:], generator=gen).to(x.device)
            total = total + np.asarray(method(model, x + sigma * eps, target))
        return total / n

    return run


def _objective(model: ModelLike, net, x, target, layer, unit):
    """The scalar to differentiate: a class score, or a channel (or one unit) of an intermediate layer."""
    if layer is None:
        return summed_class_score(model, net(x), target)
    name = resolve_name(net, layer)
    with record(net, name) as rec:
        net(x)
    act = spatial(rec[name], name, token_grid(net, x.shape[2:]))
    channel = (
        act.mean((2, 3)).argmax(1)
        if target is None
        else torch.full((act.shape[0],), int(target), device=act.device)
    )
    maps = act[torch.arange(act.shape[0]), channel]  # (N, h, w)
    if unit is None:  # the channel's strongest unit
        return maps.flatten(1).max(1).values.sum()
    return maps[:, unit[0], unit[1]].sum()


def _rule_gradient(rule: str, model: ModelLike, x, target, layer, unit, batch_size: int) -> np.ndarray:
    def one_chunk(xb: torch.Tensor, tb: Targets) -> np.ndarray:
        xb = xb.detach().clone().requires_grad_(True)
        with frozen(model) as net, relu_rule(net, rule):
            _objective(model, net, xb, tb, layer, unit).backward()
        return xb.grad.cpu().numpy()

    return in_batches(one_chunk, on_model_device(model, x), target, batch_size)


def backprop(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef | None = None,
    unit: tuple[int, int] | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """The plain gradient of a class score or of one unit, with the same arguments and result as
    guided_backprop (so the three rules can be compared side by side)."""
    return _rule_gradient("vanilla", model, x, target, layer, unit, batch_size)


def guided_backprop(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef | None = None,
    unit: tuple[int, int] | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2014): only positive gradients pass a ReLU, and
    only where its input was positive.

    Without layer: of the class score `target` (None: top class). With layer: of channel `target`
    (None: the most active channel) at grid position unit=(row, col) (None: its strongest unit).
    Returns the input-shaped gradient, (N, 3, H, W).
    """
    return _rule_gradient("guided", model, x, target, layer, unit, batch_size)


def deconvnet(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef | None = None,
    unit: tuple[int, int] | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """The deconvnet of Zeiler & Fergus 2013: a ReLU passes the positive part of the gradient, whatever
    its forward input. Same arguments and result as guided_backprop."""
    return _rule_gradient("deconvnet", model, x, target, layer, unit, batch_size)
