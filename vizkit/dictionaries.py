"""Sparse dictionaries of a layer's activations: directions that each mean one thing, where a channel may
mean several. A TopK sparse autoencoder (Gao et al. 2024) and NMF (Olah et al. 2018's neuron groups), the
measures the papers report (explained variance, L0, dead features) and a streaming collector of vectors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .activations import Images, layer_maps
from .hooks import LayerRef
from .layers import ModelLike

# fmt: off
__all__ = [
    "Collected", "collect", "dead_fraction", "explained_variance", "l0", "nmf", "NMFDictionary", "shipped",
    "SHIPPED", "SparseAutoencoder", "train_sae", "training_record", "Vectors", "WEIGHTS_DIR",
]
# fmt: on

Vectors = np.ndarray | torch.Tensor
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "sae"  # package data
# The dictionaries notebook 15 reads, trained by tools/train_sae.py (make train-sae) on EfficientNet-Lite0's
# activations over composites of every object: {layer: train_sae settings}.
SHIPPED = {
    "blocks.4.2.bn1": {"n_features": 1536, "k": 32},
    "blocks.2.1.bn1": {"n_features": 960, "k": 16},
}


def _tensor(a: Vectors, what: str = "activations") -> torch.Tensor:
    """a as a float32 CPU tensor (n, d), or a ValueError saying what was expected."""
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).detach().float().cpu()
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"expected {what} of shape (n, d) with n >= 1, got shape {tuple(t.shape)}")
    return t


def _like(t: torch.Tensor, a: Vectors) -> Vectors:
    """t as the type of a: a NumPy array for a NumPy input, else a tensor."""
    return t if isinstance(a, torch.Tensor) else t.numpy()


class SparseAutoencoder(nn.Module):
    """A TopK sparse autoencoder: z = TopK(ReLU(W_enc (a / scale - b_dec) + b_enc)), a' = scale (z W_dec + b_dec).

    d: the layer's width; n_features: the dictionary's size; k: features kept per vector; scale: the
    activations' root mean square norm over sqrt(d) (set by train_sae, so that lr does not depend on the layer).
    """

    def __init__(self, d: int, n_features: int, k: int, scale: float = 1.0):
        super().__init__()
        if not 1 <= k <= n_features:
            raise ValueError(f"need 1 <= k <= n_features, got k={k} and n_features={n_features}")
        self.k = k
        self.W_enc = nn.Parameter(torch.zeros(n_features, d))
        self.b_enc = nn.Parameter(torch.zeros(n_features))
        self.W_dec = nn.Parameter(torch.zeros(n_features, d))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.register_buffer("scale", torch.tensor(float(scale)))

    @property
    def directions(self) -> torch.Tensor:
        """(n_features, d) unit vectors: what each feature adds to the layer's activations."""
        return self.W_dec.detach()

    def pre_activations(self, a: torch.Tensor) -> torch.Tensor:
        """(n, n_features) encoder outputs before the ReLU and the TopK, of a (n, d)."""
        return (a / self.scale - self.b_dec) @ self.W_enc.T + self.b_enc

    def _encode(self, a: torch.Tensor) -> torch.Tensor:
        pre = self.pre_activations(a)
        top = pre.topk(self.k, dim=1)
        return torch.zeros_like(pre).scatter_(1, top.indices, top.values.relu())

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.W_dec + self.b_dec) * self.scale

    def encode(self, a: Vectors) -> Vectors:
        """Feature activations (n, n_features), at most k non-zero per row, of activations a (n, d)."""
        with torch.no_grad():
            return _like(self._encode(_tensor(a).to(self.W_enc.device)).cpu(), a)

    def decode(self, z: Vectors) -> Vectors:
        """The activations (n, d) that feature activations z (n, n_features) stand for."""
        with torch.no_grad():
            return _like(self._decode(_tensor(z, "features").to(self.W_dec.device)).cpu(), z)

    def maps(self, a: torch.Tensor) -> torch.Tensor:
        """A layer's maps (N, d, h, w) as feature maps (N, n_features, h, w): encode() at every position."""
        n, d, h, w = a.shape
        with torch.no_grad():
            z = self._encode(a.permute(0, 2, 3, 1).reshape(-1, d).float().to(self.W_enc.device))
        return z.reshape(n, h, w, -1).permute(0, 3, 1, 2)

    def save(self, path: str | PathLike) -> None:
        """Write the weights in fp16 (and k), for load()."""
        state = {name: t.detach().half() for name, t in self.state_dict().items() if name != "scale"}
        torch.save(
            {**state, "scale": self.scale.float(), "k": torch.tensor(self.k)}, path
        )  # scale kept in fp32

    @classmethod
    def load(cls, path: str | PathLike) -> SparseAutoencoder:
        """A dictionary written by save() (loaded with weights_only=True)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        n_features, d = state["W_enc"].shape
        sae = cls(d, n_features, int(state.pop("k")))
        sae.load_state_dict(
            {name: t.float() for name, t in state.items()}
        )  # strict: a missing weight is an error
        return sae.eval().requires_grad_(False)  # a trained dictionary, read, not trained


def shipped(layer: str, folder: Path = WEIGHTS_DIR) -> SparseAutoencoder:
    """The shipped dictionary of a layer of efficientnet_lite0 (SHIPPED's keys)."""
    if layer not in SHIPPED:
        raise ValueError(f"no shipped dictionary for {layer!r}; shipped: {', '.join(SHIPPED)}")
    path = Path(folder) / f"{layer}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: `make train-sae` trains it (a few minutes)")
    return SparseAutoencoder.load(path)


