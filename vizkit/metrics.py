"""Scores: explanation maps against ground truth (pointing game), against the model (deletion,
insertion, Average Drop / Increase in Confidence), against each other (map_similarity), baseline maps
(centre, random, edges), and how robustly a synthesised image shows its class (transform_robustness)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata

from . import settings
from .hooks import frozen
from .images import resize_map
from .inputs import Targets, fixed_targets, perturbation_targets, resolve_targets, scores_of
from .layers import ModelLike, channels_last, get_layer, on_model_device

# fmt: off
__all__ = [
    "auc", "average_drop_increase", "bootstrap_interval", "cascading_randomisation", "centre_map", "correlation", "share_on", "deletion_curve", "drop_and_increase",
    "edge_map", "insertion_curve", "map_similarity", "pointing_game", "random_map", "ranked",
    "roc_auc_per_column", "roc_auc_table", "transform_robustness",
]
# fmt: on


def roc_auc_per_column(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of every column of scores (N, D) for binary labels (N,), ties counting half (as
    scikit-learn's roc_auc_score, for all columns at once: the Mann-Whitney U over average ranks)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if scores.ndim != 2 or scores.shape[0] != len(labels) or n1 == 0 or n0 == 0:
        raise ValueError(
            f"need scores (N, D) and N labels of both classes; got scores {scores.shape}, "
            f"{n1} positives and {n0} negatives"
        )
    ranks = rankdata(scores, axis=0)
    return (ranks[labels].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def roc_auc_table(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC (U, V) of every column of scores (N, U) for every column of binary labels (N, V): one
    ranking of the scores for all V label columns (as roc_auc_per_column, column by column)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n1 = labels.sum(0)
    n0 = len(labels) - n1
    if (
        scores.ndim != 2
        or labels.ndim != 2
        or len(scores) != len(labels)
        or (n1 == 0).any()
        or (n0 == 0).any()
    ):
        raise ValueError(
            f"need scores (N, U) and labels (N, V), each label column with both classes; got scores "
            f"{scores.shape}, labels {labels.shape} with {n1.min() if labels.size else 0} positives at least"
        )
    ranks = rankdata(scores, axis=0)
    return (ranks.T @ labels - n1 * (n1 + 1) / 2) / (n1 * n0)


def pointing_game(heat: np.ndarray, mask: np.ndarray, tolerance: float = 0) -> bool:
    """True if the map's maximum (upsampled bilinearly to the mask's size) lies on the object, or within
    `tolerance` pixels of it (Zhang et al. 2016; TorchRay's benchmark uses 15 px)."""
    y, x = np.unravel_index(int(np.argmax(resize_map(heat, mask.shape))), mask.shape)
    if tolerance <= 0:
        return bool(mask[y, x])
    r = int(np.floor(tolerance))
    ys, xs = np.mgrid[
        max(y - r, 0) : min(y + r + 1, mask.shape[0]), max(x - r, 0) : min(x + r + 1, mask.shape[1])
    ]
    near = (ys - y) ** 2 + (xs - x) ** 2 <= tolerance**2
    return bool(mask[ys[near], xs[near]].any())


def share_on(heat: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The share of each map's mass that lies on its mask: sum(|heat| * mask) / sum(|heat|), (N,).

    heat: (N, H, W) maps, or (N, 3, H, W) gradients (|value| summed over colour); masks: (N, H, W)."""
    mass = np.abs(np.asarray(heat, np.float64))
    mass = mass.sum(1) if mass.ndim == 4 else mass
    return (mass * np.asarray(masks)).sum((1, 2)) / np.maximum(mass.sum((1, 2)), 1e-300)


def cascading_randomisation(
    model: ModelLike, layers: Sequence[str], seed: int = 0
) -> Iterator[tuple[str, ModelLike]]:
    """Adebayo et al.'s (2018) cascading randomisation: a copy of the model whose conv and linear layers
    are re-initialised (reset_parameters), one more of `layers` at a time, from the first (the top)
    down; yields (layer, the copy so far). The model itself is untouched; the new weights come from
    the seed, whatever the caller draws in between."""
    broken = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed(seed))
        state = torch.get_rng_state()
    for layer in layers:
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(state)
            for module in get_layer(broken, layer).modules():
                if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                    module.reset_parameters()
            state = torch.get_rng_state()
        yield layer, broken


def centre_map(shape: tuple[int, int]) -> np.ndarray:
    """The baseline that always points at the centre: minus the distance to the picture's centre."""
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return -np.hypot(ys - (shape[0] - 1) / 2, xs - (shape[1] - 1) / 2)


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The baseline that knows nothing: uniform noise, seeded."""
    return np.random.default_rng(settings.seed(seed)).random(shape)


def edge_map(img: np.ndarray) -> np.ndarray:
    """The baseline that only sees the picture: Sobel edge strength of the grey image (HxWx3 -> HxW)."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    return sobel(rgb2gray(np.asarray(img)))


def ranked(heat: np.ndarray, shape: tuple[int, int], fractions: Sequence[float], device) -> torch.Tensor:
    """(F, 1, H, W) masks: 1 on the fraction f of pixels that the map ranks most important, for each f."""
    h, w = shape
    order = np.argsort(-resize_map(heat, (h, w)).ravel(), kind="stable")  # most important first
    rank = torch.empty(h * w, dtype=torch.long, device=device)
    rank[torch.from_numpy(order).to(device)] = torch.arange(h * w, device=device)
    counts = torch.tensor([round(f * h * w) for f in fractions], device=device).view(-1, 1, 1, 1)
    return (rank.view(1, 1, h, w) < counts).float()


def _per_image_maps(heat: np.ndarray, n: int) -> np.ndarray:
    """heat as (n, h, w): a batch of maps, or one (h, w) map when n is 1."""
    heat = np.asarray(heat)
    if heat.ndim == 2 and n == 1:
        heat = heat[None]
    if heat.ndim != 3 or len(heat) != n:
        raise ValueError(f"expected {n} maps (N, h, w) for {n} images, got shape {heat.shape}")
    return heat


@torch.no_grad()
def deletion_curve(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets,
    heat: np.ndarray,
    fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    baseline: float = 0.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Probability of the target as the most important pixels (by `heat`, (N, h, w)) are replaced by
    `baseline` (Petsiuk et al. 2018): (N, len(fractions)), one curve per image. A lower curve means the
    map found the pixels the decision needs; auc() gives the area under it.
    """
    x = on_model_device(model, x)
    return _curves(model, x, target, _per_image_maps(heat, len(x)), fractions, lambda i: baseline, batch_size)


@torch.no_grad()
def insertion_curve(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets,
    heat: np.ndarray,
    fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    sigma: float = 5.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Probability of the target as the most important pixels (by `heat`, (N, h, w)) are put back into a
    blurred copy of x (Gaussian, `sigma` px; RISE's insertion metric): (N, len(fractions)). A higher
    curve means the map found pixels that carry the class by themselves.
    """
    from .optvis import gaussian_blur

    x = on_model_device(model, x)
    heat = _per_image_maps(heat, len(x))
    return _curves(
        model, gaussian_blur(x, sigma), target, heat, fractions, lambda i: x[i : i + 1], batch_size, x
    )


def _curves(model: ModelLike, x, target, heat, fractions, fill, batch_size, clean=None) -> np.ndarray:
    """P(target) (or a callable target's score) of each image of x with its top fraction of pixels (by
    heat) replaced by fill(i); the classes are those of `clean` (default x)."""
    scores = perturbation_targets(model, x if clean is None else clean, target)
    out = []
    with frozen(model) as net, torch.no_grad():
        for i in range(len(x)):
            removed = ranked(heat[i], x.shape[2:], fractions, x.device).to(x.dtype)
            batch = x[i : i + 1] * (1 - removed) + fill(i) * removed
            out.append(scores_of(net, batch, scores[i], batch_size))
    return torch.stack(out).cpu().numpy()


def auc(curve: np.ndarray, fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> np.ndarray:
    """Area under deletion or insertion curves over the fractions (trapezoids): curves (..., F) -> areas
    (...): (N,) for a curve per image (N, F), a 0-d array for one curve (F,)."""
    y, f = np.asarray(curve, float), np.asarray(fractions, float)
    return np.asarray(((y[..., 1:] + y[..., :-1]) / 2 * np.diff(f)).sum(-1))


@torch.no_grad()
def average_drop_increase(
    model: ModelLike, x: torch.Tensor, target: Targets, heat: np.ndarray
) -> tuple[float, float]:
    """Average Drop % and Increase in Confidence % (Chattopadhyay et al. 2018) over a batch.

    Each picture is multiplied by its map, upsampled and min-max scaled to [0, 1] (0 is the model's
    zero: mid-grey for the offline model). Y: P(target) of the picture, O: of the masked one. Drop =
    mean(max(0, Y - O) / Y) * 100 (lower is better); Increase = share of pictures with O > Y * 100.
    heat: (N, h, w) maps, or (h, w) for one picture. A callable target's (positive) score replaces P.
    """
    x = on_model_device(model, x)
    heat = _per_image_maps(heat, len(x)).astype(np.float64)
    maps = np.stack([resize_map(m, x.shape[2:]) for m in heat])
    lo, hi = maps.min((1, 2), keepdims=True), maps.max((1, 2), keepdims=True)
    maps = torch.as_tensor((maps - lo) / np.maximum(hi - lo, 1e-12), dtype=x.dtype, device=x.device)
    with frozen(model) as net:
        logits = net(x)
        if callable(target):
            y, o = target(logits), target(net(x * maps[:, None]))
        else:
            t = resolve_targets(model, target, logits)[:, None]
            y = logits.softmax(-1).gather(1, t)[:, 0]
            o = net(x * maps[:, None]).softmax(-1).gather(1, t)[:, 0]
    return drop_and_increase(y.cpu().numpy(), o.cpu().numpy())


def drop_and_increase(y: np.ndarray, o: np.ndarray) -> tuple[float, float]:
    """Average Drop % and Increase in Confidence % from the class probabilities of the pictures (y) and
    of the pictures masked by their maps (o), both (N,)."""
    y, o = np.asarray(y, np.float64), np.asarray(o, np.float64)
    return float(np.mean(np.maximum(y - o, 0) / y) * 100), float(np.mean(o > y) * 100)


def bootstrap_interval(values: np.ndarray, level: float = 0.95, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Percentile bootstrap interval of the mean over the last axis: values (..., N) -> (..., 2) as
    [low, high]. Every row is resampled with the same draws of the N pictures (they are shared, so rows
    compare fairly); n resamples; level: the interval's coverage."""
    v = np.asarray(values, np.float64)
    draws = np.random.default_rng(settings.seed(seed)).integers(0, v.shape[-1], (n, v.shape[-1]))
    means = v[..., draws].mean(-1)  # (..., n)
    tail = (1 - level) / 2
    return np.stack([np.quantile(means, tail, -1), np.quantile(means, 1 - tail, -1)], -1)


def map_similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """How alike two maps of one picture are, as Adebayo et al. 2018 measure it: Spearman rank
    correlation of |a| and |b| and of a and b, SSIM (of the maps scaled to [0, 1]) and the Pearson
    correlation of their HOG features. (h, w) maps of one shape; 3-channel maps are summed first."""
    from scipy.stats import spearmanr
    from skimage.feature import hog
    from skimage.metrics import structural_similarity

    a, b = (np.asarray(m, np.float64) for m in (a, b))
    a, b = (m.sum(0) if m.ndim == 3 else m for m in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"maps of different shapes: {a.shape} and {b.shape}")
    if min(a.shape) < 3:
        raise ValueError(f"maps need at least 3 x 3 positions for SSIM, got {a.shape}")
    window = min(7, min(a.shape) - (1 - min(a.shape) % 2))  # SSIM's window: odd, at most the map
    scaled = [(m - m.min()) / max(m.max() - m.min(), 1e-12) for m in (np.abs(a), np.abs(b))]
    cell = max(2, min(a.shape) // 8)
    ha, hb = (hog(m, pixels_per_cell=(cell, cell), cells_per_block=(1, 1)) for m in scaled)
    return {
        "spearman_abs": correlation(np.abs(a), np.abs(b), spearmanr),
        "spearman": correlation(a, b, spearmanr),
        "ssim": float(structural_similarity(scaled[0], scaled[1], data_range=1.0, win_size=window)),
        "hog": correlation(ha, hb),
    }


def correlation(a: np.ndarray, b: np.ndarray, rank=None) -> float:
    """Pearson (or, with rank=scipy.stats.spearmanr, Spearman) correlation of two arrays, flattened;
    0 when either is constant (a map that says nothing correlates with nothing)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(rank(a, b)[0]) if rank is not None else float(np.corrcoef(a, b)[0, 1])


@torch.no_grad()
def transform_robustness(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets,
    n: int = 64,
    seed: int = 0,
    min_side: float = 0.5,
    degrees: float = 20.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Share of n strong random views of each image that the model still calls its target: (N,).

    Each view is a square crop of min_side..1 times the side, rotated by up to `degrees`, flipped
    with probability 1/2 and resized back to x's size; every image gets the same n views. An image
    that only fools the model at one exact framing scores near 0; a recognisable object scores high.
    """
    x = on_model_device(model, x)
    classes = fixed_targets(model, x, target)
    gen = torch.Generator().manual_seed(settings.seed(seed))
    scale = min_side + (1 - min_side) * torch.rand(n, generator=gen)
    angle = torch.deg2rad((2 * torch.rand(n, generator=gen) - 1) * degrees)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    shift = (2 * torch.rand(n, 2, generator=gen) - 1) * (1 - scale)[:, None]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    ).to(x)
    grid = F.affine_grid(theta, [n, *x.shape[1:]], align_corners=False)
    shares = []
    with frozen(model) as net:
        for i, t in enumerate(classes):
            views = F.grid_sample(
                x[i : i + 1].expand(n, -1, -1, -1),
                grid,
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )
            top = torch.cat([net(channels_last(v)).argmax(1) for v in views.split(batch_size)])
            shares.append((top == t).float().mean().item())
    return np.array(shares)
