"""Inversion, texture and style: known answers (Gram, Efros-Leung) and losses that must fall."""

import numpy as np
import pytest
import torch

import vizkit
from vizkit import data, objectives, paintings, style
from vizkit.hooks import count_hooks


def test_gram_is_a_sum_of_outer_products():
    f = torch.randn(2, 4, 3, 5)
    direct = (
        sum(torch.einsum("nc,nd->ncd", f[:, :, i, j], f[:, :, i, j]) for i in range(3) for j in range(5)) / 15
    )
    assert torch.allclose(style.gram(f), direct, atol=1e-6)
    assert torch.allclose(style.gram(f), style.gram(f).transpose(1, 2))


def gram_distance(model, img, targets):
    feats = style.features_of(model, img, list(targets))
    return sum((style.gram(feats[n]) - g).pow(2).mean().item() for n, g in targets.items())


def content_distance(model, img, layer, target):
    return (
        (style.features_of(model, img, [layer])[layer] - target).pow(2).sum() / target.pow(2).sum()
    ).item()


def test_texture_synthesis_lowers_the_gram_loss_by_90_percent(model):
    texture = paintings.painting("mosaic", size=96)
    layers = ["bn1", "blocks.1.0.bn1", "blocks.2.0.bn1"]
    targets = style.target_grams(model, [texture], layers)
    noise = (
        torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(0)) * 0.1
    )  # the start of the loop
    before = gram_distance(model, noise, targets)
    out = style.texture_synthesis(model, texture, layers, size=96, steps=30, progress=False)
    assert out.shape == (96, 96, 3) and 0 <= out.min() and out.max() <= 1
    assert gram_distance(model, out, targets) < 0.1 * before


def test_statistics_known_answers():
    f = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])  # 1 x 2 channels x 1 x 2 positions
    assert torch.allclose(style.STATISTICS["mean"](f), torch.tensor([[2.0, 2.0]]))
    assert torch.allclose(
        style.mean_std(f), torch.tensor([[2.0, 2.0, 1.0, 0.0]]), atol=1e-2
    )  # sqrt(var + 1e-5)
    f.requires_grad_(True)
    style.mean_std(f).sum().backward()  # a constant channel: finite gradients
    assert torch.isfinite(f.grad).all()


def test_statistic_loss_is_gram_loss_for_gram(model):
    texture = paintings.painting("mosaic", size=64)
    targets = style.target_statistics(model, texture, ["bn1", "blocks.1.0.bn1"], "gram")
    noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.1
    a = style.evaluate(model, style.statistic_loss(targets, "gram"), noise)
    assert a > 0 and a == style.evaluate(model, style.gram_loss(targets), noise)
    with pytest.raises(ValueError, match="unknown statistic 'median'; choose one of"):
        style.target_statistics(model, texture, ["bn1"], "median")


@pytest.mark.parametrize("statistic", ["mean", "mean_std"])
def test_texture_synthesis_by_other_statistics_lowers_their_loss(model, statistic):
    texture = paintings.painting("mosaic", size=64)
    layers = ["bn1", "blocks.1.0.bn1", "blocks.2.0.bn1"]
    loss = style.statistic_loss(style.target_statistics(model, texture, layers, statistic), statistic)
    noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.1  # the loop's start
    out = style.texture_synthesis(
        model, texture, layers, size=64, steps=20, progress=False, statistic=statistic
    )
    assert style.evaluate(model, loss, out) < 0.2 * style.evaluate(model, loss, noise)


def test_style_transfer_ends_near_the_style_and_near_the_content(model):
    content = vizkit.images.center_crop(vizkit.images.resize(data.photo("chelsea"), 128), 128)
    painting = paintings.painting("swirls", size=128)
    layers, c_layer = list(model.style_layers), model.content_layer
    targets = style.target_grams(model, [painting], layers)
    c_target = style.features_of(model, content, [c_layer])[c_layer]
    out = style.style_transfer(
        model, content, painting, style.StyleLoss(style_weight=1.0), steps=40, progress=False
    )
    assert out.shape == (128, 128, 3)
    assert gram_distance(model, out, targets) < 0.05 * gram_distance(model, content, targets)
    assert content_distance(model, out, c_layer, c_target) < 0.5 * content_distance(
        model, painting, c_layer, c_target
    )
    assert count_hooks(model) == 0


