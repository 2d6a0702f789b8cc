"""Notebook 13's methods, one image and a batch of 8 at 224 px on a random-weight ResNet-18, each beside
the peer that implements the same method (captum, pytorch-grad-cam). torch-cam publishes, for the same
network on an i7-10750H CPU: Grad-CAM 40.66 ms and Score-CAM 6796.89 ms per image (its README)."""

from __future__ import annotations

import torch

import vizkit

try:
    from bench_occlusion import timed
except ImportError:  # run from another folder
    from benchmarks.bench_occlusion import timed


def main() -> list[tuple[str, str, float]]:
    from captum.attr import InputXGradient, IntegratedGradients
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(weights=None).eval()
    rows = []
    for n in (1, 8):
        x = torch.randn(n, 3, 224, 224, generator=torch.Generator().manual_seed(n))
        t = list(range(n))
        task = f"ResNet-18 (random weights), 224 px, {'1 image' if n == 1 else 'batch of 8'}"

        def peer_cam(kind, batch_size=None):
            with kind(model=net, target_layers=[net.layer4]) as cam:
                if batch_size:
                    cam.batch_size = batch_size  # ScoreCAM reads it (default 16)
                return cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in t])

        rows += [
            (task, "vizkit.gradient_x_input", timed(lambda: vizkit.gradient_x_input(net, x, t))),
            (
                task,
                "captum InputXGradient",
                timed(lambda: InputXGradient(net).attribute(x.clone(), target=t)),
            ),
            (
                task,
                "vizkit.integrated_gradients (32 steps)",
                timed(lambda: vizkit.integrated_gradients(net, x, t)),
            ),
            (
                task,
                "captum IntegratedGradients (32 steps, riemann_middle)",
                timed(
                    lambda: IntegratedGradients(net).attribute(
                        x, target=t, n_steps=32, method="riemann_middle", internal_batch_size=32
                    )
                ),
            ),  # fmt: skip
            (
                task,
                "vizkit.grad_cam (layer4)",
                timed(lambda: vizkit.grad_cam(net, x, t, layer="layer4", upsample=True)),
            ),
            (task, "pytorch-grad-cam GradCAM", timed(lambda: peer_cam(GradCAM))),
            (
                task,
                "vizkit.grad_cam_plus_plus",
                timed(lambda: vizkit.grad_cam_plus_plus(net, x, t, layer="layer4", upsample=True)),
            ),
            (task, "pytorch-grad-cam GradCAMPlusPlus", timed(lambda: peer_cam(GradCAMPlusPlus))),
            (task, "vizkit.layer_cam", timed(lambda: vizkit.layer_cam(net, x, t, layer="layer4", upsample=True))),
            (task, "pytorch-grad-cam LayerCAM", timed(lambda: peer_cam(LayerCAM))),
            (
                task,
                "vizkit.score_cam (batch 32)",
                timed(lambda: vizkit.score_cam(net, x, t, layer="layer4", upsample=True), 1),
            ),
            (task, "pytorch-grad-cam ScoreCAM (batch 32)", timed(lambda: peer_cam(ScoreCAM, 32), 1)),
        ]
        if n == 1:
            rows.append(
                (task, "vizkit.rise (1000 masks, batch 64)", timed(lambda: vizkit.rise(net, x, t), 1))
            )
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
