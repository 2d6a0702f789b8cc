"""Optimisation-based visualization: one loop in which the weights stay fixed and the image changes.

Objectives, transforms, projections and image parameterisations are small pieces that compose
(as in lucent). Built on `ascent`: class visualization (vizkit.classvis), fooling images and FGSM
(vizkit.attacks), DeepDream (vizkit.dreams), feature inversion, texture synthesis and style
transfer (vizkit.style).
All images are Nx3xHxW tensors in the model's input space (normalised) unless a docstring says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from tqdm.auto import tqdm

from . import settings
from .hooks import frozen, record
from .inputs import pixel_range, stats
from .layers import ModelLike, channels_last, model_device, on_model_device, resolve_name
from .objectives import Forward, Objective

# fmt: off
__all__ = [
    "OPTIMIZERS", "ascent", "blur_every", "clamp_pixels", "clip_small_contribution", "clip_small_norm",
    "centre_crop", "crop_to_multiple", "eps_ball", "fourier_image", "gaussian_blur", "jitter", "NormalizedGradient", "pad", "pixel_image",
    "Projection", "random_rotate", "random_scale", "Step", "Transform",
]
# fmt: on

# ----------------------------------------------------------------------------------------------
# Transforms: random, differentiable changes applied before each forward pass (robustness priors).

Transform = Callable[[torch.Tensor], torch.Tensor]


def jitter(d: int) -> Transform:
    """Roll the image by a random shift of up to d pixels in each direction (wraps around)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(-d, d + 1, (2,)))
        return x.roll((dy, dx), dims=(-2, -1))

    return fn


def pad(w: int, mode: str = "reflect") -> Transform:
    """Pad by w pixels on every side, so that jitter and rotation do not show the border."""
    return lambda x: F.pad(x, (w, w, w, w), mode=mode)


def random_scale(scales: Sequence[float]) -> Transform:
    """Resize by a factor drawn from `scales` (bilinear)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        s = scales[int(torch.randint(len(scales), (1,)))]
        return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False) if s != 1 else x

    return fn


def random_rotate(degrees: float) -> Transform:
    """Rotate by an angle drawn uniformly from [-degrees, degrees] (bilinear, border pixels repeated)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        a = math.radians(float(torch.empty(1).uniform_(-degrees, degrees)))
        theta = torch.tensor(
            [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], device=x.device
        )
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3).to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    return fn


def centre_crop(size: int) -> Transform:
    """Centre-crop to size x size (a network that takes one input size only, e.g. DeiT at 224)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        if min(top, left) < 0:
            raise ValueError(f"centre_crop({size}) got a smaller image, {tuple(x.shape[-2:])}")
        return x[..., top : top + size, left : left + size]

    return fn


def crop_to_multiple(m: int) -> Transform:
    """Centre-crop height and width down to multiples of m (a Vision Transformer's patch size, whose
    patch embedding takes no other size); last in a list of transforms."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        top, left = (h % m) // 2, (w % m) // 2
        return x[..., top : top + h - h % m, left : left + w - w % m]

    return fn


