"""The student release made with nbgrader (tools/assignments.py), in fast mode.

For every notebook: the release holds no solution code; unsolved, it runs to the end under nbgrader's
autograder with each check reporting "not done yet" and 0 points; with the solutions pasted back it gets
full marks; and a deliberately wrong solution makes its check fail, saying what differs. The solved and
the wrong copies are graded by make grade's grader (course/grade.py: the exercises, their checks and
what they read), which takes minutes less than nbgrader running each copy; nbgrader's own autograder
grades a solved notebook end to end in the course rehearsal (tests/test_course.py).
"""

import importlib.util
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("assignments", ROOT / "tools" / "assignments.py")
assignments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(assignments)
NOTEBOOKS = assignments.select([])
FAST = {"VIZKIT_FAST": "1", "VIZKIT_OFFLINE": "1", "MPLBACKEND": "Agg"}

# Realistic mistakes: (text of the solution, replacement, what the check must say). A second
# mistake for an exercise (SECOND_WRONG) is tried in a second run of the notebook.
WRONG = {
    "filter_tiles": ("return 0.5 + 0.5 * w / peak", "return w / peak", "values differ"),
    "neighbours": (
        "np.fill_diagonal(d, np.inf)",
        "pass",
        "values differ",
    ),  # distances: the point itself at 0
    "channel_iou": (
        "torch.quantile(a.flatten(), quantile)",  # a threshold per image
        "torch.quantile(a.flatten(1), quantile, dim=1)[:, None, None]",
        "yours is",
    ),
    "receptive_field": ("s - (pad // 2) * j", "s - pad * j", "[2]: yours is"),
    "occlusion_map": ("= 0.0    # grey", "= 1.0    # grey", "values differ"),
    "saliency_map": (".abs().amax(dim=1)", ".amax(dim=1)", "values differ"),
    "relu_backward": ("return g.clamp(min=0) * active", "return g * active", "[4]:"),
    "cam": ("classifier.weight[target]", "classifier.weight[0]", "values differ"),
    "grad_cam": ("alpha = dA.mean((2, 3))", "alpha = dA.sum((2, 3))", "times 49"),
    "class_image": ("x.grad / x.grad.abs().mean()", "x.grad", "values differ"),
    "fooling_image": ("x_fool += g / g.norm()", "x_fool += 0.5 * g / g.norm()", "values differ"),
    "fgsm": ("x_in.grad.sign()", "x_in.grad", "values differ"),
    "dream": ("a.backward(a)", "a.backward(torch.ones_like(a))", "values differ"),
    "inversion_loss": (" / (x.shape[-2] * x.shape[-1])", "", "yours is"),
    "gram_matrix": ("return F @ F.T / (H * W)", "return F @ F.T", "a scale or normalisation differs"),
    "train": ("opt.zero_grad()", "pass", "values differ"),
    # rises counted as negative drops
    "drop_and_increase": ("np.maximum(y - o, 0) / y", "(y - o) / y", "[0]: yours is"),
    # the decoder bias not subtracted before encoding
    "encode": ("(a / sae.scale - sae.b_dec)", "(a / sae.scale)", "values differ"),
    # the blocks multiplied in the wrong order: the first block's routing applied last
    "rollout": (
        "result = step if result is None else step @ result",
        "result = step if result is None else result @ step",
        "values differ",
    ),
}
SECOND_WRONG = {
    "receptive_field": (
        "r, s, j, n = r + (k - 1) * d * j, s - (pad // 2) * j, j * t, out",  # n never shrinks
        "r, s, j = r + (k - 1) * d * j, s - (pad // 2) * j, j * t",
        "[4][2]: yours is",
    ),
    "grad_cam": ("return torch.relu(torch.einsum(", "return (torch.einsum(", "values differ"),
    "class_image": ("x.clamp_(lo, hi)", "pass", "values differ"),
}


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_cells(nb) -> list:
    return [c for c in nb.cells if nbgrader_meta(c).get("solution")]


def check_cells(nb) -> list:
    return [c for c in nb.cells if nbgrader_meta(c).get("grade")]


