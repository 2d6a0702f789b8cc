"""The optimisation loop and what is built on it: known answers, seeds, and the model left untouched."""

import pytest
import torch
from torch import nn

import vizkit
from vizkit import attacks, classvis, dreams, inputs
from vizkit import objectives as O
from vizkit import optvis as A
from vizkit.hooks import count_hooks


def flags(net):
    return [(p.requires_grad, p.grad is None, p.detach().clone()) for p in net.parameters()], net.training


def same_flags(a, b):
    (pa, ta), (pb, tb) = a, b
    return ta == tb and all(x[0] == y[0] and x[1] == y[1] and torch.equal(x[2], y[2]) for x, y in zip(pa, pb))


def test_normalized_steps_have_the_requested_size():
    for mode, size in (
        ("mean", lambda d: d.abs().mean()),
        ("l2", lambda d: d.norm()),
        ("sign", lambda d: d.abs().max()),
    ):
        p = torch.zeros(1, 3, 4, 4, requires_grad=True)
        p.grad = torch.randn(1, 3, 4, 4)
        A.NormalizedGradient([p], lr=0.3, mode=mode).step()
        assert size(p.detach()).item() == pytest.approx(0.3, rel=1e-5), mode
        assert torch.all(torch.sign(p.detach()) == -torch.sign(p.grad)), mode  # a descent step on the loss


def test_objectives_add_scale_and_read_the_recorded_layers(tiny):
    x = torch.rand(2, 3, 8, 8)
    obj = O.channel("conv2", 1) - 0.5 * O.neuron("conv1", 0, 2, 3) + 2 * O.class_score([0, 2])
    with vizkit.record(tiny, ["conv1", "conv2"]) as rec:
        logits = tiny(x)
        value = obj(O.Forward(tiny, rec, logits, x))
        expected = (
            rec["conv2"][:, 1].mean((1, 2)).sum()
            - 0.5 * rec["conv1"][:, 0, 2, 3].sum()
            + 2 * (logits[0, 0] + logits[1, 2])
        )
    assert torch.allclose(value, expected)
    assert obj.layers == ["conv2", "conv1"]


def test_layer_norm_gradient_is_the_activation(tiny):
    """DeepDream's trick: d(||a||^2 / 2)/da = a."""
    x = torch.rand(1, 3, 8, 8)
    with vizkit.record(tiny, "conv2", grads=True) as rec:
        O.layer_norm("conv2")(O.Forward(tiny, rec, tiny(x), x)).backward()
        assert torch.allclose(rec.grad("conv2"), rec["conv2"])


def test_guide_takes_the_best_matching_guide_vector():
    guide_acts = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).view(1, 2, 1, 2)  # guide vectors (1,0), (0,2)
    a = torch.tensor([[3.0, 1.0], [1.0, 1.0]]).view(1, 2, 1, 2)  # vectors (3,1), (1,1)
    rec = vizkit.hooks.Recording(["l"])
    rec.add("l", a)
    value = O.guide("l", guide_acts)(O.Forward(None, rec, torch.zeros(1, 1), a))
    assert value.item() == pytest.approx(max(3, 2) + max(1, 2))


def test_total_variation_and_blur_known_answers():
    x = torch.zeros(1, 3, 4, 4)
    x[..., 2:, :] = 1.0  # one horizontal edge of height 1, 4 pixels wide, 3 channels
    rec = vizkit.hooks.Recording([])
    tv = O.total_variation(power=2.0)(O.Forward(None, rec, torch.zeros(1, 1), x))
    assert tv.item() == pytest.approx(12.0)
    const = torch.full((1, 3, 9, 9), 0.7)
    assert torch.allclose(A.gaussian_blur(const, 1.0), const)
    impulse = torch.zeros(1, 3, 15, 15)
    impulse[..., 7, 7] = 1
    assert A.gaussian_blur(impulse, 1.0).sum().item() == pytest.approx(3.0, rel=1e-5)


