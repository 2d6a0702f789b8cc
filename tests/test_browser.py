"""What a person clicks, in a real browser: the toolbox served by Voila, notebook 12 in JupyterLab.

Headless Chromium (Debian's chromium and chromium-driver) through selenium; servers on free local
ports, offline, in fast mode. Screenshots go to build/screenshots/ for people to look at.
Run with `make test-browser` (marker `browser`; skipped where Chromium or its driver is missing).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (os.path.exists(DRIVER) and BROWSER),
        reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(command: list[str], url: str, log: Path):
    """Start a server, wait until `url` answers, stop it (and its kernels) afterwards."""
    env = dict(os.environ, VIZKIT_FAST="1", VIZKIT_OFFLINE="1", OMP_NUM_THREADS="1", VIZKIT_THREADS="1")
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    assert server.poll() is None, f"the server stopped: see {log}"
                    time.sleep(0.5)
            else:
                raise AssertionError(f"{url} did not answer within a minute: see {log}")
            yield
        finally:
            if server.poll() is None:
                os.killpg(server.pid, 15)
                server.wait(30)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


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


def src(driver, css: str) -> str:
    return driver.find_element("css selector", f"{css} img, img{css}").get_attribute("src") or ""


def no_errors(driver) -> None:
    """No widget failed to render, no cell printed a traceback, the app's status line has no warning."""
    text = driver.find_element("tag name", "body").text
    for bad in ("Error displaying widget", "Traceback", "⚠"):
        assert bad not in text, f"the page shows {bad!r}"
    stderr = driver.find_elements("css selector", '[data-mime-type="application/vnd.jupyter.stderr"]')
    assert not [e.text for e in stderr if "Error" in e.text]


def test_the_toolbox_page_in_voila_answers_a_click_and_a_new_layer(browser, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "voila", "notebooks/toolbox.ipynb", "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1"]  # fmt: skip
    with serving(command, url, tmp_path / "voila.log"):
        browser.get(url)
        wait_for(browser, lambda d: src(d, ".vizkit-mosaic").startswith("blob:"), 300, "the mosaic")
        wait_for(browser, lambda d: src(d, ".vizkit-top5").startswith("blob:"), 60, "the top-5 Grad-CAMs")
        browser.save_screenshot(str(SHOTS / "toolbox-voila.png"))
        assert (
            "from vizkit.toolbox import Toolbox" not in browser.find_element("tag name", "body").text
        )  # no code
        no_errors(browser)

        from selenium.webdriver.common.actions.action_builder import ActionBuilder
        from selenium.webdriver.support.ui import Select

        from vizkit import toolbox_views as views

        mosaic = browser.find_element("css selector", ".vizkit-mosaic img, img.vizkit-mosaic")
        before, channel = (
            src(browser, ".vizkit-map"),
            browser.find_element("css selector", ".vizkit-channel input"),
        )
        old_channel = channel.get_attribute("value")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", mosaic)
        left, top, width = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width]", mosaic
        )
        scale = width / int(browser.execute_script("return arguments[0].naturalWidth", mosaic))
        r = 5  # the sixth strongest channel: first row, sixth tile
        px = (r * (views.TILE + views.GAP) + views.TILE / 2) * scale
        py = (18 + views.TILE / 2) * scale
        click = ActionBuilder(browser)
        click.pointer_action.move_to_location(int(left + px), int(top + py))
        click.pointer_action.click()
        click.perform()
        wait_for(browser, lambda d: src(d, ".vizkit-map") != before, 60, "the channel map after a click")
        assert channel.get_attribute("value") != old_channel
        browser.save_screenshot(str(SHOTS / "toolbox-voila-clicked.png"))

        before = src(browser, ".vizkit-mosaic")
        Select(browser.find_element("css selector", ".vizkit-layer select")).select_by_visible_text(
            "blocks.2"
        )
        wait_for(browser, lambda d: src(d, ".vizkit-mosaic") != before, 120, "the mosaic of blocks.2")
        assert "blocks.2" in browser.find_element("css selector", ".vizkit-layer select").get_attribute(
            "value"
        )
        no_errors(browser)
        browser.save_screenshot(str(SHOTS / "toolbox-voila-layer.png"))


def test_notebook_12_runs_in_jupyterlab_and_its_style_mixer_answers_a_slider(browser, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/lab/tree/12_fast_style_transfer.ipynb"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.allow_root=True",
               "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={ROOT / 'notebooks'}",
               "--ServerApp.open_browser=False", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"]  # fmt: skip
    with serving(command, f"http://127.0.0.1:{port}/api", tmp_path / "lab.log"):
        browser.get(url)
        wait_for(browser, lambda d: d.execute_script(
            "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel);"
        ), 180, "the notebook and its kernel")  # fmt: skip
        browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        wait_for(
            browser, lambda d: src(d, ".vizkit-explorer-picture").startswith("blob:"), 480, "the style mixer"
        )
        wait_for(browser, lambda d: d.execute_script(  # every cell has run (the page stops following them)
            "const w = window.jupyterapp.shell.currentWidget;"
            "return w.sessionContext.session.kernel.status === 'idle' && "
            "[...w.content.widgets].every(c => c.model.type !== 'code' || c.model.executionCount);"
        ), 300, "the last cell")  # fmt: skip
        browser.execute_script("document.querySelector('.vizkit-explorer').scrollIntoView()")
        browser.save_screenshot(str(SHOTS / "notebook12-lab.png"))
        before = src(browser, ".vizkit-explorer-picture")
        handle = browser.find_elements("css selector", ".vizkit-explorer .noUi-handle")[1]  # the second style
        for _ in range(3):  # cells above may still be rendering and move it: scroll until it stays put
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
            time.sleep(1.0)
        x, y = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]",
            handle,
        )
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        drag = ActionBuilder(browser)  # drag the handle to the right, as a person would
        drag.pointer_action.move_to_location(int(x), int(y))
        drag.pointer_action.pointer_down()
        drag.pointer_action.move_to_location(int(x) + 60, int(y))
        drag.pointer_action.pointer_up()
        drag.perform()
        wait_for(browser, lambda d: src(d, ".vizkit-explorer-picture") != before, 60, "the mixed picture")
        browser.save_screenshot(str(SHOTS / "notebook12-lab-mixed.png"))
        no_errors(browser)
