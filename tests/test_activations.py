"""Features, receptive fields, top patches and occlusion: known answers on hand-built networks."""

import numpy as np
import pytest
import torch
from torch import nn

import vizkit
from vizkit import data
from vizkit.activations import features, layer_output, top_patches
from vizkit.attribution import occlusion
from vizkit.hooks import count_hooks
from vizkit.receptive_fields import ReceptiveField, receptive_field


def paper_net():
    """conv3 s1 p1 -> ReLU -> conv3 s2 p1 -> maxpool2 -> conv3 dilation 2 p2: field 23, stride 4, offset -10.

    On paper, with r (size), j (stride), s (start of unit 0): r += (k - 1) * d * j; s -= p * j; j *= stride.
    (1, 1, 0) -> (3, 1, -1) -> (5, 2, -2) -> (7, 4, -2) -> (7 + 2 * 2 * 4, 4, -2 - 2 * 4) = (23, 4, -10).
    """
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, 1, 1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, 2, 1),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2),
    )


def test_receptive_field_known_answer():
    net = paper_net()
    before = [p.clone() for p in net.parameters()]
    assert receptive_field(net, "4") == ReceptiveField(23, 4, -10)
    assert tuple(receptive_field(net, "2")) == (5, 2, -2)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert isinstance(net[3], nn.MaxPool2d) and count_hooks(net) == 0


def test_receptive_field_tf_same_padding(model):
    """timm's stride-2 "same" conv on an even input pads 0 on the left and 1 on the right."""
    assert receptive_field(model, "conv_stem") == ReceptiveField(3, 2, 0)
    assert receptive_field(model, "blocks.1") == ReceptiveField(19, 4, -6)
    assert model.net.conv_stem.weight.abs().max() > 1 and count_hooks(model) == 0


def test_receptive_field_box_matches_gradient_support():
    """The box of unit (i, j) is where the real (non-linearised) network's gradient can be nonzero."""
    torch.manual_seed(0)
    net = paper_net()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()
                m.bias.fill_(1.0)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    with vizkit.record(net, "4") as rec:
        net(x)
    rec["4"][0, :, 5, 7].sum().backward()
    rows = torch.nonzero(x.grad[0].abs().sum((0, 2))).flatten()
    cols = torch.nonzero(x.grad[0].abs().sum((0, 1))).flatten()
    top, left, bottom, right = receptive_field(net, "4").box(5, 7)
    assert top <= rows.min() and rows.max() < bottom and left <= cols.min() and cols.max() < right


def test_features_penultimate_and_layer(model):
    images, _ = data.views(["chelsea", "coffee"], 5, seed=1)
    f = features(model, images, batch_size=2)
    assert f.shape == (5, 1280)
    x = torch.cat([model.preprocess(img, crop=False) for img in images])
    with torch.no_grad():
        logits = model(x)
        from_features = model.net.classifier(torch.from_numpy(f))
    assert torch.allclose(from_features, logits, atol=1e-4)
    g = features(model, iter(images), layer="blocks.2", pool="max", batch_size=3)
    assert g.shape == (5, 40)
    assert count_hooks(model) == 0


def test_features_needs_preprocessing_for_arrays(tiny):
    with pytest.raises(TypeError, match="tensor"):
        features(tiny, np.zeros((2, 8, 8, 3), np.uint8))
    assert features(tiny, torch.randn(4, 3, 8, 8)).shape == (4, 5)


