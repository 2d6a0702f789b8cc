"""The book as a reader gets it: build/book/ (make book or make book-fast) served over a loopback HTTP
server and opened in headless Chromium. Every chapter page loads with no console error, loads nothing
from the network, has its formulas typeset and its images loaded, and links to its notebook on Colab;
search finds "Grad-CAM". Screenshots of the front page and of notebook 07 go to build/screenshots/."""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from browsers import SHOTS, chromium, needs_chromium, wait_for

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "build" / "book"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.skipif(
        not (BOOK / "index.html").exists(), reason="no book: run make book-fast (or make book)"
    ),
]
# Raw TeX left on the page: $...$ that MyST did not read as math, or \( \) that MathJax did not typeset.
RAW_TEX = re.compile(r"\$[^$\s][^$\n]*\$|\\\(|\\\[")
PAGE_FACTS = """
const text = [...document.querySelectorAll('article p, article li, article td, article h1, article h2')]
  .map(e => e.innerText).join('\\n');
return {
  text: text,
  math: document.querySelectorAll('span.math, div.math').length,
  typeset: document.querySelectorAll('mjx-container').length,
  typesetDone: typeof MathJax === 'undefined' || !!(MathJax.startup && MathJax.startup.promise &&
    (MathJax.startup.promise.then(() => { window.typesetDone = true; }), window.typesetDone)),
  images: [...document.querySelectorAll('img')].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
  widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
  colab: [...document.querySelectorAll('a[href*="colab.research.google.com/github/"]')].map(a => a.href),
  resources: performance.getEntriesByType('resource').map(r => r.name),
};
"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request in the test's output
        pass


@pytest.fixture(scope="module")
def site():
    """http://127.0.0.1:<port>/ serving build/book/."""
    handler = functools.partial(Quiet, directory=str(BOOK))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1280, 1000)
    yield driver
    driver.quit()


def page_facts(driver, url: str) -> dict:
    """Open a page, wait for MathJax to finish, and read what the checks need."""
    driver.get(url)
    wait_for(
        driver, lambda d: d.execute_script("return document.readyState") == "complete", 30, f"{url} to load"
    )
    wait_for(driver, lambda d: d.execute_script(PAGE_FACTS)["typesetDone"], 60, f"MathJax on {url}")
    return driver.execute_script(PAGE_FACTS)


def test_every_chapter_page_loads_typesets_and_links_to_its_notebook(site, browser):
    pages = [*NOTEBOOKS, "index", "genindex", "setup", "api", "teachers", "benchmarks", "gpu", "ledger"]
    formulas = 0
    for page in pages:
        browser.get_log("browser")  # drop what earlier pages logged
        facts = page_facts(browser, f"{site}{page}.html")
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, f"{page}: console errors: {errors}"
        remote = [r for r in facts["resources"] if not r.startswith(site)]
        assert not remote, f"{page} loads from elsewhere: {remote}"
        assert not RAW_TEX.search(facts["text"]), (
            f"{page}: raw TeX left: {RAW_TEX.search(facts['text'])[0]!r}"
        )
        formulas += facts["typeset"]
        if facts["math"]:
            assert facts["typeset"] >= facts["math"], (
                f"{page}: {facts['math']} formulas, {facts['typeset']} typeset"
            )
        assert not facts["widgets"], f"{page}: a widget shown as an empty view, not as its picture"
        broken = [src for src, ok in facts["images"] if not ok]
        assert not broken, f"{page}: images that did not load: {broken}"
        if page in NOTEBOOKS:
            assert facts["colab"], f"{page}: no Open in Colab link"
            assert all(url.endswith(f"/notebooks/{page}.ipynb") for url in facts["colab"]), facts["colab"]
    assert formulas > 20, f"only {formulas} formulas typeset in the whole book"
    browser.get(f"{site}index.html")
    browser.save_screenshot(str(SHOTS / "book-index.png"))


def test_notebook_07_executed_shows_its_pictures(site, browser):
    facts = page_facts(browser, f"{site}07_cam.html")
    assert len(facts["images"]) >= 5, "notebook 07's page has no figures: was it executed (make book-fast)?"
    browser.save_screenshot(str(SHOTS / "book-07_cam.png"))


def test_search_finds_grad_cam(site, browser):
    browser.get(f"{site}search.html?q=Grad-CAM")
    links = wait_for(
        browser,
        lambda d: [a.get_attribute("href") for a in d.find_elements("css selector", "#search-results a")],
        60,
        "search results for Grad-CAM",
    )
    assert any("07_cam.html" in link for link in links), links
    browser.save_screenshot(str(SHOTS / "book-search.png"))
