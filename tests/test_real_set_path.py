"""Notebooks 02, 03 and 09 on a real image set's code path: a set planted in the cache in the
archive's layout (composites saved as JPEG under their classes' WordNet ids), read by image_set."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from vizkit import data

ROOT = Path(__file__).resolve().parent.parent
# The composites' classes: Egyptian cat, espresso, moped (their WordNet ids in ILSVRC-2012)
PLANTED = {"n02124075": 285, "n07920052": 967, "n03785016": 665}


def plant(cache: Path, per_class: int = 30) -> None:
    """imagenette2-160/val/<wnid>/*.JPEG in cache, filled with composites of that class at 160 px."""
    images, labels, _ = data.composites(4 * per_class, seed=77, size=192)
    for wnid, index in PLANTED.items():
        folder = cache / "imagenette2-160" / "val" / wnid
        folder.mkdir(parents=True)
        for j, img in enumerate(images[labels == index][:per_class]):
            Image.fromarray(img).save(folder / f"{wnid}_{j}.JPEG", quality=92)


REDIRECT = f"""import dataclasses
from vizkit import image_sets
image_sets.IMAGE_SETS["imagenette"] = dataclasses.replace(image_sets.IMAGE_SETS["imagenette"], wnids={PLANTED!r})"""


@pytest.mark.parametrize("name", ["02_feature_space", "03_activations", "09_fooling_images"])
def test_notebook_runs_on_a_planted_set_and_uses_it(name, tmp_path, monkeypatch):
    plant(tmp_path)
    monkeypatch.setenv("VIZKIT_DATA", str(tmp_path))
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")  # the cached copy is used; nothing is downloaded
    monkeypatch.setenv("VIZKIT_FAST", "1")
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    first_code = next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "import vizkit" in c.source
    )
    nb.cells.insert(first_code + 1, nbformat.v4.new_code_cell(REDIRECT))
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("name") == "stdout"
    )
    assert "offline composites" not in text and "not available here" not in text
    assert (
        ("streaming" in text and "imagenette images" in text)
        if name == "03_activations"
        else "imagenette:" in text
    )
