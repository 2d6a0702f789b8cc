"""Occlusion of one 224x224 image on ResNet-18 (random weights), 32 px window, 16 px stride:
vizkit.occlusion against captum's Occlusion with perturbations_per_eval=16, same windows."""

from __future__ import annotations

import time

import torch
from torchvision.models import resnet18

import vizkit


def timed(fn, repeats: int = 3) -> float:
    """Median wall time of fn() over `repeats` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> list[tuple[str, str, float]]:
    from captum.attr import Occlusion

    torch.manual_seed(0)
    net = resnet18(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    target = int(net(x).argmax())
    probs = lambda inp: net(inp).softmax(-1)  # noqa: E731  (both compute class probabilities)

    ours = lambda: vizkit.occlusion(net, x, target, size=32, stride=16, baseline=0.0, batch_size=16)[0]  # noqa: E731
    captum = lambda: Occlusion(probs).attribute(  # noqa: E731
        x,
        target=target,
        sliding_window_shapes=(3, 32, 32),
        strides=(3, 16, 16),
        baselines=0.0,
        perturbations_per_eval=16,
    )

    # Same computation: pixel (0, 0) is covered only by window (0, 0), where captum's
    # attribution is p(clean) - p(occluded) and vizkit's grid holds p(occluded).
    with torch.no_grad():
        clean = probs(x)[0, target].item()
        grid, attr = ours(), captum()
    assert abs((clean - grid[0, 0]) - attr[0, 0, 0, 0].item()) < 1e-5, "the two disagree"
    return [
        ("occlusion, ResNet-18, 224 px, 32/16 (169 windows)", "vizkit.occlusion (batch 16)", timed(ours)),
        (
            "occlusion, ResNet-18, 224 px, 32/16 (169 windows)",
            "captum Occlusion (16 per eval)",
            timed(captum),
        ),
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
