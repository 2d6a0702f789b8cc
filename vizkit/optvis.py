"""Optimisation-based visualization: one loop in which the weights stay fixed and the image changes.

Objectives, transforms, projections and image parameterisations are small pieces that compose
(as in lucent); class visualization, fooling images, FGSM and DeepDream below are built on
`ascent`, and so are feature inversion, texture synthesis and style transfer (vizkit.style).
All images are Nx3xHxW tensors in the model's input space (normalised) unless a docstring says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .attribution import Target, class_index, fixed_targets, summed_class_score, targets
from .hooks import LayerRef, Recording, frozen, record
from .layers import channels_last, model_device, on_model_device, resolve_name

# ----------------------------------------------------------------------------------------------
# Pixel space of a model: what [0, 1] pixels look like after its normalisation.


def input_stats(model) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as 1x3x1x1 tensors: a vizkit Model's normalisation, (0, 1) for a plain nn.Module."""
    dev = model_device(model)
    mean, std = getattr(model, "mean", (0.0, 0.0, 0.0)), getattr(model, "std", (1.0, 1.0, 1.0))
    return (torch.tensor(mean, device=dev).view(1, 3, 1, 1), torch.tensor(std, device=dev).view(1, 3, 1, 1))


def pixel_range(model) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) 1x3x1x1: pixel values 0 and 1 in the model's input space."""
    mean, std = input_stats(model)
    return -mean / std, (1 - mean) / std


def to_model_space(model, rgb: torch.Tensor) -> torch.Tensor:
    """Nx3xHxW pixels in [0, 1] -> the model's input space."""
    mean, std = input_stats(model)
    return (rgb - mean) / std


def to_pixels(model, x: torch.Tensor) -> torch.Tensor:
    """The model's input space -> Nx3xHxW pixels in [0, 1] (clamped)."""
    mean, std = input_stats(model)
    return (x * std + mean).clamp(0, 1)


def round_to_8bit(model, x: torch.Tensor) -> torch.Tensor:
    """x as it comes back after saving it as an 8-bit image (each pixel rounded to k/255)."""
    return to_model_space(model, (to_pixels(model, x) * 255).round() / 255)


# ----------------------------------------------------------------------------------------------
# Objectives: what to maximise. They add, subtract and scale: class_score(t) - 1e-3 * l2().


@dataclass
class Forward:
    """What an objective sees: the model, the recorded layers, the logits and the image before transforms."""

    model: object
    rec: Recording
    logits: torch.Tensor
    x: torch.Tensor


class Objective:
    """A scalar to maximise, fn(Forward) -> 0-d tensor, reading the outputs of `layers`."""

    def __init__(
        self, fn: Callable[[Forward], torch.Tensor], layers: Sequence[LayerRef] = (), name: str = ""
    ):
        self.fn, self.layers, self.name = fn, list(layers), name or getattr(fn, "__name__", "objective")

    def __call__(self, f: Forward) -> torch.Tensor:
        return self.fn(f)

    def __add__(self, other: Objective) -> Objective:
        return Objective(
            lambda f: self(f) + other(f), self.layers + other.layers, f"{self.name} + {other.name}"
        )

    def __neg__(self) -> Objective:
        return Objective(lambda f: -self(f), self.layers, f"-({self.name})")

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __mul__(self, k: float) -> Objective:
        return Objective(lambda f: k * self(f), self.layers, f"{k:g} * {self.name}")

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def class_score(target: Target | Sequence[Target]) -> Objective:
    """The unnormalised score (logit) of `target`, summed over the batch (one target or one per image)."""
    return Objective(lambda f: summed_class_score(f.model, f.logits, target), name=f"class_score({target!r})")


def log_probability(target: Target | Sequence[Target]) -> Objective:
    """log p(target): raising it also lowers the other classes (minus the cross-entropy loss)."""
    return Objective(
        lambda f: -F.cross_entropy(f.logits, targets(f.model, target, f.logits), reduction="sum"),
        name=f"log_probability({target!r})",
    )


