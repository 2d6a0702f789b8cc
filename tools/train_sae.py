"""Train the sparse dictionaries of notebook 15 (vizkit/weights/sae/): a TopK sparse autoencoder per
layer of dictionaries.SHIPPED, on EfficientNet-Lite0's activations over composites of every object.

Usage: python tools/train_sae.py [--steps 3000] (make train-sae; about 10 minutes on 2 cores). Writes
<layer>.pt (fp16) and TRAINING.json: the settings, minutes, and explained variance, L0 and dead features
on vectors from composites of a seed no training picture comes from."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import vizkit
from vizkit import data, dictionaries

TRAIN = {"n_images": 2000, "seed": 1000, "per_image": 32}
HELD_OUT = {"n_images": 300, "seed": 1001, "per_image": 32}


def vectors(model, layer: str, n_images: int, seed: int, per_image: int) -> torch.Tensor:
    """per_image activation vectors of `layer` from each of n_images composites of every object."""
    images, *_ = data.composites(n_images, seed=seed, objects=data.object_names())
    return torch.as_tensor(dictionaries.collect(model, images, layer, per_image=per_image, seed=seed).acts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train notebook 15's sparse autoencoders.")
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps per dictionary")
    parser.add_argument("--out", type=Path, default=dictionaries.WEIGHTS_DIR, help="folder for the .pt files")
    parser.add_argument("--images", type=int, default=TRAIN["n_images"], help="training composites")
    parser.add_argument("--held-out", type=int, default=HELD_OUT["n_images"], help="held-out composites")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = vizkit.load_model("efficientnet_lite0")
    settings = {"batch_size": 512, "lr": 1e-3, "seed": 0}
    records, train_set, held_out_set = (
        {},
        {**TRAIN, "n_images": args.images},
        {**HELD_OUT, "n_images": args.held_out},
    )
    for layer, shape in dictionaries.SHIPPED.items():
        start = time.perf_counter()
        train, held_out = vectors(model, layer, **train_set), vectors(model, layer, **held_out_set)
        sae = vizkit.train_sae(train, **shape, steps=args.steps, **settings)
        sae.save(args.out / f"{layer}.pt")
        sae = dictionaries.shipped(layer, args.out)  # scored as shipped, in fp16
        records[layer] = {
            "model": "efficientnet_lite0",
            **shape,
            **settings,
            "steps": args.steps,
            "training_vectors": {**train_set, "objects": len(data.object_names()), "vectors": len(train)},
            "held_out_vectors": {**held_out_set, "vectors": len(held_out)},
            "explained_variance": round(dictionaries.explained_variance(sae, held_out), 4),
            "l0": round(dictionaries.l0(sae, held_out), 2),
            "dead_fraction": round(dictionaries.dead_fraction(sae, held_out), 4),
            "minutes_this_run": round((time.perf_counter() - start) / 60, 1),
            "torch": torch.__version__,
            "command": "python tools/train_sae.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        }
        print(
            layer,
            {k: records[layer][k] for k in ("explained_variance", "l0", "dead_fraction", "minutes_this_run")},
        )
    (args.out / "TRAINING.json").write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
