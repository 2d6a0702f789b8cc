"""What a layer keeps and what a Gram matrix keeps: feature inversion (Mahendran & Vedaldi 2015),
texture synthesis (Efros & Leung 1999; Gatys et al. 2015) and neural style transfer (Gatys et al. 2016).

The optimisation-based methods are objectives for vizkit.optvis.ascent; they take and return HxWx3
float images in [0, 1] (an image array or uint8 is accepted as input)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from . import settings
from .hooks import LayerRef, frozen, record
from .images import ImageLike
from .inputs import resize_tensor, to_image, to_input
from .layers import ModelLike, model_device, resolve_name, role_layers
from .objectives import Forward, Objective, total_variation
from .optvis import ascent, clamp_pixels

# fmt: off
__all__ = [
    "STATISTICS", "StyleLoss", "efros_leung", "evaluate", "feature_loss", "features_of", "gram", "gram_loss",
    "image_tensor", "invert", "mean_std", "mean_total_variation", "statistic_loss", "style_transfer", "target_grams",
    "target_statistics", "texture_synthesis",
]
# fmt: on


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices G = F F^T / (H W) of NxCxHxW features (F: the C x HW matrix): NxCxC."""
    n, c, h, w = features.shape
    f = features.flatten(2)
    return f @ f.transpose(1, 2) / (h * w)


def mean_std(features: torch.Tensor) -> torch.Tensor:
    """Each channel's mean and standard deviation over positions (AdaIN's statistics) of NxCxHxW: Nx2C.

    The standard deviation is sqrt(variance + 1e-5), as in AdaIN: finite gradients for a constant channel."""
    f = features.flatten(2)
    return torch.cat([f.mean(2), (f.var(2, correction=0) + 1e-5).sqrt()], 1)


# Spatially invariant statistics a texture can be matched by (Johnson, in the lecture: the Gram is one of them).
STATISTICS = {"gram": gram, "mean": lambda f: f.mean((2, 3)), "mean_std": mean_std}


def features_of(
    model: ModelLike, img: ImageLike | torch.Tensor, layers: Sequence[LayerRef], size: int | None = None
) -> dict[str, torch.Tensor]:
    """The outputs of `layers` for one image (HxWx3 array or a model-space tensor), detached.

    size: resize the image's shorter side first (None: keep it)."""
    x = image_tensor(model, img, size)
    names = [resolve_name(model, layer) for layer in layers]
    with frozen(model) as net, record(net, list(dict.fromkeys(names))) as rec, torch.no_grad():
        net(x)
        return {n: rec[n].detach() for n in names}


def image_tensor(model: ModelLike, img: ImageLike | torch.Tensor, size: int | None = None) -> torch.Tensor:
    """An image (see images.ACCEPTED) -> 1x3xHxW model-space tensor; tensors (model space) pass through.

    size: resize the whole picture's shorter side first, as a tensor (None: keep it)."""
    x = to_input(model, img, crop=False)
    return x if size is None else resize_tensor(x, size)


# ----------------------------------------------------------------------------------------------
# Losses, as objectives to *minimise* (ascent maximises, so they enter with a minus sign).


def feature_loss(layer: LayerRef, target: torch.Tensor) -> Objective:
    """||phi(x) - target||^2 / ||target||^2 at one layer (the relative content loss)."""
    scale = target.pow(2).sum().clamp(min=1e-12)

    def fn(f: Forward) -> torch.Tensor:
        a = f.output(layer)
        return (a - target.to(a)).pow(2).sum() / scale.to(a)

    return Objective(fn, [layer], f"feature_loss({layer!r})")


def gram_loss(targets: dict[str, torch.Tensor]) -> Objective:
    """Sum over layers of the mean squared difference between Gram matrices and the target Grams.

    targets: layer name -> 1xCxC target Gram (from `gram`, or a weighted mix of several)."""
    return statistic_loss(targets, "gram")


