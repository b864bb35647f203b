"""The built docs site as a reader meets it: build it once, read its visible text, open it in headless Chromium.

Shared by the docs tests (``tests/test_docs_math.py``, ``tests/test_docs_roles.py``); the ``docs_site``
fixture of ``tests/conftest.py`` builds the site once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
NO_BROWSER = "no headless browser installed (Debian: apt-get install chromium)"


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

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def parse(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    return parser


def build_site(out: Path) -> Path:
    """``mkdocs build --strict`` of this checkout into ``out``; fails the test on any warning."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def rendered_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (``--virtual-time-budget`` lets them finish)."""
    command = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--virtual-time-budget=5000", "--dump-dom", page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "</html>" in result.stdout, result.stderr[-2000:]
    return result.stdout