def test_top_patches_streaming_matches_brute_force():
    """Channel c of a 1x1 conv is pixel channel c: the top images are the ones with the brightest pixel."""
    net = nn.Sequential(nn.Conv2d(3, 3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        net[0].bias.zero_()
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 200, (50, 16, 16, 3)).astype(np.uint8)
    peaks = rng.permutation(50)
    for rank, i in enumerate(peaks[:5]):
        imgs[i, 3 + rank, 4, 1] = 250 - rank  # the five brightest green pixels, in order
    model = vizkit.Model(net, "identity", [str(i) for i in range(3)], mean=(0, 0, 0), std=(1, 1, 1))
    top = top_patches(model, (img for img in imgs), "0", channels=[1], k=5, batch_size=7)
    assert list(top.index[0]) == list(peaks[:5])
    assert np.allclose(top.values[0], (250 - np.arange(5)) / 255)
    assert [tuple(u) for u in top.units[0]] == [(3 + r, 4) for r in range(5)]
    assert top.field == ReceptiveField(1, 1, 0)
    assert all(p.shape == (1, 1, 3) and p[0, 0, 1] == 250 - r for r, p in enumerate(top.patches[0]))


def test_top_patches_on_the_offline_model(model):
    images, _, _ = data.composites(12, seed=2)
    top = top_patches(model, images, "blocks.2", channels=[0, 5], k=3, batch_size=5)
    assert top.values.shape == (2, 3) and np.all(np.diff(top.values, axis=1) <= 0)
    assert all(p.shape == (67, 67, 3) and p.dtype == np.uint8 for row in top.patches for p in row)
    assert count_hooks(model) == 0


class CornerNet(nn.Module):
    """Logits depend only on the top-left 32 x 32 corner: class 1 wins when it is bright."""

    def forward(self, x):
        s = x[:, :, :32, :32].mean((1, 2, 3))
        return torch.stack([torch.zeros_like(s), 10 * s], 1)


def test_occlusion_of_a_corner_model():
    x = torch.ones(1, 3, 96, 96)
    grids = occlusion(CornerNet(), torch.cat([x, 0.5 * x]), target=1, size=32, stride=16, batch_size=4)
    assert grids.shape == (2, 5, 5)
    grid = grids[0]
    full = torch.tensor([0.0, 10.0]).softmax(0)[1].item()
    for r in range(5):
        for c in range(5):
            covered = max(0, 32 - 16 * r) * max(0, 32 - 16 * c) / 32**2  # share of the corner hidden
            expected = torch.tensor([0.0, 10 * (1 - covered)]).softmax(0)[1].item()
            assert grid[r, c] == pytest.approx(expected, abs=1e-6)
    assert grid[4, 4] == pytest.approx(full)
    assert grids[1, 4, 4] == pytest.approx(torch.tensor([0.0, 5.0]).softmax(0)[1].item())


def test_occlusion_baseline_tensor_and_errors(model):
    x = model.preprocess(data.photo("coffee"))
    same = occlusion(model, x, "espresso", size=64, stride=80, baseline=x)
    clean = model(x).softmax(-1)[0, 967].item()
    assert same.shape == (1, 3, 3) and np.allclose(same, clean, atol=1e-5)
    top = occlusion(model, torch.cat([x, x]), None, size=64, stride=80, baseline=torch.cat([x, x]))
    assert top.shape == (2, 3, 3) and np.allclose(top, clean, atol=1e-5)  # None: the top class
    with pytest.raises(ValueError, match="0 < size"):
        occlusion(model, x, 967, size=300)
    with pytest.raises(ValueError, match="size"):
        occlusion(model, x, 967, size=500)


def test_dissect_known_answer():
    """Channel 0 copies the red plane, channel 1 its negation: IoU 1 and 0 against the red squares."""
    net = nn.Sequential(nn.Conv2d(3, 2, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0], net[0].weight[1, 0] = 1.0, -1.0
        net[0].bias.zero_()
    masks = np.zeros((6, 16, 16), bool)
    for i in range(6):
        masks[i, i : i + 5, 2 * i : 2 * i + 4] = True
    x = torch.zeros(6, 3, 16, 16)
    x[:, 0] = torch.from_numpy(masks).float()
    iou = vizkit.dissect(net, x, masks, "0", quantile=1 - masks.mean() - 1e-3)
    assert iou[0] == pytest.approx(1.0) and iou[1] == pytest.approx(0.0)


def test_dissect_with_labels_penalises_firing_on_other_objects():
    """Channel 0 fires on every object, channel 1 only on label-7 objects."""
    masks = np.zeros((4, 8, 8), bool)
    masks[:, 2:6, 2:6] = True
    labels = np.array([7, 7, 3, 3])
    x = torch.zeros(4, 3, 8, 8)
    x[:, 0] = torch.from_numpy(masks).float()
    x[:2, 1] = torch.from_numpy(masks[:2]).float()
    net = nn.Sequential(nn.Conv2d(3, 2, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0], net[0].weight[1, 1] = 1.0, 1.0
        net[0].bias.zero_()
    iou = vizkit.dissect_by_label(net, x, masks, labels, "0", quantile=0.4)  # thresholds: 0 for both
    assert set(iou) == {3, 7}
    assert iou[7][1] == pytest.approx(1.0) and iou[7][0] == pytest.approx(0.5)
    assert iou[3][1] == pytest.approx(0.0) and iou[3][0] == pytest.approx(0.5)


def test_receptive_field_of_a_layer_inside_a_fused_module(model):
    """bn1.act sits inside BatchNormAct2d: same field as bn1 (and as conv_stem)."""
    assert receptive_field(model, "bn1.act") == receptive_field(model, "conv_stem") == ReceptiveField(3, 2, 0)
    assert receptive_field(paper_net(), "4", input_size=4) == ReceptiveField(23, 4, -10)  # grows its probe


def test_module_used_twice_is_refused_not_guessed():
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(RuntimeError, match="ran 2 times"):
        layer_output(net, x, "layer1.0.relu")
    with pytest.raises(RuntimeError, match="ran 2 times"):
        features(net, x, layer="layer1.0.relu")
    assert layer_output(net, x, "layer1.0").shape == (1, 64, 16, 16)


def test_features_use_eval_mode_and_restore_train_mode():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).train()
    x = torch.randn(3, 3, 8, 8)
    running = net[1].running_mean.clone()
    a, b = features(net, x), features(net, x)
    assert np.array_equal(a, b) and torch.equal(net[1].running_mean, running) and net.training


def test_top_patches_from_a_tensor_and_float_images(model):
    images, _, _ = data.composites(6, seed=4)
    x = torch.cat([model.preprocess(img, crop=False) for img in images])
    from_tensor = top_patches(model, x, "blocks.1", channels=[3], k=2)
    from_floats = top_patches(model, [img / 255.0 for img in images], "blocks.1", channels=[3], k=2)
    assert list(from_tensor.index[0]) == list(from_floats.index[0])
    for a, b in zip(from_tensor.patches[0], from_floats.patches[0]):
        assert a.dtype == np.uint8 and np.abs(a.astype(int) - b.astype(int)).max() <= 1 and a.max() > 0
    plain = top_patches(model.net, x, "blocks.1", channels=[3], k=2)
    assert plain.patches == [[]] and list(plain.index[0]) == list(from_tensor.index[0])


def test_fired_upsamples_and_thresholds_once_over_all_maps():
    from vizkit.activations import fired

    maps = torch.zeros(2, 2, 2)
    maps[0, 1, 1] = 1.0  # one active unit in the first map, none in the second
    f = fired(maps, 0.5, (8, 8))  # threshold: the median over both maps, 0
    assert f.shape == (2, 8, 8) and f.dtype == torch.bool
    assert f[0, -1, -1] and not f[0, 0, 0] and not f[1].any()


def test_receptive_field_crop_fills_outside_the_image():
    img = np.arange(36, dtype=np.uint8).reshape(6, 6)[..., None].repeat(3, -1)  # pixel (r, c) = 6 r + c
    field = vizkit.receptive_fields.ReceptiveField(size=3, stride=2, offset=-1)
    corner = field.crop(img, 0, 0, fill=255)  # rows and columns -1 .. 1: the first row and column are outside
    assert corner.shape == (3, 3, 3) and corner.dtype == np.uint8
    assert (corner[0] == 255).all() and (corner[:, 0] == 255).all()
    assert corner[1:, 1:, 0].tolist() == [[0, 1], [6, 7]]
    grad = np.ones((6, 6, 3), np.float32)  # a gradient moved channels-last, filled with 0 outside
    assert field.crop(grad, 3, 3, fill=0)[..., 0].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]  # rows 5 .. 7
    assert field.crop(img[..., 0], 1, 1).tolist() == [[7, 8, 9], [13, 14, 15], [19, 20, 21]]  # grey HxW


def test_nearest_neighbours_leave_each_point_out_nearest_first():
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert vizkit.nearest_neighbours(X, 2).tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    with pytest.raises(ValueError, match="0 < k < N"):
        vizkit.nearest_neighbours(X, 4)


def test_channel_iou_of_a_known_map():
    """Channel 1 is 1 on the left half and 0 elsewhere: at the median it fires exactly on the left half."""
    maps = torch.zeros(2, 2, 4, 4)
    maps[:, 1, :, :2] = 1.0
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :, :2] = True  # image 0: the object is the left half; image 1: no object
    assert vizkit.activations.channel_iou(maps, masks, 1, quantile=0.5) == pytest.approx(8 / 16)
    assert vizkit.activations.channel_iou(maps, masks, 0, quantile=0.5) == 0.0


