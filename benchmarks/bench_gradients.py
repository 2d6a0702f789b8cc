"""Saliency and Grad-CAM cost against a bare forward+backward of the same model, side by side with
captum's Saliency and pytorch-grad-cam's GradCAM (offline EfficientNet-Lite0, 224 px)."""

from __future__ import annotations

import torch

import vizkit
from vizkit import data

try:
    from bench_occlusion import timed
except ImportError:  # run from another folder
    from benchmarks.bench_occlusion import timed


def main() -> list[tuple[str, str, float]]:
    from captum.attr import Saliency
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = vizkit.load_model("efficientnet_lite0", verbose=False)
    net = model.net
    x1 = model.preprocess(data.photo("chelsea"))
    x8 = torch.cat(
        [
            model.preprocess(data.photo(n))
            for n in [
                "chelsea",
                "coffee",
                "rocket",
                "flower",
                "china",
                "grace_hopper",
                "astronaut",
                "motorcycle",
            ]
        ]
    )
    t = int(model(x1).argmax())
    layer = vizkit.get_layer(model, "blocks.6")

    def bare(x):
        with vizkit.frozen(net):
            xi = x.detach().clone().requires_grad_(True)
            net(xi)[:, t].sum().backward()

    rows = []
    for x, what in [(x1, "1 image"), (x8, "batch of 8")]:
        task = f"gradient maps, EfficientNet-Lite0, 224 px, {what}"
        targets = [t] * len(x)
        rows += [
            (task, "bare forward + backward (reference)", timed(lambda: bare(x))),
            (task, "vizkit.saliency", timed(lambda: vizkit.saliency(model, x, targets))),
            (task, "captum Saliency", timed(lambda: Saliency(net).attribute(x, target=t, abs=True))),
            (
                task,
                "vizkit.grad_cam (blocks.6)",
                timed(lambda: vizkit.grad_cam(model, x, targets, layer="blocks.6")),
            ),
            (
                task,
                "pytorch-grad-cam GradCAM (blocks.6)",
                timed(
                    lambda: GradCAM(model=net, target_layers=[layer])(
                        input_tensor=x, targets=[ClassifierOutputTarget(t)] * len(x)
                    )
                ),
            ),
        ]
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
