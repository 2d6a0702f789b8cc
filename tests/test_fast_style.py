"""Fast style transfer: the network's shapes and determinism, a training loop that learns, and the
shipped weights: safe to load, small, and each one moves a held-out photo towards its style."""

import numpy as np
import pytest
import torch

import vizkit
from vizkit import data, fast_style, paintings, style


def test_transformer_net_keeps_odd_sizes_and_is_deterministic():
    net = fast_style.TransformerNet().eval()
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    a, b = fast_style.stylize(img, net), fast_style.stylize(img, net)
    assert a.shape == (37, 53, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, b)
    assert fast_style.stylize(img[..., 0], net).shape == (37, 53, 3)  # grayscale is repeated to RGB
    with pytest.raises(ValueError, match="channels-first"):
        fast_style.stylize(img.transpose(2, 0, 1), net)


def test_conditional_instance_norm_mixes_styles_linearly():
    cin = fast_style.ConditionalInstanceNorm(4, 3)
    with torch.no_grad():
        cin.scale.copy_(torch.randn(3, 4)), cin.shift.copy_(torch.randn(3, 4))
    x = torch.randn(2, 4, 5, 5)
    one = lambda k: cin(x, torch.nn.functional.one_hot(torch.tensor([k, k]), 3).float())
    half = cin(x, torch.tensor([[0.5, 0.5, 0.0]] * 2))
    assert torch.allclose(
        half, (one(0) + one(1)) / 2, atol=1e-6
    )  # normalised x is shared: affine in the weights
    net = fast_style.TransformerNet(norm="conditional", n_styles=3)
    with pytest.raises(ValueError, match="3 styles"):
        net(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="2 style weights"):
        net(torch.rand(1, 3, 16, 16), [0.5, 0.5])


def test_training_lowers_the_perceptual_loss_and_resumes(model, tmp_path):
    losses = []
    kwargs = dict(
        steps=12, batch=2, size=64, loss=style.StyleLoss(style_weight=0.5, style_size=64), progress=False
    )
    fast_style.train_fast_style(
        model,
        [paintings.painting("mosaic", size=64)],
        log=lambda step, c, s: losses.append(c + 0.5 * s),
        **kwargs,
    )
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    # stop after 6 steps, resume from the checkpoint: the same network as an uninterrupted run
    ckpt = tmp_path / "net.ckpt"
    whole = fast_style.train_fast_style(
        model, [paintings.painting("mosaic", size=64)], **dict(kwargs, steps=8)
    )
    fast_style.train_fast_style(
        model, [paintings.painting("mosaic", size=64)], checkpoint=ckpt, **dict(kwargs, steps=4)
    )
    resumed = fast_style.train_fast_style(
        model, [paintings.painting("mosaic", size=64)], checkpoint=ckpt, **dict(kwargs, steps=8)
    )
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k


def shipped():
    return fast_style.fast_style_names()


@pytest.mark.skipif(not fast_style.WEIGHTS_DIR.exists(), reason="no shipped weights")
def test_shipped_weights_are_small_and_load_safely():
    names = shipped()
    assert len(names) >= 4
    total = sum(p.stat().st_size for p in fast_style.WEIGHTS_DIR.glob("*.pt"))
    assert total <= 10 * 2**20, f"{total / 2**20:.1f} MB"
    for name in names:
        torch.load(fast_style.WEIGHTS_DIR / f"{name}.pt", weights_only=True)  # no pickled code
    with pytest.raises(KeyError, match="available"):
        fast_style.load_fast_style("no such style")


def gram_gap(model, img, targets):
    feats = style.features_of(model, img, list(targets))
    return sum((style.gram(feats[n]) - g).pow(2).mean().item() for n, g in targets.items())


@pytest.mark.skipif(not fast_style.WEIGHTS_DIR.exists(), reason="no shipped weights")
@pytest.mark.parametrize("name", ["swirls", "mosaic", "circles", "multi"])
def test_each_shipped_network_moves_a_held_out_photo_towards_its_style(model, name):
    photo = vizkit.images.center_crop(vizkit.images.resize(data.photo(fast_style.HELD_OUT[0]), 192), 192)
    net = fast_style.load_fast_style(name)
    for k, style_name in enumerate(fast_style.style_names_of(name)):
        targets = style.target_grams(model, [fast_style.style_image(style_name)], list(model.style_layers))
        out = fast_style.stylize(photo, net, k if net.n_styles > 1 else None)
        assert gram_gap(model, out, targets) < 0.5 * gram_gap(model, photo, targets), (
            style_name
        )  # halfway to the style
        # layout kept: the stylised photo's edges still line up with the photo's
        grey = lambda im: (im / (255 if im.dtype == np.uint8 else 1)).mean(-1)
        edges = lambda g: np.hypot(*np.gradient(vizkit.images.resize_map(g, (48, 48))))
        r = np.corrcoef(edges(grey(photo)).ravel(), edges(grey(out)).ravel())[0, 1]
        assert r > 0.3, (style_name, r)


def test_a_multi_style_network_without_a_style_names_both_arguments():
    net = fast_style.TransformerNet(norm="conditional", n_styles=3)
    with pytest.raises(ValueError, match=r"stylize\(img, net, mix=\.\.\.\)") as err:
        fast_style.stylize(np.zeros((16, 16, 3), np.uint8), net)
    assert "net(x, style=...)" in str(err.value)
