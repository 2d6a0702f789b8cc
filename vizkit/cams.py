"""The CAM family over one capture: a layer's maps A (N, K, h, w), weighted per channel (or per
position) and summed over channels. CAM (classifier weights), Grad-CAM (mean gradients),
Grad-CAM++ and LayerCAM (gradients per position) differ only in the weights; Score-CAM weighs A_k
by the class score of the picture masked by A_k; Guided Grad-CAM multiplies Grad-CAM by guided
backprop. Formulas follow pytorch-grad-cam's implementations, which the tests compare against.

Every method is (model, x, target=None, *, layer, ...) (CAM reads the layer before the global pool
and takes none); `layer` is a name or a module of the model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .attribution import guided_backprop
from .hooks import LayerRef, frozen, record
from .inputs import (
    Targets,
    fixed_targets,
    in_batches,
    last_linear,
    probability_of,
    resolve_targets,
    scores_of,
    spatial,
    summed_class_score,
)
from .layers import ModelLike, as_net, on_model_device, resolve_name, token_grid

__all__ = ["cam", "grad_cam", "grad_cam_plus_plus", "guided_grad_cam", "layer_cam", "score_cam"]


def _maps_and_gradients(
    model: ModelLike, x: torch.Tensor, target: Targets, layer: LayerRef
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output A (N, K, h, w) and the gradient of each image's target score with respect to
    it, from one forward and one backward pass for the batch."""
    name = resolve_name(model, layer)
    with frozen(model) as net, record(net, name, grads=True) as rec:
        summed_class_score(model, net(x.detach().requires_grad_(True)), target).backward()
        grid = token_grid(model, x.shape[2:])  # a transformer block's tokens read as their patch grid
        a, g = spatial(rec[name].detach(), name, grid), spatial(rec.grad(name).detach(), name, grid)
    return a, g


def _weighted(weigh: Callable, model, x, target, layer, upsample: bool, batch_size: int) -> np.ndarray:
    """ReLU(weigh(A, dA) summed over channels), batch_size images at a time, optionally upsampled."""

    def one_chunk(xb: torch.Tensor, tb: Targets) -> np.ndarray:
        a, g = _maps_and_gradients(model, xb, tb, layer)
        return _finish(torch.relu((weigh(a, g) * a).sum(1)), xb, upsample)

    return in_batches(one_chunk, on_model_device(model, x), target, batch_size)


