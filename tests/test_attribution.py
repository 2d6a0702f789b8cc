"""Gradient methods: known answers on hand-built networks, identities, and restoration on error."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vizkit
from vizkit import attribution as A
from vizkit.hooks import RuleReLU, count_hooks, relu_rule


def linear_relu_net():
    """x -> flatten -> Linear -> ReLU -> Linear: its input gradient can be written by hand."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()


def test_saliency_equals_the_analytic_gradient():
    net = linear_relu_net()
    x = torch.randn(1, 3, 4, 4)
    w1, w2 = net[1].weight, net[3].weight
    h = net[1](x.flatten(1))
    grad = ((w2[2] * (h[0] > 0)) @ w1).view(3, 4, 4)  # d score_2 / d x, by hand
    assert np.allclose(A.saliency(net, x, target=2), grad.abs().amax(0).detach().numpy(), atol=1e-6)
    assert all(p.requires_grad and p.grad is None for p in net.parameters())


def test_saliency_batch_matches_single_images_and_targets_by_name(model):
    x = torch.cat([model.preprocess(vizkit.data.photo(n)) for n in ("chelsea", "coffee")])
    both = A.saliency(model, x, target=["tabby", "espresso"])
    assert both.shape == (2, 224, 224)
    assert np.allclose(both[1], A.saliency(model, x[1:], target=967), atol=1e-5)
    with pytest.raises(ValueError, match="2 targets for 1"):
        A.saliency(model, x[:1], target=[1, 2])


def test_smoothgrad_is_seeded_and_differs_from_plain(model):
    x = model.preprocess(vizkit.data.photo("coffee"))
    a, b = A.saliency(model, x, smooth=2, seed=1), A.saliency(model, x, smooth=2, seed=1)
    assert np.array_equal(a, b) and not np.allclose(a, A.saliency(model, x))


def gap_net():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)
    ).eval()


def test_cam_equals_grad_cam_on_a_gap_head():
    """For y = w . mean(A), dy/dA_k = w_k / (h w): Grad-CAM = ReLU(CAM) / (h w)."""
    net, x = gap_net(), torch.randn(2, 3, 6, 5)
    cam, gcam = vizkit.cam(net, x, target=3), vizkit.grad_cam(net, x, target=3, layer="1")
    assert cam.shape == gcam.shape == (2, 6, 5)
    assert np.allclose(np.maximum(cam, 0) / 30, gcam, atol=1e-6)
    assert vizkit.cam(net, x, 3, upsample=True).shape == (2, 6, 5)


def test_cam_equals_grad_cam_on_the_offline_model(model):
    x = model.preprocess(vizkit.data.photo("chelsea"))
    cam, gcam = vizkit.cam(model, x), vizkit.grad_cam(model, x, layer="bn2")
    assert np.allclose(np.maximum(cam, 0) / cam.size, gcam, atol=1e-5)
    assert vizkit.grad_cam(model, x, layer="blocks.3", upsample=True).shape == (1, 224, 224)


def test_cam_needs_a_gap_head():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with pytest.raises(ValueError, match="grad_cam"):
        vizkit.cam(net, torch.randn(1, 3, 6, 6))


def test_guided_backprop_blocks_negative_gradients():
    """f(x) = sum(w * relu(red pixels)) on a 2 x 2 image, with w = (1, -1, 2, -2), x = (1, 1, -1, 3):
    vanilla w * (x > 0), guided clamp(w, 0) * (x > 0), deconvnet clamp(w, 0)."""
    net = nn.Sequential(
        nn.Conv2d(3, 1, 1, bias=False), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4, 1, bias=False)
    )
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1))  # reads the red channel
        net[3].weight.copy_(torch.tensor([[1.0, -1.0, 2.0, -2.0]]))
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 1.0], [-1.0, 3.0]])
    assert np.allclose(A.input_gradient(net, x, 0)[0, 0].ravel().numpy(), [1, -1, 0, -2])
    assert np.allclose(A.backprop(net, x, 0)[0, 0].ravel(), [1, -1, 0, -2])
    assert np.allclose(A.guided_backprop(net, x, target=0)[0, 0].ravel(), [1, 0, 0, 0])
    assert np.allclose(A.deconvnet(net, x, target=0)[0, 0].ravel(), [1, 0, 2, 0])


def test_guided_backprop_for_an_intermediate_unit(model):
    x = model.preprocess(vizkit.data.photo("chelsea"))
    g = A.guided_backprop(model, x, target=5, layer="blocks.2", unit=(10, 10))[0]
    field = vizkit.receptive_field(model, "blocks.2")
    top, left, bottom, right = field.box(10, 10)
    outside = np.ones((224, 224), bool)
    outside[max(top, 0) : bottom, max(left, 0) : right] = False
    assert np.abs(g).sum() > 0 and np.abs(g[:, outside]).max() == 0  # only its receptive field
    assert A.deconvnet(model, x, layer="blocks.2").shape == (1, 3, 224, 224)


