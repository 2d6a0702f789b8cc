"""The toolbox (vizkit.toolbox): one worker owns the model, clicks select tiles, bad input gives one line."""

import threading

import numpy as np
import pytest
import torch

import vizkit
from vizkit import dictionaries, toolbox_features
from vizkit import toolbox_views as views
from vizkit.hooks import count_hooks
from vizkit.toolbox import Toolbox
from vizkit.worker import ModelWorker


def test_jobs_run_one_at_a_time_oldest_first():
    worker, ran, inside = ModelWorker(), [], []

    def job(k):
        def fn(_):
            inside.append(k)
            assert len(inside) == 1, "two jobs ran at once"
            ran.append(k)
            inside.pop()

        return fn

    for k in range(5):
        worker.submit(f"slot {k}", job(k))
    assert worker.wait(10)
    assert ran == [0, 1, 2, 3, 4]


def test_a_newer_job_supersedes_a_waiting_one_and_flags_a_running_one():
    worker, started, release, ran = ModelWorker(), threading.Event(), threading.Event(), []
    running = worker.submit("a", lambda job: started.set() or release.wait(10) and ran.append("a"))
    assert started.wait(10)
    old = worker.submit("b", lambda job: ran.append("old b"))
    new = worker.submit("b", lambda job: ran.append("new b"))
    worker.submit("a", lambda job: ran.append("a again"))
    assert old.superseded and old.done.is_set() and running.superseded
    release.set()
    assert worker.wait(10)
    assert ran == ["a", "new b", "a again"] and not new.superseded


def test_an_error_is_kept_on_its_job_and_the_worker_carries_on():
    worker = ModelWorker()
    bad = worker.submit("x", lambda job: 1 / 0)
    good = worker.submit("y", lambda job: 42)
    assert worker.wait(10)
    assert isinstance(bad.error, ZeroDivisionError) and good.result == 42


@pytest.fixture(scope="module")
def app():
    return Toolbox(
        model="efficientnet_lite0", picture="chelsea", layer="blocks.4", stream=6, steps=2, size=48
    )


def state(net):
    return [t.clone() for t in net.state_dict().values()], [type(m) for m in net.modules()]


def same_state(a, b):
    return all(torch.equal(x, y) for x, y in zip(a[0], b[0])) and a[1] == b[1]


def test_the_first_picture_is_drawn_before_the_app_is_returned(app):
    assert app.ui.status.value == ""
    for slot in ("mosaic", "map", "guided", "patches", "top5"):
        assert app.ui.images[slot].value[:4] == b"\x89PNG", slot
    assert app.channel == int(views.strength(app.maps).argmax())  # the strongest channel is selected
    bundle = app._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle


