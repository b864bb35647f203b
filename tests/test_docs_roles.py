"""The docstrings' Sphinx roles (``:func:`x```) become links on the built site, never literal text.

``docs/hooks/griffe_sphinx_roles.py`` rewrites the roles when mkdocstrings loads the package. The first
tests load a small package of their own with griffe and that extension and read the rewritten
docstrings; the others build the real site and read it as a reader does: every page's text through
the stdlib HTML parser, and every API page in headless Chromium (skipped only where no browser is
installed; CI installs Debian's chromium).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.docs_site import BROWSER, NO_BROWSER, REPO, parse, rendered_dom

EXTENSION = REPO / "docs" / "hooks" / "griffe_sphinx_roles.py"
LITERAL_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj):`?")

PACKAGE = {
    "__init__.py": '''
        """The package: :class:`Thing` is imported here, :mod:`pkg.core` defines it."""
        from pkg.core import Thing
        ''',
    "core.py": '''
        """Core: :func:`helper`, :class:`~pkg.core.Thing`, :mod:`the other module <pkg.other>`, :func:`!helper`,
        :class:`torch.nn.Linear`, :func:`run`, :func:`pkg.other.run`, :class:`Missing`, :func:`twin` (two of them),
        a role that wraps :func:`pkg.other.
        run`.

        ```
        :func:`helper` in a code block stays as written
        ```
        """
        from pkg.other import run

        #: The sizes a :class:`Thing` takes,
        #: smallest first.
        SIZES = (1, 2)

        UNDOCUMENTED = 3


        def helper():
            """Calls :func:`run` and :meth:`Thing.go`."""


        class Thing:
            """Has :meth:`go`, :attr:`size` and :py:meth:`~Thing.go`."""

            size = 1

            def go(self):
                """Sizes :attr:`size`; after :meth:`go` comes :func:`helper`."""
        ''',
    "other.py": '''
        """Other: :func:`helper` is imported nowhere here but is the one ``helper``; :func:`twin` is this module's."""


        def run():
            """Runs."""


        def twin():
            """One of two."""
        ''',
    "third.py": '''
        """Third."""


        def twin():
            """Two of two: :func:`run` is not visible from here but is the one ``run``."""
        ''',
}


def link(path: str, title: str) -> str:
    return f'<autoref identifier="{path}" optional><code>{title}</code></autoref>'


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    griffe = pytest.importorskip("griffe", reason="the docs extra: pip install -e '.[docs]'")
    root = tmp_path_factory.mktemp("src")
    (root / "pkg").mkdir()
    for name, text in PACKAGE.items():
        (root / "pkg" / name).write_text(textwrap.dedent(text).lstrip())
    extensions = griffe.load_extensions(f"{EXTENSION}:SphinxRoles")
    return griffe.load("pkg", search_paths=[root], extensions=extensions)


def doc(package, path: str) -> str:
    return (package[path] if path else package).docstring.value


def test_short_names_resolve_from_the_documented_object(package):
    core = doc(package, "core")
    assert link("pkg.core.helper", "helper") in core
    assert link("pkg.core.Thing", "Thing") in core  # `~` shows the last part
    assert link("pkg.other", "the other module") in core  # explicit title
    assert link("pkg.other.run", "run") in core  # an imported name: its canonical path
    assert core.count(link("pkg.other.run", "pkg.other.run")) == 2  # the second one wrapped a line
    helper = doc(package, "core.helper")
    assert helper == f"Calls {link('pkg.other.run', 'run')} and {link('pkg.core.Thing.go', 'Thing.go')}."
    assert doc(package, "core.Thing") == (
        f"Has {link('pkg.core.Thing.go', 'go')}, {link('pkg.core.Thing.size', 'size')} and {link('pkg.core.Thing.go', 'go')}."
    )
    assert doc(package, "core.Thing.go") == (
        f"Sizes {link('pkg.core.Thing.size', 'size')}; after {link('pkg.core.Thing.go', 'go')} comes "
        f"{link('pkg.core.helper', 'helper')}."
    )
    assert doc(package, "") == (
        f"The package: {link('pkg.core.Thing', 'Thing')} is imported here, {link('pkg.core', 'pkg.core')} defines it."
    )


def test_an_attribute_gets_its_doc_comment_with_its_roles_linked(package):
    assert doc(package, "core.SIZES") == f"The sizes a {link('pkg.core.Thing', 'Thing')} takes,\nsmallest first."
    assert package["core.UNDOCUMENTED"].docstring is None


def test_a_name_defined_once_in_the_package_resolves_from_anywhere_and_two_never(package):
    assert doc(package, "third.twin").startswith(f"Two of two: {link('pkg.other.run', 'run')} is not visible")
    other = doc(package, "other")
    assert link("pkg.core.helper", "helper") in other
    assert f"{link('pkg.other.twin', 'twin')} is this module's" in other  # the module's own before any other
    assert "`twin` (two of them)" in doc(package, "core")


def test_what_cannot_be_resolved_or_must_not_link_is_code_and_code_blocks_are_untouched(package):
    core = doc(package, "core")
    assert "`torch.nn.Linear`" in core and "`Missing`" in core  # another library's object, a typo
    assert core.count(link("pkg.core.helper", "helper")) == 1 and "`helper`,\n" in core  # `!helper`
    assert "```\n:func:`helper` in a code block stays as written\n```" in core
    prose = core.replace(":func:`helper` in a code block", "")
    assert not LITERAL_ROLE.search(prose), prose


def role_pages(site: Path) -> list[Path]:
    """The built pages that hold rendered API objects (mkdocstrings' ``doc-object`` elements)."""
    pages = [page for page in sorted(site.rglob("*.html")) if "doc doc-object" in page.read_text()]
    assert pages, "no API page in the built site"
    return pages


def test_no_page_shows_a_literal_role_and_roles_became_links(docs_site):
    for page in sorted(docs_site.rglob("*.html")):
        text = parse(page.read_text()).text
        assert not LITERAL_ROLE.search(text), f"{page.relative_to(docs_site)}: {LITERAL_ROLE.search(text)[0]!r} shown"
    html = "".join(page.read_text() for page in role_pages(docs_site))
    # `create`'s docstring names :func:`register`; zslkit.registry is rendered, so it is a link
    assert re.search(r'<a class="autorefs autorefs-internal"[^>]*href="[^"]*#zslkit\.registry\.register"[^>]*>'
                     r"<code>register</code></a>", html)
    links = re.findall(r'<a class="autorefs autorefs-internal"[^>]*><code>', html)
    assert len(links) > 300, f"only {len(links)} cross-reference links on the API pages"


#: the reference pages with the most roles in their docstrings, opened in the browser (a few seconds each;
#: the stdlib parser above reads every page)
BROWSER_PAGES = ("reference/zslkit", "reference/training", "reference/models")


@pytest.mark.skipif(BROWSER is None, reason=NO_BROWSER)
@pytest.mark.parametrize("name", BROWSER_PAGES)
def test_api_pages_in_the_browser_show_no_literal_role(docs_site, tmp_path, name):
    page = docs_site / name / "index.html"
    assert page in role_pages(docs_site)
    dom = rendered_dom(page, tmp_path / "profile")
    text = parse(dom).text
    assert not LITERAL_ROLE.search(text), f"{name}: {LITERAL_ROLE.search(text)[0]!r} shown"
    assert "doc doc-object" in dom and len(re.findall(r'<a class="autorefs autorefs-internal"[^>]*><code>', dom)) > 40