def test_blending_two_styles_averages_their_grams(model):
    a, b = paintings.painting("mosaic", size=64), paintings.painting("circles", size=64)
    ga, gb = (style.target_grams(model, [s], ["bn1"])["bn1"] for s in (a, b))
    mixed = style.target_grams(model, [a, b], ["bn1"], mix=[0.25, 0.75])["bn1"]
    assert torch.allclose(mixed, 0.25 * ga + 0.75 * gb, atol=1e-6)
    with pytest.raises(ValueError, match="2 weights for 1"):
        style.target_grams(model, [a], ["bn1"], mix=[0.5, 0.5])


def test_inversion_from_a_shallow_layer_recovers_the_photo(model):
    img = vizkit.images.center_crop(vizkit.images.resize(data.photo("chelsea"), 64), 64)
    out = style.invert(model, img, "bn1", tv=0.5, steps=60, progress=False)
    noise_err = np.abs(img / 255 - 0.5).mean()
    assert np.abs(img / 255 - out).mean() < 0.25 * noise_err


def test_efros_leung_reproduces_a_period_and_copies_sample_pixels():
    sample = np.zeros((24, 24, 3), np.uint8)
    sample[:, 0::4], sample[:, 1::4], sample[:, 2::4] = 255, 160, 60  # stripes of period 4
    out = style.efros_leung(sample, (20, 30), window=7, seed=1)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert all(np.array_equal(out[:, j], out[:, j + 4]) for j in range(26))
    assert {tuple(c) for c in out[0]} == {tuple(c) for c in sample[0]}  # all four stripes, not one colour
    photo = vizkit.images.resize(data.photo("gravel"), 48)[:24, :24]
    grown = style.efros_leung(photo, 32, window=9, seed=0)
    colours = {tuple(c) for c in photo.reshape(-1, 3)}
    assert all(tuple(c) in colours for c in grown.reshape(-1, 3))
    assert np.array_equal(grown, style.efros_leung(photo, 32, window=9, seed=0))


def test_efros_leung_grows_outward_from_a_centred_seed_or_in_scanline_order():
    sample = np.zeros((24, 24, 3), np.uint8)
    sample[:, 0::4], sample[:, 1::4], sample[:, 2::4] = 255, 160, 60
    out = style.efros_leung(sample, (20, 30), window=7, seed=1, order="outward")
    assert all(np.array_equal(out[:, j], out[:, j + 4]) for j in range(26))  # the period, both orders
    # the 3x3 seed: random pixels make every 3x3 block of the sample unique, so the seed is found
    noise = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    blocks = {noise[i : i + 3, j : j + 3].tobytes() for i in range(14) for j in range(14)}
    outward = style.efros_leung(noise, (11, 13), window=5, seed=0, order="outward")
    scan = style.efros_leung(noise, (11, 13), window=5, seed=0, order="scanline")
    assert outward[4:7, 5:8].tobytes() in blocks and scan[:3, :3].tobytes() in blocks
    assert np.array_equal(outward[4:7, 5:8], scan[:3, :3])  # the same seed, placed apart
    with pytest.raises(ValueError, match="outward"):
        style.efros_leung(noise, 8, window=5, order="spiral")


def test_style_inputs_are_checked(model):
    with pytest.raises(ValueError, match="at least 11x11"):
        style.efros_leung(np.zeros((8, 8, 3), np.uint8), 16)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        style.features_of(model, np.full((32, 32, 3), 2.0), ["bn1"])
    with pytest.raises(ValueError, match="content"):
        style.style_transfer(
            model, np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8), init="zeros"
        )


