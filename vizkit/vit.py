"""A small Vision Transformer that runs offline: timm's VisionTransformer (6 blocks of width 160, 4 heads,
patch 16 at 128 px, a [CLS] token), distilled from EfficientNet-Lite0's 1000-class outputs on the offline
pictures (composites of every available object and augmented views of the photos). Notebook 14 reads it.

Training (`make train-vit`, tools/train_vit.py) is reproducible: fixed seeds, the batch of step k drawn
from (seed, k), resumable checkpoints; the shipped weights are fp16 (vizkit/weights/vit/)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import data

# fmt: off
__all__ = [
    "ARCH", "SIZE", "TEACHER_SIZE", "WEIGHTS_DIR", "WEIGHTS_FILE", "Distillation", "agreement", "build", "distillation_set",
    "load", "shrink", "train", "training_record",
]
# fmt: on

SIZE = 128  # the student's input side: an 8 x 8 grid of 16 px patches
ARCH = dict(
    img_size=SIZE, patch_size=16, embed_dim=160, depth=6, num_heads=4, mlp_ratio=4.0, num_classes=1000,
    dynamic_img_size=True,
)  # fmt: skip
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "vit"  # package data
WEIGHTS_FILE = "vit_distilled.pt"
TEACHER_SIZE = 224  # Lite0 sees the pictures at its own evaluation size; the student a 128 px copy


def build() -> nn.Module:
    """The architecture (ARCH) with fresh weights, in eval mode."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(**ARCH).eval()


def load(folder: Path = WEIGHTS_DIR) -> nn.Module:
    """The shipped (or `folder`'s) distilled ViT, fp16 on disk, float32 here, loaded with weights_only=True."""
    path = Path(folder) / WEIGHTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no distilled ViT at {path}: `make train-vit` trains it (about 45 minutes)")
    net = build()
    state = torch.load(path, weights_only=True, map_location="cpu")
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return net.eval()


def training_record(folder: Path = WEIGHTS_DIR) -> dict:
    """How the shipped ViT was trained (vizkit/weights/vit/TRAINING.json)."""
    return json.loads((Path(folder) / "TRAINING.json").read_text())


def shrink(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """uint8 (N, H, W, 3) pictures -> uint8 (N, size, size, 3), antialiased."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def _model_space(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> Nx3xHxW in [-1, 1], the normalisation of Lite0 and of the student."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def distillation_set(
    teacher: nn.Module, n_composites: int, n_views: int, seed: int, chunk: int = 500
) -> tuple[np.ndarray, torch.Tensor]:
    """Pictures and the teacher's logits: n_composites composites of every available object
    (data.object_names()) and n_views augmented views of the offline photos, made at TEACHER_SIZE,
    scored there by the teacher (a module taking [-1, 1] inputs) and shrunk to SIZE, `chunk` at a
    time (chunk k of composites has seed seed + k, of views seed + 500 + k), so memory stays small.
    Returns uint8 (N, SIZE, SIZE, 3) and fp16 logits (N, 1000)."""
    objects, photos = data.object_names(), data.photo_names()
    jobs = [
        ("composites", k, min(chunk, n_composites - s)) for k, s in enumerate(range(0, n_composites, chunk))
    ]
    jobs += [("views", k, min(chunk, n_views - s)) for k, s in enumerate(range(0, n_views, chunk))]
    images, logits = [], []
    for kind, k, n in tqdm(jobs, desc="pictures and teacher logits"):
        if kind == "composites":
            big = data.composites(n, seed=seed + k, size=TEACHER_SIZE, objects=objects)[0]
        else:
            big = data.views(photos, n, seed=seed + 500 + k, size=TEACHER_SIZE)[0]
        logits += [teacher(_model_space(big[i : i + 64])).half() for i in range(0, n, 64)]
        images.append(shrink(big))
    return np.concatenate(images), torch.cat(logits)


@dataclass(frozen=True)
class Distillation:
    """The training recipe: AdamW with linear warm-up then cosine decay; loss = KL(teacher || student)
    at temperature `temperature` (times its square) + cross-entropy on the teacher's top-1."""

    steps: int = 2800
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 0.05
    temperature: float = 2.0
    seed: int = 0

    def lr_at(self, step: int) -> float:
        """The learning rate of step `step` (0-based)."""
        ramp = max(1, round(self.warmup * self.steps))
        if step < ramp:
            return self.lr * (step + 1) / ramp
        return self.lr * 0.5 * (1 + math.cos(math.pi * (step - ramp) / max(1, self.steps - ramp)))


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 12 px (reflect-padded), the same for the batch's
    logits up to the small change a shift makes."""
    flip = torch.from_numpy(rng.random(len(x)) < 0.5)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dy, dx = rng.integers(0, 25, 2)
    size = x.shape[-1]
    return F.pad(x, (12, 12, 12, 12), mode="reflect")[..., dy : dy + size, dx : dx + size]


def _loss(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    """Distillation loss (see Distillation)."""
    kl = F.kl_div(
        F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="batchmean", log_target=True
    )
    return kl * t * t + F.cross_entropy(student, teacher.argmax(-1))


def train(
    images: np.ndarray,
    logits: torch.Tensor,
    recipe: Distillation = Distillation(),
    checkpoint: Path | None = None,
    every: int = 250,
) -> tuple[nn.Module, dict]:
    """Distil a fresh ViT (build()) on images uint8 (N, SIZE, SIZE, 3) and teacher logits (N, 1000).
    With `checkpoint`, the state is saved every `every` steps and a run resumes from it; the batch of
    step k depends only on (recipe.seed, k), so a resumed run is the run it continues."""
    torch.manual_seed(recipe.seed)
    net = build().train()
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    start, minutes = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        start, minutes = int(state["step"]), float(state["minutes"])
    x_all, clock = _model_space(images), time.perf_counter()
    for step in tqdm(
        range(start, recipe.steps), desc="distilling the ViT", initial=start, total=recipe.steps
    ):
        rng = np.random.default_rng([recipe.seed, step])
        idx = torch.from_numpy(rng.choice(len(images), recipe.batch, replace=False))
        for group in opt.param_groups:
            group["lr"] = recipe.lr_at(step)
        loss = _loss(net(_augment(x_all[idx], rng)), logits[idx].float(), recipe.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if checkpoint is not None and ((step + 1) % every == 0 or step + 1 == recipe.steps):
            spent = minutes + (time.perf_counter() - clock) / 60
            torch.save(
                {"net": net.state_dict(), "opt": opt.state_dict(), "step": step + 1, "minutes": spent},
                checkpoint,
            )
    minutes += (time.perf_counter() - clock) / 60
    record = {
        **asdict(recipe),
        "train_pictures": len(images),
        "params": sum(p.numel() for p in net.parameters()),
    }
    record.update(minutes=round(minutes, 1), threads=torch.get_num_threads(), arch=ARCH)
    return net.eval(), record


@torch.no_grad()
def agreement(student: nn.Module, teacher: nn.Module, images: np.ndarray, batch_size: int = 64) -> float:
    """Share of the pictures (uint8 (N, TEACHER_SIZE, TEACHER_SIZE, 3)) on which the student (given them
    shrunk to SIZE) and the teacher have the same top-1 class."""
    same = []
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        t = teacher(_model_space(chunk)).argmax(-1)
        s = student(_model_space(shrink(chunk))).argmax(-1)
        same.append((s == t).float())
    return float(torch.cat(same).mean())
