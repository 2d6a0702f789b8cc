"""Photo cut-outs as composite objects: exact masks from their alpha, and the model's agreement."""

import numpy as np
import pytest
import torch
from PIL import Image

from vizkit import cutouts, data


def plant_lemon(root) -> np.ndarray:
    """A 40 x 60 yellow ellipse with a transparent surround, at the lemon cut-out's path; its alpha."""
    y, x = np.mgrid[:40, :60]
    alpha = ((((y - 19.5) / 15) ** 2 + ((x - 29.5) / 25) ** 2) <= 1).astype(np.uint8) * 255
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (250, 220, 30), alpha
    path = root / cutouts.CUTOUTS["lemon"][0]
    path.parent.mkdir(parents=True)
    Image.fromarray(rgba).save(path)
    return alpha > 127


def test_a_cutouts_alpha_is_the_composites_mask(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZKIT_STAMPS", str(tmp_path))
    cutouts.read_cutout.cache_clear()
    alpha = plant_lemon(tmp_path)
    assert cutouts.cutout_names() == ["lemon"] and data.object_names() == [*data.OBJECTS, "lemon"]
    rgb, mask = cutouts.cutout("lemon")
    assert mask.shape == (30, 50) and mask.sum() == alpha.sum()  # cropped to the object, every pixel kept
    images, labels, masks = data.composites(6, seed=2, size=128, objects=["lemon"])
    assert (labels == 951).all()
    for img, m in zip(images, masks):
        width = m.any(0).sum()  # the long side, pasted at 120-190 px of 224
        assert 120 * 128 / 224 - 1 <= width <= 190 * 128 / 224 + 1
        assert abs(m.sum() / (width * m.any(1).sum()) - np.pi / 4) < 0.05  # an ellipse fills pi/4 of its box
        assert (np.abs(img[m].astype(int) - (250, 220, 30)) <= 2).all()  # only the cut-out's pixels inside


def test_missing_package_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZKIT_STAMPS", str(tmp_path))
    assert cutouts.cutout_names() == []
    with pytest.raises(FileNotFoundError, match="apt-get install tuxpaint-stamps-default"):
        cutouts.cutout("lemon")
    with pytest.raises(KeyError, match="available: cat, espresso, moped"):
        data.composites(2, objects=["lemon", "unicorn"])


def test_builtin_composites_are_unchanged_by_the_objects_argument():
    a = data.composites(8, seed=4, size=96)
    b = data.composites(8, seed=4, size=96, objects=list(data.OBJECTS))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.skipif(
    not cutouts.cutout_names(), reason="Debian's tuxpaint-stamps-default is not installed (CI installs it)"
)
def test_offline_model_recognises_cutout_composites_of_an_unused_seed(model):
    names = cutouts.cutout_names()
    assert len(names) == len(cutouts.CUTOUTS)  # every curated file is in the installed package
    images, labels, _ = data.composites(160, seed=123, size=224, objects=names)
    x = model.preprocess_batch(list(images), crop=False)
    with torch.no_grad():
        top1 = torch.cat([model(b).argmax(1) for b in x.split(32)]).numpy()
    assert (top1 == labels).mean() >= 0.85
