"""The package's limits, kept by a test: a declared public surface (`__all__` in every module, no
private name imported across modules), no module over 400 lines, no function over 40 code lines,
no public function over 10 parameters, no notebook code cell over 20 lines, median cell <= 9 lines."""

import ast
import importlib
import inspect
import statistics
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parent.parent
MODULES = sorted((ROOT / "vizkit").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# where a limit would cost a lesson its readability, readability wins (say why)
MORE_PARAMETERS = {
    "optvis.ascent": "notebooks 08 and 10 teach each of its 11 arguments (lr, optimizer, transforms, "
    "projections, callback, seed, progress) by passing it by name; a settings object would hide them",
}


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def public_top_level(module: ast.Module) -> set[str]:
    """Functions, classes and constants a module defines at top level, without a leading underscore."""
    names = set()
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_module_declares_its_public_names(path):
    """__all__ lists what the module offers; a public name it defines and does not list is an error
    (make it private, or declare it)."""
    name = "vizkit" if path.name == "__init__.py" else f"vizkit.{path.stem}"
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{path.name} has no __all__"
    assert all(hasattr(module, n) for n in module.__all__), [
        n for n in module.__all__ if not hasattr(module, n)
    ]
    if path.name != "__init__.py":
        undeclared = public_top_level(tree(path)) - set(module.__all__)
        assert not undeclared, f"{path.name}: public but not in __all__: {sorted(undeclared)}"


# Names two modules may both declare: each shipped network's module (small_cnns, vit, fast_style) has
# its own weights folder, training record, input size, build, load and train, read as vit.load and
# small_cnns.load; and the drawing functions that plot offers from its helper modules (plot is where a
# notebook draws from).
SAME_NAME_ON_PURPOSE = {"WEIGHTS_DIR", "training_record", "SIZE", "build", "load", "train"}
FACADE = "plot"


def test_every_public_name_has_one_home():
    """A public name means one thing: no two modules declare it (`objectives.class_score` is the
    objective's only address; optvis, which optimises it, does not offer it again), apart from the
    names above and plot's re-exports of the drawing helpers it is split into."""
    homes: dict[str, list[str]] = {}
    for path in MODULES:
        if path.name != "__init__.py":
            module = importlib.import_module(f"vizkit.{path.stem}")
            for name in module.__all__:
                defined_in = getattr(getattr(module, name), "__module__", module.__name__)
                if not (path.stem == FACADE and defined_in != module.__name__):
                    homes.setdefault(name, []).append(path.stem)
    twice = {n: m for n, m in homes.items() if len(m) > 1 and n not in SAME_NAME_ON_PURPOSE}
    assert not twice, twice


def test_no_private_name_is_imported_across_modules():
    imports = [
        (path.name, alias.name)
        for path in MODULES
        for node in ast.walk(tree(path))
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("vizkit"))
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not imports, imports


def code_lines(fn: ast.FunctionDef, lines: list[str]) -> int:
    """The body after the docstring, blank and comment lines not counted."""
    body = fn.body
    if (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    if not body:
        return 0
    text = lines[body[0].lineno - 1 : fn.end_lineno]
    return sum(1 for line in text if line.strip() and not line.strip().startswith("#"))


def test_modules_and_functions_stay_small():
    too_long, too_big, too_many = [], [], []
    for path in MODULES:
        lines = path.read_text().splitlines()
        if len(lines) > 400:
            too_long.append(f"{path.name}: {len(lines)} lines")
        for node in ast.walk(tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(node, lines) > 40:
                too_big.append(f"{path.name}:{node.name} ({code_lines(node, lines)} lines)")
    for path in MODULES:
        module = importlib.import_module("vizkit" if path.name == "__init__.py" else f"vizkit.{path.stem}")
        for name in module.__all__:
            obj = getattr(module, name)
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # a re-export, checked where it is defined
            exempt = f"{path.stem}.{name}" in MORE_PARAMETERS
            if inspect.isfunction(obj) and len(inspect.signature(obj).parameters) > 10 and not exempt:
                too_many.append(f"{path.stem}.{name} ({len(inspect.signature(obj).parameters)} parameters)")
    assert not too_long, too_long
    assert not too_big, too_big
    assert not too_many, too_many


def test_notebook_cells_stay_short():
    """No code cell over 20 non-blank lines; the median cell over all notebooks at most 9."""
    sizes, long_cells = [], []
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, 4).cells):
            if cell.cell_type == "code":
                n = sum(1 for line in cell.source.splitlines() if line.strip())
                sizes.append(n)
                if n > 20:
                    long_cells.append(f"{path.name} cell {i}: {n} lines")
    assert not long_cells, long_cells
    assert statistics.median(sizes) <= 9, statistics.median(sizes)


def test_the_readme_stays_a_newcomers_page():
    """At most 12,000 bytes, no issue numbers, and the picture and pages it points to exist."""
    import re

    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12_000, f"README.md is {len(text.encode())} bytes: move detail to book/"
    assert not re.search(r"#\d", text), re.search(r".{30}#\d.{10}", text)[0]
    paths = re.findall(r"`((?:book|course|tools|tests|\.github)/[\w./-]+)`|\]\(([\w./-]+)\)", text)
    missing = [p for pair in paths for p in pair if p and not (ROOT / p).exists()]
    assert not missing, f"README.md points to files that do not exist: {missing}"
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([\w-]+)", text))
    assert named and named <= targets, f"README.md names make targets that do not exist: {named - targets}"
