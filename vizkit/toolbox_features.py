"""A sparse dictionary's features in the toolbox (notebook 15): a layer with a shipped dictionary is also
offered as "<layer> · SAE features", whose mosaic, map, top patches, guided backprop and feature
visualization read the dictionary's features where the plain layer reads its channels."""

from __future__ import annotations

from functools import cache

import torch
from matplotlib.figure import Figure

from . import dictionaries, heatmaps, objectives
from .hooks import frozen, record, relu_rule
from .layers import ModelLike
from .toolbox_views import channel_maps, figure_png

__all__ = ["SUFFIX", "feature_guided_png", "feature_maps", "layers", "objective", "split"]

SUFFIX = " · SAE features"


def layers(model: ModelLike) -> list[str]:
    """The menu entries of the model's shipped dictionaries (Lite0's; none for other models)."""
    lite0 = getattr(model, "name", "") == "efficientnet_lite0"
    return [f"{layer}{SUFFIX}" for layer in dictionaries.SHIPPED] if lite0 else []


@cache
def _dictionary(layer: str) -> dictionaries.SparseAutoencoder:
    return dictionaries.shipped(layer)


def split(entry: str) -> tuple[str, dictionaries.SparseAutoencoder | None]:
    """(the network's layer, its dictionary) of a menu entry; (the entry, None) for a plain layer."""
    if entry.endswith(SUFFIX):
        layer = entry[: -len(SUFFIX)]
        return layer, _dictionary(layer)
    return entry, None


def feature_maps(model: ModelLike, x: torch.Tensor, entry: str) -> torch.Tensor:
    """The entry's maps (units, h, w) for one picture x (1x3xHxW): a dictionary's features, or channels."""
    layer, sae = split(entry)
    maps = channel_maps(model, x, layer)
    return maps if sae is None else sae.maps(maps[None])[0]


def objective(entry: str, unit: int) -> objectives.Objective:
    """What feature visualization maximises for a unit of the entry: a feature's encoder row as a
    direction (objectives.direction), or the channel."""
    layer, sae = split(entry)
    return objectives.channel(layer, unit) if sae is None else objectives.direction(layer, sae.W_enc[unit])


def feature_guided_png(
    model: ModelLike, x: torch.Tensor, entry: str, feature: int, unit: tuple[int, int]
) -> bytes:
    """Guided backprop of a feature's pre-activation at one unit of the layer (its encoder row read at
    that position), over the whole picture."""
    layer, sae = split(entry)
    x = x.detach().clone().requires_grad_(True)
    with frozen(model) as net, relu_rule(net, "guided"), record(net, [layer]) as rec:
        net(x)
        a = rec[layer]
        (a[0, :, unit[0], unit[1]] @ sae.W_enc[feature].detach().to(a)).backward()  # the model's device
    fig = Figure(figsize=(2.9, 2.9))
    ax = fig.add_subplot()
    ax.imshow(heatmaps.gradient_image(x.grad[0].cpu().numpy()))
    (h, w), (gh, gw) = x.shape[2:], a.shape[2:]
    ax.plot([(unit[1] + 0.5) * w / gw], [(unit[0] + 0.5) * h / gh], "c+", ms=12)
    ax.set(xticks=[], yticks=[], title=f"guided backprop of feature {feature}\nat unit {unit} (+)")
    ax.title.set_fontsize(9)
    return figure_png(fig)
