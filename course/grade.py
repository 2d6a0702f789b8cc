"""Grade many collected submissions in parallel, each in a forked child with a time and memory limit.

Usage: python course/grade.py SUBMITTED [--source notebooks] [--workers 2] [--timeout 120] [--memory-gb 2]
       [--out build/grades]   (make grade SUBMITTED=<dir> WORKERS=2)

SUBMITTED holds nbgrader's layout, <student>/<assignment>/<notebook>.ipynb. A grade needs only the
exercises, their check cells and what those read: from the teacher's source notebook the grader keeps
the cells that define a name a check or an exercise reads (transitively), takes only the solution cells
from the submission (matched by nbgrader's grade_id; a locked check cell cannot be edited away), and
runs that program in fast mode with one torch thread. Each worker process imports vizkit once, then
forks a child per submission: the child drops to the `nobody` user when the grader runs as root (so it
cannot read other submissions, the solutions or the gradebooks, which are root's), keeps only the pipe
its result goes back on, may allocate --memory-gb beyond what it inherits (RLIMIT_DATA), and is killed
at the time limit. A loop, a memory bomb, a crash or a read of a forbidden file costs that submission
its checks, with the reason in its feedback; the others go on. Each worker appends to its own gradebook
(JSON lines); the parent merges them into grades.csv and writes one feedback file per submitted
notebook.

What is not protected: a submission's own grade against code that tampers with the grader inside its own
process (nbgrader's autograder shares the kernel with the student's code in the same way).
"""

from __future__ import annotations

import argparse
import ast
import csv
import gc
import json
import multiprocessing as mp
import os
import re
import resource
import select
import signal
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
ENV = {
    "VIZKIT_FAST": "1",
    "VIZKIT_OFFLINE": "1",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",
    "VIZKIT_THREADS": "1",
}
STUB = "raise NotImplementedError()"


def _python(source: str) -> str:
    """A cell's source with IPython's magic and shell lines made `pass` (the grader runs plain Python)."""
    return re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.M)


def names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell defines, names it reads), read from its syntax tree (over-approximated: any use counts)."""
    defined, used = set(), set()
    for node in ast.walk(ast.parse(_python(source))):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else used).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return defined, used


def grader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def plan(source: nbformat.NotebookNode) -> list[dict]:
    """The cells a grade needs, in order: {"kind": "code"/"solution"/"check", "source", "grade_id", "points"}.
    Solution cells carry no source here: the student's goes in (so no solution reaches a child)."""
    cells = [(i, c) for i, c in enumerate(source.cells) if c.cell_type == "code"]
    meta = {i: grader_meta(c) for i, c in cells}
    wanted = {i for i, _ in cells if meta[i].get("solution") or meta[i].get("grade")}
    read = {i: names(c.source) for i, c in cells}
    todo = sorted(wanted)
    while todo:
        j = todo.pop()
        for name in read[j][1]:
            earlier = [i for i, _ in cells if i < j and name in read[i][0]]
            if earlier and earlier[-1] not in wanted:
                wanted.add(earlier[-1])
                todo.append(earlier[-1])
    out = []
    for i, c in cells:
        if i in wanted:
            kind = "solution" if meta[i].get("solution") else "check" if meta[i].get("grade") else "code"
            out.append({"kind": kind, "source": "" if kind == "solution" else c.source,
                        "grade_id": meta[i].get("grade_id", ""), "points": meta[i].get("points", 0)})  # fmt: skip
    return out


def program(steps: list[dict], submitted: Path) -> list[dict]:
    """The plan with the submission's solution cells filled in (a missing one: the unsolved stub)."""
    try:
        theirs = {grader_meta(c).get("grade_id"): c.source for c in nbformat.read(submitted, 4).cells}
    except Exception as error:  # not a notebook: every check scores 0, and says why
        theirs = {s["grade_id"]: f"raise RuntimeError({f'unreadable notebook: {error}'!r})" for s in steps}
    return [{**s, "source": theirs.get(s["grade_id"], STUB)} if s["kind"] == "solution" else s for s in steps]


