"""Train the two small CNNs of notebook 13's data randomisation test (vizkit/weights/small_cnns/).

Usage: python tools/train_small_cnns.py [--steps 1000] (make train-small-cnns; about 5 minutes on 2
cores). Writes true.pt, shuffled.pt and how they were trained to TRAINING.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vizkit.small_cnns import NETWORKS, WEIGHTS_DIR, accuracy, labelled_composites, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the two small CNNs of the data randomisation test.")
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps per network")
    parser.add_argument(
        "--out", type=Path, default=WEIGHTS_DIR, help="folder for the .pt files and TRAINING.json"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = {}
    held_out = labelled_composites(300, seed=2000)
    for kind in NETWORKS:
        net, record = train(kind, steps=args.steps)
        record["held_out_accuracy"] = accuracy(net, held_out[0], held_out[1])
        record["command"] = f"python tools/train_small_cnns.py --steps {args.steps}"
        torch.save(net.state_dict(), args.out / f"{kind}.pt")
        records[kind] = record
        print(
            f"{kind} labels: train accuracy {record['train_accuracy']:.1%}, held out "
            f"{record['held_out_accuracy']:.1%}, {record['minutes_this_run']} min"
        )
    (args.out / "TRAINING.json").write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