def channel(layer: LayerRef, c: int) -> Objective:
    """Mean activation of channel c of `layer` over all positions (a feature detector as a whole)."""
    return Objective(
        lambda f: f.rec[_name(f, layer)][:, c].mean((-2, -1)).sum(), [layer], f"channel({layer!r}, {c})"
    )


def neuron(layer: LayerRef, c: int, y: int | None = None, x: int | None = None) -> Objective:
    """Activation of one unit: channel c of `layer` at position (y, x) (default: the centre)."""

    def fn(f: Forward) -> torch.Tensor:
        a = f.rec[_name(f, layer)][:, c]
        return a[:, a.shape[1] // 2 if y is None else y, a.shape[2] // 2 if x is None else x].sum()

    return Objective(fn, [layer], f"neuron({layer!r}, {c})")


def layer_norm(layer: LayerRef) -> Objective:
    """||a||^2 / 2 of the layer's output a, whose gradient is a itself (DeepDream's objective)."""
    return Objective(lambda f: f.rec[_name(f, layer)].pow(2).sum() / 2, [layer], f"layer_norm({layer!r})")


def guide(layer: LayerRef, guide_acts: torch.Tensor) -> Objective:
    """Guided DeepDream: at each position, the best dot product with any feature vector of a guide.

    guide_acts: the layer's output for the guide image, 1xCxhxw."""
    g = guide_acts.detach().flatten(2)[0]  # (C, hw)

    def fn(f: Forward) -> torch.Tensor:
        a = f.rec[_name(f, layer)].flatten(2)  # (N, C, HW)
        return torch.einsum("nci,cj->nij", a, g.to(a)).amax(-1).sum()

    return Objective(fn, [layer], f"guide({layer!r})")


def diversity(layer: LayerRef) -> Objective:
    """Minus the mean cosine similarity between the batch members' Gram matrices at `layer`, in
    [-1, 0] for non-negative activations (Olah et al. 2017; lucent's `diversity`, divided by N - 1):
    add it to a batch's objective to make its images differ in style. Needs a batch of 2 or more."""

    def fn(f: Forward) -> torch.Tensor:
        a = f.rec[_name(f, layer)].flatten(2)  # (N, C, HW)
        n = a.shape[0]
        if n < 2:
            raise ValueError(f"diversity needs a batch of at least 2 images, got {n}")
        g = F.normalize((a @ a.transpose(1, 2)).flatten(1), dim=1)  # unit-norm Gram matrices, (N, C*C)
        sim = g @ g.T  # (N, N) cosine similarities
        return -(sim.sum() - sim.diagonal().sum()) / (n * (n - 1))

    return Objective(fn, [layer], f"diversity({layer!r})")


def l2() -> Objective:
    """Squared L2 norm of the image (before transforms), summed over the batch: subtract it as a prior."""
    return Objective(lambda f: f.x.pow(2).sum(), name="l2")


def total_variation(power: float = 1.0) -> Objective:
    """Total variation of the image: sum of |neighbour differences|^power. Subtract it as a smoothness prior."""

    def fn(f: Forward) -> torch.Tensor:
        dy, dx = f.x.diff(dim=-2), f.x.diff(dim=-1)
        if power == 2.0:
            return dy.pow(2).sum() + dx.pow(2).sum()
        return (dy[..., :, :-1].pow(2) + dx[..., :-1, :].pow(2) + 1e-8).pow(power / 2).sum()

    return Objective(fn, name="total_variation")


def _name(f: Forward, layer: LayerRef) -> str:
    return layer if isinstance(layer, str) else resolve_name(f.model, layer)


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


def compose(transforms: Sequence[Transform]) -> Transform:
    """Apply transforms in order."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        for t in transforms:
            x = t(x)
        return x

    return fn


# ----------------------------------------------------------------------------------------------
# Projections: changes made to a pixel image between steps (no gradient flows through them).

Projection = Callable[[torch.Tensor, torch.Tensor, int], None]  # (image param, its gradient, step) -> None


def clamp_pixels(model) -> Projection:
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


def eps_ball(model, center: torch.Tensor, eps: float) -> Projection:
    """Keep x within `eps` (in [0, 1] pixel units, per pixel) of `center` and inside [0, 1]."""
    _, std = input_stats(model)
    lo, hi = pixel_range(model)
    low, high = torch.max(center - eps / std, lo), torch.min(center + eps / std, hi)

    def fn(x, grad, step):
        x.clamp_(low, high)

    return fn


def _percentile(v: torch.Tensor, percentile: float) -> torch.Tensor:
    """Per-image percentile of v (N,1,H,W) -> (N,1,1,1)."""
    return torch.quantile(v.flatten(1), percentile / 100, dim=1).view(-1, 1, 1, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of an Nx3xHxW tensor (reflect padding)."""
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-(torch.arange(-r, r + 1, device=x.device, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.transpose(-1, -2), groups=x.shape[1])


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
    model, size: int | tuple[int, int], batch: int = 1, decay: float = 1.0, sd: float = 0.01, seed: int = 0
) -> tuple[list[torch.Tensor], Callable[[], torch.Tensor]]:
    """A decorrelated-colour Fourier parameterisation (Olah et al. 2017, Feature Visualization).

    The parameters are the image's spectrum, scaled by 1/frequency^decay so that every frequency
    learns at the same rate, in a decorrelated colour space; a sigmoid keeps pixels in (0, 1).
    """
    h, w = (size, size) if isinstance(size, int) else size
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    scale = 1.0 / torch.maximum(torch.sqrt(fy**2 + fx**2), torch.tensor(1.0 / max(h, w))) ** decay
    gen = torch.Generator().manual_seed(seed)
    dev = model_device(model)
    spectrum = (torch.randn(batch, 3, *scale.shape, 2, generator=gen) * sd).to(dev).requires_grad_(True)
    scale, color = scale.to(dev), _COLOR_SQRT.to(dev)
    mean, std = input_stats(model)  # once, not at every render

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


OPTIMIZERS = ("adam", "normalized", "l2", "sign", "lbfgs")


def make_optimizer(
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


def ascent(
    model,
    objective: Objective,
    image=None,
    steps: int = 100,
    lr: float | torch.Tensor = 0.05,
    optimizer: str = "adam",
    transforms: Sequence[Transform] = (),
    projections: Sequence[Projection] = (),
    callback: Callable[[Step], bool | None] | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "ascent",
) -> torch.Tensor:
    """Maximise `objective` over an image with the model's weights fixed; returns the final image.

    image: a 1x3xHxW (or Nx3xHxW) model-space tensor to start from (its pixels are optimised), or a
    (params, render) pair such as fourier_image(...). optimizer: 'adam', 'normalized' (each image
    moves lr * g / mean|g|), 'l2' (lr * g / ||g||), 'sign' (lr * sign g) or 'lbfgs'. transforms:
    random differentiable changes before each forward pass; projections: in-place changes to a pixel
    image after each step. callback(Step) may return True to stop; the image of that step (before
    its update) is then returned.
    The model's mode and flags come back unchanged; the global random state is not touched.
    """
    if isinstance(image, torch.Tensor):
        image = on_model_device(model, image)
        params, render = pixel_image(
            image.contiguous() if optimizer == "lbfgs" else image
        )  # L-BFGS flattens grads
    elif image is not None:
        params, render = image
        if projections:
            raise ValueError(
                "projections change pixels in place: they need a pixel image (a tensor as image=), "
                "not a (params, render) parameterisation"
            )
    else:
        raise ValueError(
            "pass image=: a 1x3xHxW model-space tensor, or (params, render) from fourier_image(...)"
        )
    opt = make_optimizer(params, optimizer, lr)
    transform = compose(transforms)
    names = [resolve_name(model, layer) for layer in objective.layers]
    state: dict = {}

    with (
        frozen(model) as net,
        record(net, list(dict.fromkeys(names))) as rec,
        torch.random.fork_rng(devices=[]),
    ):
        torch.manual_seed(seed)

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

        bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
        for i in bar:
            if optimizer == "lbfgs":
                opt.step(closure)
            else:
                closure()
            if callback is not None and callback(Step(i, state["x"], state["logits"], float(state["value"]))):
                return state["x"]
            if optimizer != "lbfgs":
                opt.step()
            if projections:
                with torch.no_grad():
                    for project in projections:
                        project(params[0], params[0].grad, i)
            if i % 10 == 0:
                bar.set_postfix(objective=f"{float(state['value']):.3g}")
        with torch.no_grad():
            return render().detach().clone()


# ----------------------------------------------------------------------------------------------
# Built on the loop.

RECIPES = ("simonyan", "yosinski", "fourier")


def class_visualization(
    model,
    target: Target | Sequence[Target],
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
            progress=progress,
            desc=recipe,
        )
    if recipe == "yosinski":
        x0 = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed)).to(dev) * 0.1
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
            progress=progress,
            desc=recipe,
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
            progress=progress,
            desc=recipe,
        )
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")


