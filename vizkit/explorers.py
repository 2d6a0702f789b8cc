"""Widgets where poking teaches: a few controls and a picture that redraws when they change.

Each explorer draws its default picture when it is built, so a notebook shows a figure in static
HTML and in CI too (the display carries a PNG beside the live widget). In a notebook, the last line
of a cell, `explorers.occlusion(model, x, img)`, shows one. `redraw(**values)` is what a control's
change calls; tests call it with non-default values.
"""

from __future__ import annotations

import base64
import html
import inspect
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from . import attacks, dreams, fast_style, plot, style
from .attribution import occlusion
from .layers import ModelLike
from .methods import METHODS
from .toolbox_views import figure_png

# fmt: off
__all__ = [
    "class_map_explorer", "deepdream_explorer", "Explorer", "fgsm_explorer", "mixing_explorer",
    "occlusion_explorer", "probabilities", "slider", "style_explorer",
]
# fmt: on


class Explorer:
    """Controls and a picture: draw(**values) -> Figure is redrawn (as a PNG) whenever a control changes."""

    def __init__(self, draw: Callable[..., Figure], controls: dict[str, widgets.ValueWidget], note: str = ""):
        self.draw, self.controls = draw, controls
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="560px"))
        self.said = widgets.HTML(note)
        self.widget = widgets.VBox([widgets.HBox(list(controls.values())), self.said, self.image])
        self.widget.add_class("vizkit-explorer")  # for the browser tests
        self.image.add_class("vizkit-explorer-picture")
        for control in controls.values():
            control.observe(lambda _: self.refresh(), names="value")
        self.refresh()

    def values(self) -> dict:
        """The controls' current values, by name."""
        return {name: c.value for name, c in self.controls.items()}

    def refresh(self) -> bytes:
        """Draw with the controls' values; a bad value becomes one line above the last good picture."""
        try:
            png = figure_png(self.draw(**self.values()))
        except (ValueError, KeyError, IndexError) as error:
            self.said.value = f'<span style="color:#b00020">⚠ {html.escape(str(error))}</span>'
            return self.image.value
        self.said.value, self.image.value = "", png
        return png

    def redraw(self, **values) -> bytes:
        """Set some controls (by name) as a person would, and return the picture they produce."""
        for name, value in values.items():
            if name not in self.controls:
                raise KeyError(f"no control named {name!r}; controls: {', '.join(self.controls)}")
            self.controls[name].value = value  # fires refresh() through the observer
        return self.image.value

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle = bundle[0] if isinstance(bundle, tuple) else bundle
        bundle["image/png"] = base64.b64encode(self.image.value).decode()
        return bundle


@torch.no_grad()
def probabilities(model: ModelLike, x: torch.Tensor) -> torch.Tensor:
    """The class probabilities (1000,) of one picture (1x3xHxW)."""
    return model(x).softmax(-1)[0]


def slider(
    value: float, lo: float, hi: float, step: float, label: str, fmt: str = ".3g"
) -> widgets.FloatSlider:
    """A float slider that redraws on release (each picture costs a computation)."""
    return widgets.FloatSlider(
        value=value, min=lo, max=hi, step=step, description=label, readout_format=fmt,
        continuous_update=False, style={"description_width": "initial"},
    )  # fmt: skip


def _class_menu(model: ModelLike, value: int) -> widgets.Dropdown:
    """All the model's classes, by name."""
    return widgets.Dropdown(
        options=[(name, i) for i, name in enumerate(model.classes)], value=value, description="Class"
    )


def occlusion_explorer(
    model: ModelLike, x: torch.Tensor, img: np.ndarray, target: int, sizes=(16, 32, 48), strides=(8, 16, 32)
):
    """Occlusion (notebook 04): the square's size and stride; the drop p0 - P over the picture, as 04 draws it."""
    p0 = float(probabilities(model, x)[target])

    def draw(size: int, stride: int) -> Figure:
        grid = occlusion(model, x, target, size=size, stride=stride)[0]  # (rows, cols) of windows
        fig = Figure(figsize=(9.0, 4.0))
        photo, ax = fig.subplots(1, 2)
        photo.imshow(img)
        photo.set(title=f"the picture: P({model.classes[target]}) = {p0:.2f}", xticks=[], yticks=[])
        plot.show_occlusion(
            img, grid, size, stride, p0, f"a {size}-px grey square every {stride} px", ax
        )  # as 04 draws it
        fig.tight_layout()
        return fig

    controls = {
        "size": widgets.Dropdown(options=list(sizes), value=sizes[1], description="Square (px)"),
        "stride": widgets.Dropdown(options=list(strides), value=strides[1], description="Stride (px)"),
    }
    return Explorer(draw, controls)


