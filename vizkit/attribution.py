"""Which pixels a decision rests on. Every method takes (model, x, target, ...) like captum's."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hooks import LayerRef, frozen, record, relu_rule
from .layers import as_net, channels_last, on_model_device

Target = int | str


def class_index(model, target: Target) -> int:
    """A class index from an int or, with a vizkit Model, a class name."""
    if isinstance(target, str):
        if not hasattr(model, "class_index"):
            raise TypeError("class names need the model from vizkit.load_model; pass an index")
        return model.class_index(target)
    return int(target)


@torch.no_grad()
def occlusion(
    model,
    x: torch.Tensor,
    target: Target,
    size: int = 32,
    stride: int = 16,
    baseline: float | torch.Tensor = 0.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Probability of `target` with a size x size square occluded at each position (Zeiler & Fergus 2013).

    x: one normalised 1x3xHxW image. baseline: what replaces the occluded pixels, in the model's
    input space: a number (0.0 is mid-grey for the offline model's (x - 0.5) / 0.5 input, the mean
    image for a mean-centred one) or a tensor shaped like x (a blurred copy, say). Windows lie fully
    inside the image, `stride` apart; the occluded copies are evaluated batch_size at a time.
    Returns the (rows, cols) grid of probabilities.
    """
    x = on_model_device(model, x)
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
            rows = (ys >= chunk[:, :1]) & (ys < chunk[:, :1] + size)  # (B, H)
            cols = (xs >= chunk[:, 1:]) & (xs < chunk[:, 1:] + size)  # (B, W)
            mask = (rows[:, :, None] & cols[:, None, :])[:, None].to(x.dtype)  # (B, 1, H, W)
            probs.append(class_probabilities(net, x * (1 - mask) + baseline * mask, target, batch_size))
    return torch.cat(probs).view(len(tops), len(lefts)).cpu().numpy()


def class_probabilities(net, batch: torch.Tensor, target: int, batch_size: int = 16) -> torch.Tensor:
    """P(target) for every image of a normalised batch, evaluated batch_size at a time (channels-last).

    Call it inside `frozen(model)` and `torch.no_grad()`."""
    return torch.cat([net(channels_last(b)).softmax(-1)[:, target] for b in batch.split(batch_size)])


def targets(
    model, target: Target | Sequence[Target] | torch.Tensor | None, logits: torch.Tensor
) -> torch.Tensor:
    """Class indices (N,) from one target for all images, one per image, or None (each image's top class)."""
    n = logits.shape[0]
    if target is None:
        return logits.argmax(-1)
    if isinstance(target, (int, str)):
        return torch.full((n,), class_index(model, target), dtype=torch.long, device=logits.device)
    t = torch.as_tensor([class_index(model, t) for t in target], device=logits.device)
    if t.shape != (n,):
        raise ValueError(f"got {t.numel()} targets for {n} images")
    return t


def summed_class_score(model, logits: torch.Tensor, target) -> torch.Tensor:
    """Sum over the batch of each image's target logit (the unnormalised class score)."""
    return logits.gather(1, targets(model, target, logits)[:, None]).sum()


def fixed_targets(model, x: torch.Tensor, target) -> list[int]:
    """The classes of the clean batch x (for None: each image's top class), as a list of indices."""
    with frozen(model) as net, torch.no_grad():
        return targets(model, target, net(x)).tolist()


def _unbatch(a: np.ndarray, single: bool) -> np.ndarray:
    return a[0] if single else a


def input_gradient(model, x: torch.Tensor, target: Target | Sequence[Target] | None = None) -> torch.Tensor:
    """d(unnormalised class score)/d(input), one forward and one backward for the whole batch.

    x: Nx3xHxW normalised; target: a class (index or name), one per image, or None (top class).
    Returns a tensor shaped like x. The model's flags and modes are restored afterwards.
    """
    x = on_model_device(model, x).detach().clone().requires_grad_(True)
    with frozen(model) as net:
        summed_class_score(model, net(x), target).backward()
    return x.grad


