"""Browser screenshots of the book's pages, for people to look at: build/screenshots/*.png.

Usage: python tools/screenshots.py [PAGE ...]   (default: index.html and 07_cam.html)
Needs the book (make book or make book-fast) and Chromium (Debian: apt-get install chromium). Pages are opened
from disk with no network, so what the screenshot shows (formulas included) renders offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "build" / "book"
OUT = ROOT / "build" / "screenshots"


def browser() -> str:
    """The Chromium executable, or a clear error saying how to get one."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium found: apt-get install chromium (Debian) or install Google Chrome")


def screenshot(page: str, height: int = 2400) -> Path:
    """A 1280-px-wide screenshot of build/book/<page> after its scripts (MathJax) have run."""
    source = BOOK / page
    if not source.exists():
        raise SystemExit(f"{source} does not exist: run `make book` (or book-fast) first")
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / (Path(page).stem + ".png")
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--allow-file-access-from-files", f"--window-size=1280,{height}",
               "--virtual-time-budget=15000", f"--screenshot={target}", source.as_uri()]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return target


def main(pages: list[str]) -> None:
    for page in pages or ["index.html", "07_cam.html"]:
        print(screenshot(page))


if __name__ == "__main__":
    main(sys.argv[1:])
