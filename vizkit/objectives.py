"""Objectives: what vizkit.optvis.ascent maximises. They add, subtract, scale and sum
(class_score(t) - 1e-3 * l2(), sum(channel(layer, c) for c in cs) / len(cs)), as in lucent; each
declares the layers it reads, so that the loop records only those."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .hooks import LayerRef, Recording
from .inputs import Targets, resolve_targets, spatial, summed_class_score
from .layers import resolve_name, token_grid

# fmt: off
__all__ = [
    "channel", "class_score", "direction", "diversity", "Forward", "guide", "l2", "layer_norm", "log_probability",
    "neuron", "Objective", "total_variation",
]
# fmt: on


@dataclass
class Forward:
    """What an objective sees: the model, the recorded layers, the logits and the image before transforms."""

    model: object
    rec: Recording
    logits: torch.Tensor
    x: torch.Tensor

    def output(self, layer: LayerRef) -> torch.Tensor:
        """The recorded output of `layer` (a name or a module of the model)."""
        return self.rec[layer if isinstance(layer, str) else resolve_name(self.model, layer)]

    def grid(self, layer: LayerRef) -> torch.Tensor:
        """The output of `layer` as (N, C, h, w): a feature map itself, a transformer block's tokens read as
        their patch grid (prefix tokens dropped; the grid's shape from the number of patch tokens and the
        image's aspect, since transforms may have resized the image the network saw)."""
        a = self.output(layer)
        grid = token_grid(self.model, self.x.shape[2:]) if a.ndim == 3 else None
        if grid is not None:
            n = a.shape[1] - grid[0]
            h = max(1, round((n * self.x.shape[2] / self.x.shape[3]) ** 0.5))
            grid = (grid[0], h, n // h) if h * (n // h) == n else grid
        return spatial(a, layer, grid)


class Objective:
    """A scalar to maximise, fn(Forward) -> 0-d tensor, reading the outputs of `layers`."""

    def __init__(
        self, fn: Callable[[Forward], torch.Tensor], layers: Sequence[LayerRef] = (), name: str = ""
    ):
        self.fn, self.layers, self.name = fn, list(layers), name or getattr(fn, "__name__", "objective")

    def __call__(self, f: Forward) -> torch.Tensor:
        return self.fn(f)

    def __add__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(
            lambda f: self(f) + other(f), self.layers + other.layers, f"{self.name} + {other.name}"
        )

    def __radd__(self, other: object) -> Objective:
        """0 + objective is the objective, so that sum(objectives) works."""
        if isinstance(other, (int, float)) and other == 0:
            return self
        return NotImplemented

    def __neg__(self) -> Objective:
        return Objective(lambda f: -self(f), self.layers, f"-({self.name})")

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other) if isinstance(other, Objective) else NotImplemented

    def __mul__(self, k: float) -> Objective:
        if not isinstance(k, (int, float)):
            raise TypeError(f"an objective scales by a number, not by {type(k).__name__}")
        name = f"({self.name})" if " " in self.name else self.name
        return Objective(lambda f: k * self(f), self.layers, f"{k:g} * {name}")

    __rmul__ = __mul__

    def __truediv__(self, k: float) -> Objective:
        if not isinstance(k, (int, float)):
            raise TypeError(f"an objective divides by a number, not by {type(k).__name__}")
        return self * (1 / k)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def class_score(target: Targets) -> Objective:
    """The unnormalised score (logit) of `target`, summed over the batch (one target or one per image)."""
    return Objective(lambda f: summed_class_score(f.model, f.logits, target), name=f"class_score({target!r})")


def log_probability(target: Targets) -> Objective:
    """log p(target): raising it also lowers the other classes (minus the cross-entropy loss)."""
    return Objective(
        lambda f: -F.cross_entropy(f.logits, resolve_targets(f.model, target, f.logits), reduction="sum"),
        name=f"log_probability({target!r})",
    )


def channel(layer: LayerRef, c: int) -> Objective:
    """Mean activation of channel c of `layer` over all positions (a feature detector as a whole)."""
    return Objective(lambda f: f.grid(layer)[:, c].mean((-2, -1)).sum(), [layer], f"channel({layer!r}, {c})")


def direction(layer: LayerRef, v) -> Objective:
    """Mean over positions of the dot product of `layer`'s activation vectors with v (C,): a direction in
    the layer's space (a sparse dictionary's feature) visualized as channel() visualizes a basis vector."""
    v = torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).detach().float().flatten()

    def fn(f: Forward) -> torch.Tensor:
        a = f.grid(layer)
        if a.shape[1] != len(v):
            raise ValueError(
                f"direction of length {len(v)} for layer {layer!r}, which has {a.shape[1]} channels"
            )
        return torch.einsum("nchw,c->n", a, v.to(a)).sum() / (a.shape[2] * a.shape[3])

    return Objective(fn, [layer], f"direction({layer!r})")


def neuron(layer: LayerRef, c: int, y: int | None = None, x: int | None = None) -> Objective:
    """Activation of one unit: channel c of `layer` at position (y, x) (default: the centre)."""

    def fn(f: Forward) -> torch.Tensor:
        a = f.grid(layer)[:, c]
        return a[:, a.shape[1] // 2 if y is None else y, a.shape[2] // 2 if x is None else x].sum()

    return Objective(fn, [layer], f"neuron({layer!r}, {c})")


def layer_norm(layer: LayerRef) -> Objective:
    """||a||^2 / 2 of the layer's output a, whose gradient is a itself (DeepDream's objective)."""
    return Objective(lambda f: f.output(layer).pow(2).sum() / 2, [layer], f"layer_norm({layer!r})")


def guide(layer: LayerRef, guide_acts: torch.Tensor) -> Objective:
    """Guided DeepDream: at each position, the best dot product with any feature vector of a guide.

    guide_acts: the layer's output for the guide image, 1xCxhxw."""
    g = guide_acts.detach().flatten(2)[0]  # (C, hw)

    def fn(f: Forward) -> torch.Tensor:
        a = f.grid(layer).flatten(2)  # (N, C, HW)
        return torch.einsum("nci,cj->nij", a, g.to(a)).amax(-1).sum()

    return Objective(fn, [layer], f"guide({layer!r})")


def diversity(layer: LayerRef) -> Objective:
    """Minus the mean cosine similarity between the batch members' Gram matrices at `layer`, in
    [-1, 0] for non-negative activations (Olah et al. 2017; lucent's `diversity`, divided by N - 1):
    add it to a batch's objective to make its images differ in style. Needs a batch of 2 or more."""

    def fn(f: Forward) -> torch.Tensor:
        a = f.grid(layer).flatten(2)  # (N, C, HW)
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