def saliency(
    model,
    x: torch.Tensor,
    target: Target | Sequence[Target] | None = None,
    smooth: int = 0,
    noise: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """Saliency map (Simonyan et al. 2013): |gradient of the class score|, max over colour channels.

    smooth=n averages the maps of n noisy copies (SmoothGrad, Smilkov et al. 2017) with noise of
    std `noise` x (max - min of x). Returns (H, W) for one image, (N, H, W) for a batch.
    """
    x = on_model_device(model, x)
    single = x.shape[0] == 1
    if smooth <= 0:
        return _unbatch(input_gradient(model, x, target).abs().amax(1).cpu().numpy(), single)
    if target is None:  # fix the class of the clean image, not of each noisy copy
        target = fixed_targets(model, x, target)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    sigma = noise * (x.max() - x.min()).item()
    total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
    for _ in range(smooth):
        noisy = x + sigma * torch.randn(x.shape, generator=gen).to(x.device)
        total += input_gradient(model, noisy, target).abs().amax(1)
    return _unbatch((total / smooth).cpu().numpy(), single)


def _objective(model, net, x, target, layer, unit):
    """The scalar to differentiate: a class score, or a channel (or one unit) of an intermediate layer."""
    if layer is None:
        return summed_class_score(model, net(x), target)
    with record(net, layer) as rec:
        net(x)
    act = rec[layer]
    if act.ndim != 4:
        raise ValueError(f"layer {layer!r} has no spatial grid (output shape {tuple(act.shape)})")
    channel = (
        act.mean((2, 3)).argmax(1)
        if target is None
        else torch.full((act.shape[0],), int(target), device=act.device)
    )
    maps = act[torch.arange(act.shape[0]), channel]  # (N, h, w)
    if unit is None:  # the channel's strongest unit
        return maps.flatten(1).max(1).values.sum()
    return maps[:, unit[0], unit[1]].sum()


def _rule_gradient(rule: str, model, x, target, layer, unit) -> np.ndarray:
    x = on_model_device(model, x)
    single = x.shape[0] == 1
    x = x.detach().clone().requires_grad_(True)
    with frozen(model) as net, relu_rule(net, rule):
        _objective(model, net, x, target, layer, unit).backward()
    return _unbatch(x.grad.cpu().numpy(), single)


def backprop(
    model, x: torch.Tensor, target=None, layer: LayerRef | None = None, unit: tuple[int, int] | None = None
) -> np.ndarray:
    """The plain gradient of a class score or of one unit, with the same arguments and result as
    guided_backprop (so the three rules can be compared side by side)."""
    return _rule_gradient("vanilla", model, x, target, layer, unit)


def guided_backprop(
    model, x: torch.Tensor, target=None, layer: LayerRef | None = None, unit: tuple[int, int] | None = None
) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2014): only positive gradients pass a ReLU, and
    only where its input was positive.

    Without layer: of the class score `target` (None: top class). With layer: of channel `target`
    (None: the most active channel) at grid position unit=(row, col) (None: its strongest unit).
    Returns the input-shaped gradient, (3, H, W) for one image, (N, 3, H, W) for a batch.
    """
    return _rule_gradient("guided", model, x, target, layer, unit)


def deconvnet(
    model, x: torch.Tensor, target=None, layer: LayerRef | None = None, unit: tuple[int, int] | None = None
) -> np.ndarray:
    """The deconvnet of Zeiler & Fergus 2013: a ReLU passes the positive part of the gradient, whatever
    its forward input. Same arguments and result as guided_backprop."""
    return _rule_gradient("deconvnet", model, x, target, layer, unit)


def _gap_head(net: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The global average pool and the linear layer after it, or a clear error."""
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not pools or not linears:
        raise ValueError(
            "CAM needs a global-average-pool + linear head (ResNet, EfficientNet); this "
            "model has none: use grad_cam(model, x, target, layer) instead"
        )
    return pools[-1], linears[-1]


def cam(model, x: torch.Tensor, target=None, upsample: bool = False) -> np.ndarray:
    """Class activation map (Zhou et al. 2016): the last conv features weighted by the target's
    classifier weights, sum_k w[target, k] A_k. Needs a GAP + linear head.

    Returns (h, w) at the features' resolution for one image ((N, h, w) for a batch), or the
    input's (H, W) with upsample=True (bilinear).
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
    t = targets(model, target, logits)
    maps = torch.einsum("nk,nkhw->nhw", head.weight.detach()[t], box["a"].float())
    return _finish(maps, x, upsample)


def grad_cam(
    model, x: torch.Tensor, target=None, layer: LayerRef = None, upsample: bool = False
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k alpha_k A_k), alpha_k = mean gradient of the class
    score over channel k of `layer`. One forward and one backward for the whole batch.

    Returns (h, w) at the layer's resolution for one image ((N, h, w) for a batch), or (H, W)
    with upsample=True.
    """
    if layer is None:
        raise ValueError("grad_cam needs layer= (a conv layer name; see model.layers())")
    x = on_model_device(model, x)
    with frozen(model) as net, record(net, layer, grads=True) as rec:
        summed_class_score(model, net(x.detach().requires_grad_(True)), target).backward()
        a, g = rec[layer], rec.grad(layer)
    if a.ndim != 4:
        raise ValueError(f"layer {layer!r} has no spatial grid (output shape {tuple(a.shape)})")
    maps = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1)).detach()
    return _finish(maps, x, upsample)


def guided_grad_cam(model, x: torch.Tensor, target=None, layer: LayerRef = None) -> np.ndarray:
    """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM map. Shaped like guided_backprop."""
    x = on_model_device(model, x)
    t = fixed_targets(model, x, target)  # one class for both factors
    heat = grad_cam(model, x, t, layer, upsample=True)
    guided = guided_backprop(model, x, t)
    return guided * (heat[:, None] if heat.ndim == 3 else heat[None])


def _finish(maps: torch.Tensor, x: torch.Tensor, upsample: bool) -> np.ndarray:
    if upsample:
        maps = F.interpolate(maps[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return _unbatch(maps.cpu().numpy(), x.shape[0] == 1)
