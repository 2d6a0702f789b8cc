"""What a person clicks, in a real browser: the toolbox served by Voila, notebook 12 in JupyterLab.

Headless Chromium (Debian's chromium and chromium-driver) through selenium; servers on free local
ports, offline, in fast mode. Screenshots go to build/screenshots/ for people to look at.
Run with `make test-browser` (marker `browser`; skipped where Chromium or its driver is missing).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from browsers import SHOTS, chromium, free_port, needs_chromium, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.browser, needs_chromium]


def needs(module: str, extra: str = "lab"):
    """Skip a test, saying why, where a server it starts is not installed (pip install -e ".[test]" alone)."""
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(
        missing, reason=f"needs {module} (the `{extra}` extra: pip install -e '.[{extra}]')"
    )


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
    driver = chromium()
    yield driver
    driver.quit()


def src(driver, css: str) -> str:
    return driver.find_element("css selector", f"{css} img, img{css}").get_attribute("src") or ""


def no_errors(driver) -> None:
    """No widget failed to render, no cell printed a traceback, the app's status line has no warning."""
    text = driver.find_element("tag name", "body").text
    for bad in ("Error displaying widget", "Traceback", "⚠"):
        assert bad not in text, f"the page shows {bad!r}"
    stderr = driver.find_elements("css selector", '[data-mime-type="application/vnd.jupyter.stderr"]')
    assert not [e.text for e in stderr if "Error" in e.text]


def centre(driver, element) -> tuple[float, float, float, float]:
    """(left, top, width, height) of the element in the window, after scrolling it to the middle.

    Scrolled a few times with a pause: cells above it may still be rendering and move it.
    """
    for _ in range(3):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        time.sleep(0.7)
    return driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height]", element
    )