def test_guided_grad_cam_is_the_product(model):
    x = model.preprocess(vizkit.data.photo("coffee"))
    ggc = vizkit.guided_grad_cam(model, x, target=967, layer="blocks.5")
    expected = (
        A.guided_backprop(model, x, 967)
        * vizkit.grad_cam(model, x, 967, layer="blocks.5", upsample=True)[None]
    )
    assert np.allclose(ggc, expected, atol=1e-6)


def test_methods_restore_the_model_when_they_raise(model):
    x = model.preprocess(vizkit.data.photo("coffee"))
    acts = {name: m for name, m in model.net.named_modules()}
    with pytest.raises(KeyError, match="closest|Closest"):
        A.guided_backprop(model, x, target=0, layer="blocks.9")
    with pytest.raises(KeyError):
        vizkit.grad_cam(model, x, 0, layer="bloks.5")
    assert count_hooks(model) == 0 and not any(isinstance(m, RuleReLU) for m in model.net.modules())
    assert all(acts[n] is m for n, m in model.net.named_modules())
    assert all(p.requires_grad and p.grad is None for p in model.net.parameters())


def test_functional_relu_inside_a_rule_is_refused():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(3, 3, 1), nn.ReLU()

        def forward(self, x):
            return F.relu(self.act(self.conv(x))).mean((2, 3))

    with pytest.raises(ValueError, match="functional ReLU"):
        A.guided_backprop(Mixed(), torch.randn(1, 3, 4, 4), target=0)
    with relu_rule(Mixed(), "guided"):
        pass  # nothing runs, nothing is refused


def test_pointing_game_upsamples_the_map():
    mask = np.zeros((8, 8), bool)
    mask[4:, 4:] = True
    heat = np.array([[0.0, 0.1], [0.2, 1.0]])  # 2 x 2: its maximum is the bottom-right quarter
    assert vizkit.metrics.pointing_game(heat, mask)
    assert not vizkit.metrics.pointing_game(heat[::-1, ::-1], mask)


def test_deletion_curve_known_answer():
    """CornerNet's class 1 depends only on the bright top-left corner: deleting it first kills it."""

    class CornerNet(nn.Module):
        def forward(self, x):
            s = x[:, :, :8, :8].mean((1, 2, 3))
            return torch.stack([torch.zeros_like(s), 10 * s], 1)

    x = torch.ones(1, 3, 16, 16)
    good = np.zeros((16, 16))
    good[:8, :8] = 1.0  # points at the corner
    bad = 1.0 - good  # points everywhere else
    fractions = (0.0, 0.25, 0.5, 1.0)
    both = vizkit.metrics.deletion_curve(CornerNet(), torch.cat([x, x]), 1, np.stack([good, bad]), fractions)
    assert both.shape == (2, 4)
    a, b = both
    assert vizkit.metrics.deletion_curve(CornerNet(), x, 1, good, fractions) == pytest.approx(a[None])
    assert a[0] == b[0] and a[-1] == b[-1] and a[1] == pytest.approx(0.5, abs=1e-6)
    assert a.mean() < b.mean() and b[1] == b[0] and b[2] == b[0]


def test_a_callable_target_is_differentiated_scored_or_refused_where_a_class_is_needed():
    """A callable of the logits (as pytorch-grad-cam's targets) gives the same gradient as its class;
    perturbation methods score it, so probability_of(c) gives what class c gives; CAM (one class's
    weights) and transform_robustness (the top class) refuse it and say why."""
    net, x = gap_net(), torch.randn(2, 3, 6, 5)
    by_class = A.saliency(net, x, 3)
    by_callable = A.saliency(net, x, lambda logits: logits[:, 3])
    assert np.allclose(by_class, by_callable)
    by_class = A.occlusion(net, x, 3, size=2, stride=2)
    assert np.array_equal(by_class, A.occlusion(net, x, vizkit.probability_of(3), size=2, stride=2))
    logit = A.occlusion(net, x, lambda logits: logits[:, 3], size=2, stride=2)
    assert not np.allclose(logit, by_class) and logit.shape == by_class.shape
    with pytest.raises(TypeError, match="one class's classifier weights"):
        vizkit.cam(net, x, lambda logits: logits[:, 3])
    with pytest.raises(TypeError, match="needs a class"):
        vizkit.metrics.transform_robustness(net, x, lambda logits: logits[:, 3], n=2)
