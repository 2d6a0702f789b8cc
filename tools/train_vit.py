"""Distil the small ViT of notebook 14 from EfficientNet-Lite0 (vizkit/weights/vit/).

Usage: python tools/train_vit.py [--steps 6000] (make train-vit; about 45 minutes on 2 cores).
The teacher's logits are computed once and kept in --work (build/vit/), with a checkpoint every
250 steps: an interrupted run started again resumes where it stopped. Writes vit_distilled.pt (fp16)
and TRAINING.json: the recipe, minutes, and the top-1 agreement with Lite0 on composites of an unused
seed and on views of the offline photos."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

import vizkit
from vizkit import data
from vizkit.vit import (
    TEACHER_SIZE,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    Distillation,
    agreement,
    distillation_set,
    train,
)

HELD_OUT_SEED = 9000  # composites and views no training picture comes from


def teacher_set(teacher: torch.nn.Module, work: Path, composites: int, views: int, seed: int):
    """The distillation set, computed once and kept in work/set.pt."""
    path = work / f"set_{composites}_{views}_{seed}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["images"].numpy(), saved["logits"]
    images, logits = distillation_set(teacher, composites, views, seed=seed)
    torch.save({"images": torch.from_numpy(images), "logits": logits}, path)
    return images, logits


def held_out_agreement(student: torch.nn.Module, teacher: torch.nn.Module, n: int) -> dict:
    """Top-1 agreement with the teacher on n composites and n // 2 photo views of HELD_OUT_SEED."""
    comp = data.composites(n, seed=HELD_OUT_SEED, size=TEACHER_SIZE, objects=data.object_names())[0]
    views = data.views(data.photo_names(), n // 2, seed=HELD_OUT_SEED + 1, size=TEACHER_SIZE)[0]
    return {
        "agreement_composites": round(agreement(student, teacher, comp), 4),
        "agreement_photo_views": round(agreement(student, teacher, views), 4),
        "held_out": f"{n} composites of seed {HELD_OUT_SEED}, {n // 2} photo views of seed {HELD_OUT_SEED + 1}",
        "objects": len(data.object_names()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Distil the small ViT of notebook 14 from EfficientNet-Lite0."
    )
    parser.add_argument("--steps", type=int, default=Distillation.steps)
    parser.add_argument("--batch", type=int, default=Distillation.batch)
    parser.add_argument("--composites", type=int, default=16000, help="training composites")
    parser.add_argument("--views", type=int, default=2000, help="training views of the offline photos")
    parser.add_argument("--held-out", type=int, default=600, help="composites to measure agreement on")
    parser.add_argument(
        "--out", type=Path, default=WEIGHTS_DIR, help="folder for the weights and TRAINING.json"
    )
    parser.add_argument("--work", type=Path, default=Path("build/vit"), help="teacher logits and checkpoints")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    recipe = replace(Distillation(), steps=args.steps, batch=args.batch)
    teacher = vizkit.load_model("efficientnet_lite0", device="cpu", verbose=False).net
    images, logits = teacher_set(teacher, args.work, args.composites, args.views, recipe.seed + 1000)
    student, record = train(images, logits, recipe, checkpoint=args.work / f"checkpoint_{args.steps}.pt")
    record.update(held_out_agreement(student, teacher, args.held_out))
    record["command"] = (
        f"python tools/train_vit.py --steps {args.steps} --batch {args.batch} --composites {args.composites} --views {args.views}"
    )
    torch.save({k: v.half() for k, v in student.state_dict().items()}, args.out / WEIGHTS_FILE)
    (args.out / "TRAINING.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
