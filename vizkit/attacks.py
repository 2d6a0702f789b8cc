"""Attacks (notebook 09): fooling images (Nguyen et al. 2015; CS231n's gradient steps) and the fast
gradient sign method (Goodfellow et al. 2014) with its iterative form, built on vizkit.optvis.ascent."""

from __future__ import annotations

import torch

from .hooks import frozen
from .inputs import Targets, class_index, fixed_targets, stats
from .layers import ModelLike, on_model_device
from .objectives import class_score, log_probability
from .optvis import ascent, clamp_pixels, eps_ball

__all__ = ["fgsm", "fooling_image"]


def fooling_image(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets,
    lr: float = 1.0,
    max_steps: int = 100,
    min_prob: float = 0.5,
    progress: bool = False,
) -> torch.Tensor:
    """x changed until the model says `target`: gradient steps of L2 length lr on the target's score.

    x: normalised Nx3xHxW images; target: a class for all, or one per image. lr: the L2 norm of each
    step in model space (as in CS231n). Each image stops at its first step whose probability of its
    target is at least min_prob (0.5: a top-1 that survives saving as 8 bits); raises RuntimeError if
    max_steps do not suffice. Returns the fooled batch, Nx3xHxW.
    """
    x = on_model_device(model, x)
    if len(x) > 1:  # one image at a time: each stops when it is fooled
        targets = [target] * len(x) if isinstance(target, (int, str)) else list(target)
        if len(targets) != len(x):
            raise ValueError(f"got {len(targets)} targets for {len(x)} images")
        return torch.cat(
            [
                fooling_image(model, x[i : i + 1], t, lr, max_steps, min_prob, progress)
                for i, t in enumerate(targets)
            ]
        )
    target = target if isinstance(target, (int, str)) else list(target)[0]
    t = class_index(model, target)
    done = lambda s: bool(s.logits.softmax(1)[0, t] >= min_prob)
    # the stop test runs on the image of each step, so max_steps + 1 forward passes may be needed
    fooled = ascent(
        model,
        class_score(target),
        x,
        max_steps + 1,
        lr=lr,
        optimizer="l2",
        projections=[clamp_pixels(model)],
        callback=done,
        progress="fooling" if progress else False,
    )
    with frozen(model) as net, torch.no_grad():
        if net(fooled).softmax(1)[0, t] < min_prob:
            raise RuntimeError(
                f"not fooled into class {target!r} after {max_steps} steps; raise lr or max_steps"
            )
    return fooled


def fgsm(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets,
    eps: float,
    targeted: bool = False,
    steps: int = 1,
    step_size: float | None = None,
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2014): x moved by eps per pixel along sign(gradient).

    target: the label whose loss the step raises (untargeted: usually the true label; None: each
    image's top class), or with targeted=True the label to step towards. eps: in [0, 1] pixel units.
    steps > 1: iterative FGSM (Kurakin et al. 2016) with steps of step_size (default 2.5 eps / steps),
    kept within eps of x. Returns the perturbed batch in model space, inside [0, 1] pixels.
    """
    x = on_model_device(model, x).detach()
    if target is None:
        target = fixed_targets(model, x, None)
    _, std = stats(model)
    alpha = (eps if steps == 1 else (step_size or 2.5 * eps / steps)) / std
    loss = log_probability(target) if targeted else -log_probability(target)
    return ascent(
        model,
        loss,
        x,
        steps,
        lr=alpha,
        optimizer="sign",
        projections=[eps_ball(model, x, eps)],
        progress=False,
    )
