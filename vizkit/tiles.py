"""Tiles that are not heat maps: conv filters as small pictures (notebook 01) and each channel's
top patches (notebook 03). vizkit.plot offers them too."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .heatmaps import ArrayLike, as_numpy

__all__ = ["filter_images", "show_top_patches"]


def filter_images(weights: ArrayLike, scale: str = "symmetric") -> np.ndarray:
    """Conv weights (O, C, kh, kw) -> O images (kh, kw, C) in [0, 1], each filter normalised alone.

    scale="symmetric" maps 0 to grey and the filter's largest |w| to black/white (signs readable);
    "minmax" stretches each filter from its minimum to its maximum (AlexNet-paper style).
    """
    w = as_numpy(weights).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected conv weights of shape (out, in, kh, kw), got {w.shape}")
    w = w.transpose(0, 2, 3, 1)
    axes = (1, 2, 3)
    if scale == "symmetric":
        peak = np.abs(w).max(axis=axes, keepdims=True)
        return 0.5 + 0.5 * w / np.where(peak > 0, peak, 1)
    if scale == "minmax":
        lo, hi = w.min(axis=axes, keepdims=True), w.max(axis=axes, keepdims=True)
        return (w - lo) / np.where(hi > lo, hi - lo, 1)
    raise ValueError(f"scale must be 'symmetric' or 'minmax', got {scale!r}")


def show_top_patches(
    top, channels: Sequence[int] | None = None, size: float = 1.1, title: str | None = None
) -> Figure:
    """One row per channel: its top-k patches (from vizkit.top_patches), titled with the activation."""
    channels = list(top.channels if channels is None else channels)
    missing = [c for c in channels if c not in top.channels]
    if missing:
        raise ValueError(f"channels {missing} were not computed; top_patches was run for {top.channels}")
    k = len(top.patches[0])
    fig, axes = plt.subplots(len(channels), k, figsize=(size * k, size * len(channels) + 0.4), squeeze=False)
    for row, ch in zip(axes, channels):
        r = top.channels.index(ch)
        for j, ax in enumerate(row):
            ax.imshow(top.patches[r][j])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{top.values[r, j]:.1f}", fontsize=7)
        row[0].set_ylabel(f"ch {ch}", fontsize=9)
    fig.suptitle(
        title or f"top-{k} patches per channel (receptive field {top.field.size} px; title = activation)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
