"""Histograms of oriented gradients (Dalal & Triggs 2005) in torch, equal to skimage.feature.hog, so that a
HOG + linear classifier can be attacked with gradients (notebook 09: adversarial examples are not a CNN quirk).

skimage's own `hog` is NumPy and has no gradient; `hog` here computes the same numbers (checked in
tests/test_hog.py to 1e-6 of skimage's, which sums in float32) with tensor operations. Written against scikit-image
0.26; with 0.22 (the declared floor) one of lfw_subset's 200 pictures differs (cause not traced)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["EPS", "gradients", "hog", "orientation_votes"]

EPS = 1e-5  # skimage's block-normalisation epsilon


def gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of NxHxW images along rows and columns, zero on the first and last row/column."""
    g_row = F.pad(x[:, 2:, :] - x[:, :-2, :], (0, 0, 1, 1))
    g_col = F.pad(x[:, :, 2:] - x[:, :, :-2], (1, 1, 0, 0))
    return g_row, g_col


def orientation_votes(
    g_row: torch.Tensor, g_col: torch.Tensor, orientations: int, soft_grad: bool
) -> torch.Tensor:
    """NxHxWxB bin weights: 1 in the bin of each pixel's unsigned orientation (skimage's hard binning).

    soft_grad: same values forward, but the backward pass sees votes split linearly between the two
    nearest bin centres (a smooth stand-in for the piecewise-constant binning, as in BPDA)."""
    width = 180.0 / orientations
    with torch.no_grad():
        angle = torch.rad2deg(torch.atan2(g_row, g_col)) % 180
        upper = width * torch.arange(1, orientations + 1, dtype=angle.dtype, device=angle.device)
        index = torch.searchsorted(
            upper, angle.contiguous(), right=True
        )  # `orientations`: no bin (angle 180)
        hard = F.one_hot(index, orientations + 1)[..., :orientations].to(g_row.dtype)
    if not soft_grad:
        return hard
    flat = (g_row == 0) & (g_col == 0)  # atan2 has no gradient at (0, 0)
    angle = torch.rad2deg(torch.atan2(torch.where(flat, 1.0, g_row), torch.where(flat, 1.0, g_col))) % 180
    t = angle / width - 0.5
    below = torch.floor(t)
    frac = (t - below)[..., None]
    below = below.long() % orientations
    soft = (
        F.one_hot(below, orientations) * (1 - frac)
        + F.one_hot((below + 1) % orientations, orientations) * frac
    )
    return soft + (hard - soft).detach()


def hog(
    x: torch.Tensor,
    orientations: int = 9,
    pixels_per_cell: int = 8,
    cells_per_block: int = 2,
    soft_grad: bool = False,
) -> torch.Tensor:
    """NxHxW greyscale images in [0, 1] -> NxD HOG features, as skimage.feature.hog(image, orientations,
    (pixels_per_cell,) * 2, (cells_per_block,) * 2, block_norm="L2-Hys") gives for each image.

    Differentiable through the gradient magnitudes and the block normalisation; the orientation binning
    is piecewise constant (no gradient) unless soft_grad (see orientation_votes)."""
    if x.dim() != 3:
        raise ValueError(f"hog takes NxHxW greyscale images, got shape {tuple(x.shape)}")
    n, h, w = x.shape
    p, b = pixels_per_cell, cells_per_block
    rows, cols = h // p, w // p
    if rows < b or cols < b:
        raise ValueError(f"{h}x{w} images hold {rows}x{cols} cells of {p} px, fewer than a {b}x{b} block")
    g_row, g_col = gradients(x)
    flat = (g_row == 0) & (g_col == 0)  # hypot's gradient at (0, 0) is NaN: route those pixels around it
    magnitude = torch.where(
        flat, 0.0, torch.hypot(torch.where(flat, 1.0, g_row), torch.where(flat, 1.0, g_col))
    )
    votes = magnitude[..., None] * orientation_votes(g_row, g_col, orientations, soft_grad)
    cells = votes[:, : rows * p, : cols * p].reshape(n, rows, p, cols, p, orientations).mean(dim=(2, 4))
    blocks = cells.unfold(1, b, 1).unfold(2, b, 1).permute(0, 1, 2, 4, 5, 3)  # N, rows', cols', b, b, bins
    norm = lambda v: v / torch.sqrt(v.pow(2).sum(dim=(3, 4, 5), keepdim=True) + EPS**2)  # noqa: E731
    return norm(norm(blocks).clamp(max=0.2)).reshape(n, -1)  # L2-Hys: normalise, clip at 0.2, normalise
