"""The registry's methods (vizkit.METHODS) that a peer implements too (and RISE), one image and a batch
of 8 at 224 px on a random-weight ResNet-18, each beside the peer that implements the same method
(captum, pytorch-grad-cam). torch-cam publishes, for the same
network on an i7-10750H CPU: Grad-CAM 40.66 ms and Score-CAM 6796.89 ms per image (its README)."""

from __future__ import annotations

import torch

import vizkit

try:
    from bench_occlusion import timed
except ImportError:  # run from another folder
    from benchmarks.bench_occlusion import timed


ALSO_ONE_IMAGE = ("RISE",)  # methods without a peer here, timed on one image (RISE: 1000 forward passes)
SETTINGS = {"integrated gradients": "32 steps", "Score-CAM": "batch 32", "RISE": "1000 masks, batch 64"}


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

        peers = {
            "gradient x input": ("captum InputXGradient", lambda: InputXGradient(net).attribute(x.clone(), target=t)),
            "integrated gradients": (
                "captum IntegratedGradients (32 steps, riemann_middle)",
                lambda: IntegratedGradients(net).attribute(
                    x, target=t, n_steps=32, method="riemann_middle", internal_batch_size=32
                ),
            ),
            "Grad-CAM": ("pytorch-grad-cam GradCAM", lambda: peer_cam(GradCAM)),
            "Grad-CAM++": ("pytorch-grad-cam GradCAMPlusPlus", lambda: peer_cam(GradCAMPlusPlus)),
            "LayerCAM": ("pytorch-grad-cam LayerCAM", lambda: peer_cam(LayerCAM)),
            "Score-CAM": ("pytorch-grad-cam ScoreCAM (batch 32)", lambda: peer_cam(ScoreCAM, 32)),
        }  # fmt: skip
        for name, method in vizkit.METHODS.items():  # every registered method, its peer beside it
            if name not in peers and (n > 1 or name not in ALSO_ONE_IMAGE):
                continue
            slow = method.passes == "many"
            run = lambda: method(
                net, x, t, **({"layer": "layer4", "upsample": True} if method.needs_layer else {})
            )  # noqa: E731
            rows.append(
                (
                    task,
                    f"vizkit.{method.fn.__name__}" + (f" ({SETTINGS[name]})" if name in SETTINGS else ""),
                    timed(run, 1 if slow else 3),
                )
            )
            if name in peers:
                rows.append((task, peers[name][0], timed(peers[name][1], 1 if slow else 3)))
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
