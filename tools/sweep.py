"""The seed sweep (`make test-seeds`): every notebook in fast mode at several run seeds and thread counts.

Usage: python tools/sweep.py [NOTEBOOK ...] [--seeds 1 2 3] [--threads 1 2]   (notebooks first: the options take lists)

Each notebook runs top to bottom (nbclient) once per (VIZKIT_SEED, torch threads): the notebooks
draw every seeded picture and noise from `vizkit.seed(k)`, so a run seed moves all of them. Every
check that fails under any setting is listed with its cell; every `vizkit.expect` check records its
margin (VIZKIT_MARGINS), and the report gives each notebook's smallest margin and where it was.
At one thread two notebooks run side by side (one per core); at two threads, one at a time.
Writes build/sweep/report.md; exits non-zero when any check failed. Not part of CI (see the ledger).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import execute  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "sweep"


def run_one(path: Path, seed: int, threads: int) -> dict:
    """Execute one notebook under one setting; return its outcome and the margins it recorded."""
    margins = OUT / f"{path.stem}.seed{seed}.threads{threads}.jsonl"
    margins.unlink(missing_ok=True)
    env = dict(
        os.environ, VIZKIT_FAST="1", VIZKIT_OFFLINE="1", MPLBACKEND="Agg", VIZKIT_SEED=str(seed),
        VIZKIT_THREADS=str(threads), OMP_NUM_THREADS=str(threads), VIZKIT_MARGINS=str(margins),
    )  # fmt: skip
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    stopped = execute(nb, path, env=env)
    rows = [json.loads(line) for line in margins.read_text().splitlines()] if margins.exists() else []
    return {
        "notebook": path.name, "seed": seed, "threads": threads, "seconds": time.perf_counter() - start,
        "failure": stopped, "margins": rows,
    }  # fmt: skip


def report(results: list[dict]) -> str:
    """Markdown: the failures, then per notebook its runs, slowest run and smallest relative margin."""
    lines = ["# Seed sweep", ""]
    failed = [r for r in results if r["failure"]]
    lines += [f"{len(failed)} failing run(s) of {len(results)}:", ""]
    lines += [f"- {r['notebook']} seed {r['seed']}, {r['threads']} thread(s): {r['failure']}" for r in failed]
    lines += ["", "| notebook | runs passed | slowest (s) | checks | smallest margin (relative) | where |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name in sorted({r["notebook"] for r in results}):
        runs = [r for r in results if r["notebook"] == name]
        rows = [(m, r) for r in runs for m in r["margins"]]
        passed = sum(not r["failure"] for r in runs)
        smallest, where = "-", "-"
        if rows:
            m, r = min(rows, key=lambda mr: mr[0]["relative"])
            smallest = f"{m['margin']:+.3g} ({m['relative']:+.0%})"
            where = f"{m['what']}: {m['value']:.4g} {m['op']} {m['bound']:.4g}, seed {r['seed']}, {r['threads']} thr."
        checks = len({m["what"] for m, _ in rows})
        slowest = max(r["seconds"] for r in runs)
        lines.append(f"| {name} | {passed}/{len(runs)} | {slowest:.0f} | {checks} | {smallest} | {where} |")
    return "\n".join(lines + ["", *every_check(results)]) + "\n"


def every_check(results: list[dict]) -> list[str]:
    """Markdown: each check over all runs (values seen, smallest margin), thinnest relative margin first."""
    seen: dict = {}
    for r in results:
        for m in r["margins"]:
            seen.setdefault((r["notebook"], m["what"]), []).append(m)
    rows = sorted(seen.items(), key=lambda kv: min(m["relative"] for m in kv[1]))
    lines = ["## Every check, thinnest margin first", "",
             "| notebook | check | runs | values | bound | smallest margin (relative) |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (name, what), ms in rows:
        worst = min(ms, key=lambda m: m["relative"])
        values = f"{min(m['value'] for m in ms):.4g} to {max(m['value'] for m in ms):.4g}"
        lines.append(f"| {name[:2]} | {what} | {len(ms)} | {values} | {worst['op']} {worst['bound']:.4g} | "
                     f"{worst['margin']:+.3g} ({worst['relative']:+.0%}) |")  # fmt: skip
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "notebooks", nargs="*", help="names or prefixes under notebooks/, e.g. 09 (default: all)"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    every = sorted((ROOT / "notebooks").glob("*.ipynb"))
    paths = [p for p in every if not args.notebooks or any(p.name.startswith(n) for n in args.notebooks)]
    if not paths:
        parser.error(f"no notebook starts with {args.notebooks}: they are {[p.name for p in every]}")
    results = []
    for threads in args.threads:
        jobs = [(p, s, threads) for s in args.seeds for p in paths]
        with ProcessPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) // threads)) as pool:
            for r in pool.map(run_one, *zip(*jobs)):
                status = f"FAILED {r['failure']}" if r["failure"] else "ok"
                print(f"{r['notebook']} seed {r['seed']} threads {r['threads']}: {r['seconds']:.0f} s, {status}",
                      flush=True)  # fmt: skip
                results.append(r)
    text = report(results)
    (OUT / "report.md").write_text(text, encoding="utf-8")
    print(text)
    return 1 if any(r["failure"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
