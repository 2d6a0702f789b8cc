"""One step of vizkit's ascent loop against a bare forward+backward of the same model (offline
EfficientNet-Lite0, one 224 px image): the loop's bookkeeping (hooks, objective, optimiser,
projections) should cost at most 20% on top of the passes it cannot avoid."""

from __future__ import annotations

import torch

import vizkit
from vizkit import data, objectives, optvis

try:
    from bench_occlusion import timed
except ImportError:  # run from another folder
    from benchmarks.bench_occlusion import timed

STEPS = 10


def main() -> list[tuple[str, str, float]]:
    model = vizkit.load_model("efficientnet_lite0", verbose=False)
    net = model.net
    x = model.preprocess(data.photo("chelsea"))
    t = model.class_index("goldfish")

    def bare():
        with vizkit.frozen(net):
            xi = x.detach().clone().requires_grad_(True)
            for _ in range(STEPS):
                net(xi)[:, t].sum().backward()
                with torch.no_grad():
                    xi += 0.01 * xi.grad.sign()
                    xi.grad = None

    def ascent(objective, **kwargs):
        return lambda: optvis.ascent(model, objective, x, STEPS, progress=False, **kwargs)

    task = f"{STEPS} ascent steps, EfficientNet-Lite0, 1 image 224 px (seconds per step)"
    rows = [
        (task, "bare forward + backward + update (reference)", timed(bare) / STEPS),
        (task, "vizkit.ascent: class score, Adam", timed(ascent(objectives.class_score(t))) / STEPS),
        (
            task,
            "vizkit.ascent: class score - L2, normalised steps, clamp (CS231n)",
            timed(
                ascent(
                    objectives.class_score(t) - 1e-3 * objectives.l2(),
                    optimizer="normalized",
                    projections=[optvis.clamp_pixels(model)],
                )
            )
            / STEPS,
        ),
        (
            task,
            "vizkit.ascent: layer norm of blocks.4, jitter (DeepDream)",
            timed(
                ascent(
                    objectives.layer_norm("blocks.4"), optimizer="normalized", transforms=[optvis.jitter(32)]
                )
            )
            / STEPS,
        ),
    ]
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