def test_clicking_a_tile_selects_its_channel(app):
    order = app.geometry.order
    r = 17  # second row, second column
    px = (r % views.COLS) * (views.TILE + views.GAP) + views.TILE // 2
    py = app.geometry.top + (r // views.COLS) * (views.TILE + views.GAP) + views.TILE // 2
    before = app.ui.images["map"].value
    app.click(px, py).done.wait(60)
    assert app.channel == order[r] and app.ui.channel.value == order[r]
    assert app.ui.images["map"].value != before
    assert app.click(views.TILE + 0.5, py) is None  # in the gap between two tiles: nothing happens


def test_the_mosaic_is_sorted_and_paged():
    maps = torch.rand(300, 4, 4)
    _, first = views.mosaic(maps, "x", page=0)
    _, last = views.mosaic(maps, "x", page=2)
    strongest = maps.flatten(1).max(1).values
    assert first.count == views.PAGE and last.count == 300 - 2 * views.PAGE
    assert list(strongest[first.order[:5]]) == sorted(strongest.tolist(), reverse=True)[:5]
    assert last.channel_at(views.TILE // 2, last.top + 1) == first.order[2 * views.PAGE]


def test_overlapping_requests_give_the_sequential_answers_and_restore_the_model(app):
    model, x = app.model, app.x
    before = state(model.net)
    jobs, lock = [], threading.Lock()

    def fire(c):  # guided backprop patches the ReLUs; Grad-CAM must not see them
        job = app.worker.submit(
            f"probe {c}",
            lambda _: (
                vizkit.guided_backprop(model, x, target=c, layer="blocks.3"),
                vizkit.grad_cam(model, x, c, layer="blocks.6"),
            ),
        )
        with lock:
            jobs.append((c, job))

    threads = [threading.Thread(target=fire, args=(c,)) for c in range(6)]
    for t in threads:
        t.start()
    app.choose_channel(3)
    app.choose_layer("blocks.2")
    for t in threads:
        t.join()
    assert app.worker.wait(120)
    for c, job in jobs:
        assert job.error is None
        assert np.allclose(job.result[0], vizkit.guided_backprop(model, x, target=c, layer="blocks.3"))
        assert np.allclose(job.result[1], vizkit.grad_cam(model, x, c, layer="blocks.6"))
    assert count_hooks(model) == 0 and same_state(before, state(model.net))
    assert app.layer == "blocks.2"


def test_a_newer_choice_supersedes_an_older_one_still_waiting(app):
    release = threading.Event()
    app.worker.submit("hold", lambda job: release.wait(10))
    old, new = app.choose_channel(1), app.choose_channel(2)
    release.set()
    assert app.worker.wait(60)
    assert old.superseded and not new.superseded and app.channel == 2


@pytest.mark.parametrize(
    "request_, expected",
    [
        (lambda app: app.choose_channel(10_000), "out of range"),
        (lambda app: app.choose_layer("classifier"), "no spatial map"),
        (lambda app: app.upload("notes.txt", b"this is not a picture"), "notes.txt"),
        (lambda app: app.choose_model("vgg16"), "The page stays with efficientnet_lite0"),
    ],
    ids=["channel out of range", "layer with no map", "not an image", "weights not at hand"],
)
def test_bad_input_gives_one_line_and_the_page_stays_usable(app, request_, expected, monkeypatch):
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    before, layer, model = state(app.model.net), app.layer, app.model
    request_(app).done.wait(60)
    assert expected in app.ui.status.value and "⚠" in app.ui.status.value
    assert app.layer == layer and app.model is model and app.ui.model.value == model.name
    assert count_hooks(app.model) == 0 and same_state(before, state(app.model.net))
    app.choose_channel(0).done.wait(60)  # still usable, and the line goes
    assert app.ui.status.value == "" and app.channel == 0


def test_an_upload_becomes_the_picture(app):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((40, 60, 3), (200, 30, 30), np.uint8)).save(out, format="PNG")
    app.upload("red.png", out.getvalue()).done.wait(60)
    assert app.picture == "upload" and "upload" in app.ui.picture.options
    assert app.img.shape[:2] == app.x.shape[2:] and app.img[..., 0].mean() > 150


def test_feature_visualization_runs_on_demand_and_is_kept(app):
    app.choose_layer("blocks.4").done.wait(60)
    app.visualize().done.wait(120)
    key = (app.model.name, app.layer, app.channel)
    assert key in app.featviz and app.ui.featviz.value[:4] == b"\x89PNG"
    kept = app.featviz[key]
    app.visualize().done.wait(60)
    assert app.featviz[key] is kept  # cached, not recomputed


def test_a_layers_sae_features_are_a_menu_entry_with_every_view(app):
    """Lite0's blocks.4.2.bn1 with its shipped dictionary: the maps are the features' maps, the top
    patches, guided backprop and feature visualization read the feature, and the model is restored."""
    entry = "blocks.4.2.bn1" + toolbox_features.SUFFIX
    assert entry in app.ui.layer.options and app.dictionaries == toolbox_features.layers(app.model)
    before = state(app.model.net)
    app.choose_layer(entry).done.wait(120)
    sae = dictionaries.shipped("blocks.4.2.bn1")
    expected = sae.maps(views.channel_maps(app.model, app.x, "blocks.4.2.bn1")[None])[0]
    assert app.ui.status.value == "" and app.layer == entry and torch.allclose(app.maps, expected)
    assert app.channel == int(views.strength(app.maps).argmax()) and len(app.maps) == 1536
    top, _ = app.patches[(app.model.name, entry)]
    assert top.values.shape == (1536, 6) and np.isclose(
        top.values[app.channel, 0], top.values[app.channel].max()
    )
    assert app.ui.images["guided"].value[:4] == b"\x89PNG"
    app.visualize().done.wait(120)
    assert (app.model.name, entry, app.channel) in app.featviz
    assert same_state(before, state(app.model.net)) and count_hooks(app.model) == 0
    app.choose_layer("blocks.4").done.wait(60)


def test_the_toolbox_stays_out_of_the_student_release():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "tools" / "assignments.py"
    spec = importlib.util.spec_from_file_location("assignments", path)
    assignments = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assignments)
    released = [p.name for p in assignments.select([])]
    assert "toolbox.ipynb" not in released and "01_filters.ipynb" in released


