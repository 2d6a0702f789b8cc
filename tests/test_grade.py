"""make grade (course/grade.py): about 20 synthetic submissions of notebook 05 graded in parallel, each
with its known grade: correct, realistic mistakes, unsolved, an endless loop, a memory bomb, a crash, a
reader of other people's files, a notebook that is not one, and the plan of what a grade needs."""

import csv
import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("grade", ROOT / "course" / "grade.py")
grade = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grade)
SOURCE = ROOT / "notebooks" / "05_saliency.ipynb"
SOLUTION = "x_in = x.clone().requires_grad_(True)"


def with_solution(body_from: str, body_to: str, whole: str | None = None) -> nbformat.NotebookNode:
    """Notebook 05 with its solution cell edited: one replacement in it, or a whole new source."""
    nb = nbformat.read(SOURCE, 4)
    cell = next(c for c in nb.cells if grade.grader_meta(c).get("solution"))
    assert whole is not None or body_from in cell.source
    cell.source = whole if whole is not None else cell.source.replace(body_from, body_to)
    return nb


def unsolved() -> nbformat.NotebookNode:
    """Notebook 05 as released: the solution's lines replaced by nbgrader's stub."""
    nb = nbformat.read(SOURCE, 4)
    cell = next(c for c in nb.cells if grade.grader_meta(c).get("solution"))
    cell.source = re.sub(
        r"### BEGIN SOLUTION.*### END SOLUTION", "raise NotImplementedError()", cell.source, flags=re.S
    )
    return nb


def submissions(course: Path) -> dict[str, tuple[nbformat.NotebookNode | str, float, str]]:
    """student -> (their notebook, or raw text; the expected score; a phrase their feedback must hold)."""
    secret = course / "source" / "05_saliency.ipynb"  # root's, as the gradebooks and others' submissions
    function = "def saliency_map(model, x, target):\n"
    return {
        **{f"correct-{i}": (with_solution("", ""), 1, "pass") for i in range(6)},
        "no-abs": (with_solution(".abs().amax(dim=1)", ".amax(dim=1)"), 0, "values differ"),
        "no-max": (with_solution(".abs().amax(dim=1)", ".abs().mean(dim=1)"), 0, "values differ"),
        "probability": (with_solution("score = model(x_in)[:, target]", "score = model(x_in).softmax(1)[:, target]"), 0, "differs"),
        "no-clone": (with_solution(SOLUTION, "x_in = x"), 0, "Error"),
        **{f"unsolved-{i}": (unsolved(), 0, "not done yet") for i in range(4)},
        "loop": (with_solution("", "", "while True:\n    pass\n"), 0, "time limit"),
        "bomb": (with_solution("", "", "hog = []\nwhile True:\n    hog.append(bytearray(10**8))\n"), 0, "MemoryError"),
        "crash": (with_solution("", "", "import os\nos.kill(os.getpid(), 9)\n"), 0, "died (signal 9)"),
        "exit": (with_solution("", "", "raise SystemExit(0)\n"), 0, "SystemExit"),
        "reader": (with_solution("", "", f"print(open({str(secret)!r}).read()[:100])\n" + function + "    return 0\n"), 0,
                   "PermissionError" if os.geteuid() == 0 else "differs"),
        "not-a-notebook": ("this is not JSON", 0, "unreadable notebook"),
        "closes-its-pipe": (with_solution("", "", "import os\nos.close(3)\nwhile True:\n    pass\n"), 0, "time limit"),
        "forks": (with_solution("", "", "import subprocess\nsubprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                                + function + "    return 0\n"), 0, "differs"),
        "environment": (with_solution("", "", "import os\nraise RuntimeError(f\"secret: {os.environ.get('VIZKIT_TEST_SECRET')}\")\n"),
                        0, "RuntimeError: secret: None"),
    }  # fmt: skip


def test_the_plan_keeps_what_the_checks_read_and_no_solution():
    steps = grade.plan(nbformat.read(SOURCE, 4))
    kinds = [s["kind"] for s in steps]
    assert kinds.count("check") == 1 and kinds.count("solution") == 1 and len(steps) <= 5
    solution = [s["source"] for s in steps if s["kind"] == "solution"][0]
    assert grade.STUB in solution and SOLUTION not in solution  # the release's stub: no solution leaves
    assert any("load_model" in s["source"] for s in steps)  # the model the check reads
    assert not any("GrabCut" in s["source"] or "class_map_explorer" in s["source"] for s in steps)


def test_names_read_and_defined_by_a_cell():
    defined, used = grade.names(
        "import numpy as np\nfrom a.b import c as d\nx = f(y)\ndef g(z):\n    %magic\n    return z\n"
    )
    assert {"np", "d", "x", "g"} <= defined and {"f", "y"} <= used
    defined, used = grade.names("n += 1\nmodel.fc = None\ncfg['lr'] = 0.1\n")
    assert {"n", "model", "cfg"} <= used and {
        "model",
        "cfg",
    } <= defined  # they change what earlier cells made


def test_twenty_submissions_graded_in_parallel_each_as_expected(tmp_path):
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    shutil.copy(SOURCE, course / "source")
    expected = submissions(course)
    for student, (nb, _, _) in expected.items():
        folder = course / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        path = folder / SOURCE.name
        path.write_text(nb) if isinstance(nb, str) else nbformat.write(nb, path)
    os.chmod(course, 0o700)  # what a child (user nobody, when run as root) must not read
    out = course / "grades"
    args = [str(course / "submitted"), "--source", str(course / "source"), "--workers", "2",
            "--timeout", "20", "--memory-gb", "1.5", "--out", str(out)]  # fmt: skip
    os.environ["VIZKIT_TEST_SECRET"] = "s3cret"  # the grader's environment: no child may see it
    try:
        assert grade.main(args) == 0
    finally:
        del os.environ["VIZKIT_TEST_SECRET"]
    with open(out / "grades.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(expected)
    for student, (_, score, phrase) in expected.items():
        text = (out / "feedback" / student / "ps1" / "05_saliency.txt").read_text()
        assert float(rows[student]["score"]) == score and float(rows[student]["max_score"]) == 1, (
            student,
            text,
        )
        assert phrase in text, (student, text)
    assert len(list(out.glob("gradebook-*.jsonl"))) == 2
    # nothing of the children's users is left: no process (the "forks" sleeper), no home
    if os.geteuid() == 0:
        uids = (grade.child_uid(0), grade.child_uid(1))
        left = owned_by(Path("/proc").glob("[0-9]*"), uids)
        homes = owned_by(Path(tempfile.gettempdir()).glob("grade-*"), uids)
        assert left == [] and homes == []  # (another grader may be running beside this test: its own are its)


def owned_by(paths, uids) -> list[Path]:
    """The paths owned by one of uids (one that vanishes while we look is not)."""
    found = []
    for path in paths:
        try:
            if path.stat().st_uid in uids:
                found.append(path)
        except FileNotFoundError:
            pass
    return found


def test_a_source_others_can_read_is_refused_as_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root's children change user; as another user the check does not apply")
    (tmp_path / "submitted" / "a" / "ps1").mkdir(parents=True)
    shutil.copy(SOURCE, tmp_path / "submitted" / "a" / "ps1")
    with pytest.raises(SystemExit, match="can be read by other users"):
        grade.main(
            [str(tmp_path / "submitted"), "--source", str(ROOT / "notebooks"), "--out", str(tmp_path / "g")]
        )
