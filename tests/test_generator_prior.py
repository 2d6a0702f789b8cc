"""The generator prior in miniature (Nguyen et al. 2016): shapes, the pooled features, the bounded code,
training lowers both losses, the shipped decoder inverts held-out pictures better than the mean code."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vizkit import objectives, optvis
from vizkit.generator_prior import (
    CodeDecoder,
    code_decoder_names,
    code_image,
    decode,
    decoder_pictures,
    load_code_decoder,
    pooled_features,
    train_code_decoder,
    training_record,
)
from vizkit.hooks import count_hooks, frozen


def toy() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)
    ).eval()


def test_decoder_shapes_and_range():
    for side in (16, 32, 64):
        out = CodeDecoder(dim=8, width=16, side=side, feed=48)(torch.randn(3, 8) * 5)
        assert out.shape == (3, 3, side, side) and 0 < out.min() and out.max() < 1
    dec = CodeDecoder(dim=8, width=16, side=16, feed=48)
    assert decode(dec, torch.rand(2, 8)).shape == (2, 3, 48, 48)


def test_pooled_features_are_the_classifier_input_and_carry_gradients():
    net, x = toy(), torch.rand(2, 3, 20, 20, requires_grad=True)
    f = pooled_features(net, x)
    expected = net[:4](x)  # a plain module: pixels in [0, 1] are its input space
    assert torch.allclose(f, expected, atol=1e-6) and torch.allclose(net[4](f), net(x), atol=1e-6)
    f.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and count_hooks(net) == 0


def test_code_image_starts_at_the_mean_code_and_stays_inside_the_bounds():
    net, dec = toy(), CodeDecoder(dim=8, width=16, side=16, feed=24).eval()
    dec.upper.fill_(2.0)
    dec.mean_code.copy_(torch.linspace(0.1, 1.9, 8))
    params, render = code_image(net, dec, n=2)
    with torch.no_grad():
        assert torch.allclose(render(), decode(dec, dec.mean_code.expand(2, -1)), atol=1e-3)
    out = optvis.ascent(net, objectives.class_score([1, 2]), (params, render), 20, lr=1.0, progress=False)
    code = (dec.upper + 1e-3) * torch.sigmoid(params[0].detach())
    assert out.shape == (2, 3, 24, 24) and code.min() >= 0 and code.max() <= 2.001
    assert not torch.allclose(code[0], code[1])  # the two targets moved the codes apart


def test_training_lowers_both_losses():
    net, gen = toy(), torch.Generator().manual_seed(0)
    colours, texture = torch.rand(16, 3, 1, 1, generator=gen), torch.rand(16, 3, 16, 16, generator=gen)
    pictures = 0.9 * colours + 0.1 * F.avg_pool2d(texture, 3, 1, 1)  # a colour each, some texture
    steps = []
    dec = train_code_decoder(
        net,
        pictures,
        steps=300,
        batch=8,
        lr=3e-3,
        side=16,
        progress=False,
        callback=lambda s, p, f: steps.append(s),
    )
    torch.manual_seed(0)
    fresh = CodeDecoder(8, side=16, feed=16).eval()  # the weights training started from
    codes = pooled_features(net, pictures).detach()

    def losses(d: CodeDecoder) -> tuple[float, float]:
        with torch.no_grad():
            pixel = F.mse_loss(d(codes), pictures)
            feature = 1 - F.cosine_similarity(pooled_features(net, decode(d, codes)), codes).mean()
        return pixel.item(), feature.item()

    (p0, f0), (p1, f1) = losses(fresh), losses(dec)
    assert steps == list(range(300)) and p1 < 0.6 * p0 and f1 < 0.2 * f0, (
        p0,
        f0,
        p1,
        f1,
    )  # measured 0.30-0.42, 0.02 (seeds 0-2)
    assert dec.feed == 16 and torch.allclose(dec.mean_code, codes.mean(0), rtol=1e-5, atol=1e-6)
    assert count_hooks(net) == 0


def test_the_shipped_decoder_inverts_held_out_pictures(model):
    assert (
        "efficientnet_lite0" in code_decoder_names() and training_record()["efficientnet_lite0"]["steps"] > 0
    )
    dec = load_code_decoder("efficientnet_lite0")
    held_out = decoder_pictures(40, size=dec.feed, seed=11)  # the shipped one was trained on seed 0
    with frozen(model), torch.no_grad():
        codes = pooled_features(model, held_out)
        again = pooled_features(model, decode(dec, codes))
    decoded = F.cosine_similarity(again, codes).mean()
    mean_code = F.cosine_similarity(dec.mean_code.expand_as(codes), codes).mean()
    assert decoded > mean_code + 0.1  # measured: about 0.77 against 0.48


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(KeyError, match="available: \\['efficientnet_lite0'"):
        load_code_decoder("resnet50")
