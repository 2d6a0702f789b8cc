"""The book and the seed sweep go on past a failing notebook and say which cell failed."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str):
    """Load a script of tools/ as a module (tools/ is not a package)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec = importlib.util.spec_from_file_location(f"vizkit_tools_{name}", ROOT / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "tools"))


def notebook(tmp_path: Path, *sources: str) -> Path:
    path = tmp_path / "99_try.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def test_a_failing_cell_is_named_and_the_run_reports_it(tmp_path):
    runs = tool("runs")
    path = notebook(tmp_path, "x = 1", "raise ValueError('the claim does not hold')", "x = 2")
    nb = nbformat.read(path, as_version=4)
    assert runs.execute(nb, path) == "cell 1: ValueError: the claim does not hold"
    assert runs.failure(nb) == "cell 1: ValueError: the claim does not hold"
    assert not nb.cells[2].get("outputs") and runs.failure(nbformat.v4.new_notebook()) == ""


def test_the_sweep_reports_failures_and_the_smallest_margin(tmp_path, monkeypatch):
    monkeypatch.delenv("VIZKIT_SEED", raising=False)
    sweep = tool("sweep")
    monkeypatch.setattr(sweep, "OUT", tmp_path)
    path = notebook(
        tmp_path, "import vizkit, os\nvizkit.expect('seeded', int(os.environ['VIZKIT_SEED']), below=2)"
    )
    results = [sweep.run_one(path, seed, 1) for seed in (0, 1, 2)]
    assert [r["failure"] for r in results[:2]] == ["", ""]
    assert results[2]["failure"].startswith("cell 0: AssertionError: seeded: 2 < 2, margin +0")
    assert [len(r["margins"]) for r in results] == [1, 1, 1]
    text = sweep.report(results)
    assert "1 failing run(s) of 3:" in text and "- 99_try.ipynb seed 2, 1 thread(s): cell 0:" in text
    row = next(line for line in text.splitlines() if line.startswith("| 99_try"))
    assert "| 2/3 |" in row and "seeded: 2 < 2" in row  # the smallest margin over the runs: seed 2's
    assert json.loads((tmp_path / "99_try.seed1.threads1.jsonl").read_text())["margin"] == 1
    assert "VIZKIT_SEED" not in os.environ  # the settings go to the kernel, not to this process


def test_prose_numbers_finds_a_number_nothing_checks(tmp_path, capsys):
    """tools/prose_numbers.py: a measured number in markdown with no check nearby is UNCHECKED (and
    fails --strict); the same number beside an assert, or with its source, passes; the notebooks held
    to it (STRICT) pass."""
    prose = tool("prose_numbers")
    claim = nbformat.v4.new_markdown_cell("The map hits the object on 87% of the pictures.")
    quote = nbformat.v4.new_markdown_cell("Zhang et al. (2016) report 87.5% on VOC.")
    for cells, unchecked in (
        ([claim], 1),
        ([quote], 0),
        ([claim, nbformat.v4.new_code_cell("assert hits > 0.8")], 0),
    ):
        path = tmp_path / "99_try.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
        statuses = [n.status for n in prose.numbers(path)]
        assert statuses.count("UNCHECKED") == unchecked, statuses
    prose.NOTEBOOKS = tmp_path
    nbformat.write(nbformat.v4.new_notebook(cells=[claim]), tmp_path / "99_try.ipynb")
    assert prose.main(["--strict", "99_try.ipynb"]) == 1
    prose.NOTEBOOKS = ROOT / "notebooks"
    assert prose.main(["--strict", *prose.STRICT]) == 0, capsys.readouterr().out
    assert prose.asserts_value("vizkit.expect('hits', h, at_least=0.85)", "85%")  # ASSERTED: by value
    assert not prose.asserts_value("vizkit.expect('hits', h, at_least=0.8)", "85%")
    assert not prose.asserts_value("print(0.85)", "85%") and prose.asserts_value("assert d < 0.15", "0.15")


