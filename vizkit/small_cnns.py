"""Adebayo et al.'s (2018) data randomisation test: two small CNNs of the same architecture, trained
on the same composites, one with the true labels and one with the labels shuffled (it can only
memorise). A method whose maps look alike on both does not explain what the network learned.

Shipped networks live in vizkit/weights/small_cnns/; `python tools/train_small_cnns.py` (or `make
train-small-cnns`) reproduces them and records how in TRAINING.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data
from .inputs import to_batch

# fmt: off
__all__ = [
    "CLASSES", "NETWORKS", "LAYER", "SIZE", "WEIGHTS_DIR", "accuracy", "labelled_composites", "load",
    "SmallCNN", "train", "training_record", "training_set",
]
# fmt: on

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "small_cnns"  # package data
# the built-in objects (the same pictures on every machine), in label order
CLASSES = ("cat", "espresso", "moped")
NETWORKS = ("true", "shuffled")  # the shipped networks: trained on the true labels, on shuffled ones
SIZE = 64  # composites' side in pixels
LAYER = "features.10"  # the last conv layer's ReLU: the CAM family's layer (8 x 8 grid)


class SmallCNN(nn.Module):
    """Four 3x3 conv layers (32-64-128-128 channels, three 2x2 max-pools), global average pool, linear.

    Input: Nx3xHxW in model space, (pixels - mean) / std as the EfficientNets (vizkit.to_batch(net, images, crop=False)); the
    class carries its normalisation, so vizkit.inputs reads it as it reads a vizkit Model's."""

    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)

    def __init__(self, n_classes: int = len(CLASSES)):
        super().__init__()
        widths = (3, 32, 64, 128, 128)
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def labelled_composites(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n composites of the three built-in objects at SIZE px: images, labels 0-2 (CLASSES), masks."""
    images, labels, masks = data.composites(n, seed=seed, size=SIZE, objects=CLASSES)
    index = {data.OBJECTS[name][4]: i for i, name in enumerate(CLASSES)}  # ImageNet index -> 0-2
    return images, np.array([index[t] for t in labels]), masks


def training_set(kind: str, n: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The n training composites (seed 1000) and their labels: the true ones (kind "true") or a fixed
    random permutation of them (kind "shuffled", permutation seed `seed`)."""
    if kind not in NETWORKS:
        raise ValueError(f"kind must be one of {NETWORKS}, got {kind!r}")
    images, labels, _ = labelled_composites(n, seed=1000)
    if kind == "shuffled":
        labels = np.random.default_rng(seed).permutation(labels)
    return images, labels


def train(
    kind: str, steps: int = 1000, n: int = 512, batch: int = 64, lr: float = 1e-3, seed: int = 0
) -> tuple[SmallCNN, dict]:
    """Train a SmallCNN on n composites (seed 1000) with the true labels or a fixed random permutation
    of them (kind "true" or "shuffled"); returns the network (eval mode) and a record of the run."""
    images, labels = training_set(kind, n, seed)
    torch.manual_seed(seed)
    net = SmallCNN()
    x, y = to_batch(net, images, crop=False), torch.from_numpy(labels)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    order = np.random.default_rng(seed + 1)
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc=f"training on {kind} labels"):
        idx = torch.from_numpy(order.choice(n, batch, replace=False))
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    record = {
        "kind": kind,
        "steps": steps,
        "train_pictures": n,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "params": sum(p.numel() for p in net.parameters()),
        "train_accuracy": accuracy(net, images, labels),
        "minutes_this_run": round((time.perf_counter() - start) / 60, 1),
        "threads": torch.get_num_threads(),
    }
    return net, record


@torch.no_grad()
def accuracy(net: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of the pictures (uint8 (N, H, W, 3)) whose top class is the label (N,)."""
    logits = torch.cat(
        [net(to_batch(net, images[i : i + 256], crop=False)) for i in range(0, len(images), 256)]
    )
    return float((logits.argmax(1).numpy() == np.asarray(labels)).mean())


def load(kind: str, folder: Path = WEIGHTS_DIR) -> SmallCNN:
    """A shipped network ("true" or "shuffled"; folder: where main() wrote it), loaded with
    torch.load(weights_only=True), in eval mode."""
    path = Path(folder) / f"{kind}.pt"
    if kind not in NETWORKS or not path.exists():
        raise FileNotFoundError(
            f"no shipped network {kind!r} at {path}: kinds are {NETWORKS}; `make train-small-cnns` trains them"
        )
    net = SmallCNN()
    net.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return net.eval()


def training_record(folder: Path = WEIGHTS_DIR) -> dict:
    """How each shipped network was trained (vizkit/weights/small_cnns/TRAINING.json)."""
    return json.loads((Path(folder) / "TRAINING.json").read_text())