def fooling_image(
    model,
    x: torch.Tensor,
    target: Target,
    lr: float = 1.0,
    max_steps: int = 100,
    min_prob: float = 0.5,
    progress: bool = False,
) -> torch.Tensor:
    """x changed until the model says `target`: gradient steps of L2 length lr on the target's score.

    x: one normalised 1x3xHxW image; lr: the L2 norm of each step in model space (as in CS231n).
    Stops at the first image whose probability of `target` is at least min_prob (0.5: a top-1 that
    survives saving as 8 bits); raises RuntimeError if max_steps do not suffice.
    """
    t = class_index(model, target)
    done = lambda s: bool(s.logits.softmax(1)[0, t] >= min_prob)
    # the stop test runs on the image of each step, so max_steps + 1 forward passes may be needed
    fooled = ascent(
        model,
        class_score(target),
        x,
        max_steps + 1,
        lr=lr,
        optimizer="l2",
        projections=[clamp_pixels(model)],
        callback=done,
        progress=progress,
        desc="fooling",
    )
    with frozen(model) as net, torch.no_grad():
        if net(fooled).softmax(1)[0, t] < min_prob:
            raise RuntimeError(
                f"not fooled into class {target!r} after {max_steps} steps; raise lr or max_steps"
            )
    return fooled


