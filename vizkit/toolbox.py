"""The Deep Visualization Toolbox (Yosinski et al. 2015) as an ipywidgets app.

Point a network at a picture, see every channel of a layer light up, click one, and see its map, its
top patches, the guided backprop of its strongest unit and what it wants (feature visualization);
beside it, the top-5 classes with a Grad-CAM each. All pictures are PNGs (toolbox_views.py). For a
Vision Transformer the layers are its blocks (patch tokens as a grid) and a Head menu draws a block's
[CLS] attention, per head or their mean. A layer with a shipped sparse dictionary (notebook 15) is also
offered as "<layer> · SAE features": the same views of the dictionary's features (toolbox_features.py).

Every computation runs on one ModelWorker thread (worker.py): callbacks only submit jobs, a newer
request supersedes an older one, and no two computations ever touch the model at once.
"""

from __future__ import annotations

import base64

import numpy as np

from . import data
from . import toolbox_features as features
from . import toolbox_views as views
from .activations import top_patches
from .image_sets import IMAGE_SETS, data_dir, image_set
from .images import to_uint8
from .models import CLASSIC_MODELS, OFFLINE_MODELS, TIMM_VITS, WeightsUnavailable, load_model
from .settings import choose
from .user_images import BadImage, receive, uploaded
from .worker import Job, ModelWorker, Superseded

__all__ = ["COMPOSITES", "MODELS", "SET_PICTURES", "Toolbox"]

# DINO's ViT has no classifier, so no top-5: the toolbox offers the ViTs that classify
MODELS = (
    OFFLINE_MODELS + ("vit_distilled",) + tuple(n for n in TIMM_VITS if n.startswith("deit")) + CLASSIC_MODELS
)
COMPOSITES = 6  # "composite 1" ... in the picture menu
SET_PICTURES = 12  # "imagenette 1" ... where Imagenette is in the cache


def _set_cached(name: str = "imagenette") -> bool:
    """True when the image set is already in the cache (the toolbox never starts a download)."""
    return (data_dir() / IMAGE_SETS[name].folder).is_dir()


def _picture_names() -> list[str]:
    """The picture menu: offline photos, composites, Imagenette pictures where cached, the upload."""
    names = data.photo_names() + [f"composite {i + 1}" for i in range(COMPOSITES)]
    if _set_cached():
        names += [f"imagenette {i + 1}" for i in range(SET_PICTURES)]
    return names


def _load_picture(name: str) -> np.ndarray:
    """The picture called `name` in the menu (HxWx3 uint8)."""
    if name.startswith("composite "):
        images, _, _ = data.composites(COMPOSITES, seed=1, size=256, objects=data.object_names())
        return images[int(name.split()[1]) - 1]
    if name.startswith("imagenette "):
        images, _ = image_set("imagenette", n=SET_PICTURES, size=224, seed=1)
        return images[int(name.split()[1]) - 1]
    return uploaded() if name == "upload" else data.photo(name)


def _patch_stream(n: int) -> tuple[object, str]:
    """(pictures, what they are) to take top patches from: Imagenette where cached, else composites."""
    if _set_cached():
        images, _ = image_set("imagenette", n=n, size=160, seed=0)
        return images, f"{n} Imagenette pictures"
    objects = data.object_names()
    images, _, _ = data.composites(n, seed=0, size=160, objects=objects)
    return images, f"{n} composites ({len(objects)} objects)"


