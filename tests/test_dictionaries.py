"""Sparse dictionaries, directions and interventions: known answers on synthetic data and hand-built nets."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vizkit
from vizkit import dictionaries, objectives
from vizkit.dictionaries import SparseAutoencoder, collect, dead_fraction, explained_variance, l0
from vizkit.hooks import count_hooks, record


def sparse_mixtures(n: int, d: int, m: int, active: int, seed: int = 0, non_negative: bool = False):
    """n vectors, each a sum of `active` of m known unit directions (d,) with weights in [0.5, 2]."""
    rng = np.random.default_rng(seed)
    V = rng.normal(size=(m, d))
    if non_negative:
        V = np.abs(V) * (rng.random((m, d)) < 0.3)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    Z = np.zeros((n, m))
    for i in range(n):
        Z[i, rng.choice(m, active, replace=False)] = rng.uniform(0.5, 2, active)
    return (Z @ V).astype(np.float32), V


def best_cosines(true: np.ndarray, learned: torch.Tensor) -> np.ndarray:
    """For each true direction, the largest cosine with any learned one."""
    return (torch.as_tensor(true).float() @ learned.T).max(1).values.numpy()


def identity_dictionary(d: int, k: int) -> SparseAutoencoder:
    """A hand-built SAE whose features are the channels: encode = TopK(ReLU(a)), decode = z."""
    sae = SparseAutoencoder(d, d, k)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(d))
        sae.W_dec.copy_(torch.eye(d))
    return sae.eval()


def test_sae_recovers_known_directions():
    """64 directions in 32 dimensions, 3 active per vector: each has a learned direction at cosine > 0.9."""
    acts, V = sparse_mixtures(4000, 32, 64, 3)
    sae = vizkit.train_sae(acts, 128, k=4, steps=1500, batch_size=256, lr=3e-3, progress=False)
    assert best_cosines(V, sae.directions).min() > 0.9
    assert torch.allclose(sae.directions.norm(dim=1), torch.ones(128), atol=1e-5)
    assert explained_variance(sae, acts) > 0.8 and l0(sae, acts) == 4
    assert sae.encode(acts).shape == (4000, 128) and isinstance(sae.encode(acts), np.ndarray)
    assert sae.decode(sae.encode(torch.as_tensor(acts))).shape == (4000, 32)


def test_nmf_recovers_non_negative_directions():
    acts, V = sparse_mixtures(3000, 40, 12, 2, non_negative=True)
    found = vizkit.nmf(acts, 12)
    assert best_cosines(V, found.directions).min() > 0.9
    assert (found.encode(acts) >= 0).all() and explained_variance(found, acts) > 0.99


def test_explained_variance_l0_and_dead_features_known_answers():
    """The identity dictionary with k = d reconstructs non-negative data exactly; with k = 1 it keeps the
    largest entry, so the explained variance is what the other entries leave."""
    acts = np.array([[3.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.5, 0.0], [1.0, 0.0, 4.0, 0.0]], np.float32)
    full = identity_dictionary(4, 4)
    assert explained_variance(full, acts) == pytest.approx(1.0)
    assert l0(full, acts) == pytest.approx(6 / 3)  # non-zero entries per row
    assert dead_fraction(full, acts) == pytest.approx(1 / 4)  # the last channel never fires
    one = identity_dictionary(4, 1)
    left = acts.copy()
    left[[0, 1, 2], [0, 1, 2]] = 0  # what the top-1 drops
    total = ((acts - acts.mean(0)) ** 2).sum()
    assert explained_variance(one, acts) == pytest.approx(1 - (left**2).sum() / total)
    assert l0(one, acts) == 1 and dead_fraction(one, acts) == pytest.approx(1 / 4)  # each row keeps another


def test_save_and_load_round_trip(tmp_path):
    acts, _ = sparse_mixtures(500, 16, 20, 2)
    sae = vizkit.train_sae(acts, 32, k=3, steps=50, progress=False)
    sae.save(tmp_path / "sae.pt")
    back = SparseAutoencoder.load(tmp_path / "sae.pt")
    assert back.k == 3 and back.directions.shape == (32, 16)
    assert np.allclose(back.decode(back.encode(acts)), sae.decode(sae.encode(acts)), atol=2e-2)


@pytest.mark.parametrize(
    "acts, k, n_features, message",
    [
        (np.zeros(10), 2, 8, "shape \\(n, d\\)"),
        (np.zeros((10, 4, 2)), 2, 8, "shape \\(n, d\\)"),
        (np.zeros((10, 4)), 0, 8, "1 <= k <= n_features"),
        (np.zeros((10, 4)), 9, 8, "1 <= k <= n_features"),
    ],
)
def test_bad_input_is_refused_before_training(acts, k, n_features, message):
    with pytest.raises(ValueError, match=message):
        vizkit.train_sae(acts, n_features, k=k, steps=10**9, progress=False)  # would run for days


def test_nmf_refuses_signed_activations():
    with pytest.raises(ValueError, match="non-negative.*bn1"):
        vizkit.nmf(np.array([[1.0, -1.0], [0.5, 0.2]]), 1)


def identity_net() -> nn.Sequential:
    """A 1x1 convolution that copies its three input channels, then a ReLU."""
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        net[0].bias.zero_()
    return net.eval()


def test_collect_samples_the_layer_at_the_recorded_positions():
    x = torch.rand(5, 3, 6, 7)
    got = collect(identity_net(), x, "1", per_image=10, batch_size=2)
    assert got.acts.shape == (50, 3) and (np.bincount(got.image) == 10).all()
    assert np.allclose(got.acts, x[got.image, :, got.row, got.col].numpy())
    for i in range(5):  # positions without replacement
        assert len({(r, c) for r, c in zip(got.row[got.image == i], got.col[got.image == i])}) == 10


def test_steered_adds_and_ablated_removes_a_direction_and_restore_the_model():
    net, x = identity_net(), torch.rand(2, 3, 4, 4)
    u = torch.tensor([1.0, 1.0, 0.0]) / 2**0.5
    with vizkit.steered(net, "0", 2 * u, amount=3.0), record(net, ["0"]) as rec:
        net(x)
        assert torch.allclose(rec["0"] - x, 3.0 * u.view(1, 3, 1, 1).expand_as(x))
    with vizkit.ablated(net, "0", direction=u), record(net, ["0"]) as rec:
        net(x)
        assert torch.allclose(torch.einsum("nchw,c->nhw", rec["0"], u), torch.zeros(2, 4, 4), atol=1e-6)
        assert torch.allclose(rec["0"][:, 2], x[:, 2])  # the orthogonal channel is untouched
    assert count_hooks(net) == 0 and torch.equal(net(x), torch.relu(x))


def test_ablating_a_dictionary_feature_removes_only_its_part():
    """With the identity dictionary (features = channels, k = 3), ablating feature 1 zeroes channel 1 where
    it is positive and leaves the other channels alone."""
    net, x = identity_net(), torch.randn(2, 3, 4, 4)
    with vizkit.ablated(net, "0", dictionary=identity_dictionary(3, 3), feature=1), record(net, ["0"]) as rec:
        net(x)
        assert torch.allclose(rec["0"][:, 1], x[:, 1].clamp(max=0)) and torch.equal(
            rec["0"][:, ::2], x[:, ::2]
        )
    with (
        vizkit.ablated(net, "0", dictionary=identity_dictionary(3, 3), feature=[0, 2]),
        record(net, ["0"]) as rec,
    ):
        net(x)
        assert torch.allclose(rec["0"][:, ::2], x[:, ::2].clamp(max=0)) and torch.equal(
            rec["0"][:, 1], x[:, 1]
        )
    with pytest.raises(ValueError, match="not among the dictionary's 3"):
        vizkit.ablated(net, "0", dictionary=identity_dictionary(3, 3), feature=3)


def test_edits_refuse_a_direction_of_the_wrong_length_and_leave_no_hook():
    net = identity_net()
    with pytest.raises(ValueError, match="length 4 for a layer with 3 channels"):
        with vizkit.steered(net, "0", torch.ones(4), amount=1.0):
            net(torch.rand(1, 3, 4, 4))
    assert count_hooks(net) == 0


def test_direction_objective_of_a_basis_vector_is_the_channel_objective(tiny):
    x = torch.rand(2, 3, 16, 16)
    with record(tiny, ["conv2"]) as rec:
        f = objectives.Forward(tiny, rec, tiny(x), x)
        v = torch.zeros(5)
        v[3] = 1
        assert objectives.direction("conv2", v)(f).item() == pytest.approx(
            objectives.channel("conv2", 3)(f).item()
        )
        assert objectives.direction("conv2", 2 * v)(f).item() == pytest.approx(
            2 * objectives.channel("conv2", 3)(f).item()
        )
        with pytest.raises(ValueError, match="length 3 for layer 'conv2', which has 5 channels"):
            objectives.direction("conv2", torch.ones(3))(f)


def test_top_patches_and_dissection_read_a_transform_of_the_maps():
    """A transform that reorders the channels: its feature 0 is channel 2."""
    net = nn.Sequential(nn.Conv2d(3, 3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        net[0].bias.zero_()
    x = torch.rand(12, 3, 8, 8)
    masks = (x[:, 2] > 0.7).numpy()
    swap = lambda a: a[:, [2, 0, 1]]  # noqa: E731
    plain = vizkit.top_patches(net, x, "0", channels=[2], k=4)
    read = vizkit.top_patches(net, x, "0", channels=[0], k=4, transform=swap)
    assert np.array_equal(plain.index, read.index) and np.allclose(plain.values, read.values)
    iou = vizkit.dissect(net, x, masks, "0", quantile=0.7, transform=swap)
    assert iou[0] == pytest.approx(vizkit.dissect(net, x, masks, "0", quantile=0.7)[2])


def test_shipped_dictionaries_load_and_name_the_layers():
    for layer, shape in dictionaries.SHIPPED.items():
        sae = dictionaries.shipped(layer)
        assert sae.directions.shape[0] == shape["n_features"] and sae.k == shape["k"]
        assert layer in dictionaries.training_record()
    with pytest.raises(ValueError, match="shipped: blocks.4.2.bn1"):
        dictionaries.shipped("blocks.0.0.bn1")


def test_the_training_tool_writes_dictionaries_that_load_and_a_record(tmp_path):
    tool = Path(__file__).parent.parent / "tools" / "train_sae.py"
    spec = importlib.util.spec_from_file_location("train_sae", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--steps", "3", "--images", "4", "--held-out", "2", "--out", str(tmp_path)]) == 0
    record = dictionaries.training_record(tmp_path)
    for layer, shape in dictionaries.SHIPPED.items():
        assert dictionaries.shipped(layer, tmp_path).directions.shape[0] == shape["n_features"]
        assert record[layer]["steps"] == 3 and record[layer]["training_vectors"]["vectors"] == 4 * 32
        assert 0 <= record[layer]["dead_fraction"] <= 1 and record[layer]["l0"] <= shape["k"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "got nothing"),
        ({"feature": 1}, "a feature without a dictionary"),
        ({"dictionary": "sae"}, "a dictionary without a feature"),
        ({"direction": torch.ones(3), "feature": 1}, "not both"),
    ],
)
def test_ablated_says_what_it_needs(kwargs, message):
    kwargs = {k: identity_dictionary(3, 3) if v == "sae" else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=message):
        vizkit.ablated(identity_net(), "0", **kwargs)