def solution_lines(source: str) -> list[str]:
    """The code lines between the solution markers (blank lines dropped)."""
    regions = re.findall(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", source, flags=re.S)
    return [line.strip() for region in regions for line in region.splitlines() if line.strip()]


def text_of(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}"
    return output.get("data", {}).get("text/plain", "")


@contextmanager
def fast_mode():
    """Kernels inherit the environment: fast mode, offline, no display (restored afterwards)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAST.items():
            mp.setenv(key, value)
        yield


def test_every_notebook_has_checked_exercises_and_every_exercise_a_wrong_answer():
    ids = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        solutions, checks = solution_cells(nb), check_cells(nb)
        assert solutions and len(checks) == len(solutions), path.name
        assert [nbgrader_meta(c)["grade_id"] + "_check" for c in solutions] == [
            nbgrader_meta(c)["grade_id"] for c in checks
        ]
        assert all(c.source.startswith("check(") or "\ncheck(" in c.source for c in checks), path.name
        ids += [nbgrader_meta(c)["grade_id"] for c in solutions]
    assert sorted(ids) == sorted(WRONG)


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Release every notebook, hand in the unsolved release, and autograde it with nbgrader."""
    course = tmp_path_factory.mktemp("course")
    release = assignments.release(NOTEBOOKS, course)
    folder = course / "submitted" / "unsolved" / "vizkit"
    folder.mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copy(release / path.name, folder / path.name)
    with fast_mode():
        assignments.nbgrader("autograde", "vizkit", "--force", cwd=course)
    return course


@pytest.fixture(scope="session")
def fast_graded(tmp_path_factory) -> dict:
    """{(student, notebook stem): the grader's row}: the solved notebooks ("solved") and every wrong run
    (its id), graded by course/grade.py in a folder only its owner can enter."""
    spec = importlib.util.spec_from_file_location("grade", ROOT / "course" / "grade.py")
    grade = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grade)
    course = tmp_path_factory.mktemp("fast-course")
    os.chmod(course, 0o700)
    (course / "source").mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, course / "source" / path.name)
        (course / "submitted" / "solved" / "vizkit").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, course / "submitted" / "solved" / "vizkit" / path.name)
    for run in wrong_runs():
        path, mistakes = run.values
        nb = nbformat.read(path, as_version=4)
        for cell in solution_cells(nb):
            if nbgrader_meta(cell)["grade_id"] in mistakes:
                old, new, _ = mistakes[nbgrader_meta(cell)["grade_id"]]
                assert cell.source.count(old) == 1, old
                cell.source = cell.source.replace(old, new)
        (course / "submitted" / run.id / "vizkit").mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / run.id / "vizkit" / path.name)
    out = course / "grades"
    assert grade.main([str(course / "submitted"), "--source", str(course / "source"), "--workers", "1",
                       "--timeout", "300", "--out", str(out)]) == 0  # fmt: skip
    rows = [
        json.loads(line) for book in out.glob("gradebook-*.jsonl") for line in book.read_text().splitlines()
    ]
    return {(r["student"], r["notebook"]): r for r in rows}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_release_has_no_solution_code(graded, path):
    source = nbformat.read(path, as_version=4)
    release = nbformat.read(graded / "release" / "vizkit" / path.name, as_version=4)
    text = "\n".join(c.source for c in release.cells)
    assert "BEGIN SOLUTION" not in text and "colab-badge" not in text
    elsewhere = re.sub(
        r"### BEGIN SOLUTION.*?### END SOLUTION", "", "\n".join(c.source for c in source.cells), flags=re.S
    )
    lines = [l for c in solution_cells(source) for l in solution_lines(c.source) if l not in elsewhere]
    assert len(lines) >= 2
    for line in lines:  # every solution line that is not also written elsewhere in the notebook is gone
        assert line not in text, f"solution line left in the release: {line!r}"
    for cell in solution_cells(release):
        assert "# YOUR CODE HERE\n" in cell.source and "raise NotImplementedError()" in cell.source
    assert [c.source for c in check_cells(release)] == [c.source for c in check_cells(source)]
    assert all(nbgrader_meta(c)["locked"] for c in check_cells(release))
    assert not any(c.get("outputs") for c in release.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_unsolved_release_runs_to_the_end(graded, path):
    nb = nbformat.read(graded / "autograded" / "unsolved" / "vizkit" / path.name, as_version=4)
    errors = [
        text_of(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    executed = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count for c in executed), "a cell was not executed"
    for cell in check_cells(nb):
        out = "".join(text_of(o) for o in cell.outputs)
        assert "not done yet" in out and out.rstrip().endswith("0.0"), out


def test_full_marks_when_solved_and_none_when_unsolved(graded, fast_graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gb:
        unsolved = gb.find_submission("vizkit", "unsolved")
        assert unsolved.max_score == len(WRONG) and unsolved.score == 0
    solved = [fast_graded["solved", path.stem]["checks"] for path in NOTEBOOKS]
    assert sum(c["points"] for checks in solved for c in checks) == len(WRONG)
    assert all(c["score"] == c["points"] for checks in solved for c in checks), solved


def wrong_runs() -> list:
    """pytest params (notebook, mistakes): every notebook with its first mistakes, then those with second ones."""
    runs = [pytest.param(path, WRONG, id=f"{path.stem}-first") for path in NOTEBOOKS]
    for path in NOTEBOOKS:
        ids = {nbgrader_meta(c)["grade_id"] for c in solution_cells(nbformat.read(path, as_version=4))}
        if ids & set(SECOND_WRONG):
            runs.append(
                pytest.param(
                    path, {i: m for i, m in SECOND_WRONG.items() if i in ids}, id=f"{path.stem}-second"
                )
            )
    return runs


@pytest.mark.parametrize("path, mistakes", wrong_runs())
def test_a_wrong_solution_fails_its_check_saying_what_differs(fast_graded, request, path, mistakes):
    run = request.node.callspec.id
    checked = 0
    for check in fast_graded[run, path.stem]["checks"]:
        gid, message = check["grade_id"][: -len("_check")], check["message"]
        if gid not in mistakes:  # the correct solution still passes
            assert check["score"] == check["points"] and "pass:" in message, (gid, message)
            continue
        # the check's own error comes last (a cell between exercise and check may have failed on it first)
        assert check["score"] == 0 and "AssertionError: " in message, (gid, message)
        assert "differs from" in message and "hint:" in message and mistakes[gid][2] in message, (
            gid,
            message,
        )
        checked += 1
    assert checked >= 1
