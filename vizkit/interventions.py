"""Edits of a layer's activations during the forward pass: remove a direction (ablation) or add one
(steering), to test what a direction does rather than what it looks like. The model comes back exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import numpy as np
import torch
from torch import nn

from .hooks import LayerRef
from .layers import ModelLike, as_net, get_layer

__all__ = ["ablated", "Edit", "edited", "steered"]

Edit = Callable[[torch.Tensor], torch.Tensor]  # activation vectors (..., C) -> edited (..., C)


@contextmanager
def edited(model: ModelLike, layer: LayerRef, edit: Edit) -> Iterator[nn.Module]:
    """In the block, `layer`'s output is replaced by edit() of its activation vectors (..., C): the channel
    axis of a feature map (N, C, h, w) moved last and back, a transformer's tokens (N, T, C) as they are."""
    net = as_net(model)
    module = get_layer(net, layer) if isinstance(layer, str) else layer

    def hook(mod, args, out):
        if out.ndim == 4:
            return edit(out.movedim(1, -1)).movedim(-1, 1)
        return edit(out)

    handle = module.register_forward_hook(hook)
    try:
        yield net
    finally:
        handle.remove()


def _vector(v, width: int, what: str = "direction") -> torch.Tensor:
    v = torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).detach().float().flatten()
    if len(v) != width:
        raise ValueError(f"{what} of length {len(v)} for a layer with {width} channels")
    return v


def ablated(
    model: ModelLike,
    layer: LayerRef,
    direction=None,
    *,
    dictionary=None,
    feature: int | Sequence[int] | None = None,
) -> AbstractContextManager[nn.Module]:
    """A context manager that removes a direction from `layer`'s activations in the forward pass.

    direction (C,): its projection is removed at every position (a <- a - (a.u) u, u the unit vector).
    dictionary and feature (an index, or several): the feature's part of the dictionary's reconstruction is
    removed (a <- a - z_f (decode(e_f) - decode(0)), z_f = encode(a)[f]): only where the feature is active.
    """
    if direction is not None and (dictionary is not None or feature is not None):
        raise ValueError("give a direction (C,), or a dictionary and a feature index: not both")
    if direction is None and (dictionary is None or feature is None):
        given = (
            "a dictionary without a feature"
            if dictionary is not None
            else "a feature without a dictionary"
            if feature is not None
            else "nothing"
        )
        raise ValueError(f"give a direction (C,), or a dictionary and a feature index; got {given}")
    if direction is not None:

        def edit(a: torch.Tensor) -> torch.Tensor:
            u = _vector(direction, a.shape[-1])
            u = (u / u.norm().clamp(min=1e-12)).to(a)
            return a - (a @ u)[..., None] * u

        return edited(model, layer, edit)
    n = dictionary.directions.shape[0]
    features = [feature] if np.ndim(feature) == 0 else [int(f) for f in feature]
    if not features or not all(0 <= f < n for f in features):
        raise ValueError(f"features {feature} are not among the dictionary's {n} (0..{n - 1})")
    one = torch.zeros(len(features) + 1, n)
    one[range(len(features)), features] = 1
    parts = torch.as_tensor(dictionary.decode(one))
    parts = parts[:-1] - parts[-1]  # (m, C): what one unit of each feature adds

    def edit(a: torch.Tensor) -> torch.Tensor:
        flat = a.reshape(-1, a.shape[-1])
        z = torch.as_tensor(dictionary.encode(flat.detach().float().cpu()))[:, features]
        return (flat - (z @ parts).to(a)).reshape(a.shape)

    return edited(model, layer, edit)


def steered(model: ModelLike, layer: LayerRef, direction, amount: float) -> AbstractContextManager[nn.Module]:
    """A context manager that adds amount times the unit vector of direction (C,) to every activation
    vector of `layer` (in the layer's units: compare with the norms of its activation vectors)."""

    def edit(a: torch.Tensor) -> torch.Tensor:
        u = _vector(direction, a.shape[-1])
        return a + amount * (u / u.norm().clamp(min=1e-12)).to(a)

    return edited(model, layer, edit)
