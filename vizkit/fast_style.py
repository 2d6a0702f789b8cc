"""Fast style transfer (Johnson et al. 2016): a feed-forward network trained once per style with the
perceptual losses of vizkit.style, then one forward pass per image. Instance vs batch norm (Ulyanov
et al. 2016/2017) and conditional instance norm for many styles in one network (Dumoulin et al. 2017).

Shipped networks live in vizkit/weights/fast_style/; `python tools/train_fast_style.py` (or `make
train-fast-style`) reproduces them."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data, paintings, settings
from .hooks import frozen, record
from .images import resize
from .inputs import rgb_tensor, to_array, to_model_space
from .layers import ModelLike, as_net, model_device, role_layers
from .style import StyleLoss, gram, target_grams

# fmt: off
__all__ = [
    "HELD_OUT", "LR", "TRAIN_PHOTOS", "WEIGHTS_DIR", "ConditionalInstanceNorm", "content_batches",
    "ConvLayer", "fast_style_names", "load_fast_style", "perceptual_loss", "style_image", "style_names_of",
    "stylize", "train_fast_style", "training_record", "TransformerNet", "LOSS",
]
# fmt: on

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "fast_style"  # package data
HELD_OUT = ("chelsea", "grace_hopper")  # never seen in training: evaluation photos
LR = 2e-3  # Adam's learning rate for training
TRAIN_PHOTOS = (
    "coffee",
    "rocket",
    "astronaut",
    "motorcycle",
    "china",
    "flower",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "moon",
)


# ----------------------------------------------------------------------------------------------
# The transformation network.


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are chosen per style (or mixed: a weight per style)."""

    def __init__(self, channels: int, n_styles: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_styles, channels))
        self.shift = nn.Parameter(torch.zeros(n_styles, channels))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """mix: (N, n_styles) weights per image (one-hot for one style)."""
        x = F.instance_norm(x)
        return x * (mix @ self.scale)[:, :, None, None] + (mix @ self.shift)[:, :, None, None]


class ConvLayer(nn.Module):
    """Reflection padding, convolution, normalisation ('instance', 'batch' or conditional), ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        norm: str = "instance",
        n_styles: int = 1,
        relu: bool = True,
        upsample: bool = False,
    ):
        super().__init__()
        self.upsample, self.relu = upsample, relu
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.pad = kernel // 2
        self.norm = {
            "instance": lambda: nn.InstanceNorm2d(cout, affine=True),
            "batch": lambda: nn.BatchNorm2d(cout),
            "conditional": lambda: ConditionalInstanceNorm(cout, n_styles),
            "none": lambda: nn.Identity(),
        }[norm]()

    def forward(self, x: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        if self.upsample:  # resize, then convolve: no checkerboard artefacts of transposed convs
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(F.pad(x, [self.pad] * 4, mode="reflect"))
        x = self.norm(x, mix) if isinstance(self.norm, ConditionalInstanceNorm) else self.norm(x)
        return F.relu(x) if self.relu else x


class TransformerNet(nn.Module):
    """The layout of Johnson et al.'s transformation network, slimmed: 3x3 .. 9x9 convs, two stride-2
    downsamplings, residual blocks, two resize-convolution upsamplings, reflection padding.

    Takes and returns Nx3xHxW pixels in [0, 1] (a sigmoid bounds the output).
    widths: channels at full, half and quarter resolution (Johnson: 32, 64, 128 with 5 blocks).
    norm: 'instance', 'batch' or 'conditional' (n_styles styles in one network).
    """

    def __init__(
        self, widths: Sequence[int] = (16, 32, 64), blocks: int = 3, norm: str = "instance", n_styles: int = 1
    ):
        super().__init__()
        a, b, c = widths
        self.config = {"widths": list(widths), "blocks": blocks, "norm": norm, "n_styles": n_styles}
        self.n_styles = n_styles
        kw = {"norm": norm, "n_styles": n_styles}
        self.down = nn.ModuleList(
            [ConvLayer(3, a, 9, **kw), ConvLayer(a, b, 3, 2, **kw), ConvLayer(b, c, 3, 2, **kw)]
        )
        self.res = nn.ModuleList(
            [
                nn.ModuleList([ConvLayer(c, c, 3, **kw), ConvLayer(c, c, 3, relu=False, **kw)])
                for _ in range(blocks)
            ]
        )
        self.up = nn.ModuleList(
            [
                ConvLayer(c, b, 3, upsample=True, **kw),
                ConvLayer(b, a, 3, upsample=True, **kw),
                ConvLayer(a, 3, 9, norm="none", relu=False),
            ]
        )

    def forward(
        self, x: torch.Tensor, style: int | Sequence[float] | torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: Nx3xHxW pixels in [0, 1]; style (multi-style networks): an index, or weights per style."""
        mix = self._mix(style, x)
        h, w = x.shape[-2:]
        y = F.pad(x, [0, (-w) % 4, 0, (-h) % 4], mode="reflect")  # any size: pad to a multiple of 4
        for layer in self.down:
            y = layer(y, mix)
        for first, second in self.res:
            y = y + second(first(y, mix), mix)
        for layer in self.up:
            y = layer(y, mix)
        return torch.sigmoid(y[..., :h, :w])  # pixels in (0, 1): no saturated blobs to chase

    def _mix(self, style, x: torch.Tensor) -> torch.Tensor | None:
        if self.n_styles == 1 and style is None:
            return torch.ones(x.shape[0], 1, device=x.device)
        if style is None:
            raise ValueError(
                f"this network holds {self.n_styles} styles: pass a style index or {self.n_styles} weights "
                f"(net(x, style=...), or stylize(img, net, mix=...))"
            )
        if isinstance(style, int):
            if not 0 <= style < self.n_styles:
                raise ValueError(f"style index {style} out of range 0..{self.n_styles - 1}")
            w = F.one_hot(torch.tensor(style), self.n_styles).float()
        else:
            w = torch.as_tensor(style, dtype=torch.float32)
            if w.shape[-1] != self.n_styles:
                raise ValueError(f"got {w.shape[-1]} style weights for a network of {self.n_styles} styles")
        w = w.to(x.device)
        return w if w.ndim == 2 else w.expand(x.shape[0], -1)