def test_prose_numbers_by_value_or_from_the_full_mode_run(tmp_path, monkeypatch):
    """In ASSERTED notebooks a number is checked only by a check beside it that names it, or when its
    sentence (or its cell's first sentence) says it is from the full-mode run and a check sits beside it;
    BY_VALUE_ONLY notebooks (13) have only the first form."""
    prose = tool("prose_numbers")
    monkeypatch.setattr(prose, "ASSERTED", ("99_try.ipynb",))
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    claim = md("The map hits the object on 87% of the pictures.")
    full = md("In the full-mode run the map hits the object on 87% of the pictures.")
    preface = md(
        "What the table shows (numbers from a full-mode run):\n- the map hits the object on 87% of them."
    )
    other, named = code("assert hits > 0.8"), code("vizkit.expect('hits', hits, above=0.87 - 0.01)")
    path = tmp_path / "99_try.ipynb"

    def statuses(*cells):
        nbformat.write(nbformat.v4.new_notebook(cells=list(cells)), path)
        return [n.status for n in prose.numbers(path)]

    assert statuses(claim, other) == ["UNCHECKED"]  # a check beside it, about something else
    assert statuses(claim, named) == ["checked"]
    assert statuses(full, other) == ["full mode"] and statuses(preface, other) == ["full mode"]
    assert statuses(full) == ["UNCHECKED"]  # the full-mode form still needs a check beside it
    monkeypatch.setattr(prose, "BY_VALUE_ONLY", ("99_try.ipynb",))
    assert statuses(full, other) == ["UNCHECKED"] and statuses(full, named) == ["full mode"]


def test_the_book_reruns_a_notebook_only_when_it_or_the_package_changed(tmp_path, monkeypatch):
    book = tool("book")
    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")
    path = notebook(tmp_path, "print(6 * 7)")
    nb, record = book.executed(path, "fast", "package-1")
    assert not record["cached"] and "42" in nb.cells[0].outputs[0]["text"]
    assert book.executed(path, "fast", "package-1")[1]["cached"]  # same source, same package
    assert not book.executed(path, "fast", "package-2")[1]["cached"]  # vizkit/ changed
    path.write_text(path.read_text().replace("6 * 7", "6 * 8"))
    nb, record = book.executed(path, "fast", "package-2")  # the notebook changed
    assert not record["cached"] and "48" in nb.cells[0].outputs[0]["text"]
    monkeypatch.setattr(book, "ROOT", tmp_path)  # the digest reads ROOT/vizkit: a package of one file
    (tmp_path / "vizkit" / "__pycache__").mkdir(parents=True)
    (tmp_path / "vizkit" / "a.py").write_text("x = 1")
    before = book.package_digest()
    (tmp_path / "vizkit" / "__pycache__" / "a.pyc").write_bytes(b"compiled")
    assert book.package_digest() == before  # compiled files do not count
    (tmp_path / "vizkit" / "a.py").write_text("x = 2")
    assert book.package_digest() != before


def test_the_book_goes_on_past_a_failing_notebook_and_lists_it(tmp_path, monkeypatch):
    book = tool("book")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, source in (("01_bad", "raise ValueError('no')"), ("02_good", "x = 1")):
        nbformat.write(
            nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), folder / f"{name}.ipynb"
        )
    for name, value in (("NOTEBOOKS", folder), ("SRC", tmp_path / "src"), ("RUNS", tmp_path / "runs")):
        monkeypatch.setattr(book, name, value)
    monkeypatch.setattr(book.book_pages, "generated", lambda *args: {})
    failures = book.stage_notebooks(fast=False, execute=[])
    assert failures == ["01_bad.ipynb: cell 0: ValueError: no"]
    assert (tmp_path / "src" / "02_good.ipynb").exists() and (tmp_path / "src" / "01_bad.ipynb").exists()
    assert json.loads((tmp_path / "runs" / "full" / "01_bad.json").read_text())["failed"]
    assert not book.executed(folder / "01_bad.ipynb", "full", book.package_digest())[1]["cached"]  # run again


def test_the_book_drops_widgets_that_only_a_kernel_can_draw():
    book = tool("book")
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}}
    bar = nbformat.v4.new_output("display_data", {**widget, "text/plain": "  0%|          | 0/6"})
    explorer = nbformat.v4.new_output(
        "display_data", {**widget, "image/png": "iVBOR", "text/plain": "Explorer"}
    )
    text = nbformat.v4.new_output("stream", name="stdout", text="42\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("f()")])
    nb.cells[0].outputs = [bar, explorer, text]
    book.drop_live_widgets(nb)
    assert nb.cells[0].outputs == [explorer, text]
