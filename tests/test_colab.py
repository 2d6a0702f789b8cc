"""The Colab setup cell, rehearsed: clone by URL, pip install (not editable, no constraints), run.

A fresh virtual environment gets only what Colab has before our cell runs (a kernel, nbclient).
Notebooks 01 and 12 then run from another directory with a stand-in `google.colab` module imported
at start-up, so the setup cell's Colab branch is taken: it clones this checkout (its committed
HEAD) by file:// URL and `%pip install`s it. The notebooks must import vizkit from the fresh
environment's site-packages, so missing package data (the fast-style weights of 12) would fail here.
Slow (an install of torch): `make test-colab` runs it; `make test` leaves it out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.colab

RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
nbformat.write(nb, sys.argv[2])
"""
WHERE = "import vizkit, json; print('VIZKIT_FILE=' + json.dumps(vizkit.__file__))"


def run(*cmd, **kw):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert done.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh environment with a kernel, a stand-in google.colab, and the setup cell's variables."""
    tmp = tmp_path_factory.mktemp("colab")
    venv = tmp / "venv"
    run(os.environ.get("VIZKIT_COLAB_PYTHON", sys.executable), "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "ipykernel", "nbclient", "nbformat")
    stub = tmp / "stub"
    (stub / "google" / "colab").mkdir(parents=True)
    (stub / "google" / "__init__.py").write_text("")
    (stub / "google" / "colab" / "__init__.py").write_text(
        '"""Stand-in: Colab imports google.colab at start-up."""\n'
    )
    (stub / "sitecustomize.py").write_text("import google.colab  # noqa: F401\n")
    branch = run("git", "-C", ROOT, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    env = {
        **os.environ,
        "PYTHONPATH": str(stub),
        "VIZKIT_REPO": ROOT.as_uri(),
        "VIZKIT_BRANCH": branch,
        "VIZKIT_DIR": str(tmp / "content" / "vizkit"),
        "VIZKIT_FAST": "1",
        "VIZKIT_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "VIZKIT_THREADS": os.environ.get("VIZKIT_THREADS", "2"),
    }
    env.pop("VIRTUAL_ENV", None)
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "runner.py").write_text(RUNNER)
    return python, env, Path(site), elsewhere


@pytest.mark.parametrize("name", ["01_filters", "12_fast_style_transfer"])
def test_notebook_runs_on_the_installed_package(colab, name):
    python, env, site, elsewhere = colab
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(WHERE))
    src, out = elsewhere / f"{name}.ipynb", elsewhere / f"{name}.out.ipynb"
    nbformat.write(nb, src)
    run(python, elsewhere / "runner.py", src, out, cwd=elsewhere, env=env, timeout=3600)
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    where = Path(json.loads(text.split("VIZKIT_FILE=")[1].splitlines()[0]))
    assert site in where.parents, f"vizkit came from {where}, not the fresh environment's {site}"
    assert ROOT not in where.parents
    setup_out = "".join(o.get("text", "") for o in executed.cells[1].outputs)
    assert "Could not clone" not in setup_out


def test_setup_cell_stops_with_one_clear_line_when_the_clone_fails(colab, tmp_path):
    python, env, _, elsewhere = colab
    nb = nbformat.read(ROOT / "notebooks" / "01_filters.ipynb", as_version=4)
    nb.cells = nb.cells[:2]
    src = elsewhere / "bad.ipynb"
    nbformat.write(nb, src)
    bad = {**env, "VIZKIT_REPO": (tmp_path / "no-such-repo").as_uri(), "VIZKIT_DIR": str(tmp_path / "clone")}
    done = subprocess.run(
        [str(python), str(elsewhere / "runner.py"), str(src), str(tmp_path / "o.ipynb")],
        cwd=elsewhere,
        env=bad,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    assert "Could not clone" in done.stderr + done.stdout and "VIZKIT_REPO" in done.stderr + done.stdout