class Toolbox:
    """The app: `Toolbox().widget` is what to display (notebooks/toolbox.ipynb does it).

    model, picture, layer: the starting choices. stream: how many pictures the top patches are
    taken from; steps, size: of the feature visualization's ascent.
    """

    def __init__(
        self,
        model: str = "efficientnet_lite0",
        picture: str = "chelsea",
        layer: str = "blocks.4",
        stream: int | None = None,
        steps: int | None = None,
        size: int | None = None,
    ):
        from .toolbox_widgets import build  # widgets only where the app is built

        self.stream = stream or choose(160, 12)
        self.steps, self.size = steps or choose(64, 4), size or choose(128, 64)
        self.worker = ModelWorker()
        self.models: dict = {}
        self.patches: dict = {}  # (model, layer) -> TopPatches of every channel
        self.featviz: dict = {}  # (model, layer, channel) -> image
        self.model = self.get_model(model)
        self.spatial, self.flat = views.layer_choices(self.model)
        self.dictionaries = features.layers(self.model)
        self.picture, self.layer, self.page, self.channel, self.head = picture, layer, 0, None, -1
        self.ui = build(self, _picture_names(), MODELS)
        self.widget = self.ui.root
        self.submit("picture", self.draw_picture)
        self.worker.wait()

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget, plus a PNG of the page's pictures for static HTML (no widget manager there)."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle = bundle[0] if isinstance(bundle, tuple) else bundle
        bundle["image/png"] = base64.b64encode(self.snapshot()).decode()
        bundle["text/plain"] = (
            f"Toolbox({self.model.name}, {self.picture}, {self.layer}, channel {self.channel})"
        )
        return bundle

    def snapshot(self) -> bytes:
        """The page's pictures as they are now, stacked into one PNG."""
        images = self.ui.images
        attention = images["attention"].value if views.head_count(self.model) else b""
        return views.stack_png(
            [images["mosaic"].value, images["map"].value, attention],
            [images["guided"].value, images["patches"].value, self.ui.featviz.value],
            [images["top5"].value],
        )

    # -- requests (called by widget callbacks; they only queue work) -------------------------------

    def submit(self, slot: str, fn, *args) -> Job:
        """Queue fn(job, *args) on the model's worker; its error, if any, becomes the status line."""
        return self.worker.submit(slot, lambda job: self.guard(fn, job, *args))

    def guard(self, fn, job: Job, *args) -> None:
        """Run fn, turning any error into one line in the page (the app stays as it was)."""
        try:
            self.ui.say("")
            fn(job, *args)
        except Superseded:
            pass
        except (ValueError, KeyError, IndexError, BadImage, RuntimeError, OSError) as error:
            text = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
            self.ui.say(text.strip().split("\n")[0], error=True)
        except Exception as error:  # a bug: said in the page too, and kept on the job
            self.ui.say(f"unexpected {type(error).__name__}: {error}".split("\n")[0], error=True)
            raise
        finally:
            self.ui.progress(None)

    def choose_picture(self, name: str) -> Job:
        return self.submit("picture", self.set_picture, name)

    def choose_layer(self, layer: str) -> Job:
        return self.submit("layer", self.set_layer, layer)

    def choose_model(self, name: str) -> Job:
        return self.submit("model", self.set_model, name)

    def choose_channel(self, channel: int) -> Job:
        return self.submit("channel", self.set_channel, channel)

    def choose_page(self, page: int) -> Job:
        return self.submit("mosaic", self.set_page, page)

    def choose_head(self, head: int) -> Job:
        """A transformer's head whose [CLS] attention is drawn (-1: the mean of the heads)."""
        return self.submit("attention", self.set_head, head)

    def click(self, px: float, py: float) -> Job | None:
        """A click at pixel (px, py) of the mosaic: selects the channel of that tile."""
        c = self.geometry.channel_at(px, py)
        return None if c is None else self.choose_channel(c)

    def upload(self, name: str, content: bytes) -> Job:
        return self.submit("picture", self.set_upload, name, content)

    def visualize(self) -> Job:
        return self.submit("featviz", self.draw_featviz)

    # -- work (runs on the worker thread) -----------------------------------------------------------

    def get_model(self, name: str):
        if name not in self.models:
            self.models[name] = load_model(name, verbose=False)
        return self.models[name]

    def set_upload(self, job: Job, name: str, content: bytes) -> None:
        try:
            said = receive(name, content)
        except BadImage as error:
            raise BadImage(f"{name}: {error}") from error
        self.ui.say(said)
        self.ui.add_picture("upload")
        self.set_picture(job, "upload")

    def set_picture(self, job: Job, name: str) -> None:
        img = _load_picture(name)
        self.picture = name
        self.img_raw = img
        self.draw_picture(job)

    def set_model(self, job: Job, name: str) -> None:
        try:
            model = self.get_model(name)
        except WeightsUnavailable as error:
            self.ui.show_model(self.model.name)  # the menu goes back to the model in use
            raise WeightsUnavailable(f"{error.args[0]} The page stays with {self.model.name}.") from error
        spatial, flat = views.layer_choices(model)
        self.model, self.spatial, self.flat, self.dictionaries = model, spatial, flat, features.layers(model)
        if self.layer not in spatial + self.dictionaries:
            self.layer = spatial[len(spatial) // 2]
        self.ui.show_layers(spatial + self.dictionaries + flat, self.layer)
        self.head = -1
        self.ui.show_heads(views.head_count(model))
        self.draw_picture(job)

    def set_layer(self, job: Job, layer: str) -> None:
        maps = features.feature_maps(self.model, self.x, layer)  # a clear error for a layer with no grid
        self.layer, self.maps, self.page = layer, maps, 0
        self.channel = int(views.strength(maps).argmax())
        self.draw_attention()
        self.draw_layer(job)

    def set_channel(self, job: Job, channel: int) -> None:
        if not 0 <= channel < len(self.maps):
            raise IndexError(
                f"channel {channel} is out of range: {self.layer} has {len(self.maps)} channels "
                f"(0-{len(self.maps) - 1})"
            )
        self.channel = channel
        self.draw_layer(job)

    def set_page(self, job: Job, page: int) -> None:
        self.page = page
        self.draw_mosaic()

    def set_head(self, job: Job, head: int) -> None:
        n = views.head_count(self.model)
        if not -1 <= head < n:
            raise IndexError(
                f"head {head} is out of range: {self.model.name} has heads 0-{n - 1} (-1: their mean)"
            )
        self.head = head
        self.draw_attention()

    def draw_attention(self) -> None:
        """A transformer's [CLS] attention at the layer's block, for the chosen head (nothing for a CNN)."""
        if views.head_count(self.model):
            self.ui.show(
                "attention", views.attention_png(self.model, self.x, self.img, self.layer, self.head)
            )

    def draw_picture(self, job: Job) -> None:
        """The picture changed (or the model): prediction, the layer's maps, the selected channel."""
        if not hasattr(self, "img_raw"):
            self.img_raw = _load_picture(self.picture)
        self.x = self.model.preprocess(self.img_raw)
        self.img = to_uint8(self.model.deprocess(self.x))
        cam_layer = views.cam_layer(self.model, self.spatial)
        self.ui.show("top5", views.top5_gradcam_png(self.model, self.x, self.img, cam_layer))
        self.set_layer(job, self.layer)

    def draw_mosaic(self) -> None:
        png, self.geometry = views.mosaic(self.maps, self.layer, self.page, self.channel)
        self.ui.show("mosaic", png)
        self.ui.show_page(self.page, -(-len(self.maps) // views.PAGE), self.channel)

    def draw_layer(self, job: Job) -> None:
        """The mosaic and the selected channel's cheap views, then its patches and cached feature viz."""
        self.page = self.geometry_page()
        self.draw_mosaic()
        c, layer = self.channel, self.layer
        self.ui.show("map", views.channel_map_png(self.img, self.maps, c, layer))
        unit = views.strongest_unit(self.maps, c)
        guided = features.feature_guided_png if features.split(layer)[1] is not None else views.guided_png
        self.ui.show("guided", guided(self.model, self.x, layer, c, unit))
        key = (self.model.name, layer, c)
        self.ui.show_featviz(
            views.featviz_png(self.featviz[key], layer, c, self.steps) if key in self.featviz else None
        )
        if not job.superseded:
            self.draw_patches(job)

    def geometry_page(self) -> int:
        """The mosaic page that shows the selected channel."""
        order = np.argsort(-views.strength(self.maps), kind="stable").tolist()
        return order.index(self.channel) // views.PAGE

    def draw_patches(self, job: Job) -> None:
        key = (self.model.name, self.layer)
        if key not in self.patches:
            images, what = _patch_stream(self.stream)
            counted = self.ui.counting(
                images, f"top patches of {self.layer} over {what}", lambda: job.superseded
            )
            layer, sae = features.split(self.layer)
            transform = None if sae is None else sae.maps
            units = range(len(self.maps))
            self.patches[key] = (
                top_patches(self.model, counted, layer, units, k=6, transform=transform),
                what,
            )
        top, what = self.patches[key]
        c = self.channel
        self.ui.show("patches", views.patches_png(top.patches[c], top.values[c], c, what))

    def draw_featviz(self, job: Job) -> None:
        key = (self.model.name, self.layer, self.channel)
        if key not in self.featviz:
            self.ui.progress(0, self.steps, f"feature visualization of {self.layer} #{self.channel}")

            def step(s) -> bool:
                self.ui.progress(s.step + 1, self.steps)
                return job.superseded

            size = views.input_size(self.model, self.size)
            goal = features.objective(self.layer, self.channel)
            layer = features.split(self.layer)[0]
            img = views.feature_visualization(self.model, layer, self.channel, self.steps, size, step, goal)
            if job.superseded:  # stopped early: a newer request wants the worker
                return
            self.featviz[key] = img
        self.ui.show_featviz(views.featviz_png(self.featviz[key], self.layer, self.channel, self.steps))
