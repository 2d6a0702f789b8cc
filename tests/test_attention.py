"""Vision Transformers (vizkit.attention, layers.token_grid): known answers on hand-built attention, a
peer's ViT Grad-CAM, the restored model and the one-line errors."""

import numpy as np
import pytest
import torch

import vizkit
from vizkit import attention
from vizkit.hooks import count_hooks
from vizkit.layers import token_grid


@pytest.fixture(scope="module")
def vit():
    """timm's ViT-Tiny/16 at 224 px with random weights: 12 blocks, 3 heads, a 14 x 14 grid."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def one_hot_attention(t: int, rows: dict[int, int]) -> torch.Tensor:
    """(1, 1, t, t) attention: each token attends to itself except rows {query: key}."""
    a = torch.eye(t)
    for q, k in rows.items():
        a[q] = 0
        a[q, k] = 1
    return a[None, None]


def test_uniform_attention_rolls_out_to_a_uniform_map():
    t = 10
    uniform = torch.full((2, 3, t, t), 1 / t)
    for fusion in attention.FUSIONS:
        out = attention.rollout([uniform] * 4, prefix=1, head_fusion=fusion)
        assert out.shape == (2, t - 1) and torch.allclose(out, out[:, :1].expand_as(out))


def test_one_hot_attention_chains_through_the_blocks():
    """Last block: [CLS] -> token 5; first block: token 5 -> token 9. With the identity added and rows
    renormalised, [CLS]'s row is 0.5 [CLS] + 0.25 token 5 + 0.25 token 9."""
    first, last = one_hot_attention(10, {5: 9}), one_hot_attention(10, {0: 5})
    expected = torch.zeros(9, dtype=torch.float64)
    expected[[4, 8]] = 0.25  # tokens 5 and 9 among the patch tokens 1-9
    assert torch.allclose(attention.rollout([first, last], prefix=1)[0], expected)
    # relevance with unit gradients: R = (I + A_last)(I + A_first), [CLS]'s row: tokens 5 and 9 get 1
    ones = [torch.ones_like(first), torch.ones_like(last)]
    assert torch.allclose(attention.relevance([first, last], ones, prefix=1)[0], 2 * expected / 0.5)


def test_relevance_without_gradient_is_zero_over_the_patches():
    a = torch.softmax(torch.randn(1, 2, 5, 5), -1)
    assert torch.equal(
        attention.relevance([a, a], [torch.zeros_like(a)] * 2, prefix=1),
        torch.zeros(1, 4, dtype=torch.float64),
    )


def test_discarding_keeps_the_cls_entry_and_removes_the_weakest():
    a = torch.softmax(torch.randn(1, 1, 6, 6, generator=torch.Generator().manual_seed(3)), -1)
    kept = attention.rollout([a], prefix=1, discard_ratio=0.5)
    assert kept.shape == (1, 5) and (kept >= 0).all()
    with pytest.raises(ValueError, match="head_fusion must be one of"):
        attention.rollout([a], prefix=1, head_fusion="median")


def test_attention_maps_are_the_cls_rows_and_the_model_comes_back(vit, x):
    maps = vizkit.attention_maps(vit, x, layer="blocks.3")
    assert maps.shape == (2, 3, 14, 14)
    assert np.all(maps.sum((2, 3)) < 1) and np.all(maps.sum((2, 3)) > 0.5)  # [CLS] itself takes the rest
    by_module = vizkit.attention_maps(vit, x[:1], layer=vit.blocks[3], heads=[2, 0])
    assert np.allclose(by_module[0], maps[0, [2, 0]], atol=1e-6)
    assert all(b.attn.fused_attn for b in vit.blocks) and count_hooks(vit) == 0
    assert vizkit.attention_rollout(vit, x).shape == (2, 14, 14)
    relevance = vizkit.attention_relevance(vit, x, [1, 2])
    assert relevance.shape == (2, 14, 14) and np.all(relevance >= 0)
    assert count_hooks(vit) == 0 and all(p.requires_grad for p in vit.parameters())


