"""Student releases of the notebooks, made by nbgrader: `python tools/assignments.py [NOTEBOOK ...]`.

Builds an nbgrader course directory (default build/assignments/):
  source/<assignment>/   the notebooks as they are in notebooks/ (solutions in), Colab badge removed
  release/<assignment>/  what students get, from `nbgrader generate_assignment`: the lines between
                         ### BEGIN SOLUTION / ### END SOLUTION replaced by a stub that raises
                         NotImplementedError, outputs cleared, check cells locked and checksummed
  gradebook.db           the check cells and their points, for `nbgrader autograde`
NOTEBOOK: file names or number prefixes (05 07 ...); none means all thirteen. Needs nbgrader
(`pip install -e ".[teach]"`), an optional extra of vizkit.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
CONFIG = f"""c = get_config()
c.CourseDirectory.course_id = "vizkit"
c.ClearSolutions.code_stub = {{"python": {STUB!r}}}
c.ExecutePreprocessor.timeout = 600  # seconds per cell when autograding (a full-mode cell can take minutes)
"""


def select(names: list[str]) -> list[Path]:
    """Notebook paths for names or number prefixes ('05', '05_saliency.ipynb'); all for none."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return paths
    chosen = []
    for name in names:
        hits = [p for p in paths if p.name == name or p.name.startswith(name)]
        if len(hits) != 1:
            raise SystemExit(
                f"{name!r} matches {len(hits)} notebooks; use one of: " + ", ".join(p.name for p in paths)
            )
        chosen += hits
    return chosen


def write_source(paths: list[Path], source: Path) -> None:
    """Copy the notebooks into the course's source folder, without the Colab badge (it opens the solutions)."""
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        first.source = "\n".join(l for l in first.source.splitlines() if "colab-badge.svg" not in l).lstrip(
            "\n"
        )
        nbformat.write(nb, source / path.name)


def nbgrader(*args: str, cwd: Path) -> None:
    """Run an nbgrader command with this Python (its helper `alembic` sits next to it, maybe not on PATH)."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=cwd, env=env, check=True
    )


def release(paths: list[Path], course: Path, assignment: str = "vizkit") -> Path:
    """Make the course directory and the student release with nbgrader; returns the release folder."""
    if importlib.util.find_spec("nbgrader") is None:
        raise SystemExit('nbgrader is not installed: pip install -e ".[teach]" (or pip install nbgrader)')
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG)
    write_source(paths, course / "source" / assignment)
    nbgrader("generate_assignment", assignment, "--force", cwd=course)
    return course / "release" / assignment


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="file names or number prefixes; none: all")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "build" / "assignments", help="the course directory"
    )
    parser.add_argument("--assignment", default="vizkit", help="the nbgrader assignment name")
    args = parser.parse_args(argv)
    folder = release(select(args.notebooks), args.out.resolve(), args.assignment)
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    print(f"student release of {len(names)} notebooks in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