def training_record(folder: Path = WEIGHTS_DIR) -> dict:
    """How each shipped dictionary was trained and how it scored (TRAINING.json beside the weights)."""
    return json.loads((Path(folder) / "TRAINING.json").read_text())


def train_sae(
    acts: Vectors,
    n_features: int,
    *,
    k: int = 32,
    steps: int = 2000,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    aux_k: int | None = None,
    progress: bool = True,
) -> SparseAutoencoder:
    """Train a TopK sparse autoencoder on activations (n, d), as Gao et al. (2024) do.

    The decoder's rows stay unit vectors; the encoder starts as the decoder's transpose and the decoder
    bias at the mean; the loss is the normalised MSE plus, while some features have not fired for 8 of
    the steps' batches and at least 4,096 vectors (dead), 1/32 times the normalised MSE with which the
    aux_k (default d/2) strongest dead features reconstruct what the live ones left (AuxK).
    """
    a = _tensor(acts)
    if not 1 <= k <= n_features:
        raise ValueError(f"need 1 <= k <= n_features, got k={k} and n_features={n_features}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"need steps >= 1 and batch_size >= 1, got {steps} and {batch_size}")
    n, d = a.shape
    g = torch.Generator().manual_seed(seed)
    scale = a.pow(2).sum(1).mean().sqrt().item() / d**0.5 or 1.0
    sae = SparseAutoencoder(d, n_features, k, scale)
    with torch.no_grad():
        sae.W_dec.copy_(nn.functional.normalize(torch.randn(n_features, d, generator=g), dim=1))
        sae.W_enc.copy_(sae.W_dec)
        sae.b_dec.copy_(a.mean(0) / scale)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    idle = torch.zeros(n_features)  # vectors seen since each feature last fired
    dead_after = max(4096, 8 * batch_size)
    aux_k = aux_k or max(1, d // 2)
    for _ in tqdm(range(steps), desc="training the sparse autoencoder", disable=not progress, leave=False):
        x = a[torch.randint(n, (batch_size,), generator=g)]
        z = sae._encode(x)
        err = x - sae._decode(z)
        variance = (x - x.mean(0)).pow(2).sum(1).mean().clamp(min=1e-12)
        loss = err.pow(2).sum(1).mean() / variance
        idle = torch.where((z > 0).any(0), 0, idle + len(x))
        dead = idle >= dead_after
        if dead.any():
            pre = sae.pre_activations(x).masked_fill(~dead, -torch.inf)
            top = pre.topk(min(aux_k, int(dead.sum())), dim=1)
            z_aux = torch.zeros_like(pre).scatter_(1, top.indices, top.values.relu())
            residual = (
                err.detach()
            )  # what the live features left; its variance normalises, as the main loss's
            aux = (residual - z_aux @ sae.W_dec * sae.scale).pow(2).sum(1).mean()
            loss = loss + aux / (residual - residual.mean(0)).pow(2).sum(1).mean().clamp(min=1e-12) / 32
        opt.zero_grad()
        loss.backward()
        _unit_step(opt, sae.W_dec)
    return sae.eval()


def _unit_step(opt: torch.optim.Optimizer, W: nn.Parameter) -> None:
    """One optimiser step that keeps W's rows unit vectors: drop the gradient along each row, step, renormalise."""
    with torch.no_grad():
        W.grad -= (W.grad * W).sum(1, keepdim=True) * W
        opt.step()
        W.copy_(nn.functional.normalize(W, dim=1))


@dataclass
class NMFDictionary:
    """Non-negative matrix factorisation a ~ z @ components, read as a dictionary: directions are the
    components as unit vectors, encode() their non-negative weights in those units."""

    model: object  # sklearn.decomposition.NMF, fitted
    norms: np.ndarray  # (n_components,) the components' lengths

    @property
    def directions(self) -> torch.Tensor:
        """(n_components, d) unit vectors."""
        return torch.as_tensor(self.model.components_ / self.norms[:, None]).float()

    def encode(self, a: Vectors) -> Vectors:
        """Non-negative weights (n, n_components) of activations a (n, d), non-negative themselves."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # as in nmf(): max_iter sweeps, converged or not
            warnings.simplefilter("ignore", ConvergenceWarning)
            z = self.model.transform(_non_negative(_tensor(a)).numpy()) * self.norms[None]
        return _like(torch.as_tensor(z).float(), a)

    def decode(self, z: Vectors) -> Vectors:
        """The activations (n, d) that weights z (n, n_components) stand for."""
        return _like(_tensor(z, "weights") @ self.directions, z)

    def maps(self, a: torch.Tensor) -> torch.Tensor:
        """A layer's maps (N, d, h, w) as component maps (N, n_components, h, w)."""
        n, d, h, w = a.shape
        z = self.encode(a.permute(0, 2, 3, 1).reshape(-1, d).float().cpu())
        return z.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def _non_negative(a: torch.Tensor) -> torch.Tensor:
    if (a < 0).any():
        raise ValueError(
            "NMF needs non-negative activations: take a layer after a ReLU/ReLU6 "
            "(for EfficientNet-Lite a block's blocks.N.M.bn1), not a signed block output"
        )
    return a


def nmf(acts: Vectors, n_components: int, *, max_vectors: int = 20_000, seed: int = 0, max_iter: int = 100):
    """NMF of non-negative activations (n, d) on a random subsample of at most max_vectors rows -> NMFDictionary.

    max_iter: coordinate-descent sweeps (scikit-learn's NMF, nndsvda start); stopping there is not an error
    (measured on notebook 15's layer: 200 sweeps explain 0.2% more variance than 100, at twice the time).
    """
    import warnings

    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    a = _non_negative(_tensor(acts))
    if n_components < 1:
        raise ValueError(f"need n_components >= 1, got {n_components}")
    rows = np.random.default_rng(seed).permutation(len(a))[:max_vectors]
    model = NMF(n_components, init="nndsvda", max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(a[rows].numpy())
    norms = np.linalg.norm(model.components_, axis=1).clip(1e-12)
    return NMFDictionary(model, norms)


def _chunks(a: torch.Tensor, size: int = 8192) -> Iterable[torch.Tensor]:
    return (a[i : i + size] for i in range(0, len(a), size))


def explained_variance(dictionary, acts: Vectors) -> float:
    """1 - sum |a - decode(encode(a))|^2 / sum |a - mean(a)|^2 over activations (n, d) (the papers' measure)."""
    a = _tensor(acts)
    err = sum(float((c - dictionary.decode(dictionary.encode(c))).pow(2).sum()) for c in _chunks(a))
    return 1 - err / float((a - a.mean(0)).pow(2).sum().clamp(min=1e-12))


def l0(dictionary, acts: Vectors) -> float:
    """Mean number of non-zero features per vector of activations (n, d)."""
    a = _tensor(acts)
    return sum(float((dictionary.encode(c) > 0).sum()) for c in _chunks(a)) / len(a)


def dead_fraction(dictionary, acts: Vectors) -> float:
    """Share of the dictionary's features that are zero on every vector of activations (n, d)."""
    fired = sum((dictionary.encode(c) > 0).any(0).float() for c in _chunks(_tensor(acts)))
    return float((fired == 0).float().mean())


@dataclass
class Collected:
    """Activation vectors sampled from a layer's maps: acts (n, C) float32, and where each came from:
    image (n,) position in the stream, row and col (n,) in the layer's grid."""

    acts: np.ndarray
    image: np.ndarray
    row: np.ndarray
    col: np.ndarray


def collect(
    model: ModelLike,
    images: Images,
    layer: LayerRef,
    *,
    per_image: int = 16,
    batch_size: int = 16,
    seed: int = 0,
    total: int | None = None,
) -> Collected:
    """Sample per_image positions (without replacement, uniformly) of `layer`'s maps from every image.

    images as activations.features() takes them (a generator too); memory holds one batch of maps and
    the sampled vectors. total: the number of images, for the progress bar when images has no len().
    """
    if per_image < 1:
        raise ValueError(f"need per_image >= 1, got {per_image}")
    g = torch.Generator().manual_seed(seed)
    out, where, seen = [], [], 0
    total = total if total is not None else (len(images) if hasattr(images, "__len__") else None)
    with tqdm(total=total, desc=f"collecting {layer}", leave=False) as bar:
        for maps in layer_maps(model, images, layer, batch_size):
            b, c, h, w = maps.shape
            pick = torch.rand(b, h * w, generator=g).argsort(1)[:, : min(per_image, h * w)]  # (b, p)
            flat = maps.flatten(2).float().cpu()  # (b, c, hw)
            out.append(flat.gather(2, pick[:, None].expand(-1, c, -1)).transpose(1, 2).reshape(-1, c))
            img = torch.arange(seen, seen + b)[:, None].expand_as(pick)
            where.append(torch.stack([img, pick // w, pick % w], -1).reshape(-1, 3))
            seen += b
            bar.update(b)
    if not out:
        raise ValueError("no images given")
    where = torch.cat(where).numpy()
    return Collected(torch.cat(out).numpy(), where[:, 0], where[:, 1], where[:, 2])
