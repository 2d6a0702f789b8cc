"""Execute every notebook top to bottom and render it to HTML under build/gallery/ (with an index).

Usage: python tools/gallery.py [NOTEBOOK ...]   (VIZKIT_FAST=1 for the quick version)
Each run also writes the figures as PNG files under build/gallery/png/, to look at one by one, and
every cell's printed text to build/gallery/<notebook>.out.txt (diff two runs to see what moved)."""

from __future__ import annotations

import base64
import html
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "gallery"


def render(path: Path) -> tuple[float, int]:
    """Execute one notebook in its folder, write its HTML and PNGs; return (seconds, figures)."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter().from_notebook_node(nb)
    (OUT / f"{path.stem}.html").write_text(body, encoding="utf-8")
    figures = 0
    for old in (OUT / "png").glob(f"{path.stem}_cell*.png"):
        old.unlink()
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                figures += 1
                (OUT / "png" / f"{path.stem}_cell{i:02d}_{figures:02d}.png").write_bytes(
                    base64.b64decode(png)
                )
    (OUT / f"{path.stem}.out.txt").write_text(printed(nb), encoding="utf-8")
    return seconds, figures


def printed(nb: nbformat.NotebookNode) -> str:
    """The text each code cell printed or returned (stdout and text/plain; stderr left out: progress bars)."""
    lines = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                lines.append(f"[{i:02d}] {output['text'].rstrip()}")
            elif output.get("output_type") in ("execute_result", "error"):
                text = output.get("data", {}).get("text/plain") or output.get("evalue", "")
                lines.append(f"[{i:02d}] {text.rstrip()}")
    return "\n".join(lines) + "\n"


def main(names: list[str]) -> None:
    (OUT / "png").mkdir(parents=True, exist_ok=True)
    paths = [ROOT / "notebooks" / n for n in names] if names else sorted((ROOT / "notebooks").glob("*.ipynb"))
    mode = "fast" if os.environ.get("VIZKIT_FAST", "0") not in ("", "0") else "full"
    for path in paths:
        seconds, figures = render(path)
        print(
            f"{path.name}: {seconds:.0f} s, {figures} figures -> build/gallery/{path.stem}.html", flush=True
        )
        (OUT / f"{path.stem}.txt").write_text(f"{mode} mode, {seconds:.0f} s, {figures} figures")
    rows = [
        f"<li><a href='{p.stem}.html'>{html.escape(p.stem)}</a> "
        f"({(p.with_suffix('.txt').read_text() if p.with_suffix('.txt').exists() else '')})</li>"
        for p in sorted(OUT.glob("*.html"))
        if p.stem != "index"
    ]
    (OUT / "index.html").write_text(
        f"<html><head><meta charset='utf-8'><title>vizkit gallery</title></head><body>"
        f"<h1>vizkit notebooks, executed</h1><ul>{''.join(rows)}</ul></body></html>",
        encoding="utf-8",
    )
    print(f"gallery: {OUT / 'index.html'}")


if __name__ == "__main__":
    main(sys.argv[1:])