def test_fgsm_on_a_linear_model_steps_along_the_weight_difference():
    """Two-class linear model: d CE(label 0)/dx = (1 - p0)(w1 - w0), so FGSM adds eps * sign(w1 - w0)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).eval()
    x = 0.3 + 0.4 * torch.rand(1, 3, 4, 4)
    eps = 0.01
    adv = attacks.fgsm(net, x, 0, eps)
    w = net[1].weight.detach()
    assert torch.allclose(adv - x, eps * torch.sign(w[1] - w[0]).view(1, 3, 4, 4), atol=1e-6)
    toward = attacks.fgsm(net, x, 1, eps, targeted=True)  # stepping towards class 1 is the same step here
    assert torch.allclose(toward, adv, atol=1e-6)


def test_iterative_fgsm_stays_in_the_eps_ball_and_in_pixel_range(model):
    x = model.preprocess(vizkit.data.photo("chelsea"), size=128)
    adv = attacks.fgsm(model, x, "goldfish", 2 / 255, targeted=True, steps=5)
    change = (inputs.to_pixels(model, adv) - inputs.to_pixels(model, x)).abs().max().item()
    assert change <= 2 / 255 + 1e-6
    lo, hi = inputs.pixel_range(model)
    assert torch.all(adv >= lo - 1e-6) and torch.all(adv <= hi + 1e-6)


def test_fgsm_success_rate_rises_with_eps(model):
    imgs, labels, _ = vizkit.data.composites(12, seed=7, size=160)
    x = model.preprocess_batch(imgs, size=160)
    labels = [int(l) for l in labels]

    def flipped(eps):
        with torch.no_grad():
            return (
                (model(attacks.fgsm(model, x, labels, eps)).argmax(1) != torch.tensor(labels))
                .float()
                .mean()
                .item()
            )

    rates = [flipped(e) for e in (0.0, 1 / 255, 8 / 255)]
    assert rates[0] < rates[1] <= rates[2] and rates[2] >= 0.5, rates


def test_fooling_image_is_the_target_with_a_small_perturbation(model):
    x = model.preprocess(vizkit.data.photo("chelsea"))
    before = flags(model.net)
    fooled = attacks.fooling_image(model, x, "goldfish")
    p = model(inputs.round_to_8bit(model, fooled)).softmax(1)[0]
    assert p.argmax().item() == model.class_index("goldfish")  # also after saving as 8 bits
    assert ((fooled - x).norm() / x.norm()).item() < 0.05  # bound: 5% of the image's L2 norm
    assert same_flags(before, flags(model.net)) and count_hooks(model) == 0


def test_fooling_a_batch_fools_each_image_towards_its_own_target(model):
    x = model.preprocess_batch([vizkit.data.photo("chelsea"), vizkit.data.photo("coffee")], size=96)
    both = attacks.fooling_image(model, x, ["goldfish", "daisy"])
    assert both.shape == x.shape
    assert torch.equal(both[1:], attacks.fooling_image(model, x[1:], "daisy"))
    assert model(both).argmax(1).tolist() == [model.class_index("goldfish"), model.class_index("daisy")]


def test_class_visualization_makes_the_target_top1_and_is_seeded(model):
    a = classvis.class_visualization(model, "pineapple", recipe="fourier", steps=25, size=96, progress=False)
    b = classvis.class_visualization(model, "pineapple", recipe="fourier", steps=25, size=96, progress=False)
    c = classvis.class_visualization(
        model, "pineapple", recipe="fourier", steps=25, size=96, seed=1, progress=False
    )
    with torch.no_grad():
        assert model(a).argmax(1).item() == model.class_index("pineapple")
    assert torch.equal(a, b) and not torch.equal(a, c)
    for recipe in ("simonyan", "yosinski"):
        x = classvis.class_visualization(model, "goldfish", recipe=recipe, steps=30, size=96, progress=False)
        with torch.no_grad():
            assert model(x).argmax(1).item() == model.class_index("goldfish"), recipe


def test_deepdream_raises_the_layer_norm(model):
    x = model.preprocess(vizkit.data.photo("chelsea"), size=128)

    def norm(img):
        return vizkit.layer_output(model, img, "blocks.3").norm().item()

    dream = dreams.deepdream(model, x, "blocks.3", octaves=2, steps=8, progress=False)
    assert dream.shape == x.shape
    assert norm(dream) > 1.3 * norm(x)


def test_ascent_restores_the_model_and_rng_on_error(model):
    before = flags(model.net)
    rng = torch.random.get_rng_state()

    def boom(step):
        if step.step == 1:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        A.ascent(
            model,
            O.channel("blocks.2", 3),
            torch.zeros(1, 3, 64, 64),
            steps=5,
            transforms=[A.jitter(4)],
            callback=boom,
            progress=False,
        )
    assert same_flags(before, flags(model.net)) and count_hooks(model) == 0
    assert torch.equal(rng, torch.random.get_rng_state())


def test_ascent_rejects_bad_arguments(model):
    with pytest.raises(ValueError, match="image="):
        A.ascent(model, O.class_score(1), None)
    with pytest.raises(ValueError, match="adam"):
        A.ascent(model, O.class_score(1), torch.zeros(1, 3, 32, 32), optimizer="rmsprop", progress=False)
    with pytest.raises(KeyError, match="no layer named"):
        A.ascent(model, O.channel("blocks.99", 0), torch.zeros(1, 3, 32, 32), progress=False)


def test_transform_robustness_separates_a_photo_from_noise(model):
    photo = model.preprocess(vizkit.data.photo("coffee"))
    noise = torch.randn(1, 3, 224, 224) * 0.3
    shares = vizkit.metrics.transform_robustness(model, torch.cat([photo, noise]), "espresso", n=16)
    assert shares.shape == (2,) and shares[0] >= 0.5 and shares[1] == 0.0
    alone = vizkit.metrics.transform_robustness(model, photo, "espresso", n=16)
    assert alone.shape == (1,) and alone[0] == shares[0]  # every image gets the same views


class _Through(nn.Module):
    """A network whose layer "layer" is the identity: an objective on it sees the input itself."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Identity()

    def forward(self, x):
        return self.layer(x).mean((2, 3))