def target_grams(
    model: ModelLike,
    styles: Sequence[ImageLike],
    layers: Sequence[str],
    mix: Sequence[float] | None = None,
    size: int | None = None,
) -> dict[str, torch.Tensor]:
    """Gram matrices of one or several style images at each layer; several are mixed with weights `mix`."""
    mix = list(mix) if mix is not None else [1.0 / len(styles)] * len(styles)
    if len(mix) != len(styles):
        raise ValueError(f"got {len(mix)} weights for {len(styles)} style images")
    feats = [features_of(model, s, layers, size) for s in styles]
    return {n: sum(w * gram(f[n]) for w, f in zip(mix, feats)) for n in layers}


def statistic_loss(targets: dict[str, torch.Tensor], statistic: str = "gram") -> Objective:
    """gram_loss for any of STATISTICS: the mean squared difference to each layer's target statistic."""
    of = STATISTICS[statistic]

    def fn(f: Forward) -> torch.Tensor:
        return sum((of(f.rec[n]) - t.to(f.rec[n])).pow(2).mean() for n, t in targets.items())

    return Objective(fn, list(targets), f"statistic_loss({statistic!r})")


def target_statistics(
    model: ModelLike, texture: ImageLike, layers: Sequence[str], statistic: str = "gram"
) -> dict[str, torch.Tensor]:
    """One image's statistic (a key of STATISTICS) at each layer: layer name -> 1 x ... tensor."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; choose one of {sorted(STATISTICS)}")
    feats = features_of(model, texture, layers)
    return {n: STATISTICS[statistic](feats[n]) for n in layers}


# ----------------------------------------------------------------------------------------------
# The methods.


def invert(
    model: ModelLike,
    x: ImageLike | torch.Tensor,
    layer: LayerRef,
    tv: float = 2.0,
    steps: int = 300,
    lr: float = 0.05,
    seed: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Feature inversion (Mahendran & Vedaldi 2015): an image whose `layer` features match x's.

    Minimises the relative feature loss plus tv * (mean |neighbour difference|^2) from small noise
    with Adam. Deeper layers need a larger tv (about 0.5, 2, 5, 20 for bn1, blocks.1, blocks.3,
    blocks.5 of the offline model). Returns an HxWx3 float image in [0, 1].
    """
    x = image_tensor(model, x)
    name = resolve_name(model, layer)
    target = features_of(model, x, [name])[name]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(settings.seed(seed))).to(x) * 0.1
    objective = -feature_loss(name, target) - tv * mean_total_variation(x)
    return to_image(
        model,
        ascent(
            model,
            objective,
            noise,
            steps,
            lr=lr,
            optimizer="adam",
            seed=seed,
            progress=f"invert {name}" if progress else False,
        ),
    )


def mean_total_variation(x: torch.Tensor) -> Objective:
    """Total variation (squared differences) per pixel, so that its weight does not depend on the size."""
    per_pixel = 1.0 / x[0, 0].numel()
    return per_pixel * total_variation(power=2.0)


def texture_synthesis(
    model: ModelLike,
    texture: ImageLike,
    layers: Sequence[LayerRef] | None = None,
    size: int = 224,
    steps: int = 200,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    seed: int = 0,
    progress: bool = True,
    statistic: str = "gram",
) -> np.ndarray:
    """Gatys et al. 2015: a size x size image whose Gram matrices at `layers` match the texture's.

    layers: None = the model's style_layers. Starts from noise; optimizer 'lbfgs' (lr 1) or 'adam'
    (lr 0.05). statistic: what is matched, a key of STATISTICS ('gram'; 'mean': each channel's mean;
    'mean_std': its mean and standard deviation). Returns HxWx3 float in [0, 1]."""
    names = [resolve_name(model, layer) for layer in role_layers(model, "style_layers", layers)]
    targets = target_statistics(model, texture, names, statistic)
    noise = (
        torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(settings.seed(seed))).to(
            model_device(model)
        )
        * 0.1
    )
    lr = lr if lr is not None else (1.0 if optimizer == "lbfgs" else 0.05)
    return to_image(
        model,
        ascent(
            model,
            -statistic_loss(targets, statistic),
            noise,
            steps,
            lr=lr,
            optimizer=optimizer,
            seed=seed,
            progress="texture" if progress else False,
        ),
    )