def test_grad_cam_reads_a_blocks_tokens_as_its_grid(vit, x):
    """The issue's example, and the zero-gradient trap: the last block's patch tokens reach the logits
    through nothing ([CLS] alone is classified), so Grad-CAM there is zero; before its attention it is not."""
    assert token_grid(vit, (224, 224)) == (1, 14, 14)
    assert vizkit.grad_cam(vit, x, 1, layer="blocks.10.norm1", upsample=True).shape == (2, 224, 224)
    assert np.all(vizkit.grad_cam(vit, x, 1, layer="blocks.11") == 0)
    assert np.any(vizkit.grad_cam(vit, x, 1, layer="blocks.11.norm1") > 0)


def test_vit_grad_cam_agrees_with_pytorch_grad_cam(vit, x):
    cams = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def reshape(tensor, h=14, w=14):  # pytorch-grad-cam's tutorial transform, written by hand
        return tensor[:, 1:, :].reshape(tensor.size(0), h, w, tensor.size(2)).permute(0, 3, 1, 2)

    layer = vit.blocks[-1].norm1
    with cams.GradCAM(model=vit, target_layers=[layer], reshape_transform=reshape) as cam:
        theirs = cam(input_tensor=x, targets=[ClassifierOutputTarget(1), ClassifierOutputTarget(2)])
    ours = vizkit.grad_cam(vit, x, [1, 2], layer=layer, upsample=True)
    lo, hi = ours.min((1, 2), keepdims=True), ours.max((1, 2), keepdims=True)
    ours = (ours - lo) / (hi - lo + 1e-7)  # pytorch-grad-cam min-max scales each map
    assert np.abs(ours - theirs).max() < 2e-3, np.abs(ours - theirs).max()
    assert count_hooks(vit) == 0


def test_bad_input_gets_one_line_that_says_what_was_expected(vit, x, model):
    with pytest.raises(ValueError, match="no self-attention.*VisionTransformer"):
        vizkit.attention_maps(model, torch.zeros(1, 3, 64, 64), layer="blocks.3")
    with pytest.raises(ValueError, match=r"heads \[3\] out of range: 'blocks.3' has heads 0-2"):
        vizkit.attention_maps(vit, x, layer="blocks.3", heads=[3])
    with pytest.raises(ValueError, match="no spatial grid .*token layers give"):
        vizkit.grad_cam(vit, x, 1, layer="head")
    with pytest.raises(ValueError, match="'guided' rule is defined for ReLU-like units only"):
        vizkit.guided_backprop(vit, x[:1])
    assert count_hooks(vit) == 0


@pytest.mark.parametrize("pattern", ["self", "uniform"])
def test_mean_attention_distance_known_answers(vit, x, pattern):
    """Attention forced to each patch itself gives 0 px; uniform attention over the patches gives the
    grid's mean distance between patch centres (16 px patches, 14 x 14)."""
    t = 1 + 14 * 14

    def force(module, args, out):
        a = torch.eye(t) if pattern == "self" else torch.full((t, t), 1 / t)
        return a.expand_as(out).clone()

    handles = [b.attn.attn_drop.register_forward_hook(force) for b in vit.blocks]
    try:
        got = vizkit.attention.mean_attention_distance(vit, x[:1])
    finally:
        for h in handles:
            h.remove()
    ys, xs = np.meshgrid(np.arange(14), np.arange(14), indexing="ij")
    c = np.stack([ys.ravel(), xs.ravel()], -1) * 16.0
    expected = 0.0 if pattern == "self" else np.linalg.norm(c[:, None] - c[None], axis=-1).mean()
    assert got.shape == (12, 3) and np.allclose(got, expected)


