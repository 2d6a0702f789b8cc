"""vizkit.metrics: the pointing game's tolerance, baselines, insertion, AUC, Average Drop / Increase,
map similarity, each with an answer known by construction."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import vizkit
from vizkit import metrics


def test_the_pointing_game_tolerance_is_a_distance_in_pixels():
    mask = np.zeros((40, 40), bool)
    mask[20:, 20:] = True
    heat = np.zeros((40, 40))
    heat[10, 20] = 1.0  # 10 px above the object
    assert not metrics.pointing_game(heat, mask)
    assert not metrics.pointing_game(heat, mask, tolerance=9.9)
    assert metrics.pointing_game(heat, mask, tolerance=10)
    heat = np.zeros((40, 40))
    heat[12, 12] = 1.0  # sqrt(8^2 + 8^2) = 11.3 px from the corner of the object
    assert not metrics.pointing_game(heat, mask, tolerance=11)
    assert metrics.pointing_game(heat, mask, tolerance=11.4)
    heat = np.zeros((40, 40))
    heat[0, 39] = 1.0  # a corner of the picture: the window is clipped, not wrapped
    assert not metrics.pointing_game(heat, mask, tolerance=15)


def test_baselines():
    c = metrics.centre_map((9, 11))
    assert np.unravel_index(c.argmax(), c.shape) == (4, 5)
    assert np.array_equal(metrics.random_map((5, 5), seed=1), metrics.random_map((5, 5), seed=1))
    img = np.zeros((20, 20, 3), np.uint8)
    img[:, 10:] = 255
    edges = metrics.edge_map(img)
    assert edges[:, 9:11].min() > 0 and edges[:, :7].max() == 0 and edges[:, 13:].max() == 0


class LeftMean(nn.Module):
    """Two classes; class 0's logit is 10 x the mean of the left half of the picture."""

    def forward(self, x):
        s = 10 * x[..., : x.shape[-1] // 2].mean((1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], 1)


class LeftEnergy(nn.Module):
    """Class 0's logit is 10 x the mean square of the left half: fine texture there, which a blur removes."""

    def forward(self, x):
        s = 10 * (x[..., : x.shape[-1] // 2] ** 2).mean((1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_insertion_of_the_right_pixels_rises_first_and_deletion_falls_first():
    x = torch.zeros(1, 3, 16, 16)
    x[..., :8] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(8, 4)  # a checkerboard on the left
    left = np.zeros((16, 16))
    left[:, :8] = 1.0
    good_in, bad_in = metrics.insertion_curve(
        LeftEnergy(), torch.cat([x, x]), 0, np.stack([left, -left]), sigma=2.0
    )
    assert good_in[0] == pytest.approx(bad_in[0]) and good_in[0] < 0.9  # the blurred start
    assert metrics.auc(good_in) > metrics.auc(bad_in) + 0.2
    x = torch.ones(1, 3, 16, 16)
    (good_del,) = metrics.deletion_curve(LeftMean(), x, 0, left)
    (bad_del,) = metrics.deletion_curve(LeftMean(), x, 0, -left[None])
    assert metrics.auc(good_del) < metrics.auc(bad_del)
    assert np.isclose(good_del[-1], 0.5)  # everything deleted: logits 0 and 0


def test_auc_by_trapezoids():
    assert metrics.auc([1, 1, 1, 1, 1, 1]) == pytest.approx(1.0)
    assert metrics.auc([0, 1], [0, 1]) == pytest.approx(0.5)
    # one kind of result: an array over the leading axes, whatever the input
    assert metrics.auc([1, 1, 1, 1, 1, 1]).shape == () and metrics.auc(np.ones((3, 6))).shape == (3,)


def test_average_drop_and_increase_by_hand():
    x = torch.ones(2, 3, 16, 16)
    keep_left, keep_right = np.zeros((16, 16)), np.zeros((16, 16))
    keep_left[:, :8], keep_right[:, 8:] = 1.0, 1.0
    y = torch.tensor([10.0, 0.0]).softmax(0)[0].item()  # P(0) of the whole picture
    drop, inc = metrics.average_drop_increase(LeftMean(), x, 0, np.stack([keep_left, keep_left]))
    assert drop == pytest.approx(0.0, abs=1e-4) and inc == 0.0  # the map keeps what the class needs
    drop, inc = metrics.average_drop_increase(LeftMean(), x, [0, 0], np.stack([keep_right, keep_left]))
    assert drop == pytest.approx((y - 0.5) / y * 100 / 2, rel=1e-4) and inc == 0.0


def test_map_similarity_of_a_map_with_itself_and_with_its_negative():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    same = metrics.map_similarity(a, a)
    assert all(v == pytest.approx(1.0) for v in same.values())
    flipped = metrics.map_similarity(a, -a)
    assert flipped["spearman"] == pytest.approx(-1.0) and flipped["spearman_abs"] == pytest.approx(1.0)
    other = metrics.map_similarity(a, rng.random((32, 32)))
    assert abs(other["spearman"]) < 0.2 and other["ssim"] < 0.3
    flat = metrics.map_similarity(a, np.zeros_like(a))  # e.g. a Grad-CAM that is all zero after the ReLU
    assert flat["spearman"] == flat["spearman_abs"] == flat["hog"] == 0.0
    small = metrics.map_similarity(a[:4, :4], a[:4, :4])  # a 4 x 4 Grad-CAM at 112 px: SSIM's window shrinks
    assert small["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="different shapes"):
        metrics.map_similarity(a, a[:10])


def test_roc_auc_per_column_known_answers_and_scikit_learn():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([[1, 4, 5, 1], [2, 3, 5, 2], [3, 2, 5, 1], [4, 1, 5, 3]], float)
    # column 0 ranks both positives above both negatives, column 1 the reverse, column 2 is all ties;
    # column 3: positives (1, 3) vs negatives (1, 2): a tie (1/2), a loss, two wins -> 2.5 / 4
    assert np.allclose(metrics.roc_auc_per_column(scores, labels), [1.0, 0.0, 0.5, 0.625])
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, (60, 7)).astype(float), rng.integers(0, 2, 60)  # many ties
    assert np.allclose(metrics.roc_auc_per_column(x, y), [roc_auc_score(y, x[:, d]) for d in range(7)])
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc_per_column(x, np.ones(60))


def test_auc_of_one_curve_and_of_a_curve_per_image():
    fractions = (0.0, 0.5, 1.0)
    assert metrics.auc([1.0, 1.0, 0.0], fractions) == pytest.approx(0.75)
    assert metrics.auc([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], fractions) == pytest.approx([0.75, 0.0])


def test_share_on_is_the_mass_on_the_mask():
    heat = np.zeros((2, 4, 4))
    heat[0, :2] = 1.0  # all of map 0 on the top half
    heat[1] = -1.0  # map 1 spread evenly (|value| counts)
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2] = True
    assert metrics.share_on(heat, masks) == pytest.approx([1.0, 0.5])
    grads = np.stack([heat, heat, heat], 1)  # (N, 3, H, W): summed over colour
    assert metrics.share_on(grads, masks) == pytest.approx([1.0, 0.5])


def test_cascading_randomisation_resets_top_down_on_a_copy_whatever_the_caller_draws():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    net(torch.zeros(1, 3, 8, 8))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    expected = copy.deepcopy(net)
    torch.manual_seed(vizkit.seed(0))
    for layer in ["4", "2"]:
        expected.get_submodule(layer).reset_parameters()
    stages = []
    for layer, broken in metrics.cascading_randomisation(net, ["4", "2"]):
        stages.append((layer, broken is not net))
        torch.rand(100)  # the caller's draws do not change the next layer's weights
    assert stages == [("4", True), ("2", True)]
    assert all(
        torch.equal(a, b) for a, b in zip(broken.state_dict().values(), expected.state_dict().values())
    )
    assert not torch.equal(broken[4].weight, net[4].weight) and not torch.equal(
        broken[2].weight, net[2].weight
    )
    assert torch.equal(broken[0].weight, net[0].weight)  # not listed: kept
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the model itself untouched


def test_bootstrap_interval_known_answers():
    """A constant has a zero-width interval; a fair coin's mean over 400 draws has the normal interval
    0.5 +- 1.96 * sqrt(0.25 / 400) = +-0.049; rows share their resamples; a tighter level is narrower."""
    assert np.allclose(metrics.bootstrap_interval(np.full(7, 0.3)), [0.3, 0.3])
    coin = np.tile([0.0, 1.0], 200)
    lo, hi = metrics.bootstrap_interval(coin)
    assert lo == pytest.approx(0.451, abs=0.01) and hi == pytest.approx(0.549, abs=0.01)
    both = metrics.bootstrap_interval(np.stack([coin, coin, 1 - coin]))
    assert both.shape == (3, 2) and np.array_equal(both[0], both[1])
    np.testing.assert_allclose(both[2], 1 - both[0][::-1])  # the same draws, mirrored
    narrow = metrics.bootstrap_interval(coin, level=0.5)
    assert lo < narrow[0] < narrow[1] < hi


def test_roc_auc_table_is_roc_auc_per_column_for_every_label_column():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 7)).round(1)  # ties too
    labels = rng.random((60, 3)) < [0.2, 0.5, 0.8]
    table = metrics.roc_auc_table(scores, labels)
    assert table.shape == (7, 3)
    for v in range(3):
        assert np.allclose(table[:, v], metrics.roc_auc_per_column(scores, labels[:, v]))
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc_table(scores, np.c_[labels, np.zeros(60, bool)])
