"""The student release made with nbgrader (tools/assignments.py), in fast mode.

For every notebook: the release holds no solution code; unsolved, it runs to the end with each check
reporting "not done yet" and 0 points; with the solutions pasted back, nbgrader's autograder gives
full marks (that copy is graded up to its last check cell: the rest of it is the source notebook,
which nbval runs whole); and a deliberately wrong solution makes its check fail, saying what differs.
"""

import importlib.util
import re
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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


def last_check(nb) -> int:
    """Index of the notebook's last check cell."""
    return max(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade"))


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
    """Release every notebook, hand in an unsolved and a solved copy, and autograde both with nbgrader."""
    course = tmp_path_factory.mktemp("course")
    release = assignments.release(NOTEBOOKS, course)
    for student in ("unsolved", "solved"):
        folder = course / "submitted" / student / "vizkit"
        folder.mkdir(parents=True)
        for path in NOTEBOOKS:
            nb = nbformat.read(release / path.name, as_version=4)
            if student == "solved":  # paste the solutions back into the release
                original = {
                    nbgrader_meta(c)["grade_id"]: c.source for c in solution_cells(nbformat.read(path, 4))
                }
                for cell in solution_cells(nb):
                    cell.source = original[nbgrader_meta(cell)["grade_id"]]
                # graded up to its last check: the rest is the source notebook, which nbval runs whole
                nb.cells = nb.cells[: last_check(nb) + 1]
            nbformat.write(nb, folder / path.name)
    with fast_mode():
        assignments.nbgrader("autograde", "vizkit", "--force", cwd=course)
    return course


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


def test_autograder_gives_full_marks_when_solved_and_none_when_unsolved(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gb:
        solved = gb.find_submission("vizkit", "solved")
        unsolved = gb.find_submission("vizkit", "unsolved")
        assert solved.max_score == len(WRONG)
        assert solved.score == solved.max_score, [(n.name, n.score) for n in solved.notebooks]
        assert unsolved.score == 0


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
def test_a_wrong_solution_fails_its_check_saying_what_differs(path, mistakes):
    nb = nbformat.read(path, as_version=4)
    nb.cells = nb.cells[: last_check(nb) + 1]
    for cell in solution_cells(nb):
        if nbgrader_meta(cell)["grade_id"] in mistakes:
            old, new, _ = mistakes[nbgrader_meta(cell)["grade_id"]]
            assert cell.source.count(old) == 1, old
            cell.source = cell.source.replace(old, new)
    with fast_mode():
        NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    checked = 0
    for cell in check_cells(nb):
        gid = nbgrader_meta(cell)["grade_id"][: -len("_check")]
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if gid not in mistakes:  # the correct solution still passes
            assert not errors and "pass:" in "".join(text_of(o) for o in cell.outputs), gid
            continue
        assert errors and errors[0].ename == "AssertionError", (gid, [text_of(o) for o in cell.outputs])
        message = errors[0].evalue
        assert "differs from" in message and "hint:" in message and mistakes[gid][2] in message, (
            gid,
            message,
        )
        checked += 1
    assert checked >= 1
