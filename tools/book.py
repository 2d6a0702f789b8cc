"""Build the series as a website under build/book/ (Sphinx + MyST-NB, the Sphinx Book Theme), offline.

Usage: python tools/book.py                  every notebook executed in full mode (`make book`)
       python tools/book.py --fast 07        fast mode: only the notebooks named are executed (`make book-fast`)

Executed notebooks are cached in build/book-runs/<mode>/ under a key made of the notebook's source and
every file of vizkit/: a notebook runs again only when it or the package changed. Each run also leaves
there its figures as PNG files, each cell's seconds, what it printed and its problems (tools/runs.py:
figures too wide for the column, text under 8 pt, warning text, a failing cell). A notebook that fails is
shown up to its failing cell, the others are still built, and every failure is listed at the end; the
build exits non-zero when a notebook failed or a problem was found. Pages are staged in build/book-src/
(the files of book/, the notebooks, the pages generated here: the front page's chapters and lecture map,
the API) and only rewritten when they change, so that Sphinx reads again only what changed."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import book_pages  # noqa: E402  (sibling scripts, not a package)
from runs import kernel_env, run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SRC = ROOT / "build" / "book-src"
OUT = ROOT / "build" / "book"
RUNS = ROOT / "build" / "book-runs"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def package_digest() -> str:
    """sha256 of every file of vizkit/ (code and shipped weights), by path and content."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "vizkit").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def environment() -> str:
    """What else a run depends on: the VIZKIT_ settings, the checks' code (tools/runs.py), the versions
    of the packages the notebooks compute with, and the data at hand (cut-outs, a cached image set)."""
    from importlib import metadata

    from vizkit import data
    from vizkit.image_sets import data_dir

    packages = (
        "torch",
        "torchvision",
        "timm",
        "numpy",
        "scipy",
        "matplotlib",
        "scikit-learn",
        "scikit-image",
    )
    facts = {
        "settings": sorted((k, v) for k, v in os.environ.items() if k.startswith("VIZKIT_")),
        "runs.py": hashlib.sha256((ROOT / "tools" / "runs.py").read_bytes()).hexdigest(),
        "versions": [metadata.version(name) for name in packages],
        "objects": data.object_names(),
        "image sets": sorted(p.name for p in data_dir().glob("*")) if data_dir().exists() else [],
    }
    return json.dumps(facts)


def cache_key(path: Path, mode: str, package: str) -> str:
    """What a cached run depends on: the notebook's source, the package (and environment()), the mode."""
    return hashlib.sha256(path.read_bytes() + package.encode() + mode.encode()).hexdigest()


def executed(path: Path, mode: str, package: str) -> tuple[nbformat.NotebookNode, dict]:
    """The notebook with its outputs, from the cache when its key matches, else run now (and cached
    when it ran through); and its record: seconds, problems, whether it came from the cache."""
    folder = RUNS / mode
    cached, record_file = folder / path.name, folder / f"{path.stem}.json"
    key = cache_key(path, mode, package)
    if cached.exists() and record_file.exists():
        record = json.loads(record_file.read_text())
        if record["key"] == key and not record["failed"]:
            return nbformat.read(cached, as_version=4), {**record, "cached": True}
    print(f"{path.name}: running ({mode} mode) ...", flush=True)
    nb, seconds, problems = run(path, folder, kernel_env(fast=mode == "fast"))
    failed = bool(problems) and problems[0].startswith("stopped: ")
    record = {"key": key, "seconds": round(seconds, 1), "problems": problems, "failed": failed}
    nbformat.write(nb, cached)
    record_file.write_text(json.dumps(record, indent=1))
    return nb, {**record, "cached": False}


STAGED: set[Path] = set()  # every file this build staged; anything else in build/book-src/ is removed


def write_if_changed(target: Path, content: bytes) -> None:
    """Write a staged file only when its content differs, so Sphinx sees it unchanged otherwise."""
    STAGED.add(target)
    if not target.exists() or target.read_bytes() != content:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def stage_static() -> None:
    """book/ (the pages written by hand, conf.py), the course's README, and MathJax (make book-install)."""
    for source in (ROOT / "book").rglob("*"):
        if source.is_file() and "node_modules" not in source.parts and source.name != "package-lock.json":
            write_if_changed(SRC / source.relative_to(ROOT / "book"), source.read_bytes())
    write_if_changed(SRC / "course.md", (ROOT / "course" / "README.md").read_bytes())
    mathjax = ROOT / "book" / "node_modules" / "mathjax" / "es5"
    if not (mathjax / "tex-chtml.js").exists():
        raise SystemExit(f"no MathJax in {mathjax}: run `make book-install` (npm ci in book/)")
    for part in ("tex-chtml.js", "input", "output", "ui", "a11y", "sre", "adaptors"):
        for source in [mathjax / part] if (mathjax / part).is_file() else (mathjax / part).rglob("*"):
            if source.is_file():
                write_if_changed(
                    SRC / "_static" / "mathjax" / source.relative_to(mathjax), source.read_bytes()
                )


