"""The book's generated pages (tools/book.py): the front page's chapter cards and lecture map, read from
the notebooks, and the API page, read from vizkit's docstrings and its method registry."""

from __future__ import annotations

import ast
import html
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


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


def chapters(notebooks: Path, pictured: set[str]) -> str:
    """A card per notebook (title, what it teaches, its showcase figure where it was executed)."""
    cards = []
    for path in sorted(notebooks.glob("*.ipynb")):
        title, line = notebook_card(path)
        img = (
            f"<img src='_static/chapters/{path.stem}.png' alt='{html.escape(title)}'>"
            if path.stem in pictured
            else ""
        )
        cards.append(
            f"<a class='chapter-card' href='{path.stem}.html'>{img}<strong>{html.escape(title)}</strong>"
            f"<span>{html.escape(line)}</span></a>"
        )
    return "```{raw} html\n<div class='chapter-cards'>\n" + "\n".join(cards) + "\n</div>\n```\n"


def lecture_map(notebooks: Path) -> str:
    """Notebook 01's section "The lecture's map, once": which method computes what, in which notebook."""
    for cell in nbformat.read(next(notebooks.glob("01_*.ipynb")), as_version=4).cells:
        if cell.cell_type == "markdown" and "### The lecture's map" in cell.source:
            text = cell.source[cell.source.index("### The lecture's map") :].split("\n", 1)[1]
            return text.split("\nWhy look at all?")[0].strip() + "\n"  # its last paragraph points into 01
    raise ValueError('notebook 01 has no section "### The lecture\'s map"')


def module_summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split())


def api() -> str:
    """The API page: the method contract and registry (vizkit.methods), then every module's docstrings."""
    from vizkit.methods import METHODS, contract

    lines = [
        "# The package: API",
        "",
        "Generated from vizkit's docstrings and its method registry (`vizkit.METHODS`) when the book is built.",
        "",
        "## The method contract",
        "",
        contract(),
        "",
        "| name | function | paper | `layer=` | passes | resolution | map kind | networks |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in METHODS.values():
        lines.append(
            f"| {m.name} | `{m.fn.__name__}` | {m.paper} | {'required' if m.needs_layer else ''} | {m.passes} "
            f"| {m.resolution} | {m.kind} | {m.networks} |"
        )
    modules = sorted(p for p in (ROOT / "vizkit").glob("*.py") if p.name != "__init__.py")
    lines += ["", "## Modules", "", "| module | holds |", "| --- | --- |"]
    lines += [f"| {{py:mod}}`vizkit.{p.stem}` | {module_summary(p)} |" for p in modules]
    for p in modules:
        lines += ["", f"## `vizkit.{p.stem}`", "", "```{eval-rst}", f".. automodule:: vizkit.{p.stem}", "```"]
    return "\n".join(lines) + "\n"


def generated(notebooks: Path, pictured: set[str]) -> dict[str, str]:
    """Every generated page by its path in the staged source folder."""
    return {
        "_generated/chapters.md": chapters(notebooks, pictured),
        "_generated/lecture_map.md": lecture_map(notebooks),
        "api.md": api(),
    }