def fgsm(
    model,
    x: torch.Tensor,
    target: Target | Sequence[Target] | None,
    eps: float,
    targeted: bool = False,
    steps: int = 1,
    step_size: float | None = None,
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2014): x moved by eps per pixel along sign(gradient).

    target: the label whose loss the step raises (untargeted: usually the true label; None: each
    image's top class), or with targeted=True the label to step towards. eps: in [0, 1] pixel units.
    steps > 1: iterative FGSM (Kurakin et al. 2016) with steps of step_size (default 2.5 eps / steps),
    kept within eps of x. Returns the perturbed batch in model space, inside [0, 1] pixels.
    """
    x = on_model_device(model, x).detach()
    if target is None:
        target = fixed_targets(model, x, None)
    _, std = input_stats(model)
    alpha = (eps if steps == 1 else (step_size or 2.5 * eps / steps)) / std
    loss = log_probability(target) if targeted else -log_probability(target)
    return ascent(
        model,
        loss,
        x,
        steps,
        lr=alpha,
        optimizer="sign",
        projections=[eps_ball(model, x, eps)],
        progress=False,
        desc="fgsm",
    )


def deepdream(
    model,
    x: torch.Tensor,
    layer: LayerRef,
    objective: Objective | None = None,
    octaves: int = 4,
    scale: float = 1.4,
    steps: int = 10,
    lr: float = 0.02,
    jitter_px: int = 32,
    seed: int = 0,
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
            seed=seed + k,
            progress=progress,
            desc=f"octave {k + 1}/{octaves}",
        )
        detail = dreamed - base
    return dreamed
