"""HOG in torch: equal to skimage.feature.hog, and differentiable where it should be."""

import numpy as np
import pytest
import torch
from skimage import data
from skimage.feature import hog as skimage_hog

from vizkit.hog import hog


def reference(images: np.ndarray, p: int, orientations: int = 9) -> np.ndarray:
    kw = dict(orientations=orientations, pixels_per_cell=(p, p), cells_per_block=(2, 2), block_norm="L2-Hys")
    return np.stack([skimage_hog(img, **kw) for img in images])


@pytest.mark.parametrize("p", [4, 5, 8])
def test_equal_to_skimage(p):
    rng = np.random.default_rng(0)
    sets = {
        "faces": data.lfw_subset()[:20],  # 25 x 25
        "noise": rng.random((6, 33, 27)),
        "8-bit": rng.integers(0, 256, (6, 24, 40))
        / 255,  # ties between neighbours: orientations on bin edges
        "blocks": np.kron(
            rng.integers(0, 3, (6, 4, 4)) / 2, np.ones((1, 8, 8))
        ),  # flat areas: zero gradients
    }
    for name, images in sets.items():
        ours = hog(torch.from_numpy(images), pixels_per_cell=p).numpy()
        ref = reference(images, p)
        assert ours.shape == ref.shape, name
        assert np.abs(ours - ref).max() < 1e-6, name  # skimage sums each cell in float32
        assert np.abs(ref).max() > 0.1, name  # the comparison is not between zeros


def test_soft_gradient_changes_only_the_backward_pass():
    x = torch.from_numpy(data.lfw_subset()[:4]).requires_grad_(True)
    w = torch.randn(
        hog(x.detach(), pixels_per_cell=5).shape[1], dtype=x.dtype, generator=torch.Generator().manual_seed(0)
    )
    hard, soft = hog(x, pixels_per_cell=5), hog(x, pixels_per_cell=5, soft_grad=True)
    assert torch.equal(hard, soft)
    (g_hard,) = torch.autograd.grad((hard @ w).sum(), x)
    (g_soft,) = torch.autograd.grad((soft @ w).sum(), x)
    assert torch.isfinite(g_hard).all() and torch.isfinite(g_soft).all()
    assert g_hard.abs().sum() > 0 and not torch.allclose(g_hard, g_soft)


def test_gradient_matches_finite_differences():
    """Through the magnitudes and the normalisation, on a picture with no pixel on a bin edge (an 8-bit
    picture has many: a zero difference is at 0 degrees, where a tiny step changes the bin)."""
    x = torch.from_numpy(np.random.default_rng(3).random((1, 25, 25)))
    w = torch.randn(
        hog(x, pixels_per_cell=5).shape[1], dtype=x.dtype, generator=torch.Generator().manual_seed(1)
    )
    f = lambda z: (hog(z, pixels_per_cell=5) @ w).sum()  # noqa: E731
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xg), xg)
    direction = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    h = 1e-7
    numeric = (f(x + h * direction) - f(x - h * direction)) / (2 * h)
    assert abs(float(numeric) - float((g * direction).sum())) < 1e-4 * max(1.0, abs(float(numeric)))


def test_bad_input():
    with pytest.raises(ValueError, match="NxHxW"):
        hog(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="fewer than a 2x2 block"):
        hog(torch.zeros(1, 12, 12), pixels_per_cell=8)
