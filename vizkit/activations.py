"""What layers compute over many images: feature vectors, maximally activating patches, network dissection."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hooks import LayerRef, frozen, run_to
from .images import to_rgb, to_uint8
from .inputs import last_linear, spatial
from .layers import ModelLike, as_net, channels_last, on_model_device, resolve_name, token_grid
from .receptive_fields import ReceptiveField, receptive_field

# fmt: off
__all__ = [
    "channel_iou", "dissect", "dissect_by_label", "features", "fired", "Images", "layer_maps", "layer_output",
    "nearest_neighbours", "top_patches", "TopPatches", "UnitMaps",
]
# fmt: on

Images = torch.Tensor | np.ndarray | Iterable[np.ndarray]
UnitMaps = Callable[[torch.Tensor], torch.Tensor]  # a layer's maps (N, C, h, w) -> other maps (N, F, h, w)


def layer_output(model: ModelLike, x: torch.Tensor, layer: LayerRef, grid: bool = False) -> torch.Tensor:
    """The output of `layer` for the batch x (eval mode, no gradients), running no further than needed.
    grid=True: as (N, C, h, w), a transformer block's patch tokens read as their grid (inputs.spatial)."""
    net = as_net(model)
    name = resolve_name(net, layer)
    with frozen(net), torch.no_grad():
        out = run_to(net, on_model_device(net, x), name)
    return spatial(out, layer, token_grid(net, x.shape[2:])) if grid else out


def _batches(model: ModelLike, images: Images, batch_size: int) -> Iterator[tuple[torch.Tensor, list]]:
    """Yield (normalised batch, the images it came from) from a tensor or from HxWx3 images."""
    if isinstance(images, torch.Tensor):
        images = on_model_device(model, images)
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            shown = None
            if hasattr(model, "deprocess"):  # the pictures behind the tensor, for cropping patches
                shown = to_uint8(model.deprocess(x).reshape(len(x), *x.shape[2:], 3))
            yield channels_last(x), shown
        return
    if not hasattr(model, "preprocess"):
        raise TypeError(
            "images as arrays need the model from vizkit.load_model (for its "
            "preprocessing); with a plain nn.Module pass a normalised Nx3xHxW tensor"
        )
    it = iter(images)
    while chunk := list(islice(it, batch_size)):
        x = torch.cat([model.preprocess(img, crop=False) for img in chunk])
        yield channels_last(x), [to_rgb(img) for img in chunk]


def layer_maps(
    model: ModelLike, images: Images, layer: LayerRef, batch_size: int = 16
) -> Iterator[torch.Tensor]:
    """`layer`'s output as maps (B, C, h, w), one batch of images at a time (images as features() takes
    them), without gradients; a transformer block's tokens read as their grid (inputs.spatial)."""
    net = as_net(model)
    name = resolve_name(net, layer)
    for x, _ in _batches(model, images, batch_size):
        with frozen(net), torch.no_grad():
            out = run_to(net, x, name)
        yield spatial(out, layer, token_grid(net, x.shape[2:]))


def features(
    model: ModelLike,
    images: Images,
    layer: LayerRef | None = None,
    batch_size: int = 16,
    pool: str | None = "avg",
) -> np.ndarray:
    """Feature vectors (N, D) for N images, in batches, without gradients.

    images: a normalised Nx3xHxW tensor, or HxWx3 uint8 images of one size (an array or any
    iterable; fed whole, as model.preprocess(img, crop=False) does). layer=None: the input of the
    last nn.Linear (the penultimate features). A spatial layer output is averaged ("avg") or
    maxed ("max") over positions, or flattened (pool=None). Memory is bounded by one batch.
    """
    net = as_net(model)
    name = resolve_name(
        net,
        last_linear(net, "features(layer=None) (the input of the classifier; else pass layer=)")
        if layer is None
        else layer,
    )
    out = []
    with frozen(net), torch.no_grad():
        for x, _ in _batches(model, images, batch_size):
            out.append(_pooled(run_to(net, x, name, inputs=layer is None), pool).float().cpu().numpy())
    if not out:
        raise ValueError("no images given")
    return np.concatenate(out)