def _diversity_of(acts: torch.Tensor) -> float:
    net = _Through()
    with vizkit.record(net, ["layer"]) as rec, torch.no_grad():
        return O.diversity("layer")(O.Forward(net, rec, net(acts), acts)).item()


def test_diversity_known_answers():
    """Identical (or scaled) batch members: similarity 1, diversity -1; disjoint channels: 0."""
    a = torch.rand(1, 5, 3, 3, generator=torch.Generator().manual_seed(0))
    assert _diversity_of(a.repeat(3, 1, 1, 1)) == pytest.approx(-1.0, abs=1e-6)
    assert _diversity_of(torch.cat([a, 7 * a])) == pytest.approx(-1.0, abs=1e-6)
    b = torch.zeros(2, 2, 3, 3)
    b[0, 0], b[1, 1] = torch.rand(3, 3), torch.rand(3, 3)  # image 0 uses channel 0 only, image 1 channel 1
    assert _diversity_of(b) == pytest.approx(0.0, abs=1e-6)
    # three images: one identical pair, two orthogonal pairs -> mean similarity 1/3
    assert _diversity_of(torch.cat([b, b[:1]])) == pytest.approx(-1 / 3, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        _diversity_of(a)


def test_diversity_ascent_separates_a_batch(tiny):
    """Maximising diversity makes two nearly identical images' Gram matrices less alike."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 3, 8, 8, generator=g).repeat(2, 1, 1, 1) + 0.01 * torch.randn(2, 3, 8, 8, generator=g)
    objective = O.diversity("conv2")

    def value(x):
        with vizkit.record(tiny, ["conv2"]) as rec, torch.no_grad():
            return objective(O.Forward(tiny, rec, tiny(x), x)).item()

    x = A.ascent(tiny, objective, x0, steps=30, lr=0.05, progress=False)
    assert value(x) > value(x0) + 0.05
    assert count_hooks(tiny) == 0


def test_objectives_compose_completely():
    """sum(objectives), -o, o / k and k * o give the values they say, keep the layers read, and refuse a
    non-number as a factor."""
    rec = vizkit.hooks.Recording(["l"])
    rec.add("l", torch.ones(1, 2, 3, 3))
    f = O.Forward(None, rec, torch.zeros(1, 1), torch.full((1, 3, 2, 2), 2.0))
    a, b = O.l2(), O.channel("l", 1)  # 48 and 1
    total = sum([a, b, b])
    assert float(total(f)) == pytest.approx(50.0) and total.layers == ["l", "l"]
    assert float((-a / 4)(f)) == pytest.approx(-12.0) and float((0.5 * a - b)(f)) == pytest.approx(23.0)
    assert repr(sum([a, b]) / 2) == "Objective(0.5 * (l2 + channel('l', 1)))"
    with pytest.raises(TypeError, match="by a number"):
        a * b
    with pytest.raises(TypeError):
        a + 1.0
