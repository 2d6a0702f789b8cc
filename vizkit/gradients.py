"""Attributions built from input gradients: gradient x input and integrated gradients.

Both answer "how much did each input value add to the class score?" rather than the plain gradient's
"how sensitive is the score to it?". Same arguments as the other methods: (model, x, target=None, *, ...).
"""

from __future__ import annotations

import numpy as np
import torch

from .attribution import input_gradient
from .hooks import frozen
from .inputs import Targets, fixed_targets, in_batches, summed_class_score
from .layers import ModelLike, on_model_device

__all__ = ["completeness_error", "gradient_x_input", "integrated_gradients"]


def gradient_x_input(
    model: ModelLike, x: torch.Tensor, target: Targets = None, *, batch_size: int = 32
) -> np.ndarray:
    """Gradient x input (Shrikumar et al. 2016): x * d(class score)/dx, in the model's input space.

    For a linear model with no bias it is exactly each input's contribution to the score. Returns
    (N, 3, H, W); one forward and one backward per batch_size images.
    """

    def one_chunk(xb: torch.Tensor, tb: Targets) -> np.ndarray:
        return (input_gradient(model, xb, tb) * xb).detach().cpu().numpy()

    return in_batches(one_chunk, on_model_device(model, x), target, batch_size)


def integrated_gradients(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    baseline: torch.Tensor | float | None = None,
    steps: int = 32,
    batch_size: int = 32,
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017): (x - x0) times the mean gradient on the straight
    path from the baseline x0 to x, by the midpoint rule with `steps` points (captum's "riemann_middle").

    baseline: None = zeros in model space (mid-grey for the offline model), a number, or a tensor like
    x. A callable target is integrated as it is; a class target is the class of x all along the path.
    The path's images are evaluated batch_size at a time. Completeness: the attributions sum to
    score(x) - score(x0) as steps grows (completeness_error measures the gap). Returns (N, 3, H, W).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x = on_model_device(model, x).detach()
    x0 = _baseline(x, baseline)
    classes = [target] * len(x) if callable(target) else fixed_targets(model, x, target)  # x's, all along
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    total = torch.zeros_like(x)
    for i in range(len(x)):  # one image's path at a time, in chunks: memory is one chunk
        path = x0[i] + alphas[:, None, None, None] * (x[i] - x0[i])  # (steps, 3, H, W)
        for chunk in path.split(batch_size):
            t = classes[i] if callable(classes[i]) else [classes[i]] * len(chunk)
            total[i] += input_gradient(model, chunk, t).sum(0)
    return ((x - x0) * total / steps).detach().cpu().numpy()


def _baseline(x: torch.Tensor, baseline: torch.Tensor | float | None) -> torch.Tensor:
    """The baseline x0 shaped like x: zeros in model space for None, else the number or tensor given."""
    x0 = (
        torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    )
    return x0.expand_as(x)


def completeness_error(
    model: ModelLike,
    x: torch.Tensor,
    attributions: np.ndarray,
    target: Targets = None,
    *,
    baseline: torch.Tensor | float | None = None,
) -> np.ndarray:
    """How far attributions (N, 3, H, W) of x are from completeness: their sum minus score(x) - score(x0)
    per image, (N,) (0 for integrated gradients as steps grows). Arguments as integrated_gradients."""
    x = on_model_device(model, x).detach()
    x0 = _baseline(x, baseline)
    classes = [target] * len(x) if callable(target) else fixed_targets(model, x, target)
    with frozen(model) as net, torch.no_grad():
        gap = torch.stack(
            [
                summed_class_score(model, net(x[i : i + 1]), classes[i])
                - summed_class_score(model, net(x0[i : i + 1]), classes[i])
                for i in range(len(x))
            ]
        )
    return np.asarray(attributions).reshape(len(x), -1).sum(1) - gap.cpu().numpy()