@pytest.fixture(scope="module")
def vit_app():
    return Toolbox(model="vit_distilled", picture="chelsea", layer="blocks.3", stream=4, steps=2, size=32)


def test_the_toolbox_takes_a_vit_its_blocks_as_layers(vit_app):
    """The menu lists the blocks; a block's maps are its patch tokens as a grid; guided backprop, which a
    GELU network refuses, becomes the plain gradient; Grad-CAM reads the last block's norm1."""
    app = vit_app
    assert app.ui.status.value == "" and app.ui.layer.value == "blocks.3"
    assert [n for n in app.spatial if n.startswith("blocks.")] == [f"blocks.{i}" for i in range(6)]
    assert "pos_drop" not in app.spatial + app.flat  # identities are not layers worth a menu entry
    grid = vizkit.layer_output(app.model, app.x, "blocks.3", grid=True)[0]
    assert app.maps.shape == (160, 8, 8) and torch.equal(app.maps, grid)
    assert views.cam_layer(app.model, app.spatial) == "blocks.5.norm1"
    for slot in ("mosaic", "map", "guided", "patches", "top5", "attention"):
        assert app.ui.images[slot].value[:4] == b"\x89PNG", slot
    top = app.patches[(app.model.name, "blocks.3")][0]
    assert top.field.size == 48 and top.patches[app.channel][0].shape == (48, 48, 3)  # the patch + context
    app.visualize().done.wait(60)  # the ascent's crops keep the input a multiple of the 16 px patch
    assert app.ui.status.value == "" and app.ui.featviz.value[:4] == b"\x89PNG"
    assert count_hooks(app.model) == 0


def test_the_head_menu_draws_each_heads_cls_attention(vit_app):
    app = vit_app
    assert app.ui.attention.layout.display is None and app.ui.head.options[0] == ("mean", -1)
    assert [v for _, v in app.ui.head.options] == [-1, 0, 1, 2, 3]  # four heads per block
    pngs = {}
    for head in (-1, 0, 1):
        app.ui.head.value = head  # as a person picks it
        app.worker.wait(60)
        assert app.head == head and app.ui.status.value == ""
        pngs[head] = app.ui.images["attention"].value
    assert len(set(pngs.values())) == 3  # three different pictures
    attn = app.model.net.blocks[3].attn
    assert attn.fused_attn == type(attn)(8, num_heads=4).fused_attn  # fused attention switched back on
    app.choose_head(9).done.wait(60)
    assert "head 9 is out of range" in app.ui.status.value and app.head == 1
    assert views.attention_block(app.model, "patch_embed") is None
    assert views.attention_block(app.model, "blocks.2.mlp") == "blocks.2"


def test_switching_between_a_cnn_and_a_vit_shows_and_hides_the_heads(vit_app):
    app = vit_app
    app.choose_model("efficientnet_lite0").done.wait(120)
    assert app.ui.status.value == "" and app.ui.attention.layout.display == "none"
    assert app.layer in app.spatial and app.maps.ndim == 3
    app.choose_model("vit_distilled").done.wait(120)
    assert app.ui.attention.layout.display is None and app.head == -1 and app.ui.head.value == -1
    app.choose_layer("patch_embed").done.wait(60)  # channels-last embedding, read as its grid
    assert app.ui.status.value == "" and app.maps.shape == (160, 8, 8)
