"""Which pixels a decision rests on. Every method takes (model, x, target, ...) like captum's.

x: an Nx3xHxW batch in the model's input space (moved to the model's device); target: a class
(index or name) for every image, one per image, or None (each image's top class). A map to look at
comes back as a NumPy array with the batch axis, (N, ...) for N = 1 too; input_gradient, a building
block in the model's input space, comes back as a tensor shaped like x."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import settings
from .hooks import LayerRef, frozen, record, relu_rule
from .inputs import (
    Target,
    Targets,
    class_probabilities,
    fixed_targets,
    last_linear,
    resolve_targets,
    spatial,
    summed_class_score,
)
from .layers import ModelLike, as_net, on_model_device


@torch.no_grad()
def occlusion(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    size: int = 32,
    stride: int = 16,
    baseline: float | torch.Tensor = 0.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Probability of the target with a size x size square occluded at each position (Zeiler & Fergus 2013).

    x: Nx3xHxW normalised; target: a class, one per image, or None (each image's top class).
    baseline: what replaces the occluded pixels, in the model's input space: a number (0.0 is
    mid-grey for the offline model's (x - 0.5) / 0.5 input, the mean image for a mean-centred one)
    or a tensor shaped like x (a blurred copy, say). Windows lie fully inside the image, `stride`
    apart; each image's occluded copies are evaluated batch_size at a time.
    Returns (N, rows, cols) probabilities.
    """
    x = on_model_device(model, x)
    n, _, h, w = x.shape
    if not 0 < size <= min(h, w) or stride < 1:
        raise ValueError(f"need 0 < size <= {min(h, w)} and stride >= 1, got size={size}, stride={stride}")
    classes = fixed_targets(model, x, target)
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
                probs.append(class_probabilities(net, occluded, classes[i], batch_size))
            grids.append(torch.cat(probs).view(len(tops), len(lefts)))
    return torch.stack(grids).cpu().numpy()


def input_gradient(
    model: ModelLike, x: torch.Tensor, target: Target | Sequence[Target] | None = None
) -> torch.Tensor:
    """d(unnormalised class score)/d(input), one forward and one backward for the whole batch.

    x: Nx3xHxW normalised; target: a class (index or name), one per image, or None (top class).
    Returns a tensor shaped like x. The model's flags and modes are restored afterwards.
    """
    x = on_model_device(model, x).detach().clone().requires_grad_(True)
    with frozen(model) as net:
        summed_class_score(model, net(x), target).backward()
    return x.grad


