"""A Gradescope autograder for the series, from the same notebooks and the same grader as `make grade`.

Build:  python course/gradescope.py build [NOTEBOOK ...] [--out build/gradescope]
        -> build/gradescope/autograder.zip, to upload as a Gradescope "programming assignment" autograder:
           setup.sh        installs vizkit (the wheel of this checkout, in the zip) with pip on Gradescope's image
           run_autograder  grades /autograder/submission/*.ipynb into /autograder/results/results.json
           grade.py, gradescope.py, notebooks/*.ipynb   the grader and the teacher's notebooks (solutions
                           in: Gradescope keeps the autograder from students; run_autograder makes them
                           root's alone before any student code runs)
Run:    python gradescope.py run [ROOT]   (what run_autograder does; ROOT defaults to /autograder)

Each submitted notebook whose name matches a source notebook is graded as course/grade.py grades it (only the
exercises, their checks and what they read; a forked child with a time and memory limit, as `nobody`
when root); each check becomes one of Gradescope's tests, with its points and the check's output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import grade  # noqa: E402  (course/grade.py, beside this file here and in the bundle)

TIMEOUT, MEMORY = 300.0, 3 * 2**30  # per notebook: Gradescope's default machine has 6 GB
SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image (which has internet here).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install -q --upgrade pip
python3 -m pip install -q vizkit-*.whl opencv-python-headless nbformat
"""
RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission; the results go to $ROOT/results/results.json.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
chmod -R go-rwx "$ROOT/source/notebooks"   # the solutions: the graded code runs as nobody
python3 "$ROOT/source/gradescope.py" run "$ROOT"
"""


def build(notebooks: list[Path], out: Path) -> Path:
    """The bundle's folder and autograder.zip under out: setup.sh, run_autograder, the grader, the notebooks."""
    folder = out / "autograder"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "notebooks").mkdir(parents=True)
    for path in notebooks:
        shutil.copy(path, folder / "notebooks" / path.name)
    shutil.copy(HERE / "grade.py", folder)
    shutil.copy(HERE / "gradescope.py", folder)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(HERE.parent)],
        check=True,
    )
    for name, text in (("setup.sh", SETUP), ("run_autograder", RUN)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    archive = out / "autograder.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, path.relative_to(folder))
    return archive


def run(root: Path) -> dict:
    """Grade every submitted notebook that has a source; write and return Gradescope's results.json."""
    start = time.monotonic()
    os.environ.update(grade.ENV)
    import vizkit  # noqa: F401  (imported once, before the children fork)

    submitted = {p.name: p for p in (root / "submission").rglob("*.ipynb")}
    tests = []
    sources = sorted((root / "source" / "notebooks").glob("*.ipynb"))
    for source, steps in zip(sources, grade.plans([str(p) for p in sources])):  # read in a throwaway process
        checks = [s for s in steps if s["kind"] == "check"]
        if source.name not in submitted:
            why = f"no {source.name} in your submission (upload the notebook under its own name)"
            results = [grade.zero(s, why) for s in checks]
        else:
            scope, rest = grade.warm_up(steps)
            results, why = grade.grade_one(
                grade.program(rest, submitted[source.name]), scope, TIMEOUT, MEMORY
            )
            results = results if results is not None else [grade.zero(s, why) for s in checks]
        tests += [{"name": f"{source.stem} · {r['grade_id']}", "score": r["score"], "max_score": r["points"],
                   "output": r["message"], "visibility": "visible"} for r in results]  # fmt: skip
    report = {
        "score": sum(t["score"] for t in tests),
        "execution_time": round(time.monotonic() - start),
        "output": f"{len(tests)} checks in {len(submitted)} submitted notebook(s)",
        "tests": tests,
        "visibility": "visible",
        "stdout_visibility": "hidden",
    }
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("notebooks", nargs="*", help="names or number prefixes (05 07 ...); none: all")
    b.add_argument("--out", type=Path, default=HERE.parent / "build" / "gradescope")
    r = sub.add_parser("run")
    r.add_argument("root", nargs="?", type=Path, default=Path("/autograder"))
    args = parser.parse_args(argv)
    if args.command == "run":
        report = run(args.root)
        print(f"{report['score']:g} points; {args.root / 'results' / 'results.json'}")
        return 0
    every = sorted((HERE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    chosen = [p for p in every if not args.notebooks or any(p.name.startswith(n) for n in args.notebooks)]
    if not chosen:
        raise SystemExit(f"no notebook matches {args.notebooks}; choose from {[p.name for p in every]}")
    print(f"{build(chosen, args.out)}: {len(chosen)} notebook(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
