"""Keep the notebooks consistent: the Colab badge and setup cell (the repository URL lives here,
once), no stored outputs. `python tools/notebooks.py sync` rewrites them; `check` only reports."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO = "https://github.com/vizkit-course/vizkit"
BRANCH = "main"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def badge(path: Path) -> str:
    """Markdown of the "Open in Colab" badge for a notebook."""
    url = f"https://colab.research.google.com/github/{REPO.split('github.com/')[1]}/blob/{BRANCH}/notebooks/{path.name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def setup_source() -> str:
    """The first code cell of every notebook: installs vizkit on Colab, does nothing locally."""
    return (
        "# Setup. Locally `make lab` installed everything. On Colab this clones the repository and\n"
        "# pip-installs vizkit from it, keeping Colab's own torch and numpy. VIZKIT_REPO, VIZKIT_BRANCH\n"
        "# and VIZKIT_DIR choose another copy, branch or folder.\n"
        "import os, subprocess, sys\n"
        'if "google.colab" in sys.modules:\n'
        f'    repo = os.environ.get("VIZKIT_REPO", "{REPO}")\n'
        f'    branch = os.environ.get("VIZKIT_BRANCH", "{BRANCH}")\n'
        '    target = os.environ.get("VIZKIT_DIR", "/content/vizkit")\n'
        "    if not os.path.isdir(target):\n"
        '        clone = subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", branch, repo, target],\n'
        "                               capture_output=True, text=True)\n"
        "        if clone.returncode:\n"
        '            raise RuntimeError(f"Could not clone {repo} (branch {branch}) into {target}: "\n'
        '                               f"{clone.stderr.strip()}. Set VIZKIT_REPO / VIZKIT_BRANCH and rerun.")\n'
        "    %pip install -q {target}"
    )


# Tools, not lessons: badge, setup cell and no outputs, but no parameters, takeaways or exercises.
TOOLS = ("toolbox.ipynb",)
MAX_CELL_LINES = 20  # non-blank lines of a code cell: longer ones hide the idea (move plumbing to vizkit)


def problems(path: Path) -> list[str]:
    """What is out of line in one notebook (empty when it follows the conventions)."""
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    found = []
    if not cells or cells[0].cell_type != "markdown" or badge(path) not in cells[0].source:
        found.append("first cell must be markdown starting with the Colab badge")
    if len(cells) < 2 or cells[1].cell_type != "code" or cells[1].source != setup_source():
        found.append("second cell must be the setup cell")
    if any(c.get("outputs") or c.get("execution_count") for c in cells if c.cell_type == "code"):
        found.append("stored outputs or execution counts")
    for i, c in enumerate(cells):
        lines = sum(1 for line in c.source.splitlines() if line.strip())
        if c.cell_type == "code" and lines > MAX_CELL_LINES:
            found.append(f"code cell {i} has {lines} non-blank lines (at most {MAX_CELL_LINES})")
    if path.name in TOOLS:
        return found
    if not any("parameters" in c.metadata.get("tags", []) for c in cells if c.cell_type == "code"):
        found.append("no code cell tagged 'parameters'")
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    for word in ("What you will learn", "Takeaways", "Exercises"):
        if word not in text:
            found.append(f"no {word!r} section")
    return found + reference_problems(cells[0].source) + exercise_problems(cells)


def reference_problems(intro: str) -> list[str]:
    """Each entry of the introduction's **Papers.** paragraph (entries split by ';') links to its source."""
    start = intro.find("**Paper")
    if start < 0:
        return ["no **Papers.** paragraph in the first cell"]
    end = intro.find("\n\n", start)
    paragraph = intro[start : end if end > 0 else None].split("Lecture:")[0]
    return [
        f"reference without a link: {entry.strip()[:60]!r}"
        for entry in paragraph.split(";")
        if "](http" not in entry
    ]


def exercise_problems(cells: list) -> list[str]:
    """nbgrader conventions: each solution cell is followed by its check cell (id + '_check'), ids unique."""
    found = []
    meta = [c.metadata.get("nbgrader", {}) for c in cells]
    ids = [m["grade_id"] for m in meta if m]
    if len(ids) != len(set(ids)):
        found.append(f"nbgrader grade_ids repeat: {ids}")
    for cell, m in zip(cells, meta):
        has_region = "### BEGIN SOLUTION" in cell.source
        if has_region != bool(m.get("solution")) or cell.source.count(
            "### BEGIN SOLUTION"
        ) != cell.source.count("### END SOLUTION"):
            found.append(
                f"solution markers and nbgrader 'solution' metadata disagree in: {cell.source[:60]!r}"
            )
        if m.get("solution") and m["grade_id"] + "_check" not in ids:
            found.append(f"exercise {m['grade_id']!r} has no check cell {m['grade_id'] + '_check'!r}")
        if m.get("grade") and not (m.get("locked") and "check(" in cell.source):
            found.append(f"check cell {m['grade_id']!r} must be locked and call check(...)")
    if not any(m.get("solution") for m in meta):
        found.append("no exercise (an nbgrader solution cell)")
    return found


def sync(path: Path) -> None:
    """Rewrite the badge and setup cell and strip outputs."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    lines = [line for line in first.source.splitlines() if "colab-badge.svg" not in line]
    first.source = badge(path) + "\n\n" + "\n".join(lines).lstrip("\n")
    setup = nbformat.v4.new_code_cell(setup_source())
    if len(nb.cells) > 1 and nb.cells[1].cell_type == "code" and "google.colab" in nb.cells[1].source:
        setup.id = nb.cells[1].get("id", setup.id)  # keep the cell's id: no churn in git
        nb.cells[1] = setup
    else:
        nb.cells.insert(1, setup)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validator.normalize(nb)
    nbformat.write(nb, path)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if command == "sync":
        for path in paths:
            sync(path)
    bad = {p.name: problems(p) for p in paths}
    for name, found in bad.items():
        for problem in found:
            print(f"{name}: {problem}")
    return 1 if any(bad.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