def saliency(
    model: ModelLike,
    x: torch.Tensor,
    target: Target | Sequence[Target] | None = None,
    smooth: int = 0,
    noise: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """Saliency map (Simonyan et al. 2013): |gradient of the class score|, max over colour channels.

    smooth=n averages the maps of n noisy copies (SmoothGrad, Smilkov et al. 2017) with noise of
    std `noise` x (max - min of x). Returns (N, H, W).
    """
    x = on_model_device(model, x)
    if smooth <= 0:
        return input_gradient(model, x, target).abs().amax(1).cpu().numpy()
    if target is None:  # fix the class of the clean image, not of each noisy copy
        target = fixed_targets(model, x, target)
    gen = torch.Generator(device="cpu").manual_seed(settings.seed(seed))
    sigma = noise * (x.max() - x.min()).item()
    total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
    for _ in range(smooth):
        noisy = x + sigma * torch.randn(x.shape, generator=gen).to(x.device)
        total += input_gradient(model, noisy, target).abs().amax(1)
    return (total / smooth).cpu().numpy()


def _objective(model: ModelLike, net, x, target, layer, unit):
    """The scalar to differentiate: a class score, or a channel (or one unit) of an intermediate layer."""
    if layer is None:
        return summed_class_score(model, net(x), target)
    with record(net, layer) as rec:
        net(x)
    act = spatial(rec[layer], layer)
    channel = (
        act.mean((2, 3)).argmax(1)
        if target is None
        else torch.full((act.shape[0],), int(target), device=act.device)
    )
    maps = act[torch.arange(act.shape[0]), channel]  # (N, h, w)
    if unit is None:  # the channel's strongest unit
        return maps.flatten(1).max(1).values.sum()
    return maps[:, unit[0], unit[1]].sum()


def _rule_gradient(rule: str, model: ModelLike, x, target, layer, unit) -> np.ndarray:
    x = on_model_device(model, x).detach().clone().requires_grad_(True)
    with frozen(model) as net, relu_rule(net, rule):
        _objective(model, net, x, target, layer, unit).backward()
    return x.grad.cpu().numpy()


def backprop(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    layer: LayerRef | None = None,
    unit: tuple[int, int] | None = None,
) -> np.ndarray:
    """The plain gradient of a class score or of one unit, with the same arguments and result as
    guided_backprop (so the three rules can be compared side by side)."""
    return _rule_gradient("vanilla", model, x, target, layer, unit)


def guided_backprop(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    layer: LayerRef | None = None,
    unit: tuple[int, int] | None = None,
) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2014): only positive gradients pass a ReLU, and
    only where its input was positive.

    Without layer: of the class score `target` (None: top class). With layer: of channel `target`
    (None: the most active channel) at grid position unit=(row, col) (None: its strongest unit).
    Returns the input-shaped gradient, (N, 3, H, W).
    """
    return _rule_gradient("guided", model, x, target, layer, unit)


def deconvnet(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    layer: LayerRef | None = None,
    unit: tuple[int, int] | None = None,
) -> np.ndarray:
    """The deconvnet of Zeiler & Fergus 2013: a ReLU passes the positive part of the gradient, whatever
    its forward input. Same arguments and result as guided_backprop."""
    return _rule_gradient("deconvnet", model, x, target, layer, unit)


def _gap_head(net: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The global average pool and the linear layer after it, or a clear error."""
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))]
    why = "CAM (a global-average-pool + linear head, as in ResNet or EfficientNet; else use grad_cam)"
    head = last_linear(net, why)
    if not pools:
        raise ValueError(f"{why} needs a global average pool; this model has none")
    return pools[-1], head


def cam(model: ModelLike, x: torch.Tensor, target: Targets = None, upsample: bool = False) -> np.ndarray:
    """Class activation map (Zhou et al. 2016): the last conv features weighted by the target's
    classifier weights, sum_k w[target, k] A_k. Needs a GAP + linear head.

    Returns (N, h, w) at the features' resolution, or (N, H, W) (the input's) with upsample=True
    (bilinear).
    """
    x = on_model_device(model, x)
    net = as_net(model)
    pool, head = _gap_head(net)
    box = {}
    handle = pool.register_forward_pre_hook(lambda mod, args: box.__setitem__("a", args[0]))
    try:
        with frozen(net), torch.no_grad():
            logits = net(x)
    finally:
        handle.remove()
    t = resolve_targets(model, target, logits)
    maps = torch.einsum("nk,nkhw->nhw", head.weight.detach()[t], box["a"].float())
    return _finish(maps, x, upsample)


def grad_cam(
    model: ModelLike, x: torch.Tensor, target: Targets = None, layer: LayerRef = None, upsample: bool = False
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k alpha_k A_k), alpha_k = mean gradient of the class
    score over channel k of `layer`. One forward and one backward for the whole batch.

    Returns (N, h, w) at the layer's resolution, or (N, H, W) with upsample=True.
    """
    if layer is None:
        raise ValueError("grad_cam needs layer= (a conv layer name; see model.layers())")
    x = on_model_device(model, x)
    with frozen(model) as net, record(net, layer, grads=True) as rec:
        summed_class_score(model, net(x.detach().requires_grad_(True)), target).backward()
        a, g = spatial(rec[layer], layer), rec.grad(layer)
    maps = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1)).detach()
    return _finish(maps, x, upsample)


def guided_grad_cam(
    model: ModelLike, x: torch.Tensor, target: Targets = None, layer: LayerRef = None
) -> np.ndarray:
    """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM map. Shaped like guided_backprop."""
    x = on_model_device(model, x)
    t = target if callable(target) else fixed_targets(model, x, target)  # one class for both factors
    heat = grad_cam(model, x, t, layer, upsample=True)
    guided = guided_backprop(model, x, t)
    return guided * heat[:, None]


def _finish(maps: torch.Tensor, x: torch.Tensor, upsample: bool) -> np.ndarray:
    if upsample:
        maps = F.interpolate(maps[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return maps.cpu().numpy()
