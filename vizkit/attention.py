"""A Vision Transformer's attention read as maps over its patch grid: the [CLS] token's attention per
head at one block, attention rollout (Abnar & Zuidema 2020) and gradient-weighted attention relevance
(Chefer, Gur & Wolf 2021, the rule for self-attention of their "generic attention-model explainability").

Each takes (model, x, target=None, *, ...) as the other methods do: a vizkit Model of a timm
VisionTransformer (load_model("vit_distilled")) or the plain module, Nx3xHxW, and returns NumPy maps
over the patch grid (N, h, w) (attention_maps: (N, heads, h, w)); the [CLS] and any other prefix tokens
(distillation token, registers) are dropped, as layers.token_grid reads them from the model.
timm computes attention in one fused call that exposes no attention matrix: `attention_recorded`
switches that off for the call and restores it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from .hooks import LayerRef, frozen
from .inputs import Targets, in_batches, summed_class_score
from .layers import ModelLike, as_net, on_model_device, resolve_name, token_grid

__all__ = [
    "FUSIONS", "attention_maps", "attention_modules", "attention_recorded", "attention_relevance",
    "attention_rollout", "mean_attention_distance", "relevance", "rollout",
]  # fmt: skip

FUSIONS = ("mean", "max", "min")  # how rollout fuses a block's heads


def attention_modules(model: ModelLike, layer: LayerRef | None = None) -> list[nn.Module]:
    """The timm attention modules of the model in forward order (those inside `layer`, a block's name
    or module, when given), or an error that says which networks have them."""
    net = as_net(model)
    scope = net.get_submodule(resolve_name(net, layer)) if layer is not None else net
    found = [m for m in scope.modules() if hasattr(m, "fused_attn") and hasattr(m, "attn_drop")]
    if not found:
        where = f"layer {layer!r} holds" if layer is not None else f"{type(net).__name__} has"
        raise ValueError(
            f"{where} no self-attention: attention maps need a timm VisionTransformer (e.g. "
            "load_model('vit_distilled')) and a transformer block such as 'blocks.3'"
        )
    return found


@contextmanager
def attention_recorded(
    model: ModelLike, layer: LayerRef | None = None, grads: bool = False
) -> Iterator[list]:
    """In the block, the attention modules (of `layer`, or all) compute attention explicitly and the
    yielded list holds, after a forward pass, each one's attention probabilities (N, heads, T, T), in
    forward order (with grads=True they keep .grad after a backward pass). Hooks and fused_attn are
    restored on exit, also on error."""
    modules = attention_modules(model, layer)
    fused = [m.fused_attn for m in modules]
    probs: list = [None] * len(modules)

    def keeper(i: int):
        def hook(mod, args, out):
            if grads and out.requires_grad:
                out.retain_grad()
            probs[i] = out

        return hook

    handles = [m.attn_drop.register_forward_hook(keeper(i)) for i, m in enumerate(modules)]
    try:
        for m in modules:
            m.fused_attn = False
        yield probs
    finally:
        for h in handles:
            h.remove()
        for m, f in zip(modules, fused):
            m.fused_attn = f


def _grid(model: ModelLike, x: torch.Tensor) -> tuple[int, int, int]:
    grid = token_grid(model, x.shape[2:])
    if grid is None:
        raise ValueError("attention maps need a Vision Transformer with patch tokens (e.g. vit_distilled)")
    return grid


def _over_patches(rows: torch.Tensor, grid: tuple[int, int, int]) -> np.ndarray:
    """[CLS] rows (..., T) -> (..., h, w) over the patch tokens."""
    prefix, h, w = grid
    return rows[..., prefix:].reshape(*rows.shape[:-1], h, w).float().cpu().numpy()


def attention_maps(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    layer: LayerRef,
    heads: Sequence[int] | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """The [CLS] token's attention over the patches in each head of one block (`layer`: "blocks.3", or
    its module): (N, heads, h, w), rows of the softmax (each head's map and the prefix tokens sum to 1).
    heads: a subset of the heads, in that order. target is ignored (attention does not depend on it)."""
    n_heads = attention_modules(model, layer)[0].num_heads
    bad = [h for h in heads or [] if not 0 <= h < n_heads]
    if bad:
        raise ValueError(f"heads {bad} out of range: {layer!r} has heads 0-{n_heads - 1}")

    def one_chunk(xb: torch.Tensor, tb: Targets) -> np.ndarray:
        with frozen(model) as net, attention_recorded(net, layer) as probs, torch.no_grad():
            net(xb)
        cls = probs[0][:, :, 0]  # (N, heads, T)
        return _over_patches(cls if heads is None else cls[:, list(heads)], _grid(model, xb))

    return in_batches(one_chunk, on_model_device(model, x), target, batch_size)


def rollout(
    attentions: Sequence[torch.Tensor], prefix: int, head_fusion: str = "mean", discard_ratio: float = 0.0
) -> torch.Tensor:
    """Attention rollout over blocks' attentions [(N, heads, T, T), first block first] -> (N, T - prefix):
    heads fused (mean, max or min), the lowest discard_ratio of each fused matrix's entries set to 0
    (never the [CLS] -> [CLS] one), identity added and rows renormalised, multiplied from the first
    block; the [CLS] row over the patch tokens."""
    if head_fusion not in FUSIONS:
        raise ValueError(f"head_fusion must be one of {FUSIONS}, got {head_fusion!r}")
    if not 0 <= discard_ratio < 1:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    result = None
    for a in attentions:
        fused = getattr(a.double(), head_fusion)(1)
        fused = fused.values if head_fusion != "mean" else fused  # max/min return (values, indices)
        if discard_ratio > 0:
            flat = fused.flatten(1).clone()
            k = int(flat.shape[1] * discard_ratio)
            low = flat[:, 1:].topk(k, -1, largest=False).indices + 1  # index 0 is [CLS] -> [CLS]
            fused = flat.scatter(1, low, 0.0).view_as(fused)
        eye = torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
        step = fused + eye
        step = step / step.sum(-1, keepdim=True)
        result = step if result is None else step @ result
    return result[:, 0, prefix:]


def attention_rollout(
    model: ModelLike,
    x: torch.Tensor,
    target: Targets = None,
    *,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    batch_size: int = 32,
) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020; see rollout) of every block -> (N, h, w). target is
    ignored: rollout follows attention only, whatever the class."""

    def one_chunk(xb: torch.Tensor, tb: Targets) -> np.ndarray:
        with frozen(model) as net, attention_recorded(net) as probs, torch.no_grad():
            net(xb)
        prefix, h, w = _grid(model, xb)
        maps = rollout(probs, prefix, head_fusion, discard_ratio)
        return maps.reshape(len(xb), h, w).float().cpu().numpy()

    return in_batches(one_chunk, on_model_device(model, x), target, batch_size)


def relevance(
    attentions: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor], prefix: int
) -> torch.Tensor:
    """Chefer et al.'s relevance over blocks [(N, heads, T, T) attention and its gradient, first block
    first] -> (N, T - prefix): R = I, then per block R += mean_heads((grad * A)^+) @ R; the [CLS] row
    over the patch tokens."""
    n, _, t, _ = attentions[0].shape
    r = torch.eye(t, dtype=torch.float64, device=attentions[0].device).expand(n, t, t)
    for a, g in zip(attentions, gradients):
        weighted = (g.double() * a.double()).clamp(min=0).mean(1)
        r = r + weighted @ r
    return r[:, 0, prefix:]


