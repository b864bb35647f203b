"""The docs state every hook spec with its exact signature; the site's navigation and reference are complete."""

import inspect
import re
from pathlib import Path

from zslkit import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def hook_signatures():
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("zslkit_"):
            sig = inspect.signature(fn)
            params = ", ".join(
                f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty else p.name
                for p in sig.parameters.values()
            )
            yield name, f"{name}({params}) -> {sig.return_annotation}"


def test_every_hook_spec_is_documented_with_its_signature():
    text = (DOCS / "writing-a-plugin.md").read_text()
    specs = dict(hook_signatures())
    assert specs, "no hook specs found"
    for signature in specs.values():
        assert f"`{signature}`" in text, f"docs/writing-a-plugin.md must document {signature}"


REPO = DOCS.parent
#: the four parts of the site's navigation, in order
NAV_PARTS = ["Get started", "Guides", "Models", "Reference"]


def nav_pages(entries) -> list[str]:
    """Every page of a mkdocs ``nav`` (nested sections flattened)."""
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_the_nav_has_four_parts_and_lists_every_page_once():
    import yaml  # a dependency of zslkit (pyproject): never skipped
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    parts = [next(iter(entry)) for entry in nav if isinstance(entry, dict) and isinstance(next(iter(entry.values())), list)]
    assert parts == NAV_PARTS
    pages = nav_pages(nav)
    assert len(pages) == len(set(pages)), "a page is listed twice in the nav"
    on_disk = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert on_disk - set(pages) == set(), "pages missing from the nav of mkdocs.yml"
    assert set(pages) - on_disk == set()
    models = next(entry["Models"] for entry in nav if "Models" in entry)
    assert {"msdn.md", "dazle.md", "transzero.md", "apn_gem.md"} <= set(nav_pages(models))


def test_every_public_module_is_on_one_reference_page():
    rendered: dict[str, str] = {}
    for page in sorted((DOCS / "reference").glob("*.md")):
        for module in re.findall(r"^::: (\S+)", page.read_text(), flags=re.M):
            assert module not in rendered, f"{module} on {rendered.get(module)} and {page.name}"
            rendered[module] = page.name
    modules = set()
    for path in (REPO / "zslkit").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(part.startswith("_") for part in parts) and "cli" not in parts:
            modules.add(".".join(parts))
    assert modules - set(rendered) == set(), "modules without a ::: entry on a docs/reference page"
    other = [page.name for page in DOCS.glob("*.md") if re.search(r"^::: ", page.read_text(), flags=re.M)]
    assert other == [], f"API objects are rendered on the reference pages only, not on {other}"
