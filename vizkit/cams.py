"""Grad-CAM's successors: Grad-CAM++, LayerCAM and Score-CAM, with grad_cam's signature
(model, x, target, layer, upsample=False). Each weighs the layer's maps A_k (N, K, h, w) differently;
the formulas follow pytorch-grad-cam's implementations, which the tests compare against."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .hooks import LayerRef, frozen, record
from .inputs import Target, class_probabilities, fixed_targets, spatial, summed_class_score
from .layers import ModelLike, check_batch, on_model_device


def maps_and_gradients(
    model: ModelLike, x: torch.Tensor, target, layer: LayerRef
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output A (N, K, h, w) and the gradient of each image's class score with respect to it."""
    if layer is None:
        raise ValueError("pass layer= (a conv layer name; see model.layers())")
    with frozen(model) as net, record(net, layer, grads=True) as rec:
        summed_class_score(model, net(x.detach().requires_grad_(True)), target).backward()
        a, g = spatial(rec[layer].detach(), layer), rec.grad(layer).detach()
    return a, g


def finish(maps: torch.Tensor, x: torch.Tensor, upsample: bool) -> np.ndarray:
    """ReLU, optional bilinear upsampling to the input's size, NumPy (N, h, w)."""
    maps = torch.relu(maps)
    if upsample:
        maps = F.interpolate(maps[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return maps.cpu().numpy()


def grad_cam_plus_plus(
    model: ModelLike,
    x: torch.Tensor,
    target: Target | None = None,
    layer: LayerRef = None,
    upsample: bool = False,
) -> np.ndarray:
    """Grad-CAM++ (Chattopadhyay et al. 2018): each position's positive gradient weighted by
    a = g^2 / (2 g^2 + sum(A) g^3), the closed form that assumes an exponential class score.
    One forward and one backward for the batch."""
    x = on_model_device(model, check_batch(x))
    a, g = maps_and_gradients(model, x, target, layer)
    g2 = g**2
    alpha = g2 / (2 * g2 + a.sum((2, 3), keepdim=True) * g2 * g + 1e-6)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = (torch.relu(g) * alpha).sum((2, 3), keepdim=True)
    return finish((weights * a).sum(1), x, upsample)


def layer_cam(
    model: ModelLike,
    x: torch.Tensor,
    target: Target | None = None,
    layer: LayerRef = None,
    upsample: bool = False,
) -> np.ndarray:
    """LayerCAM (Jiang et al. 2021): every position weighted by its own positive gradient,
    sum_k relu(g_k) * A_k, so shallow layers give fine maps too. One forward and one backward."""
    x = on_model_device(model, check_batch(x))
    a, g = maps_and_gradients(model, x, target, layer)
    return finish((torch.relu(g) * a).sum(1), x, upsample)


def score_cam(
    model: ModelLike,
    x: torch.Tensor,
    target: Target | None = None,
    layer: LayerRef = None,
    upsample: bool = False,
    batch_size: int = 32,
    weight: str = "logit",
) -> np.ndarray:
    """Score-CAM (Wang et al. 2020): no gradients; each channel k, upsampled and min-max scaled to
    [0, 1], masks the input, and the class score of the masked picture weighs A_k.

    weight="logit": a softmax over the channels of the masked pictures' class logits, as
    pytorch-grad-cam computes it; "probability": the class's softmax probability of each masked
    picture, as the paper's "confidence". One forward pass per channel and image (K per image:
    the cost of the method), batch_size at a time.
    """
    if weight not in ("logit", "probability"):
        raise ValueError(f"weight must be 'logit' or 'probability', got {weight!r}")
    x = on_model_device(model, check_batch(x))
    classes = fixed_targets(model, x, target)
    with frozen(model) as net, record(net, layer) as rec, torch.no_grad():
        net(x)
        a = spatial(rec[layer].detach(), layer)
    # pytorch-grad-cam upsamples with UpsamplingBilinear2d, i.e. align_corners=True
    up = F.interpolate(a, size=x.shape[2:], mode="bilinear", align_corners=True)
    lo, hi = up.flatten(2).min(-1).values[..., None, None], up.flatten(2).max(-1).values[..., None, None]
    masks = (up - lo) / (hi - lo + 1e-8)  # (N, K, H, W)
    weights = []
    with frozen(model) as net, torch.no_grad():
        for i, c in enumerate(classes):
            masked = x[i : i + 1] * masks[i][:, None]  # (K, 3, H, W)
            if weight == "probability":
                scores = class_probabilities(net, masked, c, batch_size)
                weights.append(scores)
            else:
                scores = torch.cat([net(m)[:, c] for m in masked.split(batch_size)])
                weights.append(scores.softmax(0))
    weights = torch.stack(weights)[..., None, None]  # (N, K, 1, 1)
    return finish((weights * a).sum(1), x, upsample)