def run_cells(cells: list[dict], scope: dict | None = None) -> list[dict]:
    """Execute the program in one namespace; per check cell its score and what it printed or raised."""
    import contextlib
    import io
    import traceback

    scope, results, pending = {"__name__": "__main__"} if scope is None else scope, [], ""
    for cell in cells:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                tree = ast.parse(_python(cell["source"]))
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                exec(compile(tree, "<cell>", "exec"), scope)
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), scope) if last else None
            score = cell["points"] if value is None else max(0.0, min(float(value), cell["points"]))
            message = out.getvalue()
            raised = False
        except BaseException as error:  # noqa: BLE001 - a student's cell may raise anything, SystemExit too
            score, raised = 0.0, True
            message = out.getvalue() + "".join(traceback.format_exception_only(type(error), error))
        if cell["kind"] != "check" and raised:  # the check after it says so first
            whose = (
                f"your cell {cell['grade_id']}" if cell["kind"] == "solution" else "a cell of the notebook"
            )
            pending += f"{whose} raised: {message.strip()[-1000:]}\n"
        if cell["kind"] == "check":
            results.append({"grade_id": cell["grade_id"], "points": cell["points"], "score": score,
                            "message": (pending + message).strip()[-3000:]})  # fmt: skip
            pending = ""
    return results


def warm_up(steps: list[dict], source: Path) -> tuple[dict, list[dict]]:
    """In the worker, before any child: run the plan's cells before its first exercise (the teacher's
    code) into a namespace every child starts from, and the rest once with the teacher's solutions in a
    namespace thrown away, so that what they import is imported (a child running as `nobody` may not be
    able to read the Python installation). -> (the namespace, the steps a child still runs)."""
    first = next((i for i, s in enumerate(steps) if s["kind"] == "solution"), len(steps))
    scope = {"__name__": "__main__"}
    run_cells(steps[:first], scope)
    solutions = {grader_meta(c).get("grade_id"): c.source for c in nbformat.read(source, 4).cells}
    rest = [
        {**s, "source": solutions[s["grade_id"]]} if s["kind"] == "solution" else s for s in steps[first:]
    ]
    run_cells(rest, dict(scope))
    del solutions, rest  # no solution stays in the worker's objects, which every child inherits
    gc.collect()
    return scope, steps[first:]


