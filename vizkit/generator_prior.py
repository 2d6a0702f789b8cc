"""A generator prior in miniature (notebook 08): Nguyen et al. 2016's deep generator network, small. A
decoder g(code) is trained to invert a model's pooled features (the input of its classifier) on the
offline pictures; class visualization then climbs in the decoder's code space instead of pixel space, so
every picture it can reach is one the decoder can draw.

Departures from the paper, chosen when this was built: a few thousand offline pictures instead of
ImageNet, 64 px outputs instead of 227, a pixel and a feature loss without the adversarial one, and the
code kept inside [0, the largest training code] by a sigmoid rather than by clipping after each step (so
that optvis.ascent runs it as it runs a Fourier image)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data, shipped
from .activations import features
from .hooks import frozen, run_to
from .inputs import last_linear, to_model_space
from .layers import ModelLike, as_net, model_device, resolve_name

__all__ = [
    "WEIGHTS_DIR",
    "CodeDecoder",
    "code_decoder_names",
    "code_image",
    "decode",
    "decoder_pictures",
    "load_code_decoder",
    "pooled_features",
    "train_code_decoder",
    "training_record",
]

WEIGHTS_DIR = shipped.WEIGHTS / "code_decoders"


class CodeDecoder(nn.Module):
    """code (N x dim) -> N x 3 x side x side pixels in (0, 1): two linear layers to a 4 x 4 grid of `width`
    channels, then blocks that double the side (nearest upsampling, two 3x3 convolutions, LeakyReLU).
    feed: the side of the pictures the codes were computed at; upper, mean_code: the training codes'
    largest value and mean per dimension (buffers, saved with the weights)."""

    def __init__(self, dim: int = 1280, width: int = 128, side: int = 64, feed: int = 128):
        super().__init__()
        self.config = dict(dim=dim, width=width, side=side, feed=feed)
        self.width, self.feed = width, feed
        self.fc = nn.Sequential(
            nn.Linear(dim, 512), nn.LeakyReLU(0.2), nn.Linear(512, width * 16), nn.LeakyReLU(0.2)
        )
        chans = [width, 64, 32, 16, 16, 16, 16][: int(np.log2(side // 4)) + 1]
        blocks: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            blocks += [nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2)]
            blocks += [nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2)]
        self.conv = nn.Sequential(*blocks, nn.Conv2d(chans[-1], 3, 3, padding=1))
        self.register_buffer("upper", torch.ones(dim))
        self.register_buffer("mean_code", torch.zeros(dim))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """code: N x dim -> N x 3 x side x side pixels in (0, 1)."""
        return torch.sigmoid(self.conv(self.fc(code).view(-1, self.width, 4, 4)))


def pooled_features(model: ModelLike, pixels: torch.Tensor) -> torch.Tensor:
    """N x D pooled features (the input of the model's last nn.Linear) of Nx3xHxW pixels in [0, 1],
    with gradients to the pixels."""
    net = as_net(model)
    name = resolve_name(net, last_linear(net, "pooled_features (the input of the classifier)"))
    return run_to(net, to_model_space(model, pixels), name, inputs=True).flatten(1)


def decode(decoder: CodeDecoder, code: torch.Tensor) -> torch.Tensor:
    """The decoder's pictures for codes (N x dim), resized to its feed side: N x 3 x feed x feed in (0, 1)."""
    out = decoder(code)
    return F.interpolate(out, size=decoder.feed, mode="bilinear", align_corners=False)


def decoder_pictures(n: int, size: int = 128, seed: int = 0) -> torch.Tensor:
    """n offline training pictures for a decoder, N x 3 x size x size in [0, 1]: half random views of every
    offline photo (data.views), half composites of every installed object (data.composites)."""
    views, _ = data.views(data.photo_names(), n // 2, seed=seed, size=size)
    pasted, _, _ = data.composites(n - n // 2, seed=seed, size=size, objects=data.object_names())
    return torch.as_tensor(np.concatenate([views, pasted])).permute(0, 3, 1, 2).float() / 255


def train_code_decoder(
    model: ModelLike,
    pictures: torch.Tensor,
    steps: int = 1200,
    batch: int = 32,
    lr: float = 2e-3,
    feature_weight: float = 0.1,
    side: int = 64,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[int, float, float], None] | None = None,
) -> CodeDecoder:
    """A CodeDecoder that inverts the model's pooled features of `pictures` (N x 3 x S x S in [0, 1]; S
    becomes the feed side): loss = mean squared pixel error at the decoder's side + feature_weight x
    (1 - cosine of the decoded picture's features to the code); side: of the decoder's pictures (a power
    of 2, 8 to 256). Adam at lr, x0.3 at 50% and 75% of the steps; callback(step, pixel loss, feature
    loss) each step."""
    dev = model_device(model)
    pictures = pictures.to(dev)
    codes = torch.as_tensor(features(model, to_model_space(model, pictures), batch_size=100), device=dev)
    torch.manual_seed(seed)
    decoder = CodeDecoder(codes.shape[1], side=side, feed=pictures.shape[-1]).to(dev).train()
    decoder.upper.copy_(codes.max(0).values)
    decoder.mean_code.copy_(codes.mean(0))
    small = F.interpolate(pictures, size=decoder.config["side"], mode="area")
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, [steps // 2, 3 * steps // 4], 0.3)
    draws = torch.Generator().manual_seed(seed + 1)
    with frozen(model):
        bar = tqdm(range(steps), desc="code decoder", disable=not progress)
        for step in bar:
            i = torch.randint(len(codes), (batch,), generator=draws).to(dev)
            out = decoder(codes[i])
            pixel = F.mse_loss(out, small[i])
            feature = (
                1 - F.cosine_similarity(pooled_features(model, decode(decoder, codes[i])), codes[i])
            ).mean()
            opt.zero_grad()
            (pixel + feature_weight * feature).backward()
            opt.step()
            schedule.step()
            if callback is not None:
                callback(step, pixel.item(), feature.item())
            if step % 10 == 0:
                bar.set_postfix(pixel=f"{pixel.item():.4f}", feature=f"{feature.item():.3f}")
    return decoder.eval()


def code_image(
    model: ModelLike, decoder: CodeDecoder, n: int = 1, start: torch.Tensor | None = None
) -> tuple[list[torch.Tensor], Callable[[], torch.Tensor]]:
    """(params, render) for optvis.ascent: n codes, each kept in [0, decoder.upper] by a sigmoid,
    starting at `start` (n x dim codes; None: the training codes' mean), rendered as the decoder's
    pictures at its feed side in the model's input space."""
    upper = decoder.upper.to(model_device(model)) + 1e-3
    start = decoder.mean_code.expand(n, -1) if start is None else start
    share = (start.to(upper) / upper).clamp(1e-3, 1 - 1e-3)
    logit = torch.log(share / (1 - share)).clone().requires_grad_(True)

    def render() -> torch.Tensor:
        return to_model_space(model, decode(decoder, upper * torch.sigmoid(logit)))

    return [logit], render


def code_decoder_names() -> list[str]:
    """The shipped decoders (vizkit/weights/code_decoders/*.pt), by model name."""
    return shipped.names("code_decoders")


def load_code_decoder(name: str = "efficientnet_lite0") -> CodeDecoder:
    """The shipped decoder for a model (torch.load with weights_only=True), in eval mode; a fresh copy."""
    state = shipped.state("code_decoders", name, "code decoder for")
    decoder = CodeDecoder(**state["config"])
    decoder.load_state_dict({k: v.float() for k, v in state["decoder"].items()})
    return decoder.eval()


def training_record() -> dict:
    """How each shipped decoder was trained (TRAINING.json): pictures, steps, minutes, command."""
    return shipped.training_record("code_decoders")