def attention_relevance(
    model: ModelLike, x: torch.Tensor, target: Targets = None, *, batch_size: int = 32
) -> np.ndarray:
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf 2021; see relevance) for each image's
    target (default: its top class; a class, a name, a list, or a callable score) -> (N, h, w).
    One forward and one backward pass per batch."""

    def one_chunk(xb: torch.Tensor, tb: Targets) -> np.ndarray:
        with frozen(model) as net, attention_recorded(net, grads=True) as probs:
            summed_class_score(model, net(xb.detach().requires_grad_(True)), tb).backward()
            prefix, h, w = _grid(model, xb)
            maps = relevance([p.detach() for p in probs], [p.grad for p in probs], prefix)
        return maps.reshape(len(xb), h, w).float().cpu().numpy()

    return in_batches(one_chunk, on_model_device(model, x), target, batch_size)


@torch.no_grad()
def mean_attention_distance(model: ModelLike, x: torch.Tensor, *, batch_size: int = 32) -> np.ndarray:
    """How far each head looks (Dosovitskiy et al. 2021, figure 7): for every patch token, the distance in
    pixels between its patch and the patches it attends to, weighted by the attention and averaged over
    the patch tokens and the images -> (blocks, heads). Attention to the prefix tokens is left out and
    each row renormalised over the patches."""
    x = on_model_device(model, x)
    prefix, h, w = _grid(model, x)
    patch = x.shape[2] // h
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    centres = torch.stack([ys.flatten(), xs.flatten()], -1).double() * patch
    dist = torch.cdist(centres, centres).to(x.device)  # (h*w, h*w) pixels between patch centres
    total = None
    for i in range(0, len(x), batch_size):
        with frozen(model) as net, attention_recorded(net) as probs:
            net(x[i : i + batch_size])
        rows = torch.stack([p[:, :, prefix:, prefix:].double() for p in probs], 1)  # (n, blocks, heads, P, P)
        rows = rows / rows.sum(-1, keepdim=True)
        d = (rows * dist).sum(-1).mean(-1).sum(0)  # summed over this chunk's images
        total = d if total is None else total + d
    return (total / len(x)).cpu().numpy()