def _finish(maps: torch.Tensor, x: torch.Tensor, upsample: bool) -> np.ndarray:
    """Optional bilinear upsampling of maps (N, h, w) to the input's size; NumPy (N, h, w)."""
    if upsample:
        maps = F.interpolate(maps[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return maps.cpu().numpy()


def _gap_head(net: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The global average pool and the linear layer after it, or a clear error."""
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))]
    why = "CAM (a global-average-pool + linear head, as in ResNet or EfficientNet; else use grad_cam)"
    head = last_linear(net, why)
    if not pools:
        raise ValueError(f"{why} needs a global average pool; this model has none")
    return pools[-1], head


def cam(
    model: ModelLike, x: torch.Tensor, target: Targets = None, *, upsample: bool = False, batch_size: int = 32
) -> np.ndarray:
    """Class activation map (Zhou et al. 2016): the features before the global pool weighted by the
    target's classifier weights, sum_k w[target, k] A_k (signed: no ReLU). Needs a GAP + linear head;
    a class target only (CAM is defined by one class's weights).

    Returns (N, h, w) at the features' resolution, or (N, H, W) (the input's) with upsample=True.
    """
    if callable(target):
        raise TypeError(
            "CAM is defined by one class's classifier weights: pass a class, not a callable score"
        )
    net = as_net(model)
    pool, head = _gap_head(net)

    def one_chunk(xb: torch.Tensor, tb: Targets) -> np.ndarray:
        box = {}
        handle = pool.register_forward_pre_hook(lambda mod, args: box.__setitem__("a", args[0]))
        try:
            with frozen(net), torch.no_grad():
                logits = net(xb)
        finally:
            handle.remove()
        weights = head.weight.detach()[resolve_targets(model, tb, logits)]
        return _finish(torch.einsum("nk,nkhw->nhw", weights, box["a"].to(weights.dtype)), xb, upsample)

    return in_batches(one_chunk, on_model_device(model, x), target, batch_size)


def grad_cam(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef,
    upsample: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k alpha_k A_k), alpha_k = mean gradient of the class
    score over channel k of `layer`. One forward and one backward per batch_size images.

    Returns (N, h, w) at the layer's resolution, or (N, H, W) with upsample=True.
    """
    return _weighted(lambda a, g: g.mean((2, 3), keepdim=True), model, x, target, layer, upsample, batch_size)


def _plus_plus_weights(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    g2 = g**2
    alpha = g2 / (2 * g2 + a.sum((2, 3), keepdim=True) * g2 * g + 1e-6)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    return (torch.relu(g) * alpha).sum((2, 3), keepdim=True)


def grad_cam_plus_plus(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef,
    upsample: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM++ (Chattopadhyay et al. 2018): each position's positive gradient weighted by
    a = g^2 / (2 g^2 + sum(A) g^3), the closed form that assumes an exponential class score."""
    return _weighted(_plus_plus_weights, model, x, target, layer, upsample, batch_size)


def layer_cam(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef,
    upsample: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """LayerCAM (Jiang et al. 2021): every position weighted by its own positive gradient,
    sum_k relu(g_k) * A_k, so shallow layers give fine maps too."""
    return _weighted(lambda a, g: torch.relu(g), model, x, target, layer, upsample, batch_size)


def guided_grad_cam(
    model: ModelLike, x: torch.Tensor, target: Targets = None, *, layer: LayerRef, batch_size: int = 32
) -> np.ndarray:
    """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM map. Shaped like guided_backprop."""
    x = on_model_device(model, x)
    t = target if callable(target) else fixed_targets(model, x, target)  # one class for both factors
    heat = grad_cam(model, x, t, layer=layer, upsample=True, batch_size=batch_size)
    return guided_backprop(model, x, t, batch_size=batch_size) * heat[:, None]


def score_cam(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef,
    upsample: bool = False,
    batch_size: int = 16,
    weight: str = "logit",
) -> np.ndarray:
    """Score-CAM (Wang et al. 2020): no gradients; each channel k, upsampled and min-max scaled to
    [0, 1], masks the input, and the class score of the masked picture weighs A_k.

    weight="logit": a softmax over the channels of the masked pictures' class logits, as
    pytorch-grad-cam computes it; "probability": the class's softmax probability of each masked
    picture, as the paper's "confidence" (a callable target is scored, then weighed as "probability").
    One forward pass per channel and image (K per image: the cost of the method), batch_size at a time
    (channels-last; on a CPU, Lite0 runs 16 at a time in 13 ms a picture, 32 in 18, 64 in 22).
    """
    if weight not in ("logit", "probability"):
        raise ValueError(f"weight must be 'logit' or 'probability', got {weight!r}")
    x, name = on_model_device(model, x), resolve_name(model, layer)
    classes = None if callable(target) else fixed_targets(model, x, target)  # one forward of the clean batch
    scores = [target] * len(x) if classes is None else [probability_of(c) for c in classes]
    with frozen(model) as net, record(net, name) as rec, torch.no_grad():
        net(x)
        a = spatial(rec[name].detach(), name, token_grid(model, x.shape[2:]))
    # pytorch-grad-cam upsamples with UpsamplingBilinear2d, i.e. align_corners=True
    up = F.interpolate(a, size=x.shape[2:], mode="bilinear", align_corners=True)
    lo, hi = up.flatten(2).min(-1).values[..., None, None], up.flatten(2).max(-1).values[..., None, None]
    masks = (up - lo) / (hi - lo + 1e-8)  # (N, K, H, W)
    weights = []
    with frozen(model) as net, torch.no_grad():
        for i in range(len(x)):
            masked = x[i : i + 1] * masks[i][:, None]  # (K, 3, H, W)
            if classes is None or weight == "probability":
                weights.append(scores_of(net, masked, scores[i], batch_size))
            else:
                logit = scores_of(net, masked, lambda logits, c=classes[i]: logits[:, c], batch_size)
                weights.append(logit.softmax(0))  # a softmax over the channels
    weights = torch.stack(weights)[..., None, None]  # (N, K, 1, 1)
    return _finish(torch.relu((weights * a).sum(1)), x, upsample)