def _compose(transforms: Sequence[Transform]) -> Transform:
    """Apply transforms in order."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        for t in transforms:
            x = t(x)
        return x

    return fn


# ----------------------------------------------------------------------------------------------
# Projections: changes made to a pixel image between steps (no gradient flows through them).

Projection = Callable[[torch.Tensor, torch.Tensor, int], None]  # (image param, its gradient, step) -> None


def clamp_pixels(model: ModelLike) -> Projection:
    """Keep every pixel inside [0, 1] (in the model's input space)."""
    lo, hi = pixel_range(model)

    def fn(x, grad, step):
        x.clamp_(lo.to(x), hi.to(x))

    return fn


def blur_every(k: int, sigma: float) -> Projection:
    """Every k steps, blur the image with a Gaussian of std `sigma` pixels (Yosinski et al. 2015)."""

    def fn(x, grad, step):
        if sigma > 0 and (step + 1) % k == 0:
            x.copy_(gaussian_blur(x, sigma))

    return fn


def clip_small_norm(percentile: float) -> Projection:
    """Set the pixels whose colour vector has the smallest norm (bottom `percentile` %) to the mean colour."""

    def fn(x, grad, step):
        norm = x.norm(dim=1, keepdim=True)
        x.mul_(norm >= _percentile(norm, percentile))

    return fn


def clip_small_contribution(percentile: float) -> Projection:
    """Set the pixels that contribute least to the objective (|x * grad| summed over colours) to the mean."""

    def fn(x, grad, step):
        contribution = (x * grad).abs().sum(1, keepdim=True)
        x.mul_(contribution >= _percentile(contribution, percentile))

    return fn


def eps_ball(model: ModelLike, center: torch.Tensor, eps: float) -> Projection:
    """Keep x within `eps` (in [0, 1] pixel units, per pixel) of `center` and inside [0, 1]."""
    _, std = stats(model)
    lo, hi = pixel_range(model)
    low, high = torch.max(center - eps / std, lo), torch.min(center + eps / std, hi)

    def fn(x, grad, step):
        x.clamp_(low, high)

    return fn


def _percentile(v: torch.Tensor, percentile: float) -> torch.Tensor:
    """Per-image percentile of v (N,1,H,W) -> (N,1,1,1)."""
    return torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of an Nx3xHxW tensor, kernel out to 3 sigma (torchvision's, reflect padding)."""
    k = 2 * max(1, math.ceil(3 * sigma)) + 1
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


# ----------------------------------------------------------------------------------------------
# Image parameterisations: (parameters, render) where render() gives the image in model space.


def pixel_image(x: torch.Tensor) -> tuple[list[torch.Tensor], Callable[[], torch.Tensor]]:
    """The pixels themselves are the parameters (a copy of x, model space)."""
    p = x.detach().clone().requires_grad_(True)
    return [p], lambda: p


# Square root of the colour correlation of ImageNet pixels (Olah et al. 2017, lucid), columns normalised.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


def fourier_image(
    model: ModelLike,
    size: int | tuple[int, int],
    batch: int = 1,
    decay: float = 1.0,
    sd: float = 0.01,
    seed: int = 0,
) -> tuple[list[torch.Tensor], Callable[[], torch.Tensor]]:
    """A decorrelated-colour Fourier parameterisation (Olah et al. 2017, Feature Visualization).

    The parameters are the image's spectrum, scaled by 1/frequency^decay so that every frequency
    learns at the same rate, in a decorrelated colour space; a sigmoid keeps pixels in (0, 1).
    """
    h, w = (size, size) if isinstance(size, int) else size
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    scale = 1.0 / torch.maximum(torch.sqrt(fy**2 + fx**2), torch.tensor(1.0 / max(h, w))) ** decay
    gen = torch.Generator().manual_seed(settings.seed(seed))
    dev = model_device(model)
    spectrum = (torch.randn(batch, 3, *scale.shape, 2, generator=gen) * sd).to(dev).requires_grad_(True)
    scale, color = scale.to(dev), _COLOR_SQRT.to(dev)
    mean, std = stats(model)  # once, not at every render

    def render() -> torch.Tensor:
        img = torch.fft.irfftn(torch.view_as_complex(spectrum) * scale, s=(h, w), norm="ortho") / 4.0
        img = torch.einsum("nchw,dc->ndhw", img, color)
        return (torch.sigmoid(img) - mean) / std

    return [spectrum], render


# ----------------------------------------------------------------------------------------------
# The loop.


class NormalizedGradient(torch.optim.Optimizer):
    """Gradient descent with each image's step of a fixed size: lr * g / mean|g| ('mean', DeepDream),
    lr * g / ||g||_2 ('l2', CS231n) or lr * sign(g) ('sign', FGSM). lr may be a tensor (per channel)."""

    def __init__(self, params, lr: float | torch.Tensor, mode: str = "mean"):
        if mode not in ("mean", "l2", "sign"):
            raise ValueError(f"mode must be 'mean', 'l2' or 'sign', got {mode!r}")
        super().__init__(params, {"lr": lr, "mode": mode})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                dims = tuple(range(1, g.ndim))
                if group["mode"] == "sign":
                    p.sub_(group["lr"] * g.sign())
                    continue
                if group["mode"] == "l2":
                    size = torch.linalg.vector_norm(g, dim=dims, keepdim=True)
                else:
                    size = g.abs().mean(dim=dims, keepdim=True)
                p.sub_(group["lr"] * g / size.clamp(min=1e-12))
        return loss


OPTIMIZERS = ("adam", "normalized", "l2", "sign", "lbfgs")


def _make_optimizer(
    params: list[torch.Tensor], optimizer: str, lr: float | torch.Tensor
) -> torch.optim.Optimizer:
    """One of OPTIMIZERS over `params` with learning rate lr."""
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if optimizer in ("normalized", "l2", "sign"):
        return NormalizedGradient(params, lr, "mean" if optimizer == "normalized" else optimizer)
    if optimizer == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=50)
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")


@dataclass
class Step:
    """What the callback sees after each step's forward pass (the image before the update)."""

    step: int
    x: torch.Tensor  # rendered image, model space, detached
    logits: torch.Tensor  # logits of the transformed image, detached
    value: float  # the objective


def _parameters(model: ModelLike, image, optimizer: str, projections: Sequence) -> tuple[list, Callable]:
    """(params, render) of what ascent optimises: a pixel image from a tensor, or a (params, render) pair."""
    if isinstance(image, torch.Tensor):
        image = on_model_device(model, image)
        return pixel_image(image.contiguous() if optimizer == "lbfgs" else image)  # L-BFGS flattens grads
    if image is None:
        raise ValueError(
            "pass image=: a 1x3xHxW model-space tensor, or (params, render) from fourier_image(...)"
        )
    if projections:
        raise ValueError(
            "projections change pixels in place: they need a pixel image (a tensor as image=), "
            "not a (params, render) parameterisation"
        )
    return image


def ascent(
    model: ModelLike,
    objective: Objective,
    image=None,
    steps: int = 100,
    lr: float | torch.Tensor = 0.05,
    optimizer: str = "adam",
    transforms: Sequence[Transform] = (),
    projections: Sequence[Projection] = (),
    callback: Callable[[Step], bool | None] | None = None,
    seed: int = 0,
    progress: bool | str = True,
) -> torch.Tensor:
    """Maximise `objective` over an image with the model's weights fixed; returns the final image.

    image: a 1x3xHxW (or Nx3xHxW) model-space tensor to start from (its pixels are optimised), or a
    (params, render) pair such as fourier_image(...). optimizer: 'adam', 'normalized' (each image
    moves lr * g / mean|g|), 'l2' (lr * g / ||g||), 'sign' (lr * sign g) or 'lbfgs'. transforms:
    random differentiable changes before each forward pass; projections: in-place changes to a pixel
    image after each step. callback(Step) may return True to stop; the image of that step (before
    its update) is then returned. progress: a progress bar (a string labels it), or False.
    The model's mode and flags come back unchanged; the global random state is not touched.
    """
    params, render = _parameters(model, image, optimizer, projections)
    opt, transform = _make_optimizer(params, optimizer, lr), _compose(transforms)
    names = [resolve_name(model, layer) for layer in objective.layers]
    state: dict = {}
    with (
        frozen(model) as net,
        record(net, list(dict.fromkeys(names))) as rec,
        torch.random.fork_rng(devices=[]),
    ):
        torch.manual_seed(settings.seed(seed))

        def closure() -> torch.Tensor:
            opt.zero_grad()
            rec.clear()
            img = render()
            x = transform(img)
            logits = net(channels_last(x) if x.shape[0] > 1 else x)  # single images: the layout of model(x)
            value = objective(Forward(model, rec, logits, img))
            (-value).backward()
            state.update(x=img.detach().clone(), logits=logits.detach(), value=value.detach())
            return -value.detach()

        label = progress if isinstance(progress, str) else "ascent"
        bar = tqdm(range(steps), desc=label, disable=progress is False, leave=False)
        for i in bar:
            opt.step(closure)  # the forward and backward pass of the image before this step, then the update
            if callback is not None and callback(Step(i, state["x"], state["logits"], float(state["value"]))):
                return state["x"]
            with torch.no_grad():
                for project in projections:
                    project(params[0], params[0].grad, i)
            if i % 10 == 0:
                bar.set_postfix(objective=f"{float(state['value']):.3g}")
        with torch.no_grad():
            return render().detach().clone()
