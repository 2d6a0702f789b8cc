"""Grade many collected submissions in parallel, each in a forked child with a time and memory limit.

Usage: python course/grade.py SUBMITTED [--source notebooks] [--workers 2] [--timeout 120] [--memory-gb 2]
       [--out build/grades]   (make grade SUBMITTED=<dir> WORKERS=2)

SUBMITTED holds nbgrader's layout, <student>/<assignment>/<notebook>.ipynb. A grade needs only the
exercises, their check cells and what those read: from the teacher's source notebook the grader keeps the
cells that define a name a check or an exercise reads (transitively), takes only the solution cells from
the submission (matched by nbgrader's grade_id; a locked check cell cannot be edited away), and runs that
program in fast mode with one torch thread. The teacher's notebooks are read in a short-lived process, so
no solution is in the memory of the grader, its workers or their children (an exercise's cell is planned
as the release's stub). Each worker imports vizkit once, runs the teacher's cells before the first
exercise, then forks a child per submission: the child starts its own session, keeps only the pipe its
result goes back on, may allocate --memory-gb beyond what it inherits (RLIMIT_DATA), write files of at
most 100 MB and, as root, runs as a user id of its worker's own (no account, no files) with at most 64
processes and the grader's environment replaced by a short list; it is killed at the time limit, and after
it every process of that user id and its home are removed. As root the grader refuses teacher's notebooks
or submissions that other users can read. A loop, a memory bomb, a crash, a fork or a read of a forbidden
file costs that submission its checks, with the reason in its feedback; the others go on. Each worker
appends to its own gradebook (JSON lines); the parent merges them into grades.csv and writes one feedback
file per submitted notebook.

What is not protected: a submission's own grade against code that tampers with the grader inside its own
process (nbgrader's autograder shares the kernel with the student's code in the same way).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import json
import multiprocessing as mp
import os
import queue
import re
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534  # the children's group, and their user where no worker's own is given
UID_BASE = 100_000  # worker n of the grader with pid p: its children run as UID_BASE + 64 p + n (ids with no
# account, no files, no processes; distinct for graders running at once, which would otherwise kill each other's)
FILE_SIZE = 100 * 2**20  # the largest file a child may write
PROCESSES = 64  # processes (and threads) per children's user
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
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            used.add(node.target.id)  # n += 1 reads n too
        if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, ast.Store):
            base = node
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):  # model.fc = ..., cfg["lr"] = ...: changes (and reads) the object
                defined.add(base.id)
                used.add(base.id)
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
    A solution cell carries the release's stub (its solution lines replaced by `raise NotImplementedError()`,
    as nbgrader's release does), so no solution leaves the process that reads the teacher's notebook."""
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
            out.append({"kind": kind, "source": stub(c.source) if kind == "solution" else c.source,
                        "grade_id": meta[i].get("grade_id", ""), "points": meta[i].get("points", 0)})  # fmt: skip
    return out


def stub(source: str) -> str:
    """A solution cell as released: the lines between the solution markers replaced by the stub."""
    return re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", STUB, source, flags=re.S)


def program(steps: list[dict], submitted: Path) -> list[dict]:
    """The plan with the submission's solution cells filled in (a missing one: the release's stub)."""
    try:
        theirs = {grader_meta(c).get("grade_id"): c.source for c in nbformat.read(submitted, 4).cells}
    except Exception as error:  # not a notebook: every check scores 0, and says why
        theirs = {s["grade_id"]: f"raise RuntimeError({f'unreadable notebook: {error}'!r})" for s in steps}
    return [
        {**s, "source": theirs.get(s["grade_id"], s["source"])} if s["kind"] == "solution" else s
        for s in steps
    ]


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


def warm_up(steps: list[dict]) -> tuple[dict, list[dict]]:
    """In the worker, before any child: run the plan's cells before its first exercise (the teacher's code)
    into a namespace every child starts from, and the rest once, unsolved, in a copy thrown away, so that
    what the fallbacks and the checks import is imported (a child running as another user may not be able
    to read the Python installation). -> (the namespace, the steps a child still runs). What the unsolved run
    changes in objects the two namespaces share (the random state, say) carries into the children."""
    first = next((i for i, s in enumerate(steps) if s["kind"] == "solution"), len(steps))
    scope = {"__name__": "__main__"}
    run_cells(steps[:first], scope)
    run_cells(steps[first:], dict(scope))
    return scope, steps[first:]


def plans(sources: list[str]) -> list[list[dict]]:
    """plan() of each notebook, read in a forked process that exits after: the teacher's solutions never
    enter this one (nor the workers and children forked from it, whose memory would hold them)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as f:
                f.write(json.dumps([plan(nbformat.read(path, 4)) for path in sources]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _data_size() -> int:
    """This process's data segment in bytes (VmData: what RLIMIT_DATA counts)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))


def _child(cells: list[dict], scope: dict, pipe: int, memory: int, home: str, uid: int) -> None:
    """In the forked child: its own session, only the result pipe open, limits, another user (as root), a
    clean environment; run, report, exit (whatever happens, never back into the worker's code)."""
    try:
        os.setsid()
        os.dup2(pipe, 3)
        os.closerange(4, 65536)
        limit = _data_size() + memory  # what the child may allocate beyond what it inherits
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE, FILE_SIZE))
        if os.geteuid() == 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (PROCESSES, PROCESSES))
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(uid)
        os.chdir(home)
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ}
        os.environ.clear()  # no secret of the grader's environment reaches the student's code
        os.environ.update(keep, **ENV, HOME=home, MPLCONFIGDIR=home, TMPDIR=home)
        try:
            report = json.dumps(run_cells(cells, scope)).encode()
        except BaseException as error:  # noqa: BLE001
            report = json.dumps({"error": repr(error)}).encode()
        with os.fdopen(3, "wb") as f:
            f.write(report)
    finally:
        os._exit(0)


