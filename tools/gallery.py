"""Execute every notebook top to bottom and render it to HTML under build/gallery/ (with an index).

Usage: python tools/gallery.py [NOTEBOOK ...]   (VIZKIT_FAST=1 for the quick version)
Each run also writes the figures as PNG files under build/gallery/png/, to look at one by one, and
every cell's printed text to build/gallery/<notebook>.out.txt (diff two runs to see what moved).
Formulas render offline from a local MathJax (jupyter-server-mathjax). The run reports, per
notebook, figures too wide for the notebook column or with text under 8 pt there, and any
warning or error text a cell wrote (build/gallery/<notebook>.problems.txt); it exits non-zero if
there is any. A notebook whose cell fails is rendered up to that cell and the run goes on to the
next; the failures are listed again at the end, each with its failing cell."""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "gallery"
COLUMN_PX = 1000  # a notebook's output column at the default dpi
MIN_POINTS = 8.0  # smallest readable text once a figure is scaled to the column
# Runs first in the kernel: records, for every figure drawn, its width in pixels and its smallest text.
PROBE = """
import json as _json, os as _os
from matplotlib.backend_bases import FigureCanvasBase as _Canvas
_draw = _Canvas.print_figure
def _probe(self, *args, **kwargs):
    fig = self.figure
    dpi = kwargs.get("dpi") or fig.dpi
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))
             if hasattr(t, "get_text") and t.get_text().strip() and t.get_visible()]
    with open(_os.environ["VIZKIT_GALLERY_PROBE"], "a") as f:
        f.write(_json.dumps({"width": fig.get_figwidth() * dpi, "smallest": min(sizes, default=99)}) + "\\n")
    return _draw(self, *args, **kwargs)
_Canvas.print_figure = _probe
"""


def write_cell_seconds(nb, out: Path) -> None:
    """Each code cell's run time (nbclient's timestamps), slowest first: where a notebook's minutes go."""
    rows = []
    for i, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            start, end = (
                datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))
                for k in ("iopub.execute_input", "shell.execute_reply")
            )
            rows.append(((end - start).total_seconds(), i))
    out.write_text("".join(f"cell {i:2d}: {s:6.1f} s\n" for s, i in sorted(rows, reverse=True)))


def execute(nb: nbformat.NotebookNode, path: Path, env: dict | None = None, **options) -> str:
    """Run a notebook in its folder, in place; '' when every cell ran, else what stopped it (see failure).

    env: the kernel's whole environment (default: this process's)."""
    client = NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}, **options
    )
    try:
        client.execute(**({"env": env} if env is not None else {}))
    except (CellExecutionError, CellTimeoutError, DeadKernelError):
        return failure(nb) or "the kernel died or a cell timed out"
    return ""


def failure(nb: nbformat.NotebookNode) -> str:
    """'cell N: Error: message' for the first cell with an error output (empty when none has one)."""
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = (output.get("evalue") or "").strip().splitlines()
                return f"cell {i}: {output.get('ename')}: {message[0][:200] if message else ''}"
    return ""


def render(path: Path) -> tuple[float, int, list[str]]:
    """Execute one notebook in its folder, write its HTML and PNGs; return (seconds, figures, problems).

    A notebook that fails is rendered up to the failing cell; the failure is its first problem."""
    nb = nbformat.read(path, as_version=4)
    probe = OUT / f"{path.stem}.figures.jsonl"
    probe.unlink(missing_ok=True)
    os.environ["VIZKIT_GALLERY_PROBE"] = str(probe)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    start = time.perf_counter()
    # The widget state is kept while running (nbclient's Output-widget hook needs it: without it an
    # `interact` cell raises KeyError in the client and the run hangs), then dropped: the page is read
    # offline, where the widget manager (from a CDN) cannot load, so widgets show the PNG their display
    # carries (vizkit.explorers, the toolbox) or the static figure drawn before them.
    stopped = execute(nb, path, store_widget_state=True)
    nb.metadata.pop("widgets", None)
    seconds = time.perf_counter() - start
    del nb.cells[0]
    write_cell_seconds(nb, OUT / f"{path.stem}.cells.txt")
    body, _ = HTMLExporter(
        mathjax_url="mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
    ).from_notebook_node(nb)
    (OUT / f"{path.stem}.html").write_text(body, encoding="utf-8")
    figures = 0
    for old in (OUT / "png").glob(f"{path.stem}_cell*.png"):
        old.unlink()
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                figures += 1
                name = f"{path.stem}_cell{i:02d}_{figures:02d}.png"
                (OUT / "png" / name).write_bytes(base64.b64decode(png))
                if (
                    "gallery" in cell.metadata.get("tags", [])
                    and not (OUT / "png" / f"{path.stem}_best.png").exists()
                ):
                    shutil.copy(OUT / "png" / name, OUT / "png" / f"{path.stem}_best.png")
    (OUT / f"{path.stem}.out.txt").write_text(printed(nb), encoding="utf-8")
    found = problems(nb, probe)
    if stopped:  # the error output is among the problems; this line says the run stopped there
        found.insert(0, f"stopped: {stopped}")
    (OUT / f"{path.stem}.problems.txt").write_text("\n".join(found) + "\n", encoding="utf-8")
    return seconds, figures, found


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


