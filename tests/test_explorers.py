"""Every explorer (vizkit.explorers) draws its default at once and redraws for a non-default value."""

import pytest

import vizkit
from vizkit import data, explorers, fast_style, paintings
from vizkit.images import center_crop, resize


@pytest.fixture(scope="module")
def model():
    return vizkit.load_model("efficientnet_lite0", verbose=False)


@pytest.fixture(scope="module")
def picture(model):
    x = model.preprocess(data.photo("chelsea"), size=96)
    return x, model.deprocess(x)


def redraws(explorer, **values) -> None:
    """The default is drawn and shown as a PNG in the display; the new values draw a different one."""
    first = explorer.image.value
    assert first[:4] == b"\x89PNG" and explorer._repr_mimebundle_()["image/png"]
    assert explorer.redraw(**values) != first
    assert explorer.said.value == "" or "⚠" not in explorer.said.value
    assert {k: explorer.controls[k].value for k in values} == values


def test_occlusion_square_and_stride(model, picture):
    x, img = picture
    redraws(
        explorers.occlusion_explorer(model, x, img, target=285, sizes=(16, 32), strides=(16, 32)), size=16
    )


@pytest.mark.parametrize(
    "method, layer", [("saliency", None), ("Grad-CAM", "blocks.6"), ("Grad-CAM++", "blocks.6")]
)
def test_class_maps_of_any_class(model, picture, method, layer):
    x, img = picture
    redraws(
        explorers.class_map_explorer(model, x, img, method, layer=layer), target=model.class_index("goldfish")
    )


def test_fgsm_epsilon_and_target(model, picture):
    x, _ = picture
    e = explorers.fgsm_explorer(model, x, true=285)
    redraws(e, eps=4 / 255)
    redraws(e, target=1)


def test_deepdream_layer_and_octaves(model, picture):
    x, _ = picture
    redraws(explorers.deepdream_explorer(model, x, ["blocks.2", "blocks.4"], steps=1, size=48), octaves=1)


def test_style_weights(model):
    content = center_crop(resize(data.photo("chelsea"), 32), 32)
    e = explorers.style_explorer(model, content, paintings.painting("swirls", size=32), size=32, steps=1)
    redraws(e, style_weight=100.0)


def test_style_mixing_and_a_mix_of_nothing(model):
    names = fast_style.style_names_of("multi")
    photo = center_crop(resize(data.photo("chelsea"), 48), 48)
    e = explorers.mixing_explorer(fast_style.load_fast_style("multi"), photo, names)
    redraws(e, **{names[1]: 0.5})
    e.redraw(**{names[0]: 0.0})  # only the second style is left
    good = bytes(e.image.value)
    e.redraw(**{names[1]: 0.0})  # nothing is left
    assert "⚠" in e.said.value and "at least one style" in e.said.value and bytes(e.image.value) == good


def test_an_unknown_control_is_named():
    import ipywidgets
    from matplotlib.figure import Figure

    e = explorers.Explorer(lambda k: Figure(figsize=(1, 1)), {"k": ipywidgets.IntSlider(value=1)})
    with pytest.raises(KeyError, match="controls: k"):
        e.redraw(j=2)
