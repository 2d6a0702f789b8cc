"""Hooks and model changes: known answers on hand-built nets, and exact restoration, also on error."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

import vizkit
from vizkit.hooks import RuleReLU, count_hooks, frozen, preserved, record, relu_rule, swap_modules


def test_record_sees_the_output_before_an_inplace_relu(tiny):
    x = torch.randn(2, 3, 8, 8)
    with record(tiny, ["conv1", "act1"]) as rec:
        tiny(x)
    expected = tiny.conv1(x)
    assert (expected < 0).any()  # so an in-place ReLU would have changed it
    assert torch.allclose(rec["conv1"], expected)
    assert torch.allclose(rec["act1"], expected.clamp(min=0))
    assert count_hooks(tiny) == 0


def test_recorded_gradient_matches_autograd(tiny):
    x = torch.randn(2, 3, 8, 8)
    with record(tiny, "conv2", grads=True) as rec:
        tiny(x)[:, 1].sum().backward()
    a = tiny.conv2(tiny.act1(tiny.conv1(x)))
    (grad,) = torch.autograd.grad(tiny.head(tiny.act2(a).mean((2, 3)))[:, 1].sum(), a)
    assert torch.allclose(rec.grad("conv2"), grad, atol=1e-6)


def test_record_inside_no_grad_gives_activations_and_a_clear_gradient_error(tiny):
    with torch.no_grad(), record(tiny, "conv2", grads=True) as rec:
        tiny(torch.randn(1, 3, 8, 8))
    assert rec["conv2"].shape == (1, 5, 8, 8)
    with pytest.raises(RuntimeError, match="no_grad"):
        rec.grad("conv2")


def test_record_with_frozen_parameters_and_input_gradient(tiny):
    for p in tiny.parameters():
        p.requires_grad_(False)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with record(tiny, "act1", grads=True) as rec:
        tiny(x).sum().backward()
    assert rec.grad("act1").shape == (1, 4, 8, 8) and x.grad is not None
    assert all(p.grad is None for p in tiny.parameters())


def test_module_used_twice_is_reported_not_guessed():
    net = resnet18(weights=None).eval()
    with torch.no_grad(), record(net, ["layer1.0.relu", "layer1.0"]) as rec:
        net(torch.randn(1, 3, 64, 64))
    assert len(rec.calls("layer1.0.relu")) == 2
    assert torch.equal(rec.calls("layer1.0.relu")[1], rec["layer1.0"])
    with pytest.raises(RuntimeError, match="ran 2 times"):
        rec["layer1.0.relu"]


def test_fused_activation_inside_batchnormact(model):
    x = model.preprocess(vizkit.data.photo("coffee"))
    with torch.no_grad(), record(model, ["conv_stem", "bn1", "bn1.act"]) as rec:
        model(x)
    bn = model.net.bn1
    pre = F.batch_norm(rec["conv_stem"], bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps)
    assert torch.allclose(rec["bn1.act"], pre.clamp(0, 6), atol=1e-4)
    assert torch.equal(rec["bn1"], rec["bn1.act"])
    assert rec["conv_stem"].min() < 0  # not clobbered by the in-place ReLU6 that follows


def test_record_output_is_unchanged_by_recording(model):
    x = model.preprocess(vizkit.data.photo("chelsea"))
    with torch.no_grad():
        plain = model(x)
        with record(model, model.layers()[:40]):
            hooked = model(x)
    assert torch.equal(plain, hooked)


def test_hooks_removed_after_an_error(tiny):
    with pytest.raises(ZeroDivisionError):
        with record(tiny, ["conv1", "act2"], grads=True):
            tiny(torch.randn(1, 3, 8, 8))
            raise ZeroDivisionError("inside the block")
    assert count_hooks(tiny) == 0


def test_unknown_layer_lists_closest_names_first(model):
    with pytest.raises(KeyError) as err:
        vizkit.get_layer(model, "blocks.1.0.conv_pw1")
    assert str(err.value).split("Closest first: ")[1].startswith("blocks.1.0.conv_pw")
    with pytest.raises(KeyError):
        with record(model, "classifer"):
            pass
    assert count_hooks(model) == 0


def _one_relu(upper):
    act = nn.ReLU(inplace=True) if upper == float("inf") else nn.ReLU6(inplace=True)
    return nn.Sequential(nn.Identity(), act)


@pytest.mark.parametrize("upper", [float("inf"), 6.0])
@pytest.mark.parametrize("rule", ["vanilla", "guided", "deconvnet"])
def test_backward_rules_known_answers(rule, upper):
    """f(x) = sum(w * act(x)); the three rules in closed form."""
    net = _one_relu(upper)
    x = torch.tensor([-2.0, -1.0, 1.0, 3.0, 7.0, 8.0], requires_grad=True)
    w = torch.tensor([1.0, -1.0, -1.0, 2.0, 1.0, -3.0])
    passed = ((x > 0) & (x < upper)).float()
    expected = {"vanilla": w * passed, "guided": w.clamp(min=0) * passed, "deconvnet": w.clamp(min=0)}[rule]
    with relu_rule(net, rule) as names:
        (w * net(x)).sum().backward()
    assert names == ["1"]
    assert torch.equal(x.grad, expected)
    assert isinstance(net[1], (nn.ReLU, nn.ReLU6)) and net[1].inplace


def test_guided_never_passes_a_negative_gradient(tiny):
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with relu_rule(tiny, "guided"), record(tiny, ["conv1", "conv2"], grads=True) as rec:
        tiny(x)[0, 2].backward()
    assert (rec.grad("conv1") >= 0).all() and (rec.grad("conv2") >= 0).all()


def test_relu_rule_restores_shared_modules_and_survives_errors():
    net = resnet18(weights=None)
    before = {name: m for name, m in net.named_modules()}
    with pytest.raises(RuntimeError, match="boom"):
        with relu_rule(net, "guided") as names:
            assert net.layer1[0].relu is net.layer1[0].get_submodule("relu")
            assert isinstance(net.layer1[0].relu, RuleReLU)
            assert "layer4.1.relu" in names
            raise RuntimeError("boom")
    after = {name: m for name, m in net.named_modules()}
    assert before.keys() == after.keys() and all(before[k] is after[k] for k in before)


def test_relu_rule_on_the_offline_model_patches_fused_activations(model):
    with relu_rule(model, "guided") as names:
        assert "bn1.act" in names and isinstance(model.net.bn1.act, RuleReLU)
    assert isinstance(model.net.bn1.act, nn.ReLU6)


def test_relu_rule_refuses_silu_and_functional_relu():
    with pytest.raises(ValueError, match="SiLU"):
        with relu_rule(nn.Sequential(nn.Conv2d(3, 3, 1), nn.SiLU(), nn.ReLU()), "guided"):
            pass

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return F.relu(self.conv(x))

    with pytest.raises(ValueError, match="F.relu"):
        with relu_rule(Functional(), "guided"):
            pass
    with pytest.raises(ValueError, match="unknown backward rule"):
        with relu_rule(Functional(), "gudied"):
            pass


def test_swap_modules_restores_on_error(tiny):
    original = tiny.conv1
    with pytest.raises(KeyError):
        with swap_modules(tiny, lambda name, m: nn.Identity() if name == "conv1" else None):
            assert isinstance(tiny.conv1, nn.Identity)
            raise KeyError
    assert tiny.conv1 is original


def test_preserved_restores_modes_flags_and_grads(tiny):
    tiny.train()
    tiny.conv1.weight.requires_grad_(False)
    tiny.head.weight.grad = torch.ones_like(tiny.head.weight)
    with pytest.raises(ValueError):
        with preserved(tiny):
            tiny.eval()
            tiny(torch.randn(1, 3, 8, 8)).sum().backward()  # accumulates into .grad in place
            tiny.conv1.weight.requires_grad_(True)
            raise ValueError
    assert all(m.training for m in tiny.modules())
    assert not tiny.conv1.weight.requires_grad and tiny.conv2.weight.requires_grad
    assert torch.equal(tiny.head.weight.grad, torch.ones_like(tiny.head.weight))
    assert tiny.conv2.weight.grad is None


def test_frozen_gives_input_gradients_under_no_grad(tiny):
    tiny.train()
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with torch.no_grad():
        with frozen(tiny) as net:
            assert not net.training
            net(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and p.requires_grad for p in tiny.parameters())
    assert tiny.training
