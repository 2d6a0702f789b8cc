"""Find layers by name and check model inputs; shared by every method in vizkit."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Union

import torch
from torch import nn

# fmt: off
__all__ = [
    "ACTIVATIONS", "as_net", "channels_last", "check_batch", "get_layer", "layer_names", "model_device",
    "ModelLike", "on_model_device", "resolve_name", "role_layers", "token_grid",
]
# fmt: on

if TYPE_CHECKING:
    from .models import Model

# What every method takes as `model`: the object from vizkit.load_model, or a plain nn.Module.
ModelLike = Union["Model", nn.Module]


def as_net(model: ModelLike) -> nn.Module:
    """The nn.Module inside a vizkit Model, or the module itself."""
    net = getattr(model, "net", model)
    if not isinstance(net, nn.Module):
        raise TypeError(f"expected a vizkit Model or an nn.Module, got {type(model).__name__}")
    return net


def layer_names(model: ModelLike) -> list[str]:
    """Names of all submodules, in forward-definition order, as accepted by `layer=`."""
    return [name for name, _ in as_net(model).named_modules() if name]


def get_layer(model: ModelLike, layer: str | nn.Module) -> nn.Module:
    """The submodule called `layer` (or `layer` itself if it is a module of the model)."""
    net = as_net(model)
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in net.modules()):
            raise ValueError(f"{type(layer).__name__} module is not part of this model")
        return layer
    modules = dict(net.named_modules())
    if layer in modules and layer:
        return modules[layer]
    names = layer_names(net)
    close = difflib.get_close_matches(str(layer), names, n=5, cutoff=0.4)
    rest = [n for n in names if n not in close]
    shown = close + rest[: max(0, 25 - len(close))]
    more = f" ... ({len(names) - len(shown)} more; see model.layers())" if len(names) > len(shown) else ""
    raise KeyError(f"no layer named {layer!r}. Closest first: {', '.join(shown)}{more}")


ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.LeakyReLU)


def role_layers(model: ModelLike, role: str, given: object = None):
    """`given` if it is not None, else the model's attribute `role` (style_layers, content_layer or
    perceptual_layer, set by load_model; a plain nn.Module may carry it too), else an error that
    lists candidate layers."""
    if given is not None:
        return given
    value = getattr(model, role, None)
    if value:
        return value
    names = [n for n, m in as_net(model).named_modules() if n and isinstance(m, ACTIVATIONS)]
    stages = [n for n, _ in as_net(model).named_children()]
    raise ValueError(
        f"this model names no {role}: pass {role}=... or set model.{role}. Candidates: activations "
        f"{names[:12]}{' ...' if len(names) > 12 else ''}; top-level blocks {stages}"
    )


def _layer_name(model: ModelLike, layer: nn.Module) -> str:
    """The name under which `layer` is registered in the model."""
    for name, m in as_net(model).named_modules():
        if m is layer:
            return name
    raise ValueError(f"{type(layer).__name__} module is not part of this model")


def resolve_name(model: ModelLike, layer: str | nn.Module) -> str:
    """The registered name of `layer` (a name or a module of the model), checked to exist."""
    if isinstance(layer, nn.Module):
        return _layer_name(model, layer)
    get_layer(model, layer)
    return layer


def check_batch(x: torch.Tensor) -> torch.Tensor:
    """Return x as an Nx3xHxW float tensor; a 3xHxW tensor gains the batch axis, anything else errors."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"expected a tensor of shape Nx3xHxW, got {type(x).__name__}; "
            "use model.preprocess(img) to turn an image into one"
        )
    if x.ndim == 3 and x.shape[0] == 3:
        x = x.unsqueeze(0)
    elif x.ndim == 3 and x.shape[-1] == 3:
        raise ValueError(
            f"got an HxWx3 tensor {tuple(x.shape)}; use model.preprocess(img) or "
            "x.permute(2, 0, 1).unsqueeze(0) for a 1x3xHxW batch"
        )
    if x.ndim != 4:
        raise ValueError(f"expected a tensor of shape Nx3xHxW (or 3xHxW), got {tuple(x.shape)}")
    if x.shape[1] != 3:
        hint = " It looks channels-last: use x.permute(0, 3, 1, 2)." if x.shape[-1] == 3 else ""
        raise ValueError(f"expected 3 colour channels in dim 1 (Nx3xHxW), got {tuple(x.shape)}.{hint}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float tensor, got {x.dtype}; use model.preprocess(img)")
    return x


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """x in channels-last memory layout: 1.5-2x faster CPU convolutions on batches (same values)."""
    return x.contiguous(memory_format=torch.channels_last)


def model_device(model: ModelLike) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    first = next(as_net(model).parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def on_model_device(model: ModelLike, x: torch.Tensor) -> torch.Tensor:
    """check_batch(x), moved to the model's device (a CPU tensor works with a CUDA model)."""
    return check_batch(x).to(model_device(model))


def token_grid(model: ModelLike, size: tuple[int, int]) -> tuple[int, int, int] | None:
    """(prefix tokens, h, w) of a Vision Transformer's token sequence for inputs of size (H, W): timm's
    VisionTransformer (its num_prefix_tokens: [CLS], a distillation token, registers) or torchvision's
    (one class token), read from the model; None for a network without patch tokens."""
    net = as_net(model)
    embed = getattr(net, "patch_embed", None)
    if embed is not None and hasattr(net, "num_prefix_tokens"):  # timm
        if not (getattr(net, "dynamic_img_size", False) or getattr(embed, "dynamic_img_size", False)):
            return net.num_prefix_tokens, *embed.grid_size
        (ph, pw), (h, w) = embed.patch_size, size
        return net.num_prefix_tokens, h // ph, w // pw
    if hasattr(net, "class_token") and hasattr(net, "conv_proj"):  # torchvision
        return 1, size[0] // net.patch_size, size[1] // net.patch_size
    return None