def test_top_patches_keep_one_image_per_source():
    """Brightness 4, 3, 2, 1 through a summing 1x1 conv: the top 2 are images 0 and 1, unless they share
    a source; with one source for all, the second slot stays empty."""
    net = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False))
    nn.init.ones_(net[0].weight)
    x = torch.stack([torch.full((3, 8, 8), v) for v in (4.0, 3.0, 2.0, 1.0)])
    assert top_patches(net, x, "0", [0], k=2).index.tolist() == [[0, 1]]
    top = top_patches(net, x, "0", [0], k=2, batch_size=3, sources=["a", "a", "b", "c"])
    assert top.index.tolist() == [[0, 2]] and top.values[0, 1] == pytest.approx(2.0 * 3)
    alone = top_patches(net, x, "0", [0], k=2, sources=["a"] * 4)
    assert alone.index.tolist() == [[0, -1]] and alone.values[0, 1] == -np.inf


def test_top_patches_sources_can_depend_on_the_unit():
    """Each picture has a bright left half (its own source) and a dimmer right half (one source shared
    by all, as a composite's background): with sources keyed by the unit, the right halves count once."""
    net = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False))
    nn.init.ones_(net[0].weight)
    x = torch.zeros(3, 3, 8, 8)
    x[:, :, :, 4:] = torch.tensor([9.0, 8.0, 7.0])[:, None, None, None]  # right halves: the strongest units
    x[:, :, :, :4] = torch.tensor([3.0, 2.0, 1.0])[:, None, None, None]
    side = lambda i, unit: "background" if unit[1] >= 4 else f"object {i}"
    top = top_patches(net, x, "0", [0], k=3, sources=side)
    # after the shared right half nothing is left: every picture's strongest unit is on it
    assert top.index.tolist() == [[0, -1, -1]]
    assert top_patches(net, x, "0", [0], k=3, sources=lambda i, unit: i).index.tolist() == [[0, 1, 2]]
    both = lambda i, unit: frozenset({f"object {i}", "background"})  # each patch shows both: one only
    assert top_patches(net, x, "0", [0], k=3, sources=both).index.tolist() == [[0, -1, -1]]
    pairs = lambda i, unit: frozenset({f"object {i}", f"background {i // 2}"})  # 0 and 1 share a background
    assert top_patches(net, x, "0", [0], k=3, sources=pairs).index.tolist() == [[0, 2, -1]]