def test_evaluate_gives_known_values(model):
    img = vizkit.images.center_crop(vizkit.images.resize(data.photo("chelsea"), 64), 64)
    target = style.features_of(model, img, ["bn1"])["bn1"]
    assert style.evaluate(model, style.feature_loss("bn1", target), img) == pytest.approx(0, abs=1e-6)
    acts = style.features_of(model, img, ["blocks.4"])["blocks.4"]
    assert style.evaluate(model, objectives.layer_norm("blocks.4"), img) == pytest.approx(
        acts.pow(2).sum().item() / 2, rel=1e-5
    )
    # white and black columns in turn: 8 x 7 horizontal jumps of 1 / std per channel, none vertical
    stripes = np.zeros((8, 8, 3), np.uint8)
    stripes[:, ::2] = 255
    x = style.image_tensor(model, stripes)
    expected = sum(8 * 7 / s**2 for s in model.std) / 64
    assert style.evaluate(model, style.mean_total_variation(x), stripes) == pytest.approx(expected, rel=1e-5)


def test_style_transfer_maximises_an_extra_objective_along(model):
    content = vizkit.images.center_crop(vizkit.images.resize(data.photo("chelsea"), 64), 64)
    painting = paintings.painting("swirls", size=64)
    dream = objectives.layer_norm("blocks.4")
    plain = style.style_transfer(model, content, painting, steps=10, progress=False)
    scale = 3.0 / style.evaluate(model, dream, plain)
    dreamt = style.style_transfer(
        model, content, painting, style.StyleLoss(extra=scale * dream), steps=10, progress=False
    )
    assert style.evaluate(model, dream, dreamt) > 1.3 * style.evaluate(model, dream, plain)
    zero = style.style_transfer(
        model, content, painting, style.StyleLoss(extra=0.0 * dream), steps=10, progress=False
    )
    assert np.allclose(zero, plain, atol=1e-5)  # a zero-weight extra changes nothing


@pytest.mark.parametrize(
    "arch, roles",
    [
        ("vgg11", (("features.1", "features.4", "features.9"), "features.12", "features.4")),
        ("resnet18", (("relu", "layer1", "layer2"), "layer3", "layer1")),
    ],
)
def test_style_methods_take_the_layers_of_any_network(arch, roles):
    """Random-weight torchvision networks: without layer names a clear error; with them (as arguments
    or as the module's attributes) texture synthesis lowers its Gram loss, style transfer runs, and
    the perceptual loss of an image against itself is only its smoothness term."""
    from torchvision.models import get_model

    from vizkit import fast_style, inputs

    torch.manual_seed(0)
    net = get_model(arch, weights=None).eval()
    photo = data.photo("chelsea")[::6, ::6]  # 50 x 75
    with pytest.raises(ValueError, match="style_layers=.*Candidates: activations"):
        style.texture_synthesis(net, photo, size=48, steps=1, progress=False)
    style_layers, content_layer, perceptual_layer = roles
    tex = style.texture_synthesis(
        net, photo, style_layers, size=48, steps=20, optimizer="adam", progress=False
    )
    targets = style.target_grams(net, [photo], list(style_layers))
    noise = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 0.1
    before, after = (style.evaluate(net, style.gram_loss(targets), img) for img in (noise, tex))
    assert tex.shape == (48, 48, 3) and after < 0.5 * before

    net.style_layers, net.content_layer, net.perceptual_layer = roles
    out = style.style_transfer(net, photo, photo[:, ::-1], steps=2, progress=False)
    assert out.shape == photo.shape and np.isfinite(out).all()
    content = inputs.rgb_tensor(photo)
    grams = [style.target_grams(net, [photo], list(style_layers))]
    total, c, s = fast_style.perceptual_loss(
        net, content, content, grams, torch.zeros(1, dtype=torch.long), 1.0, 0.0
    )
    assert (
        c == 0 and s == pytest.approx(0, abs=1e-12) and float(total.detach()) == pytest.approx(0, abs=1e-12)
    )
    assert count_hooks(net) == 0
