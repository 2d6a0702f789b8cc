"""List the measured numbers that notebooks' markdown cells state, and whether a cell near each asserts it.

Usage: python tools/prose_numbers.py [NOTEBOOK ...] [--strict]
A number here is a percentage (82 %, 0.5%) or a decimal (0.19, 2e-3 excluded); years, section numbers,
sizes and counts are left alone. Each is reported as
- "checked": a code cell within two cells before or after holds an assert, vizkit.expect or check (in
  the notebooks of ASSERTED, all of them today: the code cell right before or after checks, and names
  the number itself, "85%" as 85 or 0.85);
- "quoted": the sentence names its source (et al., a year, a paper or a repository);
- "full mode": the sentence says the number is from the full-mode run (a check that holds in both
  modes must still sit nearby: in ASSERTED notebooks, in the code cell right before or after; notebook
  13, BY_VALUE_ONLY, has no such form);
- "UNCHECKED": none of these.
--strict exits 1 if any number is UNCHECKED (tests/test_tools.py runs it on the notebooks listed in
STRICT, so a new notebook cannot state a number that nothing checks)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NamedTuple

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
STRICT = tuple(sorted(p.name for p in NOTEBOOKS.glob("[0-9]*.ipynb")))  # every lesson is held to it
NOT_YET: tuple[str, ...] = ()  # notebooks still held only to a check within two cells
ASSERTED = tuple(
    n for n in STRICT if n not in NOT_YET
)  # every number asserted, by value, in the code cell beside it
BY_VALUE_ONLY = ("13_which_explanation.ipynb",)  # no "full-mode run" form: every number by value
NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?\s?%|\d*\.\d+(?![\d.]*\s?(?:px|x\b)))")
CHECKS = re.compile(r"\bassert\b|vizkit\.expect\(|\bexpect\(|\bcheck\(|\bclaim\(")  # claim: notebook 13's
SOURCE = re.compile(r"et al\.|\b(19|20)\d\d\b|published|paper|documentation|repository|\(quoted")
FULL = re.compile(r"full[- ]mode|full(?:-mode)? run")
NEAR = 2  # cells either side


class Number(NamedTuple):
    notebook: str
    cell: int
    text: str
    sentence: str
    status: str


def sentences(markdown: str) -> tuple[list[str], list[str]]:
    """The markdown's sentences and its table rows (code spans and formulas dropped: not claims)."""
    text = re.sub(r"`[^`]*`|\$[^$]*\$", " ", markdown)
    rows = [line for line in text.splitlines() if line.lstrip().startswith("|")]
    prose = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))
    split = re.split(r"(?<=[.!?])\s+|\n\s*[-*]\s+|\n\n|\n#+ ", prose)
    return [s.strip().replace("\n", " ") for s in split if s.strip()], rows


def asserts_value(code: str, number: str) -> bool:
    """The code cell checks something and names the number: "85%" as 85 or 0.85, "0.15" as 0.15."""
    value = number.replace(" ", "").rstrip("%")
    forms = {value} | ({f"{float(value) / 100:g}"} if number.endswith("%") else set())
    named = any(re.search(rf"(?<![\d.]){re.escape(f)}(?!\d)", code) for f in forms)
    return bool(CHECKS.search(code)) and named


def numbers(path: Path) -> list[Number]:
    """Every number the notebook's markdown states, with its status."""
    cells = nbformat.read(path, as_version=4).cells
    found = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        near = cells[max(0, i - NEAR) : i + NEAR + 1]
        checked = any(c.cell_type == "code" and CHECKS.search(c.source) for c in near)
        beside = [c.source for c in cells[max(0, i - 1) : i + 2] if c.cell_type == "code"]
        prose, rows = sentences(cell.source)
        cell_full = bool(prose) and bool(
            FULL.search(prose[0])
        )  # "What the table shows (numbers from a full-mode run ...):"
        table_quoted = any(
            SOURCE.search(s) for s in prose
        )  # a table is quoted when its cell names the source
        for sentence in prose + rows:
            for match in NUMBER.finditer(sentence):
                if re.match(r"\s*(bootstrap )?intervals?\b", sentence[match.end() :]):
                    continue  # an interval's level ("95% intervals") is a choice, not a measurement
                quoted = SOURCE.search(sentence) or (sentence in rows and table_quoted)
                if (
                    path.name in ASSERTED
                ):  # by value; or (not in 13) said to be from the full-mode run, checked beside
                    by_value = any(asserts_value(code, match.group(1)) for code in beside)
                    full_run = path.name not in BY_VALUE_ONLY and (cell_full or bool(FULL.search(sentence)))
                    checked = by_value or (full_run and any(CHECKS.search(code) for code in beside))
                status = "quoted" if quoted else "checked" if checked else "UNCHECKED"
                if status == "checked" and (cell_full or FULL.search(sentence)):
                    status = "full mode"
                found.append(Number(path.name, i, match.group(1), sentence[:160], status))
    return found


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    names = [a for a in argv if not a.startswith("--")]
    paths = [NOTEBOOKS / n for n in names] if names else sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    rows = [n for p in paths for n in numbers(p)]
    for n in rows:
        print(f"{n.notebook[:2]} [{n.cell}] {n.status:9s} {n.text:>7s}  {n.sentence}")
    unchecked = [n for n in rows if n.status == "UNCHECKED"]
    print(f"{len(rows)} numbers in {len(paths)} notebook(s), {len(unchecked)} unchecked")
    return 1 if strict and unchecked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
