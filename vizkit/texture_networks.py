"""Texture Networks (Ulyanov et al. 2016) in miniature (notebook 11): a feed-forward generator g(z) from
multi-scale noise, trained so that the Gram matrices of its samples at a model's style layers match one
texture's. One forward pass per picture, where texture synthesis by optimisation takes a hundred.

Departures from the paper, measured when this was built: instance normalisation instead of batch
normalisation (with batch norm about one sample in six showed coloured blobs in eval mode), circular
padding (no border streak; the samples tile), and 8 channels per scale (16 did no better)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import shipped
from .hooks import frozen, record
from .images import ImageLike
from .inputs import to_array, to_model_space
from .layers import ModelLike, as_net, model_device, resolve_name, role_layers
from .style import gram, target_grams

__all__ = [
    "WEIGHTS_DIR",
    "TextureNetwork",
    "conv_block",
    "gram_loss_of_batch",
    "load_texture_network",
    "texture_network_names",
    "train_texture_network",
    "training_record",
]

WEIGHTS_DIR = shipped.WEIGHTS / "texture_networks"


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """The paper's block: 3x3, 3x3 and 1x1 convolutions (circular padding), each normalised, LeakyReLU."""
    layers: list[nn.Module] = []
    for i, k in enumerate((3, 3, 1)):
        conv = nn.Conv2d(cin if i == 0 else cout, cout, k, padding=k // 2, padding_mode="circular")
        layers += [conv, nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class TextureNetwork(nn.Module):
    """Multi-scale generator: noise at sides S, S/2, ..., S/2^(scales-1); from coarse to fine, each join
    upsamples the coarser branch (nearest), normalises both branches, concatenates them and applies a
    conv block. Fully convolutional: any output size. Returns Nx3xSxS pixels in (0, 1)."""

    def __init__(self, scales: int = 5, width: int = 8, noise_channels: int = 3):
        super().__init__()
        self.config = dict(scales=scales, width=width, noise_channels=noise_channels)
        self.scales, self.noise_channels = scales, noise_channels
        self.inputs = nn.ModuleList([conv_block(noise_channels, width) for _ in range(scales)])
        self.joins = nn.ModuleList([conv_block(width * (k + 1), width * (k + 1)) for k in range(1, scales)])
        self.norm_coarse = nn.ModuleList(
            [nn.InstanceNorm2d(width * k, affine=True) for k in range(1, scales)]
        )
        self.norm_fine = nn.ModuleList([nn.InstanceNorm2d(width, affine=True) for _ in range(1, scales)])
        self.out = nn.Conv2d(width * scales, 3, 1)

    def noise(self, n: int, size: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Gaussian noise for n samples, the finest (size x size) first, each next one half as large."""
        sides = [-(-size // 2**k) for k in range(self.scales)]
        z = [torch.randn(n, self.noise_channels, s, s, generator=generator) for s in sides]
        return [t.to(self.out.weight.device) for t in z]

    def forward(self, z: Sequence[torch.Tensor]) -> torch.Tensor:
        """z: noise tensors, finest first (as from `noise`) -> Nx3xHxW pixels in (0, 1)."""
        y = self.inputs[-1](z[-1])
        for j, k in enumerate(range(self.scales - 2, -1, -1)):
            x = self.norm_fine[j](self.inputs[k](z[k]))
            y = self.norm_coarse[j](F.interpolate(y, size=x.shape[-2:], mode="nearest"))
            y = self.joins[j](torch.cat([y, x], 1))
        return torch.sigmoid(self.out(y))

    @torch.no_grad()
    def sample(self, n: int = 1, size: int = 128, seed: int = 0) -> np.ndarray:
        """n seeded samples, n x size x size x 3 floats in [0, 1]."""
        out = self(self.noise(n, size, torch.Generator().manual_seed(seed)))
        return to_array(out).reshape(n, size, size, 3)


def gram_loss_of_batch(
    model: ModelLike, pixels: torch.Tensor, targets: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Mean over the batch of style.gram_loss's measure for Nx3xHxW pixels in [0, 1] (gradients flow to
    pixels); call it inside hooks.frozen(model). targets: layer name -> 1xCxC Gram."""
    names = list(targets)
    with record(as_net(model), names) as rec:
        as_net(model)(to_model_space(model, pixels))
        return sum((gram(rec[n]) - targets[n]).pow(2).mean() for n in names)


def train_texture_network(
    model: ModelLike,
    texture: ImageLike,
    layers: Sequence[str] | None = None,
    size: int = 128,
    steps: int = 600,
    batch: int = 4,
    lr: float = 0.01,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
) -> TextureNetwork:
    """A TextureNetwork whose size x size samples have the texture's Grams at `layers` (None: the model's
    style_layers). Adam at lr, halved at 50%, 75% and 90% of the steps; callback(step, loss) each step."""
    names = [resolve_name(model, n) for n in role_layers(model, "style_layers", layers)]
    targets = target_grams(model, [texture], names)
    torch.manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    net = TextureNetwork().to(model_device(model)).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    milestones = [steps // 2, 3 * steps // 4, 9 * steps // 10]
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.5)
    with frozen(model):
        bar = tqdm(range(steps), desc="texture network", disable=not progress)
        for step in bar:
            loss = gram_loss_of_batch(model, net(net.noise(batch, size, noise)), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            if callback is not None:
                callback(step, loss.item())
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4g}")
    return net.eval()


def texture_network_names() -> list[str]:
    """The shipped generators (vizkit/weights/texture_networks/*.pt), by texture."""
    return shipped.names("texture_networks")


def load_texture_network(name: str) -> TextureNetwork:
    """A shipped generator (torch.load with weights_only=True), in eval mode; a fresh copy each call."""
    state = shipped.state("texture_networks", name, "texture network")
    net = TextureNetwork(**state["config"])
    net.load_state_dict({k: v.float() for k, v in state["net"].items()})
    return net.eval()


def training_record() -> dict:
    """How each shipped generator was trained (TRAINING.json): texture, steps, minutes, command."""
    return shipped.training_record("texture_networks")
