"""Labelled ImageNet image sets that download when they can (fast.ai's Imagenette and Imagewoof),
cached under $VIZKIT_DATA (default ~/.cache/vizkit) in the archives' own layout."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import settings
from .user_images import load_image

# fmt: off
__all__ = [
    "IMAGE_SETS", "check_archive", "data_dir", "DataUnavailable", "download", "extract", "image_set",
    "ImageFiles", "ImageSetInfo", "missing",
]
# fmt: on


class DataUnavailable(RuntimeError):
    """An image set is neither cached nor downloadable; the message says where to put it."""


@dataclass(frozen=True)
class ImageSetInfo:
    """Where an image set comes from, how to check it, and its classes (WordNet id -> ImageNet index)."""

    url: str
    folder: str  # the archive's top folder, kept as the cache layout
    md5: str | None  # md5 of the whole archive, where one is published
    size: int | None  # bytes; with head_md5: fast.ai's own check (md5 of the first MiB)
    head_md5: str | None
    wnids: dict[str, int]
    credit: str


# ImageNet indices: the position of each WordNet id in the sorted list of the 1000 ILSVRC-2012 ids
# (timm's imagenet_synsets.txt). Checksums: imagenette2-160's md5 is torchvision's
# (datasets.Imagenette); for imagewoof2-160 no whole-file md5 is published by fast.ai, so its size
# and the md5 of its first MiB are checked, fast.ai's own check (fastai/data/download_checks.py).
IMAGE_SETS = {
    "imagenette": ImageSetInfo(
        url="https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
        folder="imagenette2-160",
        md5="e793b78cc4c9e9a4ccc0c1155377a412",
        size=None,
        head_md5=None,
        wnids={
            "n01440764": 0,
            "n02102040": 217,
            "n02979186": 482,
            "n03000684": 491,
            "n03028079": 497,
            "n03394916": 566,
            "n03417042": 569,
            "n03425413": 571,
            "n03445777": 574,
            "n03888257": 701,
        },
        credit="Imagenette (fast.ai, Jeremy Howard), 10 easy ImageNet classes, 160 px release, Apache-2.0",
    ),
    "imagewoof": ImageSetInfo(
        url="https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2-160.tgz",
        folder="imagewoof2-160",
        md5=None,
        size=92612825,
        head_md5="3559b194123981a540b87132dbda412f",
        wnids={
            "n02086240": 155,
            "n02087394": 159,
            "n02088364": 162,
            "n02089973": 167,
            "n02093754": 182,
            "n02096294": 193,
            "n02099601": 207,
            "n02105641": 229,
            "n02111889": 258,
            "n02115641": 273,
        },
        credit="Imagewoof (fast.ai, Jeremy Howard), 10 dog breeds of ImageNet, 160 px release, Apache-2.0",
    ),
}


def data_dir() -> Path:
    """The cache of downloaded image sets: $VIZKIT_DATA, default ~/.cache/vizkit."""
    return Path(os.environ.get("VIZKIT_DATA") or Path.home() / ".cache" / "vizkit")


class ImageFiles(Sequence):
    """A lazy sequence of images on disk: item i is decoded (HxWx3 uint8) only when it is read.

    size: None keeps each picture as it is; an int resizes the shorter side and centre-crops a
    size x size square, so that a batch stacks. Slices are lazy too.
    """

    def __init__(self, paths: Sequence[Path], size: int | None = None):
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ImageFiles(self.paths[i], self.size)
        return load_image(self.paths[i], square=self.size)

    def __repr__(self) -> str:
        side = f"{self.size}x{self.size}" if self.size else "own sizes"
        return f"ImageFiles({len(self)} images, {side})"


def image_set(
    name: str, split: str = "val", n: int | None = None, size: int | None = None, seed: int = 0
) -> tuple[ImageFiles, np.ndarray]:
    """A labelled image set: (images, labels), downloaded and cached on first use.

    name: "imagenette" or "imagewoof" (see IMAGE_SETS); split: "val" or "train"; n: a random
    subset of n images (seeded by seed; None = all, in file order); size: centre-crop every image to
    size x size. images: a lazy sequence of HxWx3 uint8 arrays; labels: int64 ImageNet class indices.
    Raises DataUnavailable offline (or with VIZKIT_OFFLINE=1) when no cached copy exists.
    """
    if name not in IMAGE_SETS:
        raise KeyError(f"no image set named {name!r}; available: {', '.join(IMAGE_SETS)}")
    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    info = IMAGE_SETS[name]
    root = _fetch(name) / split
    paths, labels = [], []
    for wnid in sorted(info.wnids):
        files = sorted(p for p in (root / wnid).glob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        paths += files
        labels += [info.wnids[wnid]] * len(files)
    if not paths:
        raise DataUnavailable(f"{root} holds no images in the folders {', '.join(sorted(info.wnids))}")
    labels = np.array(labels, np.int64)
    if n is not None:
        pick = np.random.default_rng(settings.seed(seed)).permutation(len(paths))[:n]
        paths, labels = [paths[i] for i in pick], labels[pick]
    return ImageFiles(paths, size), labels


def _fetch(name: str) -> Path:
    """The extracted folder of image set `name` in the cache, downloading and extracting it if needed."""
    info = IMAGE_SETS[name]
    cache = data_dir()
    folder = cache / info.folder
    if folder.is_dir():
        return folder
    archive = cache / Path(info.url).name
    if not archive.is_file():
        if os.environ.get("VIZKIT_OFFLINE", "0") not in ("", "0"):
            raise DataUnavailable(missing(name, "VIZKIT_OFFLINE=1 is set"))
        download(info, archive)
    problem = check_archive(archive, info)
    if problem:
        raise DataUnavailable(f"{archive}: {problem}. Delete it and try again. " + missing(name, ""))
    extract(archive, cache)
    return folder


def missing(name: str, reason: str) -> str:
    """What is missing for image set `name`, where to put it and how to get it."""
    info = IMAGE_SETS[name]
    cache = data_dir()
    why = f" ({reason})" if reason else ""
    return (
        f"The image set {name!r} is not in the cache{why}: there is no {cache / info.folder}. Put the "
        f"archive {Path(info.url).name} (from {info.url}) into {cache}/ (it is checked and extracted on "
        f"first use), or its extracted folder {info.folder}/ there; or, with internet access (e.g. on "
        f"Colab), call vizkit.data.image_set({name!r}) to download it (set VIZKIT_DATA to use another folder)."
    )


def download(info: ImageSetInfo, archive: Path) -> None:
    """Download info.url to `archive` with a progress bar; a failed download leaves nothing behind."""
    from torchvision.datasets.utils import download_url

    archive.parent.mkdir(parents=True, exist_ok=True)
    part = archive.with_name(archive.name + ".part")
    part.unlink(missing_ok=True)  # torchvision skips a download whose file exists
    try:
        download_url(info.url, str(archive.parent), filename=part.name)
        problem = check_archive(part, info)
        if problem:
            raise DataUnavailable(f"the download from {info.url} is corrupt: {problem}")
        part.replace(archive)
    except DataUnavailable:
        raise
    except Exception as error:  # offline, refused, interrupted: say so in one line
        raise DataUnavailable(
            f"could not download {info.url} ({type(error).__name__}: {error}). "
            + missing(next(k for k, v in IMAGE_SETS.items() if v == info), "")
        ) from error
    finally:
        part.unlink(missing_ok=True)


def check_archive(path: Path, info: ImageSetInfo) -> str:
    """'' if the file at path has the set's checksum, else what differs."""
    if info.size is not None and path.stat().st_size != info.size:
        return f"size {path.stat().st_size} bytes, expected {info.size}"
    if info.head_md5 is not None:
        with open(path, "rb") as f:
            got = hashlib.md5(f.read(2**20)).hexdigest()
        if got != info.head_md5:
            return f"md5 of the first MiB {got}, expected {info.head_md5}"
    if info.md5 is not None:
        digest = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(2**20), b""):
                digest.update(chunk)
        if digest.hexdigest() != info.md5:
            return f"md5 {digest.hexdigest()}, expected {info.md5}"
    return ""


def extract(archive: Path, cache: Path) -> None:
    """Extract a .tgz into cache through a temporary folder, so a failure leaves no partial copy.

    Every member must be a plain file or folder inside the cache: absolute paths, '..' and links
    are refused before anything is written (and tarfile's 'data' filter is used where it exists).
    """
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            parts = Path(m.name).parts
            if m.name.startswith(("/", "\\")) or os.path.isabs(m.name) or ".." in parts:
                raise DataUnavailable(f"{archive}: refusing the member {m.name!r}, a path outside the cache")
            if not (m.isfile() or m.isdir()):
                raise DataUnavailable(
                    f"{archive}: refusing the member {m.name!r}, not a plain file or folder"
                )
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, members=members, filter="data")
            else:  # Pythons before the filter: the members were checked above
                tar.extractall(tmp, members=members)
            for top in {Path(m.name).parts[0] for m in members}:
                if not (cache / top).exists():
                    (tmp / top).rename(cache / top)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
