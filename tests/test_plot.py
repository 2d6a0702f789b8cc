"""Plot helpers: known normalisations, overlays, and figures that carry their labels."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vizkit import heatmaps, plot


def test_filter_images_symmetric_and_minmax():
    w = torch.zeros(2, 3, 2, 2)
    w[0, 0, 0, 0], w[0, 1, 1, 1] = 2.0, -1.0
    w[1] = 5.0
    sym = plot.filter_images(w)
    assert sym.shape == (2, 2, 2, 3)
    assert sym[0, 0, 0, 0] == 1.0 and sym[0, 1, 1, 1] == 0.25 and sym[0, 1, 0, 2] == 0.5
    assert np.all(sym[1] == 1.0)
    mm = plot.filter_images(w, scale="minmax")
    assert mm[0].min() == 0.0 and mm[0].max() == 1.0 and mm[0, 1, 1, 1] == 0.0
    with pytest.raises(ValueError, match="out, in, kh, kw"):
        plot.filter_images(torch.zeros(3, 3, 3))


def test_overlay_resizes_and_stays_in_range():
    img = np.zeros((64, 48, 3), np.uint8)
    heat = np.arange(12, dtype=float).reshape(4, 3)
    out = heatmaps.overlay(img, heat, alpha=0.5)
    assert out.shape == (64, 48, 3) and 0 <= out.min() and out.max() <= 0.5 + 1e-9
    assert heatmaps.overlay(img, heat, alpha=0.0).max() == 0


def test_heatmap_has_title_and_colour_bar_in_heatmap_units():
    heat = np.random.default_rng(0).random((8, 8)) * 3 + 1
    fig = plot.show_heatmap(np.ones((32, 32, 3)), heat, title="t", label="prob")
    ax, cbar = fig.axes
    assert ax.get_title() == "t" and cbar.get_ylabel() == "prob"
    assert np.allclose(
        cbar.get_ylim(), (0, heat.max())
    )  # positive evidence starts at zero, not at the minimum


def test_heat_range_per_kind():
    heat = np.array([[0.86, 0.90], [0.95, 0.97]])
    assert heatmaps.heat_range(heat, "positive") == (0.0, 0.97)  # a 0.86-0.97 map is not shown full range
    assert heatmaps.heat_range(heat, "probability") == (0.0, 1.0)
    lo, hi = heatmaps.heat_range(heat, "probability", center=0.93)  # occlusion: about the unoccluded p
    assert np.isclose(lo, 0.86) and np.isclose(hi, 1.0) and np.isclose((lo + hi) / 2, 0.93)
    signed = np.array([[-1.0, 0.5], [2.0, 0.0]])
    assert heatmaps.heat_range(signed, "signed") == (-2.0, 2.0)  # symmetric about zero
    assert heatmaps.heat_range(-np.abs(signed), "positive") == (
        0.0,
        1.0,
    )  # no evidence: a unit range, not (0, 0)
    with pytest.raises(ValueError, match="positive"):
        heatmaps.heat_range(heat, "jet")
    fig = plot.show_heatmap(np.zeros((2, 2, 3)), heat, kind="probability", center=0.93)
    assert np.allclose(fig.axes[1].get_ylim(), (0.86, 1.0))  # the bar stops at p = 1


def test_clip_at_a_percentile_is_named_on_the_colour_bar():
    heat = np.ones((40, 40))
    heat[0, 0] = 1000.0  # one extreme pixel in 1,600
    assert heatmaps.heat_range(heat, "positive") == (0.0, 1000.0)
    assert heatmaps.heat_range(heat, "positive", clip=99) == (0.0, 1.0)
    fig = plot.show_heatmap(np.zeros((40, 40, 3)), heat, label="|gradient|", clip=99)
    assert fig.axes[1].get_ylabel() == "|gradient|\n(clipped at the 99th percentile)"
    assert np.allclose(fig.axes[1].get_ylim(), (0, 1))


def test_shared_range_covers_every_compared_panel():
    a, b = np.full((4, 4), 0.2), np.full((4, 4), 3.0)
    assert heatmaps.shared_range([a, b]) == (0.0, 3.0)
    assert heatmaps.shared_range([a - 1, b - 1], "signed") == (-2.0, 2.0)
    fig, axes = plt.subplots(1, 2)
    lo, hi = heatmaps.shared_range([a, b])
    for ax, m in zip(axes, [a, b]):
        plot.show_heatmap(np.zeros((8, 8, 3)), m, ax=ax, vmin=lo, vmax=hi)
    assert all(np.allclose(cb.get_ylim(), (0, 3)) for cb in fig.axes[2:])


def test_overlay_opacity_follows_the_value():
    img = np.full((4, 4, 3), 0.5)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = heatmaps.overlay(img, heat, alpha=0.75, vmin=0, vmax=1)
    assert np.allclose(out[1:, 1:], 0.5)  # no evidence: the photo itself
    assert not np.allclose(out[0, 0], 0.5)
    signed = np.zeros((4, 4))
    signed[0, 0], signed[3, 3] = -1.0, 1.0
    out = heatmaps.overlay(img, signed, vmin=-1, vmax=1, cmap="RdBu_r", center=0.0)
    assert np.allclose(out[1, 1], 0.5) and out[0, 0, 2] > out[0, 0, 0] and out[3, 3, 0] > out[3, 3, 2]


def test_topk_uses_class_names():
    fig = plot.show_topk([("espresso", 0.9), ("cup", 0.05)], title="coffee")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["cup", "espresso"] and fig.axes[0].get_title() == "coffee"


def test_filter_grid_for_deep_filters_shows_input_channels():
    fig = plot.show_filters(torch.randn(4, 16, 3, 3), channels=5, title="deep")
    assert len([a for a in fig.axes if a.images]) == 20 and fig.axes[0].get_title() == "in 0"


def test_show_maps_one_colour_bar():
    maps = np.random.default_rng(0).random((6, 5, 5)) * np.arange(1, 7)[:, None, None]
    fig = plot.show_maps(maps, titles=list("abcdef"), ncols=3)
    assert len(fig.axes) == 7  # a 2 x 3 grid of maps and one colour bar
    assert {ax.images[0].get_clim() for ax in fig.axes[:6]} == {(0.0, maps.max())}  # one scale, from zero
    assert fig.axes[-1].get_ylabel() == "activation"
    signed = plot.show_maps(maps - 3, kind="signed")
    lo, hi = signed.axes[0].images[0].get_clim()
    assert lo == -hi == -np.abs(maps - 3).max() and signed.axes[0].images[0].get_cmap().name == "RdBu_r"


def test_snap_to_grid_keeps_an_already_gridded_layout():
    gy, gx = np.mgrid[0:3, 0:4]
    coords = np.stack([gx.ravel(), -gy.ravel()], 1).astype(float)  # row 0 on top
    cells = plot.snap_to_grid(coords, 3, 4)
    assert [tuple(c) for c in cells] == [(r, c) for r in range(3) for c in range(4)]
    with pytest.raises(ValueError, match="do not fit"):
        plot.snap_to_grid(np.zeros((13, 2)), 3, 4)


def test_embedding_grid_places_every_image_once():
    imgs = [np.full((10, 10, 3), i * 20, np.uint8) for i in range(1, 7)]
    canvas = plot.embedding_grid(imgs, np.random.default_rng(0).normal(size=(6, 2)), 2, 4, thumb=5)
    values = sorted({int(canvas[r * 5, c * 5, 0]) for r in range(2) for c in range(4)})
    assert canvas.shape == (10, 20, 3) and values == [20, 40, 60, 80, 100, 120, 255]


def test_show_top_patches_rows_are_channels():
    from types import SimpleNamespace

    top = SimpleNamespace(
        channels=[3, 7],
        values=np.array([[2.0, 1.0], [5.0, 4.0]]),
        patches=[[np.zeros((5, 5, 3), np.uint8)] * 2] * 2,
        field=SimpleNamespace(size=5),
    )
    fig = plot.show_top_patches(top, channels=[7])
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "ch 7" and fig.axes[0].get_title() == "5.0"


def test_gradient_image_maps_zero_to_grey():
    g = np.zeros((3, 4, 4))
    g[0, 0, 0], g[1, 1, 1] = 2.0, -2.0
    img = heatmaps.gradient_image(g, percentile=100)
    assert img.shape == (4, 4, 3) and img[0, 0, 0] == 1.0 and img[1, 1, 1] == 0.0 and img[2, 2, 2] == 0.5


def test_show_grid_lays_out_rows_and_columns():
    rows = {"method a": [np.zeros((8, 8, 3))] * 3, "method b": [np.full((8, 8), 2.0), np.ones((8, 8))]}
    fig = plot.show_grid(rows, ["one", "two", "three"], label="value")
    axes = fig.axes[:6]
    assert [ax.get_ylabel() for ax in axes[::3]] == ["method a", "method b"]
    assert [ax.get_title() for ax in axes[:3]] == ["one", "two", "three"]
    assert not axes[5].axison and fig.axes[-1].get_ylabel() == "value"  # the missing panel; the bar
    assert fig.axes[-1].get_ylim() == pytest.approx((0.0, 2.0))  # maps share one positive range
    plt.close(fig)
    fig = plot.show_grid(rows, scale="percentile", under=[np.zeros((8, 8, 3))] * 3)
    assert fig.axes[-1].get_ylim() == (0.0, 1.0) and "99.5th percentile" in fig.axes[-1].get_ylabel()
    plt.close(fig)


def test_show_images_and_show_grid_take_a_leading_batch_of_one():
    for fig in [
        plot.show_images([np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8))]),
        plot.show_grid({"pictures": [np.zeros((1, 8, 8, 3))], "maps": [np.ones((1, 8, 8))]}),
    ]:
        shapes = [im.get_array().shape for ax in fig.axes for im in ax.get_images()]
        assert shapes[:2] == [(8, 8, 3), (8, 8)]
        plt.close(fig)


def test_scale_policies_have_known_answers():
    ramp, flat = np.arange(201.0).reshape(1, 201), np.full((1, 201), 3.0)
    maps, lo, hi = heatmaps.scaled([ramp, 2 * ramp], "positive", "shared")
    assert (lo, hi) == (0.0, 400.0) and np.array_equal(maps[1], 2 * ramp)
    maps, lo, hi = heatmaps.scaled([ramp, -2 * ramp], "signed", "each")
    assert (lo, hi) == (-1.0, 1.0) and maps[0].max() == 1.0 and maps[1].min() == -1.0
    maps, lo, hi = heatmaps.scaled([ramp, flat], "positive", "percentile")
    assert maps[0][0, 0] == 0.0 and maps[0][0, 100] == pytest.approx(100 / 199) and maps[0][0, 200] == 1.0
    assert not maps[1].any()  # a constant map says nothing: all at its minimum
    signed = np.linspace(-1.0, 3.0, 201).reshape(1, 201)
    maps, lo, hi = heatmaps.scaled([signed], "drop", "percentile")
    assert (lo, hi) == (-1.0, 1.0) and maps[0][0, 50] == pytest.approx(0.0)  # zero stays zero
    assert maps[0].max() == 1.0 and maps[0][0, 0] == pytest.approx(-1 / np.percentile(np.abs(signed), 99.5))
    with pytest.raises(ValueError, match="scale must be one of"):
        heatmaps.scaled([ramp], "positive", "global")


def test_show_beside_shares_one_scale_and_bar_unless_asked_not_to():
    img = np.zeros((8, 8, 3))
    weak, strong = np.full((8, 8), 0.5), np.full((1, 8, 8), 2.0)  # a batch of one is accepted
    fig = plot.show_beside(img, [weak, strong], ["weak", "strong"], "photo", label="|gradient|")
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylim() == pytest.approx((0.0, 2.0))  # positive: from 0, one range
    assert [ax.get_title() for ax in fig.axes[:3]] == ["photo", "weak", "strong"]
    plt.close(fig)
    fig = plot.show_beside(img, [weak, strong], ["weak", "strong"], shared=False)
    assert sorted(ax.get_ylim()[1] for ax in fig.axes if ax.get_label() == "<colorbar>") == pytest.approx(
        [0.5, 2.0]
    )
    plt.close(fig)


def test_wide_grids_fit_the_notebook_column_and_wrap_their_titles():
    images = [np.zeros((8, 8, 3))] * 8
    long = "a title far too long for a one-inch panel at nine points"
    fig = plot.show_images(images, [long] * 8, ncols=8, size=3.0)  # asked for 24 inches
    assert fig.get_figwidth() == pytest.approx(plot.COLUMN_WIDTH)
    lines = fig.axes[0].get_title().split("\n")
    assert len(lines) > 1 and " ".join(lines) == long  # wrapped, nothing lost
    plt.close(fig)
    small = plot.show_images(images[:2], ["short"] * 2, size=2.0)  # already fits: untouched
    assert small.get_figwidth() == pytest.approx(4.0) and small.axes[0].get_title() == "short"
    plt.close(small)
    for fig in [
        plot.show_grid({"m": images, "maps": [np.ones((8, 8))] * 8}, [long] * 8, size=3.0, label="v"),
        plot.show_beside(images[0], [np.ones((8, 8))] * 5, ["t"] * 5, size=3.0),
        plot.show_maps(np.ones((24, 4, 4)), ncols=8, size=3.0),
    ]:
        assert fig.get_figwidth() <= plot.COLUMN_WIDTH + 1e-9
        plt.close(fig)


def test_show_maps_draws_the_picture_first_outside_the_colour_scale():
    pic = np.full((8, 8, 3), 0.5)
    fig = plot.show_maps(np.arange(2 * 16.0).reshape(2, 4, 4), ["a", "b"], picture=pic, picture_title="photo")
    assert [ax.get_title() for ax in fig.axes[:3]] == ["photo", "a", "b"]
    assert fig.axes[0].images[0].get_array().shape == (8, 8, 3)
    assert fig.axes[1].images[0].get_clim() == (0.0, 31.0) and fig.axes[-1].get_ylabel() == "activation"
    plt.close(fig)