def _data_size() -> int:
    """This process's data segment in bytes (VmData: what RLIMIT_DATA counts)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))


def _child(cells: list[dict], scope: dict, pipe: int, memory: int, home: str) -> None:
    """In the forked child: keep only the result pipe, limit memory, drop privileges, run, report, exit."""
    os.dup2(pipe, 3)
    os.closerange(4, 65536)
    limit = _data_size() + memory  # what the child may allocate beyond what it inherits
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    os.chdir(home)
    os.environ.update(HOME=home, MPLCONFIGDIR=home, TMPDIR=home)
    try:
        report = json.dumps(run_cells(cells, scope)).encode()
    except BaseException as error:  # noqa: BLE001
        report = json.dumps({"error": repr(error)}).encode()
    with os.fdopen(3, "wb") as f:
        f.write(report)
    os._exit(0)


def grade_one(cells: list[dict], scope: dict, timeout: float, memory: int) -> tuple[list[dict] | None, str]:
    """Fork a child that runs the program; (its check results, "") or (None, why it gave none)."""
    home = tempfile.mkdtemp(prefix="grade-")
    if os.geteuid() == 0:
        os.chown(home, NOBODY, NOBODY)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(cells, scope, write_end, memory, home)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(read_end, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    timed_out = time.monotonic() >= deadline
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(read_end)
    if timed_out:
        return None, f"stopped after the time limit of {timeout:g} s (an endless loop?)"
    try:
        report = json.loads(b"".join(chunks))
    except ValueError:
        why = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit code {os.waitstatus_to_exitcode(status)}"
        )
        return (
            None,
            f"the grading process died ({why}) before it reported: a crash, or memory beyond the limit?",
        )
    return (None, f"the grader failed: {report['error']}") if isinstance(report, dict) else (report, "")


def _work(jobs: mp.Queue, done: mp.Queue, gradebook: Path, timeout: float, memory: int) -> None:
    """A worker process: import vizkit once (every child starts from it), then grade jobs until None."""
    os.environ.update(ENV)
    import vizkit  # noqa: F401  (the slow imports, done once per worker)

    warmed: dict[str, tuple[dict, list[dict]]] = {}
    while (job := jobs.get()) is not None:
        steps, path, key, source = job
        if source not in warmed:
            warmed[source] = warm_up(steps, Path(source))
        scope, rest = warmed[source]
        start = time.monotonic()
        results, why = grade_one(program(rest, Path(path)), scope, timeout, memory)
        if results is None:
            results = [{"grade_id": s["grade_id"], "points": s["points"], "score": 0.0, "message": why}
                       for s in steps if s["kind"] == "check"]  # fmt: skip
        row = {**key, "checks": results, "seconds": round(time.monotonic() - start, 2)}
        with open(gradebook, "a") as f:  # opened after the child is gone: no child holds it
            f.write(json.dumps(row) + "\n")
        done.put(row)


def submissions(submitted: Path, source: Path) -> list[tuple[Path, dict]]:
    """(path, {student, assignment, notebook}) of every submitted notebook that has a source notebook."""
    found = []
    for path in sorted(submitted.glob("*/*/*.ipynb")):
        student, assignment = path.parts[-3], path.parts[-2]
        if (source / path.name).exists() or (source / assignment / path.name).exists():
            found.append((path, {"student": student, "assignment": assignment, "notebook": path.stem}))
    return found


def feedback(row: dict) -> str:
    """A submission's feedback: its score, then each check's points and what it said."""
    total, got = sum(c["points"] for c in row["checks"]), sum(c["score"] for c in row["checks"])
    lines = [f"{row['student']} · {row['assignment']} · {row['notebook']}: {got:g} / {total:g} points", ""]
    for c in row["checks"]:
        lines += [
            f"[{c['score']:g} / {c['points']:g}] {c['grade_id']}",
            *("    " + m for m in c["message"].splitlines()),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submitted", type=Path)
    parser.add_argument("--source", type=Path, default=ROOT / "notebooks", help="the teacher's notebooks")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per submitted notebook")
    parser.add_argument(
        "--memory-gb", type=float, default=2.0, help="memory a submitted notebook may allocate"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "grades")
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm

    found = submissions(args.submitted, args.source)
    if not found:
        raise SystemExit(
            f"no <student>/<assignment>/<notebook>.ipynb under {args.submitted} matches {args.source}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    os.chmod(args.out, 0o700)
    plans, sources = {}, {}
    for path, key in found:
        src = (
            args.source / path.name
            if (args.source / path.name).exists()
            else args.source / key["assignment"] / path.name
        )
        plans.setdefault(path.name, plan(nbformat.read(src, 4)))
        sources[path.name] = str(src)
    ctx = mp.get_context("fork")
    jobs, done = ctx.Queue(), ctx.Queue()
    books = [args.out / f"gradebook-{w}.jsonl" for w in range(args.workers)]
    for book in books:
        book.unlink(missing_ok=True)
    workers = [ctx.Process(target=_work, args=(jobs, done, book, args.timeout, int(args.memory_gb * 2**30)))
               for book in books]  # fmt: skip
    for w in workers:
        w.start()
    for path, key in found:
        jobs.put((plans[path.name], str(path), key, sources[path.name]))
    for _ in workers:
        jobs.put(None)
    for _ in tqdm(range(len(found)), desc=f"grading with {args.workers} workers"):
        done.get()
    for w in workers:
        w.join()
    rows = [json.loads(line) for book in books if book.exists() for line in book.read_text().splitlines()]
    write(rows, args.out)
    print(f"{len(rows)} notebooks graded: {args.out / 'grades.csv'}, feedback in {args.out / 'feedback'}")
    return 0


def write(rows: list[dict], out: Path) -> None:
    """grades.csv (one row per student and notebook) and feedback/<student>/<assignment>/<notebook>.txt."""
    rows = sorted(rows, key=lambda r: (r["student"], r["assignment"], r["notebook"]))
    with open(out / "grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "notebook", "score", "max_score", "seconds"])
        for r in rows:
            w.writerow([r["student"], r["assignment"], r["notebook"], sum(c["score"] for c in r["checks"]),
                        sum(c["points"] for c in r["checks"]), r["seconds"]])  # fmt: skip
    for r in rows:
        path = out / "feedback" / r["student"] / r["assignment"] / f"{r['notebook']}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback(r))


if __name__ == "__main__":
    sys.exit(main())
