"""The docs state every hook spec with its exact signature."""

import inspect
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