def nearest_neighbours(X: np.ndarray, k: int = 5) -> np.ndarray:
    """Rows of X (N, D) -> (N, k) indices of each row's k nearest other rows (Euclidean), nearest first.

    scikit-learn's NearestNeighbors, which leaves each row itself out; tied neighbours may come in
    any order."""
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X)
    if X.ndim != 2 or not 0 < k < len(X):
        raise ValueError(f"expected X of shape (N, D) and 0 < k < N, got shape {X.shape} and k={k}")
    return NearestNeighbors(n_neighbors=k).fit(X).kneighbors(return_distance=False)


def _pooled(value: torch.Tensor, pool: str | None) -> torch.Tensor:
    if value.ndim == 4 and pool == "avg":
        return value.mean((2, 3))
    if value.ndim == 4 and pool == "max":
        return value.amax((2, 3))
    if pool not in (None, "avg", "max"):
        raise ValueError(f"pool must be 'avg', 'max' or None, got {pool!r}")
    return value.flatten(1)


@dataclass
class TopPatches:
    """The k images that excite each channel most, and the patches around the strongest unit.

    values (C, k): the channel's activation at that unit; index (C, k): position of the image in
    the stream; units (C, k, 2): (row, col) of the unit in the layer's grid; patches[c][r]: the
    crop of `field` around it (HxWx3 uint8; outside the image filled with grey): the unit's receptive
    field, or for a transformer's patch tokens after attention (which see the whole picture) the
    token's own patch with one patch of context on each side. With sources, a channel
    with fewer than k distinct sources has its remaining slots empty (value -inf, index -1, no patch).
    """

    channels: list[int]
    values: np.ndarray
    index: np.ndarray
    units: np.ndarray
    patches: list[list[np.ndarray]]
    field: ReceptiveField