@dataclass(frozen=True)
class StyleLoss:
    """What neural style transfer minimises: content loss + style_weight * Gram loss + tv * total variation.

    mix: weights of several styles' Grams (None: equal); style_size: the styles' shorter side (None: as
    given; a smaller style image transfers larger structures); style_layers / content_layer: None = the
    model's own (Model.style_layers, .content_layer); extra: an objective to *maximise* along with the
    transfer, added to the negated loss (e.g. w * objectives.layer_norm("blocks.4"): a DeepDream term)."""

    style_weight: float = 3.0
    tv: float = 10.0
    mix: Sequence[float] | None = None
    style_size: int | None = None
    style_layers: Sequence[str] | None = None
    content_layer: str | None = None
    extra: Objective | None = None


def style_transfer(
    model: ModelLike,
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    loss: StyleLoss = StyleLoss(),
    *,
    size: int | None = None,
    steps: int = 100,
    optimizer: str = "lbfgs",
    init: str = "content",
    progress: bool = True,
    callback=None,
) -> np.ndarray:
    """Neural style transfer (Gatys et al. 2016): content of one image, Gram statistics of another.

    style: one image, or a list mixed by loss.mix (a weighted average of their Grams); loss: a
    StyleLoss (its weights and layers). size: the content's shorter side (None: as given). optimizer:
    'lbfgs' (lr 1) or another of optvis.OPTIMIZERS (lr 0.02). init: 'content' or 'noise' (seeded).
    callback: as in ascent. Returns an HxWx3 float image in [0, 1].
    """
    style_layers = list(role_layers(model, "style_layers", loss.style_layers))
    content_layer = role_layers(model, "content_layer", loss.content_layer)
    x_c = image_tensor(model, content, size)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    targets = target_grams(model, styles, style_layers, loss.mix, loss.style_size)
    content_target = features_of(model, x_c, [content_layer])[content_layer]
    objective = -(
        feature_loss(content_layer, content_target)
        + loss.style_weight * gram_loss(targets)
        + loss.tv * mean_total_variation(x_c)
    )
    if loss.extra is not None:
        objective = objective + loss.extra
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    gen = torch.Generator().manual_seed(settings.seed(0))
    start = x_c if init == "content" else torch.randn(x_c.shape, generator=gen).to(x_c) * 0.1
    lr = 1.0 if optimizer == "lbfgs" else 0.02
    projections = [clamp_pixels(model)]
    progress = "style" if progress else False
    out = ascent(model, objective, start, steps, lr=lr, optimizer=optimizer, projections=projections,
                 progress=progress, callback=callback)  # fmt: skip
    return to_image(model, out)


def evaluate(model: ModelLike, objective: Objective, img: ImageLike | torch.Tensor) -> float:
    """The value of an objective (a loss such as gram_loss(targets), or objectives.layer_norm) on one image
    (HxWx3, or a 1x3xHxW model-space tensor), without gradients."""
    x = image_tensor(model, img)
    names = [resolve_name(model, layer) for layer in objective.layers]
    with frozen(model) as net, record(net, list(dict.fromkeys(names))) as rec, torch.no_grad():
        return float(objective(Forward(model, rec, net(x), x)))


