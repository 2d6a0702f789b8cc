"""Optimisation-based style transfer at 512 x 512 (100 L-BFGS iterations, the picture of notebook 11),
with the offline EfficientNet-Lite0 as the loss network, side by side with the same loop on a VGG-16
loss network (random weights: the cost does not depend on them); and Efros-Leung texture synthesis,
64 x 64 from a 32 x 32 sample."""
from __future__ import annotations

import time

import torchvision

import vizkit
from vizkit import data, style
from vizkit.images import center_crop, resize

SIDE, STEPS = 512, 100
VGG_STYLE = ["1", "6", "11", "18", "25"]     # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of vgg16.features
VGG_CONTENT = "20"                           # relu4_2


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> list[tuple[str, str, float]]:
    model = vizkit.load_model("efficientnet_lite0", verbose=False)
    vgg = torchvision.models.vgg16(weights=None).features.eval()
    content = center_crop(resize(data.photo("chelsea"), SIDE), SIDE)
    painting = data.painting("swirls", size=SIDE)
    task = f"style transfer {SIDE}x{SIDE}, {STEPS} L-BFGS iterations"
    sample = resize(data.photo("gravel"), 64)[:32, :32]
    return [
        (task, "vizkit.style_transfer, EfficientNet-Lite0 features",
         once(lambda: style.style_transfer(model, content, painting, steps=STEPS, progress=False))),
        (task, "the same loop, VGG-16 features (random weights)",
         once(lambda: style.style_transfer(vgg, content, painting, steps=STEPS, style_layers=VGG_STYLE,
                                           content_layer=VGG_CONTENT, progress=False))),
        ("Efros-Leung texture synthesis, 64x64 from a 32x32 sample, window 11", "vizkit.efros_leung",
         once(lambda: style.efros_leung(sample, 64, window=11))),
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
