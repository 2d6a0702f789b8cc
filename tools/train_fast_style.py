"""Train the shipped fast-style networks of notebook 12 (vizkit/weights/fast_style/).

Usage: python tools/train_fast_style.py [NAME ...] [--steps 1200] (make train-fast-style; about an
hour on 2 cores). Writes NAME.pt (half precision) and the settings and minutes to TRAINING.json; an
interrupted run resumes from NAME.ckpt."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from vizkit import load_model
from vizkit.fast_style import LOSS, LR, WEIGHTS_DIR, style_image, train_fast_style
from vizkit.style import StyleLoss

RECIPES = {  # name -> styles and training settings of each shipped network
    "swirls": {"styles": ["swirls"]},
    "mosaic": {"styles": ["mosaic"]},
    "circles": {"styles": ["circles"]},
    "multi": {"styles": ["swirls", "mosaic", "circles", "brick"], "steps_factor": 2},
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train the shipped fast-style networks (vizkit/weights/fast_style/)."
    )
    parser.add_argument(
        "names", nargs="*", default=list(RECIPES), help=f"which networks (default: all of {list(RECIPES)})"
    )
    parser.add_argument(
        "--steps", type=int, default=1200, help="steps for a single-style network (multi: twice)"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=128, help="side of the content crops")
    parser.add_argument("--style-weight", type=float, default=0.5)
    parser.add_argument("--tv", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model("efficientnet_lite0", verbose=False)
    record_path = args.out / "TRAINING.json"
    for name in args.names:
        recipe = RECIPES[name]
        steps = args.steps * recipe.get("steps_factor", 1)
        styles = [style_image(s) for s in recipe["styles"]]
        start = time.perf_counter()
        net = train_fast_style(
            model,
            styles,
            steps=steps,
            batch=args.batch,
            size=args.size,
            loss=StyleLoss(style_weight=args.style_weight, tv=args.tv, style_size=LOSS.style_size),
            checkpoint=args.out / f"{name}.ckpt",
        )
        minutes = (time.perf_counter() - start) / 60
        torch.save(
            {"net": {k: v.half() for k, v in net.state_dict().items()}, "config": net.config},
            args.out / f"{name}.pt",
        )
        (args.out / f"{name}.ckpt").unlink()
        record_ = json.loads(record_path.read_text()) if record_path.exists() else {}
        record_[name] = {
            "styles": recipe["styles"],
            "steps": steps,
            "batch": args.batch,
            "crop": args.size,
            "style_weight": args.style_weight,
            "tv": args.tv,
            "lr": LR,
            "seed": 0,
            "params": sum(p.numel() for p in net.parameters()),
            "minutes_this_run": round(minutes, 1),
            "threads": torch.get_num_threads(),
            "command": f"python tools/train_fast_style.py {name} --steps {args.steps} --batch {args.batch} "
            f"--size {args.size} --style-weight {args.style_weight} --tv {args.tv}",
        }
        record_path.write_text(json.dumps(record_, indent=2) + "\n")
        print(f"{name}: {steps} steps in {minutes:.1f} min -> {args.out / (name + '.pt')}")


if __name__ == "__main__":
    main()