def _sample_windows(sample: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every window x window window of the sample (P, w*w, 3), its centre pixel (P, 3), and the
    Gaussian weights of a window's pixels (w*w,) (sigma = window / 6.4, as Efros & Leung)."""
    r = window // 2
    patches = np.lib.stride_tricks.sliding_window_view(
        sample.astype(np.float32), (window, window), axis=(0, 1)
    )
    centres = patches[:, :, :, r, r].reshape(-1, 3)
    patches = patches.transpose(0, 1, 3, 4, 2).reshape(len(centres), window * window, 3)
    offsets = (np.arange(window) - r) ** 2
    gauss = np.exp(-(offsets[:, None] + offsets[None]) / (2 * (window / 6.4) ** 2))
    return patches, centres, gauss.ravel().astype(np.float32)


def _next_ring(known: np.ndarray, inside: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """The unfilled pixels (row, col) touching the filled region, most filled neighbours first, ties at
    random: the paper's list (the dilation of the filled region minus the region, randomly permuted,
    then sorted by how many filled pixels each has in its window)."""
    ring = np.argwhere(inside & ~known & ndimage.binary_dilation(known))
    counts = ndimage.convolve(known.astype(np.int32), np.ones((window, window), np.int32), mode="constant")
    ring = ring[rng.permutation(len(ring))]
    return ring[np.argsort(-counts[ring[:, 0], ring[:, 1]], kind="stable")]


def efros_leung(
    sample: np.ndarray,
    size: int | tuple[int, int],
    window: int = 11,
    seed: int = 0,
    tolerance: float = 0.1,
    order: str = "outward",
) -> np.ndarray:
    """Efros & Leung 1999 texture synthesis: every output pixel copied from a matching sample window.

    Each new pixel takes the centre of a sample window whose known neighbourhood (Gaussian-weighted,
    filled pixels only) is within (1 + tolerance) of the best match, chosen at random. All windows
    of the sample are compared at once (one matrix product per pixel). order="outward" (the paper's):
    grow from a 3x3 seed in the centre, ring by ring, pixels with the most filled neighbours first;
    order="scanline": from a seed in the top-left corner, row by row (the lecture slide's
    simplification; scan-line order with a causal window is Wei & Levoy 2000).
    sample: HxWx3 (uint8 or float); size: int or (H, W). Returns the sample's dtype.
    """
    if order not in ("outward", "scanline"):
        raise ValueError(f"order must be 'outward' or 'scanline', got {order!r}")
    rng = np.random.default_rng(settings.seed(seed))
    h, w = (size, size) if isinstance(size, int) else size
    sample = np.asarray(sample)
    if sample.ndim != 3 or sample.shape[2] != 3 or min(sample.shape[:2]) < window:
        raise ValueError(f"sample must be HxWx3 and at least {window}x{window}, got {sample.shape}")
    r = window // 2
    patches, centres, gauss = _sample_windows(sample, window)
    sq = (patches**2).sum(-1)  # (P, w*w)
    out = np.zeros((h + 2 * r, w + 2 * r, 3), np.float32)
    known = np.zeros((h + 2 * r, w + 2 * r), bool)
    sy, sx = rng.integers(sample.shape[0] - 2), rng.integers(sample.shape[1] - 2)
    top, left = ((h - 3) // 2, (w - 3) // 2) if order == "outward" else (0, 0)
    out[r + top : r + top + 3, r + left : r + left + 3] = sample[sy : sy + 3, sx : sx + 3]  # a 3x3 seed
    known[r + top : r + top + 3, r + left : r + left + 3] = True

    def fill(i: int, j: int) -> None:
        nb = out[i : i + window, j : j + window].reshape(-1, 3)
        weight = gauss * known[i : i + window, j : j + window].ravel()
        # sum_k weight_k * ||patch_k - nb_k||^2, for every sample window at once
        dist = (
            sq @ weight
            - 2 * np.einsum("pkc,kc->p", patches, nb * weight[:, None])
            + (weight * (nb**2).sum(-1)).sum()
        )
        dist = np.maximum(dist, 0)  # float error near exact matches
        best = np.flatnonzero(dist <= dist.min() * (1 + tolerance) + 1e-6)
        out[i + r, j + r], known[i + r, j + r] = centres[rng.choice(best)], True

    if order == "scanline":
        for i, j in np.ndindex(h, w):
            if not known[i + r, j + r]:
                fill(i, j)
    else:
        inside = np.zeros_like(known)
        inside[r : r + h, r : r + w] = True
        while not known[inside].all():
            for i, j in _next_ring(known, inside, window, rng):
                fill(i - r, j - r)
    return out[r : r + h, r : r + w].astype(sample.dtype)