def test_channel_and_neuron_objectives_read_a_blocks_tokens_as_its_grid(vit, x):
    """Feature visualization of a ViT unit: channel c of a block is the mean of that feature over the
    patch tokens ([CLS] left out), not token c; a neuron is one patch's feature; ascent moves it."""
    from vizkit import objectives
    from vizkit.objectives import Forward

    with vizkit.record(vit, "blocks.3") as rec, torch.no_grad():
        logits = vit(x[:1])
    f = Forward(vit, rec, logits, x[:1])
    tokens = rec["blocks.3"]  # (1, 1 + 14*14, 192)
    assert torch.allclose(objectives.channel("blocks.3", 5)(f), tokens[0, 1:, 5].mean())
    assert torch.allclose(objectives.neuron("blocks.3", 5, 2, 3)(f), tokens[0, 1 + 2 * 14 + 3, 5])
    start = objectives.channel("blocks.3", 5)(f).item()
    img = vizkit.ascent(vit, objectives.channel("blocks.3", 5), x[:1].clone(), 3, lr=0.05, progress=False)
    with vizkit.record(vit, "blocks.3") as rec, torch.no_grad():
        vit(img)
    assert rec["blocks.3"][0, 1:, 5].mean().item() > start
    assert count_hooks(vit) == 0


def test_top_patches_read_a_blocks_tokens_and_crop_the_token_with_context():
    """Known answer: each channel's best value is the largest patch-token activation over the pictures;
    the crop is the token's 16 px patch with one patch around it; a block has no receptive field."""
    model = vizkit.load_model("vit_distilled", verbose=False)
    images = np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)
    top = vizkit.top_patches(model, images, "blocks.2", [0, 7], k=2)
    maps = vizkit.layer_output(model, model.preprocess_batch(list(images), crop=False), "blocks.2", grid=True)
    best = maps[:, [0, 7]].flatten(2).max(-1).values.T  # (2 channels, 5 pictures)
    np.testing.assert_allclose(top.values, best.topk(2, dim=1).values.numpy(), rtol=1e-5)
    assert tuple(top.field) == (48, 16, -16) and top.patches[1][0].shape == (48, 48, 3)
    i, (r, c) = top.index[1, 0], top.units[1, 0]
    np.testing.assert_array_equal(
        top.patches[1][0][16:32, 16:32], images[i, 16 * r : 16 * r + 16, 16 * c : 16 * c + 16]
    )
    assert tuple(vizkit.receptive_field(model, "patch_embed", 128)) == (16, 16, 0)
    with pytest.raises(ValueError, match="no local receptive field: attention mixes every patch"):
        vizkit.receptive_field(model, "blocks.2", 128)


def test_a_dynamic_size_vit_reads_its_grid_at_any_size_and_its_embedding_channels_last():
    model = vizkit.load_model("vit_distilled", verbose=False)
    assert token_grid(model, (256, 192)) == (1, 16, 12)
    x = torch.randn(1, 3, 192, 256, generator=torch.Generator().manual_seed(1))
    assert vizkit.grad_cam(model, x, 3, layer="blocks.2").shape == (1, 12, 16)
    embedded = vizkit.layer_output(model, x, "patch_embed", grid=True)  # timm gives (N, h, w, C) here
    torch.testing.assert_close(embedded, vizkit.layer_output(model, x, "patch_embed.proj"))


def test_centre_crop_and_crop_to_multiple():
    x = torch.arange(2 * 3 * 37 * 50.0).reshape(2, 3, 37, 50)
    assert torch.equal(vizkit.optvis.crop_to_multiple(16)(x), x[..., 2:34, 1:49])
    assert torch.equal(vizkit.optvis.centre_crop(32)(x), x[..., 2:34, 9:41])
    with pytest.raises(ValueError, match="smaller image"):
        vizkit.optvis.centre_crop(40)(x)


def test_the_toolbox_views_take_a_plain_timm_vit_of_one_input_size(vit, x):
    """ViT-Tiny at 224 only (no dynamic size): the views pick its size and crop the ascent's input to it."""
    from vizkit import toolbox_views as views

    spatial, _ = views.layer_choices(vit)
    assert spatial[:2] == ["blocks.0", "blocks.1"] and views.input_size(vit, 64) == 224
    assert views.head_count(vit) == 3 and views.cam_layer(vit, spatial) == "blocks.11.norm1"
    assert views.feature_visualization(vit, "blocks.2", 0, steps=1, size=224).shape == (224, 224, 3)
    assert views.attention_png(vit, x[:1], np.zeros((224, 224, 3)), "blocks.2", 1)[:4] == b"\x89PNG"
    assert count_hooks(vit) == 0
