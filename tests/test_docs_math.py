"""The docs' math, read as a reader sees it: the built site opened in headless Chromium.

``mkdocs build`` turns ``$...$`` / ``$$...$$`` into ``.arithmatex`` elements holding ``\\(...\\)`` /
``\\[...\\]``; the KaTeX files shipped under ``docs/assets/katex`` typeset them in the browser. The
test counts the math elements of the built HTML, lets Chromium run the page's scripts, and
checks that every one of them became KaTeX output and that no raw TeX delimiter is left in
the visible text. Skips only when no Chromium is installed (CI installs Debian's package).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
#: pages with math, and the fewest math elements each holds (inline + display)
PAGES = {"msdn": 5, "performance": 20, "distributed": 4, "apn_gem": 8}

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser installed (Debian: apt-get install chromium)"
)


class VisibleText(HTMLParser):
    """Text a reader sees: without scripts, styles, code blocks and KaTeX's hidden MathML copy."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    HIDDEN_TAGS = {"script", "style", "code", "pre", "template", "head"}

    def __init__(self) -> None:
        super().__init__()
        self.skip_depth = 0
        self.chunks: list[str] = []
        self.classes: list[str] = []  # every class attribute seen, in order

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        self.classes.extend(classes)
        if tag in self.VOID:
            return
        if self.skip_depth:
            self.skip_depth += 1
        elif tag in self.HIDDEN_TAGS or "katex-mathml" in classes:
            self.skip_depth = 1

    def handle_endtag(self, tag):
        if self.skip_depth and tag not in self.VOID:
            self.skip_depth -= 1

    def handle_data(self, data):
        if not self.skip_depth:
            self.chunks.append(data)


def parse(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="building the docs needs the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def rendered_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (``--virtual-time-budget`` lets them finish)."""
    command = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
        "--virtual-time-budget=5000", "--dump-dom", page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "</html>" in result.stdout, result.stderr[-2000:]
    return result.stdout


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
