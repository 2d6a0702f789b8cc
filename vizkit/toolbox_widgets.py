"""The toolbox's page: its controls and picture slots (ipywidgets), wired to a Toolbox (toolbox.py).

Controls only submit requests; the worker thread fills the picture slots with PNGs. Programmatic
changes of a menu (the model going back after a failed load) are made quietly, firing no request.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import ipywidgets as widgets

from . import toolbox_views as views
from .worker import Superseded

__all__ = ["HOW_TO", "SLOTS", "build", "Page"]

SLOTS = {
    "top5": "100%", "mosaic": "736px", "map": "290px", "attention": "290px", "guided": "250px", "patches": "250px",
}  # fmt: skip

HOW_TO = (
    "<b>Deep Visualization Toolbox</b> (Yosinski et al. 2015): every channel of the layer is a tile, "
    "strongest first. <b>Click a tile</b> (or type its number) to look at that channel."
)


class Page:
    """The widgets of one toolbox page, and the few ways the worker changes them."""

    def __init__(self, app, pictures: list[str], models: tuple[str, ...]):
        self.app = app
        self.quiet = False
        w = widgets
        wide = {"description_width": "initial"}
        self.picture = w.Dropdown(options=pictures, value=app.picture, description="Picture", style=wide)
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload a picture")
        layers = app.spatial + app.dictionaries + app.flat
        self.layer = w.Dropdown(options=layers, value=app.layer, description="Layer", style=wide)
        self.model = w.Dropdown(options=models, value=app.model.name, description="Model", style=wide)
        self.head = w.Dropdown(options=[("mean", -1)], value=-1, description="Head", style=wide)
        self.status = w.HTML("")
        self.bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="240px", visibility="hidden"))
        self.bar_text = w.Label("")
        self.images = {k: w.Image(format="png", layout=w.Layout(max_width=v)) for k, v in SLOTS.items()}
        self.featviz = w.Image(format="png", layout=w.Layout(max_width="250px"))
        self.featviz_button = w.Button(
            description="What does it want?", icon="eye", button_style="info", layout=w.Layout(width="220px")
        )
        self.featviz_note = w.HTML("")
        self.prev_page, self.next_page = (
            w.Button(description="◀", layout=w.Layout(width="40px")),
            w.Button(description="▶", layout=w.Layout(width="40px")),
        )
        self.page_text = w.Label("")
        self.channel = w.IntText(value=0, description="Channel", layout=w.Layout(width="160px"))
        self.pages = 1
        self.clicks = self.clickable(self.images["mosaic"])
        self.wire()
        self.root = self.layout()
        for name, widget in [
            ("root", self.root),
            ("status", self.status),
            ("layer", self.layer),
            ("channel", self.channel),
            ("featviz", self.featviz),
            ("head", self.head),
            ("model", self.model),
        ] + list(self.images.items()):
            widget.add_class(f"vizkit-{name}")  # for the browser tests (tests/test_browser.py)

    def clickable(self, image: widgets.Image):
        """ipyevents on the mosaic: a click selects the tile's channel (None if ipyevents is missing)."""
        try:
            from ipyevents import Event
        except ImportError:
            return None
        events = Event(source=image, watched_events=["click"])

        def on_click(event: dict) -> None:
            x, y = event.get("dataX", event.get("relativeX")), event.get("dataY", event.get("relativeY"))
            if x is not None and y is not None:
                self.app.click(x, y)

        events.on_dom_event(on_click)
        return events

    def wire(self) -> None:
        app = self.app

        def on(widget, request: Callable) -> None:
            widget.observe(lambda change: None if self.quiet else request(change["new"]), names="value")

        on(self.picture, app.choose_picture)
        on(self.layer, app.choose_layer)
        on(self.model, app.choose_model)
        on(self.channel, app.choose_channel)
        on(self.head, app.choose_head)
        self.upload.observe(self.on_upload, names="value")
        self.featviz_button.on_click(lambda _: app.visualize())
        self.prev_page.on_click(lambda _: app.choose_page(max(app.page - 1, 0)))
        self.next_page.on_click(lambda _: app.choose_page(min(app.page + 1, self.pages - 1)))

    def on_upload(self, change) -> None:
        files = change["new"]
        for f in files.values() if isinstance(files, dict) else files:
            self.app.upload(f["name"], bytes(f["content"]))

    def layout(self) -> widgets.Widget:
        w = widgets
        hint = "" if self.clicks is not None else " (install ipyevents to click tiles)"
        mosaic = w.VBox(
            [self.images["mosaic"], w.HBox([self.prev_page, self.page_text, self.next_page, self.channel])],
            layout=w.Layout(margin="0 12px 0 0"),
        )
        featviz = w.VBox([self.featviz, self.featviz_button, self.featviz_note])
        self.attention = w.VBox([self.head, self.images["attention"]])  # a transformer's [CLS] attention
        self.show_heads(views.head_count(self.app.model))

        def top() -> widgets.Layout:  # pictures keep their own height (no stretching)
            return w.Layout(align_items="flex-start")

        return w.VBox(
            [
                w.HTML(HOW_TO + hint),
                w.HBox([self.picture, self.upload, self.layer, self.model]),
                self.status,
                w.HBox([self.bar, self.bar_text]),
                w.HBox([mosaic, w.VBox([self.images["map"], self.attention])], layout=top()),
                w.HBox([self.images["guided"], self.images["patches"], featviz], layout=top()),
                self.images["top5"],
            ],
            layout=w.Layout(max_width="1300px"),
        )

    # -- what the worker calls -------------------------------------------------------------------

    def say(self, text: str, error: bool = False) -> None:
        """One line in the page: a note, or (error=True) what went wrong and what to do."""
        colour = "#b00020" if error else "#333"
        mark = "⚠ " if error else ""
        self.status.value = f'<span style="color:{colour}">{mark}{html.escape(text)}</span>' if text else ""

    def show(self, slot: str, png: bytes) -> None:
        self.images[slot].value = png

    def show_featviz(self, png: bytes | None) -> None:
        """The channel's feature visualization, or an empty slot with the button's invitation."""
        self.featviz.value = png or b""
        self.featviz.layout.display = None if png else "none"  # no broken-image icon while empty
        self.featviz_note.value = "" if png else "<i>a short gradient ascent, then kept</i>"

    def show_page(self, page: int, pages: int, channel: int) -> None:
        self.pages = pages
        self.page_text.value = f"page {page + 1} of {pages}"
        with self.quietly():
            self.channel.value = channel

    def show_heads(self, n: int) -> None:
        """The Head menu for a model with n heads per block: their mean or one head; hidden for n = 0."""
        with self.quietly():
            self.head.options = [("mean", -1)] + [(f"head {h}", h) for h in range(n)]
            self.head.value = -1
        self.attention.layout.display = None if n else "none"

    def show_layers(self, layers: list[str], layer: str) -> None:
        with self.quietly():
            self.layer.options = layers
            self.layer.value = layer

    def show_model(self, name: str) -> None:
        with self.quietly():
            self.model.value = name

    def add_picture(self, name: str) -> None:
        with self.quietly():
            if name not in self.picture.options:
                self.picture.options = list(self.picture.options) + [name]
            self.picture.value = name

    def progress(self, value: int | None, total: int | None = None, text: str | None = None) -> None:
        """Show progress (value of total, with a text); None hides the bar."""
        if value is None:
            self.bar.layout.visibility, self.bar_text.value = "hidden", ""
            return
        if total is not None:
            self.bar.max = max(total, 1)
        if text is not None:
            self.bar_text.value = text
        self.bar.value = value
        self.bar.layout.visibility = "visible"

    def counting(self, items: Iterable, text: str, superseded: Callable[[], bool]) -> Iterator:
        """Iterate items, moving the progress bar; stops (raising Superseded) if a newer request came."""
        items = list(items) if not hasattr(items, "__len__") else items
        self.progress(0, len(items), text)
        for i, item in enumerate(items):
            if superseded():
                raise Superseded()
            yield item
            self.progress(i + 1)

    @contextmanager
    def quietly(self):
        self.quiet = True
        try:
            yield
        finally:
            self.quiet = False


def build(app, pictures: list[str], models: tuple[str, ...]) -> Page:
    """The toolbox page for the app."""
    return Page(app, pictures, models)
