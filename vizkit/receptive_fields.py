"""Receptive fields: which input pixels one unit of a layer can see, exact for a network's kernels,
strides, dilations and paddings (and a Vision Transformer's patch embedding)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .hooks import LayerRef, frozen, run_to, swap_modules
from .inputs import spatial
from .layers import ModelLike, as_net, model_device, resolve_name, token_grid

__all__ = ["receptive_field", "ReceptiveField"]


@dataclass(frozen=True)
class ReceptiveField:
    """Where a layer's unit (i, j) looks: input rows offset + i*stride ... + size - 1 (same for columns).

    size: the theoretical receptive field in pixels; stride: pixels between neighbouring units;
    offset: first input pixel of unit 0 (negative where it starts in the padding).
    """

    size: int
    stride: int
    offset: int

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) input pixel box, bottom/right exclusive, of unit (i, j)."""
        top, left = self.offset + i * self.stride, self.offset + j * self.stride
        return top, left, top + self.size, left + self.size

    def crop(self, img: np.ndarray, i: int, j: int, fill: float = 128) -> np.ndarray:
        """Unit (i, j)'s field cut from an HxW or HxWxC array (a picture, or a gradient moved channels-last),
        size x size (x C); parts outside the image are `fill`."""
        top, left, bottom, right = self.box(i, j)
        img = np.asarray(img)
        h, w = img.shape[:2]
        out = np.full((self.size, self.size) + img.shape[2:], fill, img.dtype)
        t, l, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
        if b > t and r > l:
            out[t - top : b - top, l - left : r - left] = img[t:b, l:r]
        return out

    def __iter__(self):
        return iter((self.size, self.stride, self.offset))


def _linearised(name: str, module: nn.Module) -> nn.Module | None:
    """Replacement that makes every path from input to output positive and linear (see receptive_field)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        probe = copy.copy(module)  # same class: keeps its padding rule (TF "same" included)
        probe._parameters = dict(module._parameters)
        probe.weight = nn.Parameter(torch.ones_like(module.weight), requires_grad=False)
        if module.bias is not None:
            probe.bias = nn.Parameter(torch.zeros_like(module.bias), requires_grad=False)
        return probe
    if isinstance(module, nn.MaxPool2d):
        return nn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) or _is_activation(module):
        return nn.Identity()
    return None


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.modules.activation") or type(module).__name__ in (
        "Swish",
        "HardSwish",
        "HardSigmoid",
        "GELU",
    )


def receptive_field(model: ModelLike, layer: LayerRef, input_size: int = 224) -> ReceptiveField:
    """The receptive field of one unit of `layer`, exact for the architecture's kernels, strides,
    dilations and paddings (TensorFlow "same" padding included, which depends on input_size).

    Method: every conv gets all-one weights, max-pools become average pools, batch norms and
    activations become identities; then the input gradient of one output unit is positive exactly
    on its receptive field. The probe grows the input until the field fits inside it. A transformer's
    patch embedding has its patch as field; a layer after attention has none (an error says so).
    """
    net = as_net(model)
    name = resolve_name(net, layer)  # a clear error for a wrong name, before any change to the model
    embedding = next((n for n in ("patch_embed", "conv_proj") if hasattr(net, n)), None)
    if token_grid(net, (input_size, input_size)) is not None and name.split(".")[0] != embedding:
        raise ValueError(
            f"{layer!r} has no local receptive field: attention mixes every patch, so each token sees the "
            f"whole picture (only the patch embedding, {embedding!r}, has one: its patch)"
        )
    device = model_device(net)
    size = input_size
    with frozen(net), swap_modules(net, _linearised) as swapped:
        # a layer inside a replaced module (bn1.act inside bn1) is probed at that module: both are identities
        probe = next((n for n in swapped if name == n or name.startswith(n + ".")), name)
        while True:
            x = torch.ones(1, 3, size, size, device=device, requires_grad=True)
            grid = token_grid(net, (size, size))
            out = spatial(run_to(net, x, probe), layer, grid)
            i = (out.shape[2] - 1) // 2
            if out.shape[2] >= 2:
                rows = [_support(x, out[0, :, i + d, i + d].sum()) for d in (0, 1)]
                (start, end), (next_start, _) = rows
                if start > 0 and end < size - 1:
                    break
            if size >= 8 * input_size:
                raise ValueError(f"the receptive field of {layer!r} exceeds {size} pixels")
            size *= 2
    stride = next_start - start
    return ReceptiveField(end - start + 1, stride, start - i * stride)


def _support(x: torch.Tensor, unit: torch.Tensor) -> tuple[int, int]:
    (grad,) = torch.autograd.grad(unit, x, retain_graph=True)
    rows = torch.nonzero(grad[0].sum((0, 2)) > 0).flatten()
    return int(rows.min()), int(rows.max())
