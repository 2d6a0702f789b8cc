"""Train the shipped code decoder of notebook 08 (vizkit/weights/code_decoders/): a generator prior in
miniature (Nguyen et al. 2016) that inverts efficientnet_lite0's pooled features.

Usage: python tools/train_code_decoder.py [--pictures 3000] [--steps 1200] (make train-code-decoder; about
18 minutes on 2 cores). Writes MODEL.pt (half precision) and the settings and minutes to TRAINING.json."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from vizkit import load_model
from vizkit.generator_prior import WEIGHTS_DIR, decoder_pictures, train_code_decoder


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train the shipped code decoder (vizkit/weights/code_decoders/)."
    )
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument(
        "--pictures", type=int, default=3000, help="offline training pictures (decoder_pictures)"
    )
    parser.add_argument("--size", type=int, default=128, help="side of the training pictures (the feed side)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--feature-weight", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, verbose=False)
    start = time.perf_counter()
    pictures = decoder_pictures(args.pictures, size=args.size, seed=args.seed)
    decoder = train_code_decoder(
        model,
        pictures,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        feature_weight=args.feature_weight,
        seed=args.seed,
    )
    minutes = (time.perf_counter() - start) / 60
    state = {"config": decoder.config, "decoder": {k: v.half() for k, v in decoder.state_dict().items()}}
    torch.save(state, args.out / f"{args.model}.pt")
    record_path = args.out / "TRAINING.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record[args.model] = {
        "pictures": f"vizkit.generator_prior.decoder_pictures({args.pictures}, size={args.size}, seed={args.seed})",
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "feature_weight": args.feature_weight,
        "seed": args.seed,
        "params": sum(p.numel() for p in decoder.parameters()),
        "minutes_this_run": round(minutes, 1),
        "threads": torch.get_num_threads(),
        "command": f"python tools/train_code_decoder.py --model {args.model} --pictures {args.pictures} "
        f"--size {args.size} --steps {args.steps} --batch {args.batch} --lr {args.lr} "
        f"--feature-weight {args.feature_weight} --seed {args.seed}",
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{args.model}: {minutes:.1f} min, {record[args.model]['params']:,} parameters -> {args.out}")


if __name__ == "__main__":
    main()
