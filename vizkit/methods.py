"""The attribution methods of notebooks 04-07, 13 and 14 as data: one `Method` each in METHODS.

Every method is called as method(model, x, target=None, *, ...) (the contract that
tests/test_contract.py checks over this registry) and returns a batch. `Method.maps` turns that into
what the comparisons need, (N, h, w) maps where larger means more important: a gradient (N, 3, H, W)
becomes its largest |value| over colour (TorchRay's rule) and occlusion's probabilities P become the
drop p0 - P. `kind` says how to colour the map (plot and heatmaps choose the scale from it). Adding a
method is adding one entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .attention import attention_maps, attention_relevance, attention_rollout
from .attribution import backprop, deconvnet, guided_backprop, occlusion, saliency
from .cams import cam, grad_cam, grad_cam_plus_plus, guided_grad_cam, layer_cam, score_cam
from .gradients import gradient_x_input, integrated_gradients
from .hooks import LayerRef, frozen
from .inputs import Targets, perturbation_targets, scores_of
from .layers import ModelLike, on_model_device
from .rise import rise

__all__ = ["METHODS", "contract", "Method"]


@dataclass(frozen=True)
class Method:
    """One attribution method: its function and what a caller needs to know to compare it."""

    name: str  # what figures and tables call it
    fn: Callable  # fn(model, x, target=None, *, [layer=...,] batch_size=..., ...) -> np.ndarray (N, ...)
    paper: str  # who introduced it
    needs_layer: bool = False  # layer= is required (a name or a module of the model)
    # "one": one forward and backward per batch; "many": per image (copies, masks, a path)
    passes: str = "one"
    resolution: str = "input"  # "input": per pixel; "layer": per position of the layer's grid; "window": per occluding window
    kind: str = "positive"  # of the map Method.maps returns, one of heatmaps.KINDS: positive, signed, drop
    # what fn returns: "map" (N, h, w), "gradient" (N, 3, H, W), "probability" (N, r, c), "heads" (N, heads, h, w)
    result: str = "map"
    # the networks it is defined for: "any"; "cnn" (ReLU backward rules, or a global-average-pool head:
    # it refuses a transformer with a clear error); "transformer" (reads attention: refuses a CNN)
    networks: str = "any"
    options: dict = field(default_factory=dict)  # the settings a comparison uses unless told otherwise

    def __call__(self, model: ModelLike, x: torch.Tensor, target: Targets = None, **options) -> np.ndarray:
        """fn with this entry's options (overridden by `options`)."""
        return self.fn(model, x, target, **{**self.options, **options})

    def maps(
        self,
        model: ModelLike,
        x: torch.Tensor,
        target: Targets = None,
        *,
        layer: LayerRef | None = None,
        signed: bool = False,
        **options,
    ) -> np.ndarray:
        """(N, h, w) maps, larger = more important (see to_map); `layer` goes only to methods that need one."""
        if self.needs_layer:
            if layer is None:
                raise ValueError(f"{self.name} needs layer= (a conv layer's name or module)")
            options["layer"] = layer
        return self.to_map(model, x, target, self(model, x, target, **options), signed=signed)

    def to_map(
        self, model: ModelLike, x: torch.Tensor, target: Targets, out: np.ndarray, signed: bool = False
    ) -> np.ndarray:
        """The method's result `out` for (x, target) as (N, h, w) maps, larger = more important: a gradient's
        largest |value| over colour (TorchRay), or with signed=True its sum over colour (Adebayo et al.'s
        signed maps); occlusion's P as the drop p0 - P; per-head maps as their mean; a map as it is."""
        out = np.asarray(out)
        if self.result == "gradient":
            return out.sum(1) if signed else np.abs(out).max(1)
        if self.result == "probability":
            return _clean_scores(model, x, target)[:, None, None] - out
        if self.result == "heads":
            return out.mean(1)
        return out


def _clean_scores(model: ModelLike, x: torch.Tensor, target: Targets) -> np.ndarray:
    """What a perturbation method scores, on the unperturbed images: P(class) or a callable's score, (N,)."""
    x = on_model_device(model, x)
    with frozen(model) as net, torch.no_grad():
        return (
            torch.cat(
                [
                    scores_of(net, x[i : i + 1], s)
                    for i, s in enumerate(perturbation_targets(model, x, target))
                ]
            )
            .cpu()
            .numpy()
        )


