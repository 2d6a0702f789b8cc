"""Fast style transfer's payoff: one forward pass of a shipped TransformerNet on a 512 x 512 photo,
against notebook 11's optimisation (100 L-BFGS iterations) for the same content and style."""

from __future__ import annotations

import time

import vizkit
from vizkit import data, fast_style, paintings, style
from vizkit.images import center_crop, resize

try:
    from bench_occlusion import timed
except ImportError:  # run from another folder
    from benchmarks.bench_occlusion import timed

SIDE, STEPS = 512, 100


def main() -> list[tuple[str, str, float]]:
    model = vizkit.load_model("efficientnet_lite0", verbose=False)
    net = fast_style.load_fast_style("swirls")
    content = center_crop(resize(data.photo("chelsea"), SIDE), SIDE)
    painting = paintings.painting("swirls", size=SIDE)
    task = f"stylise one {SIDE}x{SIDE} photo with the swirls style"
    start = time.perf_counter()
    style.style_transfer(model, content, painting, steps=STEPS, progress=False)
    optimisation = time.perf_counter() - start
    forward = timed(lambda: fast_style.stylize(content, net))
    return [
        (task, f"optimisation, {STEPS} L-BFGS iterations (notebook 11)", optimisation),
        (task, "fast_style.stylize, one forward pass (notebook 12)", forward),
        (task, "speed-up (times)", optimisation / forward),
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