def drop_live_widgets(nb: nbformat.NotebookNode) -> None:
    """Remove the outputs that only a live kernel can draw: a widget view without a picture of its own
    (a progress bar's text would show it frozen where it started). The explorers and the toolbox keep
    theirs: each carries a PNG of its default view, which the page shows."""
    widget = "application/vnd.jupyter.widget-view+json"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.outputs if not (widget in o.get("data", {}) and "image/png" not in o["data"])
            ]


def stage_notebooks(fast: bool, execute: list[str]) -> list[str]:
    """Every notebook into build/book-src/: executed ones with their outputs; returns the failures."""
    mode, package = ("fast" if fast else "full"), package_digest() + environment()
    failures, flagged, best = [], 0, {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if fast and not any(path.name.startswith(name) for name in execute):
            nb = nbformat.read(path, as_version=4)
        else:
            nb, record = executed(path, mode, package)
            source = "cache" if record["cached"] else "run"
            print(f"{path.name}: {record['seconds']:.0f} s ({source}, {mode} mode)", flush=True)
            for problem in record["problems"]:
                print(f"  {problem}", flush=True)
            stops = [p[len("stopped: ") :] for p in record["problems"] if p.startswith("stopped: ")]
            failures += [f"{path.name}: {stop}" for stop in stops]
            errors = sum(": error: " in p for p in record["problems"])
            flagged += sum(not p.startswith("stopped: ") and ": error: " not in p for p in record["problems"])
            flagged += max(0, errors - len(stops))  # an error in a run that went on (its stop is listed)
            png = RUNS / mode / "png" / f"{path.stem}_best.png"
            best[path.stem] = png if png.exists() else None
        # The badge's picture is served by the book itself (a page loads nothing from elsewhere).
        nb.cells[0].source = nb.cells[0].source.replace(BADGE, "_static/colab-badge.svg")
        drop_live_widgets(nb)
        write_if_changed(SRC / path.name, nbformat.writes(nb).encode())
    for stem, png in best.items():
        if png is not None:
            write_if_changed(SRC / "_static" / "chapters" / f"{stem}.png", png.read_bytes())
    pages = book_pages.generated(NOTEBOOKS, {s for s, p in best.items() if p is not None})
    for name, text in pages.items():
        write_if_changed(SRC / name, text.encode())
    return failures + ([f"{flagged} problem(s) listed above"] if flagged else [])


def sphinx() -> int:
    """sphinx-build from build/book-src/ into build/book/ (doctrees kept: only changed pages are read); a
    warning fails the build, after every page is written."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-d", str(ROOT / "build" / "book-doctrees"),
               str(SRC), str(OUT)]  # fmt: skip
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fast mode, no execution but the notebooks named")
    parser.add_argument("notebooks", nargs="*", help="with --fast: names or prefixes of notebooks to execute")
    args = parser.parse_args(argv)
    if args.notebooks and not args.fast:
        parser.error("notebooks are named only with --fast (the full build executes every one)")
    unknown = [n for n in args.notebooks if not any(NOTEBOOKS.glob(f"{n}*.ipynb"))]
    if unknown:
        parser.error(
            f"no notebook starts with {unknown}: {sorted(p.stem for p in NOTEBOOKS.glob('*.ipynb'))}"
        )
    start = time.perf_counter()
    stage_static()
    failures = stage_notebooks(args.fast, args.notebooks)
    for stale in {p for p in SRC.rglob("*") if p.is_file()} - STAGED:  # a page or notebook removed or renamed
        stale.unlink()
    code = sphinx()
    print(f"book: {OUT / 'index.html'} ({time.perf_counter() - start:.0f} s)")
    if failures:
        print("not clean:\n  " + "\n  ".join(failures))
    return 1 if failures or code else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
