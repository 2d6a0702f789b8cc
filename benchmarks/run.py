"""Run every benchmark in this folder and print one Markdown table (paste it into the README)."""

from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main() -> None:
    rows = []
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows += module.main()
    print(
        f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}\n"
    )
    print("| task | implementation | seconds |\n| --- | --- | --- |")
    for task, impl, seconds in rows:
        print(f"| {task} | {impl} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
