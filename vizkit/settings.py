"""Run settings shared by the notebooks: fast mode (VIZKIT_FAST=1, used by CI), seeds, threads.

Every seeded draw in a notebook is written `vizkit.seed(k)`: k offset by the run's seed (VIZKIT_SEED,
default 0), so one variable moves every picture and number of a run (`make test-seeds` sweeps it)
while the default run draws exactly what `k` alone drew."""

from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np
import torch

__all__ = ["T", "choose", "default_device", "fast_mode", "run_seed", "seed", "setup"]

T = TypeVar("T")


def fast_mode() -> bool:
    """True when the environment variable VIZKIT_FAST is set to 1 (fewer steps, smaller images)."""
    return os.environ.get("VIZKIT_FAST", "0").strip().lower() not in ("", "0", "false", "no")


def choose(full: T, fast: T) -> T:
    """`fast` in fast mode, else `full`: for the sizes and step counts of a parameters cell."""
    return fast if fast_mode() else full


def run_seed() -> int:
    """The run's seed: the integer in VIZKIT_SEED, 0 when unset."""
    text = os.environ.get("VIZKIT_SEED", "").strip()
    try:
        return int(text or 0)
    except ValueError:
        raise ValueError(f"VIZKIT_SEED must be an integer (or unset), got {text!r}") from None


def seed(k: int = 0) -> int:
    """The seed of a notebook's k-th draw: k + VIZKIT_SEED (k itself when VIZKIT_SEED is unset)."""
    return k + run_seed()


def default_device() -> str:
    """VIZKIT_DEVICE ("cpu" or "cuda") if set, else "cuda" when a GPU is present, else "cpu"."""
    asked = os.environ.get("VIZKIT_DEVICE", "").strip().lower()
    if asked in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if asked not in ("cpu", "cuda"):
        raise ValueError(f"VIZKIT_DEVICE must be 'cpu' or 'cuda' (or unset), got {asked!r}")
    if asked == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("VIZKIT_DEVICE=cuda, but torch sees no CUDA device; unset it or set it to cpu")
    return asked


def setup(seed: int = 0) -> None:
    """Seed Python, NumPy and torch with `seed` + VIZKIT_SEED; set torch's threads from VIZKIT_THREADS."""
    offset = run_seed()
    seed += offset
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    threads = os.environ.get("VIZKIT_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    mode = "fast mode (VIZKIT_FAST=1)" if fast_mode() else "full mode"
    print(
        f"vizkit: {mode}, seed {seed}"
        + (f" (VIZKIT_SEED={offset})" if offset else "")
        + f", {torch.get_num_threads()} torch thread(s), device {default_device()}"
    )
