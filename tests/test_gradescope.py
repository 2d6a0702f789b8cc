"""The Gradescope autograder (course/gradescope.py), built for notebook 05 and run as Gradescope would:
setup.sh in a fresh virtual environment that sees the project's packages through a .pth file (what
--system-site-packages does for a base interpreter; the project's packages are in a venv), so torch is
not installed twice and nothing is downloaded (pip runs with no index); then run_autograder on a
correct, a wrong and an unsolved submission."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from test_grade import SOURCE, unsolved, with_solution  # noqa: E402


def test_the_bundle_grades_submissions_into_gradescopes_results(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "course" / "gradescope.py"), "build", "05", "--out", str(tmp_path)],
                   check=True, capture_output=True)  # fmt: skip
    root = tmp_path / "autograder"  # Gradescope's /autograder: the bundle unzipped into source/
    with zipfile.ZipFile(tmp_path / "autograder.zip") as z:
        z.extractall(root / "source")
        assert {
            "setup.sh",
            "run_autograder",
            "grade.py",
            "gradescope.py",
            "notebooks/05_saliency.ipynb",
        } <= set(z.namelist())
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )  # pip: the project's
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # the project's packages
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PIP_NO_INDEX": "1",
           "AUTOGRADER_ROOT": str(root)}  # fmt: skip
    setup = subprocess.run([str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    cases = {"correct": (with_solution("", ""), 1), "wrong": (with_solution(".abs().amax(dim=1)", ".amax(dim=1)"), 0),
             "unsolved": (unsolved(), 0)}  # fmt: skip
    for name, (nb, score) in cases.items():
        shutil.rmtree(root / "submission", ignore_errors=True)
        (root / "submission").mkdir()
        nbformat.write(nb, root / "submission" / SOURCE.name)
        done = subprocess.run(
            [str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        results = json.loads((root / "results" / "results.json").read_text())
        assert results["score"] == score and [t["max_score"] for t in results["tests"]] == [1], (
            name,
            results,
        )
        assert results["tests"][0]["name"] == "05_saliency · saliency_map_check", results
        phrase = {"correct": "pass", "wrong": "values differ", "unsolved": "not done yet"}[name]
        assert phrase in results["tests"][0]["output"], results
