"""Optimisation-based style transfer at 512 x 512 (100 L-BFGS iterations, the picture of notebook 11),
with the offline EfficientNet-Lite0 as the loss network, side by side with the same loop on a VGG-16
loss network (random weights: the cost does not depend on them; 10 iterations timed, as VGG-16 takes
seconds per iteration at this size); and Efros-Leung texture synthesis, 64 x 64 from a 32 x 32 sample."""

from __future__ import annotations

import time

import torchvision

import vizkit
from vizkit import data, paintings, style
from vizkit.images import center_crop, resize

SIDE, STEPS, VGG_STEPS = 512, 100, 10
VGG_STYLE = ["1", "6", "11", "18", "25"]  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of vgg16.features
VGG_CONTENT = "20"  # relu4_2


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> list[tuple[str, str, float]]:
    model = vizkit.load_model("efficientnet_lite0", verbose=False)
    vgg = torchvision.models.vgg16(weights=None).features[:26].eval()  # up to relu5_1
    content = center_crop(resize(data.photo("chelsea"), SIDE), SIDE)
    painting = paintings.painting("swirls", size=SIDE)
    sample = resize(data.photo("gravel"), 64)[:32, :32]
    offline = once(lambda: style.style_transfer(model, content, painting, steps=STEPS, progress=False))
    vgg_10 = once(
        lambda: style.style_transfer(
            vgg,
            content,
            painting,
            steps=VGG_STEPS,
            style_layers=VGG_STYLE,
            content_layer=VGG_CONTENT,
            progress=False,
        )
    )
    task = f"style transfer {SIDE}x{SIDE}"
    return [
        (task, f"vizkit.style_transfer, EfficientNet-Lite0 features: {STEPS} L-BFGS iterations", offline),
        (task, "  per iteration", offline / STEPS),
        (
            task,
            f"the same loop on VGG-16 features (random weights), per iteration ({VGG_STEPS} timed)",
            vgg_10 / VGG_STEPS,
        ),
        (task, f"  VGG-16, {STEPS} iterations (extrapolated)", vgg_10 / VGG_STEPS * STEPS),
        (
            "Efros-Leung texture synthesis, 64x64 from a 32x32 sample, window 11",
            "vizkit.efros_leung",
            once(lambda: style.efros_leung(sample, 64, window=11)),
        ),
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
