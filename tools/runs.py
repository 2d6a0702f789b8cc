"""Run one notebook top to bottom (nbclient) and check what it drew: used by the book and the seed sweep.

`run(path, out)` executes a notebook in its folder and writes, under `out`: every figure as a PNG
(`png/<notebook>_cellNN_KK.png`, the cell tagged `gallery` also as `png/<notebook>_best.png`), each code
cell's seconds, slowest first (`<notebook>.cells.txt`), the text each cell printed (`<notebook>.out.txt`,
diff two runs to see what moved) and the problems found (`<notebook>.problems.txt`): figures too wide
for the notebook column whose smallest text falls under 8 pt once scaled to it, warning or error text a
cell wrote, and the failing cell of a run that stopped (it is kept up to that cell)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

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
    with open(_os.environ["VIZKIT_FIGURE_PROBE"], "a") as f:
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
    except (
        Exception
    ) as error:  # the kernel did not start, or the client broke: this run stops, not the caller
        return f"the run stopped: {type(error).__name__}: {str(error)[:200]}"
    return ""


def failure(nb: nbformat.NotebookNode) -> str:
    """'cell N: Error: message' for the first cell with an error output (empty when none has one)."""
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = (output.get("evalue") or "").strip().splitlines()
                return f"cell {i}: {output.get('ename')}: {message[0][:200] if message else ''}"
    return ""


def run(path: Path, out: Path, env: dict) -> tuple[nbformat.NotebookNode, float, list[str]]:
    """Execute one notebook in its folder with the kernel environment `env`; write its PNGs and reports
    under `out`; return (the executed notebook, seconds, problems). A failing cell is the first problem."""
    (out / "png").mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    probe = out / f"{path.stem}.figures.jsonl"
    probe.unlink(missing_ok=True)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    start = time.perf_counter()
    # The widget state is kept while running (nbclient's Output-widget hook needs it: without it an
    # `interact` cell raises KeyError in the client and the run hangs), then dropped: the page is read
    # offline, where the widget manager (from a CDN) cannot load, so widgets show the PNG their display
    # carries (vizkit.explorers, the toolbox) or the static figure drawn before them.
    stopped = execute(nb, path, env={**env, "VIZKIT_FIGURE_PROBE": str(probe)}, store_widget_state=True)
    nb.metadata.pop("widgets", None)
    seconds = time.perf_counter() - start
    del nb.cells[0]
    stopped = stopped and (failure(nb) or stopped)  # its cell counted without the probe
    write_cell_seconds(nb, out / f"{path.stem}.cells.txt")
    save_pngs(nb, path.stem, out / "png")
    (out / f"{path.stem}.out.txt").write_text(printed(nb), encoding="utf-8")
    found = problems(nb, probe)
    if stopped:  # the error output is among the problems; this line says the run stopped there
        found.insert(0, f"stopped: {stopped}")
    (out / f"{path.stem}.problems.txt").write_text("\n".join(found) + "\n", encoding="utf-8")
    return nb, seconds, found


def save_pngs(nb: nbformat.NotebookNode, stem: str, folder: Path) -> int:
    """Every figure of an executed notebook as a PNG file, the first of a cell tagged `gallery` also as
    <stem>_best.png; returns how many."""
    for old in [*folder.glob(f"{stem}_cell*.png"), folder / f"{stem}_best.png"]:
        old.unlink(missing_ok=True)
    figures = 0
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                figures += 1
                name = folder / f"{stem}_cell{i:02d}_{figures:02d}.png"
                name.write_bytes(base64.b64decode(png))
                best = folder / f"{stem}_best.png"
                if "gallery" in cell.metadata.get("tags", []) and not best.exists():
                    shutil.copy(name, best)
    return figures


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


def kernel_env(fast: bool) -> dict:
    """The kernel's environment for a book run: this one, in fast or full mode, figures drawn inline."""
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "VIZKIT_FAST")}
    return {**env, "VIZKIT_FAST": "1"} if fast else env