def top_patches(
    model: ModelLike,
    images: Iterable[np.ndarray],
    layer: LayerRef,
    channels: Sequence[int],
    k: int = 9,
    batch_size: int = 16,
    sources: Sequence | Callable[[int, tuple[int, int]], Hashable] | None = None,
    transform: UnitMaps | None = None,
) -> TopPatches:
    """For each channel, the k images (one patch each) with the largest activation anywhere.

    sources: the id of each image's source (say, the photo a crop was cut from), indexed by stream
    position; then a channel keeps at most one image per source. A list that the stream fills as it
    yields works: it is read after each batch. Or a function (stream position, unit (row, col)) -> id,
    for pictures made of several sources, where the unit decides which its field shows; an id may be a
    frozenset of ids (a patch that shows several sources: kept only if none of them was kept before).

    One streaming pass over `images` (HxWx3 images of one size; any iterable, a generator too; or a
    normalised Nx3xHxW tensor): memory holds one batch and k patches per channel, whatever the
    number of images. Patches are cut from the images (for a tensor, from model.deprocess; with a
    plain nn.Module and a tensor there are no pictures and the patch lists stay empty). A transformer
    block's output is read as its grid of patch tokens (inputs.spatial). transform: maps (B, C, h, w) ->
    (B, F, h, w) read instead of the layer's channels (say, a sparse dictionary's features: its maps()).
    """
    net = as_net(model)
    channels = list(channels)
    name = resolve_name(net, layer)
    best_v = best_i = best_u = None
    kept: list[dict[int, np.ndarray]] = [{} for _ in channels]  # per channel: image index -> patch
    field = None
    seen = 0
    for x, imgs in _batches(model, images, batch_size):
        grid = token_grid(net, x.shape[2:])
        with frozen(net), torch.no_grad():
            out = run_to(net, x, name)
        act = spatial(out, name, grid)
        act = (act if transform is None else transform(act))[:, channels]  # (B, C, h, w)
        if field is None:
            field = _crop_field(net, name, x.shape[-1], grid if out.ndim == 3 else None)
        b, c, h, w = act.shape
        v, pos = (t.T.cpu() for t in act.flatten(2).max(-1))  # (C, B): best unit per image
        idx = torch.arange(seen, seen + b).expand(c, b)
        units = torch.stack([pos // w, pos % w], -1)  # (C, B, 2)
        if best_v is not None:
            v, idx, units = (
                torch.cat([best_v, v], 1),
                torch.cat([best_i, idx], 1),
                torch.cat([best_u, units], 1),
            )
        best_v, best_i, best_u = _keep_best(v, idx, units, sources, k)
        for ch in range(c if imgs is not None else 0):
            kept[ch] = {
                j: kept[ch][j] if j in kept[ch] else field.crop(imgs[j - seen], *best_u[ch, r].tolist())
                for r, j in enumerate(best_i[ch].tolist())
                if j >= 0
            }
        seen += b
    if best_v is None:
        raise ValueError("no images given")
    patches = [[kept[ch][j] for j in best_i[ch].tolist() if j in kept[ch]] for ch in range(len(channels))]
    return TopPatches(channels, best_v.numpy(), best_i.numpy(), best_u.numpy(), patches, field)


def _crop_field(net: nn.Module, name: str, size: int, tokens: tuple[int, int, int] | None) -> ReceptiveField:
    """The crop around a unit: its receptive field; for patch tokens (tokens = their grid), the
    token's patch with one patch of context on each side."""
    if tokens is None:
        return receptive_field(net, name, input_size=size)
    patch = size // tokens[2]
    return ReceptiveField(3 * patch, patch, -patch)


def _keep_best(v: torch.Tensor, idx: torch.Tensor, units: torch.Tensor, sources: Sequence | None, k: int):
    """The k best columns of values v (C, M) with their image indices (C, M) and units (C, M, 2): the
    largest values, or with sources the largest of distinct sources."""
    if sources is None:
        order = v.topk(min(k, v.shape[1]), dim=1).indices
    else:  # a padding column (value -inf, index -1) fills the slots of channels short of sources
        v = torch.cat([v, torch.full_like(v[:, :1], -torch.inf)], 1)
        idx = torch.cat([idx, -torch.ones_like(idx[:, :1])], 1)
        units = torch.cat([units, torch.zeros_like(units[:, :1])], 1)
        order = _distinct_top(v, idx, units, sources, k)
    return v.gather(1, order), idx.gather(1, order), units.gather(1, order[..., None].expand(-1, -1, 2))


def _distinct_top(
    values: torch.Tensor, index: torch.Tensor, units: torch.Tensor, sources, k: int
) -> torch.Tensor:
    """Per row of values (C, M): the columns of the k largest whose images (index, -1 for none) have
    different sources (sources[index], or sources(index, unit)); the last column (padding) fills the
    slots of a row with fewer sources."""
    out = torch.full((values.shape[0], k), values.shape[1] - 1, dtype=torch.long)
    for ch, row in enumerate(values.argsort(dim=1, descending=True).tolist()):
        seen, cols = set(), []
        for m in row:
            j = int(index[ch, m])
            if j < 0:
                continue
            key = sources(j, tuple(units[ch, m].tolist())) if callable(sources) else sources[j]
            ids = key if isinstance(key, frozenset) else {key}
            if seen.isdisjoint(ids):
                seen |= ids
                cols.append(m)
                if len(cols) == k:
                    break
        out[ch, : len(cols)] = torch.tensor(cols, dtype=torch.long)
    return out


def fired(maps: torch.Tensor, quantile: float, size: tuple[int, int]) -> torch.Tensor:
    """Where one channel fires, as network dissection reads it: maps (N, h, w) upsampled bilinearly
    to size (H, W) and compared with one threshold, the channel's quantile over all N maps -> (N, H, W) bool."""
    maps = maps.float()
    threshold = torch.quantile(maps.flatten(), quantile)
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0] > threshold


def channel_iou(maps: torch.Tensor, masks: np.ndarray, channel: int, quantile: float = 0.9) -> float:
    """IoU of one channel's dissection masks (fired) with the object masks, intersections and unions
    summed over all images: maps (N, C, h, w), masks (N, H, W) bool. dissect() does every channel."""
    on = fired(maps[:, channel], quantile, tuple(np.shape(masks)[1:]))
    truth = torch.as_tensor(np.asarray(masks, bool), device=on.device)
    return ((on & truth).sum() / (on | truth).sum()).item()


def dissect(
    model: ModelLike,
    images: Images,
    masks: np.ndarray,
    layer: LayerRef,
    quantile: float = 0.9,
    batch_size: int = 16,
    transform: UnitMaps | None = None,
) -> np.ndarray:
    """IoU of each channel's thresholded maps with ground-truth masks (network dissection, Bau et al. 2017).

    Each channel's threshold is its `quantile` over all positions of all images; its maps are
    upsampled bilinearly to the image size and compared with masks (N, H, W bool), summing
    intersections and unions over the images. Returns (C,) IoUs; dissect_by_label() scores each object.
    transform: as top_patches() takes it (a dictionary's features instead of channels).
    """
    return _dissection(model, images, masks, layer, quantile, None, batch_size, transform)[None]


def dissect_by_label(
    model: ModelLike,
    images: Images,
    masks: np.ndarray,
    labels: np.ndarray,
    layer: LayerRef,
    quantile: float = 0.9,
    batch_size: int = 16,
    transform: UnitMaps | None = None,
) -> dict:
    """Network dissection per object: {label: (C,) IoUs}, one pass for every label of labels (N,).

    Each label's concept mask is the object mask on images of that label and empty elsewhere, so a
    channel that also fires on other objects is penalised. Thresholds as in dissect().
    """
    return _dissection(model, images, masks, layer, quantile, np.asarray(labels), batch_size, transform)


def _dissection(model, images, masks, layer, quantile, labels, batch_size, transform=None) -> dict:
    """{label or None: (C,) IoUs}, the shared pass of dissect and dissect_by_label."""
    batches = layer_maps(model, images, layer, batch_size)
    acts = torch.cat([(a if transform is None else transform(a)).float().cpu() for a in batches])
    masks = torch.as_tensor(np.asarray(masks, bool))
    if masks.shape[0] != acts.shape[0]:
        raise ValueError(f"{acts.shape[0]} images but {masks.shape[0]} masks")
    c = acts.shape[1]
    flat = acts.transpose(0, 1).reshape(c, -1)
    step = max(1, flat.shape[1] // 200_000)  # a subsample keeps torch.quantile within its size limit
    threshold = torch.quantile(flat[:, ::step], quantile, dim=1)[None, :, None, None]
    keys = [None] if labels is None else sorted(set(labels.tolist()))
    owner = torch.as_tensor(labels) if labels is not None else None
    inter, union = torch.zeros(len(keys), c), torch.zeros(len(keys), c)
    size = masks.shape[1:]
    for start in range(0, len(acts), batch_size):
        fired = F.interpolate(
            acts[start : start + batch_size], size=size, mode="bilinear", align_corners=False
        )
        fired = fired > threshold
        for i, key in enumerate(keys):
            gt = masks[start : start + batch_size, None]
            if key is not None:
                gt = gt & (owner[start : start + batch_size] == key)[:, None, None, None]
            inter[i] += (fired & gt).sum((0, 2, 3))
            union[i] += (fired | gt).sum((0, 2, 3))
    return dict(zip(keys, (inter / union.clamp(min=1)).numpy()))