_ENTRIES = [
    Method("saliency", saliency, "Simonyan et al. 2013"),
    Method("gradient x input", gradient_x_input, "Shrikumar et al. 2016", result="gradient"),
    Method("guided backprop", guided_backprop, "Springenberg et al. 2014", result="gradient", networks="cnn"),
    Method("deconvnet", deconvnet, "Zeiler & Fergus 2013", result="gradient", networks="cnn"),
    Method("backprop", backprop, "Simonyan et al. 2013", result="gradient"),
    Method("CAM", cam, "Zhou et al. 2016", resolution="layer", kind="signed", networks="cnn"),
    Method("Grad-CAM", grad_cam, "Selvaraju et al. 2017", needs_layer=True, resolution="layer"),
    Method(
        "Guided Grad-CAM",
        guided_grad_cam,
        "Selvaraju et al. 2017",
        needs_layer=True,
        result="gradient",
        networks="cnn",
    ),
    Method(
        "Grad-CAM++", grad_cam_plus_plus, "Chattopadhyay et al. 2018", needs_layer=True, resolution="layer"
    ),
    Method("LayerCAM", layer_cam, "Jiang et al. 2021", needs_layer=True, resolution="layer"),
    Method(
        "integrated gradients",
        integrated_gradients,
        "Sundararajan et al. 2017",
        passes="many",
        result="gradient",
    ),
    Method("SmoothGrad", saliency, "Smilkov et al. 2017", passes="many", options={"smooth": 16}),
    Method(
        "occlusion",
        occlusion,
        "Zeiler & Fergus 2013",
        passes="many",
        resolution="window",
        kind="drop",
        result="probability",
    ),
    Method("Score-CAM", score_cam, "Wang et al. 2020", needs_layer=True, passes="many", resolution="layer"),
    Method("RISE", rise, "Petsiuk et al. 2018", passes="many"),
    Method(
        "attention",
        attention_maps,
        "Dosovitskiy et al. 2021",
        needs_layer=True,
        resolution="layer",
        result="heads",
        networks="transformer",
    ),
    Method(
        "attention rollout",
        attention_rollout,
        "Abnar & Zuidema 2020",
        resolution="layer",
        networks="transformer",
    ),
    Method(
        "attention relevance",
        attention_relevance,
        "Chefer, Gur & Wolf 2021",
        resolution="layer",
        networks="transformer",
    ),
]
METHODS: dict[str, Method] = {m.name: m for m in _ENTRIES}


def contract() -> str:
    """The method contract as a sentence, generated from METHODS (the README quotes it)."""
    names = ", ".join(f"`{m.fn.__name__}`" for m in METHODS.values() if m.name != "SmoothGrad")
    layered = ", ".join(f"`{m.fn.__name__}`" for m in METHODS.values() if m.needs_layer)
    cnn_only = ", ".join(f"`{m.fn.__name__}`" for m in METHODS.values() if m.networks == "cnn")
    transformer_only = ", ".join(
        f"`{m.fn.__name__}`" for m in METHODS.values() if m.networks == "transformer"
    )
    return (
        f"Every attribution method ({names}, and SmoothGrad as `saliency(..., smooth=n)` or `smooth(method)`) "
        "takes `(model, x, target=None, *, ..., batch_size=...)`: a vizkit model or a plain `nn.Module`, an "
        "Nx3xHxW batch in the model's input space, and a target (None for each image's top class, a class "
        "index or name, one per image, or a callable logits -> scores), with every other argument "
        f"keyword-only; {layered} require `layer=` (a name or a module: a transformer's blocks too, their "
        f"tokens read as the patch grid; {cnn_only} refuse a transformer, {transformer_only} a CNN). Each returns a NumPy batch, "
        "(N, ...) for N = 1 too, and `vizkit.METHODS[name].maps(...)` turns it into (N, h, w) maps, larger "
        "= more important."
    )