def class_map_explorer(
    model: ModelLike, x: torch.Tensor, img: np.ndarray, method: str = "saliency", layer: str | None = None
):
    """Any method of vizkit.METHODS ("saliency" in 05, "Grad-CAM" in 07, ...) for any of the model's
    classes, over the picture; `layer` for the methods that need one."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    entry, top = METHODS[method], int(probabilities(model, x).argmax())
    options = {"upsample": True} if "upsample" in inspect.signature(entry.fn).parameters else {}
    clip, what = (
        (99, "|gradient|") if method == "saliency" else (None if entry.resolution == "layer" else 99, method)
    )

    def draw(target: int) -> Figure:
        p = float(probabilities(model, x)[target])
        heat = entry.maps(model, x, target, layer=layer, **options)[0]
        fig = Figure(figsize=(5.2, 4.0))
        plot.show_heatmap(img, heat, ax=fig.add_subplot(), kind=entry.kind, clip=clip, label=what,
                          title=f"{what} of {model.classes[target]} (P = {p:.2f})")  # fmt: skip
        return fig

    return Explorer(draw, {"target": _class_menu(model, top)})


def fgsm_explorer(model: ModelLike, x: torch.Tensor, true: int, eps_max: float = 8 / 255):
    """FGSM (09): epsilon, and a target class (or none: away from the true label), with the new top-5."""

    def draw(eps: float, target: int) -> Figure:
        targeted = target >= 0
        adv = attacks.fgsm(
            model, x, target if targeted else true, eps, targeted=targeted, steps=1 if not targeted else 10
        )
        fig = Figure(figsize=(9.0, 3.4))
        for k, (picture, name) in enumerate([(x, "clean"), (adv, f"eps = {eps * 255:.1f}/255")]):
            ax = fig.add_subplot(1, 3, k + 1)
            ax.imshow(model.deprocess(picture))
            top = probabilities(model, picture).topk(1)
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"{name}: {model.classes[int(top.indices)]} {float(top.values):.2f}", fontsize=9)
        plot.show_topk(model.predict(adv)[0], title="top-5 after the attack", ax=fig.add_subplot(1, 3, 3))
        fig.tight_layout()
        return fig

    targets = [("none (away from the true class)", -1)] + [(n, i) for i, n in enumerate(model.classes)]
    controls = {
        "eps": slider(2 / 255, 0.0, eps_max, 0.5 / 255, "eps (pixels, 0-1)", ".4f"),
        "target": widgets.Dropdown(options=targets, value=-1, description="Target class"),
    }
    return Explorer(draw, controls, note="targeted: 10 steps of iterative FGSM within eps")


def deepdream_explorer(
    model: ModelLike, x: torch.Tensor, layers: Sequence[str], steps: int = 5, size: int = 160
):
    """DeepDream (10): the layer and the number of octaves, at a preview size."""
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)

    def draw(layer: str, octaves: int) -> Figure:
        dream = dreams.deepdream(model, x, layer, octaves=octaves, steps=steps, progress=False)
        fig = Figure(figsize=(4.0, 4.2))
        ax = fig.add_subplot()
        ax.imshow(model.deprocess(dream))
        ax.set(xticks=[], yticks=[], title=f"{layer}, {octaves} octave(s), {size} px preview")
        return fig

    controls = {
        "layer": widgets.Dropdown(options=list(layers), value=layers[len(layers) // 2], description="Layer"),
        "octaves": widgets.IntSlider(value=2, min=1, max=4, description="Octaves", continuous_update=False),
    }
    return Explorer(draw, controls)


def style_explorer(
    model: ModelLike, content: np.ndarray, style_img: np.ndarray, size: int = 128, steps: int = 20
):
    """Neural style (11): the style weight and the total-variation weight, at a preview size (L-BFGS)."""

    def draw(style_weight: float, tv: float) -> Figure:
        out = style.style_transfer(model, content, style_img, style.StyleLoss(style_weight, tv), size=size,
                                   steps=steps, progress=False)  # fmt: skip
        fig = Figure(figsize=(4.0, 4.2))
        ax = fig.add_subplot()
        ax.imshow(out)
        ax.set(
            xticks=[], yticks=[], title=f"style weight {style_weight:g}, TV {tv:g} ({size} px, {steps} steps)"
        )
        return fig

    controls = {
        "style_weight": widgets.SelectionSlider(
            options=[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0],
            value=3.0,
            description="Style weight",
            continuous_update=False,
            style={"description_width": "initial"},
        ),  # fmt: skip
        "tv": slider(10.0, 0.0, 50.0, 5.0, "TV weight"),
    }
    return Explorer(draw, controls)


def mixing_explorer(net, photo: np.ndarray, names: Sequence[str]):
    """Conditional instance norm (12): one weight per style of a multi-style network, mixed live."""

    def draw(**weights: float) -> Figure:
        w = [weights[n] for n in names]
        if sum(w) <= 0:
            raise ValueError("give at least one style a weight above 0")
        fig = Figure(figsize=(4.0, 4.2))
        ax = fig.add_subplot()
        ax.imshow(fast_style.stylize(photo, net, [v / sum(w) for v in w]))
        ax.set(xticks=[], yticks=[], title=" + ".join(f"{v / sum(w):.2f} {n}" for n, v in zip(names, w) if v))
        return fig

    controls = {n: slider(1.0 if i == 0 else 0.0, 0.0, 1.0, 0.05, n, ".2f") for i, n in enumerate(names)}
    for c in controls.values():
        c.continuous_update = True  # one forward pass: cheap enough to follow the slider
    return Explorer(draw, controls)
