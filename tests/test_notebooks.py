"""Every notebook follows the series' conventions (nbval executes them; this checks their shape)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("nbtools", ROOT / "tools" / "notebooks.py")
nbtools = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtools)
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_filters.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_conventions(path):
    assert nbtools.problems(path) == []


def test_problems_are_detected(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1 + 1"), nbformat.v4.new_code_cell("x = 1\n" * 21)]
    )
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    path = tmp_path / "99_bad.ipynb"
    nbformat.write(nb, path)
    found = nbtools.problems(path)
    assert any("badge" in p for p in found) and any("outputs" in p for p in found)
    assert any("Takeaways" in p for p in found)
    assert "code cell 1 has 21 non-blank lines (at most 20)" in found


def test_exercise_problems_are_detected():
    import nbformat

    solution = nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    )
    found = nbtools.exercise_problems([solution])
    assert any("metadata disagree" in p for p in found)
    solution.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "f"}
    assert any("no check cell 'f_check'" in p for p in nbtools.exercise_problems([solution]))
    checker = nbformat.v4.new_code_cell("check(f, 1)")
    checker.metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": "f_check", "locked": True}
    assert nbtools.exercise_problems([solution, checker]) == []
    checker.metadata["nbgrader"]["locked"] = False
    assert any("must be locked" in p for p in nbtools.exercise_problems([solution, checker]))


def test_reference_problems_are_detected():
    linked = "**Papers.** Zeiler & Fergus, [*Visualizing*](https://arxiv.org/abs/1311.2901) (2013)"
    assert nbtools.reference_problems(linked + ". Lecture: CS231n lecture 12.") == []
    unlinked = linked + "; Springenberg et al., *Striving for Simplicity* (2015).\n\nMore."
    assert nbtools.reference_problems(unlinked) == [
        "reference without a link: 'Springenberg et al., *Striving for Simplicity* (2015).'"
    ]
    assert nbtools.reference_problems("# 99 · no papers") == ["no **Papers.** paragraph in the first cell"]
