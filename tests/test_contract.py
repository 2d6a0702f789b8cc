"""The method contract, checked over every entry of vizkit.METHODS on EfficientNet-Lite0, a torchvision
ResNet-18 and a small timm Vision Transformer with random weights: small inputs, few steps, one
thread. A method defined for other networks (its entry's `networks`) must refuse with a clear error.

The batch checks run in float64: in float32 a batch and a single image differ in the last bits, and
where that flips a max-pool or ReLU near a tie the gradient takes another path (measured: up to 2%
of the largest SmoothGrad value on a random ResNet-18), a property of the network, not of the method."""

import copy
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

import vizkit
from vizkit.hooks import count_hooks
from vizkit.methods import METHODS, contract

# cheap settings for the many-pass methods (each applies where the method or its entry's options have it)
CHEAP = {"steps": 4, "n_masks": 8, "smooth": 2, "size": 16, "stride": 8}
# few channels: Score-CAM runs one pass per channel; a transformer block's tokens are read as its 4 x 4 grid
LAYERS = {"lite0": "blocks.2", "resnet18": "layer2", "vit": "blocks.0"}
NETWORKS = {"lite0": "cnn", "resnet18": "cnn", "vit": "transformer"}
IGNORE_TARGET = {"attention", "attention rollout"}  # attention does not depend on the class
SIZE = 32


