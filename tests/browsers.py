"""What the browser tests share: headless Chromium (Debian's chromium and chromium-driver) through
selenium, a free local port, and polling with a screenshot when something never appears."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    not (os.path.exists(DRIVER) and BROWSER),
    reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(width: int = 1366, height: int = 900):
    """A headless Chromium driven by selenium, its console kept (driver.get_log("browser"))."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    SHOTS.mkdir(parents=True, exist_ok=True)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def wait_for(driver, test, seconds: float, what: str):
    """Poll test(driver) until it returns something truthy; fail naming `what` (with a screenshot)."""
    end = time.time() + seconds
    while time.time() < end:
        try:
            value = test(driver)
            if value:
                return value
        except Exception:  # the element is not there yet, or was re-rendered
            pass
        time.sleep(0.5)
    driver.save_screenshot(str(SHOTS / "failed.png"))
    raise AssertionError(f"timed out after {seconds} s waiting for {what} (see build/screenshots/failed.png)")
