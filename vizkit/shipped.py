"""The weights that ship inside the package, vizkit/weights/<kind>/: their names, their state (read once,
torch.load with weights_only=True) and how they were trained (TRAINING.json)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

__all__ = ["WEIGHTS", "names", "state", "training_record"]

WEIGHTS = Path(__file__).resolve().parent / "weights"


def names(kind: str) -> list[str]:
    """The shipped files of one kind (a folder under vizkit/weights/, e.g. "texture_networks"), by stem."""
    return sorted(p.stem for p in (WEIGHTS / kind).glob("*.pt"))


@functools.cache
def state(kind: str, name: str, what: str) -> dict:
    """The saved dict of vizkit/weights/<kind>/<name>.pt, read once; an unknown name raises a KeyError
    that calls it `what` ("texture network") and lists the shipped ones."""
    path = WEIGHTS / kind / f"{name}.pt"
    if not path.exists():
        raise KeyError(f"no shipped {what} {name!r}; available: {names(kind)}")
    return torch.load(path, weights_only=True)


def training_record(kind: str) -> dict:
    """How each shipped file of one kind was trained: vizkit/weights/<kind>/TRAINING.json."""
    return json.loads((WEIGHTS / kind / "TRAINING.json").read_text())