def grade_one(
    cells: list[dict], scope: dict, timeout: float, memory: int, uid: int = NOBODY
) -> tuple[list[dict] | None, str]:
    """Fork a child that runs the program as uid; (its check results, "") or (None, why it gave none).
    Afterwards nothing of the child is left: its process group, and as root every process of uid, are killed,
    and its home is removed."""
    home = tempfile.mkdtemp(prefix="grade-")
    if os.geteuid() == 0:
        os.chown(home, uid, NOBODY)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(cells, scope, write_end, memory, home, uid)
    os.close(write_end)
    chunks, deadline, status = [], time.monotonic() + timeout, None
    while time.monotonic() < deadline:  # read until the child closes the pipe
        ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(read_end, 1 << 16) if ready else b""
        if not chunk:
            break
        chunks.append(chunk)
    while (
        status is None and time.monotonic() < deadline
    ):  # then for it to exit (it may close the pipe and loop)
        done, code = os.waitpid(pid, os.WNOHANG)
        status = code if done else time.sleep(0.05)
    _kill_all(pid, uid)
    if status is None:
        _, _ = os.waitpid(pid, 0)
    os.close(read_end)
    shutil.rmtree(home, ignore_errors=True)
    if status is None:
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


def zero(step: dict, why: str) -> dict:
    """A check's result when its notebook gave none: 0 points, and why."""
    return {"grade_id": step["grade_id"], "points": step["points"], "score": 0.0, "message": why}


def _kill_all(pid: int, uid: int) -> None:
    """SIGKILL the child's process group and, as root, every process of uid (one that left the group too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if os.geteuid() != 0 or uid == 0:
        return
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            if proc.stat().st_uid == uid:
                os.kill(int(proc.name), signal.SIGKILL)


def _work(jobs: mp.Queue, done: mp.Queue, gradebook: Path, timeout: float, memory: int, uid: int) -> None:
    """A worker process: import vizkit once (every child starts from it), then grade jobs until None; its
    children run as uid (one per worker, so that two children never share a user)."""
    os.environ.update(ENV)
    import vizkit  # noqa: F401  (the slow imports, done once per worker)

    warmed: dict[str, tuple[dict, list[dict]]] = {}
    while (job := jobs.get()) is not None:
        steps, path, key = job
        if key["notebook"] not in warmed:
            warmed[key["notebook"]] = warm_up(steps)
        scope, rest = warmed[key["notebook"]]
        start = time.monotonic()
        results, why = grade_one(program(rest, Path(path)), scope, timeout, memory, uid)
        if results is None:
            results = [zero(s, why) for s in steps if s["kind"] == "check"]
        row = {**key, "checks": results, "seconds": round(time.monotonic() - start, 2)}
        with open(gradebook, "a") as f:  # opened after the child is gone: no child holds it
            f.write(json.dumps(row) + "\n")
        done.put(row)


def child_uid(worker: int) -> int:
    """The user id of worker `worker`'s children (as root): unique to this grader process and worker."""
    return UID_BASE + 64 * os.getpid() + worker


def _source(source: Path, assignment: str, name: str) -> Path:
    """The teacher's notebook `name`: in source, or in source/<assignment> (nbgrader's source folder)."""
    return source / name if (source / name).exists() else source / assignment / name


def readable_by_others(path: Path) -> bool:
    """True when a user other than its owner (and root) can reach path: every folder on the way lets
    others through, and path itself lets them read."""
    path = path.resolve()
    reachable = all(p.stat().st_mode & 0o001 for p in path.parents)
    return reachable and bool(path.stat().st_mode & 0o005)


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

    if not 1 <= args.workers <= 64 or args.timeout <= 0 or args.memory_gb <= 0:
        raise SystemExit("need 1 <= --workers <= 64, --timeout > 0 and --memory-gb > 0")
    found = submissions(args.submitted, args.source)
    if not found:
        raise SystemExit(
            f"no <student>/<assignment>/<notebook>.ipynb under {args.submitted} matches {args.source}"
        )
    if os.geteuid() == 0:
        for folder in (args.source, args.submitted):
            if readable_by_others(folder):
                raise SystemExit(
                    f"{folder} can be read by other users, so a submission could read it: keep the teacher's "
                    "notebooks and the submissions in a folder only root can enter (chmod 700 on it or a parent)"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    os.chmod(args.out, 0o700)
    names = sorted({path.name: key for path, key in found}.items())
    sources = [str(_source(args.source, key["assignment"], name)) for name, key in names]
    plan_of = dict(zip((name for name, _ in names), plans(sources)))
    ctx = mp.get_context("fork")
    jobs, done = ctx.Queue(), ctx.Queue()
    books = [args.out / f"gradebook-{w}.jsonl" for w in range(args.workers)]
    for book in books:
        book.unlink(missing_ok=True)
    memory = int(args.memory_gb * 2**30)
    workers = [ctx.Process(target=_work, args=(jobs, done, book, args.timeout, memory, child_uid(w)))
               for w, book in enumerate(books)]  # fmt: skip
    for w in workers:
        w.start()
    for path, key in found:
        jobs.put((plan_of[path.name], str(path), key))
    for _ in workers:
        jobs.put(None)
    for _ in tqdm(range(len(found)), desc=f"grading with {args.workers} workers"):
        while True:
            try:
                done.get(timeout=5)
                break
            except queue.Empty:
                if not any(w.is_alive() for w in workers):
                    raise SystemExit(
                        "every worker stopped before all submissions were graded: see above"
                    ) from None
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