# ----------------------------------------------------------------------------------------------
# Training.


def content_batches(size: int, batch: int, seed: int = 0, photos: Sequence[str] = TRAIN_PHOTOS):
    """Endless batches of augmented crops (random scale, position, flip) of the training photos, Nx3xSxS in [0, 1]."""
    rng = np.random.default_rng(settings.seed(seed))
    imgs = [data.photo(p) for p in photos]
    while True:
        out = np.empty((batch, size, size, 3), np.uint8)
        for i in range(batch):
            out[i] = data.random_crop(rng, imgs[rng.integers(len(imgs))], 0.3, size)
        yield rgb_tensor(out)


def perceptual_loss(
    model: ModelLike,
    net_out: torch.Tensor,
    content: torch.Tensor,
    grams: list[dict[str, torch.Tensor]],
    style_idx: torch.Tensor,
    style_weight: float,
    tv: float,
    content_layer: str | None = None,
    style_layers: Sequence[str] | None = None,
) -> tuple[torch.Tensor, float, float]:
    """Johnson et al.'s loss on a batch: content (relative, at content_layer) + style (Grams) + TV.

    content_layer / style_layers: None = the model's perceptual_layer and style_layers (the content
    layer is shallow, as Johnson et al.'s relu2_2: a network trained from nothing needs a content
    loss that pins the layout).
    The TV term here is the mean squared neighbour difference over pixels *and* channels of the batch
    (notebook 11's `style.mean_total_variation` sums over channels), so the same tv weighs less.

    grams: per style, layer -> 1xCxC target; style_idx: (N,) the style of each image.
    Returns (total, content part, style part)."""
    content_layer = role_layers(model, "perceptual_layer", content_layer)
    style_layers = list(role_layers(model, "style_layers", style_layers))
    layers = list(dict.fromkeys(style_layers + [content_layer]))
    net = as_net(model)
    with record(net, layers) as rec:
        with torch.no_grad():  # the target needs no graph
            net(to_model_space(model, content))
        target = rec[content_layer]
        rec.clear()
        net(to_model_space(model, net_out))
        c = ((rec[content_layer] - target).pow(2).flatten(1).sum(1) / target.pow(2).flatten(1).sum(1)).mean()
        s = 0.0
        for name in style_layers:
            g = gram(rec[name])  # (N, C, C)
            t = torch.cat([grams[k][name] for k in style_idx.tolist()])  # (N, C, C)
            s = s + (g - t).pow(2).mean()
        smooth = net_out.diff(dim=-2).pow(2).mean() + net_out.diff(dim=-1).pow(2).mean()
    return c + style_weight * s + tv * smooth, c.item(), float(s.detach())


LOSS = StyleLoss(style_weight=0.5, style_size=256)  # the shipped networks' perceptual loss (tv 10)


def _resume(net: nn.Module, opt: torch.optim.Optimizer, checkpoint: Path | None, dev) -> int:
    """Load the checkpoint into net and opt if it exists; the step to continue from (0 without one)."""
    if checkpoint is None or not checkpoint.exists():
        return 0
    state = torch.load(checkpoint, weights_only=True, map_location=dev)
    net.load_state_dict(state["net"]), opt.load_state_dict(state["opt"])
    return int(state["step"])


def _save(net: TransformerNet, opt: torch.optim.Optimizer, step: int, checkpoint: Path) -> None:
    torch.save(
        {"net": net.state_dict(), "opt": opt.state_dict(), "step": step, "config": net.config}, checkpoint
    )