def problems(nb: nbformat.NotebookNode, probe: Path) -> list[str]:
    """Warnings or errors written by cells, and figures unreadable at the notebook column's width."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            if output.get("name") == "stderr" and ("Warning" in text or "Error" in text):
                found.append(f"cell {i}: warning text: {text.strip().splitlines()[0][:160]}")
            if output.get("output_type") == "error":
                found.append(f"cell {i}: error: {output.get('ename')}: {output.get('evalue', '')[:160]}")
    drawn = [
        i
        for i, cell in enumerate(nb.cells)
        for o in cell.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    figures = probe.read_text().splitlines() if probe.exists() else []
    for k, line in enumerate(figures, start=1):
        fig = json.loads(line)
        scale = min(1.0, COLUMN_PX / fig["width"])
        where = f" (cell {drawn[k - 1]})" if len(drawn) == len(figures) else ""  # the k-th picture shown
        if fig["width"] > COLUMN_PX * 1.02 and fig["smallest"] * scale < MIN_POINTS:
            found.append(
                f"figure {k}{where}: {fig['width']:.0f} px wide, shown at {scale:.0%}: its smallest text "
                f"({fig['smallest']:.0f} pt) reads as {fig['smallest'] * scale:.1f} pt"
            )
    return found


def notebook_card(path: Path) -> tuple[str, str]:
    """(title, the first sentence of its introduction) from the notebook's first markdown cell."""
    lines = nbformat.read(path, as_version=4).cells[0].source.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("# ")]
    if not heads:
        return path.stem, ""
    paragraph = []
    for line in lines[heads[0] + 1 :]:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    first = " ".join(paragraph).replace("*", "").replace("`", "").split(". ")[0].rstrip(".")
    return lines[heads[0]][2:].strip(), first + "." if first else ""


def write_index() -> None:
    """build/gallery/index.html: per notebook its title, a line of what it teaches, its best figure."""
    cards = []
    for page in sorted(OUT.glob("*.html")):
        if page.stem == "index":
            continue
        source = ROOT / "notebooks" / f"{page.stem}.ipynb"
        title, line = notebook_card(source) if source.exists() else (page.stem, "")
        run = page.with_suffix(".txt").read_text() if page.with_suffix(".txt").exists() else ""
        thumb = OUT / "png" / f"{page.stem}_best.png"
        img = f"<img src='png/{thumb.name}' alt='{html.escape(title)}'>" if thumb.exists() else ""
        cards.append(
            f"<a class='card' href='{page.name}'>{img}<h2>{html.escape(title)}</h2>"
            f"<p>{html.escape(line)}</p><p class='run'>{html.escape(run)}</p></a>"
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}"
        ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:18px}"
        ".card{display:block;border:1px solid #ddd;border-radius:8px;padding:12px;text-decoration:none;color:inherit}"
        ".card:hover{border-color:#888}.card img{width:100%;height:200px;object-fit:contain;background:#fafafa}"
        ".card h2{font-size:1.05em;margin:.6em 0 .3em}.card p{margin:.2em 0;font-size:.9em}.run{color:#777}"
    )
    (OUT / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>vizkit gallery</title>"
        f"<style>{style}</style></head><body><h1>vizkit: the notebooks, executed</h1>"
        "<p>Visualizing and understanding convolutional networks (CS231n lecture 12), run top to bottom.</p>"
        f"<div class='cards'>{''.join(cards)}</div></body></html>",
        encoding="utf-8",
    )


def copy_mathjax() -> None:
    """A local MathJax under build/gallery/mathjax/, so that formulas render without a network."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (OUT / "mathjax" / "MathJax.js").exists():
        shutil.copytree(source, OUT / "mathjax", dirs_exist_ok=True)


def main(names: list[str]) -> int:
    (OUT / "png").mkdir(parents=True, exist_ok=True)
    copy_mathjax()
    paths = [ROOT / "notebooks" / n for n in names] if names else sorted((ROOT / "notebooks").glob("*.ipynb"))
    mode = "fast" if os.environ.get("VIZKIT_FAST", "0") not in ("", "0") else "full"
    flagged, stopped = 0, []
    for path in paths:
        (OUT / "png" / f"{path.stem}_best.png").unlink(missing_ok=True)
        seconds, figures, found = render(path)
        flagged += len(found)
        stopped += [f"{path.name}: {p[len('stopped: ') :]}" for p in found if p.startswith("stopped: ")]
        print(
            f"{path.name}: {seconds:.0f} s, {figures} figures -> build/gallery/{path.stem}.html", flush=True
        )
        for problem in found:
            print(f"  {problem}", flush=True)
        (OUT / f"{path.stem}.txt").write_text(f"{mode} mode, {seconds:.0f} s, {figures} figures")
    write_index()
    print(f"gallery: {OUT / 'index.html'}" + (f"; {flagged} problem(s) listed above" if flagged else ""))
    if stopped:
        print(f"{len(stopped)} notebook(s) stopped at a failing cell:\n  " + "\n  ".join(stopped))
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
