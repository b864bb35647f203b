"""The docs' math, read as a reader sees it: the built site opened in headless Chromium.

``mkdocs build`` turns ``$...$`` / ``$$...$$`` into ``.arithmatex`` elements holding ``\\(...\\)`` /
``\\[...\\]``; the KaTeX files shipped under ``docs/assets/katex`` typeset them in the browser. The
test counts the math elements of the built HTML, lets Chromium run the page's scripts, and
checks that every one of them became KaTeX output and that no raw TeX delimiter is left in
the visible text. Skips only when no Chromium is installed (CI installs Debian's package).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs_site import BROWSER, NO_BROWSER, parse, rendered_dom

#: pages with math, and the fewest math elements each holds (inline + display)
PAGES = {"msdn": 5, "dazle": 4, "performance": 20, "distributed": 4, "apn_gem": 8}

pytestmark = pytest.mark.skipif(BROWSER is None, reason=NO_BROWSER)


@pytest.fixture(scope="module")
def site(docs_site):
    return docs_site


def test_renderer_is_shipped_with_the_site(site):
    """The KaTeX files are in the built site and the pages load them by relative paths, not from a CDN."""
    html = (site / "msdn" / "index.html").read_text()
    for asset in ("assets/katex/katex.min.js", "assets/katex/contrib/auto-render.min.js", "assets/katex/katex.min.css"):
        assert (site / asset).is_file(), asset
        assert re.search(rf'(src|href)="\.\./{re.escape(asset)}"', html), f"{asset} not loaded from the site"
    fonts = re.findall(r"url\((fonts/[^)]+\.woff2)\)", (site / "assets/katex/katex.min.css").read_text())
    assert fonts and all((site / "assets/katex" / font).is_file() for font in fonts)
    assert not re.search(r"https?://[^\"']*katex", html)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_math_is_typeset_in_the_browser(site, tmp_path, name):
    page = site / name / "index.html"
    built = parse(page.read_text())
    math = built.classes.count("arithmatex")
    assert math >= PAGES[name], f"{name}: only {math} math elements in the built page"
    raw = "".join(built.chunks)
    assert "\\[" in raw or "\\(" in raw  # before the browser: raw TeX is what a reader would see

    dom = parse(rendered_dom(page, tmp_path / "profile"))
    visible = "".join(dom.chunks)
    assert dom.classes.count("arithmatex") == math
    assert dom.classes.count("katex") == math, "every math element typeset once"
    assert dom.classes.count("katex-display") == built_display_count(page), "display math typeset as display"
    assert "katex-error" not in dom.classes
    for delimiter in ("\\[", "\\]", "\\(", "\\)", "$$"):
        assert delimiter not in visible, f"{name}: raw {delimiter} left in the visible text"


def built_display_count(page: Path) -> int:
    """Display equations (``$$``) of a built page: ``div.arithmatex`` elements."""
    return len(re.findall(r'<div class="arithmatex">', page.read_text()))