def small_vit() -> torch.nn.Module:
    """Two blocks of width 32, two heads, 8 px patches: a 4 x 4 grid at SIZE px, a [CLS] token."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(
        img_size=SIZE,
        patch_size=8,
        embed_dim=32,
        depth=2,
        num_heads=2,
        num_classes=1000,
        dynamic_img_size=True,
    ).eval()


@pytest.fixture(scope="module", params=["lite0", "resnet18", "vit"])
def net(request, model):
    if request.param == "lite0":
        lite0 = copy.deepcopy(model)
        lite0.net.double()
        return "lite0", lite0
    if request.param == "vit":
        return "vit", small_vit().double()
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return "resnet18", resnet18(weights=None).eval().double()


@pytest.fixture(scope="module")
def vit_model():
    """The small ViT as a vizkit Model (class names, [-1, 1] inputs), for the target forms."""
    return vizkit.Model(
        small_vit(), "small vit", vizkit.models.imagenet_classes(), SIZE, SIZE, (0.5,) * 3, (0.5,) * 3
    )


@pytest.fixture(scope="module")
def batch():
    return torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def run(method, model, x, target, layer, **options):
    """The method with cheap settings and, where it needs one, the layer."""
    params = inspect.signature(method.fn).parameters
    settings = {k: v for k, v in CHEAP.items() if k in method.options or (k in params and k != "smooth")}
    if method.needs_layer:
        settings["layer"] = layer
    return method(model, x, target, **{**settings, **options})


def snapshot(model):
    net = getattr(model, "net", model)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [(m.training, getattr(m, "fused_attn", None)) for m in net.modules()]
    flags += [p.requires_grad for p in net.parameters()]
    return state, flags, count_hooks(net)


def assert_unchanged(model, before):
    state, flags, hooks = snapshot(model)
    assert flags == before[1] and hooks == before[2]
    assert all(torch.equal(state[k], v) for k, v in before[0].items())


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_keeps_the_contract(name, net, batch):
    """N = 1 gives (1, ...); a batch of 3 is its images one by one; one target broadcasts; a module
    works as a layer; to_map gives (N, h, w); the model comes back as it was, also on error."""
    torch.set_num_threads(1)
    kind, model = net
    method, layer = METHODS[name], LAYERS[kind]
    targets = [3, 7, 11]
    before = snapshot(model)
    if method.networks not in ("any", NETWORKS[kind]):
        with pytest.raises(
            ValueError, match="transformer|ReLU|global average pool|self-attention|patch tokens"
        ):
            run(method, model, batch, targets, layer)
        assert_unchanged(model, before)
        return
    together = run(method, model, batch, targets, layer)
    alone = np.concatenate([run(method, model, batch[i : i + 1], targets[i], layer) for i in range(3)])
    assert together.shape[0] == 3 and alone.shape == together.shape
    scale = np.abs(together).max()
    assert np.abs(together - alone).max() <= 1e-3 * scale, (
        f"a batch differs from its images by {np.abs(together - alone).max() / scale:.1e} of the largest value"
    )
    broadcast = run(method, model, batch, 7, layer)
    assert np.abs(broadcast[1] - together[1]).max() <= 1e-3 * scale
    if method.needs_layer:
        module = dict(getattr(model, "net", model).named_modules())[layer]
        assert np.allclose(run(method, model, batch[:1], 3, module), together[:1], atol=1e-3 * scale)
    maps = method.to_map(model, batch, targets, together)
    assert maps.ndim == 3 and len(maps) == 3
    assert_unchanged(model, before)
    with pytest.raises((RuntimeError, ValueError)):  # an error half-way leaves no hook and no flag changed
        if name in IGNORE_TARGET:  # fail inside the forward pass instead, after the method set itself up
            last = getattr(model, "net", model).blocks[-1]
            handle = last.register_forward_hook(lambda *args: _explode(None))
            try:
                run(method, model, batch, targets, layer)
            finally:
                handle.remove()
        run(method, model, batch, [3, 7] if name == "CAM" else _explode, layer)
    assert_unchanged(model, before)


def _explode(logits):
    raise RuntimeError("a target that fails half-way")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_target_form_works(name, model, vit_model, batch):
    """None, a class name, a list of classes and (except for CAM) a callable, on the offline model (on a
    small ViT for the methods that read attention)."""
    torch.set_num_threads(1)
    method, x = METHODS[name], batch[:2].float()
    layer = LAYERS["vit" if method.networks == "transformer" else "lite0"]
    model = vit_model if method.networks == "transformer" else model
    by_index = run(method, model, x, 963, layer)
    assert np.allclose(run(method, model, x, model.classes[963], layer), by_index)
    assert run(method, model, x, None, layer).shape == by_index.shape
    assert np.allclose(run(method, model, x, [963, 963], layer), by_index)
    if name == "CAM":
        with pytest.raises(TypeError, match="one class's classifier weights"):
            run(method, model, x, lambda logits: logits[:, 963], layer)
    else:
        score = vizkit.probability_of(963) if method.result == "probability" or name == "RISE" else None
        score = score or (lambda logits: logits[:, 963])
        if name == "Score-CAM":
            score = vizkit.probability_of(963)
            by_index = run(method, model, x, 963, layer, weight="probability")
        out = run(
            method,
            model,
            x,
            score,
            layer,
            **({"weight": "probability"} if name == "Score-CAM" else {}),
        )
        assert np.allclose(out, by_index, atol=1e-5 * np.abs(by_index).max())


def test_every_method_has_the_signature():
    """(model, x, target=None, *, ...): everything after the target keyword-only, a batch_size, and a
    layer without a default exactly where the registry says one is needed."""
    for method in METHODS.values():
        params = list(inspect.signature(method.fn).parameters.values())
        assert [p.name for p in params[:3]] == ["model", "x", "target"] and params[2].default is None
        assert all(p.kind is p.KEYWORD_ONLY for p in params[3:]), method.name
        assert "batch_size" in [p.name for p in params], method.name
        layer = inspect.signature(method.fn).parameters.get("layer")
        assert method.needs_layer == (layer is not None and layer.default is inspect.Parameter.empty)
        assert getattr(vizkit, method.fn.__name__) is method.fn
        assert method.kind in vizkit.heatmaps.KINDS, method.name  # plot can colour it


def test_the_books_api_page_states_the_contract_and_lists_every_method():
    import importlib.util

    tools = Path(__file__).parent.parent / "tools"
    spec = importlib.util.spec_from_file_location("vizkit_tools_book_pages", tools / "book_pages.py")
    pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pages)
    text = pages.api()
    assert contract() in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line.split("|")[2]]
    assert [row.split("|")[2].strip(" `") for row in rows[: len(METHODS)]] == [
        m.fn.__name__ for m in METHODS.values()
    ]
    modules = sorted(p.stem for p in (tools.parent / "vizkit").glob("*.py") if p.stem != "__init__")
    assert [m for m in modules if f".. automodule:: vizkit.{m}\n" not in text] == []
