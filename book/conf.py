"""Sphinx configuration of the book (tools/book.py stages this folder and the notebooks, then builds)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: this file is read from build/book-src/
sys.path.insert(0, str(ROOT / "tools"))
from notebooks import BRANCH, REPO  # noqa: E402  (the repository URL lives once, in tools/notebooks.py)

project = "vizkit"
author = "the vizkit authors"
copyright = "vizkit authors; MIT licence"
extensions = ["myst_nb", "sphinx.ext.autodoc"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_generated/*"]
root_doc = "index"

# The notebooks arrive executed (tools/book.py runs and caches them) or, in the fast build, as committed.
nb_execution_mode = "off"
nb_merge_streams = True
# Widgets (the explorers, the toolbox) have no kernel in a static page: show the PNG of their default view
# that each carries beside its widget view.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]

# Formulas: MathJax 3 from npm (book/package-lock.json), copied into _static/mathjax/: no CDN.
mathjax_path = "mathjax/tex-chtml.js"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False}

html_title = "vizkit: Visualizing and Understanding CNNs"
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_favicon = "_static/favicon.png"
html_context = {"default_mode": "light"}
html_theme_options = {
    "repository_url": REPO,
    "repository_branch": BRANCH,
    "path_to_docs": "notebooks",  # launch buttons open notebooks/<page>.ipynb: where the notebooks live
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False


def plain_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """vizkit's docstrings are plain text, not reStructuredText: escape what RST would read as markup
    (|x| as a substitution, * as emphasis, a trailing _ as a link)."""
    for i, line in enumerate(lines):
        bullet = re.match(r"\s*\* ", line)  # a list item's * stays markup
        head, rest = (line[: bullet.end()], line[bullet.end() :]) if bullet else ("", line)
        rest = rest.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
        lines[i] = head + re.sub(r"(\w)_(?=\W|$)", r"\1\\_", rest)


def setup(app) -> None:
    app.connect("autodoc-process-docstring", plain_docstring)
