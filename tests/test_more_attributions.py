"""Gradient x input, integrated gradients, Grad-CAM++, LayerCAM, Score-CAM and RISE: known answers on
hand-built networks, and the same values as captum and pytorch-grad-cam on a random-weight ResNet-18."""

import numpy as np
import pytest
import torch
from torch import nn

import vizkit
from vizkit.gradients import completeness_error
from vizkit.hooks import count_hooks


class Linear(nn.Module):
    """score_c = sum(w_c * x): no bias, so every contribution is w * x."""

    def __init__(self, h=8, w=8, classes=3, seed=0):
        super().__init__()
        self.w = nn.Parameter(torch.randn(classes, 3, h, w, generator=torch.Generator().manual_seed(seed)))

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x, self.w)


class Square(nn.Module):
    """score_0 = sum(x^2) / 2, score_1 = 0: the gradient along the path from 0 is alpha * x."""

    def forward(self, x):
        s = (x**2).flatten(1).sum(1) / 2
        return torch.stack([s, torch.zeros_like(s)], 1)


class GapHead(nn.Module):
    """A conv, then global average pooling and a linear layer: the CAM family's home."""

    def __init__(self, k=4, classes=3, positive=False, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, k, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(k, classes)
        if positive:
            with torch.no_grad():
                self.fc.weight.abs_()

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def x_batch(n=2, size=8, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_gradient_x_input_is_each_contribution_of_a_linear_score():
    net, x = Linear(), x_batch()
    out = vizkit.gradient_x_input(net, x, [0, 2])
    assert out.shape == (2, 3, 8, 8)
    assert np.allclose(out[0], (net.w[0] * x[0]).detach().numpy(), atol=1e-6)
    assert np.allclose(out.reshape(2, -1).sum(1), net(x).detach()[[0, 1], [0, 2]].numpy(), atol=1e-4)
    assert vizkit.gradient_x_input(net, x[:1], 1).shape == (1, 3, 8, 8)


@pytest.mark.parametrize("steps", [1, 7])
def test_integrated_gradients_are_exact_on_linear_and_midpoint_exact_on_quadratic_scores(steps):
    net, x = Linear(), x_batch()
    base = torch.full_like(x, 0.3)
    ig = vizkit.integrated_gradients(net, x, 1, baseline=base, steps=steps)
    assert np.allclose(ig, (net.w[1] * (x - base)).detach().numpy(), atol=1e-5)
    assert np.abs(completeness_error(net, x, ig, 1, baseline=base)).max() < 1e-3
    ig = vizkit.integrated_gradients(Square(), x, 0, steps=steps)
    assert np.allclose(ig, (x**2 / 2).numpy(), atol=1e-5)  # mean of alpha at the midpoints is 1/2
    assert np.abs(completeness_error(Square(), x, ig, 0)).max() < 1e-3
    assert (
        np.abs(completeness_error(Square(), x, 0.5 * ig, 0)).max() > 0.1
    )  # half the attributions: not complete


def test_integrated_gradients_chunks_change_nothing():
    net, x = GapHead(), x_batch(size=10)
    a = vizkit.integrated_gradients(net, x, 0, steps=9, batch_size=2)
    b = vizkit.integrated_gradients(net, x, 0, steps=9, batch_size=64)
    assert np.allclose(a, b, atol=1e-6)


def test_layercam_is_gradcam_where_every_gradient_is_one_positive_constant():
    net, x = GapHead(positive=True), x_batch(size=10)
    a = vizkit.layer_cam(net, x, 1, layer="features")
    b = vizkit.grad_cam(net, x, 1, layer="features")
    assert a.shape == (2, 10, 10) and np.allclose(a, b, atol=1e-6)


def test_score_cam_of_one_channel_is_that_channel():
    net, x = GapHead(k=1), x_batch(size=10)
    with torch.no_grad():
        a = net.features(x)[:, 0]
    for weight in ("logit", "probability"):
        out = vizkit.score_cam(net, x, 0, layer="features", weight=weight)
        scale = 1.0 if weight == "logit" else None  # softmax over one channel is 1
        if scale is not None:
            assert np.allclose(out, a.numpy(), atol=1e-6)
        else:
            probs = np.array([net(x[i : i + 1] * ((a[i] - a[i].min()) / (a[i].max() - a[i].min() + 1e-8)))
                             .softmax(-1)[0, 0].item() for i in range(2)])  # fmt: skip
            assert np.allclose(out, probs[:, None, None] * a.numpy(), atol=1e-5)


def test_grad_cam_plus_plus_needs_a_layer_with_a_grid():
    with pytest.raises(ValueError, match="no spatial grid"):
        vizkit.grad_cam_plus_plus(GapHead(), x_batch(), 0, layer="fc")
    with pytest.raises(TypeError, match="required keyword-only argument: 'layer'"):
        vizkit.layer_cam(GapHead(), x_batch(), 0)


class LeftHalf(nn.Module):
    """P(class 0) rises with the mean of the picture's left half only."""

    def forward(self, x):
        s = 8 * (x[..., : x.shape[-1] // 2].mean((1, 2, 3)) - 0.5)  # P = 1/2 when half of it is kept
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_rise_of_a_constant_model_is_flat_and_of_a_left_looking_model_leans_left():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([[1.0, 0.0]]).expand(len(x), 2)

    flat = vizkit.rise(Constant(), x_batch(1, 32), 0, n_masks=400, cells=4, batch_size=50)
    p = torch.tensor([1.0, 0.0]).softmax(0)[0].item()
    assert flat.shape == (1, 32, 32) and abs(flat.mean() / p - 1) < 0.05
    x = torch.ones(1, 3, 32, 32)
    (lean,) = vizkit.rise(LeftHalf(), x, 0, n_masks=600, cells=4, batch_size=64)
    assert lean[:, :12].mean() > lean[:, 20:].mean() + 0.05  # measured: 0.59 against 0.49


def test_rise_masks_are_seeded_and_streamed():
    from vizkit.rise import rise_masks

    a = torch.cat(list(rise_masks(10, (20, 24), cells=5, batch_size=4, seed=3)))
    b = torch.cat(list(rise_masks(10, (20, 24), cells=5, batch_size=10, seed=3)))
    assert a.shape == (10, 1, 20, 24) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a[:4], b[:4])  # the first batch is the same draw


# -- the same values as the peers, on a random-weight ResNet-18 -----------------------------------


@pytest.fixture(scope="module")
def resnet():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return resnet18(weights=None).eval()


@pytest.fixture(scope="module")
def photos():
    return x_batch(2, 64, seed=5)


def test_gradient_x_input_and_integrated_gradients_agree_with_captum(resnet, photos):
    captum = pytest.importorskip("captum.attr")
    ours = vizkit.gradient_x_input(resnet, photos, [3, 7])
    theirs = captum.InputXGradient(resnet).attribute(photos, target=[3, 7]).detach().numpy()
    assert np.allclose(ours, theirs, atol=1e-5)
    ours = vizkit.integrated_gradients(resnet, photos, [3, 7], steps=16)
    theirs = captum.IntegratedGradients(resnet).attribute(
        photos, target=[3, 7], n_steps=16, method="riemann_middle"
    )
    assert np.allclose(ours, theirs.detach().numpy(), rtol=1e-3, atol=1e-5)
    assert count_hooks(resnet) == 0


@pytest.mark.parametrize("method", ["grad_cam_plus_plus", "layer_cam", "score_cam"])
def test_cams_agree_with_pytorch_grad_cam(resnet, photos, method):
    cams = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    peer = {
        "grad_cam_plus_plus": cams.GradCAMPlusPlus,
        "layer_cam": cams.LayerCAM,
        "score_cam": cams.ScoreCAM,
    }
    with peer[method](model=resnet, target_layers=[resnet.layer4]) as cam:
        theirs = cam(input_tensor=photos, targets=[ClassifierOutputTarget(3), ClassifierOutputTarget(7)])
    ours = getattr(vizkit, method)(resnet, photos, [3, 7], layer=resnet.layer4, upsample=True)
    lo, hi = ours.min((1, 2), keepdims=True), ours.max((1, 2), keepdims=True)
    ours = (ours - lo) / (hi - lo + 1e-7)  # pytorch-grad-cam min-max scales each map
    assert np.abs(ours - theirs).max() < 2e-3, np.abs(ours - theirs).max()
    assert count_hooks(resnet) == 0