def train_fast_style(
    model: ModelLike,
    styles: Sequence[np.ndarray],
    steps: int = 1200,
    batch: int = 4,
    size: int = 128,
    loss: StyleLoss = LOSS,
    norm: str = "instance",
    checkpoint: str | Path | None = None,
    progress: bool = True,
    log: Callable[[int, float, float], None] | None = None,
) -> TransformerNet:
    """Train a TransformerNet for one style (or several: a conditional-instance-norm network).

    styles: HxWx3 images (resized so the shorter side is loss.style_size); content: augmented crops of
    TRAIN_PHOTOS, size x size, batch at a time; loss: the perceptual loss's style_weight, tv and
    style_size (a StyleLoss; Adam at lr LR). checkpoint: a file written every 100 steps, and read to
    resume when it exists (training continues where it stopped, same results). log(step, content_loss,
    style_loss) is called every step. The loss model (`model`) is frozen throughout; the network's
    initial weights and batches come from the run's seed (VIZKIT_SEED).
    """
    n, dev, seed = len(styles), model_device(model), settings.seed(0)
    if n > 1 and norm != "instance":
        raise ValueError(f"several styles need conditional instance norm; norm={norm!r} is for one style")
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's random state
        torch.manual_seed(seed)
        net = TransformerNet(norm="conditional" if n > 1 else norm, n_styles=n).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    checkpoint = Path(checkpoint) if checkpoint else None
    start = _resume(net, opt, checkpoint, dev)
    batches = content_batches(size, batch, 0)
    for _ in range(start):  # the same content batches as an uninterrupted run
        next(batches)
    with frozen(model):
        grams = [
            target_grams(model, [s], list(role_layers(model, "style_layers")), size=loss.style_size)
            for s in styles
        ]
        bar = tqdm(range(start, steps), desc="training", disable=not progress, initial=start, total=steps)
        net.train()
        for step in bar:
            content = next(batches).to(dev)
            idx = torch.randint(n, (batch,), generator=torch.Generator().manual_seed(seed * 100003 + step))
            out = net(content, F.one_hot(idx, n).float()) if n > 1 else net(content)
            total, c, s = perceptual_loss(model, out, content, grams, idx, loss.style_weight, loss.tv)
            opt.zero_grad()
            total.backward()
            opt.step()
            if log:
                log(step, c, s)
            if step % 10 == 0:
                bar.set_postfix(content=f"{c:.3f}", style=f"{s:.3f}")
            if checkpoint and ((step + 1) % 100 == 0 or step + 1 == steps):
                _save(net, opt, step + 1, checkpoint)
    return net.eval()


# ----------------------------------------------------------------------------------------------
# Shipped networks.


def fast_style_names() -> list[str]:
    """Names of the shipped networks (vizkit/weights/fast_style/*.pt), usable as stylize(img, style=name)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def load_fast_style(name: str) -> TransformerNet:
    """A shipped network, loaded with torch.load(weights_only=True), in eval mode (a fresh copy each call)."""
    state = _shipped_state(name)
    net = TransformerNet(**state["config"])
    net.load_state_dict({k: v.float() for k, v in state["net"].items()})
    return net.eval()


@functools.cache
def _shipped_state(name: str) -> dict:
    """The file of a shipped network, read once per process."""
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.exists():
        where = "" if WEIGHTS_DIR.exists() else f" ({WEIGHTS_DIR} does not exist: reinstall vizkit)"
        raise KeyError(f"no shipped fast-style network {name!r}; available: {fast_style_names()}{where}")
    return torch.load(path, weights_only=True)


def training_record() -> dict:
    """How each shipped network was trained (vizkit/weights/fast_style/TRAINING.json): styles, steps, minutes, command."""
    return json.loads((WEIGHTS_DIR / "TRAINING.json").read_text())


def style_names_of(name: str) -> list[str]:
    """The styles a shipped network was trained on, in index order."""
    return training_record()[name]["styles"]


@torch.no_grad()
def stylize(
    img: np.ndarray, style: str | TransformerNet, mix: int | Sequence[float] | None = None
) -> np.ndarray:
    """Stylise an image (HxWx3 uint8 or float in [0, 1], grayscale, PIL; see images.ACCEPTED) with one
    forward pass: an HxWx3 float array in [0, 1].

    style: a shipped name (see fast_style_names()) or a TransformerNet; mix: for a multi-style
    network, a style index or one weight per style (interpolation between styles)."""
    net = load_fast_style(style) if isinstance(style, str) else style
    with frozen(net):
        y = net(rgb_tensor(img).to(model_device(net)), mix)
    return to_array(y)


def style_image(name: str, size: int = 256) -> np.ndarray:
    """A style by name: a painting drawn by vizkit (paintings.PAINTINGS) or an offline photo/texture."""
    if name in paintings.PAINTINGS:
        return paintings.painting(name, size=size)
    return resize(data.photo(name), size)