def pointer(driver, *path: tuple[float, float], drag: bool = False) -> None:
    """A real mouse: to the first point and click, or (drag=True) press there, move along, release."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(path[0][0]), int(path[0][1]))
    if not drag:
        actions.pointer_action.click()
    else:
        actions.pointer_action.pointer_down()
        for x, y in path[1:]:
            actions.pointer_action.move_to_location(int(x), int(y))
        actions.pointer_action.pointer_up()
    actions.perform()


def click_a_tile(driver, shot: str, r: int = 5) -> None:
    """Click the mosaic's tile r (row-major; 5 = the sixth strongest channel) and wait for its map."""
    from vizkit import toolbox_views as views

    mosaic = driver.find_element("css selector", ".vizkit-mosaic img, img.vizkit-mosaic")
    channel = driver.find_element("css selector", ".vizkit-channel input")
    before, old_channel = src(driver, ".vizkit-map"), channel.get_attribute("value")
    patches = src(driver, ".vizkit-patches")
    left, top, width, _ = centre(driver, mosaic)
    scale = width / int(driver.execute_script("return arguments[0].naturalWidth", mosaic))
    px = ((r % views.COLS) * (views.TILE + views.GAP) + views.TILE / 2) * scale
    py = (18 + (r // views.COLS) * (views.TILE + views.GAP) + views.TILE / 2) * scale
    pointer(driver, (left + px, top + py))
    wait_for(driver, lambda d: src(d, ".vizkit-map") != before, 60, "the channel map after a click")
    wait_for(driver, lambda d: src(d, ".vizkit-patches") != patches, 60, "the channel's top patches")
    assert channel.get_attribute("value") != old_channel
    driver.save_screenshot(str(SHOTS / shot))


@needs("voila")
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
        page = browser.find_element("tag name", "body").text
        assert "from vizkit.toolbox import Toolbox" not in page  # the app alone, no code
        no_errors(browser)
        click_a_tile(browser, "toolbox-voila-clicked.png")

        from selenium.webdriver.support.ui import Select

        before = src(browser, ".vizkit-mosaic")
        layer = browser.find_element("css selector", ".vizkit-layer select")
        Select(layer).select_by_visible_text("blocks.2")
        wait_for(browser, lambda d: src(d, ".vizkit-mosaic") != before, 120, "the mosaic of blocks.2")
        assert layer.get_attribute("value") == "blocks.2"
        no_errors(browser)
        browser.save_screenshot(str(SHOTS / "toolbox-voila-layer.png"))

        before = src(browser, ".vizkit-mosaic"), src(browser, ".vizkit-patches")  # notebook 15's dictionary
        Select(layer).select_by_visible_text("blocks.4.2.bn1 · SAE features")
        wait_for(
            browser, lambda d: src(d, ".vizkit-mosaic") != before[0], 120, "the mosaic of the SAE features"
        )
        wait_for(browser, lambda d: src(d, ".vizkit-patches") != before[1], 120, "the features' top patches")
        assert layer.get_attribute("value") == "blocks.4.2.bn1 · SAE features"
        no_errors(browser)
        browser.save_screenshot(str(SHOTS / "toolbox-voila-features.png"))

        before = src(browser, ".vizkit-mosaic")  # the shipped ViT: its blocks, then one head's attention
        Select(browser.find_element("css selector", ".vizkit-model select")).select_by_visible_text(
            "vit_distilled"
        )
        wait_for(browser, lambda d: src(d, ".vizkit-mosaic") != before, 120, "the ViT's mosaic")
        wait_for(
            browser, lambda d: src(d, ".vizkit-attention").startswith("blob:"), 60, "the [CLS] attention"
        )
        before = src(browser, ".vizkit-attention")
        Select(browser.find_element("css selector", ".vizkit-head select")).select_by_visible_text("head 2")
        wait_for(browser, lambda d: src(d, ".vizkit-attention") != before, 60, "head 2's attention")
        no_errors(browser)
        centre(browser, browser.find_element("css selector", ".vizkit-attention img, img.vizkit-attention"))
        browser.save_screenshot(str(SHOTS / "toolbox-voila-vit.png"))


def run_in_lab(driver, base: str, notebook: str) -> None:
    """Open a notebook in JupyterLab, run all its cells, and wait until every one has run."""
    driver.get(f"{base}/lab/tree/{notebook}")
    wait_for(driver, lambda d: d.execute_script(
        "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        f"return !!(w && w.context && w.context.path.endsWith('{notebook}') && w.sessionContext.session"
        " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle');"
    ), 180, f"{notebook} and its kernel")  # fmt: skip
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    wait_for(driver, lambda d: d.execute_script(  # every cell has run: the page stops following them
        "const w = window.jupyterapp.shell.currentWidget;"
        "return w.sessionContext.session.kernel.status === 'idle' && "
        "[...w.content.widgets].every(c => c.model.type !== 'code' || c.model.executionCount);"
    ), 480, f"the last cell of {notebook}")  # fmt: skip


def show_cell(driver, text: str, css: str) -> None:
    """Make the notebook cell whose source contains `text` the active one and scroll it into view.

    JupyterLab renders only the cells near the viewport (4.2 hides the others), so an element of a
    far cell has no size until the notebook itself scrolls there.
    """
    driver.execute_script(
        "const nb = window.jupyterapp.shell.currentWidget.content;"
        "const i = nb.widgets.findIndex(c => c.model.sharedModel.getSource().includes(arguments[0]));"
        "nb.activeCellIndex = i;"
        "return nb.scrollToItem ? nb.scrollToItem(i, 'start') : nb.scrollToCell(nb.widgets[i]);",
        text,
    )
    wait_for(driver, lambda d: d.execute_script(
        "return [...document.querySelectorAll(arguments[0])].some(e => e.getBoundingClientRect().width > 0);",
        css,
    ), 30, f"the cell with {text} in view")  # fmt: skip
    time.sleep(1.0)  # let the outputs above settle


@needs("jupyterlab")
def test_the_toolbox_and_notebook_12_run_in_jupyterlab_and_answer_a_click_and_a_slider(browser, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.allow_root=True",
               "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={ROOT / 'notebooks'}",
               "--ServerApp.open_browser=False", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"]  # fmt: skip
    with serving(command, f"{base}/api", tmp_path / "lab.log"):
        run_in_lab(browser, base, "toolbox.ipynb")
        wait_for(browser, lambda d: src(d, ".vizkit-mosaic").startswith("blob:"), 60, "the mosaic")
        no_errors(browser)
        click_a_tile(browser, "toolbox-lab-clicked.png")

        run_in_lab(browser, base, "12_fast_style_transfer.ipynb")
        assert src(browser, ".vizkit-explorer-picture").startswith("blob:")
        no_errors(browser)
        before = src(browser, ".vizkit-explorer-picture")
        show_cell(browser, "mixing_explorer", ".vizkit-explorer .noUi-handle")
        handle = browser.find_elements("css selector", ".vizkit-explorer .noUi-handle")[1]  # the second style
        left, top, width, height = centre(browser, handle)
        x, y = left + width / 2, top + height / 2
        pointer(browser, (x, y), (x + 30, y), (x + 60, y), drag=True)  # drag it right, as a person would
        wait_for(browser, lambda d: src(d, ".vizkit-explorer-picture") != before, 60, "the mixed picture")
        browser.execute_script("document.querySelector('.vizkit-explorer').scrollIntoView()")
        browser.save_screenshot(str(SHOTS / "notebook12-lab-mixed.png"))
        no_errors(browser)
