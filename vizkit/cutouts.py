"""Photo cut-outs with exact masks, from Debian's `tuxpaint-stamps-default` where it is installed
(`apt-get install tuxpaint-stamps-default`; not on PyPI): 39 objects of 33 ImageNet classes that widen
the composites beyond the three built-in objects."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["CUTOUTS", "HOW", "cutout", "cutout_names", "read_cutout"]

# name -> (file under the stamps folder, ImageNet class index). Chosen by measurement (development,
# package version 2022.06.04-1): of 791 transparent stamps, those the offline model names right on
# white (p >= 0.6) and on 20 composites over the five backgrounds (top-1 on at least 17), checked by
# eye for photos (not clip-art) whose class is right; 39 kept, pooled composite top-1 762/780 (97.7%).
CUTOUTS = {
    "hen": ("animals/birds/hen.png", 8),
    "toucan": ("animals/birds/tucan.png", 96),
    "drake": ("animals/birds/duck.png", 97),
    "wombat": ("animals/marsupials/wombat.png", 106),
    "slug": ("animals/insects/Brown_slug.png", 114),
    "flamingo": ("animals/birds/pink_flamingo.png", 130),
    "dingo": ("animals/mammals/dogs/dingo.png", 273),
    "tiger": ("animals/mammals/cats/tiger.png", 292),
    "sumatran tiger": ("animals/mammals/cats/tiger_sumatran.png", 292),
    "brown bear": ("animals/mammals/bears/european-bear.png", 294),
    "squirrel": ("animals/mammals/rodents/squirrel.png", 335),
    "zebra": ("animals/mammals/equines/zebra.png", 340),
    "pig": ("animals/mammals/pig.png", 341),
    "golden pig": ("animals/mammals/pig_golden.png", 341),
    "ram": ("animals/mammals/bovines/ram.png", 348),
    "wheelie bin": ("household/wheelie_bin.png", 412),
    "balloon": ("vehicles/flight/balloon360.png", 417),
    "basketball": ("sports/basketball.png", 430),
    "binoculars": ("hobbies/binoculars.png", 447),
    "tennis racket": ("sports/tennis_racket.png", 752),
    "camera": ("hobbies/camera_35mm.png", 759),
    "football": ("sports/soccer.png", 805),
    "teddy bear": ("animals/mammals/bears/toys/edward_bear.png", 850),
    "tennis ball": ("sports/tennis_ball.png", 852),
    "tricycle": ("vehicles/cycle/pink_tricycle.png", 870),
    "violin": ("hobbies/music/string/violin.png", 889),
    "broccoli": ("food/vegetables/broccoli.png", 937),
    "green pepper": ("food/vegetables/pepper.png", 945),
    "yellow pepper": ("food/vegetables/yellowpepper.png", 945),
    "granny smith": ("food/fruit/apple_granny_smith.png", 948),
    "green apple": ("food/fruit/apple_green.png", 948),
    "strawberry": ("food/fruit/strawberry.png", 949),
    "strawberry 2": ("food/fruit/Strawberry2.png", 949),
    "lemon": ("food/fruit/lemon.png", 951),
    "pineapple": ("food/fruit/pineapple.png", 953),
    "pomegranate": ("food/fruit/pomegranate.png", 957),
    "daisy": ("plants/flowers/yellow-flower.png", 985),
    "cep": ("plants/mushrooms/cep-1.png", 997),
    "cep 2": ("plants/mushrooms/cep-2.png", 997),
}
HOW = "apt-get install tuxpaint-stamps-default (Debian, Ubuntu and Colab; set VIZKIT_STAMPS if elsewhere)"


def _stamps_dir() -> Path:
    """Where the stamps are: $VIZKIT_STAMPS, default /usr/share/tuxpaint/stamps."""
    return Path(os.environ.get("VIZKIT_STAMPS") or "/usr/share/tuxpaint/stamps")


def cutout_names() -> list[str]:
    """The cut-outs whose files are installed here (empty without the package)."""
    return [name for name, (file, _) in CUTOUTS.items() if (_stamps_dir() / file).is_file()]


def cutout(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Cut-out `name`: its pixels (HxWx3 uint8) and exact mask (HxW bool, alpha > 127), cropped to the object."""
    if name not in CUTOUTS:
        raise KeyError(f"no cut-out named {name!r}; available: {', '.join(CUTOUTS)}")
    path = _stamps_dir() / CUTOUTS[name][0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the cut-outs need {HOW}")
    return read_cutout(str(path))


@cache
def read_cutout(path: str) -> tuple[np.ndarray, np.ndarray]:
    """RGB pixels and alpha mask of an RGBA file, cropped to the mask's bounding box (read once)."""
    rgba = np.asarray(Image.open(path).convert("RGBA"))
    mask = rgba[..., 3] > 127
    if not mask.any():
        raise ValueError(f"{path} has no opaque pixels")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    rgb, mask = np.ascontiguousarray(rgba[box][..., :3]), np.ascontiguousarray(mask[box])
    rgb.flags.writeable = mask.flags.writeable = False
    return rgb, mask
